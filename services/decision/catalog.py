"""An app's active campaigns and settings, compiled once per load so a pull or an event
reads plain values, not proto fields. Pure; `caches.CampaignCatalog` keeps one per app."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from nudge.decision.v1 import decision_service_pb2 as pb
from services.decision.eligibility import Compiled, compile_campaign, rank_key
from services.decision.triggers import CompiledTrigger, compile_triggers


@dataclass(frozen=True)
class AppCatalog:
    # Active campaigns in rank order (priority, then id), as read and as compiled rules.
    campaigns: tuple[pb.Campaign, ...]
    settings: pb.AppSettings
    compiled: tuple[Compiled, ...] = ()
    by_id: dict[str, Compiled] = field(default_factory=dict)
    # Every trigger of the triggered campaigns, in rank order.
    triggers: tuple[CompiledTrigger, ...] = ()
    # Event name -> the triggers it is an exception event of.
    exceptions: dict[str, tuple[CompiledTrigger, ...]] = field(default_factory=dict)
    # Event names some campaign triggers on or is cancelled by; other events do nothing here.
    reactive_events: frozenset[str] = frozenset()
    # Event names that start a send due at once (a trigger without delay).
    immediate_events: frozenset[str] = frozenset()

    @classmethod
    def of(cls, campaigns: list[pb.Campaign], settings: pb.AppSettings,
           active_since: dict[str, datetime] | None = None) -> "AppCatalog":
        """`active_since`: campaign id -> when it last became ACTIVE; its triggers fire for
        events from then on only."""
        ranked = tuple(sorted(campaigns, key=rank_key))
        compiled = tuple(compile_campaign(c) for c in ranked)
        triggers = compile_triggers(ranked, active_since or {})
        exceptions: dict[str, list[CompiledTrigger]] = {}
        for t in triggers:
            for name in dict.fromkeys(x.event_name for x in t.exceptions):
                exceptions.setdefault(name, []).append(t)
        reactive = frozenset({t.event_name for t in triggers if t.event_name} | set(exceptions))
        immediate = frozenset(t.event_name for t in triggers if t.event_name and not t.delay)
        return cls(ranked, settings, compiled, {c.id: c for c in compiled}, triggers,
                   {name: tuple(ts) for name, ts in exceptions.items()}, reactive, immediate)
