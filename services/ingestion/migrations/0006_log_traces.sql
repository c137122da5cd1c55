-- With tracing on (nudgelib.tracing), the trace context of each transaction that wrote to the
-- log: one row per TrackEvents / Identify batch, none per event, and none at all with tracing
-- off. A log item's position is its transaction's id times 2^20 plus its place in the batch,
-- so `position >> 20` finds its row; the log's readers link their forwarding spans to the
-- producers' spans with it (nudgelib/eventlog/traces.py). Rows are kept a day
-- (traces.KEEP_SECONDS).
CREATE TABLE log_traces (
    xact        bigint PRIMARY KEY,
    traceparent text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- The reader's sweep deletes by age.
CREATE INDEX log_traces_created_at_idx ON log_traces (created_at);
