-- Retention of raw telemetry: drop the day partitions of raw frames and 1 s rollups that end
-- before `cutoff` (1 min and 1 h rollups are kept). SECURITY DEFINER so the application role
-- (mc_app), which does not own the tables, can call it. Returns the partitions dropped.
CREATE FUNCTION mc_telemetry_drop_before(cutoff date) RETURNS SETOF text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
DECLARE
    part record;
BEGIN
    FOR part IN
        SELECT c.relname
        FROM pg_inherits i
        JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent IN ('telemetry_frames'::regclass, 'telemetry_rollups_1s'::regclass)
          AND c.relname ~ '_[0-9]{8}$'
          AND to_date(right(c.relname, 8), 'YYYYMMDD') < cutoff
        ORDER BY c.relname
    LOOP
        EXECUTE format('DROP TABLE IF EXISTS %I', part.relname);
        RETURN NEXT part.relname;
    END LOOP;
END;
$$;

GRANT EXECUTE ON FUNCTION mc_telemetry_drop_before(date) TO mc_app;
