"""Ingestion's settings: defaults, overrides, and a bad value names its variable."""

from __future__ import annotations

import pytest

from nudgelib.config import ConfigError
from services.ingestion.settings import IngestionSettings


def test_settings_defaults_and_overrides():
    assert IngestionSettings.from_env({}) == IngestionSettings()
    s = IngestionSettings.from_env({"NUDGE_INGESTION_EVENT_RETENTION_DAYS": "90",
                                    "NUDGE_INGESTION_MAX_BACKLOG_EVENTS": "5000000",
                                    "NUDGE_INGESTION_MAX_MEMORY_MB": "0"})
    assert (s.event_retention_days, s.max_backlog_events, s.max_memory_mb) == (90, 5_000_000, 0)


@pytest.mark.parametrize("name,value", [
    ("NUDGE_INGESTION_EVENT_RETENTION_DAYS", "0"),
    ("NUDGE_INGESTION_OUTBOX_WORKERS", "many"),
    ("NUDGE_INGESTION_MAX_BACKLOG_AGE_SECONDS", "-1"),
    ("NUDGE_INGESTION_OUTBOX_POLL_SECONDS", "0"),
])
def test_bad_settings_name_the_variable(name, value):
    with pytest.raises(ConfigError, match=name):
        IngestionSettings.from_env({name: value})


@pytest.mark.parametrize("name, value, message", [
    # A zero backoff would retry a consumer that is down without pause.
    ("NUDGE_INGESTION_OUTBOX_MAX_BACKOFF_SECONDS", "0",
     "NUDGE_INGESTION_OUTBOX_MAX_BACKOFF_SECONDS must be between 0.1 and 600, got 0"),
    ("NUDGE_INGESTION_PRESSURE_REFRESH_SECONDS", "0",
     "NUDGE_INGESTION_PRESSURE_REFRESH_SECONDS must be between 0.01 and 60, got 0"),
    ("NUDGE_INGESTION_OUTBOX_SEND_TIMEOUT_SECONDS", "0.05",
     "NUDGE_INGESTION_OUTBOX_SEND_TIMEOUT_SECONDS must be between 0.1 and 600, got 0.05"),
    ("NUDGE_INGESTION_OUTBOX_WORKERS", "17", "NUDGE_INGESTION_OUTBOX_WORKERS must be between 1 and 16, got 17"),
    ("NUDGE_INGESTION_RETRY_AFTER_SECONDS", "-2", "NUDGE_INGESTION_RETRY_AFTER_SECONDS must be between 0 and 3600"),
])
def test_bounds_are_one_line_naming_the_variable(name, value, message):
    with pytest.raises(ConfigError) as error:
        IngestionSettings.from_env({name: value})
    assert str(error.value).startswith(message)
