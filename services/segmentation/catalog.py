"""Each app's segment rules, cached in memory and dropped when a segment changes (on this
replica directly, on others through NOTIFY)."""

from __future__ import annotations

import asyncpg

from nudge.segmentation.v1 import segmentation_service_pb2 as pb
from nudgelib.appcache import AppCache
from services.segmentation import store


class SegmentCatalog(AppCache[dict[str, pb.Rule]]):
    def __init__(self, pool: asyncpg.Pool) -> None:
        async def load(app_id: str) -> dict[str, pb.Rule]:
            return {s.id: s.rule for s in await store.load_segments(pool, app_id)}

        super().__init__(load)

    async def rules(self, app_id: str) -> dict[str, pb.Rule]:
        return await self.get(app_id)
