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
