-- A request_id is replayed only for the same request: the sha256 of the request without its
-- id (nudgelib.replay). Rows from before have none and replay as they did. Ids are kept for
-- NUDGE_SEGMENTATION_REQUEST_ID_WINDOW_HOURS, then pruned by time (BRIN: written in time order).
ALTER TABLE segment_requests ADD COLUMN fingerprint bytea NOT NULL DEFAULT ''::bytea;
CREATE INDEX segment_requests_by_time ON segment_requests USING brin (created_at);
