"""User token keys: what apps register (SQL for the `accounts` schema), and how every service
checks the user tokens of public keys against them (nudgelib.user_tokens has the rules).

Each service keeps, per app, the app's token keys in memory (revoked ones too, so a revoked
key's token is refused as such), loaded on the app's first public call. A change to an app's
keys is notified on the accounts channel (`nudge_keys`, payload `user_token_keys:<app id>`)
and every replica drops its copy of that app's keys, so a revocation holds everywhere within
the notification's delay. Verified tokens are remembered until they expire, so a client's
calls after its first cost no signature check; a change to the app's keys makes them be
checked again, and so does each open stream of the app (a stream ends when its token does).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import asyncpg

from nudgelib.accounts import NOTIFY_CHANNEL, SCHEMA
from nudgelib.clock import Clock
from nudgelib.errors import AlreadyExists, FailedPrecondition, Unauthenticated
from nudgelib.lru import LruCache
from nudgelib.user_tokens import (
    MAX_ACTIVE_KEYS, ParsedKey, RegisteredKey, TokenRefused, TokenRules, Verified, load_key, verify,
)

# A change to an app's user token keys is notified as `user_token_keys:<app id>`, by the
# statements that make it (accounts migration 0003 says why not by a trigger).
NOTIFY_PREFIX = "user_token_keys:"
T = TypeVar("T")


@dataclass(frozen=True)
class TokenKey:
    """One registered key, as operators see it."""

    app_id: str
    kid: str
    algorithm: str
    public_key_pem: str
    created_at: datetime
    revoked_at: datetime | None


_COLUMNS = "app_id, kid, algorithm, public_key, created_at, revoked_at"


def _key(row: asyncpg.Record) -> TokenKey:
    return TokenKey(row["app_id"], row["kid"], row["algorithm"], row["public_key"], row["created_at"],
                    row["revoked_at"])


async def add_key(conn: asyncpg.Connection, app_id: str, parsed: ParsedKey) -> tuple[TokenKey, bool]:
    """Registers the key; returns it and whether it is new. Adding the same key under the same
    id again returns it unchanged (a retry); another key under a taken id, a revoked id, or an
    eleventh active key is refused."""
    async with conn.transaction():
        # One writer per app at a time, so two adds cannot both pass the count below.
        await conn.execute(f"SELECT 1 FROM {SCHEMA}.apps WHERE id = $1 FOR UPDATE", app_id)
        existing = await conn.fetchrow(
            f"SELECT {_COLUMNS} FROM {SCHEMA}.user_token_keys WHERE app_id = $1 AND kid = $2", app_id, parsed.kid)
        if existing is not None:
            if existing["revoked_at"] is not None:
                raise FailedPrecondition(f"user token key {parsed.kid!r} was revoked; register the new key "
                                         "under another id")
            if existing["public_key"] != parsed.public_key_pem:
                raise AlreadyExists(f"user token key {parsed.kid!r} exists with another public key")
            return _key(existing), False
        active = await conn.fetchval(
            f"SELECT count(*) FROM {SCHEMA}.user_token_keys WHERE app_id = $1 AND revoked_at IS NULL", app_id)
        if active >= MAX_ACTIVE_KEYS:
            raise FailedPrecondition(f"the app has {active} active user token keys, the most it may hold; "
                                     "revoke one first")
        row = await conn.fetchrow(
            f"INSERT INTO {SCHEMA}.user_token_keys (app_id, kid, algorithm, public_key) VALUES ($1, $2, $3, $4)"
            f" RETURNING {_COLUMNS}",
            app_id, parsed.kid, parsed.algorithm, parsed.public_key_pem)
        await conn.execute("SELECT pg_notify($1, $2)", NOTIFY_CHANNEL, NOTIFY_PREFIX + app_id)
    return _key(row), True


async def list_keys(conn: asyncpg.Connection | asyncpg.Pool, app_id: str, include_revoked: bool = True,
                    after: tuple[datetime, str] | None = None, limit: int | None = None) -> list[TokenKey]:
    """The app's keys, oldest first; from after (created_at, kid) when paging."""
    rows = await conn.fetch(
        f"""SELECT {_COLUMNS} FROM {SCHEMA}.user_token_keys
            WHERE app_id = $1 AND ($2 OR revoked_at IS NULL)
              AND ($3::timestamptz IS NULL OR (created_at, kid) > ($3, $4))
            ORDER BY created_at, kid LIMIT $5""",
        app_id, include_revoked, after[0] if after else None, after[1] if after else "", limit)
    return [_key(r) for r in rows]


async def revoke_key(conn: asyncpg.Connection | asyncpg.Pool, kid: str, app_id: str | None = None) -> list[TokenKey]:
    """Revokes the key `kid` (of `app_id`, or of any app when None); returns every key of that
    id, revoked now or before (empty: no such key). Revoking twice changes nothing."""
    # The apps whose key is revoked now are told in the same statement (a data-modifying CTE
    # runs whether or not it is read; `told` is read so that its NOTIFYs run too).
    rows = await conn.fetch(
        f"""WITH revoked AS (
                UPDATE {SCHEMA}.user_token_keys SET revoked_at = now()
                WHERE kid = $1 AND ($2::text IS NULL OR app_id = $2) AND revoked_at IS NULL
                RETURNING {_COLUMNS}),
            told AS (SELECT count(pg_notify($3, $4 || a.app_id)) AS n FROM (SELECT DISTINCT app_id FROM revoked) a)
            SELECT {_COLUMNS} FROM revoked, told
            UNION ALL
            SELECT {_COLUMNS} FROM {SCHEMA}.user_token_keys
            WHERE kid = $1 AND ($2::text IS NULL OR app_id = $2) AND revoked_at IS NOT NULL
            ORDER BY app_id""",
        kid, app_id, NOTIFY_CHANNEL, NOTIFY_PREFIX)
    return [_key(r) for r in rows]


async def revoke_key_candidates(conn: asyncpg.Connection, kid: str) -> list[TokenKey]:
    """Every key of that id, of any app (to revoke by id alone only when it is unambiguous)."""
    rows = await conn.fetch(f"SELECT {_COLUMNS} FROM {SCHEMA}.user_token_keys WHERE kid = $1", kid)
    return [_key(r) for r in rows]


# What a token check needs per key: the key as registered, and the key object verify() uses.
AppKeys = Mapping[str, tuple[RegisteredKey, Any]]
# Which state of an app's keys something was read from: (changes to every app, to this app).
Version = tuple[int, int]


def changed_app(payload: str | None) -> str | None:
    """The app whose token keys a notification on the accounts channel says changed, if any."""
    if payload and payload.startswith(NOTIFY_PREFIX):
        return payload[len(NOTIFY_PREFIX):]
    return None


class UserTokenKeyCache:
    """Each app's token keys, loaded once per app and dropped when they change (`invalidate`)."""

    def __init__(self, pool: asyncpg.Pool, max_apps: int = 10_000) -> None:
        self._pool = pool
        self._apps: LruCache[str, AppKeys] = LruCache(max_apps)
        self._loading: dict[str, asyncio.Future[AppKeys]] = {}
        self._epoch = 0
        self._app_epochs: dict[str, int] = {}

    def version(self, app_id: str) -> Version:
        return self._epoch, self._app_epochs.get(app_id, 0)

    def invalidate(self, app_id: str | None = None) -> None:
        """Drops one app's keys, or every app's (None: notifications may have been missed)."""
        if app_id is None:
            self._epoch += 1
            self._app_epochs.clear()
            self._apps.clear()
            self._loading.clear()
            return
        self._app_epochs[app_id] = self._app_epochs.get(app_id, 0) + 1
        self._apps.pop(app_id)
        self._loading.pop(app_id, None)

    async def keys_of(self, app_id: str) -> AppKeys:
        found = self._apps.get(app_id)
        if found is not None:
            return found
        loading = self._loading.get(app_id)
        if loading is None:
            # Calls arriving for a cold app share one query.
            loading = asyncio.ensure_future(self._load(app_id, self.version(app_id)))
            self._loading[app_id] = loading
        return await asyncio.shield(loading)

    async def _load(self, app_id: str, version: Version) -> AppKeys:
        try:
            rows = await self._pool.fetch(
                f"SELECT kid, algorithm, public_key, revoked_at IS NOT NULL AS revoked"
                f" FROM {SCHEMA}.user_token_keys WHERE app_id = $1", app_id)
            keys = {}
            for r in rows:
                registered = RegisteredKey(r["kid"], r["algorithm"], r["public_key"], r["revoked"])
                keys[r["kid"]] = (registered, None if registered.revoked else load_key(registered))
            # Read before a change landed: good for the calls that asked, not to keep.
            if version == self.version(app_id):
                self._apps.put(app_id, keys)
            return keys
        finally:
            if version == self.version(app_id):
                self._loading.pop(app_id, None)


class UserTokens:
    """Checks the user token of a public key's call: the token's user, or Unauthenticated with
    the reason (nudgelib.user_tokens). Holds streams to their token (`held`)."""

    def __init__(self, keys: UserTokenKeyCache, clock: Clock, rules: TokenRules,
                 remembered: int = 100_000) -> None:
        self._keys = keys
        self._clock = clock
        self._rules = rules
        self._verified: LruCache[tuple[str, str], tuple[Verified, Version]] = LruCache(remembered)
        # Set when an app's keys change, for the streams of that app to check their token again.
        self._changes: dict[str, asyncio.Event] = {}

    def invalidate(self, app_id: str | None = None) -> None:
        """Forgets an app's keys (None: every app's), and what was verified with them."""
        self._keys.invalidate(app_id)
        changed = list(self._changes) if app_id is None else [app_id]
        for app in changed:
            event = self._changes.pop(app, None)
            if event is not None:
                event.set()

    async def verify(self, app_id: str, token: str) -> Verified:
        now = self._clock.now().timestamp()
        version = self._keys.version(app_id)
        known = self._verified.get((app_id, token))
        if known is not None:
            verified, checked = known
            if checked == version and now < verified.valid_until:
                return verified
            self._verified.pop((app_id, token))
        keys = await self._keys.keys_of(app_id)
        try:
            verified = verify(token, keys, app_id, now, self._rules)
        except TokenRefused as refused:
            raise Unauthenticated(refused.message, reason=refused.reason) from None
        self._verified.put((app_id, token), (verified, version))
        return verified

    async def user_of(self, app_id: str, token: str) -> str:
        return (await self.verify(app_id, token)).user_id

    async def held(self, app_id: str, token: str, items: AsyncIterator[T]) -> AsyncIterator[T]:
        """The items of a stream opened with `token`, for as long as the token is good: when it
        expires, or its key is revoked, the stream ends with Unauthenticated and its reason, at
        once rather than at its next item (a stream may be quiet for long)."""
        watch = asyncio.ensure_future(self._watch(app_id, token))
        step: asyncio.Future[T] | None = None
        try:
            while True:
                step = asyncio.ensure_future(anext(items))
                await asyncio.wait((step, watch), return_when=asyncio.FIRST_COMPLETED)
                if not step.done():
                    # The token went bad while the stream waited: end it before anything else
                    # is handed out (what waits in the inbox stays there).
                    step.cancel()
                    await asyncio.gather(step, return_exceptions=True)
                    watch.result()  # raises
                try:
                    item = step.result()
                except StopAsyncIteration:
                    return
                yield item
        finally:
            # Cancelled (the client went away) or ended: the step in flight goes first, as a
            # generator cannot be closed while it runs.
            for task in (step, watch):
                if task is not None and not task.done():
                    task.cancel()
            await asyncio.gather(*(t for t in (step, watch) if t is not None), return_exceptions=True)
            await items.aclose()

    async def _watch(self, app_id: str, token: str) -> None:
        """Returns never; raises Unauthenticated once the token is refused."""
        while True:
            verified = await self.verify(app_id, token)
            change = self._changes.setdefault(app_id, asyncio.Event())
            left = verified.valid_until - self._clock.now().timestamp()
            try:
                async with asyncio.timeout(max(left, 0.0)):
                    await change.wait()
            except TimeoutError:
                pass
