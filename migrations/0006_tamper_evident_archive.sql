-- Tamper-evident archive: every row carries hash = sha256(previous hash || canonical bytes of
-- the event); see projections/src/archive.rs. The archive is re-projected from the log of
-- record (MC_EVENTS) so that every row has its hash.
TRUNCATE events;
DELETE FROM projection_checkpoints WHERE name = 'archive';
ALTER TABLE events ADD COLUMN hash bytea NOT NULL;

-- Append-only, for every role: updates, deletes and truncation are refused.
CREATE FUNCTION events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the event archive is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER events_no_update_or_delete BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_append_only();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_append_only();

-- Roles. `mc_migrator` owns the schema (run `mission-control migrate` as a member of it);
-- `mc_app` is what `serve` needs: read everything, append to the archive, write read models.
-- Roles are cluster-wide; creating them is idempotent and safe when run concurrently.
DO $$
BEGIN
    BEGIN
        CREATE ROLE mc_app NOLOGIN;
    EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
    END;
    BEGIN
        CREATE ROLE mc_migrator NOLOGIN;
    EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
    END;
END
$$;

GRANT USAGE ON SCHEMA public TO mc_app;
GRANT SELECT, INSERT ON events TO mc_app;
GRANT SELECT ON _sqlx_migrations TO mc_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON
    projection_checkpoints, event_log_identity, agents, missions, comments,
    pm_agent_status_missions
    TO mc_app;
