"""Delivery's plain types for campaign statistics and survey answers: what the store reads
per variant, status and kind of interaction, and the counts the statistics are computed from."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

# The variant id of the control group.
CONTROL = ""


@dataclass(frozen=True)
class MessageRow:
    """Messages of one variant (CONTROL: the control group) in one status: pending (waiting),
    delivered, control (exposed), expired (a pending one past its expiry counts here), or
    dropped under `drop_reason`; and how many of them converted."""

    variant_id: str
    status: str
    count: int
    conversions: int = 0
    drop_reason: str = ""


@dataclass(frozen=True)
class InteractionRow:
    """Interactions of one type (and button) with one variant's messages; `answers` holds
    each survey answer as a serialized ReportInteractionRequest."""

    variant_id: str
    type: int
    button_id: str
    count: int
    answers: tuple[bytes, ...] = ()


@dataclass
class VariantCounts:
    variant_id: str
    control: bool = False
    sent: int = 0
    delivered: int = 0
    expired: int = 0
    waiting: int = 0
    dropped_by_reason: dict[str, int] = field(default_factory=dict)
    impressions: int = 0
    dismissals: int = 0
    conversions: int = 0
    clicks_by_button: dict[str, int] = field(default_factory=dict)
    answers: list[bytes] = field(default_factory=list)

    @property
    def dropped(self) -> int:
        return sum(self.dropped_by_reason.values())


@dataclass(frozen=True)
class SurveyRow:
    """One survey report: a message's answers (a serialized ReportInteractionRequest)."""

    message_id: str
    user_id: str
    variant_id: str
    answers: bytes
    answered_at: datetime
