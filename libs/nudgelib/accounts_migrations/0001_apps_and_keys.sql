-- Apps (tenants) and their API keys. Keys are stored as SHA-256 of the whole key: keys are
-- 256-bit random secrets, so a plain hash is enough and lets a key be found by its hash.
CREATE TABLE apps (
    id         text PRIMARY KEY,
    name       text NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE api_keys (
    id         text PRIMARY KEY,
    app_id     text NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    key_hash   bytea NOT NULL UNIQUE,
    scopes     text[] NOT NULL,
    label      text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);

CREATE INDEX api_keys_app_idx ON api_keys (app_id);

-- Every service caches keys in memory; any change tells them to reload.
CREATE FUNCTION notify_key_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('nudge_keys', '');
    RETURN NULL;
END $$;

CREATE TRIGGER api_keys_changed AFTER INSERT OR UPDATE OR DELETE ON api_keys
    FOR EACH STATEMENT EXECUTE FUNCTION notify_key_change();
