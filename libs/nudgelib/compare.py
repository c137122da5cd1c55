"""How two values compare in the rule languages: segment attributes and every property filter.

Segmentation's SQL compiler (sqlrules) implements exactly these rules; keep the two in step:
- Values of different kinds are never equal and never ordered (the string "5" is not 5,
  true is not 1).
- Numbers: two integers compare exactly; otherwise both are taken as 64-bit floats.
- Strings order by code point (SQL `COLLATE "C"`), times by instant; booleans and lists are
  only equal or not (lists element by element, in order).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def equal(actual: Any, expected: Any) -> bool:
    if is_number(actual) and is_number(expected):
        if isinstance(actual, int) and isinstance(expected, int):
            return actual == expected
        return float(actual) == float(expected)
    if type(actual) is not type(expected):
        return False
    return actual == expected


def order(actual: Any, expected: Any) -> int | None:
    """-1, 0 or 1 as actual is below, equal to or above expected; None when they do not
    order (different kinds, booleans, lists)."""
    if is_number(actual) and is_number(expected):
        if not (isinstance(actual, int) and isinstance(expected, int)):
            actual, expected = float(actual), float(expected)
    elif not (isinstance(actual, str) and isinstance(expected, str)) and not (
            isinstance(actual, datetime) and isinstance(expected, datetime)):
        return None
    return (actual > expected) - (actual < expected)


def is_empty(present: bool, value: Any) -> bool:
    """IS_EMPTY: absent, null, the empty string or the empty list."""
    if not present or value is None:
        return True
    return (isinstance(value, str) and value == "") or (isinstance(value, list) and not value)


def contains(actual: Any, expected: Any) -> bool:
    """CONTAINS: a substring of a string, or an element of a list of strings."""
    if not isinstance(expected, str):
        return False
    if isinstance(actual, str):
        return expected in actual
    if isinstance(actual, list):
        return any(isinstance(item, str) and item == expected for item in actual)
    return False


def starts_with(actual: Any, expected: Any) -> bool:
    return isinstance(actual, str) and isinstance(expected, str) and actual.startswith(expected)
