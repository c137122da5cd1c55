-- Items from ingestion's log are applied once by position, not by id (nudgelib.eventlog.positions):
-- per source log, app and lane, the position of the last item applied, written in the
-- transaction of its effects. It replaces one applied-id row per event and per profile update.
CREATE TABLE log_positions (
    source   text NOT NULL,
    app_id   text NOT NULL,
    lane     smallint NOT NULL,
    position bigint NOT NULL,
    PRIMARY KEY (source, app_id, lane)
);

DROP TABLE applied_events;
DROP TABLE applied_updates;
