"""The user-context cache never serves a context older than a change it was told about."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from services.segmentation.caches import ContextCache

NOW = datetime(2026, 11, 25, tzinfo=timezone.utc)


def test_entries_expire_at_valid_until_and_with_the_rules_version():
    cache = ContextCache(10)
    cache.put("a", "u", "ctx", NOW + timedelta(hours=1), 3, cache.ticket())
    assert cache.get("a", "u", NOW, 3) == "ctx"
    assert cache.get("a", "u", NOW, 4) is None  # rules changed
    cache.put("a", "u", "ctx", NOW + timedelta(hours=1), 3, cache.ticket())
    assert cache.get("a", "u", NOW + timedelta(hours=1), 3) is None


def test_a_read_that_raced_a_change_is_not_kept():
    cache = ContextCache(10)
    ticket = cache.ticket()  # a read starts...
    cache.drop("a", ["u"])  # ...the user changes meanwhile...
    cache.put("a", "u", "old", None, 1, ticket)  # ...the read ends: its answer is not kept
    assert cache.get("a", "u", NOW, 1) is None
    cache.put("a", "u", "new", None, 1, cache.ticket())
    assert cache.get("a", "u", NOW, 1) == "new"


def test_other_replicas_changes_arrive_by_notify_and_a_lost_connection_clears_all():
    cache = ContextCache(10)
    for user in ("u", "v"):
        cache.put("a", user, user, None, 1, cache.ticket())
    cache.on_notify(json.dumps({"a": "a", "u": ["u"], "o": "another-replica"}))
    assert cache.get("a", "u", NOW, 1) is None and cache.get("a", "v", NOW, 1) == "v"
    # Its own notification comes back too: it refreshed those users at the change already.
    cache.on_notify(json.dumps({"a": "a", "u": ["v"], "o": cache.origin}))
    assert cache.get("a", "v", NOW, 1) == "v"
    cache.on_notify(None)
    assert len(cache) == 0


def test_bounded_and_a_forgotten_drop_refuses_older_reads():
    cache = ContextCache(2)
    ticket = cache.ticket()
    for i in range(3):
        cache.put("a", f"u{i}", i, None, 1, cache.ticket())
    assert len(cache) == 2
    cache.drop("a", [f"x{i}" for i in range(2000)])  # more drops than it remembers
    cache.put("a", "u9", "late", None, 1, ticket)
    assert cache.get("a", "u9", NOW, 1) is None


def test_disabled_cache_keeps_nothing():
    cache = ContextCache(0)
    cache.put("a", "u", "ctx", None, 1, cache.ticket())
    assert cache.get("a", "u", NOW, 1) is None
