"""Whether a series sampled over a soak stays flat: plain functions over (seconds, value) points."""

from __future__ import annotations

from dataclasses import dataclass, field

# A series is flat when its last value is within this share of its first (after the warm-up)...
FLAT_SHARE = 0.20


@dataclass
class Series:
    name: str
    # ...or within this absolute bound: a queue of a few hundred rows that doubles is not growing.
    bound: float
    points: list[tuple[float, float]] = field(default_factory=list)

    def add(self, t: float, value: float) -> None:
        self.points.append((t, value))


@dataclass(frozen=True)
class Trend:
    first: float
    last: float
    peak: float
    slope_per_minute: float
    verdict: str                    # "flat" or "growing"


def trend(series: Series, warmup: float) -> Trend | None:
    """First, last and max after `warmup` seconds, the least-squares slope per minute over the
    same points, and the verdict; None if fewer than two points lie after the warm-up."""
    kept = [(t, v) for t, v in series.points if t >= warmup]
    if len(kept) < 2:
        return None
    first, last, per_second = kept[0][1], kept[-1][1], slope(kept)
    return Trend(first, last, max(v for _, v in kept), per_second * 60, verdict(first, last, series.bound, per_second))


def verdict(first: float, last: float, bound: float, trend_slope: float) -> str:
    """Growing if the last value exceeds the first by more than FLAT_SHARE of it and by more
    than `bound`, and the series climbs overall (positive slope): the dead rows of a queue
    rise and fall with each vacuum, and a last sample caught high on a falling saw is not
    growth. Flat otherwise, shrinking included (bounded is what a soak asks)."""
    above = last - first > max(FLAT_SHARE * abs(first), bound)
    return "growing" if above and trend_slope > 0 else "flat"


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of value over time, per second."""
    n = len(points)
    mean_t = sum(t for t, _ in points) / n
    mean_v = sum(v for _, v in points) / n
    spread = sum((t - mean_t) ** 2 for t, _ in points)
    if spread == 0:
        return 0.0
    return sum((t - mean_t) * (v - mean_v) for t, v in points) / spread
