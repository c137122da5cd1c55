"""A bounded least-recently-used map with optional per-entry expiry, for per-user caches.

Bounded by entries and, when given a `weight` of each value and a `max_weight`, by the sum of
the weights too (an estimate of the bytes the values hold, say), so a cache whose entries
vary in size stays within the memory it was given.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from datetime import datetime
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class LruCache(Generic[K, V]):
    def __init__(self, max_entries: int, max_weight: int = 0, weight: Callable[[V], int] | None = None) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be positive")
        if max_weight and weight is None:
            raise ValueError("max_weight needs a weight function")
        self._max = max_entries
        self._max_weight = max_weight
        self._weight = weight if max_weight else None
        self._entries: OrderedDict[K, tuple[V, datetime | None, int]] = OrderedDict()
        self._total = 0

    def get(self, key: K, now: datetime | None = None) -> V | None:
        """The value, unless absent or expired at `now`."""
        item = self._entries.get(key)
        if item is None:
            return None
        value, expires, _ = item
        if expires is not None and now is not None and now >= expires:
            self.pop(key)
            return None
        self._entries.move_to_end(key)
        return value

    def put(self, key: K, value: V, expires: datetime | None = None) -> None:
        weight = self._weight(value) if self._weight is not None else 0
        self.pop(key)
        self._entries[key] = (value, expires, weight)
        self._total += weight
        # The entry just put stays, even alone over the bound: the caller is about to use it.
        while len(self._entries) > self._max or (self._max_weight and self._total > self._max_weight
                                                 and len(self._entries) > 1):
            _, (_, _, w) = self._entries.popitem(last=False)
            self._total -= w

    def pop(self, key: K) -> None:
        item = self._entries.pop(key, None)
        if item is not None:
            self._total -= item[2]

    def clear(self) -> None:
        self._entries.clear()
        self._total = 0

    @property
    def weight(self) -> int:
        """The sum of the weights of the entries held (0 without a weight function)."""
        return self._total

    def __len__(self) -> int:
        return len(self._entries)
