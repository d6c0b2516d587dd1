-- Spacecraft registry and the history of their limits (each set in force from its
-- effective time, so a sample is judged by the limits in force at its own timestamp).
CREATE TABLE spacecraft (
    id         text        PRIMARY KEY,
    name       text        NOT NULL,
    metadata   jsonb       NOT NULL,
    version    bigint      NOT NULL,
    position   bigint      NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);

CREATE TABLE spacecraft_limits (
    spacecraft_id text        NOT NULL,
    version       bigint      NOT NULL,
    effective_at  timestamptz NOT NULL,
    parameters    jsonb       NOT NULL,
    position      bigint      NOT NULL,
    configured_at timestamptz NOT NULL,
    PRIMARY KEY (spacecraft_id, version)
);
CREATE INDEX spacecraft_limits_in_force ON spacecraft_limits (spacecraft_id, effective_at DESC, version DESC);

GRANT SELECT, INSERT, UPDATE, DELETE ON spacecraft, spacecraft_limits TO mc_app;
