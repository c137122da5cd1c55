"""Server-side sessions: the browser holds only a random id (an HttpOnly, SameSite=Strict
cookie); the admin key, the client made with it and the CSRF token stay here, in memory.

A session ends after `idle` seconds without a request, or `lifetime` seconds after sign-in,
whichever comes first, or at logout. A restart of the console signs everyone out (nothing is
written anywhere), which is the safe side for a process that holds admin keys. The store is
bounded: past `capacity` sessions the least recently used is dropped.
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

COOKIE = "nudge_console_session"
# The sign-in form's CSRF token, before there is a session (double submit: cookie and field).
LOGIN_COOKIE = "nudge_console_login"


@dataclass
class Session:
    id: str
    client: Any  # nudge_client.AsyncNudge with the app's admin key
    csrf: str
    started: float
    seen: float
    # What the operator signed in to, to show in the header.
    label: str = ""
    # The id of the admin key the session calls with (`nudge_<id>_…`), so that the API keys
    # on the settings page can say which one it is.
    key_id: str = ""
    # Previews rendered for this session, by id (the preview frames' SDK fetches them).
    previews: OrderedDict[str, Any] = field(default_factory=OrderedDict)

    def keep_preview(self, value: Any, limit: int = 200) -> str:
        pid = secrets.token_urlsafe(12)
        self.previews[pid] = value
        while len(self.previews) > limit:
            self.previews.popitem(last=False)
        return pid


class SessionStore:
    def __init__(self, idle: float, lifetime: float, clock: Callable[[], float] = time.monotonic,
                 capacity: int = 1000) -> None:
        self.idle = idle
        self.lifetime = lifetime
        self.clock = clock
        self.capacity = capacity
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        # Sessions taken out (expired, evicted, logged out) whose clients are still to be closed.
        self.ended: list[Session] = []

    def create(self, client: Any, label: str = "", key_id: str = "") -> Session:
        now = self.clock()
        session = Session(secrets.token_urlsafe(32), client, secrets.token_urlsafe(32), now, now, label,
                          key_id=key_id)
        self._sessions[session.id] = session
        while len(self._sessions) > self.capacity:
            self.ended.append(self._sessions.popitem(last=False)[1])
        return session

    def get(self, session_id: str | None) -> Session | None:
        """The live session with this id (its idle time starts again), or None."""
        self.sweep()
        session = self._sessions.get(session_id or "")
        if session is None:
            return None
        session.seen = self.clock()
        self._sessions.move_to_end(session.id)
        return session

    def end(self, session_id: str) -> None:
        session = self._sessions.pop(session_id, None)
        if session is not None:
            self.ended.append(session)

    def sweep(self) -> None:
        now = self.clock()
        for sid in [s.id for s in self._sessions.values() if self._expired(s, now)]:
            self.ended.append(self._sessions.pop(sid))

    def _expired(self, s: Session, now: float) -> bool:
        return now - s.seen >= self.idle or now - s.started >= self.lifetime

    def take_ended(self) -> list[Session]:
        out, self.ended = self.ended, []
        return out

    def __len__(self) -> int:
        return len(self._sessions)
