"""Apps and API keys: creation and revocation for operators (the `nudge` CLI), and the
in-memory key cache every service authenticates calls with.

The `accounts` schema is the one piece of data all services read: it is identity, not
domain data, and it can live in its own database (`NUDGE_ACCOUNTS_DATABASE_URL`).
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

import asyncpg
import structlog

from nudgelib.errors import Unauthenticated

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


async def list_keys(conn: asyncpg.Connection, app_id: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"SELECT id, label, scopes, created_at, revoked_at FROM {SCHEMA}.api_keys"
        " WHERE app_id = $1 ORDER BY created_at",
        app_id,
    )


async def revoke_key(conn: asyncpg.Connection, key_id: str) -> bool:
    """Revokes a key by id (the part after `nudge_`); false if there is no such active key."""
    revoked = await conn.fetchval(
        f"""WITH r AS (UPDATE {SCHEMA}.api_keys SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL
                       RETURNING 1)
            SELECT count(*) FROM r, pg_notify($2, '')""",
        key_id, NOTIFY_CHANNEL,
    )
    return revoked == 1


class KeyCache:
    """Answers "whose key is this?" from memory.

    All active keys are loaded at start and reloaded when `nudge_keys` is notified (any key
    change, revocation included). A key not in memory is looked up once and remembered as
    unknown for `negative_ttl` seconds, so a flood of bad keys costs no database work.
    """

    def __init__(self, pool: asyncpg.Pool, negative_ttl: float = 5.0, negative_max: int = 10_000):
        self._pool = pool
        self._by_hash: dict[bytes, Principal] = {}
        self._unknown: dict[bytes, float] = {}
        self._negative_ttl = negative_ttl
        self._negative_max = negative_max

    async def reload(self, _payload: str | None = None) -> None:
        rows = await self._pool.fetch(
            f"SELECT id, app_id, key_hash, scopes FROM {SCHEMA}.api_keys WHERE revoked_at IS NULL"
        )
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
        row = await self._pool.fetchrow(
            f"SELECT id, app_id, key_hash, scopes FROM {SCHEMA}.api_keys"
            " WHERE key_hash = $1 AND revoked_at IS NULL",
            digest,
        )
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
