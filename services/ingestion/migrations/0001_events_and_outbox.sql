-- Events as accepted, partitioned by the UTC day they were received. Daily partitions
-- (events_pYYYYMMDD) are created ahead and dropped after the retention by the service itself
-- (services/ingestion/partitions.py); there is no default partition on purpose: an event
-- must never land where retention cannot reach it.
CREATE TABLE events (
    app_id      text NOT NULL,
    event_id    text NOT NULL,
    user_id     text NOT NULL,
    name        text NOT NULL,
    occurred_at timestamptz NOT NULL,
    received_at timestamptz NOT NULL,
    -- The whole event (properties, platform, app version, session) as the serialized
    -- nudge.common.v1.Event it was forwarded as: storing it costs no JSON encoding on the
    -- hot path, and the columns above are what retention, erasure and operators look up.
    payload     bytea NOT NULL
) PARTITION BY RANGE (received_at);

-- Erasure and per-user lookups (with app_id as a filter); inherited by every partition. A
-- hash index: equality is all it serves, and it costs inserts less than a btree on text.
CREATE INDEX events_user_idx ON events USING hash (user_id);

-- Deduplication across partitions and restarts: one 16-byte key per (app, event_id), the
-- MD5 of `app_id || U+001F || event_id` as a uuid (fixed width, cheap to index; the producer's
-- id is not kept in readable form once the event is erased), forgotten after the dedupe
-- retention. Not partitioned, because a unique key must hold across all days.
CREATE TABLE event_keys (
    key         uuid PRIMARY KEY,
    received_at timestamptz NOT NULL
);

CREATE INDEX event_keys_received_idx ON event_keys (received_at);

-- Transactional outbox: written in the same statement as the events, one row per consumer,
-- lane and batch, holding the lane's items already framed for the consumer call. A lane is
-- drained by one loop at a time (advisory lock), in id order; a row is deleted once its
-- consumer has acknowledged it. Rows a consumer refused as invalid move to the consumer
-- 'dead-letter:<consumer>' and wait there for an operator.
CREATE TABLE outbox (
    id         bigserial,
    consumer   text NOT NULL,
    lane       smallint NOT NULL,
    app_id     text NOT NULL,
    kind       text NOT NULL,          -- 'event' | 'profile'
    items      integer NOT NULL,
    user_ids   text[] NOT NULL,        -- distinct users in the payload, for erasure
    payload    bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, id)
) WITH (
    -- A queue: rows live seconds. Vacuum it eagerly, and keep payloads up to a page inline
    -- and uncompressed (they are protobuf, compressing them costs CPU for little).
    autovacuum_vacuum_scale_factor = 0.01,
    autovacuum_vacuum_cost_delay = 0,
    toast_tuple_target = 8160
);
ALTER TABLE outbox ALTER COLUMN payload SET STORAGE EXTERNAL;

-- A dispatch loop reads each claimed lane from its oldest row; erasure finds a user's lane.
CREATE INDEX outbox_lane_idx ON outbox (consumer, lane, id) INCLUDE (items);

-- The header of one length-delimited field-2 record of `len` bytes (tag 0x12, then the
-- length as a protobuf varint; events are at most 32 KiB, so at most 3 varint bytes). The
-- outbox stores events framed this way (see services/ingestion/framing.py).
CREATE FUNCTION pb_item_header(len integer) RETURNS bytea
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN len < 128 THEN set_byte('\x1200'::bytea, 1, len)
        WHEN len < 16384 THEN set_byte(set_byte('\x120000'::bytea, 1, (len & 127) | 128), 2, len >> 7)
        ELSE set_byte(set_byte(set_byte('\x12000000'::bytea, 1, (len & 127) | 128),
                               2, ((len >> 7) & 127) | 128), 3, len >> 14)
    END
$$;
