-- The event store becomes the log its consumers read (nudgelib.eventlog): no outbox copy per
-- consumer any more. Each stored item (an event, or an Identify's profile update) carries its
-- lane (users hash into 16) and its position in the lane: the writing transaction's id times
-- 2^20 plus the item's place in its batch. Each consumer's reader keeps a cursor per lane in
-- `log_cursors`; see nudgelib/eventlog/horizon.py for why no committed item is ever passed over.

-- Undelivered outbox rows cannot be carried over as positions (they hold framed batches, and
-- the consumers' old applied-id tables are gone after this release): let the previous release
-- drain them first (nudge_ingestion_outbox_backlog at 0) rather than lose or repeat them.
DO $$
DECLARE waiting bigint;
BEGIN
    SELECT coalesce(sum(items), 0) INTO waiting FROM outbox;
    IF waiting > 0 THEN
        RAISE EXCEPTION 'ingestion.outbox still holds % undelivered items: run the previous release until '
                        'nudge_ingestion_outbox_backlog is 0 for every consumer, then upgrade', waiting;
    END IF;
END $$;

DROP TABLE outbox;
DROP FUNCTION pb_item_header(integer);

-- 0: an event (payload: nudge.common.v1.Event), 1: a profile update (payload:
-- nudge.segmentation.v1.ProfileUpdate, `name` empty, `event_id` its update id).
ALTER TABLE events ADD COLUMN kind smallint NOT NULL DEFAULT 0;
-- Items stored before the log existed are lane 0, position 0: below every cursor, never read
-- again by a consumer (they were forwarded through the outbox).
ALTER TABLE events ADD COLUMN lane smallint NOT NULL DEFAULT 0;
ALTER TABLE events ADD COLUMN position bigint NOT NULL DEFAULT 0;

-- A reader takes each lane from its cursor in position order.
CREATE INDEX events_lane_position_idx ON events (lane, position);

-- Per consumer and lane: the position of the last item the consumer has taken (or set aside).
-- Starts after everything already stored.
CREATE TABLE log_cursors (
    consumer text NOT NULL,
    lane     smallint NOT NULL,
    position bigint NOT NULL,
    PRIMARY KEY (consumer, lane)
);

INSERT INTO log_cursors (consumer, lane, position)
SELECT c, l, pg_current_xact_id()::text::bigint * 1048576
FROM unnest(ARRAY['segmentation', 'decision', 'delivery']) AS c, generate_series(0, 15) AS l;

-- Per consumer, lane and app: an app whose item the consumer refused, held from that item on
-- while every other app's items in the lane pass (the cursor moves on). Its items from
-- `from_position` up to the lane's cursor are retried in order at `next_try`; after
-- `attempts` reaches NUDGE_DEAD_LETTER_AFTER_ATTEMPTS the item at `from_position` is set aside
-- in dead_letters and the rest go on. The row goes when the app has caught up with the cursor.
CREATE TABLE log_holds (
    consumer      text NOT NULL,
    lane          smallint NOT NULL,
    app_id        text NOT NULL,
    from_position bigint NOT NULL,
    attempts      integer NOT NULL,
    next_try      timestamptz NOT NULL,
    error         text NOT NULL,
    since         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, lane, app_id)
);

-- Dead letters are single items now, with their position in the log.
ALTER TABLE dead_letters ADD COLUMN position bigint;
