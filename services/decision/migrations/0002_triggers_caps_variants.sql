-- Caps need the campaign's tags and whether the message counts toward app-wide rules.
ALTER TABLE deliveries ADD COLUMN tags text[] NOT NULL DEFAULT '{}';
ALTER TABLE deliveries ADD COLUMN counts_toward_app_caps boolean NOT NULL DEFAULT true;
ALTER TABLE deliveries DROP CONSTRAINT deliveries_pkey;
ALTER TABLE deliveries ADD PRIMARY KEY (app_id, message_id);
CREATE INDEX deliveries_user_idx ON deliveries (app_id, user_id, delivered_at);

-- Sticky A/B arms, written on first exposure and never changed by later weight edits.
-- variant_id '' is the control group.
CREATE TABLE variant_assignments (
    app_id      text NOT NULL,
    user_id     text NOT NULL,
    campaign_id text NOT NULL,
    variant_id  text NOT NULL,
    assigned_at timestamptz NOT NULL,
    PRIMARY KEY (app_id, user_id, campaign_id)
);

-- Triggered sends waiting for their delay, a window opening or a cap to free up. Claimed by
-- exactly one replica when due (FOR UPDATE SKIP LOCKED).
CREATE TABLE pending_sends (
    app_id           text NOT NULL,
    id               text NOT NULL,
    user_id          text NOT NULL,
    campaign_id      text NOT NULL,
    trigger_index    integer NOT NULL,
    -- What fired it: an event id, or a segment entry; a trigger fires once per cause.
    cause            text NOT NULL,
    triggered_at     timestamptz NOT NULL,
    due_at           timestamptz NOT NULL,
    expire_at        timestamptz NOT NULL,
    event_properties jsonb NOT NULL DEFAULT '{}',
    status           text NOT NULL DEFAULT 'pending',
    outcome          text NOT NULL DEFAULT '',
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (app_id, id),
    UNIQUE (app_id, campaign_id, user_id, cause)
);

CREATE INDEX pending_sends_due_idx ON pending_sends (due_at) WHERE status = 'pending';
CREATE INDEX pending_sends_user_idx ON pending_sends (app_id, user_id) WHERE status = 'pending';
