"""Concurrent requests coalesced into one call per round.

Under load, each request that needs a round trip of its own (a database read, a call to
another service) pays that trip's fixed cost. Instead, requests of one key that arrive while
earlier rounds are in flight wait for the next round and go together: one trip for as many
requests as arrived. When idle, a request starts its round at once, so nothing waits for a
timer; the batch grows only as the load does.

A round may also wait a few loop turns (`gather_turns`) once it is free to start. On a busy
server, calls that have already arrived are still working their way from the socket to
their handler; a few turns let them join. Segmentation's context reads, measured under a
saturating load of cache misses: 1.9 lookups per round at once, 3.4 after 8 turns. Idle, a
turn costs microseconds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")
R = TypeVar("R")

# send(key, items) -> one result per item, in order.
Send = Callable[[K, list[T]], Awaitable[Sequence[R]]]


class _Round(Generic[T]):
    __slots__ = ("items", "futures")

    def __init__(self) -> None:
        self.items: list[T] = []
        self.futures: list[asyncio.Future] = []


class Coalescer(Generic[K, T, R]):
    def __init__(self, send: Send, max_in_flight: int = 1, max_batch: int = 256, gather_turns: int = 0) -> None:
        self._send = send
        self._gather_turns = gather_turns
        self._slots = asyncio.Semaphore(max_in_flight)
        self._max_batch = max_batch
        # key -> the round still taking requests
        self._open: dict[K, _Round[T]] = {}
        # The rounds' tasks, held until done (the loop keeps only weak references).
        self._tasks: set[asyncio.Task] = set()

    async def submit(self, key: K, item: T) -> R:
        waiting = self._open.get(key)
        if waiting is None or len(waiting.items) >= self._max_batch:
            waiting = self._open[key] = _Round()
            task = asyncio.ensure_future(self._run(key, waiting))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        # One future per request: a caller that gives up cancels its own, never the round.
        future = asyncio.get_running_loop().create_future()
        waiting.items.append(item)
        waiting.futures.append(future)
        return await future

    async def _run(self, key: K, waiting: _Round[T]) -> None:
        async with self._slots:
            for _ in range(self._gather_turns):
                await asyncio.sleep(0)
            if self._open.get(key) is waiting:
                del self._open[key]  # later requests start the next round
            try:
                results = await self._send(key, waiting.items)
                if len(results) != len(waiting.items):
                    raise RuntimeError(f"{len(results)} results for {len(waiting.items)} requests")
            except BaseException as exc:  # noqa: BLE001 - every waiter gets the failure
                for future in waiting.futures:
                    if not future.done():
                        future.set_exception(exc)
                        future.exception()  # retrieved here too: no "never retrieved" warning
                if isinstance(exc, asyncio.CancelledError):
                    raise
                return
            for future, result in zip(waiting.futures, results):
                if not future.done():
                    future.set_result(result)
