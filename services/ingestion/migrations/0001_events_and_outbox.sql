-- Events as accepted, deduplicated on the producer's event_id.
CREATE TABLE events (
    app_id      text NOT NULL,
    event_id    text NOT NULL,
    user_id     text NOT NULL,
    name        text NOT NULL,
    properties  jsonb NOT NULL DEFAULT '{}',
    occurred_at timestamptz NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    platform    smallint NOT NULL DEFAULT 0,
    app_version text NOT NULL DEFAULT '',
    session_id  text NOT NULL DEFAULT '',
    PRIMARY KEY (app_id, event_id)
);

CREATE INDEX events_user_idx ON events (app_id, user_id);

-- Transactional outbox: written in the same transaction as the events, drained to each
-- consumer in id order, deleted once the consumer has acknowledged.
CREATE TABLE outbox (
    id         bigserial PRIMARY KEY,
    app_id     text NOT NULL,
    consumer   text NOT NULL,
    kind       text NOT NULL,
    user_id    text NOT NULL,
    payload    bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX outbox_consumer_idx ON outbox (consumer, id);
CREATE INDEX outbox_user_idx ON outbox (app_id, user_id);
