"""Bench scenario `pull`: the pull path against a floor measured in the same run.

- floor: an empty grpc.aio FetchMessages handler in its own process, same client; and an
  empty chain of two (a handler that only calls the empty one): the pull path's two hops;
- no message: FetchMessages through delivery -> decision -> segmentation for users no
  campaign targets (reads only);
- message handed out: the same for users in the demo campaign's audience, each pull
  committing the delivery in decision and the message in delivery. The demo campaign is shown
  once per user, so here it is made re-eligible after a second: each pass over the users
  hands it out again.
"""

from __future__ import annotations

import asyncio

import grpc

from nudge.common.v1 import common_pb2
from nudge.decision.v1 import decision_service_pb2 as decision_pb
from nudge.decision.v1 import decision_service_pb2_grpc as decision_grpc
from nudge.delivery.v1 import delivery_service_pb2 as delivery_pb
from nudge.delivery.v1 import delivery_service_pb2_grpc as delivery_grpc
from nudge.ingestion.v1 import ingestion_service_pb2 as ingestion_pb
from nudge.ingestion.v1 import ingestion_service_pb2_grpc as ingestion_grpc
from nudgetools import demo
from tests.bench.harness import (LoadResult, closed_loop, database, floor_server, peak_rss_mb, print_table,
                                 running_cluster)
from tests.helpers import create_app

USERS = 2000
FLOOR = "floor: empty grpc.aio handler"


async def pulls(target: str, metadata, users: list[str]) -> LoadResult:
    async with grpc.aio.insecure_channel(target) as channel:
        stub = delivery_grpc.DeliveryServiceStub(channel)
        return await closed_loop(lambda i: stub.FetchMessages(
            delivery_pb.FetchMessagesRequest(user_id=users[i % len(users)]), metadata=metadata, timeout=5))


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
    async with floor_server() as floor:
        results[FLOOR] = await pulls(floor, (), ["u"])
        async with floor_server(forward_to=floor) as chain:
            results["floor: empty chain of two services"] = await pulls(chain, (), ["u"])

    async with database() as url, running_cluster(url) as cluster:
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
        delivery = cluster.target("delivery")
        results["pull, no message"] = await pulls(delivery, app.auth("client"), [f"n{i}" for i in range(USERS)])
        results["pull, message handed out"] = await pulls(delivery, app.auth("client"), signed_up)
        memory = {n: peak_rss_mb(p.pid) for n, p in cluster.processes.items()}

    print_table("pull path", results, FLOOR)
    print("\npeak RSS per service (MB): " + ", ".join(f"{n} {m:.0f}" for n, m in memory.items()))
