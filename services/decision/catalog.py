"""Each app's active campaigns and settings, in memory, so a pull reads no campaign rows.

Any change to a campaign or to settings NOTIFYs `nudge_campaigns` with the app id; every
replica drops that app's entry and reloads it on the next pull.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from nudge.decision.v1 import decision_service_pb2 as pb
from nudgelib.appcache import AppCache
from services.decision import store
from services.decision.eligibility import rank_key


@dataclass(frozen=True)
class AppCatalog:
    # Active campaigns in rank order (priority, then id).
    campaigns: tuple[pb.Campaign, ...]
    settings: pb.AppSettings


class CampaignCatalog(AppCache[AppCatalog]):
    def __init__(self, pool: asyncpg.Pool) -> None:
        async def load(app_id: str) -> AppCatalog:
            campaigns = sorted(await store.active_campaigns(pool, app_id), key=rank_key)
            return AppCatalog(tuple(campaigns), await store.get_settings(pool, app_id))

        super().__init__(load)
