"""The range of days a campaign's daily statistics cover: ISO dates in, the instants that
bound them in the app's time zone out. Pure."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from nudgelib.violations import FieldViolation

MAX_DAYS = 366
DATE_RE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


def _parse(text: str, field: str, problems: list[FieldViolation]) -> date | None:
    try:
        if DATE_RE.match(text) is None:  # fromisoformat also reads week dates, 2026-W01-1
            raise ValueError
        return date.fromisoformat(text)
    except ValueError:
        problems.append(FieldViolation(field, "must be an ISO date, YYYY-MM-DD"))
        return None


def day_range(start_date: str, end_date: str, has_times: bool) -> tuple[tuple[date, date] | None,
                                                                        list[FieldViolation]]:
    """The (first, last) day asked for, both included, or None when no dates are given; and
    what is wrong with the request's dates (`has_times`: start_time or end_time is set too)."""
    if not start_date and not end_date:
        return None, []
    problems: list[FieldViolation] = []
    if not start_date or not end_date:
        missing = "start_date" if not start_date else "end_date"
        return None, [FieldViolation(missing, "is required with " + ("end_date" if missing == "start_date"
                                                                     else "start_date"))]
    first = _parse(start_date, "start_date", problems)
    last = _parse(end_date, "end_date", problems)
    if has_times:
        problems.append(FieldViolation("start_date", "give dates or start_time/end_time, not both"))
    if first and last:
        if last < first:
            problems.append(FieldViolation("end_date", "must not be before start_date"))
        elif (last - first).days + 1 > MAX_DAYS:
            problems.append(FieldViolation("end_date", f"the range is at most {MAX_DAYS} days"))
    return ((first, last) if not problems else None), problems


def bounds(first: date, last: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """[local midnight of `first`, local midnight after `last`): the instants of the range."""
    return (datetime.combine(first, time(0), tzinfo=tz),
            datetime.combine(last + timedelta(days=1), time(0), tzinfo=tz))


def days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]
