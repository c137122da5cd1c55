"""Send windows and quiet hours in the user's local time: pure functions.

A window is a range of local minutes [start, end) on allowed ISO weekdays. When start > end
the window crosses midnight and belongs to the weekday it opened on (Fri 22:00-02:00 is open
Saturday 01:00). start == end means the whole day. Local time is the wall clock of the
user's IANA zone, so DST is handled by the zone database: a window of 09:00-21:00 is 12 hours
of wall-clock time every day, whatever the offset. An opening that falls into a DST gap
(a wall time that does not exist that day) opens at the first instant after the gap.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from nudge.decision.v1 import decision_service_pb2 as pb

MINUTES_PER_DAY = 24 * 60
ALL_DAYS = frozenset(range(1, 8))


def zone(name: str, default: str = "UTC") -> ZoneInfo:
    try:
        return ZoneInfo(name or default or "UTC")
    except (KeyError, ValueError):  # validated on input; stored data may predate a tzdata change
        return ZoneInfo(default or "UTC")


def local_text(at: datetime | None, tz: ZoneInfo) -> str:
    """An instant as Explain writes it in text: the user's wall time with its offset, to the
    second (`2026-11-26T09:00:00+01:00`); `never` for None. Windows, quiet hours, caps,
    schedule and pending sends all say their instants this way; the exact instant is the
    UTC Timestamp beside the text."""
    if at is None:
        return "never"
    return at.astimezone(tz).isoformat(timespec="seconds")


def _days(w: pb.SendWindow) -> frozenset[int]:
    return frozenset(w.weekdays) or ALL_DAYS


def is_open(w: pb.SendWindow, tz: ZoneInfo, now: datetime) -> bool:
    local = now.astimezone(tz)
    minute = local.hour * 60 + local.minute
    days = _days(w)
    start, end = w.start_minute, w.end_minute
    if start == end:
        return local.isoweekday() in days
    if start < end:
        return start <= minute < end and local.isoweekday() in days
    if minute >= start:
        return local.isoweekday() in days
    if minute < end:
        yesterday = (local.date() - timedelta(days=1)).isoweekday()
        return yesterday in days
    return False


def _instant(tz: ZoneInfo, day: date, minute: int) -> datetime:
    """The first instant whose wall time on `day` is at or after `minute` past midnight."""
    wall = datetime.combine(day, time(minute // 60, minute % 60))
    candidate = wall.replace(tzinfo=tz)
    utc = candidate.astimezone(timezone.utc)
    if utc.astimezone(tz).replace(tzinfo=None) == wall:
        return utc
    # A DST gap: step back from the post-gap reading to the transition.
    probe = wall.replace(tzinfo=tz, fold=1).astimezone(timezone.utc)
    while probe.astimezone(tz).replace(tzinfo=None) < wall:
        probe += timedelta(minutes=1)
    return probe


def next_opening(w: pb.SendWindow, tz: ZoneInfo, now: datetime) -> datetime | None:
    """`now` if the window is open, else the next instant it opens (None: never)."""
    if is_open(w, tz, now):
        return now
    days = _days(w)
    today = now.astimezone(tz).date()
    for ahead in range(0, 9):
        day = today + timedelta(days=ahead)
        if day.isoweekday() not in days:
            continue
        opening = _instant(tz, day, w.start_minute if w.start_minute != w.end_minute else 0)
        if opening > now:
            return opening
    return None


def next_closing(w: pb.SendWindow, tz: ZoneInfo, now: datetime) -> datetime | None:
    """When quiet hours (a window during which nothing is shown) end: their next closing."""
    if not is_open(w, tz, now):
        return now
    local = now.astimezone(tz)
    for ahead in range(0, 9):
        day = local.date() + timedelta(days=ahead)
        closing = _instant(tz, day, w.end_minute)
        if closing > now and not is_open(w, tz, closing):
            return closing
    return None
