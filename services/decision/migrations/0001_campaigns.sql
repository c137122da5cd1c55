-- The current version of each campaign; `definition` is the serialized Campaign proto.
CREATE TABLE campaigns (
    app_id     text NOT NULL,
    id         text NOT NULL,
    version    integer NOT NULL,
    name       text NOT NULL,
    status     smallint NOT NULL,
    definition bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (app_id, id)
);

CREATE INDEX campaigns_status_idx ON campaigns (app_id, status);

-- Every version ever saved; messages name the version they came from.
CREATE TABLE campaign_versions (
    app_id     text NOT NULL,
    id         text NOT NULL,
    version    integer NOT NULL,
    definition bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (app_id, id, version)
);

CREATE TABLE app_settings (
    app_id     text PRIMARY KEY,
    settings   bytea NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Messages handed to clients: what frequency caps count.
CREATE TABLE deliveries (
    app_id       text NOT NULL,
    user_id      text NOT NULL,
    message_id   text NOT NULL,
    campaign_id  text NOT NULL,
    variant_id   text NOT NULL,
    delivered_at timestamptz NOT NULL,
    PRIMARY KEY (app_id, user_id, delivered_at, message_id)
);

-- Events seen from ingestion's outbox, so redelivery has no second effect.
CREATE TABLE applied_events (
    app_id     text NOT NULL,
    event_id   text NOT NULL,
    user_id    text NOT NULL,
    name       text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (app_id, event_id)
);

CREATE INDEX applied_events_user_idx ON applied_events (app_id, user_id);
