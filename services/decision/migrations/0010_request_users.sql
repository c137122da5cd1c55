-- The user a kept response is about (nudgelib.replay): a test send's response holds content
-- rendered with the user's attributes, so erasing the user deletes it (store.erase_user).
-- NULL for calls about no user (campaign and settings RPCs), whose replays erasure keeps.
ALTER TABLE request_responses ADD COLUMN user_id text;

CREATE INDEX request_responses_by_user ON request_responses (app_id, user_id) WHERE user_id IS NOT NULL;

-- Test sends kept before this column have no user to erase them by: they are dropped now,
-- so no erasure misses one. A retry of such a send within its window sends it again (a test
-- message, counted nowhere).
DELETE FROM request_responses WHERE method = 'SendTestMessage';
