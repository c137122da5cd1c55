"""A held connection serves statements one after another on one backend, survives a failing
statement, lets overlapping statements through, and goes back to the pool on close."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from nudgelib import db

BACKEND = "SELECT pg_backend_pid() AS pid"


async def test_statements_share_one_connection_and_a_failure_gives_it_back(database_url):
    pool = await db.create_pool(database_url, "segmentation", 1, 3)
    held = db.HeldConnection(pool)
    try:
        first = (await held.fetch(BACKEND))[0]["pid"]
        assert (await held.fetch(BACKEND))[0]["pid"] == first
        assert pool.get_idle_size() == pool.get_size() - 1  # kept out of the pool

        with pytest.raises(asyncpg.DivisionByZeroError):
            await held.fetch("SELECT 1 / 0")
        assert pool.get_idle_size() == pool.get_size()  # given back after the failure
        assert (await held.fetch("SELECT $1::int + 1 AS n", 41))[0]["n"] == 42

        # Overlapping statements: the second one goes through the pool instead of failing.
        slow, quick = await asyncio.gather(held.fetch("SELECT pg_sleep(0.2), 'slow' AS v"),
                                           held.fetch("SELECT 'quick' AS v"))
        assert (slow[0]["v"], quick[0]["v"]) == ("slow", "quick")
    finally:
        await held.close()
        await asyncio.wait_for(pool.close(), 5)  # nothing left checked out


async def test_a_cancelled_statement_leaves_a_usable_reader(database_url):
    pool = await db.create_pool(database_url, "segmentation", 1, 2)
    held = db.HeldConnection(pool)
    try:
        task = asyncio.ensure_future(held.fetch("SELECT pg_sleep(5)"))
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert (await asyncio.wait_for(held.fetch("SELECT 7 AS n"), 5))[0]["n"] == 7
    finally:
        await held.close()
        await asyncio.wait_for(pool.close(), 5)
