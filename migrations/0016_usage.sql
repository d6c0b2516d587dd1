-- Token usage and cost: the provider price table and every LLM step of every run, priced with
-- the price in force at its time (read models of the `price` and `task_run` aggregates). A
-- price set or corrected later reprices the steps it covers: costs here always follow the
-- current table, while each step's event keeps what it cost when recorded.

ALTER TABLE task_runs
    ADD COLUMN llm_calls  bigint NOT NULL DEFAULT 0,
    ADD COLUMN cost_nanos bigint NOT NULL DEFAULT 0;

CREATE TABLE prices (
    provider           text        NOT NULL,
    model              text        NOT NULL,   -- '*': every model of the provider without its own
    effective_from     timestamptz NOT NULL,
    input_nanos        bigint      NOT NULL,   -- nano-dollars per million tokens
    output_nanos       bigint      NOT NULL,
    cached_input_nanos bigint      NOT NULL,
    reasoning_nanos    bigint      NOT NULL,
    position           bigint      NOT NULL,
    PRIMARY KEY (provider, model, effective_from)
);

-- The task and agent of each run, for grouping its steps.
CREATE TABLE usage_runs (
    run_id   uuid PRIMARY KEY,
    task_id  uuid NOT NULL,
    agent_id uuid NULL
);

CREATE TABLE llm_calls (
    position            bigint      NOT NULL,
    event_index         integer     NOT NULL,
    run_id              uuid        NOT NULL,
    task_id             uuid        NOT NULL,
    agent_id            uuid        NULL,
    at                  timestamptz NOT NULL,
    provider            text        NOT NULL,
    model               text        NOT NULL,
    input_tokens        bigint      NOT NULL,
    output_tokens       bigint      NOT NULL,
    cached_input_tokens bigint      NOT NULL,
    reasoning_tokens    bigint      NOT NULL,
    latency_ms          bigint      NOT NULL,
    finish_reason       text        NOT NULL,
    recorded_cost_nanos bigint      NULL,      -- what the event says it cost when recorded
    cost_nanos          bigint      NULL,      -- at the current price table; NULL: unpriced
    price_from          timestamptz NULL,
    PRIMARY KEY (position, event_index)
);
CREATE INDEX llm_calls_model ON llm_calls (provider, model, at);
CREATE INDEX llm_calls_at ON llm_calls (at);

GRANT SELECT, INSERT, UPDATE, DELETE ON prices, usage_runs, llm_calls TO mc_app;
CALL mc_hand_over();
