"""The one background loop every service runs its recurring work on, and its backoff.

A `Loop` has a name and a step. It runs the step, then waits until it is woken (a LISTEN /
NOTIFY callback or an in-process `wake()`), until the step's own deadline, or until its poll
interval has passed, whichever comes first; then it runs the step again.

A step that fails for an expected reason (`EXPECTED`: the database or a peer is away) is
logged with the loop's name and retried after a backoff with jitter; the loop goes on. Any
other exception is a bug: it is logged with the loop's name and raised, so the task running
the loop ends with it. `ServiceHost.run_in_background` watches its tasks: the service then
reports NOT_SERVING and its process exits non-zero, for its supervisor to restart it. A loop
never dies unseen.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import asyncpg
import grpc
import structlog

from nudgelib.errors import Unavailable
from nudgelib.lost_connections import connection_lost

log = structlog.get_logger(__name__)

# Failures that come from outside the process and pass by themselves: the loop keeps its work
# and tries again after a backoff.
#  - OSError (ConnectionError and the other socket errors) and TimeoutError (asyncio's too);
#  - PostgreSQL away or busy: connection errors (SQLSTATE class 08, and asyncpg's
#    "connection was closed in the middle of operation"), transaction rollbacks (40:
#    serialization failures, deadlocks), insufficient resources (53: too many connections,
#    disk full), objects in use or locks not available (55: a lock_timeout), operator
#    intervention (57: shutdown, "cannot connect now", statement timeouts), system errors (58);
#  - a peer's failure: any gRPC error status it answers with (UNAVAILABLE and
#    DEADLINE_EXCEEDED mostly, but also its own INTERNAL: the peer's supervision reports its
#    bugs, and the work waits here until it is fixed rather than taking this service down
#    too), and `Unavailable`, which `Peer.call` raises for UNAVAILABLE and DEADLINE_EXCEEDED.
# Everything else (a SQL error, a KeyError, a TypeError…) is a bug of this service.
EXPECTED: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.TransactionRollbackError,
    asyncpg.exceptions.InsufficientResourcesError,
    asyncpg.exceptions.ObjectNotInPrerequisiteStateError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.PostgresSystemError,
    grpc.aio.AioRpcError,
    Unavailable,
)


def expected(exc: BaseException) -> bool:
    """Whether a step's failure passes by itself: one of EXPECTED, or asyncpg telling that
    PostgreSQL dropped the connection under the step (see nudgelib.lost_connections)."""
    return isinstance(exc, EXPECTED) or connection_lost(exc)


# What a step returns: how long, at most, until the loop looks again. AT_ONCE when more work is
# waiting; None for the loop's poll interval. A wake-up always comes sooner.
AT_ONCE = 0.0
Step = Callable[[], Awaitable[float | None]]


@dataclass(frozen=True)
class Backoff:
    """Pauses between retries: `initial`, times `multiplier` per failure in a row, at most
    `maximum`; each drawn within ±`jitter` (a fraction) of that, never above `maximum`, so
    replicas that failed together do not all retry at the same instant."""

    initial: float = 0.1
    multiplier: float = 2.0
    maximum: float = 5.0
    jitter: float = 0.2

    def __post_init__(self) -> None:
        if not (0 < self.initial <= self.maximum and self.multiplier >= 1 and 0 <= self.jitter < 1):
            raise ValueError(f"not a backoff: {self}")

    @classmethod
    def steady(cls, interval: float) -> "Backoff":
        """Retries every `interval` (jittered), for loops whose next round is soon enough."""
        return cls(initial=interval, multiplier=1.0, maximum=interval)

    def delay(self, failures: int, rand: Callable[[], float] = random.random) -> float:
        """The pause after `failures` failures in a row (1 for the first)."""
        try:
            nominal = min(self.maximum, self.initial * self.multiplier ** (failures - 1))
        except OverflowError:
            nominal = self.maximum
        return min(self.maximum, nominal * (1 - self.jitter + 2 * self.jitter * rand()))


class Loop:
    """A named step run for as long as the service lives; see the module's docstring."""

    def __init__(self, name: str, step: Step, *, poll: float, backoff: Backoff = Backoff(),
                 wake: asyncio.Event | None = None,
                 on_failure: Callable[[BaseException], None] | None = None) -> None:
        self.name = name
        self._step = step
        self._poll = poll
        self._backoff = backoff
        self._wake = wake if wake is not None else asyncio.Event()
        self._on_failure = on_failure
        # Failures of the step in a row, 0 once it works again.
        self.failures = 0

    def wake(self, _payload: str | None = None) -> None:
        """Runs the step again as soon as the current one is done (a NOTIFY callback too)."""
        self._wake.set()

    async def run(self) -> None:
        failing: str | None = None
        while True:
            # A wake-up during the step means work came after it looked: look again.
            self._wake.clear()
            try:
                after = await self._step()
            except Exception as exc:
                if not expected(exc):
                    log.exception("loop_crashed", loop=self.name)
                    raise
                self.failures += 1
                delay = self._backoff.delay(self.failures)
                error = f"{type(exc).__name__}: {exc}"
                # Said once per kind of failure, not on every retry.
                (log.warning if error != failing else log.debug)(
                    "loop_step_failed", loop=self.name, error=error, retry_in=round(delay, 3))
                failing = error
                if self._on_failure is not None:
                    self._on_failure(exc)
                await asyncio.sleep(delay)
                continue
            if failing is not None:
                log.info("loop_recovered", loop=self.name, failures=self.failures)
                failing = None
            self.failures = 0
            timeout = self._poll if after is None else min(after, self._poll)
            if timeout <= 0:
                continue
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
            except TimeoutError:
                pass


async def run_together(loops: list[Loop]) -> None:
    """Runs several loops as one task: if one crashes, the others stop and the error goes on."""
    try:
        async with asyncio.TaskGroup() as group:
            for loop in loops:
                group.create_task(loop.run(), name=loop.name)
    except ExceptionGroup as crashed:
        # The loop logged it with its name and traceback; the first is the one to report.
        raise crashed.exceptions[0] from None
