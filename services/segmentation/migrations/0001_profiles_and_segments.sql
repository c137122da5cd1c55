-- One row per known user: typed attributes (one-key JSON objects, see nudgelib.protoconv),
-- time zone, locale and activity facts derived from events.
CREATE TABLE profiles (
    app_id      text NOT NULL,
    user_id     text NOT NULL,
    attributes  jsonb NOT NULL DEFAULT '{}',
    time_zone   text NOT NULL DEFAULT '',
    locale      text NOT NULL DEFAULT '',
    first_seen  timestamptz,
    last_seen   timestamptz,
    platforms   smallint[] NOT NULL DEFAULT '{}',
    app_version text NOT NULL DEFAULT '',
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (app_id, user_id)
);

-- Per user, event name and UTC day: how many, first and last time. Event conditions over
-- windows read these instead of raw events.
CREATE TABLE event_counts (
    app_id   text NOT NULL,
    user_id  text NOT NULL,
    name     text NOT NULL,
    day      date NOT NULL,
    count    integer NOT NULL,
    first_at timestamptz NOT NULL,
    last_at  timestamptz NOT NULL,
    PRIMARY KEY (app_id, user_id, name, day)
);

-- What has been applied, so redelivery by the outbox has no second effect.
CREATE TABLE applied_events (
    app_id     text NOT NULL,
    event_id   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (app_id, event_id)
);

CREATE TABLE applied_updates (
    app_id     text NOT NULL,
    update_id  text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (app_id, update_id)
);

CREATE TABLE segments (
    app_id      text NOT NULL,
    id          text NOT NULL,
    name        text NOT NULL,
    description text NOT NULL DEFAULT '',
    rule        bytea NOT NULL,
    version     integer NOT NULL DEFAULT 1,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (app_id, id)
);

-- Every version of every rule, for audit.
CREATE TABLE segment_versions (
    app_id     text NOT NULL,
    id         text NOT NULL,
    version    integer NOT NULL,
    rule       bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (app_id, id, version)
);
