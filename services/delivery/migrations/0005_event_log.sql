-- Interaction events on their way to ingestion are read by the one log engine
-- (nudgelib.eventlog) rather than the sharded outbox: each row has its lane (users hash into
-- 16) and its position, a reader cursor per lane, holds of failing apps, and dead letters in
-- the engine's shape. Rows are deleted once ingestion has taken them.

-- Queued rows cannot keep their order across the change of lanes: let the previous release
-- send them first (they go within moments while ingestion is up).
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM event_outbox) THEN
        RAISE EXCEPTION 'delivery.event_outbox still holds interaction events: run the previous release until it '
                        'is empty (ingestion up), then upgrade';
    END IF;
END $$;

DROP TABLE event_outbox;

CREATE TABLE event_outbox (
    lane       smallint NOT NULL,
    position   bigint NOT NULL,
    app_id     text NOT NULL,
    user_id    text NOT NULL,
    kind       smallint NOT NULL DEFAULT 0,  -- 0: an event (payload: nudge.common.v1.Event)
    payload    bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
) WITH (
    autovacuum_vacuum_scale_factor = 0.01,
    autovacuum_vacuum_cost_delay = 0
);

CREATE INDEX event_outbox_lane_position ON event_outbox (lane, position);
CREATE INDEX event_outbox_by_user ON event_outbox (app_id, user_id);

CREATE TABLE log_cursors (
    consumer text NOT NULL,
    lane     smallint NOT NULL,
    position bigint NOT NULL,
    PRIMARY KEY (consumer, lane)
);

INSERT INTO log_cursors (consumer, lane, position) SELECT 'ingestion', l, 0 FROM generate_series(0, 15) AS l;

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

-- One row per interaction event ingestion refused NUDGE_DEAD_LETTER_AFTER_ATTEMPTS times in a row.
CREATE TABLE dead_letters (
    id         bigserial PRIMARY KEY,
    consumer   text NOT NULL,
    lane       smallint NOT NULL,
    app_id     text NOT NULL,
    kind       text NOT NULL,
    items      integer NOT NULL,
    user_ids   text[] NOT NULL,
    payload    bytea NOT NULL,
    created_at timestamptz NOT NULL,
    error      text NOT NULL,
    attempts   integer NOT NULL,
    position   bigint,
    dead_at    timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX dead_letters_by_lane ON dead_letters (consumer, lane, app_id);

INSERT INTO dead_letters (consumer, lane, app_id, kind, items, user_ids, payload, created_at, error, attempts,
                          position, dead_at)
SELECT 'ingestion', shard % 16, app_id, 'event', 1, ARRAY[user_id], payload, created_at, error, attempts, source_id,
       dead_at
FROM event_outbox_dead_letters;

DROP TABLE event_outbox_dead_letters;
