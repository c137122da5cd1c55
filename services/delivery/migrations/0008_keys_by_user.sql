-- Keys that carry the user (docs/citus.md): a message belongs to one user, so its key is
-- (app, user, message) and its interactions and conversions carry the user too. Distributed
-- by user id on Citus, a key without it cannot be enforced on one shard, and a join between
-- messages and their interactions is co-located only when it matches on the user.
-- Message ids are unique within an app (uuids, or the triggered send's id); the wider key
-- changes no answer.
--
-- On a populated database this holds messages, interactions and conversions locked
-- (ACCESS EXCLUSIVE) for the whole migration: two backfills and three primary key builds
-- (docs/citus.md, "Migrating a populated database", gives the measured time).
ALTER TABLE interactions ADD COLUMN user_id text;
ALTER TABLE conversions ADD COLUMN user_id text;

UPDATE interactions i SET user_id = m.user_id
FROM messages m WHERE m.app_id = i.app_id AND m.message_id = i.message_id;
UPDATE conversions c SET user_id = m.user_id
FROM messages m WHERE m.app_id = c.app_id AND m.message_id = c.message_id;

ALTER TABLE interactions ALTER COLUMN user_id SET NOT NULL;
ALTER TABLE conversions ALTER COLUMN user_id SET NOT NULL;

ALTER TABLE interactions DROP CONSTRAINT interactions_app_id_message_id_fkey;
ALTER TABLE conversions DROP CONSTRAINT conversions_app_id_message_id_fkey;
ALTER TABLE interactions DROP CONSTRAINT interactions_pkey;
ALTER TABLE conversions DROP CONSTRAINT conversions_pkey;
ALTER TABLE messages DROP CONSTRAINT messages_pkey;

ALTER TABLE messages ADD CONSTRAINT messages_pkey PRIMARY KEY (app_id, user_id, message_id);
ALTER TABLE interactions ADD CONSTRAINT interactions_pkey PRIMARY KEY (app_id, user_id, message_id, type, button_id);
ALTER TABLE conversions ADD CONSTRAINT conversions_pkey PRIMARY KEY (app_id, user_id, message_id);

ALTER TABLE interactions ADD CONSTRAINT interactions_message_fkey FOREIGN KEY (app_id, user_id, message_id)
    REFERENCES messages (app_id, user_id, message_id) ON DELETE CASCADE;
ALTER TABLE conversions ADD CONSTRAINT conversions_message_fkey FOREIGN KEY (app_id, user_id, message_id)
    REFERENCES messages (app_id, user_id, message_id) ON DELETE CASCADE;
