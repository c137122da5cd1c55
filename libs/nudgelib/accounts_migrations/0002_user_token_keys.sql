-- Public keys an app registered to sign user tokens (JWTs whose `sub` is the user id), for
-- its public API keys (scope `public`). Only public halves are stored, as PEM; a key id
-- (`kid`, the token header's) names one key within its app and is never reused there, even
-- once revoked, so a revoked key's tokens stay refused.
CREATE TABLE user_token_keys (
    app_id     text NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    kid        text NOT NULL,
    algorithm  text NOT NULL CHECK (algorithm IN ('ES256', 'RS256')),
    public_key text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz,
    PRIMARY KEY (app_id, kid)
);

-- `nudge user-token-keys revoke KEY_ID` finds a key by its id alone.
CREATE INDEX user_token_keys_kid_idx ON user_token_keys (kid);

-- Services cache each app's token keys; a change tells every replica to drop that app's copy
-- (and to check again the open streams of its public clients), on the channel API key changes
-- use, with the payload `user_token_keys:<app id>`.
CREATE FUNCTION notify_user_token_key_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('nudge_keys', 'user_token_keys:' || OLD.app_id);
    ELSE
        PERFORM pg_notify('nudge_keys', 'user_token_keys:' || NEW.app_id);
    END IF;
    RETURN NULL;
END $$;

-- Per row, to name the app; PostgreSQL folds equal notifications of one transaction into one.
CREATE TRIGGER user_token_keys_changed AFTER INSERT OR UPDATE OR DELETE ON user_token_keys
    FOR EACH ROW EXECUTE FUNCTION notify_user_token_key_change();
