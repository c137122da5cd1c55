"""What a batch of events does to triggered campaigns: the sends it starts and the pending
sends it cancels. Pure; the decider and the store carry it out in one transaction.

Events are taken in the order they happened. An event fires only the campaigns whose schedule
covers the instant it happened (see triggers.py). An exception event cancels the sends of its own
trigger that were triggered at or before it, so in one batch a purchase cancels the cart
reminder of an earlier abandonment, not that of a later one.
"""

from __future__ import annotations

import json
from datetime import datetime

from nudge.common.v1 import common_pb2
from nudgelib.filters import plain_struct
from nudgelib.protoconv import to_datetime
from services.decision import triggers
from services.decision.catalog import AppCatalog
from services.decision.model import Cancel, Reaction


def react(catalog: AppCatalog, events: list[common_pb2.Event], now: datetime) -> Reaction:
    reaction = Reaction()
    for e in sorted(events, key=lambda e: (e.occurred_time.seconds, e.occurred_time.nanos)):
        occurred = to_datetime(e.occurred_time)
        properties = plain_struct(e.properties)
        fired = triggers.fired_by_event(catalog.triggers, e.name, properties, occurred, now)
        if fired:
            stored = json.dumps(properties)
            reaction.sends.extend(triggers.new_pending(f, e.user_id, f"event:{e.event_id}", occurred, stored, now)
                                  for f in fired)
        for t in catalog.exceptions.get(e.name, ()):
            if triggers.cancels(t, e.name, properties):
                reaction.cancels.append(Cancel(e.user_id, t.campaign.id, t.index, occurred, e.event_id, e.name))
    return reaction
