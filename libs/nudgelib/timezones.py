"""IANA time zone names, checked against the zone database shipped with tzdata."""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# The longest IANA name is 32 characters (America/Argentina/ComodRivadavia).
MAX_TIME_ZONE_LENGTH = 64
# Area/Location names: letters, digits, `_ + -`, separated by single slashes.
_NAME = re.compile(r"^[A-Za-z0-9_+\-]+(/[A-Za-z0-9_+\-]+)*$")


def is_valid_time_zone(name: str) -> bool:
    """A name ZoneInfo can load. Folders of the database (`Europe`) and names longer than any
    zone's are refused: ZoneInfo answers them with OSError (IsADirectoryError, "file name too
    long") rather than ZoneInfoNotFoundError."""
    if not name or len(name) > MAX_TIME_ZONE_LENGTH or not _NAME.match(name):
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True
