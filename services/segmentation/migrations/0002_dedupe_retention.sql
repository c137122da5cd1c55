-- Applied ids are deleted once past NUDGE_SEGMENTATION_DEDUPE_RETENTION_DAYS. They are written
-- in time order, so a BRIN index finds the old ones for next to nothing per insert.
CREATE INDEX applied_events_by_time ON applied_events USING brin (applied_at);
CREATE INDEX applied_updates_by_time ON applied_updates USING brin (applied_at);
