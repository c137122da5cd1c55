"""Segmentation's own settings: defaults, and one clear line for a bad value."""

from __future__ import annotations

import pytest

from nudgelib.config import ConfigError
from services.segmentation.settings import SegmentationSettings


def test_defaults_and_overrides():
    assert SegmentationSettings.from_env({}) == SegmentationSettings()
    s = SegmentationSettings.from_env({"NUDGE_SEGMENTATION_CONTEXT_CACHE_SIZE": "0",
                                       "NUDGE_SEGMENTATION_EVENT_PROPERTY_DAYS": "90"})
    assert (s.context_cache_size, s.event_property_days) == (0, 90)


@pytest.mark.parametrize("name, value", [
    ("NUDGE_SEGMENTATION_CONTEXT_CACHE_SIZE", "-1"),
    ("NUDGE_SEGMENTATION_OUTBOX_BATCH", "0"),
    ("NUDGE_SEGMENTATION_SWEEP_INTERVAL_SECONDS", "0"),
    ("NUDGE_SEGMENTATION_AUDIENCE_WORK_MEM_MB", "lots"),
    ("NUDGE_SEGMENTATION_OUTBOX_MAX_BACKOFF_SECONDS", "0"),
    ("NUDGE_SEGMENTATION_AUDIENCE_TIMEOUT_SECONDS", "0"),
    ("NUDGE_SEGMENTATION_MAINTENANCE_INTERVAL_SECONDS", "0.5"),
])
def test_bad_values_name_the_variable(name, value):
    with pytest.raises(ConfigError, match=name):
        SegmentationSettings.from_env({name: value})
