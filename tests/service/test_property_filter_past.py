"""A property filter new to an app's segments counts its past from ingestion's stored events
(ReadEvents), bounded by what segmentation has applied: each matching event is counted once,
whether the save happens while events flow, the stream breaks mid-way, or ingestion is gone
(then the save changes nothing). Segmentation keeps no raw copy of events."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import asyncpg
import grpc
import pytest
from google.protobuf import struct_pb2

from nudge.common.v1 import common_pb2
from nudge.ingestion.v1 import ingestion_internal_service_pb2_grpc as ingestion_grpc
from nudge.segmentation.v1 import segmentation_internal_service_pb2 as seg_internal
from nudge.segmentation.v1 import segmentation_internal_service_pb2_grpc as seg_internal_grpc
from nudge.segmentation.v1 import segmentation_service_pb2 as seg_pb
from nudge.segmentation.v1 import segmentation_service_pb2_grpc as seg_grpc
from nudgelib.filters import compile_filters
from nudgelib.protoconv import to_timestamp
from services.segmentation.properties import counter_key
from services.segmentation.server import SPEC as SEGMENTATION
from tests.conftest import INTERNAL_TOKEN, eventually, start_host
from tests.helpers import Clients, create_app, event, expect_error, log_drained, own_database, track

INTERNAL = (("authorization", f"Bearer {INTERNAL_TOKEN}"),)
DOWN = "127.0.0.1:9"  # nothing listens there


def above(threshold: float) -> common_pb2.PropertyFilter:
    return common_pb2.PropertyFilter(name="cart_value", operator=common_pb2.PROPERTY_OPERATOR_GREATER,
                                     value=struct_pb2.Value(number_value=threshold))


def bought(*filters: common_pb2.PropertyFilter) -> seg_pb.Rule:
    return seg_pb.Rule(event=seg_pb.EventCondition(name="purchase", operator=seg_pb.EVENT_OPERATOR_AT_LEAST, count=1,
                                                   property_filters=filters))


async def counted(database_url: str, app_id: str, key: str) -> dict[str, int]:
    """Segmentation's all-time count of the counter `key`, per user."""
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch("SELECT user_id, count FROM segmentation.event_totals WHERE app_id = $1 AND key = $2",
                                app_id, key)
    finally:
        await conn.close()
    return {r["user_id"]: r["count"] for r in rows}


async def drained(database_url: str, app_id: str) -> None:
    await eventually(lambda: log_drained(database_url, app_id), timeout=30)


async def test_each_matching_event_counts_once_when_filters_are_saved_while_events_flow(stack, app, database_url):
    api = Clients(stack.channel)
    users = [f"flow-{i}" for i in range(30)]
    sent: list[tuple[str, float]] = []
    stop = asyncio.Event()

    async def produce() -> None:
        n = 0
        while not stop.is_set():
            batch = [(users[(n + i) % len(users)], float((n + i) * 7 % 50)) for i in range(25)]
            await api.ingestion.TrackEvents(track([event(f"flow-{n + i}", u, "purchase", cart_value=v)
                                                   for i, (u, v) in enumerate(batch)]), metadata=app.auth("events"))
            sent.extend(batch)
            n += len(batch)
            await asyncio.sleep(0.005)

    producer = asyncio.create_task(produce())
    try:
        await eventually(lambda: counted(database_url, app.id, "purchase"))  # some are applied already
        thresholds = (10.0, 25.0, 40.0)
        for threshold in thresholds:
            # Saved while events are stored, in flight to segmentation, and being applied.
            await api.segmentation.CreateSegment(seg_pb.CreateSegmentRequest(
                name=f"over {threshold}", rule=bought(above(threshold))), metadata=app.auth("admin"), timeout=30)
            await asyncio.sleep(0.2)
    finally:
        stop.set()
        await producer
    await drained(database_url, app.id)

    assert len(sent) > 200
    assert await counted(database_url, app.id, "purchase") == {u: sum(1 for s, _ in sent if s == u) for u in users}
    for threshold in thresholds:
        key = counter_key("purchase", compile_filters([above(threshold)]))
        expected = {u: n for u in users if (n := sum(1 for s, v in sent if s == u and v > threshold))}
        assert await counted(database_url, app.id, key) == expected, threshold


class CuttingIngestion(ingestion_grpc.IngestionInternalServiceServicer):
    """Ingestion's ReadEvents, passed through from the real one in pages of 4, with the first
    stream cut (UNAVAILABLE) after its first page, as a restart or a lost connection would."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._real = ingestion_grpc.IngestionInternalServiceStub(channel)
        self.tokens: list[str] = []
        self.pages = 0

    async def ReadEvents(self, request, context):
        self.tokens.append(request.page_token)
        request.page_size = 4
        async for page in self._real.ReadEvents(request, metadata=INTERNAL):
            self.pages += 1
            yield page
            if len(self.tokens) == 1:
                await context.abort(grpc.StatusCode.UNAVAILABLE, "connection lost")


@pytest.fixture
async def replica_behind_a_cut(stack, database_url):
    """Another segmentation replica on the shared database, reading ingestion through the cut."""
    proxy = CuttingIngestion(stack.channel("ingestion"))
    server = grpc.aio.server()
    ingestion_grpc.add_IngestionInternalServiceServicer_to_server(proxy, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    host = await start_host(SEGMENTATION, database_url, {"decision": stack.target("decision"),
                                                         "ingestion": f"127.0.0.1:{port}"})
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{host.port}")
    yield proxy, seg_grpc.SegmentationServiceStub(channel)
    await channel.close()
    await host.stop()
    await server.stop(0)


async def test_a_broken_stream_resumes_from_its_last_page_and_days_bound_the_past(
        stack, app, database_url, replica_behind_a_cut):
    proxy, replica = replica_behind_a_cut
    api = Clients(stack.channel)
    now = datetime.now(timezone.utc)
    events = [event(f"cut-{i}", f"cut-{i % 6}", "purchase", cart_value=float(i % 4) * 100) for i in range(30)]
    old = [event("cut-old", "cut-old", "purchase", cart_value=500.0), event("cut-edge", "cut-edge", "purchase",
                                                                             cart_value=500.0)]
    old[0].occurred_time.CopyFrom(to_timestamp(now - timedelta(days=31)))  # past EVENT_PROPERTY_DAYS (30)
    old[1].occurred_time.CopyFrom(to_timestamp(now - timedelta(days=29)))
    await api.ingestion.TrackEvents(track(events + old), metadata=app.auth("events"))
    await drained(database_url, app.id)
    rule = bought(above(150))
    matching = {e.user_id for e in events if e.properties["cart_value"] > 150} | {"cut-edge"}

    # A draft is estimated from the same past (through the same cut: the first call breaks).
    estimate = await replica.EstimateAudience(seg_pb.EstimateAudienceRequest(rule=rule), metadata=app.auth("admin"))
    assert estimate.user_count == len(matching)
    assert proxy.tokens[0] == "" and proxy.tokens[1] != ""

    proxy.tokens.clear()
    await replica.CreateSegment(seg_pb.CreateSegmentRequest(name="big carts", rule=rule), metadata=app.auth("admin"))
    assert proxy.tokens[0] == "" and proxy.tokens[1] != "" and len(proxy.tokens) == 2
    key = counter_key("purchase", compile_filters([above(150)]))
    assert await counted(database_url, app.id, key) == {
        u: sum(1 for e in events if e.user_id == u and e.properties["cart_value"] > 150) for u in matching - {"cut-edge"}
    } | {"cut-edge": 1}


async def test_without_ingestion_a_save_that_needs_the_past_is_unavailable_and_changes_nothing(database_url):
    async with own_database(database_url, "seg_past") as url:
        host = await start_host(SEGMENTATION, url, {"ingestion": DOWN})
        try:
            app = await create_app(url)
            async with grpc.aio.insecure_channel(f"127.0.0.1:{host.port}") as channel:
                internal = seg_internal_grpc.SegmentationInternalServiceStub(channel)
                public = seg_grpc.SegmentationServiceStub(channel)
                await internal.ApplyEvents(seg_internal.ApplyEventsRequest(
                    app_id=app.id, events=[event("u-1", "u", "purchase", cart_value=900)]), metadata=INTERNAL)
                request = seg_pb.CreateSegmentRequest(name="big", rule=bought(above(100)))
                await expect_error(public.CreateSegment(request, metadata=app.auth("admin"), timeout=20),
                                   grpc.StatusCode.UNAVAILABLE)
                await expect_error(public.EstimateAudience(seg_pb.EstimateAudienceRequest(rule=request.rule),
                                                           metadata=app.auth("admin"), timeout=20),
                                   grpc.StatusCode.UNAVAILABLE)
                listed = await public.ListSegments(seg_pb.ListSegmentsRequest(), metadata=app.auth("admin"))
                assert list(listed.segments) == []
                assert await counted(url, app.id, counter_key("purchase", compile_filters([above(100)]))) == {}
                # A rule without a new property filter needs no past.
                await public.CreateSegment(seg_pb.CreateSegmentRequest(name="buyers", rule=bought()),
                                           metadata=app.auth("admin"))
        finally:
            await host.stop()


async def test_applying_events_writes_no_copy_per_event(stack, app, database_url):
    """200 events of one user on one day add a handful of rows to segmentation (profile,
    counters, memberships, log positions), not one per event."""
    api = Clients(stack.channel)
    conn = await asyncpg.connect(database_url)
    try:
        tables = [r["table_name"] for r in await conn.fetch(
            "SELECT table_name FROM information_schema.columns WHERE table_schema = 'segmentation'"
            " AND column_name = 'app_id'")]

        async def rows() -> int:
            return sum([await conn.fetchval(f"SELECT count(*) FROM segmentation.{t} WHERE app_id = $1", app.id)
                        for t in tables])

        before = await rows()
        for start in (0, 100):
            await api.ingestion.TrackEvents(track([event(f"one-{i}", "one", "purchase" if i % 2 else "open",
                                                         cart_value=float(i)) for i in range(start, start + 100)]),
                                            metadata=app.auth("events"))
        await drained(database_url, app.id)
        assert await counted(database_url, app.id, "purchase") == {"one": 100}
        assert await rows() - before <= 10
    finally:
        await conn.close()
