"""Ingestion: partial success, deduplication, forwarding to segmentation, streams, erasure."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import asyncpg
import grpc

from nudge.common.v1 import common_pb2
from nudge.decision.v1 import decision_service_pb2 as decision_pb
from nudge.delivery.v1 import delivery_service_pb2 as delivery_pb
from nudge.ingestion.v1 import ingestion_service_pb2 as pb
from nudge.segmentation.v1 import segmentation_service_pb2 as seg_pb
from nudgelib import demo
from nudgelib.protoconv import to_timestamp
from tests.conftest import eventually
from tests.helpers import Clients, event, expect_error, track, violated_fields


async def profile(api: Clients, app, user_id: str):
    try:
        return (await api.segmentation.GetUserProfile(
            seg_pb.GetUserProfileRequest(user_id=user_id), metadata=app.auth("admin"))).profile
    except grpc.aio.AioRpcError as exc:
        if exc.code() == grpc.StatusCode.NOT_FOUND:
            return None
        raise


async def test_bad_event_does_not_sink_its_batch(stack, app):
    api = Clients(stack.channel)
    future = event("f1", "u1", "open")
    future.occurred_time.CopyFrom(to_timestamp(datetime.now(timezone.utc) + timedelta(hours=1)))
    reply = await api.ingestion.TrackEvents(track([
        event("ok1", "u1", "open"),
        event("", "u1", "open"),
        event("bad-name", "u1", "9lives"),
        future,
        event("ok2", "u1", "open"),
    ]), metadata=app.auth("events"))
    assert reply.accepted_count == 2
    assert [(r.index, r.reason) for r in reply.rejected] == [
        (1, "MISSING_EVENT_ID"), (2, "INVALID_NAME"), (3, "FUTURE_TIMESTAMP")]


async def test_retries_are_stored_and_counted_once(stack, app):
    api = Clients(stack.channel)
    batch = track([event("r1", "ru", "open"), event("r2", "ru", "open")])
    first = await api.ingestion.TrackEvents(batch, metadata=app.auth("events"))
    again = await api.ingestion.TrackEvents(batch, metadata=app.auth("events"))
    assert (first.accepted_count, first.duplicate_count) == (2, 0)
    assert (again.accepted_count, again.duplicate_count) == (2, 2)
    # A segment of users who opened exactly twice holds the user: the retry counted nothing.
    twice = seg_pb.Rule(event=seg_pb.EventCondition(name="open", operator=seg_pb.EVENT_OPERATOR_EXACTLY, count=2))

    async def estimate():
        reply = await api.segmentation.EstimateAudience(seg_pb.EstimateAudienceRequest(rule=twice),
                                                        metadata=app.auth("admin"))
        return reply.user_count == 1 and reply

    await eventually(estimate)
    p = await profile(api, app, "ru")
    assert p.known


async def test_empty_or_oversized_batch_is_invalid_argument(stack, app):
    api = Clients(stack.channel)
    exc = await expect_error(api.ingestion.TrackEvents(track([]), metadata=app.auth("events")),
                             grpc.StatusCode.INVALID_ARGUMENT)
    assert violated_fields(exc) == {"events"}
    many = [event(f"m{i}", "u", "open") for i in range(1001)]
    exc = await expect_error(api.ingestion.TrackEvents(track(many), metadata=app.auth("events")),
                             grpc.StatusCode.INVALID_ARGUMENT)
    assert violated_fields(exc) == {"events"}


async def test_identify_updates_the_profile_and_refuses_unknown_time_zones(stack, app):
    api = Clients(stack.channel)
    exc = await expect_error(api.ingestion.Identify(pb.IdentifyRequest(user_id="iu", time_zone="Mars/Olympus"),
                                                    metadata=app.auth("events")), grpc.StatusCode.INVALID_ARGUMENT)
    assert violated_fields(exc) == {"time_zone"}
    await api.ingestion.Identify(pb.IdentifyRequest(
        user_id="iu", time_zone="Europe/Paris", locale="fr-FR",
        attributes={"plan": common_pb2.AttributeValue(string_value="pro"),
                    "age": common_pb2.AttributeValue(int_value=41)}), metadata=app.auth("events"))
    await api.ingestion.Identify(pb.IdentifyRequest(
        user_id="iu", unset_attributes=["age"],
        attributes={"vip": common_pb2.AttributeValue(bool_value=True)}), metadata=app.auth("events"))

    async def updated():
        p = await profile(api, app, "iu")
        return p is not None and "vip" in p.attributes and p

    p = await eventually(updated)
    assert p.time_zone == "Europe/Paris" and p.locale == "fr-FR"
    assert dict(p.attributes) == {"plan": common_pb2.AttributeValue(string_value="pro"),
                                  "vip": common_pb2.AttributeValue(bool_value=True)}


async def test_stream_acknowledges_each_batch(stack, app):
    api = Clients(stack.channel)

    async def batches():
        for i in range(3):
            yield pb.StreamEventsRequest(batch_id=f"b{i}", events=[event(f"st{i}", "su", "open")])

    acks = [ack async for ack in api.ingestion.StreamEvents(batches(), metadata=app.auth("events"))]
    assert [(a.batch_id, a.accepted_count) for a in acks] == [("b0", 1), ("b1", 1), ("b2", 1)]


async def test_delete_user_leaves_nothing_behind(stack, app, database_url):
    api = Clients(stack.channel)
    segment = (await api.segmentation.CreateSegment(demo.signup_segment(), metadata=app.auth("admin"))).segment
    await api.decision.CreateCampaign(decision_pb.CreateCampaignRequest(
        campaign=demo.welcome_campaign(segment.id)), metadata=app.auth("admin"))
    await api.ingestion.TrackEvents(track([event("d1", "du", "signup")]), metadata=app.auth("events"))

    async def fetch():
        return (await api.delivery.FetchMessages(delivery_pb.FetchMessagesRequest(user_id="du"),
                                                 metadata=app.auth("client"))).messages

    (message,) = await eventually(fetch)
    reply = await api.ingestion.DeleteUser(pb.DeleteUserRequest(user_id="du"), metadata=app.auth("admin"))
    assert reply.completed
    assert await profile(api, app, "du") is None
    # Delivery forgot the message, so its interactions can no longer be reported.
    await expect_error(api.delivery.ReportInteraction(delivery_pb.ReportInteractionRequest(
        message_id=message.message_id, user_id="du", type=delivery_pb.INTERACTION_TYPE_IMPRESSION),
        metadata=app.auth("client")), grpc.StatusCode.NOT_FOUND)
    # Ingestion kept no events: the user's segment membership is gone with the aggregates.
    assert list(await fetch()) == []
    conn = await asyncpg.connect(database_url)
    try:
        assert await conn.fetchval(
            "SELECT count(*) FROM ingestion.events WHERE app_id = $1 AND user_id = 'du'", app.id) == 0
    finally:
        await conn.close()
    # Idempotent.
    assert (await api.ingestion.DeleteUser(pb.DeleteUserRequest(user_id="du"), metadata=app.auth("admin"))).completed
