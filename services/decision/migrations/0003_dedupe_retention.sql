-- Applied event ids are deleted once past NUDGE_DECISION_DEDUPE_RETENTION_DAYS. They are
-- written in time order, so a BRIN index finds the old ones for next to nothing per insert.
CREATE INDEX applied_events_by_time ON applied_events USING brin (applied_at);
