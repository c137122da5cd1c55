"""The reservations of one DecideBatch, written together in one transaction.

Each pull of a batch is decided on its own (its context, its plan from cached state, its
span), and those whose plan writes (hands something out, assigns an arm) hand their re-plan
to the batch instead of each running a transaction of its own: once every pull of the batch
has either handed its re-plan over or found it writes nothing, one transaction takes all
their users' locks, loads all their states, re-plans each and writes every reservation
(store.reserve_many). A pull costs a share of one transaction, not five round trips.

Caps stay exact as with one transaction per pull: every plan that is written was made under
its user's lock from the state in the database, and a user twice in the batch is planned
the second time on the state with the first reservation in it.

One pull's failure is its own: a plan that raises fails only its pull. If the transaction
itself fails, the database being away fails every pull of it (each is told to retry);
anything else (a deadlock, a value the database refuses) has each pull tried again in a
transaction of its own, so that only the one at fault fails.
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import structlog

from nudgelib.db import unreachable
from services.decision import store
from services.decision.model import UserState

log = structlog.get_logger(__name__)


class ReservationBatch:
    """Expects `expected` pulls, each of which calls exactly one of `reserve` (its plan
    writes) or `skip` (it writes nothing, or failed before its re-plan)."""

    def __init__(self, pool: asyncpg.Pool, expected: int) -> None:
        self._pool = pool
        self._expected = expected
        self._items: list[tuple[store.Reserve, asyncio.Future]] = []
        self._task: asyncio.Task | None = None

    def skip(self) -> None:
        self._arrived()

    async def reserve(self, request: store.Reserve[Any]) -> tuple[Any, UserState]:
        future = asyncio.get_running_loop().create_future()
        self._items.append((request, future))
        self._arrived()
        return await future

    def _arrived(self) -> None:
        self._expected -= 1
        if self._expected < 0:
            raise RuntimeError("more pulls arrived than the batch expected")
        if self._expected == 0 and self._items:
            # Held here: the loop keeps only a weak reference to a task. A pull that gives up
            # (its call cancelled) cancels its own wait, never the others' transaction.
            self._task = asyncio.ensure_future(self._write())

    async def _write(self) -> None:
        items = self._items
        try:
            results = await self._results([request for request, _ in items])
        except BaseException:  # cancelled (shutting down): so is every pull's wait
            for _, future in items:
                future.cancel()
            raise
        for (_, future), result in zip(items, results):
            if future.done():
                continue
            if isinstance(result, BaseException):
                future.set_exception(result)
                future.exception()  # retrieved: its pull may have given up waiting
            else:
                future.set_result(result)

    async def _results(self, requests: list[store.Reserve]) -> list[Any]:
        try:
            return await store.reserve_many(self._pool, requests)
        except Exception as exc:  # noqa: BLE001 - each pull gets its own outcome below
            if len(requests) == 1 or unreachable(exc):
                return [exc] * len(requests)
            log.warning("reservation_batch_failed", pulls=len(requests), error=str(exc))
        alone = await asyncio.gather(*(store.reserve_many(self._pool, [r]) for r in requests),
                                     return_exceptions=True)
        return [a if isinstance(a, BaseException) else a[0] for a in alone]
