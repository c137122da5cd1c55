-- Keys that carry the user (docs/citus.md): a delivery belongs to the user it was handed
-- to, so its key is (app, user, message). Message ids are unique within an app; the wider key
-- changes no answer. On a populated database this holds deliveries locked (ACCESS EXCLUSIVE)
-- while the new primary key is built.
--
-- pending_sends keeps (app_id, id): it stays a table of the coordinator on Citus, where the
-- releaser's claim across users (FOR UPDATE SKIP LOCKED) is a local one.
ALTER TABLE deliveries DROP CONSTRAINT deliveries_pkey;
ALTER TABLE deliveries ADD CONSTRAINT deliveries_pkey PRIMARY KEY (app_id, user_id, message_id);
