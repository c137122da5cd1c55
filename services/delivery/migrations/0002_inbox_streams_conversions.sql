-- The inbox: triggered messages wait here (status 'pending') until a client is handed them
-- ('delivered'), they expire ('expired') or decision says they never can go ('dropped').
-- Control-group exposures are rows with status 'control' and no content.
ALTER TABLE messages ADD COLUMN status text NOT NULL DEFAULT 'delivered';
ALTER TABLE messages ADD COLUMN triggered boolean NOT NULL DEFAULT false;
ALTER TABLE messages ADD COLUMN event_properties bytea;
ALTER TABLE messages ADD COLUMN conversion_events text[] NOT NULL DEFAULT '{}';
ALTER TABLE messages ADD COLUMN conversion_deadline interval;
ALTER TABLE messages ADD COLUMN delivered_via text NOT NULL DEFAULT '';
ALTER TABLE messages ALTER COLUMN delivered_at DROP NOT NULL;

CREATE INDEX messages_inbox_idx ON messages (app_id, user_id, created_at) WHERE status = 'pending';
CREATE INDEX messages_delivered_idx ON messages (app_id, user_id, delivered_at, message_id)
    WHERE status = 'delivered';
CREATE INDEX messages_conversion_idx ON messages (app_id, user_id)
    WHERE cardinality(conversion_events) > 0 AND status IN ('delivered', 'control');

-- One conversion per message (or control exposure) at most.
CREATE TABLE conversions (
    app_id       text NOT NULL,
    message_id   text NOT NULL,
    campaign_id  text NOT NULL,
    variant_id   text NOT NULL,
    event_id     text NOT NULL,
    converted_at timestamptz NOT NULL,
    PRIMARY KEY (app_id, message_id),
    FOREIGN KEY (app_id, message_id) REFERENCES messages (app_id, message_id) ON DELETE CASCADE
);

-- Interaction events (message_clicked, …) on their way to ingestion, written with the
-- interaction in one transaction so none is lost while ingestion is down.
-- Sharded by user (nudgelib.ordered_outbox), so a user's events keep their order.
CREATE TABLE event_outbox (
    id         bigserial PRIMARY KEY,
    shard      integer NOT NULL,
    app_id     text NOT NULL,
    kind       text NOT NULL DEFAULT 'event',
    user_id    text NOT NULL,
    payload    bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX event_outbox_shard_idx ON event_outbox (shard, id);
