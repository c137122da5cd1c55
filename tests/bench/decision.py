"""Bench scenario `decision`: the pull path with 100 active campaigns and 1,000,000 users.

Setup (not measured): the million users are COPYed straight into segmentation's tables (the
segmentation bench's loader); 20 segments and 100 on-request campaigns (a third with a
09:00-21:00 local send window, some restricted to screens, some with their own caps) are
created through the public API; app caps are 3 per calendar day and 10 per rolling week. A
working set of WORKING_SET users, drawn with a Zipf-like skew, pulls; 90% of them already
had their 3 messages today (their deliveries are COPYed into decision's table), so most pulls
end in no message, as in production.

Before measuring, each working-set user pulls once (not measured): these are the users active
now, whom the services have served before, so their contexts and cap state are cached.

Measured, with one client process and 32 concurrent callers:
- in-process: decision's plan over the 100 compiled campaigns for one user (pure, no I/O);
- floor: an empty grpc.aio handler; write floor: one committed INSERT per call; an empty
  chain of two (a handler that only calls an empty handler in another process): the two hops
  of the pull path with nothing in them;
- realistic mix: FetchMessages through delivery and decision for the working set;
- handing out: FetchMessages for users not yet capped, each pull delivering a message
  (two commits: decision's delivery record and delivery's message), against the write floor.
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
from nudge.decision.v1 import decision_service_pb2 as pb
from nudge.decision.v1 import decision_service_pb2_grpc as decision_grpc
from nudge.delivery.v1 import delivery_service_pb2 as delivery_pb
from nudge.delivery.v1 import delivery_service_pb2_grpc as delivery_grpc
from nudge.segmentation.v1 import segmentation_service_pb2 as seg_pb
from nudge.segmentation.v1 import segmentation_service_pb2_grpc as seg_grpc
from nudgetools import demo
from services.decision.catalog import AppCatalog
from services.decision.model import Delivered, UserState
from services.decision.plan import plan_pull
from tests.bench import segmentation as population
from tests.bench.harness import (LoadResult, closed_loop, database, floor_server, peak_rss_mb, percentiles,
                                 print_table, running_cluster)
from tests.helpers import create_app

WORKING_SET = int(os.environ.get("BENCH_WORKING_SET", "20000"))
CAMPAIGNS = 100
COUNTRIES = population.COUNTRIES
PLANS = ("free", "pro", "team", "enterprise")
FLOOR, WRITE_FLOOR = "floor: empty grpc.aio handler", "floor: one committed write per call"
CHAIN = "floor: empty chain of two services"


def segments() -> list[seg_pb.CreateSegmentRequest]:
    A = seg_pb.AttributeOperator
    out = []
    for country in COUNTRIES[:12]:
        out.append(seg_pb.CreateSegmentRequest(name=f"in {country}", rule=seg_pb.Rule(attribute=seg_pb.AttributeCondition(
            name="country", operator=A.ATTRIBUTE_OPERATOR_EQUALS, value=common_pb2.AttributeValue(string_value=country)))))
    for plan in PLANS:
        out.append(seg_pb.CreateSegmentRequest(name=f"on {plan}", rule=seg_pb.Rule(attribute=seg_pb.AttributeCondition(
            name="plan", operator=A.ATTRIBUTE_OPERATOR_EQUALS, value=common_pb2.AttributeValue(string_value=plan)))))
    for n in (1, 3, 10, 20):
        out.append(seg_pb.CreateSegmentRequest(name=f"opened {n}+ times in 30 days", rule=seg_pb.Rule(
            event=seg_pb.EventCondition(name="app_open", operator=seg_pb.EVENT_OPERATOR_AT_LEAST, count=n,
                                        window=duration_pb2.Duration(seconds=30 * 86400)))))
    return out


def campaigns(segment_ids: list[str], rnd: random.Random) -> list[pb.Campaign]:
    out = []
    for i in range(CAMPAIGNS):
        c = demo.welcome_campaign(rnd.choice(segment_ids))
        c.name, c.priority = f"campaign {i}", rnd.randint(0, 20)
        if rnd.random() < 0.3:
            c.audience.include_segment_ids.append(rnd.choice(segment_ids))
        if rnd.random() < 0.2:
            c.audience.exclude_segment_ids.append(rnd.choice(segment_ids))
        if i % 3 == 0:
            c.send_window.CopyFrom(pb.SendWindow(start_minute=9 * 60, end_minute=21 * 60))
        if i % 5 == 0:
            c.audience.screens.append(rnd.choice(["home", "checkout", "profile"]))
        if i % 4 == 0:
            c.caps.CopyFrom(pb.CampaignCaps(lifetime_max=2, reeligibility_interval=duration_pb2.Duration(seconds=86400)))
        out.append(c)
    return out


SETTINGS = pb.AppSettings(default_time_zone="UTC", cap_rules=[
    pb.CapRule(id="3-per-day", max_messages=3, calendar_days=1),
    pb.CapRule(id="10-per-week", max_messages=10, rolling=duration_pb2.Duration(seconds=7 * 86400))])


def skewed(rnd: random.Random, population_size: int, draws: int) -> list[int]:
    """Indexes into the working set, Zipf-like: a few users pull very often, most rarely."""
    weights = [1 / (rank + 1) ** 0.8 for rank in range(population_size)]
    return rnd.choices(range(population_size), weights=weights, k=draws)


def in_process(campaign_list: list[pb.Campaign], rnd: random.Random) -> tuple[float, float]:
    for i, c in enumerate(campaign_list):
        c.id, c.version = c.id or f"cmp_{i:03d}", c.version or 1
    catalog = AppCatalog.of(campaign_list, SETTINGS)
    segment_pool = sorted({s for c in campaign_list for s in c.audience.include_segment_ids})
    now = datetime.now(timezone.utc)
    times = []
    for n in range(5000):
        user = common_pb2.UserContext(user_id=f"u{n}", segment_ids=rnd.sample(segment_pool, 4),
                                      time_zone=rnd.choice(["Europe/Paris", "America/New_York", ""]))
        history = [Delivered(rnd.choice(campaign_list).id, ("onboarding",), now - timedelta(hours=rnd.randint(1, 150)))
                   for _ in range(rnd.randint(0, 6))]
        t = time.perf_counter()
        plan_pull(catalog, user, pb.RequestContext(screen="home"), UserState(history, {}), now, 1, [])
        times.append(time.perf_counter() - t)
    p50, p99 = percentiles(times, 50, 99)
    return p50 * 1000, p99 * 1000


async def pulls(target: str, metadata, users: list[str], screens=("home", "checkout", "profile")) -> tuple[LoadResult, int]:
    handed = 0
    async with grpc.aio.insecure_channel(target) as channel:
        stub = delivery_grpc.DeliveryServiceStub(channel)

        async def one(i: int) -> None:
            nonlocal handed
            reply = await stub.FetchMessages(delivery_pb.FetchMessagesRequest(
                user_id=users[i % len(users)], screen=screens[i % len(screens)],
                platform=common_pb2.PLATFORM_IOS), metadata=metadata, timeout=5)
            handed += len(reply.messages)

        result = await closed_loop(one)
    return result, handed


async def warm(target: str, metadata, users: list[str]) -> None:
    async with grpc.aio.insecure_channel(target) as channel:
        stub = delivery_grpc.DeliveryServiceStub(channel)
        queue = iter(users)

        async def worker() -> None:
            for user in queue:
                await stub.FetchMessages(delivery_pb.FetchMessagesRequest(
                    user_id=user, platform=common_pb2.PLATFORM_IOS), metadata=metadata, timeout=10)

        await asyncio.gather(*(worker() for _ in range(32)))


async def main() -> None:
    rnd = random.Random(7)
    results: dict[str, LoadResult] = {}
    p50, p99 = in_process(campaigns([f"seg_{i}" for i in range(20)], rnd), rnd)
    print(f"\nin-process decision over {CAMPAIGNS} campaigns: p50 {p50:.3f} ms, p99 {p99:.3f} ms")

    async with database() as url:
        async with floor_server() as floor:
            results[FLOOR], _ = await pulls(floor, (), ["u"])
            # The pull path's two hops with nothing in them: what the pull path cannot beat.
            async with floor_server(forward_to=floor) as chain:
                results[CHAIN], _ = await pulls(chain, (), ["u"])
        async with floor_server(url) as floor:
            results[WRITE_FLOOR], _ = await pulls(floor, (), [f"w{i}" for i in range(100_000)])
        async with running_cluster(url, {"NUDGE_DECISION_CONTEXT_TTL_SECONDS": "600"}) as cluster:
            app = await create_app(url)
            now = datetime.now(timezone.utc)
            started = time.perf_counter()
            await population.load_users(url, app.id, now, "purchase")
            print(f"\nloaded {population.USERS} users into segmentation in {time.perf_counter() - started:.0f}s")
            async with grpc.aio.insecure_channel(cluster.target("segmentation")) as seg_ch, \
                    grpc.aio.insecure_channel(cluster.target("decision")) as dec_ch:
                seg_stub, dec_stub = seg_grpc.SegmentationServiceStub(seg_ch), decision_grpc.DecisionServiceStub(dec_ch)
                ids = [(await seg_stub.CreateSegment(s, metadata=app.auth("admin"))).segment.id for s in segments()]
                await dec_stub.UpdateAppSettings(pb.UpdateAppSettingsRequest(settings=SETTINGS),
                                                 metadata=app.auth("admin"))
                for c in campaigns(ids, rnd):
                    c.status = pb.CAMPAIGN_STATUS_ACTIVE
                    await dec_stub.CreateCampaign(pb.CreateCampaignRequest(campaign=c), metadata=app.auth("admin"))
            members = rnd.sample(range(population.USERS), WORKING_SET * 2)
            working = [population.user_id(i) for i in members[:WORKING_SET]]
            fresh = [population.user_id(i) for i in members[WORKING_SET:]]
            capped = working[: int(WORKING_SET * 0.9)]
            conn = await asyncpg.connect(url)
            try:
                await conn.copy_records_to_table("deliveries", schema_name="decision", records=[
                    (app.id, u, f"msg_seed_{u}_{k}", "cmp_seed", "A", now - timedelta(minutes=k + 1), [], True)
                    for u in capped for k in range(3)],
                    columns=["app_id", "user_id", "message_id", "campaign_id", "variant_id", "delivered_at", "tags",
                             "counts_toward_app_caps"])
            finally:
                await conn.close()
            order = skewed(rnd, WORKING_SET, 200_000)
            draws = [working[i] for i in order]
            client = app.auth("client")
            delivery = cluster.target("delivery")
            # The working set is the users active now: the services have served each of them
            # before (their contexts and cap state are cached, as on a server that has been
            # running), so one pull per user first, not measured.
            started = time.perf_counter()
            await warm(delivery, client, working)
            print(f"warmed the working set of {WORKING_SET} users in {time.perf_counter() - started:.0f}s")
            results["pull, realistic mix (mostly capped)"], handed = await pulls(delivery, client, draws)
            print(f"\nrealistic mix: {handed} messages handed out")
            results["pull, each handing out a message"], handed = await pulls(delivery, client, fresh)
            print(f"handing out: {handed} messages handed out")
            memory = {n: peak_rss_mb(p.pid) for n, p in cluster.processes.items()}
    print_table("decision pull path", results, FLOOR)
    write = results[WRITE_FLOOR].rate
    print(f"\nhanding out vs the write floor: {results['pull, each handing out a message'].rate / write:.2f}")
    print("peak RSS per service (MB): " + ", ".join(f"{n} {m:.0f}" for n, m in memory.items()))
