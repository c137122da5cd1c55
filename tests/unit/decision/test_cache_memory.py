"""Decision's per-user caches stay inside the megabytes they are given: the weights they
estimate are held against the memory Python actually allocates for what they keep."""

from __future__ import annotations

import tracemalloc
from datetime import datetime, timedelta, timezone

import grpc
import pytest

from nudge.common.v1 import common_pb2
from nudgelib.clock import FixedClock
from services.decision.caches import UserContexts, UserStates, context_weight, state_weight
from services.decision.model import Delivered, UserState

NOW = datetime(2026, 3, 1, tzinfo=timezone.utc)
MB = 1 << 20


class _Peer:
    channel = grpc.aio.insecure_channel("127.0.0.1:9")  # never called: every context is put


def _state(u: int, deliveries: int) -> UserState:
    # Fresh strings, tuples and datetimes per delivery, as rows from the database give them.
    state = UserState(history=[Delivered(f"cmp_{u % 97:012x}", (f"tag{i % 3}",), NOW + timedelta(seconds=u + i),
                                         bool(i % 2)) for i in range(deliveries)])
    state.arms[f"cmp_{u % 97:012x}"] = f"var_{u % 5}"
    return state


def _context(u: int, attributes: int) -> common_pb2.UserContext:
    c = common_pb2.UserContext(user_id=f"user-{u:08d}", known=True, time_zone="Europe/Paris", locale="fr-FR",
                               segment_ids=[f"seg_{k:010x}" for k in range(u % 6)])
    for k in range(attributes):
        c.attributes[f"attribute_{k}"].string_value = f"value {u} {k}"
    return c


def _allocated(fill) -> tuple[int, object]:
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = fill()
        return tracemalloc.get_traced_memory()[0] - before, kept
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("deliveries", [1, 12, 60])
def test_cached_states_stay_within_their_megabytes(deliveries):
    bound = 2 * MB

    def fill():
        states = UserStates(pool=None, max_entries=10_000_000, max_bytes=bound)
        # Enough users to fill the bound twice over.
        for u in range(2 * bound // state_weight(_state(0, deliveries))):
            states.put("app", f"user-{u}", _state(u, deliveries))
        return states

    used, states = _allocated(fill)
    # Full: the bound, not the entry count, decided how many users stayed.
    assert states._cache.weight > 0.95 * bound
    assert 0.6 * bound < used < 1.2 * bound, (used / MB, len(states._cache))


@pytest.mark.parametrize("attributes", [0, 10, 40])
def test_cached_contexts_stay_within_their_megabytes(attributes):
    bound = 2 * MB

    def fill():
        contexts = UserContexts(_Peer(), FixedClock(NOW), max_entries=10_000_000, ttl=timedelta(minutes=5),
                                max_bytes=bound)
        for u in range(2 * bound // context_weight((0, _context(0, attributes).SerializeToString()))):
            contexts.put("app", _context(u, attributes))
        return contexts

    used, contexts = _allocated(fill)
    assert contexts._cache.weight > 0.95 * bound
    assert 0.6 * bound < used < 1.2 * bound, (used / MB, len(contexts._cache))


async def test_a_cached_context_comes_back_as_it_was_put():
    contexts = UserContexts(_Peer(), FixedClock(NOW), max_entries=10, ttl=timedelta(minutes=5), max_bytes=MB)
    put = _context(7, 3)
    contexts.put("app", put)
    got = await contexts.get("app", put.user_id)
    assert got == put
    got.attributes["attribute_0"].string_value = "changed by a caller"
    assert (await contexts.get("app", put.user_id)) == put  # each use gets its own copy
