"""Concurrent reads of users, coalesced into one query per round.

Under load, each GetUserContext that misses the cache would cost a pool checkout and a round
trip of its own. Instead, lookups of one app that arrive while earlier ones are being read
wait for the next round and are read together (`user_id = any($2)`): one checkout, one round
trip, for as many users as arrived. When idle, a lookup starts its round at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

Fetch = Callable[[str, list[str]], Awaitable[dict[str, Any]]]


class BatchedReads:
    def __init__(self, fetch: Fetch, max_in_flight: int = 1, max_batch: int = 256) -> None:
        self._fetch = fetch
        self._slots = asyncio.Semaphore(max_in_flight)
        self._max_batch = max_batch
        # app_id -> the round still taking lookups: user_id -> its result
        self._open: dict[str, dict[str, asyncio.Future]] = {}

    async def get(self, app_id: str, user_id: str) -> Any:
        waiting = self._open.get(app_id)
        if waiting is None or len(waiting) >= self._max_batch:
            waiting = self._open[app_id] = {}
            asyncio.ensure_future(self._run(app_id, waiting))
        future = waiting.get(user_id)
        if future is None:
            future = waiting[user_id] = asyncio.get_running_loop().create_future()
        # Shielded: a caller that gives up must not cancel the others waiting on the same user.
        return await asyncio.shield(future)

    async def _run(self, app_id: str, waiting: dict[str, asyncio.Future]) -> None:
        async with self._slots:
            if self._open.get(app_id) is waiting:
                del self._open[app_id]  # later lookups start the next round
            try:
                found = await self._fetch(app_id, list(waiting))
            except BaseException as exc:  # noqa: BLE001 - every waiter gets the failure
                for future in waiting.values():
                    if not future.done():
                        future.set_exception(exc)
                        future.exception()  # retrieved here too: no "never retrieved" warning
                if isinstance(exc, asyncio.CancelledError):
                    raise
                return
            for user_id, future in waiting.items():
                if not future.done():
                    future.set_result(found.get(user_id))
