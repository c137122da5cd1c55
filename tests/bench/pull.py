"""Bench scenario `pull`: the pull path against a floor measured in the same run.

- floor: an empty grpc.aio FetchMessages handler in its own process, same client; and an
  empty chain of two (a handler that only calls the empty one): the pull path's two hops;
- no message: FetchMessages through delivery -> decision -> segmentation for users no
  campaign targets (reads only);
- message handed out: the same for users in the demo campaign's audience, each pull
  committing the delivery in decision and the message in delivery. The demo campaign is shown
  once per user, so here it is made re-eligible after a second: each pass over the users
  hands it out again;
- through the edge: the floor, and both pulls, again through Envoy as `nudge run` starts it
  (nudgetools.edge), with the edge's cost per call: the latency it adds over the same call
  made directly, and the CPU Envoy itself spent per call.

For the direct "message handed out" run, what each process spends per pull (every service,
this client, all of PostgreSQL's processes) and the statements PostgreSQL executed most:
where a handed-out pull's cost lies.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass

import asyncpg
import grpc

from nudge.common.v1 import common_pb2
from nudge.decision.v1 import decision_service_pb2 as decision_pb
from nudge.decision.v1 import decision_service_pb2_grpc as decision_grpc
from nudge.delivery.v1 import delivery_service_pb2 as delivery_pb
from nudge.delivery.v1 import delivery_service_pb2_grpc as delivery_grpc
from nudge.ingestion.v1 import ingestion_service_pb2 as ingestion_pb
from nudge.ingestion.v1 import ingestion_service_pb2_grpc as ingestion_grpc
from nudgetools import demo
from nudgetools.cluster import EDGE
from tests.bench.harness import (LoadResult, closed_loop, cpu_seconds, database, edge_in_front, edge_pid,
                                 floor_server, peak_rss_mb, print_table, running_cluster)
from tests.bench.pgcost import STATEMENTS, PhaseCost, PhaseMeter, print_cost
from tests.helpers import create_app

USERS = 2000
FLOOR = "floor: empty grpc.aio handler"
FLOOR_EDGE = "floor, through the edge"
NO_MESSAGE_EDGE = "pull, no message, through the edge"
HANDED_OUT_EDGE = "pull, message handed out, through the edge"


@dataclass(frozen=True)
class EdgeCost:
    direct: str
    through: str
    # Envoy's CPU time per call it passed on.
    cpu_ms: float


async def pulls(target: str, metadata, users: list[str], cpu_of: int | None = None) -> tuple[LoadResult, float]:
    """The closed loop of pulls; with `cpu_of`, also that process's CPU ms per call made."""
    before = cpu_seconds(cpu_of) if cpu_of else 0.0
    result, made = await _pulls(target, metadata, users)
    cpu_ms = (cpu_seconds(cpu_of) - before) * 1000 / max(made, 1) if cpu_of else 0.0
    return result, cpu_ms


async def costed_pulls(target: str, metadata, users: list[str], url: str,
                       processes: dict[str, int]) -> tuple[LoadResult, PhaseCost, int]:
    """The closed loop of pulls, with what PostgreSQL and each of `processes` spent over it,
    and the number of calls made (warm-up included: the cost covers them too)."""
    conn = await asyncpg.connect(url)
    try:
        meter = await PhaseMeter.start(conn, processes)
        result, made = await _pulls(target, metadata, users)
        return result, await meter.stop(conn), made
    finally:
        await conn.close()


async def _pulls(target: str, metadata, users: list[str]) -> tuple[LoadResult, int]:
    async with grpc.aio.insecure_channel(target) as channel:
        stub = delivery_grpc.DeliveryServiceStub(channel)
        made = 0

        def call(i: int):
            nonlocal made
            made += 1
            return stub.FetchMessages(delivery_pb.FetchMessagesRequest(user_id=users[i % len(users)]),
                                      metadata=metadata, timeout=5)

        return await closed_loop(call), made


async def warm(target: str, metadata, users: list[str]) -> None:
    async with grpc.aio.insecure_channel(target) as channel:
        stub = delivery_grpc.DeliveryServiceStub(channel)
        for i in range(0, len(users), 50):
            await asyncio.gather(*(stub.FetchMessages(delivery_pb.FetchMessagesRequest(user_id=u), metadata=metadata,
                                                      timeout=10) for u in users[i:i + 50]))


async def repeat_every_second(target: str, metadata, campaign_id: str) -> None:
    async with grpc.aio.insecure_channel(target) as channel:
        stub = decision_grpc.DecisionServiceStub(channel)
        campaign = (await stub.GetCampaign(decision_pb.GetCampaignRequest(campaign_id=campaign_id),
                                           metadata=metadata, timeout=5)).campaign
        campaign.caps.reeligibility_interval.FromSeconds(1)
        await stub.UpdateCampaign(decision_pb.UpdateCampaignRequest(campaign=campaign,
                                                                    expected_version=campaign.version),
                                  metadata=metadata, timeout=5)


async def main() -> None:
    results: dict[str, LoadResult] = {}
    costs: list[EdgeCost] = []
    async with floor_server() as floor:
        results[FLOOR], _ = await pulls(floor, (), ["u"])
        async with edge_in_front(floor) as (edge, pid):
            results[FLOOR_EDGE], cpu = await pulls(edge, (), ["u"], cpu_of=pid)
            costs.append(EdgeCost(FLOOR, FLOOR_EDGE, cpu))
        async with floor_server(forward_to=floor) as chain:
            results["floor: empty chain of two services"], _ = await pulls(chain, (), ["u"])

    async with database(preload=(STATEMENTS,)) as url, running_cluster(url, edge=True) as cluster:
        app = await create_app(url)
        _, campaign_id = await demo.seed(cluster.target("segmentation"), cluster.target("decision"),
                                         app.keys["admin"])
        await repeat_every_second(cluster.target("decision"), app.auth("admin"), campaign_id)
        signed_up = [f"s{i}" for i in range(USERS)]
        async with grpc.aio.insecure_channel(cluster.target("ingestion")) as ch:
            stub = ingestion_grpc.IngestionServiceStub(ch)
            for i in range(0, USERS, 500):
                await stub.TrackEvents(ingestion_pb.TrackEventsRequest(events=[
                    common_pb2.Event(event_id=f"su-{u}", user_id=u, name="signup")
                    for u in signed_up[i:i + 500]]), metadata=app.auth("events"))
        await asyncio.sleep(2)  # let the outbox reach segmentation
        delivery, edge, pid = cluster.target("delivery"), cluster.target(EDGE), edge_pid(cluster)
        nobody = [f"n{i}" for i in range(USERS)]
        # One pull for every user first: decision's caches hold them all before either the
        # direct or the edge's run, so the one measured first pays no misses the other skips.
        await warm(delivery, app.auth("client"), nobody + signed_up)
        results["pull, no message"], _ = await pulls(delivery, app.auth("client"), nobody)
        processes = {n: p.pid for n, p in cluster.processes.items() if n != EDGE} | {"client": os.getpid()}
        results["pull, message handed out"], handed_cost, handed_calls = await costed_pulls(
            delivery, app.auth("client"), signed_up, url, processes)
        results[NO_MESSAGE_EDGE], cpu = await pulls(edge, app.auth("client"), nobody, cpu_of=pid)
        costs.append(EdgeCost("pull, no message", NO_MESSAGE_EDGE, cpu))
        results[HANDED_OUT_EDGE], cpu = await pulls(edge, app.auth("client"), signed_up, cpu_of=pid)
        costs.append(EdgeCost("pull, message handed out", HANDED_OUT_EDGE, cpu))
        memory = {n: peak_rss_mb(p.pid) for n, p in cluster.processes.items()}

    print_table("pull path", results, FLOOR)
    print("\nthe edge's cost per call (through Envoy minus direct; Envoy's own CPU per call):")
    print(f"{'scenario':<40}{'+p50 ms':>9}{'+p99 ms':>9}{'rate':>8}{'CPU ms':>8}")
    for c in costs:
        d, t = results[c.direct], results[c.through]
        print(f"{c.direct:<40}{t.p50_ms - d.p50_ms:>+9.2f}{t.p99_ms - d.p99_ms:>+9.2f}"
              f"{t.rate / d.rate:>8.2f}{c.cpu_ms:>8.3f}")
    print_cost("pull, message handed out", handed_cost, handed_calls, unit="pull")
    print("\npeak RSS per process (MB): " + ", ".join(f"{n} {m:.0f}" for n, m in memory.items()))
