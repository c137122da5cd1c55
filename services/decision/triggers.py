"""Which triggered campaigns an event or a segment entry fires, and which exception events
cancel a trigger's pending sends: pure.

Filters are the shared property-filter language (`nudgelib.filters`): dotted names reach into
nested objects, and a missing property fails every operator except NOT_EQUALS, NOT_IN and
IS_EMPTY. Exception events belong to a trigger: an exception cancels the sends its own trigger
started, not those of the campaign's other triggers.

A trigger fires only while its campaign runs: an event that happened before the campaign's
`start_time`, or at or after its `end_time`, starts no send (it is not held until the start).
The schedule is judged at the instant the event happened (`occurred_time`, or now if it claims
to be later), so an event sent in late that happened within the schedule still counts, and one
from before the launch never does. Likewise for the status: only `ACTIVE` campaigns are in
the catalog, and an event that happened before the campaign last became active (while it was
a draft or paused) fires nothing, even if it arrives later. (Only the latest activation is
kept: a late event from an earlier active period, before a pause, counts as from the pause.)
A segment entry is judged at the moment decision applies it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from nudge.decision.v1 import decision_service_pb2 as pb
from nudgelib import filters
from nudgelib.protoconv import to_datetime, to_timedelta
from services.decision.model import DEFAULT_TTL, Firing, NewPending


@dataclass(frozen=True)
class ExceptionEvent:
    """An exception event of a trigger, compiled."""

    event_name: str
    filters: tuple[filters.Filter, ...]


@dataclass(frozen=True)
class CompiledTrigger:
    campaign: pb.Campaign
    index: int  # in campaign.triggers
    event_name: str  # "" for a segment-entry trigger
    segment_entered_id: str  # "" for an event trigger
    filters: tuple[filters.Filter, ...]
    delay: timedelta
    exceptions: tuple[ExceptionEvent, ...]
    start: datetime | None = None  # the campaign's schedule; None: unbounded
    end: datetime | None = None

    def runs_at(self, at: datetime) -> bool:
        """Whether the campaign's schedule covers `at`: start inclusive, end exclusive."""
        return (self.start is None or at >= self.start) and (self.end is None or at < self.end)


def _start(campaign: pb.Campaign, active_since: datetime | None) -> datetime | None:
    """The first instant the campaign's triggers fire for: its start time, or when it last
    became active, whichever is later."""
    start = to_datetime(campaign.start_time) if campaign.HasField("start_time") else None
    if active_since is None or (start is not None and start >= active_since):
        return start
    return active_since


def compile_triggers(campaigns: Iterable[pb.Campaign],
                     active_since: Mapping[str, datetime] | None = None) -> tuple[CompiledTrigger, ...]:
    """The triggers of the triggered campaigns among `campaigns`, in campaign order.
    `active_since`: campaign id -> when it last became ACTIVE, where known."""
    since = active_since or {}
    return tuple(
        CompiledTrigger(
            campaign=c, index=i, event_name=t.event_name, segment_entered_id=t.segment_entered_id,
            filters=filters.compile_filters(t.property_filters), delay=to_timedelta(t.delay),
            exceptions=tuple(ExceptionEvent(x.event_name, filters.compile_filters(x.property_filters))
                             for x in t.exception_events),
            start=_start(c, since.get(c.id)),
            end=to_datetime(c.end_time) if c.HasField("end_time") else None)
        for c in campaigns if c.delivery_mode == pb.DELIVERY_MODE_TRIGGERED
        for i, t in enumerate(c.triggers))


def fired_by_event(triggers: Iterable[CompiledTrigger], name: str, properties: dict[str, Any],
                   occurred: datetime, now: datetime) -> list[Firing]:
    """Each triggered campaign fires at most once per event, by its first matching trigger,
    if its schedule covers the instant the event happened (an event dated later than `now`
    is taken as happening now)."""
    found: list[Firing] = []
    fired: set[str] = set()
    happened = min(occurred, now)
    for t in triggers:
        if (t.event_name == name and t.campaign.id not in fired and t.runs_at(happened)
                and filters.match_all(t.filters, properties)):
            found.append(Firing(t.campaign, t.index, occurred + t.delay))
            fired.add(t.campaign.id)
    return found


def fired_by_segment_entry(triggers: Iterable[CompiledTrigger], segment_ids: Iterable[str],
                           at: datetime) -> list[Firing]:
    """Each triggered campaign fires at most once per change, if its schedule covers `at`."""
    entered = set(segment_ids)
    found: list[Firing] = []
    fired: set[str] = set()
    for t in triggers:
        if (t.segment_entered_id and t.segment_entered_id in entered and t.campaign.id not in fired
                and t.runs_at(at)):
            found.append(Firing(t.campaign, t.index, at + t.delay))
            fired.add(t.campaign.id)
    return found


def cancels(trigger: CompiledTrigger, event_name: str, properties: dict[str, Any]) -> bool:
    """Whether performing this event cancels a pending send of this trigger."""
    return any(x.event_name == event_name and filters.match_all(x.filters, properties)
               for x in trigger.exceptions)


def expiry(campaign: pb.Campaign, due: datetime, default_ttl: timedelta = DEFAULT_TTL) -> datetime:
    """A pending message expires its time-to-live after it comes due."""
    return due + (to_timedelta(campaign.message_ttl) or default_ttl)


def new_pending(firing: Firing, user_id: str, cause: str, at: datetime, properties: str,
                now: datetime) -> NewPending:
    """The pending send a firing starts. A trigger whose delay has already passed (a late
    event) is due now, not in the past."""
    due = max(firing.due, now)
    return NewPending(
        id=f"msg_{uuid.uuid4().hex}", user_id=user_id, campaign_id=firing.campaign.id,
        trigger_index=firing.trigger_index, cause=cause, triggered_at=at, due_at=due,
        expire_at=expiry(firing.campaign, due), event_properties=properties)
