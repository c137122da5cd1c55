-- Key changes are announced on `nudge_keys` by the statements that make them
-- (nudgelib.accounts, nudgelib.user_token_keys), no longer by triggers: on Citus these tables
-- are reference tables, whose triggers would run inside the workers' prepared transactions,
-- where NOTIFY is refused (docs/citus.md). The payloads are unchanged.
DROP TRIGGER api_keys_changed ON api_keys;
DROP FUNCTION notify_key_change();
DROP TRIGGER user_token_keys_changed ON user_token_keys;
DROP FUNCTION notify_user_token_key_change();
