-- No raw copy of events in segmentation any more: a property filter new to the app's segments
-- counts its past from ingestion's stored events (its internal ReadEvents stream, up to the
-- log positions applied here), so nothing is written per event but the counters.
DROP TABLE recent_events;
