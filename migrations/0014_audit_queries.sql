-- Audit queries (`GET /api/v1/events`): one index per filter, each ending in the archive's
-- order (position, event_index) so a filtered page is an index range scan and keyset
-- pagination continues where the last page ended.
CREATE INDEX events_by_aggregate ON events (aggregate_type, aggregate_id, position, event_index);
CREATE INDEX events_by_actor ON events ((metadata ->> 'actor'), position, event_index);
CREATE INDEX events_by_time ON events (occurred_at, position, event_index);

CALL mc_hand_over();
