"""User notices: a replica telling its siblings (at commit, through NOTIFY) which users of an
app changed, so that they drop what they cache of them. Segmentation's replicas send them
for every change to a user; decision's for every context segmentation announced to it.

A notice names its sender (`origin`), which has updated its own cache already and skips it.
A NOTIFY payload stops at 8000 bytes, so many users go in several notices, sent by one
statement. A notice may also name every user of the app (decision's, when an app's segment
rules changed).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

import asyncpg

_PAYLOAD_BYTES = 7000


def whole_app(app_id: str, origin: str) -> str:
    """The notice naming every user of the app."""
    return json.dumps({"a": app_id, "w": 1, "o": origin})


def payloads(app_id: str, users: Sequence[str], origin: str) -> list[str]:
    """The notices naming `users`, each under the payload limit."""
    out: list[str] = []
    chunk: list[str] = []
    base = len(json.dumps({"a": app_id, "u": [], "o": origin}).encode())
    size = base
    for u in users:
        # As JSON writes it: quotes, escapes, a comma.
        n = len(json.dumps(u).encode()) + 2
        if size + n > _PAYLOAD_BYTES and chunk:
            out.append(json.dumps({"a": app_id, "u": chunk, "o": origin}))
            chunk, size = [], base
        chunk.append(u)
        size += n
    if chunk:
        out.append(json.dumps({"a": app_id, "u": chunk, "o": origin}))
    return out


async def notify(conn: asyncpg.Connection | asyncpg.Pool, channel: str, app_id: str, users: Sequence[str],
                 origin: str, everyone: bool = False) -> None:
    """Sends the notices (with `everyone`, the whole app's first), in one statement (inside a
    transaction: at its commit)."""
    notices = ([whole_app(app_id, origin)] if everyone else []) + payloads(app_id, users, origin)
    if notices:
        await conn.execute("SELECT pg_notify($1, x) FROM unnest($2::text[]) x", channel, notices)


class BadNotice(ValueError):
    pass


def parse(payload: str) -> tuple[str, str, list[str] | None]:
    """(origin, app id, users) of a notice, users None for the whole app; BadNotice if it is
    not one."""
    try:
        data = json.loads(payload)
        origin, app_id = data.get("o", ""), data["a"]
        users = None if data.get("w") else data["u"]
    except (ValueError, KeyError, TypeError, AttributeError):
        raise BadNotice(payload[:80]) from None
    if not isinstance(app_id, str) or not (users is None or isinstance(users, list)):
        raise BadNotice(payload[:80])
    return origin, app_id, users


def dispatch(payload: str | None, own_origin: str, users: Callable[[str, list[str]], None],
             whole_app: Callable[[str], None], everything: Callable[[], None]) -> None:
    """Does what a received notice asks of a cache: `users(app_id, users)` for a notice naming
    users, `whole_app(app_id)` for one naming the app, nothing for the receiver's own, and
    `everything()` when notices may have been lost (the listener reconnected: None) or one
    cannot be read."""
    if payload is None:
        everything()
        return
    try:
        origin, app_id, named = parse(payload)
    except BadNotice:
        everything()
        return
    if origin == own_origin:
        return
    if named is None:
        whole_app(app_id)
    else:
        users(app_id, named)
