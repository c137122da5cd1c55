-- With tracing on (nudgelib.tracing), the trace context of each transaction that queued
-- interaction events for ingestion in event_outbox (a traced ReportInteraction): one row per
-- transaction, none per item, and none at all with tracing off. An item's position is its
-- transaction's id times 2^20 plus its place, so `position >> 20` finds its row; the log's
-- reader links the span forwarding the items to the spans that queued them
-- (nudgelib/eventlog/traces.py). Rows are kept a day (traces.KEEP_SECONDS).
CREATE TABLE log_traces (
    xact        bigint PRIMARY KEY,
    traceparent text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- The reader's sweep deletes by age.
CREATE INDEX log_traces_created_at_idx ON log_traces (created_at);
