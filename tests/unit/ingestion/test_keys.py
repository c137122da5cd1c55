"""Lanes and update ids: stable, and lanes spread users."""

from __future__ import annotations

from nudgelib.eventlog.lanes import LANES, lane_of
from services.ingestion.keys import update_id


def test_lanes_are_stable_and_spread():
    assert lane_of("app_1", "u1") == lane_of("app_1", "u1")
    assert {lane_of("app_1", f"u{i}") for i in range(500)} == set(range(LANES))
    assert update_id("u1", "r1") == update_id("u1", "r1") != update_id("u2", "r1")
