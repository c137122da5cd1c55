"""A context asked of segmentation while word of the user arrives is older than that word:
it is used for the pull that asked, and not kept. (The race is forced here by holding the
answer back; tests/service/test_context_cache_replicas.py runs the real services.)"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import grpc

from nudge.common.v1 import common_pb2
from nudge.segmentation.v1 import segmentation_internal_service_pb2 as seg_pb
from nudgelib import user_notices
from nudgelib.clock import FixedClock
from services.decision.caches import UserContexts

NOW = datetime(2026, 3, 1, tzinfo=timezone.utc)


class HeldSegmentation:
    """Answers GetUserContext with `answer`, once `release` is set; counts the calls."""

    channel = grpc.aio.insecure_channel("127.0.0.1:9")

    def __init__(self, answer: common_pb2.UserContext) -> None:
        self.answer = answer
        self.release = asyncio.Event()
        self.calls = 0

    async def call(self, _method, request: seg_pb.GetUserContextRequest):
        self.calls += 1
        await self.release.wait()
        return seg_pb.GetUserContextResponse(context=self.answer)


def contexts_of(peer: HeldSegmentation) -> UserContexts:
    return UserContexts(peer, FixedClock(NOW), max_entries=100, ttl=timedelta(minutes=5))


async def test_an_unknown_user_is_kept_and_asked_for_once():
    peer = HeldSegmentation(common_pb2.UserContext(user_id="u1"))
    peer.release.set()
    contexts = contexts_of(peer)
    for _ in range(3):
        assert not (await contexts.get("a", "u1")).known
    assert peer.calls == 1


async def test_an_announcement_during_the_read_wins_over_its_answer():
    peer = HeldSegmentation(common_pb2.UserContext(user_id="u1"))  # not known yet, as read
    contexts = contexts_of(peer)
    reading = asyncio.ensure_future(contexts.get("a", "u1"))
    await asyncio.sleep(0)
    contexts.put("a", common_pb2.UserContext(user_id="u1", known=True, app_version="2.0"))  # the first event
    peer.release.set()
    assert not (await reading).known  # the pull that asked uses what it got...
    assert (await contexts.get("a", "u1")).app_version == "2.0"  # ...but the announcement is kept
    assert peer.calls == 1


async def test_a_siblings_notice_during_the_read_leaves_nothing_kept():
    peer = HeldSegmentation(common_pb2.UserContext(user_id="u1"))
    contexts = contexts_of(peer)
    reading = asyncio.ensure_future(contexts.get("a", "u1"))
    await asyncio.sleep(0)
    contexts.on_notify(user_notices.payloads("a", ["u1"], "another-replica")[0])
    peer.release.set()
    await reading
    peer.answer = common_pb2.UserContext(user_id="u1", known=True)
    assert (await contexts.get("a", "u1")).known  # asked again
    assert peer.calls == 2


async def test_own_notices_are_skipped_and_a_whole_app_notice_makes_its_contexts_stale():
    peer = HeldSegmentation(common_pb2.UserContext(user_id="u1", known=True))
    peer.release.set()
    contexts = contexts_of(peer)
    await contexts.get("a", "u1")
    contexts.on_notify(user_notices.payloads("a", ["u1"], contexts.origin)[0])
    await contexts.get("a", "u1")
    assert peer.calls == 1
    contexts.on_notify(user_notices.whole_app("a", "another-replica"))
    await contexts.get("a", "u1")
    assert peer.calls == 2
    contexts.on_notify(None)  # the listener reconnected: anything may have been missed
    await contexts.get("a", "u1")
    assert peer.calls == 3
