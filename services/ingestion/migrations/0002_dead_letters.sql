-- Items a consumer failed on, alone, NUDGE_DEAD_LETTER_AFTER_ATTEMPTS times (INVALID_ARGUMENT,
-- INTERNAL, UNKNOWN…; never a consumer that is down, whose items wait for it), set aside with
-- its last error so that their lane, their app and their user's later items go on
-- (nudgelib.isolation). One row per item, in the outbox's own shape, so an operator replays
-- one by moving it back:
--   WITH back AS (DELETE FROM ingestion.dead_letters WHERE id = any('{…}') RETURNING *)
--   INSERT INTO ingestion.outbox (consumer, lane, app_id, kind, items, user_ids, payload)
--   SELECT consumer, lane, app_id, kind, items, user_ids, payload FROM back ORDER BY id;
-- (it is then forwarded after the user's items already queued). Erasing a user removes
-- their dead letters too.
CREATE TABLE dead_letters (
    id         bigserial PRIMARY KEY,
    consumer   text NOT NULL,
    lane       smallint NOT NULL,
    app_id     text NOT NULL,
    kind       text NOT NULL,
    items      integer NOT NULL,
    user_ids   text[] NOT NULL,
    payload    bytea NOT NULL,
    created_at timestamptz NOT NULL,           -- when it was accepted
    error      text NOT NULL,                  -- the consumer's last answer
    attempts   integer NOT NULL,
    dead_at    timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX dead_letters_lane_idx ON dead_letters (consumer, lane, app_id);

-- Rows refused before this table existed were kept in the outbox under the consumer
-- 'dead-letter:<consumer>' (a whole row, possibly several items): they move here as they are.
WITH old AS (DELETE FROM outbox WHERE consumer LIKE 'dead-letter:%' RETURNING *)
INSERT INTO dead_letters (consumer, lane, app_id, kind, items, user_ids, payload, created_at, error, attempts)
SELECT substr(consumer, length('dead-letter:') + 1), lane, app_id, kind, items, user_ids, payload, created_at,
       'INVALID_ARGUMENT (refused before dead letters had their own table)', 1
FROM old;
