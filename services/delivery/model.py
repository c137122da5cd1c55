"""Delivery's plain types for campaign statistics: what the store reads per variant and per
kind of interaction, and the counts the statistics are computed from."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class VariantRow:
    """Messages of one variant (or of the control group): sent, delivered (for control:
    exposed) and converted."""

    variant_id: str
    control: bool
    sent: int
    delivered: int
    conversions: int


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
    impressions: int = 0
    dismissals: int = 0
    conversions: int = 0
    clicks_by_button: dict[str, int] = field(default_factory=dict)
    answers: list[bytes] = field(default_factory=list)
