"""Property-filtered event counters (`purchase` where `cart_value > 100`): the key under which
matching events are counted. The filters themselves are the shared language of
`nudgelib.filters` (validation, dotted names, missing properties, distance).

Events are counted per user, counter and day at the moment they are applied: once under
their name, and once under each property-filtered counter of the app's segments they match.
A counter's key is the event name plus a digest of its filters, so two segments with the
same filters share one counter.
"""

from __future__ import annotations

import hashlib
import json

from nudgelib.filters import Filter

KEY_SEPARATOR = "#"  # event names cannot hold it (nudgelib.names)


def counter_key(name: str, filters: tuple[Filter, ...]) -> str:
    """The counter an event condition reads: its name, or name#digest of its filters (the
    filters' order does not matter: they all have to hold)."""
    if not filters:
        return name
    canonical = sorted(json.dumps([f.name, f.operator, f.value], sort_keys=True) for f in filters)
    digest = hashlib.sha256("\n".join(canonical).encode()).hexdigest()[:20]
    return f"{name}{KEY_SEPARATOR}{digest}"


def event_name(key: str) -> str:
    return key.split(KEY_SEPARATOR, 1)[0]
