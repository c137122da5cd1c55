"""App versions as dotted numbers, so that they compare as numbers (4.10 is after 4.9).

Segmentation stores the parsed parts of each user's app version and compares them in SQL,
so what parses, and to what, must not change under data already stored.
"""

from __future__ import annotations

import functools
import re

# At most ten parts of at most nine digits: each part fits a PostgreSQL integer.
_VERSION_RE = re.compile(r"^\d{1,9}(\.\d{1,9}){0,9}$")


# Cached: every event carries its app's version, and an app has few versions at a time.
@functools.lru_cache(maxsize=4096)
def parse_version(text: str) -> tuple[int, ...] | None:
    """The numbers of a version such as "4.2.0", or None when it is not dotted numbers."""
    if not _VERSION_RE.match(text):
        return None
    return tuple(int(p) for p in text.split("."))
