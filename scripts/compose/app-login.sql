-- docker-compose: the login `serve` uses, in mc_app (no DDL, append-only archive). Run once by the
-- postgres image when its data directory is created (/docker-entrypoint-initdb.d); the
-- migrations, run as `postgres` (MC_MIGRATOR_DATABASE_URL), grant mc_app what it needs.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'mc_app') THEN
        CREATE ROLE mc_app NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'mission_control_app') THEN
        CREATE ROLE mission_control_app LOGIN PASSWORD 'mission_control_app' IN ROLE mc_app;
    END IF;
END
$$;
