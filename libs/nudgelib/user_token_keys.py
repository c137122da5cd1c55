"""User token keys: what apps register (SQL for the `accounts` schema), and how every service
checks the user tokens of public keys against them (nudgelib.user_tokens has the rules).

Each service keeps, per app, the app's token keys in memory (revoked ones too, so a revoked
key's token is refused as such), loaded on the app's first public call. Any change to the
table is notified on the accounts channel (`nudge_keys`, payload `user_token_keys`) and
every replica drops its copies, so a revocation holds everywhere within the notification's
delay. Verified tokens are remembered until they expire, so a client's calls after its
first cost no signature check; they are forgotten with the keys.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from nudgelib.accounts import SCHEMA
from nudgelib.clock import Clock
from nudgelib.errors import AlreadyExists, FailedPrecondition, Unauthenticated
from nudgelib.lru import LruCache
from nudgelib.user_tokens import (
    MAX_ACTIVE_KEYS, ParsedKey, RegisteredKey, TokenRefused, TokenRules, Verified, load_key, verify,
)

# The notification payload of a change to user token keys (see the 0002 migration).
NOTIFY_PAYLOAD = "user_token_keys"


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
    rows = await conn.fetch(
        f"""WITH revoked AS (
                UPDATE {SCHEMA}.user_token_keys SET revoked_at = now()
                WHERE kid = $1 AND ($2::text IS NULL OR app_id = $2) AND revoked_at IS NULL
                RETURNING {_COLUMNS})
            SELECT {_COLUMNS} FROM revoked
            UNION ALL
            SELECT {_COLUMNS} FROM {SCHEMA}.user_token_keys
            WHERE kid = $1 AND ($2::text IS NULL OR app_id = $2) AND revoked_at IS NOT NULL
            ORDER BY app_id""",
        kid, app_id)
    return [_key(r) for r in rows]


async def revoke_key_candidates(conn: asyncpg.Connection, kid: str) -> list[TokenKey]:
    """Every key of that id, of any app (to revoke by id alone only when it is unambiguous)."""
    rows = await conn.fetch(f"SELECT {_COLUMNS} FROM {SCHEMA}.user_token_keys WHERE kid = $1", kid)
    return [_key(r) for r in rows]


# What a token check needs per key: the key as registered, and the key object verify() uses.
AppKeys = Mapping[str, tuple[RegisteredKey, Any]]


class UserTokenKeyCache:
    """Each app's token keys, loaded once per app and dropped on any change (`invalidate`)."""

    def __init__(self, pool: asyncpg.Pool, max_apps: int = 10_000) -> None:
        self._pool = pool
        self._apps: LruCache[str, AppKeys] = LruCache(max_apps)
        self._loading: dict[str, asyncio.Future[AppKeys]] = {}
        # Bumped by each invalidation: a load begun before one is not kept after it.
        self.generation = 0

    def invalidate(self) -> None:
        self.generation += 1
        self._apps.clear()
        self._loading.clear()

    async def keys_of(self, app_id: str) -> AppKeys:
        found = self._apps.get(app_id)
        if found is not None:
            return found
        loading = self._loading.get(app_id)
        if loading is None:
            # Calls arriving for a cold app share one query.
            loading = asyncio.ensure_future(self._load(app_id, self.generation))
            self._loading[app_id] = loading
        return await asyncio.shield(loading)

    async def _load(self, app_id: str, generation: int) -> AppKeys:
        try:
            rows = await self._pool.fetch(
                f"SELECT kid, algorithm, public_key, revoked_at IS NOT NULL AS revoked"
                f" FROM {SCHEMA}.user_token_keys WHERE app_id = $1", app_id)
            keys = {}
            for r in rows:
                registered = RegisteredKey(r["kid"], r["algorithm"], r["public_key"], r["revoked"])
                keys[r["kid"]] = (registered, None if registered.revoked else load_key(registered))
            if generation == self.generation:
                self._apps.put(app_id, keys)
            return keys
        finally:
            if generation == self.generation:
                self._loading.pop(app_id, None)


class UserTokens:
    """Checks the user token of a public key's call: the token's user, or Unauthenticated with
    the reason (nudgelib.user_tokens)."""

    def __init__(self, keys: UserTokenKeyCache, clock: Clock, rules: TokenRules,
                 remembered: int = 100_000) -> None:
        self._keys = keys
        self._clock = clock
        self._rules = rules
        self._verified: LruCache[tuple[str, str], Verified] = LruCache(remembered)
        self._generation = keys.generation

    def invalidate(self) -> None:
        self._keys.invalidate()
        self._verified.clear()

    async def user_of(self, app_id: str, token: str) -> str:
        now = self._clock.now().timestamp()
        if self._generation != self._keys.generation:  # keys changed: what was verified may not hold
            self._verified.clear()
            self._generation = self._keys.generation
        known = self._verified.get((app_id, token))
        if known is not None:
            if now < known.valid_until:
                return known.user_id
            self._verified.pop((app_id, token))
        generation = self._keys.generation
        keys = await self._keys.keys_of(app_id)
        try:
            verified = verify(token, keys, app_id, now, self._rules)
        except TokenRefused as refused:
            raise Unauthenticated(refused.message, reason=refused.reason) from None
        if generation == self._keys.generation:
            self._verified.put((app_id, token), verified)
        return verified.user_id
