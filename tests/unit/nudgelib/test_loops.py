"""The supervised background loop: backoff with jitter, wake-ups, polling, and what a failure
does (an expected one is retried, a bug ends the loop, loudly)."""

from __future__ import annotations

import asyncio

import asyncpg
import grpc
import pytest
from hypothesis import given
from hypothesis import strategies as st
from structlog.testing import capture_logs

from nudgelib.errors import Unavailable
from nudgelib.loops import AT_ONCE, Backoff, Loop, run_together


# ---------------------------------------------------------------- backoff


def test_backoff_grows_by_its_multiplier_up_to_its_maximum():
    b = Backoff(initial=0.1, multiplier=2, maximum=1.0, jitter=0)
    assert [b.delay(n) for n in range(1, 7)] == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0])
    # Hours of failures in a row do not overflow.
    assert b.delay(100_000) == 1.0


@given(failures=st.integers(1, 2000), draw=st.floats(0, 1, exclude_max=True),
       jitter=st.floats(0, 0.9), multiplier=st.floats(1, 10))
def test_jitter_stays_within_its_fraction_and_never_above_the_maximum(failures, draw, jitter, multiplier):
    b = Backoff(initial=0.1, multiplier=multiplier, maximum=5.0, jitter=jitter)
    nominal = Backoff(initial=0.1, multiplier=multiplier, maximum=5.0, jitter=0).delay(failures)
    delay = b.delay(failures, rand=lambda: draw)
    assert nominal * (1 - jitter) - 1e-9 <= delay <= min(5.0, nominal * (1 + jitter)) + 1e-9


def test_jitter_spreads_retries_that_failed_together():
    delays = {round(Backoff(jitter=0.2).delay(3), 6) for _ in range(50)}
    assert len(delays) > 10
    assert all(0.32 <= d <= 0.48 for d in delays)


def test_steady_backoff_keeps_its_interval():
    b = Backoff.steady(2.0)
    assert all(1.6 <= b.delay(n) <= 2.0 for n in (1, 5, 50))


@pytest.mark.parametrize("kwargs", [dict(initial=0), dict(initial=2, maximum=1), dict(multiplier=0.5),
                                    dict(jitter=1)])
def test_a_backoff_that_makes_no_sense_is_refused(kwargs):
    with pytest.raises(ValueError):
        Backoff(**kwargs)


# ---------------------------------------------------------------- the loop


class Steps:
    """A step that records when it ran and answers from a script (then `rest`)."""

    def __init__(self, script=(), rest=None) -> None:
        self.script = list(script)
        self.rest = rest
        self.times: list[float] = []
        self.ran = asyncio.Event()

    async def __call__(self):
        self.times.append(asyncio.get_running_loop().time())
        self.ran.set()
        outcome = self.script.pop(0) if self.script else self.rest
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    async def wait_runs(self, n: int, timeout: float = 2.0) -> None:
        async def enough():
            while len(self.times) < n:
                self.ran.clear()
                await self.ran.wait()

        await asyncio.wait_for(enough(), timeout)


async def running(loop: Loop):
    task = asyncio.create_task(loop.run())
    await asyncio.sleep(0)
    return task


async def stop(task: asyncio.Task) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_an_idle_loop_waits_until_woken():
    steps = Steps()
    loop = Loop("t", steps, poll=30)
    task = await running(loop)
    try:
        await steps.wait_runs(1)
        await asyncio.sleep(0.2)
        assert len(steps.times) == 1  # idle: waits for its long poll interval
        loop.wake("payload")  # as a NOTIFY callback calls it
        await steps.wait_runs(2, timeout=1)
    finally:
        await stop(task)


async def test_a_wake_up_during_a_step_runs_it_again():
    loop: Loop
    steps = Steps()

    async def step():
        await steps()
        if len(steps.times) == 1:
            loop.wake()  # work arrived while this step was looking
        return None

    loop = Loop("t", step, poll=30)
    task = await running(loop)
    try:
        await steps.wait_runs(2, timeout=1)
    finally:
        await stop(task)


async def test_an_idle_loop_polls_at_its_interval():
    steps = Steps()
    task = await running(Loop("t", steps, poll=0.05))
    try:
        await steps.wait_runs(5)
    finally:
        await stop(task)
    gaps = [b - a for a, b in zip(steps.times, steps.times[1:])]
    assert all(g >= 0.045 for g in gaps)


async def test_more_work_runs_again_at_once_and_a_deadline_sooner_than_the_poll():
    steps = Steps(script=[AT_ONCE, AT_ONCE, 0.1], rest=None)
    task = await running(Loop("t", steps, poll=30))
    try:
        await steps.wait_runs(4, timeout=1)
        await asyncio.sleep(0.1)
        assert len(steps.times) == 4  # then idle, for the poll interval
    finally:
        await stop(task)
    gaps = [b - a for a, b in zip(steps.times, steps.times[1:])]
    assert gaps[0] < 0.05 and gaps[1] < 0.05
    assert 0.09 <= gaps[2] < 1


@pytest.mark.parametrize("error", [
    ConnectionRefusedError("refused"),
    TimeoutError(),
    asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
    asyncpg.exceptions.AdminShutdownError("terminating connection due to administrator command"),
    asyncpg.exceptions.SerializationError("could not serialize access"),
    asyncpg.exceptions.LockNotAvailableError("canceling statement due to lock timeout"),
    asyncpg.exceptions.TooManyConnectionsError("too many clients"),
    # PostgreSQL killed under a transaction: asyncpg says so when the connection is next used.
    asyncpg.InterfaceError("cannot call Transaction.__aexit__(): the underlying connection is closed"),
    asyncpg.exceptions.InternalClientError("cannot switch to state 15; another operation (2) is in progress"),
    grpc.aio.AioRpcError(grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata(), "down"),
    grpc.aio.AioRpcError(grpc.StatusCode.INTERNAL, grpc.aio.Metadata(), grpc.aio.Metadata(), "peer bug"),
    Unavailable("decision is unavailable (DEADLINE_EXCEEDED); retry shortly"),
])
async def test_an_expected_failure_backs_off_then_the_loop_recovers(error):
    steps = Steps(script=[error, error, error], rest=None)
    failures: list[BaseException] = []
    loop = Loop("outbox-x", steps, poll=30, backoff=Backoff(initial=0.02, maximum=0.05, jitter=0.5),
                on_failure=failures.append)
    with capture_logs() as logs:
        task = await running(loop)
        try:
            await steps.wait_runs(4)
            await asyncio.sleep(0.01)
            assert not task.done()
        finally:
            await stop(task)
    gaps = [b - a for a, b in zip(steps.times, steps.times[1:])]
    # 0.02, 0.04, 0.05 nominal, each at least half that with a jitter of 0.5.
    assert gaps[0] >= 0.01 and gaps[1] >= 0.02 and gaps[2] >= 0.025
    assert failures == [error] * 3 and loop.failures == 0
    failed = [e for e in logs if e["event"] == "loop_step_failed"]
    assert [e["loop"] for e in failed] == ["outbox-x"] * 3
    # Said once as a warning, then quietly while it goes on failing the same way.
    assert [e["log_level"] for e in failed] == ["warning", "debug", "debug"]
    assert [e for e in logs if e["event"] == "loop_recovered"][0]["loop"] == "outbox-x"


@pytest.mark.parametrize("bug", [
    KeyError("campaign"),
    TypeError("unsupported operand"),
    asyncpg.exceptions.UndefinedColumnError('column "x" does not exist'),
    RuntimeError("oops"),
    asyncpg.InterfaceError("cannot perform operation: another operation is in progress"),
])
async def test_a_bug_ends_the_loop_and_is_logged_with_its_name(bug):
    steps = Steps(script=[None, bug])
    loop = Loop("sweeper", steps, poll=0.01)
    with capture_logs() as logs:
        with pytest.raises(type(bug)):
            await asyncio.wait_for(loop.run(), 2)
    crashed = [e for e in logs if e["event"] == "loop_crashed"]
    assert len(crashed) == 1 and crashed[0]["loop"] == "sweeper" and crashed[0]["log_level"] == "error"
    assert crashed[0]["exc_info"] is True


async def test_loops_run_together_stop_together_when_one_crashes():
    quiet = Steps()
    with capture_logs():
        with pytest.raises(KeyError):
            await asyncio.wait_for(run_together([
                Loop("quiet", quiet, poll=0.01), Loop("buggy", Steps(script=[None, KeyError("x")]), poll=0.01)]), 2)
    ran = len(quiet.times)
    await asyncio.sleep(0.05)
    assert len(quiet.times) == ran  # the other loop was stopped, not left running
