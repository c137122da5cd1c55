"""Bench scenario `soak`, run only when named (`make bench BENCH=soak`): events and pulls
together at a steady, moderate rate for BENCH_SOAK_SECONDS (default 600), to show that nothing
accumulates: resident memory per service, and the size, live rows and dead rows of every
queue-like table.

- events: TrackEvents batches of 100 over 5,000 users at BENCH_SOAK_EVENTS_PER_SECOND
  (default 1,000: about a tenth of what the pipeline applies end to end on 2 cores); one in
  twenty are purchases, which a triggered campaign follows up 5 s later, so decision's pending
  sends are released while the soak runs, and one in ten signups, which put users in the demo
  segment;
- pulls: FetchMessages through delivery -> decision -> segmentation (the `pull` scenario's
  path) for the same users at BENCH_SOAK_PULLS_PER_SECOND (default 100); the demo campaign is
  re-eligible after a second, so pulls keep handing it out and committing deliveries.

The load is an open loop: a call every 1/rate s, at most a few in flight; a tick that finds
them all busy is dropped and counted rather than queued, so a slow phase does not turn into a
burst. Every BENCH_SOAK_SAMPLE_SECONDS (default 15) it samples RSS per service and the tables;
at the end it prints, per series, first/last/max after the warm-up (a minute, or a quarter of
a shorter soak), the slope per minute and a verdict (`tests.bench.trend`). Everything runs on
loopback and the whole scenario is bounded by its duration plus a fixed margin.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import asyncpg
import grpc

from nudge.common.v1 import common_pb2
from nudge.delivery.v1 import delivery_service_pb2 as delivery_pb
from nudge.delivery.v1 import delivery_service_pb2_grpc as delivery_grpc
from nudge.ingestion.v1 import ingestion_service_pb2 as ingestion_pb
from nudge.ingestion.v1 import ingestion_service_pb2_grpc as ingestion_grpc
from nudgetools import demo
from nudgetools.cluster import Cluster
from tests.bench.harness import database, peak_rss_mb, percentiles, rss_mb, running_cluster
from tests.bench.ingestion import follow_up_on_purchases
from tests.bench.pull import repeat_every_second
from tests.bench.trend import Series, trend
from tests.helpers import App, create_app

SECONDS = float(os.environ.get("BENCH_SOAK_SECONDS", "600"))
SAMPLE_EVERY = float(os.environ.get("BENCH_SOAK_SAMPLE_SECONDS", "15"))
EVENTS_PER_SECOND = float(os.environ.get("BENCH_SOAK_EVENTS_PER_SECOND", "1000"))
PULLS_PER_SECOND = float(os.environ.get("BENCH_SOAK_PULLS_PER_SECOND", "100"))
WARMUP = min(60.0, SECONDS / 4)
# Time for setting up and tearing down around the load, after which the scenario gives up.
MARGIN = 120.0
USERS = 5000
BATCH = 100
# Calls in flight at most, per kind: enough for the asked rate at the latencies of a loaded
# 2-core machine (a pull takes 20-60 ms there), few enough to stay an open loop.
IN_FLIGHT = {"events": 8, "pulls": 32}
CALL_TIMEOUT = 5.0
# Event names and their shares: purchases (each followed up by a triggered send) are one in
# twenty, so the follow-ups stay moderate too (about 50/s at 1,000 events/s).
NAMES = {"screen_view": 40, "add_to_cart": 15, "search": 15, "session_start": 15, "signup": 10, "purchase": 5}

# Absolute bounds under which a change is not growth (see trend.verdict).
RSS_BOUND_MB = 10.0
SIZE_BOUND_MB = 1.0
ROWS_BOUND = 2000.0

SCHEMAS = ["ingestion", "segmentation", "decision", "delivery"]
# Queue-like tables, found by name so that tables the rewrite adds or drops are followed
# without editing this file. `log` counts only as a whole word of the name (log_cursors,
# log_positions), or every catalog would count. Named outright: ingestion.event_keys, and
# ingestion.events, the event store that consumers now read as the log (kept for the event
# retention, days, so it grows over any soak by design).
QUEUE_LIKE = r"outbox|dead_letters|pending|parked|cursor|applied|dedupe|(^|_)logs?(_|$)"
ALSO = ["ingestion.event_keys", "ingestion.events"]

# Partitioned tables count with all their partitions (pg_partition_tree, which lists nothing
# for a plain table, hence the union with the table itself); partitions are not listed apart.
_TABLES = """
SELECT t.table_schema || '.' || t.table_name AS name,
       sum(pg_total_relation_size(p.relid))::bigint AS bytes,
       coalesce(sum(s.n_live_tup), 0)::bigint AS live,
       coalesce(sum(s.n_dead_tup), 0)::bigint AS dead
FROM information_schema.tables t
JOIN pg_class c ON c.oid = format('%I.%I', t.table_schema, t.table_name)::regclass
CROSS JOIN LATERAL (SELECT c.oid AS relid UNION SELECT relid FROM pg_partition_tree(c.oid)) p
LEFT JOIN pg_stat_user_tables s ON s.relid = p.relid
WHERE t.table_schema = ANY($1::text[]) AND t.table_type = 'BASE TABLE' AND NOT c.relispartition
  AND (t.table_name ~ $2 OR t.table_schema || '.' || t.table_name = ANY($3::text[]))
GROUP BY 1
ORDER BY 1
"""


# --- load ------------------------------------------------------------------------------------

@dataclass
class Paced:
    """What an open-loop caller did."""
    done: int = 0
    dropped: int = 0                 # ticks that found every call in flight
    failed: Counter = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)   # seconds, of the calls that succeeded


async def paced(call: Callable[[int], Awaitable[object]], rate: float, stop_at: float, in_flight: int) -> Paced:
    """Calls `call(i)` every 1/rate s until `stop_at`, at most `in_flight` at once."""
    stats, slots, tasks = Paced(), asyncio.Semaphore(in_flight), set()
    interval, next_at, i = 1 / rate, time.perf_counter(), 0

    async def one(n: int) -> None:
        t0 = time.perf_counter()
        try:
            await call(n)
            stats.done += 1
            stats.latencies.append(time.perf_counter() - t0)
        except grpc.aio.AioRpcError as exc:
            stats.failed[exc.code().name] += 1
        except Exception as exc:  # noqa: BLE001 - counted, the soak goes on
            stats.failed[type(exc).__name__] += 1
        finally:
            slots.release()

    while (now := time.perf_counter()) < stop_at:
        if now < next_at:
            await asyncio.sleep(next_at - now)
            continue
        if now - next_at > 1:        # the loop itself stalled: skip the missed ticks, no burst
            stats.dropped += int((now - next_at) / interval)
            next_at = now
        next_at += interval
        if slots.locked():
            stats.dropped += 1
            continue
        await slots.acquire()
        task = asyncio.create_task(one(i))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        i += 1
    await asyncio.gather(*tasks)
    return stats


def event_batch(rng: random.Random, n: int) -> ingestion_pb.TrackEventsRequest:
    """Batch `n` of the soak: BATCH events with ids never used before, users from USERS."""
    events, names, weights = [], list(NAMES), list(NAMES.values())
    for i in range(BATCH):
        user = rng.randrange(USERS)
        e = common_pb2.Event(event_id=f"soak-{n}-{i}", user_id=f"u{user}", name=rng.choices(names, weights)[0],
                             platform=rng.randrange(1, 4), app_version="5.2.1", session_id=f"s{user}")
        e.properties.update({"screen": "home", "value": round(rng.random() * 200, 2)})
        events.append(e)
    return ingestion_pb.TrackEventsRequest(events=events)


async def load(cluster: Cluster, app: App, stop_at: float) -> tuple[Paced, Paced, Counter]:
    """Events and pulls side by side until `stop_at`; also counts pulls by messages handed out."""
    rng = random.Random(11)
    handed = Counter()
    async with grpc.aio.insecure_channel(cluster.target("ingestion")) as ich, \
            grpc.aio.insecure_channel(cluster.target("delivery")) as dch:
        ingestion, delivery = ingestion_grpc.IngestionServiceStub(ich), delivery_grpc.DeliveryServiceStub(dch)

        async def track(n: int) -> None:
            await ingestion.TrackEvents(event_batch(rng, n), metadata=app.auth("events"), timeout=CALL_TIMEOUT)

        async def pull(_: int) -> None:
            reply = await delivery.FetchMessages(delivery_pb.FetchMessagesRequest(user_id=f"u{rng.randrange(USERS)}"),
                                                 metadata=app.auth("client"), timeout=CALL_TIMEOUT)
            handed[len(reply.messages)] += 1

        events, pulls = await asyncio.gather(paced(track, EVENTS_PER_SECOND / BATCH, stop_at, IN_FLIGHT["events"]),
                                             paced(pull, PULLS_PER_SECOND, stop_at, IN_FLIGHT["pulls"]))
    return events, pulls, handed


# --- sampling --------------------------------------------------------------------------------

class Samples:
    """Every series of the soak by name, in the order first seen."""

    def __init__(self) -> None:
        self.series: dict[str, Series] = {}

    def add(self, name: str, bound: float, t: float, value: float) -> None:
        self.series.setdefault(name, Series(name, bound)).add(t, value)


async def queue_tables(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    return await conn.fetch(_TABLES, SCHEMAS, QUEUE_LIKE, ALSO)


async def sample(samples: Samples, conn: asyncpg.Connection, cluster: Cluster, t: float) -> None:
    for name, process in cluster.processes.items():
        samples.add(f"RSS {name} (MB)", RSS_BOUND_MB, t, rss_mb(process.pid))
    for row in await queue_tables(conn):
        samples.add(f"{row['name']} size (MB)", SIZE_BOUND_MB, t, row["bytes"] / 2**20)
        samples.add(f"{row['name']} live rows", ROWS_BOUND, t, row["live"])
        samples.add(f"{row['name']} dead rows", ROWS_BOUND, t, row["dead"])


async def sample_until(samples: Samples, url: str, cluster: Cluster, began: float, stop_at: float) -> None:
    """A sample at the start, every SAMPLE_EVERY s on a fixed schedule, and one at the end."""
    conn = await asyncpg.connect(url)
    try:
        k = 0
        while True:
            now = time.perf_counter()
            await sample(samples, conn, cluster, now - began)
            if now >= stop_at:
                return
            k += 1
            await asyncio.sleep(max(0.0, min(began + k * SAMPLE_EVERY, stop_at) - time.perf_counter()))
    finally:
        await conn.close()


# --- report ----------------------------------------------------------------------------------

def print_trends(samples: Samples) -> None:
    print(f"\n{'series':<58}{'first':>10}{'last':>10}{'max':>10}{'slope/min':>11}  verdict")
    for s in samples.series.values():
        t = trend(s, WARMUP)
        if t is None:
            print(f"{s.name:<58}{'(fewer than two samples after the warm-up)':>41}")
            continue
        print(f"{s.name:<58}{t.first:>10.1f}{t.last:>10.1f}{t.peak:>10.1f}{t.slope_per_minute:>11.1f}  {t.verdict}")


def print_load(name: str, stats: Paced, rate: float, per_call: int) -> None:
    failed = ", ".join(f"{code} {n}" for code, n in stats.failed.most_common()) or "none"
    p50, p99 = percentiles(stats.latencies, 50, 99)
    print(f"{name}: {stats.done / SECONDS * per_call:.0f}/s of {rate:.0f}/s asked, per call p50 {p50 * 1000:.0f} ms, "
          f"p99 {p99 * 1000:.0f} ms ({stats.dropped} ticks dropped with every call in flight); failed calls: {failed}")


# --- scenario --------------------------------------------------------------------------------

async def setup(url: str, cluster: Cluster) -> App:
    """An app with the demo's segment and campaign (re-eligible after a second) and a campaign
    following up purchases after 5 s."""
    app = await create_app(url)
    _, campaign_id = await demo.seed(cluster.target("segmentation"), cluster.target("decision"), app.keys["admin"])
    await repeat_every_second(cluster.target("decision"), app.auth("admin"), campaign_id)
    await follow_up_on_purchases(cluster.target("decision"), app.auth("admin"), delay_seconds=5)
    return app


async def soak(url: str, cluster: Cluster, samples: Samples) -> tuple[Paced, Paced, Counter]:
    app = await setup(url, cluster)
    began = time.perf_counter()
    stop_at = began + SECONDS
    (events, pulls, handed), _ = await asyncio.gather(load(cluster, app, stop_at),
                                                      sample_until(samples, url, cluster, began, stop_at))
    return events, pulls, handed


async def main() -> None:
    samples = Samples()
    async with database() as url, running_cluster(url) as cluster:
        # Loopback only: the cluster's services listen on 127.0.0.1 (nudgetools.cluster).
        assert all(cluster.target(n).startswith("127.0.0.1:") for n in cluster.processes)
        async with asyncio.timeout(SECONDS + MARGIN):
            events, pulls, handed = await soak(url, cluster, samples)
        peak = {n: peak_rss_mb(p.pid) for n, p in cluster.processes.items()}

    print(f"\nsoak: {SECONDS:g}s, a sample every {SAMPLE_EVERY:g}s, warm-up {WARMUP:g}s, {USERS} users, "
          f"{os.cpu_count()} cores")
    print_load("events", events, EVENTS_PER_SECOND, BATCH)
    print_load("pulls", pulls, PULLS_PER_SECOND, 1)
    print("pulls by messages handed out: " + ", ".join(f"{k}: {n}" for k, n in sorted(handed.items())))
    print_trends(samples)
    print("\npeak RSS per service (MB): " + ", ".join(f"{n} {m:.0f}" for n, m in peak.items()))
