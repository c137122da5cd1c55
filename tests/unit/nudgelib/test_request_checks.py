"""The checks every request passes before a handler sees it: each problem named by its path."""

from __future__ import annotations

import random

from google.protobuf import duration_pb2

from nudge.common.v1 import common_pb2
from nudge.decision.v1 import decision_service_pb2 as decision_pb
from nudge.ingestion.v1 import ingestion_service_pb2 as pb
from nudgelib.request_checks import Refused, RequestDoor, duration_problem, timestamp_problem
from nudgelib.timezones import is_valid_time_zone


def fields(result) -> list[str]:
    assert type(result) is Refused, result
    return [v.field for v in result.violations]


def batch(n: int = 4) -> pb.TrackEventsRequest:
    return pb.TrackEventsRequest(events=[common_pb2.Event(event_id=f"e{i}", user_id="u", name="open")
                                         for i in range(n)])


def test_a_valid_request_passes_untouched():
    parse = RequestDoor().deserializer(pb.TrackEventsRequest.FromString)
    request = batch()
    request.events[0].properties.update({"a": {"b": ["x", 1.5]}})
    assert parse(request.SerializeToString()) == request


def test_nul_undefined_enums_and_out_of_range_times_are_named_by_path():
    request = batch()
    request.events[3].user_id = "a\x00"
    request.events[2].platform = 77
    request.events[1].occurred_time.seconds = 10**13
    request.events[0].properties.update({"cart": {"items": ["ok", "b\x00d"]}})
    parse = RequestDoor().deserializer(pb.TrackEventsRequest.FromString)
    assert fields(parse(request.SerializeToString())) == [
        "events[0].properties['cart']['items'][1]", "events[1].occurred_time", "events[2].platform",
        "events[3].user_id"]


def test_map_keys_and_values_repeated_enums_and_durations():
    identify = pb.IdentifyRequest(user_id="u")
    identify.attributes["a\x00"].string_value = "x"
    assert fields(RequestDoor().deserializer(pb.IdentifyRequest.FromString)(identify.SerializeToString())) == [
        "attributes['a\\x00']"]
    campaign = decision_pb.Campaign(audience=decision_pb.Audience(platforms=[1, 42]))
    campaign.triggers.add(event_name="x", delay=duration_pb2.Duration(seconds=-10**12))
    request = decision_pb.CreateCampaignRequest(campaign=campaign)
    parse = RequestDoor().deserializer(decision_pb.CreateCampaignRequest.FromString)
    assert fields(parse(request.SerializeToString())) == [
        "campaign.audience.platforms[1]", "campaign.triggers[0].delay"]


def test_messages_a_service_checks_per_item_are_left_to_it():
    request = batch()
    request.events[1].user_id = "a\x00"
    parse = RequestDoor(["nudge.common.v1.Event"]).deserializer(pb.TrackEventsRequest.FromString)
    assert parse(request.SerializeToString()) == request


def test_bytes_that_do_not_parse_name_the_field_where_they_break():
    parse = RequestDoor().deserializer(pb.TrackEventsRequest.FromString)
    request = batch()
    request.events[2].user_id = "zz"
    raw = request.SerializeToString()
    assert fields(parse(raw.replace(b"zz", b"\xff\xfe"))) == ["events[2].user_id"]
    assert fields(parse(raw[:-2])) == ["events[3]"]  # its length runs past the end
    assert fields(parse(b"\x0a\x05ab")) == ["events[0]"]
    assert fields(parse(b"\xff")) == [""]


def test_random_bytes_never_raise():
    rng = random.Random(7)
    parse = RequestDoor().deserializer(decision_pb.CreateCampaignRequest.FromString)
    valid = decision_pb.CreateCampaignRequest(campaign=decision_pb.Campaign(name="n", tags=["t"])).SerializeToString()
    for _ in range(2000):
        raw = bytearray(valid)
        for _ in range(rng.randint(1, 4)):
            raw[rng.randrange(len(raw))] = rng.randrange(256)
        parse(bytes(raw[:rng.randint(0, len(raw))]))
        parse(rng.randbytes(rng.randint(0, 40)))


def test_protobuf_ranges():
    assert timestamp_problem(253402300799, 999_999_999) is None
    assert timestamp_problem(253402300800, 0) is not None
    assert timestamp_problem(-62135596801, 0) is not None
    assert timestamp_problem(0, -1) is not None
    assert duration_problem(315576000000, 0) is None
    assert duration_problem(-315576000001, 0) is not None
    assert duration_problem(1, -1) is not None
    assert duration_problem(-1, -5) is None


def test_time_zones_are_zones_not_folders_or_long_names():
    assert is_valid_time_zone("Europe/Paris") and is_valid_time_zone("UTC")
    for bad in ("Europe", "America", "Europe/" + "x" * 300, "../etc/passwd", "Europe/Paris/", "", "a\x00"):
        assert not is_valid_time_zone(bad), bad
