"""The client package's EventProducer against the real ingestion: batches by count, bytes and
linger; ids made for events without one; a bounded buffer; rejections told apart from
transport failures; and, with UNAVAILABLE injected between it and ingestion by a real gRPC
proxy (tests/grpc_proxy.py), every event stored exactly once."""

from __future__ import annotations

import asyncio
import time
import uuid

import asyncpg
import pytest

from nudge_client import AsyncNudge, BufferFull, DeliveryFailed, EventProducer, ProducerClosed, RetryPolicy
from nudge_client.protos import common, ingestion, segmentation
from tests.conftest import eventually
from tests.grpc_proxy import Fate, Plan, Proxy
from tests.helpers import log_drained

FAST = RetryPolicy(max_attempts=20, initial_backoff=0.01, max_backoff=0.1)


@pytest.fixture
async def proxy(stack):
    p = await Proxy(stack.target("ingestion")).start()
    yield p
    await p.stop()


def batches(proxy: Proxy) -> list[list[str]]:
    """The event ids of each TrackEvents that reached the proxy, in order."""
    return [[e.event_id for e in ingestion.TrackEventsRequest.FromString(c.request).events]
            for c in proxy.calls if c.method.endswith("TrackEvents")]


async def stored(database_url: str, app_id: str) -> dict[str, int]:
    """event_id -> how many rows ingestion holds for it."""
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch("SELECT event_id, count(*) AS n FROM ingestion.events WHERE app_id = $1 "
                                "GROUP BY event_id", app_id)
    finally:
        await conn.close()
    return {r["event_id"]: r["n"] for r in rows}


async def test_with_unavailable_injected_the_producer_loses_and_duplicates_nothing(stack, app, proxy, database_url):
    # Two calls in three fail: one after ingestion stored the batch (its reply lost), one before
    # it saw the batch; midway the proxy goes down for a moment (connections refused).
    def plan(method: str, n: int) -> Plan:
        return {1: Plan(Fate.FAIL_AFTER), 2: Plan(Fate.FAIL_BEFORE)}.get(n % 3, Plan())
    proxy.plan = plan
    failed: list = []
    async with AsyncNudge({"segmentation": stack.target("segmentation")}, app.keys["admin"]) as admin:
        # Segmentation's count of each user's events, seen through its API: 10 each, not more.
        exactly_ten = (await admin.create_segment(name="Ten views", rule=segmentation.Rule(
            event=segmentation.EventCondition(name="page_viewed", operator=segmentation.EVENT_OPERATOR_EXACTLY,
                                              count=10)))).segment.id
    async with AsyncNudge({"ingestion": proxy.target}, app.keys["events"]) as nudge:
        producer = EventProducer(nudge, max_batch_events=25, linger=0.01, retry=FAST,
                                 on_failed=lambda events, error: failed.append(error))
        futures = []
        for i in range(300):
            futures.append(await producer.send(user_id=f"u{i % 30}", name="page_viewed",
                                               properties={"n": i}))
            if i == 150:
                await proxy.restart(down_for=0.3)
        await producer.close()
    results = [f.result() for f in futures]
    sent_ids = [r.event_id for r in results]
    assert all(r.accepted for r in results) and failed == []
    assert len(set(sent_ids)) == 300
    assert await stored(database_url, app.id) == {event_id: 1 for event_id in sent_ids}
    # The failures did happen, and the retries resent the same ids: nothing new was made.
    lost_replies = [c for c in proxy.calls if c.fate is Fate.FAIL_AFTER]
    assert len(lost_replies) >= 4 and producer.stats.retries >= 8
    assert {i for b in batches(proxy) for i in b} == set(sent_ids)
    assert producer.stats.duplicates >= sum(len(ingestion.TrackEventsRequest.FromString(c.request).events)
                                            for c in lost_replies)
    assert (producer.stats.accepted, producer.stats.failed, producer.stats.rejected) == (300, 0, 0)
    await eventually(lambda: log_drained(database_url, app.id))
    async with AsyncNudge({"segmentation": stack.target("segmentation")}, app.keys["admin"]) as admin:
        estimate = await admin.estimate_audience(segment_id=exactly_ten)
    assert (estimate.user_count, estimate.total_user_count) == (30, 30)


async def test_batches_close_at_the_count_the_bytes_or_the_linger(stack, app, proxy):
    async with AsyncNudge({"ingestion": proxy.target}, app.keys["events"]) as nudge:
        async with EventProducer(nudge, max_batch_events=10, linger=5.0) as by_count:
            for i in range(25):
                await by_count.send(event_id=f"c{i}-{uuid.uuid4()}", user_id="u1", name="tick")
        assert [len(b) for b in batches(proxy)] == [10, 10, 5]  # the 5 left went at close

        proxy.calls.clear()
        one = common.Event(event_id=str(uuid.uuid4()), user_id="u1", name="tick")
        async with EventProducer(nudge, max_batch_events=100, max_batch_bytes=3 * one.ByteSize(),
                                 linger=5.0) as by_bytes:
            for _ in range(7):
                await by_bytes.send(event_id=str(uuid.uuid4()), user_id="u1", name="tick")
        assert [len(b) for b in batches(proxy)] == [3, 3, 1]

        proxy.calls.clear()
        async with EventProducer(nudge, linger=0.3) as by_time:
            sent_at = asyncio.get_running_loop().time()
            result = await (await by_time.send(user_id="u1", name="tick"))
            assert result.accepted
            assert 0.3 <= proxy.calls[0].at - sent_at < 1.5
        async with EventProducer(nudge, linger=5.0) as flushed:
            # flush does not wait for the linger
            began = time.monotonic()
            pending = await flushed.send(user_id="u1", name="tick")
            await flushed.flush()
            assert pending.done() and time.monotonic() - began < 2.0


async def test_an_event_without_id_gets_a_uuid_and_the_callers_event_is_left_alone(stack, app, database_url):
    async with AsyncNudge({"ingestion": stack.target("ingestion")}, app.keys["events"]) as nudge:
        async with EventProducer(nudge) as producer:
            mine = common.Event(user_id="u1", name="signup")
            result = await (await producer.send(mine))
    assert mine.event_id == ""
    assert uuid.UUID(result.event_id) and (await stored(database_url, app.id)) == {result.event_id: 1}


async def test_rejected_events_are_reported_apart_from_transport_failures(stack, app):
    rejected, failed = [], []
    async with AsyncNudge({"ingestion": stack.target("ingestion")}, app.keys["events"]) as nudge:
        async with EventProducer(nudge, on_rejected=lambda e, r: rejected.append((e.name, r.reason)),
                                 on_failed=lambda events, error: failed.append(error)) as producer:
            good = await producer.send(user_id="u1", name="signup")
            bad = await producer.send(user_id="", name="signup")
        assert good.result().accepted
        assert (bad.result().accepted, bad.result().reason) == (False, "MISSING_USER_ID")
        assert rejected == [("signup", "MISSING_USER_ID")] and failed == []
        assert (producer.stats.accepted, producer.stats.rejected, producer.stats.failed) == (1, 1, 0)

    rejected.clear()
    async with AsyncNudge({"ingestion": stack.target("ingestion")}, "not-a-key") as stranger:
        async with EventProducer(stranger, on_rejected=lambda e, r: rejected.append(r),
                                 on_failed=lambda events, error: failed.append((len(events), error))) as producer:
            refused = await producer.send(user_id="u1", name="signup")
        with pytest.raises(DeliveryFailed) as transport:
            refused.result()
    assert "UNAUTHENTICATED" in str(transport.value) and transport.value.cause is not None
    assert [n for n, _ in failed] == [1] and rejected == []
    assert (producer.stats.failed, producer.stats.rejected) == (1, 0)
    with pytest.raises(ProducerClosed):
        await producer.send(user_id="u1", name="signup")


async def test_a_full_buffer_makes_send_wait_or_raise_after_send_timeout(stack, app, proxy):
    proxy.plan = lambda method, n: Plan(hold=1.0) if n == 1 else Plan()
    async with AsyncNudge({"ingestion": proxy.target}, app.keys["events"]) as nudge:
        impatient = EventProducer(nudge, max_batch_events=2, max_buffered_events=4, linger=0, send_timeout=0.2)
        for _ in range(4):  # two in flight (held by the proxy), two waiting
            await impatient.send(user_id="u1", name="tick")
        await asyncio.sleep(0.05)
        began = time.monotonic()
        with pytest.raises(BufferFull):
            await impatient.send(user_id="u1", name="tick")
        assert 0.2 <= time.monotonic() - began < 0.9
        await impatient.close()
        assert impatient.stats.accepted == 4

        proxy.calls.clear()
        patient = EventProducer(nudge, max_batch_events=2, max_buffered_events=4, linger=0)
        for _ in range(4):
            await patient.send(user_id="u1", name="tick")
        await asyncio.sleep(0.05)
        began = time.monotonic()
        fifth = await patient.send(user_id="u1", name="tick")  # waits for the held batch
        assert time.monotonic() - began >= 0.8
        await patient.close()
        assert fifth.result().accepted and patient.stats.accepted == 5


async def test_close_sends_what_is_buffered_and_gives_up_after_its_timeout(stack, app, proxy, database_url):
    async with AsyncNudge({"ingestion": proxy.target}, app.keys["events"]) as nudge:
        producer = EventProducer(nudge, linger=60.0)
        futures = [await producer.send(user_id="u1", name="tick") for _ in range(5)]
        await producer.close()
        ids = [f.result().event_id for f in futures]
        assert await stored(database_url, app.id) == {i: 1 for i in ids}

        proxy.plan = lambda method, n: Plan(Fate.FAIL_BEFORE)  # ingestion out of reach for good
        failed = []
        stuck = EventProducer(nudge, retry=FAST, on_failed=lambda events, error: failed.append(len(events)))
        never = await stuck.send(user_id="u1", name="tick")
        began = time.monotonic()
        await stuck.close(timeout=0.3)
        assert time.monotonic() - began < 1.0
        with pytest.raises(DeliveryFailed):
            never.result()
        assert failed == [1]
