-- Explain and ListPendingSends show which exception event cancelled a send.
ALTER TABLE pending_sends ADD COLUMN cancelled_by_event_id text NOT NULL DEFAULT '';
ALTER TABLE pending_sends ADD COLUMN cancelled_by_event_name text NOT NULL DEFAULT '';
-- One user's sends, pending and settled, newest trigger first (ListPendingSends, Explain).
CREATE INDEX pending_sends_user_history_idx ON pending_sends (app_id, user_id, triggered_at DESC, id DESC);
