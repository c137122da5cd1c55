"""Decision's own settings: defaults, and one clear line for a bad value."""

from __future__ import annotations

import pytest

from nudgelib.config import ConfigError
from services.decision.settings import DecisionSettings


def test_defaults_and_overrides():
    assert DecisionSettings.from_env({}) == DecisionSettings()
    assert DecisionSettings().release_poll_seconds == 0.5
    s = DecisionSettings.from_env({"NUDGE_DECISION_CONTEXT_TTL_SECONDS": "0",
                                   "NUDGE_DECISION_SETTLED_SEND_RETENTION_DAYS": "0"})
    # 0: no context cache; settled sends kept for ever.
    assert (s.context_ttl_seconds, s.settled_send_retention_days) == (0, 0)


@pytest.mark.parametrize("name, value, message", [
    ("NUDGE_DECISION_RELEASE_POLL_SECONDS", "0", "NUDGE_DECISION_RELEASE_POLL_SECONDS must be between 0.01 and 60"),
    ("NUDGE_DECISION_MAINTENANCE_INTERVAL_SECONDS", "0",
     "NUDGE_DECISION_MAINTENANCE_INTERVAL_SECONDS must be between 1 and 86400"),
    ("NUDGE_DECISION_CONTEXT_TTL_SECONDS", "-1", "NUDGE_DECISION_CONTEXT_TTL_SECONDS must be between 0 and 86400"),
    ("NUDGE_DECISION_STATE_CACHE_SIZE", "0", "NUDGE_DECISION_STATE_CACHE_SIZE must be between 1 and 100000000"),
    ("NUDGE_DECISION_RELEASE_BATCH", "lots", "NUDGE_DECISION_RELEASE_BATCH must be a whole number"),
])
def test_bad_values_name_the_variable(name, value, message):
    with pytest.raises(ConfigError, match=message):
        DecisionSettings.from_env({name: value})
