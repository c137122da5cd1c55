"""Segmentation's in-memory caches: each app's compiled catalog, and users' contexts.

Catalogs are dropped when a segment changes (on this replica directly, on others through
NOTIFY). Writers check the cached version against the database under the app's lock, so
they never apply a change with rules older than the ones committed.

A user context is served only while its memberships cannot have changed: before its
`valid_until` (time), for the app's current rules version, and until the user changes. A
change on this replica drops the user's entry before the change is acknowledged; a change on
another replica drops it when that replica's NOTIFY arrives (sent at its commit).

A read that started before a change and finishes after it must not put the old context back:
each read takes a ticket, and `put` refuses when the user was dropped after the ticket (or
when too many drops happened since to tell): nudgelib.drop_tickets.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from nudgelib import user_notices
from nudgelib.appcache import AppCache
from nudgelib.drop_tickets import DropTickets
from services.segmentation.catalog import Catalog
from services.segmentation.store import definitions


async def read_catalog(conn: asyncpg.Connection | asyncpg.Pool, app_id: str) -> Catalog:
    """The app's catalog as the database holds it now."""
    version, segments = await definitions.all_segments(conn, app_id)
    return Catalog.of(app_id, version, segments)


class Catalogs(AppCache[Catalog]):
    """The cache (nudgelib.appcache): a load that was under way when an invalidation arrived
    is used once but not kept, so a change is never masked by an older read finishing late."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        super().__init__(lambda app_id: read_catalog(pool, app_id))

    def keep(self, app_id: str, catalog: Catalog) -> None:
        """Keeps a catalog, also one read under the app's lock (versions only go up)."""
        current = self.peek(app_id)
        if current is None or current.version <= catalog.version:
            super().keep(app_id, catalog)


@dataclass(frozen=True)
class _Entry:
    value: object
    valid_until: datetime | None
    catalog_version: int


class ContextCache:
    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._entries: OrderedDict[tuple[str, str], _Entry] = OrderedDict()
        self._tickets = DropTickets(capacity)
        # Names this replica's notifications, which it skips: it updated itself at the change.
        self.origin = uuid.uuid4().hex[:12]

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, app_id: str, user_id: str, now: datetime, catalog_version: int):
        entry = self._entries.get((app_id, user_id))
        if entry is None:
            return None
        if entry.catalog_version != catalog_version or (entry.valid_until is not None and now >= entry.valid_until):
            del self._entries[(app_id, user_id)]
            return None
        self._entries.move_to_end((app_id, user_id))
        return entry.value

    def ticket(self) -> int:
        return self._tickets.ticket()

    def put(self, app_id: str, user_id: str, value: object, valid_until: datetime | None,
            catalog_version: int, ticket: int) -> None:
        if not self._capacity:
            return
        key = (app_id, user_id)
        if not self._tickets.may_keep(key, ticket):
            return
        self._entries[key] = _Entry(value, valid_until, catalog_version)
        self._entries.move_to_end(key)
        while len(self._entries) > self._capacity:
            self._entries.popitem(last=False)

    def drop(self, app_id: str, users) -> None:
        for user_id in users:
            key = (app_id, user_id)
            self._entries.pop(key, None)
            self._tickets.dropped(key)

    def clear(self) -> None:
        self._tickets.dropped_all()
        self._entries.clear()

    def on_notify(self, payload: str | None) -> None:
        """NOTIFY from a replica that changed users; None: notifications may have been lost."""
        # Segmentation's replicas send no whole-app notice: anything unexpected drops everything.
        user_notices.dispatch(payload, self.origin, users=self.drop, whole_app=lambda _app: self.clear(),
                              everything=self.clear)
