"""User contexts as decision and delivery get them, and the bounded cache in front of them.

An entry is served only while its memberships cannot have changed: before its
`valid_until` (time), for the app's current rules version, and until the user changes. A
change on this replica drops the user's entry before the change is acknowledged; a change on
another replica drops it when that replica's NOTIFY arrives (sent at its commit).

A read that started before a change and finishes after it must not put the old context back:
each read takes a ticket, and `put` refuses when the user was dropped after the ticket (or
when too many drops happened since to tell).
"""

from __future__ import annotations

import json
import uuid
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from nudge.common.v1 import common_pb2
from nudgelib.protoconv import set_attribute, set_timestamp
from services.segmentation.profile import Profile

def context_proto(profile: Profile, segment_ids: list[str], valid_until: datetime | None) -> common_pb2.UserContext:
    ctx = common_pb2.UserContext(
        user_id=profile.user_id,
        known=profile.known,
        time_zone=profile.time_zone,
        locale=profile.locale,
        app_version=profile.app_version,
        platforms=sorted(profile.platforms),
        segment_ids=segment_ids,
    )
    for name, value in profile.stored_attributes.items():
        set_attribute(ctx.attributes[name], value)
    set_timestamp(ctx.first_seen_time, profile.first_seen)
    set_timestamp(ctx.last_seen_time, profile.last_seen)
    set_timestamp(ctx.valid_until_time, valid_until)
    return ctx


def context_from_row(row: Mapping[str, Any], segment_ids: list[str],
                     valid_until: datetime | None) -> common_pb2.UserContext:
    """context_proto straight from a stored profile row: the read path, where nothing needs
    evaluating, skips building a Profile."""
    ctx = common_pb2.UserContext(
        user_id=row["user_id"], known=True, time_zone=row["time_zone"], locale=row["locale"],
        app_version=row["app_version"], platforms=row["platforms"], segment_ids=segment_ids,
    )
    for name, value in json.loads(row["attributes"]).items():
        set_attribute(ctx.attributes[name], value)
    set_timestamp(ctx.first_seen_time, row["first_seen"])
    set_timestamp(ctx.last_seen_time, row["last_seen"])
    set_timestamp(ctx.valid_until_time, valid_until)
    return ctx


@dataclass(frozen=True)
class _Entry:
    value: object
    valid_until: datetime | None
    catalog_version: int


class ContextCache:
    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._entries: OrderedDict[tuple[str, str], _Entry] = OrderedDict()
        self._drops = 0
        # Recent drops: key -> drop number; and the newest drop number forgotten.
        self._recent: OrderedDict[tuple[str, str], int] = OrderedDict()
        self._forgotten = 0
        self._recent_max = max(capacity, 1024)
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
        return self._drops

    def put(self, app_id: str, user_id: str, value: object, valid_until: datetime | None,
            catalog_version: int, ticket: int) -> None:
        if not self._capacity:
            return
        key = (app_id, user_id)
        if ticket < self._forgotten or self._recent.get(key, -1) > ticket:
            return
        self._entries[key] = _Entry(value, valid_until, catalog_version)
        self._entries.move_to_end(key)
        while len(self._entries) > self._capacity:
            self._entries.popitem(last=False)

    def drop(self, app_id: str, users) -> None:
        for user_id in users:
            key = (app_id, user_id)
            self._drops += 1
            self._entries.pop(key, None)
            self._recent[key] = self._drops
            self._recent.move_to_end(key)
        while len(self._recent) > self._recent_max:
            _, forgotten = self._recent.popitem(last=False)
            self._forgotten = max(self._forgotten, forgotten)

    def clear(self) -> None:
        self._drops += 1
        self._forgotten = self._drops
        self._entries.clear()
        self._recent.clear()

    def on_notify(self, payload: str | None) -> None:
        """NOTIFY from a replica that changed users; None: notifications may have been lost."""
        if payload is None:
            self.clear()
            return
        try:
            data = json.loads(payload)
            if data.get("o") == self.origin:
                return
            self.drop(data["a"], data["u"])
        except (ValueError, KeyError, TypeError):
            self.clear()
