-- Fleet metrics (the `fleet` projection): per-agent rows, missions and runs by agent, alarms
-- as the health score counts them, metric evaluator state, 1-minute series with hourly
-- rollups; and heartbeats, which are not events (written by the liveness flusher only).

CREATE TABLE fleet_system (
    id                smallint PRIMARY KEY CHECK (id = 1),
    clock             timestamptz NOT NULL,
    events            bigint NOT NULL,
    agents            jsonb  NOT NULL,
    missions          jsonb  NOT NULL,
    runs              jsonb  NOT NULL,
    runs_cancelled    bigint NOT NULL,
    alarms_critical   bigint NOT NULL,
    alarms_warning    bigint NOT NULL,
    limits            jsonb  NOT NULL,
    recent            jsonb  NOT NULL
);

CREATE TABLE fleet_agents (
    agent_id       uuid PRIMARY KEY,
    name           text NOT NULL,
    status         text NOT NULL,
    status_since   timestamptz NOT NULL,
    registered_at  timestamptz NOT NULL,
    removed        boolean NOT NULL,
    last_activity  timestamptz NOT NULL,
    missions       jsonb  NOT NULL,
    runs           jsonb  NOT NULL,
    timed          bigint NOT NULL,
    duration_ms    bigint NOT NULL,
    work_ms        bigint NOT NULL,
    idle_ms        bigint NOT NULL,
    comments       bigint NOT NULL
);
CREATE INDEX fleet_agents_liveness ON fleet_agents (status) WHERE NOT removed;

CREATE TABLE fleet_work (
    kind      text NOT NULL,
    id        uuid NOT NULL,
    agent_id  uuid NULL,
    stage     text NOT NULL,
    since     timestamptz NULL,
    PRIMARY KEY (kind, id)
);

CREATE TABLE fleet_alarms (
    alarm_id  uuid PRIMARY KEY,
    severity  text NULL,
    counted   boolean NOT NULL
);

CREATE TABLE fleet_params (
    source  text NOT NULL,
    metric  text NOT NULL,
    level   text NULL,
    run     integer NOT NULL,
    PRIMARY KEY (source, metric)
);

CREATE TABLE fleet_agent_series (
    agent_id    uuid NOT NULL,
    resolution  text NOT NULL CHECK (resolution IN ('minute', 'hour')),
    at          timestamptz NOT NULL,
    completed   bigint NOT NULL,
    failed      bigint NOT NULL,
    comments    bigint NOT NULL,
    work_ms     bigint NOT NULL,
    idle_ms     bigint NOT NULL,
    events      bigint NOT NULL,
    PRIMARY KEY (agent_id, resolution, at)
);

CREATE TABLE fleet_system_series (
    resolution  text NOT NULL CHECK (resolution IN ('minute', 'hour')),
    at          timestamptz NOT NULL,
    events      bigint NOT NULL,
    completed   bigint NOT NULL,
    failed      bigint NOT NULL,
    gauges      jsonb  NOT NULL,
    health_min  smallint NOT NULL,
    PRIMARY KEY (resolution, at)
);

GRANT SELECT, INSERT, UPDATE, DELETE ON fleet_system, fleet_agents, fleet_work, fleet_alarms,
    fleet_params, fleet_agent_series, fleet_system_series TO mc_app;

CREATE TABLE agent_heartbeats (
    agent_id  uuid PRIMARY KEY,
    at        timestamptz NOT NULL
);
GRANT SELECT, INSERT, UPDATE, DELETE ON agent_heartbeats TO mc_app;
CALL mc_hand_over();
