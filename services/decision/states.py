"""Decision's own per-user state (deliveries and sticky arms), cached.

A cached state can only lag behind the database by deliveries other replicas made: it may
call a user uncapped who is capped, never the reverse. That is safe, because a pull that
hands something out plans again from fresh state under the user's lock; so a pull that ends
in no message reads and writes nothing.
"""

from __future__ import annotations

import asyncpg

from nudgelib.lru import LruCache
from services.decision import store
from services.decision.selection import UserState


class UserStates:
    def __init__(self, pool: asyncpg.Pool, max_entries: int) -> None:
        self._pool = pool
        self._cache: LruCache[tuple[str, str], UserState] = LruCache(max_entries)

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
