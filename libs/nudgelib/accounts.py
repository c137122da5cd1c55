"""Apps and API keys: creation, listing and revocation for operators (the `nudge` CLI and
decision's ApiKeyService share these functions), and the in-memory key cache every service
authenticates calls with.

The `accounts` schema is the one piece of data all services read: it is identity, not
domain data, and it can live in its own database (`NUDGE_ACCOUNTS_DATABASE_URL`).
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from pathlib import Path

import asyncpg
import structlog

from nudgelib.errors import FailedPrecondition, Unauthenticated

log = structlog.get_logger(__name__)

SCHEMA = "accounts"
MIGRATIONS = Path(__file__).parent / "accounts_migrations"
NOTIFY_CHANNEL = "nudge_keys"
KEY_PREFIX = "nudge"


class Scope(str, Enum):
    EVENTS_WRITE = "events:write"  # producers: TrackEvents, Identify
    MESSAGES_READ = "messages:read"  # mobile backends: FetchMessages, Subscribe, ReportInteraction
    ADMIN = "admin"  # operators: everything public, including the above
    # Keys that may ship inside an app or a page: only with a user token, only for its user,
    # only the RPCs in nudgelib.public_clients. Not part of `admin`.
    PUBLIC = "public"


# The keys `nudge apps create` issues, one per kind of caller.
DEFAULT_KEYS: dict[str, tuple[Scope, ...]] = {
    "admin": (Scope.ADMIN,),
    "events": (Scope.EVENTS_WRITE,),
    "client": (Scope.MESSAGES_READ,),
}


@dataclass(frozen=True)
class Principal:
    """Who is calling: an app's key, or another Nudge service."""

    app_id: str
    key_id: str
    scopes: frozenset[str]
    internal: bool = False
    # For a public key: the user its user token names (the only user the call may reach),
    # and the token, for a stream to be checked again while it is open.
    user_id: str = ""
    user_token: str = field(default="", repr=False)

    @property
    def public(self) -> bool:
        return Scope.PUBLIC.value in self.scopes

    def allows(self, scope: Scope) -> bool:
        return Scope.ADMIN.value in self.scopes or scope.value in self.scopes


INTERNAL = Principal(app_id="", key_id="internal", scopes=frozenset(), internal=True)


@dataclass(frozen=True)
class IssuedKey:
    key_id: str
    label: str
    scopes: tuple[str, ...]
    secret: str  # the whole key; shown once, never stored


@dataclass(frozen=True)
class ApiKey:
    """One key as operators see it: never its hash, never its secret."""

    id: str
    app_id: str
    label: str
    scopes: tuple[str, ...]
    created_at: datetime
    revoked_at: datetime | None

    @property
    def admin(self) -> bool:
        return Scope.ADMIN.value in self.scopes


# A label names a key for people (`ios-backend`); the API bounds it, and the number of active
# keys an app may hold through it, since every service keeps every active key in memory.
MAX_LABEL_LENGTH = 100
MAX_ACTIVE_KEYS = 100


def label_problem(label: str) -> str | None:
    """What is wrong with a key's label, if anything (pure: the API's and the CLI's check)."""
    if not label.strip():
        return "is required: a name for people, such as ios-backend"
    if len(label) > MAX_LABEL_LENGTH:
        return f"is longer than {MAX_LABEL_LENGTH} characters"
    if any(not c.isprintable() for c in label):
        return "has a control character; a label is one line of printable text"
    return None


def scopes_of(names: list[str] | tuple[str, ...]) -> tuple[Scope, ...]:
    """The scopes a new key is given, by name (`events:write`…); ValueError says why not."""
    if not names:
        raise ValueError(f"is required: one or more of {', '.join(s.value for s in Scope)}")
    known = {s.value: s for s in Scope}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"{', '.join(repr(n) for n in unknown)}: not a scope; the scopes are "
                         f"{', '.join(s.value for s in Scope)}")
    chosen = tuple(dict.fromkeys(known[n] for n in names))
    # A public key is held to its user's token (Principal.public): any other scope with it
    # would be a backend key that silently lost its powers.
    if Scope.PUBLIC in chosen and len(chosen) > 1:
        raise ValueError("public is a scope of its own: a key that ships in an app or a page has no other")
    return chosen


@dataclass(frozen=True)
class AppRecord:
    id: str
    name: str
    created_at: object
    active_keys: int


def hash_key(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def new_key() -> tuple[str, str]:
    key_id = secrets.token_hex(6)
    return key_id, f"{KEY_PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"


async def create_app(conn: asyncpg.Connection, name: str) -> tuple[str, list[IssuedKey]]:
    """Creates an app with one key of each default kind; returns the app id and the keys."""
    if not name.strip():
        raise ValueError("app name must not be empty")
    app_id = f"app_{secrets.token_hex(6)}"
    async with conn.transaction():
        await conn.execute(f"INSERT INTO {SCHEMA}.apps (id, name) VALUES ($1, $2)", app_id, name)
        keys = [await create_key(conn, app_id, label, scopes) for label, scopes in DEFAULT_KEYS.items()]
    return app_id, keys


async def create_key(
    conn: asyncpg.Connection, app_id: str, label: str, scopes: tuple[Scope, ...]
) -> IssuedKey:
    key_id, secret = new_key()
    values = tuple(s.value for s in scopes)
    # The key and its announcement in one statement, so neither commits without the other.
    await conn.execute(
        f"""WITH k AS (INSERT INTO {SCHEMA}.api_keys (id, app_id, key_hash, scopes, label)
                       VALUES ($1, $2, $3, $4, $5) RETURNING 1)
            SELECT pg_notify($6, '') FROM k""",
        key_id, app_id, hash_key(secret), list(values), label, NOTIFY_CHANNEL,
    )
    return IssuedKey(key_id=key_id, label=label, scopes=values, secret=secret)


async def find_app(conn: asyncpg.Connection, name_or_id: str) -> str | None:
    return await conn.fetchval(
        f"SELECT id FROM {SCHEMA}.apps WHERE id = $1 OR name = $1", name_or_id
    )


async def list_apps(conn: asyncpg.Connection) -> list[AppRecord]:
    rows = await conn.fetch(
        f"""SELECT a.id, a.name, a.created_at,
                   count(k.id) FILTER (WHERE k.revoked_at IS NULL) AS active_keys
            FROM {SCHEMA}.apps a LEFT JOIN {SCHEMA}.api_keys k ON k.app_id = a.id
            GROUP BY a.id ORDER BY a.created_at"""
    )
    return [AppRecord(r["id"], r["name"], r["created_at"], r["active_keys"]) for r in rows]


_KEY_COLUMNS = "id, app_id, label, scopes, created_at, revoked_at"


def _api_key(row: asyncpg.Record) -> ApiKey:
    return ApiKey(row["id"], row["app_id"], row["label"], tuple(row["scopes"]), row["created_at"], row["revoked_at"])


async def issue_key(conn: asyncpg.Connection, app_id: str, label: str, scopes: tuple[Scope, ...],
                    max_active: int = MAX_ACTIVE_KEYS) -> tuple[ApiKey, str]:
    """A new key for an operator of the app (ApiKeyService): the key and its secret, refused
    when the app holds `max_active` active keys already."""
    async with conn.transaction():
        # One writer per app at a time, so two creates cannot both pass the count below.
        await conn.execute(f"SELECT 1 FROM {SCHEMA}.apps WHERE id = $1 FOR UPDATE", app_id)
        active = await conn.fetchval(
            f"SELECT count(*) FROM {SCHEMA}.api_keys WHERE app_id = $1 AND revoked_at IS NULL", app_id)
        if active >= max_active:
            raise FailedPrecondition(f"the app has {active} active API keys, the most it may hold; revoke one first")
        issued = await create_key(conn, app_id, label, scopes)
        row = await conn.fetchrow(f"SELECT {_KEY_COLUMNS} FROM {SCHEMA}.api_keys WHERE id = $1", issued.key_id)
    return _api_key(row), issued.secret


async def list_keys(conn: asyncpg.Connection | asyncpg.Pool, app_id: str, include_revoked: bool = True,
                    after: tuple[datetime, str] | None = None, limit: int = 100) -> list[ApiKey]:
    """The app's keys, oldest first, at most `limit`; from after (created_at, id) when paging."""
    rows = await conn.fetch(
        f"""SELECT {_KEY_COLUMNS} FROM {SCHEMA}.api_keys
            WHERE app_id = $1 AND ($2 OR revoked_at IS NULL)
              AND ($3::timestamptz IS NULL OR (created_at, id) > ($3, $4))
            ORDER BY created_at, id LIMIT $5""",
        app_id, include_revoked, after[0] if after else None, after[1] if after else "", limit)
    return [_api_key(r) for r in rows]


async def revoke_key(conn: asyncpg.Connection, key_id: str, app_id: str | None = None,
                     keep_an_admin: bool = False) -> tuple[ApiKey, bool] | None:
    """Revokes a key by id (the part after `nudge_`), of `app_id` (None: of any app); returns
    it and whether it was revoked now rather than before (None: no such key). With
    `keep_an_admin`, the app's last active admin key is refused (FailedPrecondition): an
    operator calling the API must not lock the app out of it. Every service drops a revoked
    key from memory at the notification."""
    async with conn.transaction():
        row = await conn.fetchrow(
            f"SELECT {_KEY_COLUMNS} FROM {SCHEMA}.api_keys WHERE id = $1 AND ($2::text IS NULL OR app_id = $2)",
            key_id, app_id)
        if row is None:
            return None
        key = _api_key(row)
        if key.revoked_at is not None:
            return key, False
        if keep_an_admin and key.admin:
            # The app's row is the lock two revokes of its last two admin keys queue on, so
            # they cannot both see the other's key still active.
            await conn.execute(f"SELECT 1 FROM {SCHEMA}.apps WHERE id = $1 FOR UPDATE", key.app_id)
            others = await conn.fetchval(
                f"""SELECT count(*) FROM {SCHEMA}.api_keys WHERE app_id = $1 AND id <> $2
                    AND revoked_at IS NULL AND $3 = ANY (scopes)""",
                key.app_id, key.id, Scope.ADMIN.value)
            if others == 0:
                raise FailedPrecondition(f"{key.id} is the app's last active admin key; create another admin "
                                         "key before revoking this one, so the app is not locked out")
        # The revocation and its announcement in one statement (no trigger: migration 0003).
        revoked = await conn.fetchrow(
            f"""WITH r AS (UPDATE {SCHEMA}.api_keys SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL
                           RETURNING {_KEY_COLUMNS})
                SELECT r.*, pg_notify($2, '') FROM r""",
            key.id, NOTIFY_CHANNEL)
        if revoked is None:  # a concurrent revoke won: the key is revoked all the same
            again = await conn.fetchrow(f"SELECT {_KEY_COLUMNS} FROM {SCHEMA}.api_keys WHERE id = $1", key.id)
            return _api_key(again), False
    return _api_key(revoked), True


class KeyCache:
    """Answers "whose key is this?" from memory.

    All active keys are loaded at start and reloaded when `nudge_keys` is notified (any key
    change, revocation included): a reload replaces the whole map, so a revoked key is gone
    from memory once the reload that follows its notification is in. A key not in memory is
    looked up once and remembered as unknown for `negative_ttl` seconds, so a flood of bad keys
    costs no database work.

    What a query read before a revocation must not outlive it: reloads run concurrently (one
    per notification), so one that started earlier and ends later is not installed over a
    newer one, and a key looked up while a reload started is answered but not kept.
    """

    def __init__(self, pool: asyncpg.Pool, negative_ttl: float = 5.0, negative_max: int = 10_000):
        self._pool = pool
        self._by_hash: dict[bytes, Principal] = {}
        self._unknown: dict[bytes, float] = {}
        self._negative_ttl = negative_ttl
        self._negative_max = negative_max
        self._started = 0  # reloads started
        self._installed = 0  # the number of the reload whose map is in use

    async def reload(self, _payload: str | None = None) -> None:
        self._started += 1
        number = self._started
        rows = await self._pool.fetch(
            f"SELECT id, app_id, key_hash, scopes FROM {SCHEMA}.api_keys WHERE revoked_at IS NULL"
        )
        if number < self._installed:
            return  # a reload started after this one is in already: what this one read is older
        self._installed = number
        self._by_hash = {bytes(r["key_hash"]): self._principal(r) for r in rows}
        self._unknown.clear()

    @staticmethod
    def _principal(row: asyncpg.Record) -> Principal:
        return Principal(app_id=row["app_id"], key_id=row["id"], scopes=frozenset(row["scopes"]))

    async def authenticate(self, key: str) -> Principal:
        digest = hash_key(key)
        found = self._by_hash.get(digest)
        if found is not None:
            return found
        now = time.monotonic()
        if self._unknown.get(digest, 0.0) > now:
            raise Unauthenticated("unknown or revoked API key")
        started = self._started
        row = await self._pool.fetchrow(
            f"SELECT id, app_id, key_hash, scopes FROM {SCHEMA}.api_keys"
            " WHERE key_hash = $1 AND revoked_at IS NULL",
            digest,
        )
        if started != self._started:
            # A key change was notified while this was read: the answer may predate it (a key
            # revoked since), so it is not remembered either way; the reload decides.
            if row is None:
                raise Unauthenticated("unknown or revoked API key")
            return self._principal(row)
        if row is None:
            if len(self._unknown) >= self._negative_max:
                self._unknown = {k: t for k, t in self._unknown.items() if t > now}
                if len(self._unknown) >= self._negative_max:
                    self._unknown.clear()
            self._unknown[digest] = now + self._negative_ttl
            raise Unauthenticated("unknown or revoked API key")
        principal = self._principal(row)
        self._by_hash[digest] = principal
        return principal
