-- Least privilege. `mc_migrator` owns every object of schema public (tables, partitions,
-- sequences, views, functions); `mc_app` keeps exactly the grants earlier migrations gave it;
-- PUBLIC executes no SECURITY DEFINER function (before this, any role could call
-- `mc_telemetry_drop_before` and drop telemetry partitions).
--
-- Run `mission-control migrate` as a superuser, or as the database owner with CREATEROLE (it
-- makes itself a member of mc_migrator: handing objects over needs that). A migration that
-- creates objects ends with `CALL mc_hand_over();` (tests/e2e/roles.rs checks that nothing is
-- left behind).

-- Roles are cluster-wide: a database restored into a new cluster may not find them.
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
    IF NOT pg_has_role(current_user, 'mc_migrator', 'USAGE') THEN
        EXECUTE format('GRANT mc_migrator TO %I', current_user);
    END IF;
END
$$;

-- The owner creates in public: the day partitions its SECURITY DEFINER function
-- `mc_telemetry_partition` makes run as mc_migrator. Nobody else creates there (PostgreSQL 15
-- already refuses PUBLIC; older clusters granted it).
GRANT USAGE, CREATE ON SCHEMA public TO mc_migrator;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;

-- Hands every object of schema public that mc_migrator does not own yet to it, and takes EXECUTE
-- on SECURITY DEFINER functions away from PUBLIC (grant it by name to the roles that need it).
-- SECURITY INVOKER: the caller needs the rights (superuser, or owner and member of mc_migrator).
CREATE PROCEDURE mc_hand_over() LANGUAGE plpgsql SET search_path = public AS $$
DECLARE
    obj record;
BEGIN
    -- Tables first: their indexes, row types and owned (serial/identity) sequences follow.
    FOR obj IN
        SELECT c.oid::regclass AS name,
               CASE c.relkind
                   WHEN 'v' THEN 'VIEW'
                   WHEN 'm' THEN 'MATERIALIZED VIEW'
                   WHEN 'S' THEN 'SEQUENCE'
                   WHEN 'f' THEN 'FOREIGN TABLE'
                   ELSE 'TABLE'
               END AS kind
        FROM pg_class c
        WHERE c.relnamespace = 'public'::regnamespace
          AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
          AND c.relowner <> 'mc_migrator'::regrole
          AND NOT (c.relkind = 'S' AND EXISTS (  -- sequences of a column follow their table
              SELECT 1 FROM pg_depend d
              WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')))
          AND NOT EXISTS (  -- objects of extensions stay theirs
              SELECT 1 FROM pg_depend d
              WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
        ORDER BY c.relkind = 'S', c.oid
    LOOP
        EXECUTE format('ALTER %s %s OWNER TO mc_migrator', obj.kind, obj.name);
    END LOOP;
    FOR obj IN
        SELECT p.oid::regprocedure AS name
        FROM pg_proc p
        WHERE p.pronamespace = 'public'::regnamespace
          AND p.proowner <> 'mc_migrator'::regrole
          AND NOT EXISTS (
              SELECT 1 FROM pg_depend d
              WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')
    LOOP
        EXECUTE format('ALTER ROUTINE %s OWNER TO mc_migrator', obj.name);
    END LOOP;
    FOR obj IN
        SELECT p.oid::regprocedure AS name
        FROM pg_proc p
        WHERE p.pronamespace = 'public'::regnamespace AND p.prosecdef
    LOOP
        EXECUTE format('REVOKE EXECUTE ON ROUTINE %s FROM PUBLIC', obj.name);
    END LOOP;
END;
$$;
REVOKE EXECUTE ON PROCEDURE mc_hand_over() FROM PUBLIC;

-- Routines mc_migrator creates later are not executable by PUBLIC either.
ALTER DEFAULT PRIVILEGES FOR ROLE mc_migrator REVOKE EXECUTE ON ROUTINES FROM PUBLIC;

CALL mc_hand_over();

-- Who may call the SECURITY DEFINER functions: the application (creating day partitions as
-- telemetry arrives, retention). The owner may anyway.
GRANT EXECUTE ON FUNCTION mc_telemetry_partition(date) TO mc_app;
GRANT EXECUTE ON FUNCTION mc_telemetry_drop_before(date) TO mc_app;
