"""Decision's domain types: plain data that the pure rules take and return, and that the
store reads and writes. Nothing here does I/O."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from nudge.decision.v1 import decision_service_pb2 as pb


@dataclass(frozen=True)
class Delivered:
    """One message handed to the user: what frequency caps count."""

    campaign_id: str
    tags: tuple[str, ...]
    at: datetime
    counts_toward_app_caps: bool = True


@dataclass
class UserState:
    """What decision itself remembers of a user: deliveries and sticky arms."""

    history: list[Delivered] = field(default_factory=list)
    arms: dict[str, str] = field(default_factory=dict)  # campaign id -> variant id ('' control)


@dataclass(frozen=True)
class Exclusion:
    """The first rule that says no, and when it may say yes (None: not by waiting)."""

    reason: str  # NOT_ACTIVE, BEFORE_START, AFTER_END, NOT_IN_AUDIENCE, PLATFORM, OUTSIDE_WINDOW, ...
    detail: str
    until: datetime | None = None
    rule: str = ""  # for CAPPED: the full cap (a cap rule's id, `lifetime` or `reeligibility`)


@dataclass(frozen=True)
class Verdict:
    """One campaign's outcome in a selection (pull or Explain)."""

    campaign: pb.Campaign
    verdict: int  # pb.Verdict
    arm: str = ""
    exclusion: Exclusion | None = None
    # Whether the arm was assigned now (to be persisted with the delivery or exposure).
    new_arm: bool = False


@dataclass(frozen=True)
class Reservation:
    """What a pull hands out, to be written in one transaction."""

    deliveries: list[tuple[str, str, str, tuple[str, ...], bool]]  # message, campaign, variant, tags, counts
    arms: list[tuple[str, str]]  # campaign, variant ('' control), assigned now


@dataclass(frozen=True)
class Firing:
    """A triggered campaign to send to a user at `due`."""

    campaign: pb.Campaign
    trigger_index: int
    due: datetime


@dataclass(frozen=True)
class NewPending:
    """A triggered send to store, once per (campaign, user, cause)."""

    id: str
    user_id: str
    campaign_id: str
    trigger_index: int
    cause: str  # event:<event id> or segment:<segment id>:<change>
    triggered_at: datetime
    due_at: datetime
    expire_at: datetime
    event_properties: str  # JSON


@dataclass(frozen=True)
class Cancel:
    """Cancels the user's pending sends of one trigger of a campaign triggered at or before `at`."""

    user_id: str
    campaign_id: str
    trigger_index: int
    at: datetime
    # The exception event, recorded on the sends it cancels (Explain names it).
    event_id: str = ""
    event_name: str = ""


@dataclass(frozen=True)
class Reaction:
    """What a batch of events does: the sends it starts and the pending sends it cancels."""

    sends: list[NewPending] = field(default_factory=list)
    cancels: list[Cancel] = field(default_factory=list)


class Action(enum.Enum):
    RELEASE = "released"  # hand it to delivery now
    DEFER = "pending"  # look again at `until` (None: when a client that fits asks)
    DROP = "dropped"  # it can never go
    CONTROL = "control"  # the user is in the control group: nothing is shown


@dataclass(frozen=True)
class Judgement:
    """The verdict on one pending triggered send (see judge.py)."""

    action: Action
    reason: str = ""  # why it waits or is dropped: DELAY, OUTSIDE_WINDOW, CAPPED, EXPIRED, ...
    until: datetime | None = None  # for DEFER: when to look again
    arm: str = ""  # for RELEASE / CONTROL: the variant id ('' control)
    new_arm: bool = False  # the arm was assigned now and is to be persisted
    detail: str = ""
    rule: str = ""  # for CAPPED: the full cap


@dataclass(frozen=True)
class PendingSend:
    """A triggered send as the judge sees it: waiting for release (`arm` None), or released
    and waiting in the inbox for a client (`arm` its variant)."""

    user_id: str
    campaign_id: str
    expires: datetime | None
    due: datetime | None = None  # before it: the trigger's delay has not passed
    cause: str = ""  # event:<id> / segment:...; "" once released
    triggered_at: datetime | None = None
    arm: str | None = None

@dataclass(frozen=True)
class StoredSend:
    """A row of `pending_sends` as Explain reads it: pending, or settled (`status`)."""

    id: str
    user_id: str
    campaign_id: str
    trigger_index: int
    cause: str
    triggered_at: datetime
    due_at: datetime  # the end of its delay, or of the hold it was last deferred for
    expire_at: datetime
    status: str  # pending | released | control | cancelled | dropped | expired | failed
    outcome: str  # why it was last deferred, dropped or cancelled, or the error; '' before it was first judged
    updated_at: datetime
    cancelled_by_event_id: str = ""
    cancelled_by_event_name: str = ""


# A message's time-to-live when its campaign sets none.
DEFAULT_TTL = timedelta(hours=24)
