-- Agents read model. Removed agents are deleted here; their history stays in `events`.
CREATE TABLE agents (
    id           uuid        PRIMARY KEY,
    name         text        NOT NULL,
    description  text        NOT NULL,
    capabilities jsonb       NOT NULL,
    metadata     jsonb       NOT NULL,
    status       text        NOT NULL,
    version      bigint      NOT NULL,
    position     bigint      NOT NULL,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL
);

-- Keyset pagination is by id (uuid v7: creation order); the status filter uses this index.
CREATE INDEX agents_status_id ON agents (status, id);
