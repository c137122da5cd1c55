"""A per-app cache of data that changes rarely (segment rules, campaigns), dropped on change.

Replicas learn of changes through NOTIFY and call `invalidate`. A load that was under way
when an invalidation arrived is used once but not kept, so a change is never masked by an
older read finishing late.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class AppCache(Generic[T]):
    def __init__(self, load: Callable[[str], Awaitable[T]]) -> None:
        self._load = load
        self._entries: dict[str, T] = {}
        self._generation = 0

    async def get(self, app_id: str) -> T:
        entry = self._entries.get(app_id)
        if entry is None:
            generation = self._generation
            entry = await self._load(app_id)
            if generation == self._generation:
                self.keep(app_id, entry)
        return entry

    def peek(self, app_id: str) -> T | None:
        """The cached entry, without loading one."""
        return self._entries.get(app_id)

    def keep(self, app_id: str, entry: T) -> None:
        """Stores an entry; subclasses may refuse one that is older than what they hold."""
        self._entries[app_id] = entry

    def invalidate(self, app_id: str | None = None) -> None:
        """Drops one app, or every app (None: a notification may have been missed)."""
        self._generation += 1
        if app_id:
            self._entries.pop(app_id, None)
        else:
            self._entries.clear()
