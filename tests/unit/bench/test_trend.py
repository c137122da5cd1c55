"""The soak's verdicts: a series that stays within its bounds is flat, one that climbs is growing."""

from __future__ import annotations

import pytest

from tests.bench.trend import Series, slope, trend, verdict


def series(values: list[float], bound: float = 1.0, every: float = 15.0) -> Series:
    s = Series("x", bound)
    for k, v in enumerate(values):
        s.add(k * every, v)
    return s


def test_a_series_that_climbs_past_a_fifth_of_its_first_value_is_growing():
    assert verdict(100, 121, bound=1, trend_slope=0.1) == "growing"
    assert verdict(100, 119, bound=1, trend_slope=0.1) == "flat"


def test_a_small_series_is_flat_within_its_absolute_bound():
    # A queue of 100 rows that becomes 1,500 is not growth when the bound is 2,000 rows.
    assert verdict(100, 1500, bound=2000, trend_slope=1) == "flat"
    assert verdict(100, 2200, bound=2000, trend_slope=1) == "growing"


def test_a_shrinking_series_is_flat():
    assert verdict(5000, 10, bound=1, trend_slope=-1) == "flat"


def test_a_saw_that_ends_high_but_falls_overall_is_flat():
    # Dead rows between vacuums: high at the first sample, higher at the last, falling between.
    t = trend(series([0, 3000, 12000, 9000, 200, 300, 5500], bound=2000), warmup=15)
    assert t.last > t.first * 1.2 and t.slope_per_minute < 0
    assert t.verdict == "flat"


def test_the_warm_up_is_left_out_of_first_last_and_max():
    # Memory that jumps while warming up, then holds: flat, measured from after the jump.
    t = trend(series([10, 80, 100, 101, 100, 102]), warmup=30)
    assert (t.first, t.last, t.peak, t.verdict) == (100, 102, 102, "flat")


def test_slope_is_per_minute_of_the_points_after_the_warm_up():
    # One unit more every 15 s sample: four per minute.
    t = trend(series([0, 1, 2, 3, 4, 5, 6]), warmup=15)
    assert t.slope_per_minute == pytest.approx(4.0)
    assert t.verdict == "growing"


def test_a_series_with_fewer_than_two_points_after_the_warm_up_has_no_trend():
    assert trend(series([1, 2, 3]), warmup=15) is not None
    assert trend(series([1, 2, 3]), warmup=16) is None


def test_slope_of_points_at_one_instant_is_zero():
    assert slope([(5.0, 1.0), (5.0, 9.0)]) == 0.0
