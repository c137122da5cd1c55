-- Operator-chosen keys (Segment.key): unique among an app's segments. '' means none.
ALTER TABLE segments ADD COLUMN key text NOT NULL DEFAULT '';

CREATE UNIQUE INDEX segments_key_idx ON segments (app_id, key) WHERE key <> '';
