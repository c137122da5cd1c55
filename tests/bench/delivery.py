"""Bench scenario `delivery`: trigger-to-screen latency and the cost of idle streams.

- latency: STREAMS users hold a Subscribe stream; a zero-delay triggered campaign fires on
  `level_up`. For each probe, the time from TrackEvents' acknowledgement of a user's
  `level_up` to the message arriving on that user's stream, measured while a background
  producer sends other events through the same ingestion, at each of BACKGROUND_RATES events
  per second in turn (comma-separated; the last is the headline figure).
- idle streams: IDLE_STREAMS more streams opened and left idle; delivery's resident memory
  before and after, per stream.
"""

from __future__ import annotations

import asyncio
import os
import time

import grpc

from nudge.common.v1 import common_pb2
from nudge.decision.v1 import decision_service_pb2 as decision_pb
from nudge.decision.v1 import decision_service_pb2_grpc as decision_grpc
from nudge.delivery.v1 import delivery_service_pb2 as pb
from nudge.delivery.v1 import delivery_service_pb2_grpc as delivery_grpc
from nudge.ingestion.v1 import ingestion_service_pb2 as ingestion_pb
from nudge.ingestion.v1 import ingestion_service_pb2_grpc as ingestion_grpc
from nudgetools import demo
from tests.bench.harness import database, percentiles, running_cluster
from tests.helpers import create_app

STREAMS = int(os.environ.get("BENCH_STREAMS", "200"))
PROBES = int(os.environ.get("BENCH_PROBES", "300"))
BACKGROUND_RATES = [int(r) for r in os.environ.get("BENCH_BACKGROUND_EVENTS", "500,1000,2000").split(",")]
IDLE_STREAMS = int(os.environ.get("BENCH_IDLE_STREAMS", "10000"))


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def level_up_campaign() -> decision_pb.Campaign:
    c = demo.welcome_campaign("unused")
    c.name = "Level up"
    c.audience.ClearField("include_segment_ids")
    c.delivery_mode = decision_pb.DELIVERY_MODE_TRIGGERED
    c.triggers.add(event_name="level_up")
    return c


async def background_load(stub, auth, rate: int, stop: asyncio.Event) -> int:
    """`rate` events per second in batches of 100, until stopped."""
    sent, batch, n = 0, 100, 0
    interval = batch / rate
    loop = asyncio.get_running_loop()
    next_at = loop.time()
    while not stop.is_set():
        events = [common_pb2.Event(event_id=f"bg-{rate}-{n}-{i}", user_id=f"bg-user-{(n * batch + i) % 50_000}",
                                   name="page_view") for i in range(batch)]
        n += 1
        await stub.TrackEvents(ingestion_pb.TrackEventsRequest(events=events), metadata=auth, timeout=10)
        sent += batch
        next_at += interval
        await asyncio.sleep(max(0.0, next_at - loop.time()))
    return sent


async def main() -> None:
    async with database() as url, running_cluster(url, {"NUDGE_DELIVERY_KEEPALIVE_SECONDS": "15"}) as cluster:
        app = await create_app(url)
        async with grpc.aio.insecure_channel(cluster.target("decision")) as ch:
            await decision_grpc.DecisionServiceStub(ch).CreateCampaign(
                decision_pb.CreateCampaignRequest(campaign=level_up_campaign()), metadata=app.auth("admin"))
        delivery_channel = grpc.aio.insecure_channel(cluster.target("delivery"))
        ingestion_channel = grpc.aio.insecure_channel(cluster.target("ingestion"))
        delivery = delivery_grpc.DeliveryServiceStub(delivery_channel)
        ingestion = ingestion_grpc.IngestionServiceStub(ingestion_channel)
        arrivals: dict[str, asyncio.Future[float]] = {}

        async def hold(user: str) -> None:
            call = delivery.Subscribe(pb.SubscribeRequest(user_id=user), metadata=app.auth("client"))
            try:
                async for item in call:
                    if item.HasField("message"):
                        waiter = arrivals.get(user)
                        if waiter is not None and not waiter.done():
                            waiter.set_result(time.perf_counter())
            except grpc.aio.AioRpcError:
                pass

        holders = [asyncio.ensure_future(hold(f"player-{i}")) for i in range(STREAMS)]
        await asyncio.sleep(2)
        print(f"\ntrigger to screen: {PROBES} probes with {STREAMS} open streams, under background events")
        for rate in BACKGROUND_RATES:
            stop = asyncio.Event()
            producer = asyncio.ensure_future(background_load(ingestion, app.auth("events"), rate, stop))
            await asyncio.sleep(1)
            latencies: list[float] = []
            lost = 0
            for k in range(PROBES):
                user = f"player-{k % STREAMS}"
                arrivals[user] = asyncio.get_running_loop().create_future()
                await ingestion.TrackEvents(ingestion_pb.TrackEventsRequest(events=[
                    common_pb2.Event(event_id=f"probe-{rate}-{k}", user_id=user, name="level_up")]),
                    metadata=app.auth("events"))
                acked = time.perf_counter()
                try:
                    arrived = await asyncio.wait_for(arrivals[user], 5)
                    latencies.append(arrived - acked)
                except asyncio.TimeoutError:
                    lost += 1
                await asyncio.sleep(0.02)
            stop.set()
            background = await producer
            p50, p99 = percentiles(latencies, 50, 99)
            print(f"  {rate:>5} background events/s ({background} sent): p50 {p50 * 1000:.1f} ms   "
                  f"p99 {p99 * 1000:.1f} ms   max {max(latencies) * 1000:.1f} ms   lost {lost}")

        pid = cluster.processes["delivery"].pid
        before = rss_mb(pid)
        idle = [asyncio.ensure_future(hold(f"idle-{i}")) for i in range(IDLE_STREAMS)]
        await asyncio.sleep(max(5, IDLE_STREAMS / 1000))
        after = rss_mb(pid)
        print(f"\nidle streams: {IDLE_STREAMS} more held; delivery RSS {before:.0f} MB -> {after:.0f} MB "
              f"({(after - before) * 1024 / IDLE_STREAMS:.1f} KB per stream)")
        for task in holders + idle:
            task.cancel()
        await asyncio.gather(*holders, *idle, return_exceptions=True)
        await delivery_channel.close()
        await ingestion_channel.close()
