-- Responses of mutating campaign and settings RPCs by request_id (nudgelib.replay), so a
-- retry within NUDGE_DECISION_REQUEST_ID_WINDOW_HOURS has no second effect. `fingerprint` is
-- the sha256 of the request without its id: the same id with another request is refused.
CREATE TABLE request_responses (
    app_id      text NOT NULL,
    request_id  text NOT NULL,
    method      text NOT NULL,
    fingerprint bytea NOT NULL,
    response    bytea NOT NULL,
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (app_id, request_id)
);

CREATE INDEX request_responses_by_time ON request_responses USING brin (created_at);

-- When the campaign last became ACTIVE (decision's clock), NULL while it is not: an event
-- that happened before it, while the campaign was a draft or paused, fires no trigger even if
-- it arrives later. Rows from before this column have NULL: bounded by start_time only.
ALTER TABLE campaigns ADD COLUMN active_since timestamptz;
