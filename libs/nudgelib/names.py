"""The shape of an event name, the same wherever one is accepted: ingestion's events, and
the event names that segments and campaigns refer to (a name ingestion would refuse could
never match)."""

from __future__ import annotations

import re

EVENT_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.:\-]{0,127}$")
EVENT_NAME_RULE = "must start with a letter and hold at most 128 letters, digits, _ . : -"


def is_event_name(name: str) -> bool:
    return EVENT_NAME_RE.match(name) is not None
