"""Concurrent requests coalesce into one call per round, and never wait when idle."""

from __future__ import annotations

import asyncio

import pytest

from nudgelib.coalesce import Coalescer


class Recorder:
    def __init__(self, fail_on: str | None = None) -> None:
        self.calls: list[tuple[str, list[int]]] = []
        self.release = asyncio.Event()
        self.fail_on = fail_on

    async def send(self, key: str, items: list[int]) -> list[int]:
        self.calls.append((key, list(items)))
        await self.release.wait()
        if key == self.fail_on:
            raise ConnectionError("peer down")
        return [i * 10 for i in items]


async def test_requests_arriving_while_a_call_is_out_go_together_in_the_next():
    recorder = Recorder()
    coalescer = Coalescer(recorder.send)
    first = asyncio.ensure_future(coalescer.submit("a", 1))
    await asyncio.sleep(0)  # the first round starts at once, alone
    rest = [asyncio.ensure_future(coalescer.submit("a", i)) for i in (2, 3, 4)]
    await asyncio.sleep(0)
    recorder.release.set()
    assert await first == 10
    assert await asyncio.gather(*rest) == [20, 30, 40]
    assert recorder.calls == [("a", [1]), ("a", [2, 3, 4])]


async def test_a_round_waits_its_gather_turns_for_requests_on_their_way():
    async def arrives_after(turns: int, coalescer: Coalescer, item: int) -> int:
        for _ in range(turns):
            await asyncio.sleep(0)
        return await coalescer.submit("a", item)

    for gather_turns, expected in ((0, [[1], [2, 3]]), (4, [[1, 2, 3]])):
        recorder = Recorder()
        recorder.release.set()
        coalescer = Coalescer(recorder.send, gather_turns=gather_turns)
        # A request now, two more a couple of loop turns later (as a server's calls reach
        # their handlers one after another).
        assert await asyncio.gather(arrives_after(0, coalescer, 1), arrives_after(2, coalescer, 2),
                                    arrives_after(2, coalescer, 3)) == [10, 20, 30]
        assert [items for _, items in recorder.calls] == expected


async def test_rounds_are_per_key_and_bounded_in_size():
    recorder = Recorder()
    coalescer = Coalescer(recorder.send, max_in_flight=2, max_batch=2)
    futures = [asyncio.ensure_future(coalescer.submit(k, i)) for k, i in (("a", 1), ("b", 2), ("a", 3), ("a", 4),
                                                                          ("a", 5))]
    await asyncio.sleep(0)
    recorder.release.set()
    assert await asyncio.gather(*futures) == [10, 20, 30, 40, 50]
    assert sorted(recorder.calls) == [("a", [1, 3]), ("a", [4, 5]), ("b", [2])]


async def test_a_failed_call_fails_every_request_of_its_round_only():
    recorder = Recorder(fail_on="down")
    coalescer = Coalescer(recorder.send, max_in_flight=2)
    doomed = [asyncio.ensure_future(coalescer.submit("down", i)) for i in (1, 2)]
    fine = asyncio.ensure_future(coalescer.submit("up", 3))
    await asyncio.sleep(0)
    recorder.release.set()
    for future in doomed:
        with pytest.raises(ConnectionError):
            await future
    assert await fine == 30


async def test_a_caller_giving_up_does_not_cancel_the_others():
    recorder = Recorder()
    coalescer = Coalescer(recorder.send)
    impatient = asyncio.ensure_future(coalescer.submit("a", 1))
    patient = asyncio.ensure_future(coalescer.submit("a", 2))
    await asyncio.sleep(0)
    impatient.cancel()
    recorder.release.set()
    assert await patient == 20
