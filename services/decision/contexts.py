"""The user contexts decision decides with, cached so a pull for an active user costs no
call to segmentation.

Segmentation announces every change to a user (ApplyUserChanges) with the new context, which
replaces the cached one; a change of segment rules makes every context of the app stale. A
context is never used past its `valid_until_time` (a membership that flips by the passage of
time) nor past a safety TTL, after which it is asked for again.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from nudge.common.v1 import common_pb2
from nudge.segmentation.v1 import segmentation_internal_service_pb2 as seg_pb
from nudge.segmentation.v1 import segmentation_internal_service_pb2_grpc as seg_grpc
from nudgelib.clients import Peer
from nudgelib.clock import Clock
from nudgelib.lru import LruCache
from nudgelib.protoconv import to_datetime


class UserContexts:
    def __init__(self, segmentation: Peer, clock: Clock, max_entries: int, ttl: timedelta) -> None:
        self._peer = segmentation
        self._stub = seg_grpc.SegmentationInternalServiceStub(segmentation.channel)
        self._clock = clock
        self._ttl = ttl
        self._cache: LruCache[tuple[str, str], tuple[int, common_pb2.UserContext]] = LruCache(max_entries)
        # Bumped when an app's segment rules change: older entries are stale.
        self._generation: dict[str, int] = {}

    def _expiry(self, context: common_pb2.UserContext, now: datetime) -> datetime:
        expires = now + self._ttl
        if context.HasField("valid_until_time"):
            expires = min(expires, to_datetime(context.valid_until_time))
        return expires

    def put(self, app_id: str, context: common_pb2.UserContext) -> None:
        if not self._ttl:
            return  # caching off
        now = self._clock.now()
        self._cache.put((app_id, context.user_id), (self._generation.get(app_id, 0), context),
                        self._expiry(context, now))

    def forget(self, app_id: str, user_id: str) -> None:
        self._cache.pop((app_id, user_id))

    def segments_changed(self, app_id: str) -> None:
        self._generation[app_id] = self._generation.get(app_id, 0) + 1

    async def get(self, app_id: str, user_id: str, fresh: bool = False) -> common_pb2.UserContext:
        if not fresh:
            cached = self._cache.get((app_id, user_id), self._clock.now())
            if cached is not None and cached[0] == self._generation.get(app_id, 0):
                return cached[1]
        generation = self._generation.get(app_id, 0)
        reply = await self._peer.call(self._stub.GetUserContext,
                                      seg_pb.GetUserContextRequest(app_id=app_id, user_id=user_id))
        # An announcement that arrived while we asked is newer than this reply: keep it.
        raced = self._cache.get((app_id, user_id), self._clock.now())
        # A user segmentation does not know yet is not kept: their first event is announced
        # only if it enters a segment, and any other change to it would go unseen here.
        if reply.context.known and generation == self._generation.get(app_id, 0) and (raced is None or fresh):
            self.put(app_id, reply.context)
        return reply.context
