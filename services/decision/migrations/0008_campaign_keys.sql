-- Operator-chosen keys (Campaign.key): unique among an app's campaigns that are not archived,
-- so archiving a campaign frees its key for a new one. '' means none.
ALTER TABLE campaigns ADD COLUMN key text NOT NULL DEFAULT '';

CREATE UNIQUE INDEX campaigns_key_idx ON campaigns (app_id, key) WHERE key <> '' AND status <> 4;
