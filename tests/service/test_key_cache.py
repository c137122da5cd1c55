"""The API key cache every service authenticates with (nudgelib.accounts.KeyCache), on the
real database: a revoked key is gone from memory after the reload its notification starts,
even when a query that read it before the revocation ends after that reload (a lookup of a
key not yet in memory, or an older reload). The interleavings are made by holding a query's
answer back until the test lets it through."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from nudgelib import accounts
from nudgelib.errors import Unauthenticated
from tests.helpers import App


class HeldPool:
    """The real pool, except that the next `fetch` or `fetchrow` named in `hold` keeps its
    answer until `release` is set."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self.hold: set[str] = set()
        self.release = asyncio.Event()
        self.answered = asyncio.Event()  # the held query has its answer (and waits)

    async def _held(self, name: str, *args):
        answer = await getattr(self._pool, name)(*args)
        if name in self.hold:
            self.hold.discard(name)
            self.answered.set()
            await self.release.wait()
        return answer

    async def fetch(self, *args):
        return await self._held("fetch", *args)

    async def fetchrow(self, *args):
        return await self._held("fetchrow", *args)


@pytest.fixture
async def pool(database_url):
    p = await asyncpg.create_pool(database_url, min_size=1, max_size=3)
    yield p
    await p.close()


async def revoke(pool: asyncpg.Pool, secret: str) -> None:
    async with pool.acquire() as conn:
        assert await accounts.revoke_key(conn, secret.split("_")[1])


async def test_a_lookup_that_read_a_key_before_its_revocation_does_not_keep_it(pool, app: App):
    held = HeldPool(pool)
    cache = accounts.KeyCache(held)
    await cache.reload()
    async with pool.acquire() as conn:
        secret = (await accounts.create_key(conn, app.id, "late", (accounts.Scope.EVENTS_WRITE,))).secret
    # Not in memory (no notification reached this cache): looked up, and the answer held back.
    held.hold.add("fetchrow")
    lookup = asyncio.ensure_future(cache.authenticate(secret))
    await held.answered.wait()
    # Meanwhile the key is revoked, and the reload its notification starts completes.
    await revoke(pool, secret)
    await cache.reload()
    held.release.set()
    # The call that asked before the revocation is answered with what it read...
    assert (await lookup).key_id == secret.split("_")[1]
    # ...and nothing after it is.
    with pytest.raises(Unauthenticated):
        await cache.authenticate(secret)


async def test_a_reload_that_ends_after_a_newer_one_is_not_installed(pool, app: App):
    held = HeldPool(pool)
    cache = accounts.KeyCache(held)
    secret = app.keys["events"]
    await cache.reload()
    assert (await cache.authenticate(secret)).app_id == app.id
    # A reload (of an earlier notification) reads the key while it is active, and is slow.
    held.hold.add("fetch")
    older = asyncio.ensure_future(cache.reload())
    await held.answered.wait()
    # The key is revoked; its notification's reload reads after that and is in first.
    await revoke(pool, secret)
    await cache.reload()
    held.release.set()
    await older
    with pytest.raises(Unauthenticated):
        await cache.authenticate(secret)
