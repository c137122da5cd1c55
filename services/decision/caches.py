"""Decision's in-memory caches, one per replica: each app's campaign catalog, the user
contexts segmentation computes, and decision's own per-user state.

- **Catalog.** Any change to a campaign or to settings NOTIFYs `nudge_campaigns` with the app
  id; every replica drops that app's entry and reloads it on the next pull, so a pull reads no
  campaign rows.
- **Contexts**, so a pull for an active user costs no call to segmentation. Segmentation
  announces every change to a user (ApplyUserChanges) with the new context, which replaces
  the cached one; a change of segment rules makes every context of the app stale. A context
  is never used past its `valid_until_time` (a membership that flips by the passage of time)
  nor past a safety TTL, after which it is asked for again.
- **Memory.** Both per-user caches are bounded in users and in (estimated) bytes
  (`NUDGE_DECISION_*_CACHE_MB`), whichever is reached first, the least recently used user
  going first: users differ in size (attributes, years of deliveries), and a replica must stay
  inside its container's memory limit however many users it meets. Contexts are kept
  serialized (about a tenth of the memory of a parsed message) and parsed on each use (about
  a microsecond).
- **States** (deliveries and sticky arms). A cached state can only lag behind the database
  by deliveries other replicas made: it may call a user uncapped who is capped, never the
  reverse. That is safe, because a pull that hands something out plans again from fresh
  state under the user's lock; so a pull that ends in no message reads and writes nothing.
  Deliveries given back (a message never handed out) would make it err the other way, so
  giving them back NOTIFYs `nudge_user_states` and every replica forgets that user's state.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import asyncpg

from nudge.common.v1 import common_pb2
from nudge.segmentation.v1 import segmentation_internal_service_pb2 as seg_pb
from nudge.segmentation.v1 import segmentation_internal_service_pb2_grpc as seg_grpc
from nudgelib.appcache import AppCache
from nudgelib.clients import Peer
from nudgelib.clock import Clock
from nudgelib.lru import LruCache
from nudgelib.protoconv import to_datetime
from services.decision import store
from services.decision.catalog import AppCatalog
from services.decision.model import UserState


class CampaignCatalog(AppCache[AppCatalog]):
    def __init__(self, pool: asyncpg.Pool) -> None:
        async def load(app_id: str) -> AppCatalog:
            campaigns, active_since = await store.active_campaigns(pool, app_id)
            return AppCatalog.of(campaigns, await store.get_settings(pool, app_id), active_since)

        super().__init__(load)


# Estimated bytes of memory per cache entry beyond its own data (the key's two strings, the
# map's node, the tuples), and per delivery or arm of a cached state (a Delivered with its
# strings and datetime): measured with CPython 3.11 (tests/unit/decision/test_cache_memory.py).
ENTRY_BYTES = 400
DELIVERY_BYTES = 320


def context_weight(entry: tuple[int, bytes]) -> int:
    return ENTRY_BYTES + len(entry[1])


def state_weight(state: UserState) -> int:
    return ENTRY_BYTES + DELIVERY_BYTES * (len(state.history) + len(state.arms))


class UserContexts:
    def __init__(self, segmentation: Peer, clock: Clock, max_entries: int, ttl: timedelta,
                 max_bytes: int = 0) -> None:
        self._peer = segmentation
        self._stub = seg_grpc.SegmentationInternalServiceStub(segmentation.channel)
        self._clock = clock
        self._ttl = ttl
        # (rules generation, the serialized context)
        self._cache: LruCache[tuple[str, str], tuple[int, bytes]] = LruCache(max_entries, max_bytes, context_weight)
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
        self._cache.put((app_id, context.user_id), (self._generation.get(app_id, 0), context.SerializeToString()),
                        self._expiry(context, now))

    def forget(self, app_id: str, user_id: str) -> None:
        self._cache.pop((app_id, user_id))

    def clear(self) -> None:
        self._cache.clear()

    def segments_changed(self, app_id: str) -> None:
        self._generation[app_id] = self._generation.get(app_id, 0) + 1

    async def get(self, app_id: str, user_id: str, fresh: bool = False) -> common_pb2.UserContext:
        if not fresh:
            cached = self._cache.get((app_id, user_id), self._clock.now())
            if cached is not None and cached[0] == self._generation.get(app_id, 0):
                return common_pb2.UserContext.FromString(cached[1])
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


class UserStates:
    def __init__(self, pool: asyncpg.Pool, max_entries: int, max_bytes: int = 0) -> None:
        self._pool = pool
        # A state grows in place as the user is handed messages; its weight is taken again
        # each time it is put back (after every reservation), so the bound holds to within
        # the deliveries of one pull per user.
        self._cache: LruCache[tuple[str, str], UserState] = LruCache(max_entries, max_bytes, state_weight)

    async def get(self, app_id: str, user_id: str) -> UserState:
        state = self._cache.get((app_id, user_id))
        if state is None:
            state = await store.load_state(self._pool, app_id, user_id)
            self._cache.put((app_id, user_id), state)
        return state

    async def load(self, app_id: str, user_ids: list[str]) -> None:
        """Brings the users' states into the cache, those not there yet in one query."""
        missing = [u for u in user_ids if self._cache.get((app_id, u)) is None]
        if missing:
            for user_id, state in (await store.load_states(self._pool, app_id, missing)).items():
                self._cache.put((app_id, user_id), state)

    def put(self, app_id: str, user_id: str, state: UserState) -> None:
        self._cache.put((app_id, user_id), state)

    def forget(self, app_id: str, user_id: str) -> None:
        self._cache.pop((app_id, user_id))

    def clear(self) -> None:
        self._cache.clear()
