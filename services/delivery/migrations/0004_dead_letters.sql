-- Rows of event_outbox that failed on their own NUDGE_DEAD_LETTER_AFTER_ATTEMPTS times (a consumer
-- answering INVALID_ARGUMENT, INTERNAL, UNKNOWN…, never one that is down), moved here with
-- the error by nudgelib.ordered_outbox so that the rest of their shard flows. Kept for an
-- operator: replay one by moving it back (INSERT INTO event_outbox (shard, app_id, user_id, kind,
-- payload) SELECT shard, app_id, user_id, kind, payload FROM event_outbox_dead_letters WHERE …,
-- then DELETE it here); it is then sent after the user's rows already queued.
CREATE TABLE event_outbox_dead_letters (
    id         bigserial PRIMARY KEY,
    source_id  bigint NOT NULL,            -- its id in event_outbox
    shard      integer NOT NULL,
    app_id     text NOT NULL,
    user_id    text NOT NULL,
    kind       text NOT NULL,
    payload    bytea NOT NULL,
    created_at timestamptz NOT NULL,       -- when it was queued
    error      text NOT NULL,              -- the consumer's last answer
    attempts   integer NOT NULL,
    dead_at    timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX event_outbox_dead_letters_by_user ON event_outbox_dead_letters (app_id, user_id);
