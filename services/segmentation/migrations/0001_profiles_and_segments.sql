-- Segmentation's schema. Every per-user table is keyed by (app_id, user_id) first, so it can
-- be distributed by user.

-- One row per known user: typed attributes (one-key JSON objects, see nudgelib.protoconv),
-- time zone, locale and activity facts derived from events.
CREATE TABLE profiles (
    app_id            text NOT NULL,
    user_id           text NOT NULL,
    attributes        jsonb NOT NULL DEFAULT '{}',
    time_zone         text NOT NULL DEFAULT '',
    locale            text NOT NULL DEFAULT '',
    first_seen        timestamptz,
    last_seen         timestamptz,
    platforms         smallint[] NOT NULL DEFAULT '{}',
    app_version       text NOT NULL DEFAULT '',
    -- app_version as numbers (4.10.0 -> {4,10,0}) so SQL compares versions as the rules do;
    -- NULL when it is not dotted numbers.
    app_version_parts integer[],
    app_version_at    timestamptz,
    updated_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (app_id, user_id)
);

-- Each user's stored segment memberships: what decision has been told, diffed against on
-- every change. Narrow and apart from profiles, so recomputing a segment for every user
-- rewrites little.
CREATE TABLE memberships (
    app_id      text NOT NULL,
    user_id     text NOT NULL,
    -- Segments (their per-app `seq`) the user is in, as of the last change to the user or to
    -- the segment rules.
    segments    integer[] NOT NULL DEFAULT '{}',
    -- The first instant at which a membership may change by the passage of time alone; the
    -- sweeper re-evaluates the user then. NULL: none can.
    valid_until timestamptz,
    -- Goes up with every write of the row.
    version     bigint NOT NULL DEFAULT 1,
    PRIMARY KEY (app_id, user_id)
);

CREATE INDEX memberships_due ON memberships (valid_until) WHERE valid_until IS NOT NULL;

-- Per user and counter: how many events ever, first and last time. A counter is an event
-- name, or an event name with property filters (`name#<digest>`, see rules.counter_key),
-- counted only while a segment uses the filters.
CREATE TABLE event_totals (
    app_id   text NOT NULL,
    user_id  text NOT NULL,
    key      text NOT NULL,
    count    bigint NOT NULL,
    first_at timestamptz NOT NULL,
    last_at  timestamptz NOT NULL,
    PRIMARY KEY (app_id, user_id, key)
);

-- Whole-population queries read one counter for every user.
CREATE INDEX event_totals_by_key ON event_totals (app_id, key) INCLUDE (user_id, count, last_at);

-- Per user, counter and UTC day: how many. Windowed conditions sum these.
CREATE TABLE event_days (
    app_id  text NOT NULL,
    user_id text NOT NULL,
    key     text NOT NULL,
    day     date NOT NULL,
    count   integer NOT NULL,
    PRIMARY KEY (app_id, user_id, key, day)
);

CREATE INDEX event_days_by_key ON event_days (app_id, key, day) INCLUDE (user_id, count);

-- Raw events of the last NUDGE_SEGMENTATION_EVENT_PROPERTY_DAYS days, read only when a new
-- property filter is saved (to count the past) or estimated before it is saved.
CREATE TABLE recent_events (
    app_id      text NOT NULL,
    user_id     text NOT NULL,
    name        text NOT NULL,
    occurred_at timestamptz NOT NULL,
    properties  jsonb NOT NULL
);

CREATE INDEX recent_events_by_name ON recent_events (app_id, name, occurred_at);
CREATE INDEX recent_events_by_user ON recent_events (app_id, user_id);
-- Arrival order is roughly time order: a block range index is enough to prune by age.
CREATE INDEX recent_events_by_time ON recent_events USING brin (occurred_at);

-- What has been applied, so redelivery by ingestion's outbox has no second effect.
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

-- Per app: the version of its set of segment rules (every create, update and delete bumps
-- it) and the next per-app segment number.
CREATE TABLE catalogs (
    app_id   text PRIMARY KEY,
    version  bigint NOT NULL DEFAULT 0,
    next_seq integer NOT NULL DEFAULT 1
);

CREATE TABLE segments (
    app_id      text NOT NULL,
    id          text NOT NULL,
    -- Small per-app number stored in profiles.segments; never reused within an app.
    seq         integer NOT NULL,
    name        text NOT NULL,
    description text NOT NULL DEFAULT '',
    rule        bytea NOT NULL,
    version     integer NOT NULL DEFAULT 1,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (app_id, id),
    UNIQUE (app_id, seq)
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

-- Responses of mutating segment RPCs by request_id, so a retry has no second effect.
CREATE TABLE segment_requests (
    app_id     text NOT NULL,
    request_id text NOT NULL,
    method     text NOT NULL,
    response   bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (app_id, request_id)
);

-- Announcements to decision (ApplyUserChanges), written in the transaction of the change
-- they announce and sent at least once, in id order per shard (a user's rows share a shard).
CREATE TABLE outbox (
    id         bigserial PRIMARY KEY,
    shard      integer NOT NULL,
    app_id     text NOT NULL,
    -- '' for a change of the app's segment rules.
    user_id    text NOT NULL,
    kind       text NOT NULL,
    payload    bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX outbox_by_shard ON outbox (shard, id);
CREATE INDEX outbox_by_user ON outbox (app_id, user_id);
