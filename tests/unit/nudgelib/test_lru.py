"""The per-user caches' LRU map: bounded by entries and by the weight of what it holds."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from nudgelib.lru import LruCache

NOW = datetime(2026, 3, 1, tzinfo=timezone.utc)


def test_least_recently_used_goes_first_when_entries_are_full():
    cache = LruCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # a is now the most recent
    cache.put("c", 3)
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (1, None, 3)


def test_weight_bound_evicts_the_least_recent_until_it_fits():
    cache = LruCache(100, max_weight=10, weight=len)
    cache.put("a", "xxxx")
    cache.put("b", "xxxx")
    cache.get("a")
    cache.put("c", "xxxx")  # 12 > 10: b, the least recent, goes
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == ("xxxx", None, "xxxx")
    assert cache.weight == 8


def test_replacing_or_dropping_an_entry_gives_its_weight_back():
    cache = LruCache(100, max_weight=10, weight=len)
    cache.put("a", "xxxxxxxx")
    cache.put("a", "xx")
    assert cache.weight == 2
    cache.put("b", "xxxxxxxx")  # fits beside the smaller a
    assert len(cache) == 2 and cache.weight == 10
    cache.pop("a")
    assert cache.weight == 8
    cache.put("c", "x", expires=NOW)
    assert cache.get("c", NOW + timedelta(seconds=1)) is None  # expired, and its weight with it
    assert cache.weight == 8
    cache.clear()
    assert (len(cache), cache.weight) == (0, 0)


def test_an_entry_heavier_than_the_bound_is_kept_alone():
    cache = LruCache(100, max_weight=10, weight=len)
    cache.put("a", "xx")
    cache.put("big", "x" * 50)
    assert (cache.get("a"), cache.get("big")) == (None, "x" * 50)


def test_a_weight_bound_needs_a_weight():
    with pytest.raises(ValueError):
        LruCache(10, max_weight=5)
