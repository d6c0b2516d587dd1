-- Positions up to `replay_until` are history a projection replays (first run, rebuild):
-- process managers rebuild their state there without side effects.
ALTER TABLE projection_checkpoints ADD COLUMN replay_until bigint NOT NULL DEFAULT 0;
