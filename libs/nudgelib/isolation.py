"""What a dispatcher does when a consumer call fails, so that no tenant can stall another:
pure rules, shared by every outbox and loop that forwards items of many apps and users.

- **Whose fault.** A failure whose status means the consumer is away, overloaded or refuses
  everyone (`DOWN_CODES`: UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, and the like)
  says nothing about the items: they wait and are retried with backoff for as long as it
  takes, and are never dead-lettered, because accepted data must never be lost. Any other
  status (INVALID_ARGUMENT, INTERNAL, UNKNOWN…) may come from something in the request: it
  counts toward dead-lettering.
- **Split.** A call of several items that fails so is split in halves, each sent on its own,
  down to single items, so the items of other users (and other apps) in it still go through.
  Only an item that fails alone is charged an attempt.
- **Per-user order.** Once an item of a user fails and is kept for a retry, that user's later
  items in the same round are not sent: they wait behind it. When it is dead-lettered (after
  `max_attempts` failures), the user's later items are no longer held by it and go on, in
  order: a dead letter is a gap in that user's stream, not a stop.
- **Per-app backoff.** An app whose items failed is held back for a growing pause (`hold`),
  while every other app's items flow; a round without failures ends the hold.

Attempt counts and holds are kept in memory by the replica that tries (`Ledger`, bounded):
a restart starts the counts again, and with R replicas an item may be tried up to R times
`max_attempts` before one of them sets it aside. What is set aside is kept with its error, for
an operator to inspect and replay.
"""

from __future__ import annotations

import enum
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")

# Status codes that say the consumer (not the item) is the problem: wait, never dead-letter.
# Besides the three of a consumer down or overloaded: CANCELLED (our own call cut short, as at
# shutdown), ABORTED (a conflict that passes on retry), and the codes of a deployment that is
# wrong for everyone (credentials, a missing method), which must not turn every item into a
# dead letter while an operator fixes it.
DOWN_CODES = frozenset({
    "UNAVAILABLE", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED",
    "CANCELLED", "ABORTED", "UNAUTHENTICATED", "PERMISSION_DENIED", "UNIMPLEMENTED",
})


class Fault(enum.Enum):
    DOWN = "down"  # the consumer: wait and retry, whole
    ITEM = "item"  # possibly an item: split, count, dead-letter


def fault_of_code(code: str) -> Fault:
    """Whose fault a failed call's status code (its name, e.g. "INTERNAL") says it is."""
    return Fault.DOWN if code in DOWN_CODES else Fault.ITEM


@dataclass(frozen=True)
class Policy:
    """How many times an item may fail alone before it is set aside, and how long an app whose
    items failed is held back: `hold_initial`, doubling per failed round, at most `hold_maximum`."""

    max_attempts: int = 5
    hold_initial: float = 0.5
    hold_maximum: float = 30.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or not 0 < self.hold_initial <= self.hold_maximum:
            raise ValueError(f"not a failure policy: {self}")

    def hold(self, rounds: int) -> float:
        """The pause after `rounds` failed rounds in a row (1 for the first)."""
        return min(self.hold_maximum, self.hold_initial * 2.0 ** min(rounds - 1, 64))


class Ledger:
    """Attempts of failing items and holds of failing apps, in memory and bounded: past
    `capacity` entries the oldest are forgotten (an item forgotten starts its count again)."""

    def __init__(self, policy: Policy, capacity: int = 100_000) -> None:
        self.policy = policy
        self._capacity = capacity
        self._attempts: OrderedDict[Hashable, int] = OrderedDict()
        # app -> (failed rounds in a row, held until), on the caller's monotonic clock.
        self._holds: dict[str, tuple[int, float]] = {}

    def attempts(self, key: Hashable) -> int:
        return self._attempts.get(key, 0)

    def failed(self, key: Hashable) -> bool:
        """Charges an item one attempt; true once it has failed `max_attempts` times (it is to
        be set aside now, and is forgotten here)."""
        count = self._attempts.pop(key, 0) + 1
        if count >= self.policy.max_attempts:
            return True
        self._attempts[key] = count
        while len(self._attempts) > self._capacity:
            self._attempts.popitem(last=False)
        return False

    def succeeded(self, key: Hashable) -> None:
        self._attempts.pop(key, None)

    def held(self, now: float) -> list[str]:
        """The apps held back at `now`, whose items are not to be tried yet."""
        return sorted(app for app, (_, until) in self._holds.items() if until > now)

    def hold(self, app: str, now: float) -> float:
        """Holds an app back after a failed round; returns for how long."""
        rounds = self._holds.get(app, (0, 0.0))[0] + 1
        pause = self.policy.hold(rounds)
        self._holds[app] = (rounds, now + pause)
        return pause

    def release(self, app: str) -> None:
        """An app's round went through: no more hold."""
        self._holds.pop(app, None)


@dataclass
class Round(Generic[T]):
    """What became of the items of one `isolate` round."""

    sent: list[T] = field(default_factory=list)
    # Items set aside now, each with the error of its last failure.
    dead: list[tuple[T, str]] = field(default_factory=list)
    # Items not taken, to be tried again later: failed, behind a failed item of their user,
    # or not tried because the consumer is down.
    waiting: list[T] = field(default_factory=list)
    # Items that failed alone this round (charged an attempt, not yet set aside), and the text
    # of the last such failure.
    failed: int = 0
    error: str = ""
    failures: list[T] = field(default_factory=list)
    # The failure that says the consumer is down; the round stopped there.
    down: BaseException | None = None


async def isolate(items: Sequence[T], send: Callable[[list[T]], Awaitable[None]],
                  fault_of: Callable[[BaseException], tuple[Fault, str]], ledger: Ledger | None,
                  user_of: Callable[[T], Hashable], key_of: Callable[[T], Hashable] = id,
                  max_calls: int = 128, tried: BaseException | None = None) -> Round[T]:
    """Sends `items` (in order; one app), splitting a failed call down to single items.

    `user_of` is what orders items: once an item fails, the later items of its user wait
    (a log passes the lane, whose order it keeps). Without a `ledger`, an item that fails
    alone is never set aside here: it waits, and the caller counts its attempts.

    `fault_of` says whose fault a failure is and its text (it raises again what is neither,
    a bug of the caller). At most `max_calls` calls are made: what is left then waits, so
    an app whose every item fails cannot keep its dispatcher busy for long. `tried`: the
    failure of a call of all `items` the caller already made (it is not made again).
    """
    out: Round[T] = Round()
    blocked: set[Hashable] = set()
    calls = 0

    async def attempt(run: list[T]) -> None:
        nonlocal calls, tried
        todo = [i for i in run if user_of(i) not in blocked]
        out.waiting.extend(i for i in run if user_of(i) in blocked)
        if not todo:
            return
        if out.down is not None or calls >= max_calls:
            out.waiting.extend(todo)
            return
        calls += 1
        try:
            if tried is not None:
                first, tried = tried, None
                raise first
            await send(todo)
        except Exception as exc:  # noqa: BLE001 - fault_of raises again what is not a call's failure
            fault, error = fault_of(exc)
            if fault is Fault.DOWN:
                out.down = exc
                out.waiting.extend(todo)
            elif len(todo) > 1:
                half = len(todo) // 2
                await attempt(todo[:half])
                await attempt(todo[half:])
            elif ledger is not None and ledger.failed(key_of(todo[0])):
                out.dead.append((todo[0], error))
            else:
                out.failed += 1
                out.error = error
                out.failures.append(todo[0])
                blocked.add(user_of(todo[0]))
                out.waiting.append(todo[0])
            return
        if ledger is not None:
            for item in todo:
                ledger.succeeded(key_of(item))
        out.sent.extend(todo)

    await attempt(list(items))
    return out
