"""Each app's active campaigns and settings, in memory, so a pull reads no campaign rows.

Any change to a campaign or to settings NOTIFYs `nudge_campaigns` with the app id; every
replica drops that app's entry and reloads it on the next pull.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import asyncpg

from nudge.decision.v1 import decision_service_pb2 as pb
from nudgelib.appcache import AppCache
from services.decision import store
from services.decision.eligibility import Compiled, compile_campaign, rank_key


@dataclass(frozen=True)
class AppCatalog:
    # Active campaigns in rank order (priority, then id), as read and as compiled rules.
    campaigns: tuple[pb.Campaign, ...]
    settings: pb.AppSettings
    compiled: tuple[Compiled, ...] = ()
    by_id: dict[str, Compiled] = field(default_factory=dict)
    # Event names some campaign triggers on or is cancelled by; other events do nothing here.
    reactive_events: frozenset[str] = frozenset()
    # Event names that start a send due at once (a trigger without delay).
    immediate_events: frozenset[str] = frozenset()

    @classmethod
    def of(cls, campaigns: list[pb.Campaign], settings: pb.AppSettings) -> "AppCatalog":
        ranked = tuple(sorted(campaigns, key=rank_key))
        compiled = tuple(compile_campaign(c) for c in ranked)
        triggered = [t for c in ranked if c.delivery_mode == pb.DELIVERY_MODE_TRIGGERED for t in c.triggers]
        reactive = frozenset(name for t in triggered for name in (t.event_name, *t.exception_events) if name)
        immediate = frozenset(t.event_name for t in triggered
                              if t.event_name and not (t.delay.seconds or t.delay.nanos))
        return cls(ranked, settings, compiled, {c.id: c for c in compiled}, reactive, immediate)


class CampaignCatalog(AppCache[AppCatalog]):
    def __init__(self, pool: asyncpg.Pool) -> None:
        async def load(app_id: str) -> AppCatalog:
            return AppCatalog.of(await store.active_campaigns(pool, app_id), await store.get_settings(pool, app_id))

        super().__init__(load)
