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

-- Creates the day partition holding `day` if it is missing. SECURITY DEFINER so the
-- application role (mc_app), which does not own the table, can call it.
CREATE FUNCTION mc_telemetry_partition(day date) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
DECLARE
    part text := format('telemetry_frames_%s', to_char(day, 'YYYYMMDD'));
BEGIN
    IF to_regclass(part) IS NOT NULL THEN
        RETURN;
    END IF;
    EXECUTE format(
        'CREATE TABLE IF NOT EXISTS %I PARTITION OF telemetry_frames FOR VALUES FROM (%L) TO (%L)',
        part,
        to_char(day, 'YYYY-MM-DD') || ' 00:00:00+00',
        to_char(day + 1, 'YYYY-MM-DD') || ' 00:00:00+00');
EXCEPTION WHEN duplicate_table OR unique_violation THEN
    -- Another consumer created it at the same moment.
    NULL;
END;
$$;

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
);

CREATE TABLE telemetry_evaluator (
    spacecraft_id text    NOT NULL,
    parameter     text    NOT NULL,
    level         text    NULL,      -- WARNING, CRITICAL or NULL (normal)
    run           integer NOT NULL,  -- consecutive violations while normal
    PRIMARY KEY (spacecraft_id, parameter)
);

GRANT SELECT, INSERT, UPDATE, DELETE ON telemetry_frames, telemetry_latest, telemetry_rollups, telemetry_evaluator TO mc_app;
GRANT EXECUTE ON FUNCTION mc_telemetry_partition(date) TO mc_app;
