"""Folding events and profile updates into what segmentation stores."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from google.protobuf import struct_pb2

from nudge.common.v1 import common_pb2
from nudge.segmentation.v1 import segmentation_internal_service_pb2 as internal_pb
from nudgelib.filters import compile_filters, plain_struct
from nudgelib.protoconv import to_timestamp
from services.segmentation import aggregates

NOW = datetime(2026, 11, 25, 12, tzinfo=timezone.utc)


def event(event_id, user, name, at, version="", platform=0, **props) -> common_pb2.Event:
    e = common_pb2.Event(event_id=event_id, user_id=user, name=name, occurred_time=to_timestamp(at),
                         app_version=version, platform=platform)
    e.properties.update(props)
    return e


def counters_for(name, properties):
    """As a catalog with one filtered counter: purchases over 100."""
    props = plain_struct(properties)
    found = [name]
    if name == "purchase" and isinstance(props.get("v"), float) and props["v"] > 100:
        found.append("purchase#big")
    return found


def test_events_add_to_their_name_and_to_the_filtered_counters_they_match():
    yesterday = NOW - timedelta(days=1)
    folded = aggregates.fold_events([
        event("1", "u", "purchase", yesterday, v=150),
        event("2", "u", "purchase", NOW, v=50),
        event("3", "u", "purchase", NOW, v=500),
    ], counters_for, now=NOW)
    assert folded.days == {("u", "purchase", yesterday.date()): 1, ("u", "purchase", NOW.date()): 2,
                           ("u", "purchase#big", yesterday.date()): 1, ("u", "purchase#big", NOW.date()): 1}
    assert folded.totals[("u", "purchase")] == [3, yesterday, NOW]
    assert folded.totals[("u", "purchase#big")] == [2, yesterday, NOW]


def test_activity_keeps_the_latest_app_version_and_every_platform():
    folded = aggregates.fold_events([
        event("1", "u", "open", NOW, version="5.0", platform=1),
        event("2", "u", "open", NOW - timedelta(days=2), version="4.9", platform=3),
        event("3", "u", "open", NOW - timedelta(days=1)),
    ], counters_for, now=NOW)
    activity = folded.users["u"]
    assert (activity.first_seen, activity.last_seen) == (NOW - timedelta(days=2), NOW)
    assert (activity.app_version, activity.app_version_parts, activity.platforms) == ("5.0", [5, 0], {1, 3})


def test_a_repeated_event_id_counts_once():
    e = event("1", "u", "open", NOW)
    assert len(aggregates.unique([e, e])) == 1


def test_profile_updates_of_one_user_merge_in_order():
    first = internal_pb.ProfileUpdate(update_id="a", user_id="u", time_zone="Europe/Paris")
    first.attributes["plan"].string_value = "pro"
    first.attributes["age"].int_value = 3
    second = internal_pb.ProfileUpdate(update_id="b", user_id="u", unset_attributes=["plan"], locale="fr")
    (change,) = aggregates.merge_updates([first, second]).values()
    assert change.set == {"age": {"i": 3}} and change.unset == {"plan"}
    assert (change.time_zone, change.locale) == ("Europe/Paris", "fr")


def test_past_events_count_only_under_the_new_counters_they_match():
    """Filling new counters from the past: only the listed counters, with the live path's
    matching (nudgelib.filters: a string is not a number), never the plain name (counted live)."""
    big = compile_filters([common_pb2.PropertyFilter(name="v", operator=common_pb2.PROPERTY_OPERATOR_GREATER,
                                                     value=struct_pb2.Value(number_value=100))])
    yesterday = NOW - timedelta(days=1)
    folded = aggregates.Folded()
    aggregates.count_past(folded, [event("1", "u", "purchase", yesterday, v=150),
                                   event("2", "u", "purchase", NOW, v="500"),
                                   event("3", "w", "open", NOW, v=500)], {"purchase": [("purchase#big", big)]}, NOW)
    aggregates.count_past(folded, [event("4", "u", "purchase", NOW, v=101)], {"purchase": [("purchase#big", big)]},
                          NOW)
    assert folded.days == {("u", "purchase#big", yesterday.date()): 1, ("u", "purchase#big", NOW.date()): 1}
    assert folded.totals == {("u", "purchase#big"): [2, yesterday, NOW]}
    assert folded.users == {}
