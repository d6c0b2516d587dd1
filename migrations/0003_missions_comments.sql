-- Missions read model. Deleted missions are removed here; their history stays in `events`.
CREATE TABLE missions (
    id          uuid        PRIMARY KEY,
    title       text        NOT NULL,
    description text        NOT NULL,
    status      text        NOT NULL,
    priority    text        NOT NULL,
    progress    smallint    NOT NULL,
    agent_id    uuid,
    metadata    jsonb       NOT NULL,
    version     bigint      NOT NULL,
    position    bigint      NOT NULL,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL
);

-- Keyset pagination is by id (uuid v7: creation order); one index per filter.
CREATE INDEX missions_status_id ON missions (status, id);
CREATE INDEX missions_priority_id ON missions (priority, id);
CREATE INDEX missions_agent_id ON missions (agent_id, id) WHERE agent_id IS NOT NULL;

-- Comments read model.
CREATE TABLE comments (
    id          uuid        PRIMARY KEY,
    content     text        NOT NULL,
    type        text        NOT NULL,
    agent_id    uuid,
    mission_id  uuid,
    metadata    jsonb       NOT NULL,
    version     bigint      NOT NULL,
    position    bigint      NOT NULL,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL
);

CREATE INDEX comments_agent_id ON comments (agent_id, id) WHERE agent_id IS NOT NULL;
CREATE INDEX comments_mission_id ON comments (mission_id, id) WHERE mission_id IS NOT NULL;
CREATE INDEX comments_type_id ON comments (type, id);

-- Agent status process manager: what it knows of each mission (status and assigned agent).
-- A mission is active for its agent while IN_PROGRESS.
CREATE TABLE pm_agent_status_missions (
    mission_id uuid PRIMARY KEY,
    status     text NOT NULL,
    agent_id   uuid
);
CREATE INDEX pm_agent_status_active ON pm_agent_status_missions (agent_id) WHERE status = 'IN_PROGRESS';
