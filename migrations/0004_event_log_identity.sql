-- Which event log this database mirrors: the MC_EVENTS stream name and creation time.
-- Checkpoints are stream sequences, so they only make sense against that one stream; a
-- database paired with another stream (a fresh NATS store) must not be projected into.
CREATE TABLE event_log_identity (
    stream     text PRIMARY KEY,
    identity   text NOT NULL,
    first_seen timestamptz NOT NULL DEFAULT now()
);
