-- Telemetry read models: raw snapshots (one row per snapshot, parameters as jsonb, partitioned
-- by day), the latest value of every parameter, rollups at 1 s / 1 min / 1 h, and the anomaly
-- evaluator's per-parameter state. All are written by the MC_TELEMETRY consumers in the same
-- transaction as their checkpoint.
CREATE TABLE telemetry_frames (
    spacecraft_id text        NOT NULL,
    ts            timestamptz NOT NULL,
    position      bigint      NOT NULL,   -- MC_TELEMETRY stream sequence
    idx           integer     NOT NULL,   -- snapshot index inside the message
    parameters    jsonb       NOT NULL
) PARTITION BY RANGE (ts);
-- Unique, so a snapshot stored twice aborts its batch instead of being counted twice.
CREATE UNIQUE INDEX telemetry_frames_key ON telemetry_frames (spacecraft_id, ts DESC, position DESC, idx DESC);

CREATE TABLE telemetry_latest (
    spacecraft_id text        NOT NULL,
    parameter     text        NOT NULL,
    ts            timestamptz NOT NULL,
    value         jsonb       NOT NULL,
    position      bigint      NOT NULL,
    PRIMARY KEY (spacecraft_id, parameter)
);

-- Numeric and boolean (as 0/1) samples only; avg = sum / count.
CREATE TABLE telemetry_rollups (
    spacecraft_id    text             NOT NULL,
    parameter        text             NOT NULL,
    interval_seconds integer          NOT NULL CHECK (interval_seconds IN (1, 60, 3600)),
    bucket           timestamptz      NOT NULL,
    count            bigint           NOT NULL,
    sum              double precision NOT NULL,
    min              double precision NOT NULL,
    max              double precision NOT NULL,
    first            double precision NOT NULL,
    first_at         timestamptz      NOT NULL,
    last             double precision NOT NULL,
    last_at          timestamptz      NOT NULL,
    PRIMARY KEY (spacecraft_id, parameter, interval_seconds, bucket)
) PARTITION BY LIST (interval_seconds);
CREATE TABLE telemetry_rollups_1m PARTITION OF telemetry_rollups FOR VALUES IN (60);
CREATE TABLE telemetry_rollups_1h PARTITION OF telemetry_rollups FOR VALUES IN (3600);
-- 1 s rollups have a row per parameter and second: partitioned by day like the raw frames, so
-- retention drops whole days.
CREATE TABLE telemetry_rollups_1s PARTITION OF telemetry_rollups FOR VALUES IN (1) PARTITION BY RANGE (bucket);

-- Creates the day partitions holding `day` (raw frames and 1 s rollups) if they are missing.
-- SECURITY DEFINER so the application role (mc_app), which does not own the tables, can call it.
CREATE FUNCTION mc_telemetry_partition(day date) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
DECLARE
    suffix text := to_char(day, 'YYYYMMDD');
    low text := to_char(day, 'YYYY-MM-DD') || ' 00:00:00+00';
    high text := to_char(day + 1, 'YYYY-MM-DD') || ' 00:00:00+00';
BEGIN
    IF to_regclass('telemetry_frames_' || suffix) IS NULL THEN
        BEGIN
            EXECUTE format('CREATE TABLE IF NOT EXISTS %I PARTITION OF telemetry_frames FOR VALUES FROM (%L) TO (%L)',
                'telemetry_frames_' || suffix, low, high);
        EXCEPTION WHEN duplicate_table OR unique_violation THEN
            NULL; -- another consumer created it at the same moment
        END;
    END IF;
    IF to_regclass('telemetry_rollups_1s_' || suffix) IS NULL THEN
        BEGIN
            EXECUTE format('CREATE TABLE IF NOT EXISTS %I PARTITION OF telemetry_rollups_1s FOR VALUES FROM (%L) TO (%L)',
                'telemetry_rollups_1s_' || suffix, low, high);
        EXCEPTION WHEN duplicate_table OR unique_violation THEN
            NULL;
        END;
    END IF;
END;
$$;

CREATE TABLE telemetry_evaluator (
    spacecraft_id text    NOT NULL,
    parameter     text    NOT NULL,
    level         text    NULL,      -- WARNING, CRITICAL or NULL (normal)
    run           integer NOT NULL,  -- consecutive violations while normal
    PRIMARY KEY (spacecraft_id, parameter)
);

GRANT SELECT, INSERT, UPDATE, DELETE ON telemetry_frames, telemetry_latest, telemetry_rollups, telemetry_evaluator TO mc_app;
GRANT EXECUTE ON FUNCTION mc_telemetry_partition(date) TO mc_app;
