-- Settled sends are deleted NUDGE_DECISION_SETTLED_SEND_RETENTION_DAYS after they settled;
-- this index finds them without reading the pending ones.
CREATE INDEX pending_sends_settled_idx ON pending_sends (updated_at) WHERE status <> 'pending';
