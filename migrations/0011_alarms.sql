-- Alarms read model: one row per alarm (spacecraft, parameter, kind) with its current
-- occurrence, and the history of every transition for the alarm's page.
CREATE TABLE alarms (
    id              uuid        PRIMARY KEY,
    spacecraft_id   text        NOT NULL,
    parameter       text        NOT NULL,
    kind            text        NOT NULL,  -- LIMIT | STALE
    state           text        NOT NULL,  -- RAISED | ACKNOWLEDGED | RETURNED | CLEARED
    severity        text        NOT NULL,  -- WARNING | CRITICAL (the highest of the occurrence)
    active          boolean     NOT NULL,
    acknowledged    boolean     NOT NULL,
    occurrence      bigint      NOT NULL,
    raised_at       timestamptz NOT NULL,
    trigger_value   jsonb       NOT NULL,
    last_value      jsonb       NOT NULL,
    returned_at     timestamptz NULL,
    acknowledged_at timestamptz NULL,
    acknowledged_by text        NULL,
    cleared_at      timestamptz NULL,
    shelved_until   timestamptz NULL,
    shelved_by      text        NULL,
    shelve_comment  text        NULL,
    version         bigint      NOT NULL,
    position        bigint      NOT NULL,
    updated_at      timestamptz NOT NULL
);
CREATE INDEX alarms_by_spacecraft ON alarms (spacecraft_id, parameter);
CREATE INDEX alarms_by_update ON alarms (updated_at DESC, id DESC);
CREATE INDEX alarms_shelved ON alarms (shelved_until) WHERE shelved_until IS NOT NULL;

CREATE TABLE alarm_history (
    alarm_id   uuid        NOT NULL,
    version    bigint      NOT NULL,
    event_type text        NOT NULL,
    payload    jsonb       NOT NULL,
    position   bigint      NOT NULL,
    at         timestamptz NOT NULL,
    PRIMARY KEY (alarm_id, version)
);

GRANT SELECT, INSERT, UPDATE, DELETE ON alarms, alarm_history TO mc_app;
