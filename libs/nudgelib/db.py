"""PostgreSQL access shared by the services: one asyncpg pool per process, an ordered SQL
migration runner per schema, and a LISTEN helper that survives reconnects."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg
import structlog

from nudgelib.lost_connections import connection_lost
from nudgelib.loops import Backoff, Loop

log = structlog.get_logger(__name__)

_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


async def _reset(conn: asyncpg.Connection) -> None:
    """What a connection needs before going back to the pool: only an end to a transaction
    left open. asyncpg's default also runs `RESET ALL; UNLISTEN *; CLOSE ALL; SELECT
    pg_advisory_unlock_all()` on every release, a round trip per query that costs about a
    third of a short lookup. Nudge changes no session state on pooled connections: locks are
    transaction-scoped, settings are SET LOCAL, and LISTEN uses connections of its own."""
    if conn.is_in_transaction():
        await conn.execute("ROLLBACK")


async def create_pool(url: str, schema: str, min_size: int = 2, max_size: int = 10) -> asyncpg.Pool:
    """A pool whose connections see the service's own schema first on the search path."""
    return await asyncpg.create_pool(
        url,
        min_size=min_size,
        max_size=max_size,
        reset=_reset,
        server_settings={"search_path": f"{schema},public", "application_name": f"nudge-{schema}"},
    )


class HeldConnection:
    """One pooled connection kept by a reader that runs one statement at a time, such as a
    Coalescer with one round in flight: it saves the pool's checkout and return per
    statement (about 40 µs of CPU each, as much as a short query itself). A statement that
    fails or is cancelled gives the connection back to the pool, which resets or discards
    it; the next one takes another. Should statements overlap after all, the extra ones
    use the pool as usual. `close` gives it back for good: run it before the pool closes."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._conn: asyncpg.Connection | None = None
        self._busy = False

    async def fetch(self, query: str, *args) -> list[asyncpg.Record]:
        if self._busy:
            return await self._pool.fetch(query, *args)
        self._busy = True
        try:
            if self._conn is None:
                self._conn = await self._pool.acquire()
            try:
                return await self._conn.fetch(query, *args)
            except BaseException:
                await self.close()
                raise
        finally:
            self._busy = False

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await self._pool.release(conn)


# What a lost or restarting database raises, rather than a bug: the socket refused or gone
# (OSError), a connection closed under a query (class 08), the server shutting down,
# crashed, still starting ("cannot connect now") or out of connections (57P01-03, 53300), and
# a wait on the pool or a statement cut short (TimeoutError, 57014).
_UNREACHABLE: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.TooManyConnectionsError,
)


def unreachable(exc: BaseException) -> bool:
    """Whether `exc` (or what caused it) says the database cannot be reached right now, so the
    caller should hear UNAVAILABLE and retry, not INTERNAL."""
    seen = 0
    while exc is not None and seen < 5:
        if isinstance(exc, _UNREACHABLE):
            return True
        if connection_lost(exc):
            return True
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False


def bad_value(exc: BaseException) -> bool:
    """Whether `exc` is PostgreSQL (or asyncpg's encoder) refusing a value: a number past its
    column's type, text it cannot hold (SQLSTATE class 22). Validation should have stopped the
    value at the door; when it did not, the caller still sent it, so it hears INVALID_ARGUMENT."""
    return isinstance(exc, asyncpg.DataError)


class Probe:
    """Answers whether the database is up, on a connection of its own: a probe through the
    pool would wait behind busy connections and report a loaded database as down. A failed
    check drops the connection; the next one connects again."""

    def __init__(self, url: str, timeout: float = 0.5) -> None:
        self._url = url
        self._timeout = timeout
        self._conn: asyncpg.Connection | None = None
        # Why the last check failed, for the log line that reports the database down: not
        # answering in time and refusing the connection ("too many clients") call for
        # different fixes.
        self.error: str | None = None

    async def check(self) -> bool:
        try:
            if self._conn is None or self._conn.is_closed():
                self._conn = await asyncpg.connect(self._url, timeout=self._timeout)
            await self._conn.fetchval("SELECT 1", timeout=self._timeout)
            self.error = None
            return True
        except Exception as exc:  # noqa: BLE001 - any failure means the database is not answering
            self.error = f"no answer within {self._timeout:g}s" if isinstance(exc, TimeoutError) else (
                str(exc) or type(exc).__name__)
            await self.close()
            return False

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.terminate()


async def wait_for_database(url: str, timeout: float = 30.0) -> None:
    """Retries connecting until the database answers, so services may start before it."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            conn = await asyncpg.connect(url, timeout=5)
            await conn.close()
            return
        except (OSError, asyncpg.PostgresError, asyncio.TimeoutError) as exc:
            if asyncio.get_running_loop().time() > deadline:
                raise RuntimeError(f"database not reachable after {timeout:.0f}s: {exc}") from exc
            await asyncio.sleep(0.5)


def migration_files(directory: Path) -> list[Path]:
    files = []
    for path in sorted(directory.glob("*.sql")):
        if not _MIGRATION_NAME.match(path.name):
            raise RuntimeError(f"migration file name must look like 0001_name.sql: {path.name}")
        files.append(path)
    return files


async def migrate(url: str, schema: str, directory: Path) -> list[str]:
    """Applies the schema's pending migrations in order, each in its own transaction.

    Several replicas may start at once: an advisory lock per schema lets one migrate while
    the others wait, then find nothing left to do. Returns the names applied.
    """
    applied: list[str] = []
    conn = await asyncpg.connect(url)
    try:
        lock_key = int.from_bytes(schema.encode()[:8].ljust(8, b"\0"), "big", signed=True)
        await conn.execute("SELECT pg_advisory_lock($1)", lock_key)
        try:
            await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
            await conn.execute(
                f'CREATE TABLE IF NOT EXISTS "{schema}".schema_migrations ('
                " name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {r["name"] for r in await conn.fetch(f'SELECT name FROM "{schema}".schema_migrations')}
            for path in migration_files(directory):
                if path.name in done:
                    continue
                async with conn.transaction():
                    await conn.execute(f'SET LOCAL search_path TO "{schema}", public')
                    await conn.execute(path.read_text())
                    await conn.execute(
                        f'INSERT INTO "{schema}".schema_migrations (name) VALUES ($1)', path.name
                    )
                applied.append(path.name)
                log.info("migration_applied", schema=schema, migration=path.name)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", lock_key)
    finally:
        await conn.close()
    return applied


class Listener:
    """Calls `on_notify(payload)` for each NOTIFY on `channel`, reconnecting when the
    connection drops. After a reconnect `on_notify(None)` is called, since notifications
    may have been missed and caches should be dropped. `run()` is its loop (see
    nudgelib.loops), for the service to supervise; `start()` / `stop()` run it on its own."""

    def __init__(self, url: str, channel: str, on_notify: Callable[[str | None], Awaitable[None] | None]):
        self._url = url
        self._channel = channel
        self._on_notify = on_notify
        self._task: asyncio.Task[None] | None = None
        self._first = True
        self.name = f"listen-{channel}"
        self.ready = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name=self.name)

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def run(self) -> None:
        # A second after the connection is lost (or could not be made), connect again.
        await Loop(self.name, self._listen, poll=1.0, backoff=Backoff.steady(1.0)).run()

    async def _dispatch(self, payload: str | None) -> None:
        try:
            result = self._on_notify(payload)
            if asyncio.iscoroutine(result):
                await result
        except Exception:  # noqa: BLE001 - one notification's handler failing ends nothing
            log.exception("notify_handler_failed", channel=self._channel)

    async def _listen(self) -> None:
        """One connection: listens until it is lost."""
        conn = await asyncpg.connect(self._url)
        try:
            lost = asyncio.Event()
            conn.add_termination_listener(lambda _c: lost.set())
            await conn.add_listener(
                self._channel,
                lambda _c, _pid, _ch, payload: asyncio.ensure_future(self._dispatch(payload)),
            )
            if not self._first:
                await self._dispatch(None)
            self._first = False
            self.ready.set()
            await lost.wait()
        finally:
            if not conn.is_closed():
                await conn.close()
