-- Every message handed to a client (or queued for one), with its content as shown.
CREATE TABLE messages (
    app_id           text NOT NULL,
    message_id       text NOT NULL,
    user_id          text NOT NULL,
    campaign_id      text NOT NULL,
    campaign_version integer NOT NULL,
    variant_id       text NOT NULL,
    locale           text NOT NULL DEFAULT '',
    content          bytea NOT NULL,
    created_at       timestamptz NOT NULL,
    expire_at        timestamptz NOT NULL,
    delivered_at     timestamptz,
    PRIMARY KEY (app_id, message_id)
);

CREATE INDEX messages_user_idx ON messages (app_id, user_id, created_at);
CREATE INDEX messages_campaign_idx ON messages (app_id, campaign_id, created_at);

-- What users did with messages. One row per (message, type, button): reports are idempotent.
CREATE TABLE interactions (
    app_id      text NOT NULL,
    message_id  text NOT NULL,
    type        smallint NOT NULL,
    button_id   text NOT NULL DEFAULT '',
    answers     bytea,
    occurred_at timestamptz NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (app_id, message_id, type, button_id),
    FOREIGN KEY (app_id, message_id) REFERENCES messages (app_id, message_id) ON DELETE CASCADE
);
