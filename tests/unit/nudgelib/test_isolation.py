"""The failure policy alone: whose fault a status is, splitting a failed call so other users'
items go through, per-user order behind a failing item, bounded attempts, app holds."""

from __future__ import annotations

import pytest

from nudgelib.isolation import Fault, Ledger, Policy, fault_of_code, isolate


class Boom(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def faults(exc: BaseException) -> tuple[Fault, str]:
    if isinstance(exc, Boom):
        return fault_of_code(exc.code), exc.code
    raise exc


class Consumer:
    """Takes a call unless it holds a poisoned item; records every call it is offered."""

    def __init__(self, poisoned: set[str], code: str = "INTERNAL") -> None:
        self.poisoned = poisoned
        self.code = code
        self.calls: list[list[str]] = []
        self.taken: list[str] = []

    async def __call__(self, items: list[tuple[str, str]]) -> None:
        self.calls.append([i for _, i in items])
        if any(i in self.poisoned for _, i in items):
            raise Boom(self.code)
        self.taken += [i for _, i in items]


def run(items, consumer, ledger, **kw):
    return isolate(items, consumer, faults, ledger, user_of=lambda i: i[0], key_of=lambda i: i[1], **kw)


def test_only_statuses_of_a_consumer_away_never_count():
    for code in ("UNAVAILABLE", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED"):
        assert fault_of_code(code) is Fault.DOWN
    for code in ("INVALID_ARGUMENT", "INTERNAL", "UNKNOWN", "FAILED_PRECONDITION"):
        assert fault_of_code(code) is Fault.ITEM


async def test_a_failed_call_is_split_so_other_users_items_go_through_and_the_failing_users_later_items_wait():
    items = [("u", "u1"), ("v", "v1"), ("u", "u2"), ("w", "w1"), ("v", "v2"), ("u", "u3")]
    consumer = Consumer({"u2"})
    ledger = Ledger(Policy(max_attempts=3))
    result = await run(items, consumer, ledger)
    # u's first item went before the poisoned one; u3 waits behind u2; v and w all went.
    assert sorted(consumer.taken) == ["u1", "v1", "v2", "w1"]
    assert [i for _, i in result.waiting] == ["u2", "u3"]
    assert (result.failed, result.dead, ledger.attempts("u2")) == (1, [], 1)
    # No user's items were ever taken out of order.
    for user in "uvw":
        mine = [i for i in consumer.taken if i[0] == user]
        assert mine == sorted(mine)


async def test_an_item_failing_alone_max_attempts_times_is_set_aside_and_its_users_later_items_go_on():
    items = [("u", "u1"), ("u", "u2"), ("v", "v1")]
    consumer = Consumer({"u1"})
    ledger = Ledger(Policy(max_attempts=3))
    for _ in range(2):
        result = await run(items, consumer, ledger)
        assert result.dead == [] and [i for _, i in result.waiting] == ["u1", "u2"]
    result = await run(items, consumer, ledger)
    assert result.dead == [(("u", "u1"), "INTERNAL")]
    assert "u2" in consumer.taken and result.waiting == []
    assert ledger.attempts("u1") == 0  # forgotten once set aside


async def test_a_consumer_that_is_down_never_dead_letters_and_stops_the_round():
    items = [("u", "u1"), ("v", "v1")]
    consumer = Consumer({"u1", "v1"}, code="UNAVAILABLE")
    ledger = Ledger(Policy(max_attempts=1))
    for _ in range(5):
        result = await run(items, consumer, ledger)
        assert result.dead == [] and result.down is not None and len(result.waiting) == 2
    assert len(consumer.calls) == 5  # one call per round, not split


async def test_a_bug_of_the_caller_is_raised_not_counted():
    async def broken(_items):
        raise KeyError("bug")

    with pytest.raises(KeyError):
        await run([("u", "u1")], broken, Ledger(Policy()))


async def test_calls_per_round_are_bounded_and_a_known_failure_is_not_sent_again():
    items = [("u", f"u{n}") for n in range(8)] + [("v", f"v{n}") for n in range(8)]
    consumer = Consumer({i for _, i in items})  # every item fails
    result = await run(items, consumer, Ledger(Policy(max_attempts=10)), max_calls=5, tried=Boom("INTERNAL"))
    # The call already made counts toward the five; it is not made again.
    assert len(consumer.calls) == 4 and consumer.calls[0] != [i for _, i in items]
    assert len(result.waiting) == len(items) and result.failed == 1


def test_an_app_is_held_with_a_growing_pause_until_a_round_goes_through():
    ledger = Ledger(Policy(max_attempts=3, hold_initial=1.0, hold_maximum=3.0))
    assert [ledger.hold("a", 0.0) for _ in range(4)] == [1.0, 2.0, 3.0, 3.0]
    assert ledger.held(2.9) == ["a"] and ledger.held(3.0) == []
    ledger.release("a")
    assert ledger.hold("a", 10.0) == 1.0


def test_the_ledger_is_bounded():
    ledger = Ledger(Policy(max_attempts=5), capacity=2)
    for key in "abc":
        ledger.failed(key)
    assert [ledger.attempts(k) for k in "abc"] == [0, 1, 1]
