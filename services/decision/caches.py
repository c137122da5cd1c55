"""Decision's in-memory caches, one per replica: each app's campaign catalog, the user
contexts segmentation computes, and decision's own per-user state.

- **Catalog.** Any change to a campaign or to settings NOTIFYs `nudge_campaigns` with the app
  id; every replica drops that app's entry and reloads it on the next pull, so a pull reads no
  campaign rows.
- **Contexts**, so a pull costs no call to segmentation. Segmentation announces every
  change to a user (ApplyUserChanges) with the new context, and names users its events
  created (whose contexts kept as unknown are dropped);
  the replica that takes the announcement keeps the new context and tells its siblings
  (`nudge_decision_contexts`, nudgelib.user_notices), which drop theirs. So the context of
  a user segmentation does not know yet is kept too: it holds until their first event is
  announced. A change of segment rules makes every context of the app stale. A context is
  never used past its `valid_until_time` (a membership that flips by the passage of time)
  nor past a safety TTL, after which it is asked for again. A context that was being asked
  for while an announcement or a sibling's notice about the user arrived is used once and
  not kept (nudgelib.drop_tickets): it may be older.
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

import uuid
from datetime import datetime, timedelta

import asyncpg

from nudge.common.v1 import common_pb2
from nudge.segmentation.v1 import segmentation_internal_service_pb2 as seg_pb
from nudge.segmentation.v1 import segmentation_internal_service_pb2_grpc as seg_grpc
from nudgelib.appcache import AppCache
from nudgelib.clients import Peer
from nudgelib import user_notices
from nudgelib.clock import Clock
from nudgelib.drop_tickets import DropTickets
from nudgelib.lru import LruCache
from nudgelib.protoconv import to_datetime
from services.decision import store
from services.decision.catalog import AppCatalog
from services.decision.model import UserState

# A replica took segmentation's announcement of these users: the others drop their contexts.
CONTEXTS_CHANNEL = "nudge_decision_contexts"

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
        # Word of a user (an announcement, a sibling's notice) that arrives while their context
        # is being asked for overtakes the answer. Only users being asked for are recorded, so
        # this costs no memory per cached user.
        self._tickets = DropTickets(0)
        self._asking: dict[tuple[str, str], int] = {}
        # Names this replica's notices, which it skips: it has the announced contexts.
        self.origin = uuid.uuid4().hex[:12]

    def _expiry(self, context: common_pb2.UserContext, now: datetime) -> datetime:
        expires = now + self._ttl
        if context.HasField("valid_until_time"):
            expires = min(expires, to_datetime(context.valid_until_time))
        return expires

    def put(self, app_id: str, context: common_pb2.UserContext) -> None:
        """Keeps an announced context: the newest word on the user, so a read under way
        brings back nothing to keep."""
        key = (app_id, context.user_id)
        self._overtake(key)
        self._keep(key, self._generation.get(app_id, 0), context)

    def _overtake(self, key: tuple[str, str]) -> None:
        if key in self._asking:
            self._tickets.dropped(key)

    def _keep(self, key: tuple[str, str], generation: int, context: common_pb2.UserContext) -> None:
        if not self._ttl:
            return  # caching off
        self._cache.put(key, (generation, context.SerializeToString()), self._expiry(context, self._clock.now()))

    def forget(self, app_id: str, user_id: str) -> None:
        self._cache.pop((app_id, user_id))
        self._overtake((app_id, user_id))

    def clear(self) -> None:
        self._cache.clear()
        self._tickets.dropped_all()

    def segments_changed(self, app_id: str) -> None:
        self._generation[app_id] = self._generation.get(app_id, 0) + 1

    def on_notify(self, payload: str | None) -> None:
        """A sibling took announcements of these users, or of the app's segment rules
        (CONTEXTS_CHANNEL); None: notices may have been lost."""
        user_notices.dispatch(payload, self.origin, users=self._forget_users, whole_app=self.segments_changed,
                              everything=self.clear)

    def _forget_users(self, app_id: str, users: list[str]) -> None:
        for user_id in users:
            self.forget(app_id, user_id)

    async def get(self, app_id: str, user_id: str, fresh: bool = False) -> common_pb2.UserContext:
        key = (app_id, user_id)
        if not fresh:
            cached = self._cache.get(key, self._clock.now())
            if cached is not None and cached[0] == self._generation.get(app_id, 0):
                return common_pb2.UserContext.FromString(cached[1])
        generation = self._generation.get(app_id, 0)
        ticket = self._tickets.ticket()
        self._asking[key] = self._asking.get(key, 0) + 1
        try:
            reply = await self._peer.call(self._stub.GetUserContext,
                                          seg_pb.GetUserContextRequest(app_id=app_id, user_id=user_id))
        finally:
            if (left := self._asking.pop(key) - 1) > 0:
                self._asking[key] = left
        # Kept, a user segmentation does not know included, unless the rules changed or word
        # of the user arrived while we asked: that is newer than this reply.
        if generation == self._generation.get(app_id, 0) and self._tickets.may_keep(key, ticket):
            self._keep(key, generation, reply.context)
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
