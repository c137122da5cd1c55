"""When a failed call is tried again, and after how long: plain rules over status code names
and the server's advice, no gRPC here, so they are tested alone."""

from __future__ import annotations

import random
from dataclasses import dataclass

# UNAVAILABLE: the server (or the way to it) is down for now; Nudge's services send it with a
# RetryInfo when a dependency is away. RESOURCE_EXHAUSTED is retried only with a RetryInfo:
# ingestion sends one while it sheds load, saying when to come back; without one it is a
# limit that waiting will not lift.
ALWAYS_RETRIED = frozenset({"UNAVAILABLE"})
RETRIED_WITH_ADVICE = frozenset({"RESOURCE_EXHAUSTED"})


@dataclass(frozen=True)
class RetryPolicy:
    """Attempts and backoff for one call. The n-th retry waits the server's RetryInfo delay
    when it sent one, else a random time in [delay/2, delay] with delay = initial × multiplier^(n-1)
    capped at `max_backoff` (jitter spreads clients that failed together)."""

    max_attempts: int = 4  # the first try included; 1 turns retries off
    initial_backoff: float = 0.1
    multiplier: float = 2.0
    max_backoff: float = 5.0
    # A RetryInfo asking for longer than this is not waited for: the error is raised instead.
    max_advised_delay: float = 30.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.initial_backoff < 0 or self.max_backoff < 0 or self.multiplier < 1:
            raise ValueError("backoff must be non-negative and multiplier at least 1")

    def backoff(self, retry: int, rng: random.Random | None = None) -> float:
        """The jittered wait before retry number `retry` (1 for the first retry)."""
        ceiling = min(self.max_backoff, self.initial_backoff * self.multiplier ** (retry - 1))
        return (rng or random).uniform(ceiling / 2, ceiling)

    def delay(self, code: str, attempt: int, advised: float | None,
              rng: random.Random | None = None, also: frozenset[str] = frozenset()) -> float | None:
        """How long to wait before trying again after attempt number `attempt` (1 for the
        first) failed with status `code` (its name) and the server's RetryInfo delay `advised`
        (None without one); None means do not retry. `also` names codes the caller knows are
        safe to retry too (the producer adds DEADLINE_EXCEEDED: its batches carry event ids)."""
        if attempt >= self.max_attempts:
            return None
        if code in ALWAYS_RETRIED or code in also:
            pass
        elif code in RETRIED_WITH_ADVICE and advised is not None:
            pass
        else:
            return None
        if advised is not None:
            return advised if advised <= self.max_advised_delay else None
        return self.backoff(attempt, rng)


NO_RETRY = RetryPolicy(max_attempts=1)
