-- Distributes a migrated Nudge database on Citus (docs/citus.md). Generated from
-- libs/nudgetools/citus.py by `python -m nudgetools.citus`; tests/service/test_citus_keys.py
-- checks that this file is what it writes. Run once on the coordinator, after `nudge migrate`
-- against it and before the services start; each statement moves a table's rows into shards.

-- asyncpg reads type information on each new connection; Citus's filter that hides shards
-- from pg_class made that take seconds. The services never look at shards.
DO $$ BEGIN
    EXECUTE format('ALTER DATABASE %I SET citus.override_table_visibility = off', current_database());
END $$;

-- Functions the distributed statements call, created on every worker.
SELECT create_distributed_function('ingestion.pb_item_header(integer)');
SELECT create_distributed_function('segmentation.pb_item_header(integer)');
SELECT create_distributed_function('delivery.pb_item_header(integer)');

-- Reference tables: a copy on every node (referred tables first).
SELECT create_reference_table('accounts.apps');
SELECT create_reference_table('accounts.api_keys');
SELECT create_reference_table('accounts.user_token_keys');
SELECT create_reference_table('segmentation.segments');
SELECT create_reference_table('segmentation.segment_versions');
SELECT create_reference_table('segmentation.catalogs');
SELECT create_reference_table('segmentation.segment_requests');
SELECT create_reference_table('decision.campaigns');
SELECT create_reference_table('decision.campaign_versions');
SELECT create_reference_table('decision.app_settings');
SELECT create_reference_table('decision.request_responses');

-- Distributed by user_id, co-located with segmentation.profiles: a user's rows of every service
-- on one shard group (referred tables first).
SELECT create_distributed_table('segmentation.profiles', 'user_id', colocate_with => 'none');
SELECT create_distributed_table('segmentation.memberships', 'user_id', colocate_with => 'segmentation.profiles');
SELECT create_distributed_table('segmentation.event_totals', 'user_id', colocate_with => 'segmentation.profiles');
SELECT create_distributed_table('segmentation.event_days', 'user_id', colocate_with => 'segmentation.profiles');
SELECT create_distributed_table('decision.deliveries', 'user_id', colocate_with => 'segmentation.profiles');
SELECT create_distributed_table('decision.variant_assignments', 'user_id', colocate_with => 'segmentation.profiles');
SELECT create_distributed_table('delivery.messages', 'user_id', colocate_with => 'segmentation.profiles');
SELECT create_distributed_table('delivery.interactions', 'user_id', colocate_with => 'segmentation.profiles');
SELECT create_distributed_table('delivery.conversions', 'user_id', colocate_with => 'segmentation.profiles');

-- Local: plain tables of the coordinator, left as they are.
--   accounts.schema_migrations
--   ingestion.events
--   ingestion.event_keys
--   ingestion.log_cursors
--   ingestion.log_holds
--   ingestion.dead_letters
--   ingestion.log_traces
--   ingestion.schema_migrations
--   segmentation.outbox
--   segmentation.log_cursors
--   segmentation.log_holds
--   segmentation.log_positions
--   segmentation.dead_letters
--   segmentation.log_traces
--   segmentation.schema_migrations
--   decision.pending_sends
--   decision.log_positions
--   decision.schema_migrations
--   delivery.event_outbox
--   delivery.log_cursors
--   delivery.log_holds
--   delivery.dead_letters
--   delivery.log_traces
--   delivery.schema_migrations
