"""Bench scenario `ingestion`: end-to-end event intake against a floor measured in the same run.

- floor: the same serialized batches parsed (`TrackEventsRequest.FromString`) and written
  with asyncpg `copy_records_to_table` into a plain table of the same columns, by the same
  number of concurrent writers, and nothing else;
- end to end: the same batches sent to ingestion's TrackEvents by the same number of
  concurrent producers; the clock stops when every event is acknowledged (durable),
  applied by segmentation and taken by decision: a consumer's cursor in the log moves only when
  its consumer has answered. A triggered campaign (a day's delay) reacts to `purchase`, so
  decision records those, a fifth of the events, and starts a send for each.

Next to the table, what PostgreSQL spent on the end-to-end phase per event (tests.bench.pgcost):
CPU of all its processes, and execution time from `pg_stat_statements` with the statements that
took the most.

Batches of 500 events over 100k users. BENCH_EVENTS (default 200000) and
BENCH_PRODUCERS (default 4) change the volume and the concurrency; BENCH_PG_STATEMENTS=0
starts PostgreSQL without `pg_stat_statements` (to see what it costs itself).
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from datetime import datetime, timedelta, timezone

import asyncpg
import grpc

from google.protobuf import duration_pb2

from nudge.common.v1 import common_pb2
from nudge.decision.v1 import decision_service_pb2 as decision_pb
from nudge.decision.v1 import decision_service_pb2_grpc as decision_grpc
from nudge.ingestion.v1 import ingestion_service_pb2 as ingestion_pb
from nudgelib.protoconv import to_datetime, to_timestamp
from nudgetools import demo
from tests.bench.harness import database, peak_rss_mb, running_cluster
from tests.bench.pgcost import STATEMENTS, PhaseCost, PhaseMeter, print_cost
from tests.helpers import LOG_DRAINED, create_app

USERS = 100_000
BATCH = 500
EVENTS = int(os.environ.get("BENCH_EVENTS", "200000"))
PRODUCERS = int(os.environ.get("BENCH_PRODUCERS", "4"))
PRELOAD = (STATEMENTS,) if os.environ.get("BENCH_PG_STATEMENTS", "1") != "0" else ()
NAMES = ("screen_view", "add_to_cart", "purchase", "session_start", "search")
SCREENS = ("home", "search", "product", "cart", "checkout", "profile")
TRACK = "/nudge.ingestion.v1.IngestionService/TrackEvents"

_FLOOR_TABLE = """
CREATE TABLE IF NOT EXISTS public.bench_floor (
    app_id text NOT NULL, event_id text NOT NULL, user_id text NOT NULL, name text NOT NULL,
    occurred_at timestamptz NOT NULL, received_at timestamptz NOT NULL, platform smallint NOT NULL,
    app_version text NOT NULL, session_id text NOT NULL, payload bytea NOT NULL)
"""
_FLOOR_COLUMNS = ("app_id", "event_id", "user_id", "name", "occurred_at", "received_at", "platform",
                  "app_version", "session_id", "payload")


def make_batches(total: int) -> list[bytes]:
    """Serialized TrackEventsRequests of BATCH events each, users drawn from USERS."""
    rng = random.Random(7)
    now = datetime.now(timezone.utc)
    batches = []
    for b in range(total // BATCH):
        events = []
        for i in range(BATCH):
            user = rng.randrange(USERS)
            e = common_pb2.Event(
                event_id=f"ev-{b}-{i}", user_id=f"u{user}", name=rng.choice(NAMES),
                # After the triggered campaign is made (a trigger before a campaign starts starts
                # no send), and within the 5 minutes ahead that ingestion accepts.
                occurred_time=to_timestamp(now + timedelta(seconds=60 + rng.randrange(180))),
                platform=rng.randrange(1, 4), app_version="5.2.1", session_id=f"s{user}-{b // 50}")
            e.properties.update({"screen": rng.choice(SCREENS), "value": round(rng.random() * 200, 2),
                                 "items": rng.randrange(1, 6)})
            events.append(e)
        batches.append(ingestion_pb.TrackEventsRequest(events=events).SerializeToString())
    return batches


async def floor(url: str, batches: list[bytes]) -> float:
    """Events per second: parse each batch and COPY its rows, PRODUCERS writers at once."""
    pool = await asyncpg.create_pool(url, min_size=PRODUCERS, max_size=PRODUCERS)
    try:
        await pool.execute(_FLOOR_TABLE)
        await pool.execute("TRUNCATE public.bench_floor")
        queue = iter(batches)

        async def writer() -> None:
            async with pool.acquire() as conn:
                for raw in queue:
                    request = ingestion_pb.TrackEventsRequest.FromString(raw)
                    received = datetime.now(timezone.utc)
                    records = [("app", e.event_id, e.user_id, e.name, to_datetime(e.occurred_time), received,
                                e.platform, e.app_version, e.session_id, e.SerializeToString())
                               for e in request.events]
                    await conn.copy_records_to_table("bench_floor", records=records, columns=_FLOOR_COLUMNS,
                                                     schema_name="public")

        began = time.perf_counter()
        await asyncio.gather(*(writer() for _ in range(PRODUCERS)))
        elapsed = time.perf_counter() - began
        await pool.execute("DROP TABLE public.bench_floor")
    finally:
        await pool.close()
    return len(batches) * BATCH / elapsed


async def applied(conn: asyncpg.Connection, app_id: str) -> tuple[int, int]:
    """Events of the app counted by segmentation (its per-name totals) and sends decision
    started for them (counted once, at the end)."""
    seg = await conn.fetchval("SELECT coalesce(sum(count), 0)::bigint FROM segmentation.event_totals"
                              " WHERE app_id = $1 AND position('#' in key) = 0", app_id)
    dec = await conn.fetchval("SELECT count(*) FROM decision.pending_sends WHERE app_id = $1", app_id)
    return seg, dec


async def forwarded(conn: asyncpg.Connection, app_id: str) -> bool:
    """Whether every consumer's cursor in ingestion's log is past the app's items: a cursor
    moves only once its consumer has answered, i.e. committed the items' effects."""
    return await conn.fetchval(LOG_DRAINED, app_id)


def purchases(batches: list[bytes]) -> int:
    return sum(e.name == "purchase" for raw in batches for e in ingestion_pb.TrackEventsRequest.FromString(raw).events)


async def follow_up_on_purchases(target: str, auth, delay_seconds: int = 86400) -> None:
    """A triggered campaign for every user, sent `delay_seconds` after each purchase."""
    campaign = demo.welcome_campaign("unused")
    campaign.audience.ClearField("include_segment_ids")
    campaign.status, campaign.delivery_mode = decision_pb.CAMPAIGN_STATUS_ACTIVE, decision_pb.DELIVERY_MODE_TRIGGERED
    campaign.triggers.add(event_name="purchase", delay=duration_pb2.Duration(seconds=delay_seconds))
    async with grpc.aio.insecure_channel(target) as channel:
        await decision_grpc.DecisionServiceStub(channel).CreateCampaign(
            decision_pb.CreateCampaignRequest(campaign=campaign), metadata=auth)


async def end_to_end(url: str, target: str, decision: str, batches: list[bytes],
                     services: dict[str, int]) -> tuple[dict[str, float], PhaseCost]:
    app = await create_app(url)
    await follow_up_on_purchases(decision, app.auth("admin"))
    total = len(batches) * BATCH
    expected = (total, purchases(batches))
    latencies: list[float] = []
    refusals = 0
    async with grpc.aio.insecure_channel(target) as channel:
        # Pre-serialized requests, so the producers cost as little CPU as the floor's readers.
        track = channel.unary_unary(TRACK, request_serializer=None,
                                    response_deserializer=ingestion_pb.TrackEventsResponse.FromString)
        queue = iter(batches)

        async def producer() -> None:
            nonlocal refusals
            for raw in queue:
                while True:
                    t0 = time.perf_counter()
                    try:
                        reply = await track(raw, metadata=app.auth("events"), timeout=30)
                    except grpc.aio.AioRpcError as exc:
                        if exc.code() != grpc.StatusCode.RESOURCE_EXHAUSTED:
                            raise
                        refusals += 1
                        await asyncio.sleep(0.5)
                        continue
                    latencies.append(time.perf_counter() - t0)
                    assert reply.accepted_count == BATCH and not reply.rejected, reply
                    break

        conn = await asyncpg.connect(url)
        try:
            meter = await PhaseMeter.start(conn, services)
            began = time.perf_counter()
            await asyncio.gather(*(producer() for _ in range(PRODUCERS)))
            acked = time.perf_counter()
            while not await forwarded(conn, app.id):
                if time.perf_counter() - acked > 300:
                    raise RuntimeError("the log was not taken within 300s")
                # Often enough to time a drain of tens of seconds, seldom enough not to slow it.
                await asyncio.sleep(0.1)
            done = time.perf_counter()
            # Before counting what was applied: the count scans tables the phase did not.
            cost = await meter.stop(conn)
            seen = await applied(conn, app.id)
            if seen != expected:
                raise RuntimeError(f"segmentation and decision recorded {seen} events, not {expected}")
        finally:
            await conn.close()
    latencies.sort()
    return {
        "acked_rate": total / (acked - began),
        "e2e_rate": total / (done - began),
        "drain_after_ack": done - acked,
        "p50_ms": latencies[len(latencies) // 2] * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000,
        "refusals": refusals,
    }, cost


async def main() -> None:
    batches = make_batches(EVENTS)
    total = len(batches) * BATCH
    async with database(preload=PRELOAD) as url:
        floor_rate = await floor(url, batches)
        async with running_cluster(url) as cluster:
            result, cost = await end_to_end(url, cluster.target("ingestion"), cluster.target("decision"), batches,
                                          {n: p.pid for n, p in cluster.processes.items()})
            memory = {n: peak_rss_mb(p.pid) for n, p in cluster.processes.items()}

    print(f"\ningestion: {total} events in batches of {BATCH} over {USERS // 1000}k users, "
          f"{PRODUCERS} concurrent producers, {os.cpu_count()} cores\n")
    print(f"{'scenario':<58}{'events/s':>10}{'x floor':>9}")
    print(f"{'floor: parse + copy_records_to_table':<58}{floor_rate:>10.0f}{1:>9.2f}")
    print(f"{'acknowledged (validated, deduplicated, durable in the log)':<58}"
          f"{result['acked_rate']:>10.0f}{result['acked_rate'] / floor_rate:>9.2f}")
    print(f"{'end to end (+ applied by segmentation, taken by decision)':<58}"
          f"{result['e2e_rate']:>10.0f}{result['e2e_rate'] / floor_rate:>9.2f}")
    print(f"\nTrackEvents latency per batch: p50 {result['p50_ms']:.1f} ms, p99 {result['p99_ms']:.1f} ms; "
          f"log taken {result['drain_after_ack']:.2f}s after the last ack; "
          f"RESOURCE_EXHAUSTED answers: {result['refusals']}")
    print("peak RSS per service (MB): " + ", ".join(f"{n} {m:.0f}" for n, m in memory.items()))
    print_cost("end to end", cost, total)
