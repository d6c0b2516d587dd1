-- Task runs: the tool registry, task definitions, runs and their tool calls (read models of
-- the `tool`, `task` and `task_run` aggregates; the run's whole history is the archive's).

CREATE TABLE tools (
    name        text        PRIMARY KEY,
    description text        NOT NULL,
    risk        text        NOT NULL,
    schema      jsonb       NOT NULL,
    version     bigint      NOT NULL,
    position    bigint      NOT NULL,
    updated_at  timestamptz NOT NULL
);

CREATE TABLE tasks (
    id                  uuid        PRIMARY KEY,
    title               text        NOT NULL,
    prompt              text        NOT NULL,
    allowed_tools       text[]      NOT NULL,
    safe_mutate         text        NOT NULL,
    budget_nanos        bigint      NULL,
    version             bigint      NOT NULL,
    position            bigint      NOT NULL,
    created_at          timestamptz NOT NULL
);

CREATE TABLE task_runs (
    id            uuid        PRIMARY KEY,
    task_id       uuid        NOT NULL,
    agent_id      uuid        NULL,
    state         text        NOT NULL,
    output        text        NULL,
    reason        text        NULL,
    logs          bigint      NOT NULL DEFAULT 0,
    artifacts     jsonb       NOT NULL DEFAULT '[]',
    created_at    timestamptz NOT NULL,
    started_at    timestamptz NULL,
    finished_at   timestamptz NULL,
    version       bigint      NOT NULL,
    position      bigint      NOT NULL,
    updated_at    timestamptz NOT NULL
);
CREATE INDEX task_runs_task ON task_runs (task_id, id);
CREATE INDEX task_runs_state ON task_runs (state, id);
CREATE INDEX task_runs_agent ON task_runs (agent_id, id) WHERE agent_id IS NOT NULL;

CREATE TABLE task_run_calls (
    run_id        uuid        NOT NULL,
    call_id       uuid        NOT NULL,
    seq           integer     NOT NULL,   -- order inside the run
    tool          text        NOT NULL,
    risk          text        NOT NULL,
    arguments     jsonb       NOT NULL,
    status        text        NOT NULL,
    decided_by    text        NULL,
    decided_reason text       NULL,
    result        jsonb       NULL,
    error         text        NULL,
    requested_at  timestamptz NOT NULL,
    decided_at    timestamptz NULL,
    finished_at   timestamptz NULL,
    PRIMARY KEY (run_id, call_id)
);
-- Calls waiting for an operator, oldest first (the approval queue).
CREATE INDEX task_run_calls_pending ON task_run_calls (requested_at) WHERE status = 'pending-approval';

GRANT SELECT, INSERT, UPDATE, DELETE ON tools, tasks, task_runs, task_run_calls TO mc_app;
CALL mc_hand_over();
