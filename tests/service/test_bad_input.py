"""Bad input stops at the door: out-of-range operator settings, NUL and invalid UTF-8, folder
names as time zones, timestamps and durations past protobuf's range, undefined enum values and
bytes that do not parse are INVALID_ARGUMENT naming the field, on any RPC, and never break a
later pull, release or Explain."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import duration_pb2, timestamp_pb2

from nudge.decision.v1 import decision_internal_service_pb2 as internal_pb
from nudge.decision.v1 import decision_internal_service_pb2_grpc as internal_grpc
from nudge.decision.v1 import decision_service_pb2 as pb
from nudge.delivery.v1 import delivery_service_pb2 as delivery_pb
from nudge.ingestion.v1 import ingestion_service_pb2 as ingestion_pb
from nudge.segmentation.v1 import segmentation_service_pb2 as seg_pb
from tests.conftest import INTERNAL_TOKEN
from tests.helpers import Clients, event, expect_error, make_campaign, violated_fields

INTERNAL = (("authorization", f"Bearer {INTERNAL_TOKEN}"),)
TEN_THOUSAND_YEARS = duration_pb2.Duration(seconds=315_576_000_000)  # protobuf's own maximum


async def outcome(call) -> grpc.aio.AioRpcError | None:
    """The error a call ends with, or None: read after the calls that must keep working, so
    a save that is wrongly accepted shows up as the failure it causes later."""
    try:
        await call
    except grpc.aio.AioRpcError as exc:
        return exc
    return None


def assert_refused(exc: grpc.aio.AioRpcError | None, field: str) -> None:
    assert exc is not None, f"the save was accepted; expected INVALID_ARGUMENT on {field}"
    assert exc.code() == grpc.StatusCode.INVALID_ARGUMENT, exc.details()
    assert field in violated_fields(exc), (violated_fields(exc), exc.details())


async def test_a_ten_thousand_year_delay_is_refused_and_the_trigger_path_keeps_working(stack, app):
    api = Clients(stack.channel)
    c = make_campaign(delivery_mode=pb.DELIVERY_MODE_TRIGGERED)
    c.triggers.add(event_name="cart_abandoned", delay=TEN_THOUSAND_YEARS)
    saved = await outcome(api.decision.CreateCampaign(pb.CreateCampaignRequest(campaign=c), metadata=app.auth("admin")))
    internal = internal_grpc.DecisionInternalServiceStub(stack.channel("decision"))
    await internal.ApplyEvents(internal_pb.ApplyEventsRequest(
        app_id=app.id, events=[event("late-1", "u-late", "cart_abandoned")]), metadata=INTERNAL)
    assert_refused(saved, "campaign.triggers[0].delay")


async def test_a_ten_thousand_year_time_to_live_is_refused_and_pulls_keep_working(stack, app):
    api = Clients(stack.channel)
    saved = await outcome(api.decision.CreateCampaign(pb.CreateCampaignRequest(
        campaign=make_campaign(message_ttl=TEN_THOUSAND_YEARS)), metadata=app.auth("admin")))
    await api.delivery.FetchMessages(delivery_pb.FetchMessagesRequest(user_id="u-ttl"), metadata=app.auth("client"))
    assert_refused(saved, "campaign.message_ttl")


async def test_an_undefined_status_is_refused_and_explain_keeps_working(stack, app):
    api = Clients(stack.channel)
    saved = await outcome(api.decision.CreateCampaign(pb.CreateCampaignRequest(
        campaign=make_campaign(status=99)), metadata=app.auth("admin")))
    good = (await api.decision.CreateCampaign(pb.CreateCampaignRequest(campaign=make_campaign()),
                                              metadata=app.auth("admin"))).campaign
    changed = await outcome(api.decision.SetCampaignStatus(pb.SetCampaignStatusRequest(
        campaign_id=good.id, status=99), metadata=app.auth("admin")))
    reply = await api.decision.ExplainDecision(pb.ExplainDecisionRequest(user_id="u-99"), metadata=app.auth("admin"))
    assert [e.campaign_id for e in reply.campaigns] == [good.id]
    assert_refused(saved, "campaign.status")
    assert_refused(changed, "status")


@pytest.mark.parametrize("settings, field", [
    (pb.AppSettings(cap_rules=[pb.CapRule(id="r", max_messages=1, rolling=TEN_THOUSAND_YEARS)]),
     "settings.cap_rules[0].rolling"),
    (pb.AppSettings(cap_rules=[pb.CapRule(id="r", max_messages=1, calendar_days=100_000)]),
     "settings.cap_rules[0].calendar_days"),
    (pb.AppSettings(cap_rules=[pb.CapRule(id="r", max_messages=4_000_000_000, calendar_days=1)]),
     "settings.cap_rules[0].max_messages"),
    (pb.AppSettings(default_time_zone="Europe"), "settings.default_time_zone"),
    (pb.AppSettings(default_time_zone="Europe/" + "x" * 300), "settings.default_time_zone"),
])
async def test_app_settings_out_of_range_are_refused_and_pulls_keep_working(stack, app, settings, field):
    api = Clients(stack.channel)
    await api.decision.CreateCampaign(pb.CreateCampaignRequest(campaign=make_campaign()), metadata=app.auth("admin"))
    saved = await outcome(api.decision.UpdateAppSettings(pb.UpdateAppSettingsRequest(settings=settings),
                                                         metadata=app.auth("admin")))
    reply = await api.delivery.FetchMessages(delivery_pb.FetchMessagesRequest(user_id="u-caps"),
                                             metadata=app.auth("client"))
    assert len(reply.messages) == 1
    assert_refused(saved, field)


@pytest.mark.parametrize("change, field", [
    ({"caps": pb.CampaignCaps(reeligibility_interval=TEN_THOUSAND_YEARS)}, "campaign.caps.reeligibility_interval"),
    ({"caps": pb.CampaignCaps(lifetime_max=4_000_000_000)}, "campaign.caps.lifetime_max"),
    ({"start_time": timestamp_pb2.Timestamp(seconds=253402300799)}, "campaign.start_time"),
    ({"end_time": timestamp_pb2.Timestamp(seconds=-62135596800)}, "campaign.end_time"),
    # Past protobuf's own ranges: refused by the door before decision's rules.
    ({"start_time": timestamp_pb2.Timestamp(seconds=10**13)}, "campaign.start_time"),
    ({"message_ttl": duration_pb2.Duration(seconds=10**15)}, "campaign.message_ttl"),
    ({"delivery_mode": 7}, "campaign.delivery_mode"),
])
async def test_campaign_settings_out_of_range_are_refused_and_explain_keeps_working(stack, app, change, field):
    api = Clients(stack.channel)
    saved = await outcome(api.decision.CreateCampaign(pb.CreateCampaignRequest(campaign=make_campaign(**change)),
                                                      metadata=app.auth("admin")))
    await api.decision.ExplainDecision(pb.ExplainDecisionRequest(user_id="u-range"), metadata=app.auth("admin"))
    await api.delivery.FetchMessages(delivery_pb.FetchMessagesRequest(user_id="u-range"), metadata=app.auth("client"))
    assert_refused(saved, field)


async def test_nul_in_ids_is_invalid_argument_naming_the_field_on_every_service(stack, app):
    api = Clients(stack.channel)
    admin, client = app.auth("admin"), app.auth("client")
    calls = [
        (api.decision.GetCampaign(pb.GetCampaignRequest(campaign_id="cmp_\x00"), metadata=admin), "campaign_id"),
        (api.decision.ExplainDecision(pb.ExplainDecisionRequest(user_id="u\x00"), metadata=admin), "user_id"),
        (api.segmentation.GetSegment(seg_pb.GetSegmentRequest(segment_id="seg_\x00"), metadata=admin), "segment_id"),
        (api.segmentation.GetUserProfile(seg_pb.GetUserProfileRequest(user_id="u\x00"), metadata=admin), "user_id"),
        (api.delivery.FetchMessages(delivery_pb.FetchMessagesRequest(user_id="u\x00"), metadata=client), "user_id"),
        (api.delivery.FetchMessages(delivery_pb.FetchMessagesRequest(user_id="u", platform=42), metadata=client),
         "platform"),
        (api.ingestion.DeleteUser(ingestion_pb.DeleteUserRequest(user_id="u\x00"), metadata=admin), "user_id"),
        (api.ingestion.Identify(ingestion_pb.IdentifyRequest(user_id="u", time_zone="Europe"),
                                metadata=app.auth("events")), "time_zone"),
    ]
    for call, field in calls:
        exc = await expect_error(call, grpc.StatusCode.INVALID_ARGUMENT)
        assert violated_fields(exc) == {field}, exc.details()


async def test_a_negative_page_size_is_invalid_argument(stack, app):
    """The door refuses it for every list (the other lists' page sizes are unsigned)."""
    exc = await expect_error(Clients(stack.channel).decision.ListPendingSends(
        pb.ListPendingSendsRequest(user_id="u", page_size=-1), metadata=app.auth("admin")),
        grpc.StatusCode.INVALID_ARGUMENT)
    assert violated_fields(exc) == {"page_size"}, exc.details()


async def test_a_ten_thousand_year_delay_set_on_a_campaign_already_running_is_refused(stack, app):
    api = Clients(stack.channel)
    c = make_campaign(delivery_mode=pb.DELIVERY_MODE_TRIGGERED)
    c.triggers.add(event_name="cart_abandoned")
    saved = (await api.decision.CreateCampaign(pb.CreateCampaignRequest(campaign=c), metadata=app.auth("admin"))).campaign
    saved.triggers[0].delay.CopyFrom(TEN_THOUSAND_YEARS)
    exc = await expect_error(api.decision.UpdateCampaign(pb.UpdateCampaignRequest(campaign=saved),
                                                         metadata=app.auth("admin")), grpc.StatusCode.INVALID_ARGUMENT)
    assert violated_fields(exc) == {"campaign.triggers[0].delay"}


def raw_call(channel: grpc.aio.Channel, path: str):
    return channel.unary_unary(path, request_serializer=None, response_deserializer=None)


async def test_bytes_that_do_not_parse_are_invalid_argument_naming_the_field(stack, app):
    decision = stack.channel("decision")
    get = raw_call(decision, "/nudge.decision.v1.DecisionService/GetCampaign")
    valid = pb.GetCampaignRequest(campaign_id="zz").SerializeToString()
    exc = await expect_error(get(valid.replace(b"zz", b"\xff\xfe"), metadata=app.auth("admin")),
                             grpc.StatusCode.INVALID_ARGUMENT)
    assert violated_fields(exc) == {"campaign_id"}
    exc = await expect_error(get(valid[:-1], metadata=app.auth("admin")), grpc.StatusCode.INVALID_ARGUMENT)
    assert violated_fields(exc) == {"campaign_id"}
    await expect_error(get(b"\xff\xff\xff", metadata=app.auth("admin")), grpc.StatusCode.INVALID_ARGUMENT)
    # The caller is authenticated first: without a key, nothing is said about the bytes.
    await expect_error(get(b"\xff\xff\xff"), grpc.StatusCode.UNAUTHENTICATED)

    track = raw_call(stack.channel("ingestion"), "/nudge.ingestion.v1.IngestionService/TrackEvents")
    batch = ingestion_pb.TrackEventsRequest(events=[event("e1", "u1", "open"), event("e2", "zz", "open")])
    exc = await expect_error(track(batch.SerializeToString().replace(b"zz", b"\xc3\x28"), metadata=app.auth("events")),
                             grpc.StatusCode.INVALID_ARGUMENT)
    assert violated_fields(exc) == {"events[1].user_id"}


async def test_a_stream_message_that_does_not_parse_ends_the_stream_with_invalid_argument(stack, app):
    stream = stack.channel("ingestion").stream_stream(
        "/nudge.ingestion.v1.IngestionService/StreamEvents", request_serializer=None, response_deserializer=None)
    good = ingestion_pb.StreamEventsRequest(batch_id="b1", events=[event("s1", "u1", "open")]).SerializeToString()
    bad = ingestion_pb.StreamEventsRequest(batch_id="zz").SerializeToString().replace(b"zz", b"\xff\xfe")

    async def batches():
        yield good
        yield bad

    call = stream(batches(), metadata=app.auth("events"))
    replies = []
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        async for reply in call:
            replies.append(reply)
    assert len(replies) == 1
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violated_fields(raised.value) == {"batch_id"}


async def test_events_keep_partial_success_for_what_ingestion_checks_per_event(stack, app):
    api = Clients(stack.channel)
    odd = event("pp1", "u1", "open")
    odd.occurred_time.seconds = 10**13
    reply = await api.ingestion.TrackEvents(ingestion_pb.TrackEventsRequest(
        events=[event("pp0", "u\x00", "open"), odd, event("pp2", "u1", "open")]), metadata=app.auth("events"))
    assert reply.accepted_count == 1
    assert [(r.index, r.reason) for r in reply.rejected] == [(0, "INVALID_USER_ID"), (1, "INVALID_TIMESTAMP")]
