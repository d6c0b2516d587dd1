-- Events a projection could not apply: recorded, never skipped silently. `skipped` says
-- whether the projection was configured to go on past it (MC_SKIP_POISON) or stopped there.
CREATE TABLE projection_failures (
    projection  text        NOT NULL,
    position    bigint      NOT NULL,
    error       text        NOT NULL,
    skipped     boolean     NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (projection, position)
);
GRANT SELECT, INSERT, UPDATE ON projection_failures TO mc_app;
