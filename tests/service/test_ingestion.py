"""Ingestion with the four services in this process: partial success, deduplication across
replicas and restarts, forwarding, streams, erasure everywhere, metrics."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import asyncpg
import grpc

from nudge.common.v1 import common_pb2
from nudge.decision.v1 import decision_service_pb2 as decision_pb
from nudge.delivery.v1 import delivery_service_pb2 as delivery_pb
from nudge.ingestion.v1 import ingestion_internal_service_pb2 as ingestion_internal_pb
from nudge.ingestion.v1 import ingestion_internal_service_pb2_grpc as ingestion_internal_grpc
from nudge.ingestion.v1 import ingestion_service_pb2 as pb
from nudge.segmentation.v1 import segmentation_service_pb2 as seg_pb
from nudgelib.protoconv import to_timestamp
from nudgetools import demo
from services.ingestion.server import SPEC as INGESTION
from tests.conftest import INTERNAL_TOKEN, eventually, start_host
from tests.helpers import Clients, event, expect_error, track, traces_of_user, user_profile, violated_fields


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
    p = await user_profile(api, app, "ru")
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
        p = await user_profile(api, app, "iu")
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
    await api.ingestion.Identify(pb.IdentifyRequest(
        user_id="du", time_zone="Europe/Paris", attributes={"plan": common_pb2.AttributeValue(string_value="pro")}),
        metadata=app.auth("events"))
    await api.ingestion.TrackEvents(track([event("d1", "du", "signup"), event("d2", "du", "open"),
                                           event("k1", "keep", "signup")]), metadata=app.auth("events"))

    async def fetch(user="du"):
        return (await api.delivery.FetchMessages(delivery_pb.FetchMessagesRequest(user_id=user),
                                                 metadata=app.auth("client"))).messages

    (message,) = await eventually(fetch)
    await api.delivery.ReportInteraction(delivery_pb.ReportInteractionRequest(
        message_id=message.message_id, user_id="du", type=delivery_pb.INTERACTION_TYPE_IMPRESSION),
        metadata=app.auth("client"))
    conn = await asyncpg.connect(database_url)
    try:
        before = await traces_of_user(conn, app.id, "du")
        # The test is only as good as what it looks at: the user was in every service.
        assert {name.split(".")[0] for name in before} >= {"ingestion", "segmentation", "decision", "delivery"}, before

        reply = await api.ingestion.DeleteUser(pb.DeleteUserRequest(user_id="du"), metadata=app.auth("admin"))
        assert reply.completed
        assert await traces_of_user(conn, app.id, "du") == {}
        assert await user_profile(api, app, "du") is None
        # Delivery forgot the message, so its interactions can no longer be reported.
        await expect_error(api.delivery.ReportInteraction(delivery_pb.ReportInteractionRequest(
            message_id=message.message_id, user_id="du", type=delivery_pb.INTERACTION_TYPE_IMPRESSION),
            metadata=app.auth("client")), grpc.StatusCode.NOT_FOUND)
        assert list(await fetch()) == []
        # Another user of the app is untouched.
        assert len(await fetch("keep")) == 1
        # Idempotent.
        assert (await api.ingestion.DeleteUser(pb.DeleteUserRequest(user_id="du"), metadata=app.auth("admin"))).completed
        assert await traces_of_user(conn, app.id, "du") == {}
    finally:
        await conn.close()


async def test_delete_user_needs_a_user_id(stack, app):
    api = Clients(stack.channel)
    exc = await expect_error(api.ingestion.DeleteUser(pb.DeleteUserRequest(), metadata=app.auth("admin")),
                             grpc.StatusCode.INVALID_ARGUMENT)
    assert violated_fields(exc) == {"user_id"}
    await expect_error(api.ingestion.DeleteUser(pb.DeleteUserRequest(user_id="x"), metadata=app.auth("events")),
                       grpc.StatusCode.PERMISSION_DENIED)


async def test_unstorable_values_are_rejected_per_event_not_per_batch(stack, app):
    api = Clients(stack.channel)
    nan = event("n1", "u1", "open")
    nan.properties.update({"price": float("nan")})
    odd = event("p1", "u1", "open")
    odd.platform = 42
    reply = await api.ingestion.TrackEvents(track([
        event("z1", "u\x00", "open"), nan, odd, event("fine", "u1", "open")]), metadata=app.auth("events"))
    assert reply.accepted_count == 1
    assert [(r.index, r.reason) for r in reply.rejected] == [
        (0, "INVALID_USER_ID"), (1, "INVALID_PROPERTY"), (2, "INVALID_PLATFORM")]


async def test_a_retry_through_another_replica_and_after_a_restart_counts_once(stack, app, database_url):
    api = Clients(stack.channel)
    peers = {n: stack.target(n) for n in ("segmentation", "decision", "delivery")}
    batch = track([event("rr1", "rr", "open"), event("rr2", "rr", "open")])
    first = await api.ingestion.TrackEvents(batch, metadata=app.auth("events"))
    assert (first.accepted_count, first.duplicate_count) == (2, 0)
    # A second replica, stopped and started again: it knows the events from the database alone.
    for _ in range(2):
        replica = await start_host(INGESTION, database_url, peers)
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{replica.port}") as channel:
                again = await Clients(lambda _: channel).ingestion.TrackEvents(batch, metadata=app.auth("events"))
        finally:
            await replica.stop()
        assert (again.accepted_count, again.duplicate_count) == (2, 2)
    conn = await asyncpg.connect(database_url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM ingestion.events WHERE app_id = $1 AND user_id = 'rr'",
                                   app.id) == 2
    finally:
        await conn.close()
    opened = seg_pb.Rule(event=seg_pb.EventCondition(name="open", operator=seg_pb.EVENT_OPERATOR_EXACTLY, count=2))

    async def counted_twice():
        reply = await api.segmentation.EstimateAudience(seg_pb.EstimateAudienceRequest(rule=opened),
                                                        metadata=app.auth("admin"))
        return reply.user_count == 1

    await eventually(counted_twice)


async def test_stream_refuses_a_malformed_batch_after_acknowledging_the_good_ones(stack, app):
    api = Clients(stack.channel)

    async def batches():
        yield pb.StreamEventsRequest(batch_id="ok", events=[event("sm1", "smu", "open")])
        yield pb.StreamEventsRequest(batch_id="empty")

    acks = []
    call = api.ingestion.StreamEvents(batches(), metadata=app.auth("events"))
    exc = None
    try:
        async for ack in call:
            acks.append(ack.batch_id)
    except grpc.aio.AioRpcError as error:
        exc = error
    assert acks == ["ok"]
    assert exc is not None and exc.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violated_fields(exc) == {"events"}


async def test_metrics_count_events_by_outcome_and_time_batches(stack, app):
    registry = stack.hosts["ingestion"].registry

    def value(name, **labels):
        return registry.get_sample_value(name, labels) or 0.0

    before = (value("nudge_ingestion_events_accepted_total"), value("nudge_ingestion_events_duplicate_total"),
              value("nudge_ingestion_events_rejected_total", reason="INVALID_NAME"),
              value("nudge_ingestion_batch_duration_seconds_count"))
    api = Clients(stack.channel)
    for _ in range(2):
        await api.ingestion.TrackEvents(track([event("mx1", "mu", "open"), event("mx2", "mu", "1bad")]),
                                        metadata=app.auth("events"))
    after = (value("nudge_ingestion_events_accepted_total"), value("nudge_ingestion_events_duplicate_total"),
             value("nudge_ingestion_events_rejected_total", reason="INVALID_NAME"),
             value("nudge_ingestion_batch_duration_seconds_count"))
    assert [b - a for a, b in zip(before, after)] == [2, 1, 2, 2]
    # The backlog gauges exist per consumer from the start.
    assert registry.get_sample_value("nudge_log_backlog", {"log": "ingestion", "consumer": "decision"}) is not None
    assert registry.get_sample_value("nudge_log_oldest_age_seconds", {"log": "ingestion", "consumer": "segmentation"}) is not None


async def test_other_services_ingest_events_through_the_internal_api_only(stack, app, database_url):
    channel = stack.channel("ingestion")
    internal = ingestion_internal_grpc.IngestionInternalServiceStub(channel)
    request = ingestion_internal_pb.IngestEventsRequest(
        app_id=app.id, events=[event("in1", "iu2", "message_clicked"), event("in2", "iu2", "bad name")])
    # An app's key, even an admin one, cannot call it.
    await expect_error(internal.IngestEvents(request, metadata=app.auth("admin")), grpc.StatusCode.PERMISSION_DENIED)
    token = (("authorization", f"Bearer {INTERNAL_TOKEN}"),)
    reply = await internal.IngestEvents(request, metadata=token)
    assert (reply.accepted_count, reply.rejected_count) == (1, 1)
    again = await internal.IngestEvents(request, metadata=token)
    assert again.accepted_count == 1
    conn = await asyncpg.connect(database_url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM ingestion.events WHERE app_id = $1 AND user_id = 'iu2'",
                                   app.id) == 1
    finally:
        await conn.close()
    exc = await expect_error(internal.IngestEvents(ingestion_internal_pb.IngestEventsRequest(
        events=[event("x", "u", "open")]), metadata=token), grpc.StatusCode.INVALID_ARGUMENT)
    assert violated_fields(exc) == {"app_id"}
