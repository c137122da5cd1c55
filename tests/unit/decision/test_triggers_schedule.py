"""A trigger fires only for events that happen within its campaign's schedule."""

from __future__ import annotations

from datetime import timedelta

from nudgelib.protoconv import to_timestamp
from services.decision import triggers
from tests.unit.decision.test_triggers import NOW, abandoned_cart

START, END = NOW, NOW + timedelta(days=1)


def scheduled():
    c = abandoned_cart()
    c.start_time.CopyFrom(to_timestamp(START))
    c.end_time.CopyFrom(to_timestamp(END))
    return triggers.compile_triggers([c])


def fires(occurred, now):
    return bool(triggers.fired_by_event(scheduled(), "cart_abandoned", {"cart_value": 150}, occurred, now))


def test_the_schedule_is_judged_when_the_event_happened():
    assert not fires(START - timedelta(seconds=1), START - timedelta(seconds=1))  # before the launch
    assert not fires(START - timedelta(seconds=1), START + timedelta(hours=1))  # sent in late, from before
    assert fires(START, START)  # the start is inclusive
    assert fires(START + timedelta(hours=1), END + timedelta(hours=1))  # sent in late, from during
    assert not fires(END, END)  # the end is exclusive


def test_an_event_dated_in_the_future_is_taken_as_happening_now():
    assert not fires(START + timedelta(hours=1), START - timedelta(hours=1))


def test_a_segment_entry_fires_within_the_schedule_only():
    c = abandoned_cart()
    c.triggers.add(segment_entered_id="seg_vip")
    c.start_time.CopyFrom(to_timestamp(START))
    compiled = triggers.compile_triggers([c])
    assert triggers.fired_by_segment_entry(compiled, ["seg_vip"], START - timedelta(seconds=1)) == []
    assert len(triggers.fired_by_segment_entry(compiled, ["seg_vip"], START)) == 1


def test_events_from_before_the_campaign_last_became_active_fire_nothing():
    c = abandoned_cart()
    c.start_time.CopyFrom(to_timestamp(START))
    resumed = START + timedelta(hours=2)
    compiled = triggers.compile_triggers([c], {c.id: resumed})
    fired = [triggers.fired_by_event(compiled, "cart_abandoned", {"cart_value": 150}, at, resumed + timedelta(hours=1))
             for at in (START + timedelta(hours=1), resumed)]
    assert [bool(f) for f in fired] == [False, True]
    # A start time later than the activation still holds.
    assert triggers.compile_triggers([c], {c.id: START - timedelta(days=1)})[0].start == START
