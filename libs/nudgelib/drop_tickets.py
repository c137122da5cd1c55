"""Drop tickets: whether a cache may keep what a read brought back.

A cache in front of data that changes elsewhere drops a key when it learns of a change (a
NOTIFY, an announcement). A read that started before that change and finishes after it holds
the old value and must not put it back. So each read takes a ticket before it starts, every
drop is numbered, and a value may be kept only when its key was not dropped after the ticket.

Recent drops are remembered per key up to a bound; past it the oldest are forgotten, and a
ticket older than the newest forgotten drop can no longer tell, so it keeps nothing (a miss
more, never a stale value). Pure: no I/O.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable


class DropTickets:
    def __init__(self, remember: int) -> None:
        self._drops = 0
        # Recent drops: key -> drop number; and the newest drop number forgotten.
        self._recent: OrderedDict[Hashable, int] = OrderedDict()
        self._forgotten = 0
        self._remember = max(remember, 1024)

    def ticket(self) -> int:
        """Taken before a read starts."""
        return self._drops

    def dropped(self, key: Hashable) -> None:
        self._drops += 1
        self._recent[key] = self._drops
        self._recent.move_to_end(key)
        while len(self._recent) > self._remember:
            _, forgotten = self._recent.popitem(last=False)
            self._forgotten = max(self._forgotten, forgotten)

    def dropped_all(self) -> None:
        """Everything changed (notifications may have been lost): no read under way may keep
        its value."""
        self._drops += 1
        self._forgotten = self._drops
        self._recent.clear()

    def may_keep(self, key: Hashable, ticket: int) -> bool:
        """Whether a value read under `ticket` is still current as far as drops tell."""
        return ticket >= self._forgotten and self._recent.get(key, -1) <= ticket
