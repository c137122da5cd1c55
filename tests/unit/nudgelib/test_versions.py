"""App versions compare as numbers, and only dotted numbers parse."""

from __future__ import annotations

import pytest

from nudgelib.versions import parse_version


def test_versions_compare_as_numbers_not_strings():
    assert parse_version("4.10") > parse_version("4.9")
    assert parse_version("4.10.0") > parse_version("4.10")
    assert parse_version("10") > parse_version("9.99.99")


@pytest.mark.parametrize("text, expected", [
    ("4", (4,)),
    ("4.2.0", (4, 2, 0)),
    ("04.002", (4, 2)),
    ("999999999." * 9 + "1", (999999999,) * 9 + (1,)),
])
def test_dotted_numbers_parse(text, expected):
    assert parse_version(text) == expected


@pytest.mark.parametrize("text", [
    "", "v4.2", "4.2-beta", "4..2", ".4", "4.", "-1", "4.x", " 4.2",
    "1234567890",  # a part must fit a PostgreSQL integer
    "1." * 10 + "1",  # at most ten parts
])
def test_anything_else_does_not(text):
    assert parse_version(text) is None
