-- The event archive: every event of MC_EVENTS, keyed by its stream sequence (position)
-- and its index inside the commit. Written only by the archive projection.
CREATE TABLE events (
    position          bigint      NOT NULL,
    event_index       integer     NOT NULL,
    event_id          uuid        NOT NULL UNIQUE,
    aggregate_type    text        NOT NULL,
    aggregate_id      text        NOT NULL,
    aggregate_version bigint      NOT NULL,
    event_type        text        NOT NULL,
    schema_version    integer     NOT NULL,
    payload           jsonb       NOT NULL,
    metadata          jsonb       NOT NULL,
    command_id        uuid        NOT NULL,
    occurred_at       timestamptz NOT NULL,
    recorded_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (position, event_index),
    UNIQUE (command_id, event_index),
    UNIQUE (aggregate_type, aggregate_id, aggregate_version)
);

CREATE INDEX events_by_type ON events (event_type, position);

-- One row per projection: the last stream sequence applied, written in the same
-- transaction as the read model changes.
CREATE TABLE projection_checkpoints (
    name       text        PRIMARY KEY,
    position   bigint      NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
