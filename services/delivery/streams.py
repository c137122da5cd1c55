"""Open Subscribe streams of this replica, by user.

A message handed out for streaming is announced on `nudge_stream` (app, user, message ids)
so that every replica pushes it to its own sessions of that user: each session gets it once,
whichever replica decided it. Sessions remember what they sent, so a replay after reconnect
and a live push never show one message twice.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass, field

from nudge.decision.v1 import decision_service_pb2 as decision_public_pb
from nudge.delivery.v1 import delivery_service_pb2 as pb

STREAM_CHANNEL = "nudge_stream"
SEPARATOR = "\x1f"


@dataclass(eq=False)
class Session:
    app_id: str
    user_id: str
    context: decision_public_pb.RequestContext
    queue: asyncio.Queue[pb.InAppMessage] = field(default_factory=lambda: asyncio.Queue(maxsize=100))
    sent: set[str] = field(default_factory=set)

    def offer(self, message: pb.InAppMessage) -> None:
        if message.message_id in self.sent:
            return
        try:
            self.queue.put_nowait(message)
        except asyncio.QueueFull:
            pass  # a client that reads nothing misses live pushes; it resumes by last message id


class StreamHub:
    def __init__(self) -> None:
        self._sessions: dict[tuple[str, str], set[Session]] = defaultdict(set)

    def open(self, app_id: str, user_id: str, context: decision_public_pb.RequestContext) -> Session:
        session = Session(app_id, user_id, context)
        self._sessions[(app_id, user_id)].add(session)
        return session

    def close(self, session: Session) -> None:
        key = (session.app_id, session.user_id)
        sessions = self._sessions.get(key)
        if sessions is not None:
            sessions.discard(session)
            if not sessions:
                del self._sessions[key]

    def sessions(self, app_id: str, user_id: str) -> list[Session]:
        return list(self._sessions.get((app_id, user_id), ()))

    def push(self, app_id: str, user_id: str, messages: list[pb.InAppMessage]) -> None:
        for session in self.sessions(app_id, user_id):
            for m in messages:
                session.offer(m)

    def all_sessions(self) -> list[Session]:
        return [s for group in self._sessions.values() for s in group]

    def __len__(self) -> int:
        return sum(len(s) for s in self._sessions.values())


def encode(*parts: str | list[str]) -> str:
    flat: list[str] = []
    for part in parts:
        flat.extend(part if isinstance(part, list) else [part])
    return SEPARATOR.join(flat)


def decode_pushed(payload: str) -> tuple[str, str, str, list[str]]:
    """A notification: origin replica, app, user, and message ids (stream pushes only)."""
    origin, app_id, user_id, *ids = payload.split(SEPARATOR)
    return origin, app_id, user_id, ids
