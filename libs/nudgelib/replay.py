"""Idempotent retries of mutating RPCs (AIP-155): the response of a call that succeeded is kept
under the caller's `request_id` for a window, written in the transaction of the call's own
effect, so a retry within the window gets that response back and changes nothing again.

- A retry with the same id and the same request (other than `request_id`) gets the first
  response, as it was then, even if the data has changed since.
- The same id with a different request, or with another RPC, is `INVALID_ARGUMENT` on
  `request_id`: a client bug, not a retry, so nothing is run and nothing replayed.
- A call that failed is not kept: its retry runs again.
- Past the window the id is forgotten; a call with it runs as a new one. The rows are pruned
  by the service's retention loop (`retention()`).
- Two calls with one id at the same moment: one commits, the other's effect is rolled back
  and it answers with the winner's response.

Each service keeps its own table (`app_id, request_id, method, fingerprint, response,
created_at`) in its own schema. A call about one user (`once(..., user_id=)`), whose response
may hold that user's data (a test send's content rendered with their attributes), also
writes `user_id` (a nullable column the table must then have), so that erasing the user
deletes it (`erase_user`): a retry after the erasure runs again as a new call.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TypeVar

import asyncpg
from google.protobuf.message import Message

from nudgelib.clock import Clock
from nudgelib.errors import InvalidArgument
from nudgelib.retention import Retention
from nudgelib.violations import FieldViolation

MAX_REQUEST_ID = 128

R = TypeVar("R", bound=Message)
# Stores the call's response in the transaction of its effect (the call's connection).
Remember = Callable[[asyncpg.Connection, Message], Awaitable[None]]
T = TypeVar("T")


def keeping(remember: Remember | None, response: Callable[[T], Message]
            ) -> Callable[[asyncpg.Connection, T], Awaitable[None]] | None:
    """The hook a store calls in its transaction with what it saved (a campaign, a segment):
    keeps `response(saved)` under the request_id. None without a request_id."""
    if remember is None:
        return None

    async def keep(conn: asyncpg.Connection, saved: T) -> None:
        await remember(conn, response(saved))

    return keep



class _Taken(Exception):
    """Another call with the same request_id committed first."""


def request_id_problems(request_id: str, field: str = "request_id") -> list[FieldViolation]:
    if len(request_id) > MAX_REQUEST_ID or "\x00" in request_id:
        return [FieldViolation(field, f"must be at most {MAX_REQUEST_ID} characters without NUL")]
    return []


def fingerprint(request: Message) -> bytes:
    """The request without its request_id, so a retry is recognised as the same request."""
    copy = type(request)()
    copy.CopyFrom(request)
    copy.ClearField("request_id")
    return hashlib.sha256(copy.SerializeToString(deterministic=True)).digest()


class Replays:
    def __init__(self, pool: asyncpg.Pool, table: str, window: timedelta, clock: Clock,
                 per_user: bool = False) -> None:
        self._pool = pool
        self._table = table  # in the pool's search path
        self._window = window
        self._clock = clock
        # The table has the nullable `user_id` column: every row written says whose call it
        # was (NULL for a call about no user), a replaced row included.
        self._per_user = per_user

    def retention(self) -> Retention:
        return Retention(self._table, "created_at", self._window, key=("app_id", "request_id"))

    async def once(self, app_id: str, method: str, request: Message, response_type: type[R],
                   call: Callable[[Remember | None], Awaitable[R]], user_id: str | None = None) -> R:
        """Runs `call` once per request_id within the window. `call` gets a `Remember` to
        store its response in its own transaction (None without a request_id); a call that
        does not use it (it wrote nothing) has its response stored after it. `user_id`: the
        user the call is about, kept with the response so their erasure removes it."""
        if user_id is not None and not self._per_user:  # a wiring bug, caught by any test of the call
            raise ValueError(f"{self._table} keeps no user: a call about a user needs per_user")
        request_id: str = request.request_id  # type: ignore[attr-defined]
        if not request_id:
            return await call(None)
        if problems := request_id_problems(request_id):
            raise InvalidArgument(problems)
        digest = fingerprint(request)
        replay = await self._stored(app_id, request_id, method, digest, response_type)
        if replay is not None:
            return replay
        remembered = False

        async def remember(conn: asyncpg.Connection, response: Message) -> None:
            nonlocal remembered
            await self._insert(conn, app_id, request_id, method, digest, response.SerializeToString(), user_id)
            remembered = True

        try:
            response = await call(remember)
            if not remembered:
                await self._insert(self._pool, app_id, request_id, method, digest, response.SerializeToString(),
                                   user_id)
            return response
        except (_Taken, asyncpg.UniqueViolationError):
            # The same request_id won a race with this call: answer as it did.
            replay = await self._stored(app_id, request_id, method, digest, response_type)
            if replay is None:
                raise
            return replay

    async def _stored(self, app_id: str, request_id: str, method: str, digest: bytes,
                      response_type: type[R]) -> R | None:
        row = await self._pool.fetchrow(
            f"SELECT method, fingerprint, response FROM {self._table}"
            " WHERE app_id = $1 AND request_id = $2 AND created_at > $3",
            app_id, request_id, self._clock.now() - self._window)
        if row is None:
            return None
        if row["method"] != method:
            raise InvalidArgument.field("request_id", f"was used by {row['method']}")
        # Rows written before fingerprints were kept have none: taken as the same request.
        if row["fingerprint"] and bytes(row["fingerprint"]) != digest:
            raise InvalidArgument.field("request_id", f"was used by another {method} request")
        return response_type.FromString(bytes(row["response"]))

    async def _insert(self, conn: asyncpg.Connection | asyncpg.Pool, app_id: str, request_id: str, method: str,
                      digest: bytes, response: bytes, user_id: str | None) -> None:
        """Keeps the response; a row of the same id past the window is replaced. Raises
        `_Taken` when a live row exists (a concurrent call committed first)."""
        now = self._clock.now()
        # Only a per-user table has the column (segmentation's calls are about no user).
        column, value, update = (", user_id", ", $8", ", user_id = $8") if self._per_user else ("", "", "")
        status = await conn.execute(
            f"""INSERT INTO {self._table} AS r (app_id, request_id, method, fingerprint, response, created_at{column})
                VALUES ($1, $2, $3, $4, $5, $6{value})
                ON CONFLICT (app_id, request_id) DO UPDATE
                   SET method = $3, fingerprint = $4, response = $5, created_at = $6{update}
                   WHERE r.created_at <= $7""",
            app_id, request_id, method, digest, response, now, now - self._window,
            *((user_id,) if self._per_user else ()))
        if status.split()[-1] == "0":
            raise _Taken()


async def erase_user(conn: asyncpg.Connection, table: str, app_id: str, user_id: str) -> None:
    """Deletes the kept responses of calls about the user (`once(..., user_id=)`), in the
    caller's erasure transaction; replays of calls about no user stay."""
    await conn.execute(f"DELETE FROM {table} WHERE app_id = $1 AND user_id = $2", app_id, user_id)
