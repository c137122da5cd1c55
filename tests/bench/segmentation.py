"""Bench scenario `segmentation`: one app with 1,000,000 users and 50 segments.

Setup (not measured as service work, but timed and printed):
- the segmentation service (and the others) run as processes on an embedded PostgreSQL;
- 49 segments are created through the public API while the app is empty;
- the million users are written straight into segmentation's tables with COPY
  (copy_records_to_table: profiles, per-day and all-time event counters, including one
  property-filtered counter), not through ingestion, which would take hours; then VACUUM
  ANALYZE, as autovacuum would;
- their stored memberships are computed by `Segments.rebuild` (the SQL used when a segment
  is saved), and the 50th segment is created through the API, which recomputes it for the
  million users (timed).

Measured:
- user-context lookup in-process (the service's own code, `Memberships.user_context`, one
  caller): cache miss on a stored membership (one primary-key read), cache hit, and a lookup
  that must evaluate all 50 segments because time may have changed them;
- the internal GetUserContext RPC against the service process, 32 concurrent callers, next to
  a floor (an empty grpc.aio GetUserContext handler in its own process, same client). The
  floor, the misses and the hits are measured in turn, RPC_ROUNDS times, and each ratio is
  taken against the floor measured just before it: the machine is shared and drifts by 10-20%
  within minutes. The median round's ratio is the figure;
- EstimateAudience for a 5-condition rule, and a ListSegmentMembers page, through the API;
- peak RSS of the segmentation process, and what its context cache costs per entry.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import grpc
from google.protobuf import duration_pb2, struct_pb2

from nudge.common.v1 import common_pb2
from nudge.segmentation.v1 import segmentation_internal_service_pb2 as internal_pb
from nudge.segmentation.v1 import segmentation_internal_service_pb2_grpc as internal_grpc
from nudge.segmentation.v1 import segmentation_service_pb2 as pb
from nudge.segmentation.v1 import segmentation_service_pb2_grpc as pb_grpc
from nudgelib import db, runtime
from nudgelib.clock import FixedClock, SystemClock
from nudgelib.versions import parse_version
from services.segmentation.caches import Catalogs, ContextCache
from services.segmentation.membership import Memberships
from services.segmentation.rule_tree import counter_key
from services.segmentation.segments import Segments
from services.segmentation.settings import SegmentationSettings
from nudgetools import embedded
from nudgetools.cluster import REPO
from nudgetools.database import migrate_all
from tests.bench.harness import (CONCURRENCY, LoadResult, closed_loop, database, floor_server, peak_rss_mb,
                                 percentiles, running_cluster)
from tests.helpers import create_app

USERS = int(os.environ.get("BENCH_SEGMENTATION_USERS", "1000000"))
# The embedded server's default shared_buffers (128MB) is sized for a demo on a laptop; the
# million users' tables are ~3 GB. Any PostgreSQL run for that many users is given memory, so
# the bench does too ("" keeps the default; DATABASE_URL uses that server as it is).
SHARED_BUFFERS = os.environ.get("BENCH_PG_SHARED_BUFFERS", "1GB")
FLOOR = "floor: empty grpc.aio handler"
RPC_ROUNDS = int(os.environ.get("BENCH_SEGMENTATION_RPC_ROUNDS", "3"))
RPC_SECONDS = float(os.environ.get("BENCH_SEGMENTATION_RPC_SECONDS", "5"))
A = pb.AttributeOperator
E = pb.EventOperator
PLANS = ["free"] * 70 + ["pro"] * 20 + ["team"] * 8 + ["enterprise"] * 2
COUNTRIES = ["US", "GB", "FR", "DE", "ES", "IT", "BR", "IN", "JP", "CA", "AU", "NL", "SE", "MX", "PL"]
INTERESTS = ["sports", "music", "travel", "food", "tech", "games", "fashion", "movies"]
VERSIONS = ["4.9.1", "4.10.0", "4.10.2", "5.0.0", "5.1.3"]
ZONES = ["America/New_York", "Europe/Paris", "Europe/London", "Asia/Tokyo", ""]
LOCALES = ["en-US", "fr-FR", "en-GB", "ja-JP", "de-DE"]


def days(n: float) -> duration_pb2.Duration:
    return duration_pb2.Duration(seconds=int(n * 86400))


def user_id(i: int) -> str:
    return f"user-{i:07d}"


# ---------------------------------------------------------------- the 50 segments


def ev(name, op, count=0, window=None, **kw) -> pb.Rule:
    c = pb.EventCondition(name=name, operator=op, count=count, **kw)
    if window is not None:
        c.window.CopyFrom(days(window))
    return pb.Rule(event=c)


def attr(name, op, **value) -> pb.Rule:
    return pb.Rule(attribute=pb.AttributeCondition(name=name, operator=op, value=common_pb2.AttributeValue(**value)))


def group(op, *children) -> pb.Rule:
    return pb.Rule(group=pb.Group(operator=op, rules=children))


def one_of(name, *values) -> pb.Rule:
    return pb.Rule(attribute=pb.AttributeCondition(name=name, operator=A.ATTRIBUTE_OPERATOR_IN, values=[
        common_pb2.AttributeValue(string_value=v) for v in values]))


BIG_CART = common_pb2.PropertyFilter(name="cart_value", operator=A.ATTRIBUTE_OPERATOR_GREATER,
                             value=struct_pb2.Value(number_value=100))
AND, OR, NOT = pb.GROUP_OPERATOR_AND, pb.GROUP_OPERATOR_OR, pb.GROUP_OPERATOR_NOT

# The rule EstimateAudience is timed with: five conditions of five kinds.
FIVE = group(AND,
             one_of("plan", "pro", "team"),
             ev("app_open", E.EVENT_OPERATOR_AT_LEAST, 3, window=7),
             pb.Rule(platform=pb.PlatformCondition(platforms=[common_pb2.PLATFORM_IOS, common_pb2.PLATFORM_ANDROID])),
             pb.Rule(app_version=pb.AppVersionCondition(operator=A.ATTRIBUTE_OPERATOR_GREATER_OR_EQUAL,
                                                        version="4.10")),
             group(NOT, pb.Rule(inactive=pb.InactiveCondition(duration=days(14)))))


def segment_rules() -> list[pb.Rule]:
    out = [
        one_of("plan", "pro", "team", "enterprise"),
        attr("plan", A.ATTRIBUTE_OPERATOR_EQUALS, string_value="free"),
        attr("vip", A.ATTRIBUTE_OPERATOR_EQUALS, bool_value=True),
        attr("age", A.ATTRIBUTE_OPERATOR_LESS, int_value=25),
        group(AND, attr("age", A.ATTRIBUTE_OPERATOR_GREATER_OR_EQUAL, int_value=25),
              attr("age", A.ATTRIBUTE_OPERATOR_LESS, int_value=45)),
        attr("score", A.ATTRIBUTE_OPERATOR_GREATER, double_value=0.8),
        attr("interests", A.ATTRIBUTE_OPERATOR_CONTAINS, string_value="games"),
        pb.Rule(attribute=pb.AttributeCondition(name="signup_at", operator=A.ATTRIBUTE_OPERATOR_WITHIN_LAST,
                                                duration=days(30))),
        pb.Rule(attribute=pb.AttributeCondition(name="signup_at", operator=A.ATTRIBUTE_OPERATOR_MORE_THAN_AGO,
                                                duration=days(365))),
        attr("signup_at", A.ATTRIBUTE_OPERATOR_BEFORE, time_value=_ts(datetime(2026, 1, 1, tzinfo=timezone.utc))),
        ev("app_open", E.EVENT_OPERATOR_AT_LEAST, 1, window=1),
        ev("app_open", E.EVENT_OPERATOR_AT_LEAST, 3, window=7),
        ev("app_open", E.EVENT_OPERATOR_AT_LEAST, 10, window=30),
        ev("app_open", E.EVENT_OPERATOR_EACH_DAY, days=3),
        ev("purchase", E.EVENT_OPERATOR_AT_LEAST, 1),
        ev("purchase", E.EVENT_OPERATOR_NEVER),
        ev("purchase", E.EVENT_OPERATOR_AT_LEAST, 2, window=30),
        ev("purchase", E.EVENT_OPERATOR_AT_LEAST, 1, window=30, property_filters=[BIG_CART]),
        ev("add_to_cart", E.EVENT_OPERATOR_AT_LEAST, 1, window=7),
        ev("add_to_cart", E.EVENT_OPERATOR_LAST_PERFORMED_MORE_THAN_AGO, window=3),
        ev("share", E.EVENT_OPERATOR_EXACTLY, 1),
        ev("screen_view", E.EVENT_OPERATOR_AT_MOST, 5, window=7),
        pb.Rule(inactive=pb.InactiveCondition(duration=days(7))),
        pb.Rule(inactive=pb.InactiveCondition(duration=days(14))),
        pb.Rule(inactive=pb.InactiveCondition(duration=days(30))),
        pb.Rule(platform=pb.PlatformCondition(platforms=[common_pb2.PLATFORM_IOS])),
        pb.Rule(platform=pb.PlatformCondition(platforms=[common_pb2.PLATFORM_WEB])),
        pb.Rule(app_version=pb.AppVersionCondition(operator=A.ATTRIBUTE_OPERATOR_LESS, version="5.0")),
        pb.Rule(random_bucket=pb.RandomBucketCondition(from_percent=0, to_percent=10, salt="holdout")),
        pb.Rule(random_bucket=pb.RandomBucketCondition(from_percent=50, to_percent=100, salt="ab")),
        FIVE,
        group(AND, attr("plan", A.ATTRIBUTE_OPERATOR_EQUALS, string_value="free"),
              ev("add_to_cart", E.EVENT_OPERATOR_AT_LEAST, 1, window=7), ev("purchase", E.EVENT_OPERATOR_NEVER)),
        group(OR, attr("vip", A.ATTRIBUTE_OPERATOR_EQUALS, bool_value=True),
              ev("purchase", E.EVENT_OPERATOR_AT_LEAST, 3)),
        group(AND, pb.Rule(inactive=pb.InactiveCondition(duration=days(7))),
              ev("purchase", E.EVENT_OPERATOR_AT_LEAST, 1)),
        group(AND, one_of("country", "US", "CA"), ev("app_open", E.EVENT_OPERATOR_AT_LEAST, 1, window=7)),
        group(AND, one_of("country", "FR", "DE", "ES", "IT"),
              pb.Rule(platform=pb.PlatformCondition(platforms=[common_pb2.PLATFORM_ANDROID]))),
        group(NOT, ev("app_open", E.EVENT_OPERATOR_AT_LEAST, 1, window=30)),
        group(AND, attr("score", A.ATTRIBUTE_OPERATOR_LESS, double_value=0.2),
              ev("app_open", E.EVENT_OPERATOR_AT_LEAST, 5, window=30)),
        pb.Rule(attribute=pb.AttributeCondition(name="nickname", operator=A.ATTRIBUTE_OPERATOR_EXISTS)),
        attr("plan", A.ATTRIBUTE_OPERATOR_STARTS_WITH, string_value="ent"),
        group(AND, ev("share", E.EVENT_OPERATOR_AT_LEAST, 1, window=30),
              attr("interests", A.ATTRIBUTE_OPERATOR_CONTAINS, string_value="music")),
        group(OR, ev("app_open", E.EVENT_OPERATOR_EACH_DAY, days=7), attr("vip", A.ATTRIBUTE_OPERATOR_EQUALS,
                                                                         bool_value=True)),
        group(AND, one_of("plan", "pro"), pb.Rule(random_bucket=pb.RandomBucketCondition(
            from_percent=0, to_percent=50, salt="pro-test"))),
        ev("screen_view", E.EVENT_OPERATOR_AT_LEAST, 20, window=7),
        attr("age", A.ATTRIBUTE_OPERATOR_GREATER, int_value=60),
    ]
    return out


def membership_rules(ids: list[str]) -> list[pb.Rule]:
    """Segments of segments (the last of the 50 among them)."""
    return [
        group(AND, pb.Rule(segment=pb.SegmentMembershipCondition(segment_id=ids[0])),
              pb.Rule(segment=pb.SegmentMembershipCondition(segment_id=ids[22], negate=True))),
        group(OR, pb.Rule(segment=pb.SegmentMembershipCondition(segment_id=ids[11])),
              pb.Rule(segment=pb.SegmentMembershipCondition(segment_id=ids[14]))),
        group(AND, pb.Rule(segment=pb.SegmentMembershipCondition(segment_id=ids[30])),
              pb.Rule(segment=pb.SegmentMembershipCondition(segment_id=ids[17]))),
        group(AND, pb.Rule(segment=pb.SegmentMembershipCondition(segment_id=ids[15], negate=True)),
              pb.Rule(segment=pb.SegmentMembershipCondition(segment_id=ids[25]))),
        group(AND, pb.Rule(segment=pb.SegmentMembershipCondition(segment_id=ids[2])),
              ev("app_open", E.EVENT_OPERATOR_AT_LEAST, 1, window=7)),
    ]


def _ts(dt: datetime):
    from nudgelib.protoconv import to_timestamp

    return to_timestamp(dt)


# ---------------------------------------------------------------- the million users


def generate(app_id: str, now: datetime, first: int, last: int, big_cart_key: str, seed: int):
    """Rows for users [first, last): (profiles, event_totals, event_days), in key order."""
    rnd = random.Random(seed)
    today = now.date()
    profiles, totals, day_rows = [], [], []
    for i in range(first, last):
        uid = user_id(i)
        r = rnd.random()
        if r < 0.08:
            active = sorted(rnd.sample(range(30), rnd.randint(15, 25)))
        elif r < 0.38:
            active = sorted(rnd.sample(range(30), rnd.randint(2, 7)))
        elif r < 0.78:
            active = sorted(rnd.sample(range(30), rnd.randint(1, 2)))
        else:
            active = [rnd.randint(31, 365)]
        counters: dict[str, dict[date, int]] = {}
        for ago in active:
            day = today - timedelta(days=ago)
            counters.setdefault("app_open", {})[day] = rnd.randint(1, 3)
            if rnd.random() < 0.5:
                counters.setdefault("screen_view", {})[day] = rnd.randint(1, 10)
            if rnd.random() < 0.15:
                counters.setdefault("add_to_cart", {})[day] = 1
                if rnd.random() < 0.35:
                    counters.setdefault("purchase", {})[day] = 1
                    if rnd.random() < 0.4:
                        counters.setdefault(big_cart_key, {})[day] = 1
            if rnd.random() < 0.02:
                counters.setdefault("share", {})[day] = 1
        # One time of day per user for its events, never ahead of now.
        second = timedelta(seconds=rnd.randint(0, 86399))

        def at(day: date) -> datetime:
            return min(datetime(day.year, day.month, day.day, tzinfo=timezone.utc) + second, now)

        last_seen = at(today - timedelta(days=active[0]))
        signup = now - timedelta(days=active[-1] + rnd.randint(0, 700), seconds=rnd.randint(0, 86399))
        attributes = {
            "plan": {"s": rnd.choice(PLANS)}, "age": {"i": rnd.randint(18, 80)},
            "score": {"d": round(rnd.random(), 3)}, "country": {"s": rnd.choice(COUNTRIES)},
            "vip": {"b": rnd.random() < 0.05}, "signup_at": {"t": signup.isoformat()},
            "interests": {"l": rnd.sample(INTERESTS, rnd.randint(0, 3))},
        }
        if rnd.random() < 0.1:
            attributes["nickname"] = {"s": f"nick{i}"}
        version = rnd.choice(VERSIONS)
        platforms = sorted(rnd.sample([1, 2, 3], rnd.choice([1, 1, 1, 2])))
        profiles.append((app_id, uid, json.dumps(attributes), rnd.choice(ZONES), rnd.choice(LOCALES), signup,
                         last_seen, platforms, version, list(parse_version(version)), last_seen))
        for key in sorted(counters):
            by_day = counters[key]
            totals.append((app_id, uid, key, sum(by_day.values()), at(min(by_day)), at(max(by_day))))
            for day in sorted(by_day):
                day_rows.append((app_id, uid, key, day, by_day[day]))
    return profiles, totals, day_rows


async def load_users(url: str, app_id: str, now: datetime, big_cart_key: str) -> dict[str, int]:
    """COPY the users straight into segmentation's tables, 50,000 at a time; the next chunk is
    generated in another process while this one is copied."""
    pool = await db.create_pool(url, "segmentation", 1, 2)
    counts = {"profiles": 0, "event_totals": 0, "event_days": 0}
    chunk = 50_000
    loop = asyncio.get_running_loop()
    try:
        with ProcessPoolExecutor(1) as generator:
            def start(first: int):
                return loop.run_in_executor(generator, generate, app_id, now, first, min(first + chunk, USERS),
                                            big_cart_key, first)

            pending = start(0)
            async with pool.acquire() as c:
                for first in range(0, USERS, chunk):
                    profiles, totals, day_rows = await pending
                    if first + chunk < USERS:
                        pending = start(first + chunk)
                    await c.copy_records_to_table(
                        "profiles", records=profiles, schema_name="segmentation",
                        columns=["app_id", "user_id", "attributes", "time_zone", "locale", "first_seen",
                                 "last_seen", "platforms", "app_version", "app_version_parts", "app_version_at"])
                    await c.copy_records_to_table("event_totals", records=totals, schema_name="segmentation",
                                                  columns=["app_id", "user_id", "key", "count", "first_at", "last_at"])
                    await c.copy_records_to_table("event_days", records=day_rows, schema_name="segmentation",
                                                  columns=["app_id", "user_id", "key", "day", "count"])
                    counts["profiles"] += len(profiles)
                    counts["event_totals"] += len(totals)
                    counts["event_days"] += len(day_rows)
                for table in ("profiles", "event_totals", "event_days"):
                    await c.execute(f"VACUUM ANALYZE segmentation.{table}")
    finally:
        await pool.close()
    return counts


# ---------------------------------------------------------------- measurements


@contextlib.asynccontextmanager
async def tuned_database():
    """harness.database(), with the embedded server given SHARED_BUFFERS: its data folder is
    created by a first start (in a short-lived process), configured, then started again."""
    if os.environ.get("DATABASE_URL") or not SHARED_BUFFERS:
        async with database() as url:
            yield url
        return
    with tempfile.TemporaryDirectory(prefix="nudge-bench-") as tmp:
        subprocess.run([sys.executable, "-c", "import sys; from pathlib import Path; from nudgetools import embedded;"
                        " embedded.start(Path(sys.argv[1]))", tmp], cwd=REPO, check=True)
        with open(Path(tmp) / "pgdata" / "postgresql.conf", "a") as conf:
            conf.write(f"\nshared_buffers = '{SHARED_BUFFERS}'\n")
        url = embedded.start(Path(tmp), delete_on_exit=True)
        await embedded.ensure_database(url)
        await migrate_all(url)
        yield url


async def timed(coro) -> tuple[float, object]:
    t0 = time.perf_counter()
    result = await coro
    return time.perf_counter() - t0, result


async def lookups(memberships: Memberships, app_id: str, ids: list[str]) -> tuple[float, float, float]:
    """One caller, back to back: (p50 ms, p99 ms, max ms)."""
    latencies = []
    for uid in ids:
        t0 = time.perf_counter()
        await memberships.user_context(app_id, uid)
        latencies.append(time.perf_counter() - t0)
    p50, p99 = percentiles(latencies, 50, 99)
    return p50 * 1000, p99 * 1000, max(latencies) * 1000


async def in_process(url: str, app_id: str, now: datetime) -> dict[str, tuple[float, float, float]]:
    pool = await db.create_pool(url, "segmentation", 2, 4)
    try:
        rnd = random.Random(7)
        results = {}
        for label, cache_size, clock, ids in (
            ("miss: stored memberships read", 0, FixedClock(now), [user_id(rnd.randrange(USERS)) for _ in range(20_000)]),
            ("hit: cached context", 50_000, FixedClock(now), [user_id(rnd.randrange(10_000)) for _ in range(20_000)]),
            # 40 days on, most stored memberships are past valid_until: all 50 rules evaluated.
            ("evaluate: 50 segments, 40 days later", 0, FixedClock(now + timedelta(days=40)),
             [user_id(rnd.randrange(USERS)) for _ in range(5_000)]),
        ):
            catalogs = Catalogs(pool)
            m = Memberships(pool, catalogs, ContextCache(cache_size), clock, SegmentationSettings())
            await lookups(m, app_id, ids[:500])  # warm-up
            results[label] = await lookups(m, app_id, ids)
            await m.close()
        return results
    finally:
        await pool.close()


async def prewarm(conn) -> bool:
    """With memory given to PostgreSQL, load what lookups read into its buffers, as on a
    server that has been running; with the default 128MB it would not fit anyway."""
    if not SHARED_BUFFERS or os.environ.get("DATABASE_URL"):
        return False
    await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_prewarm")
    for relation in ("profiles", "profiles_pkey", "memberships", "memberships_pkey"):
        await conn.execute("SELECT pg_prewarm($1)", f"segmentation.{relation}")
    return True


async def _setting(url: str, name: str) -> str:
    pool = await db.create_pool(url, "segmentation", 1, 1)
    try:
        return await pool.fetchval("SELECT current_setting($1)", name)
    finally:
        await pool.close()


def cache_entry_bytes(context: internal_pb.GetUserContextResponse) -> float:
    """RSS growth per cached context, measured by filling a cache of 50,000 copies."""
    def rss() -> int:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0

    gc.collect()
    before = rss()
    cache = ContextCache(50_000)
    for i in range(50_000):
        cache.put("app", f"user-{i}", context.SerializeToString(), None, 1, cache.ticket())
    gc.collect()
    return (rss() - before) / 50_000


async def rpc_load(target: str, metadata, ids: list[str], duration: float = RPC_SECONDS) -> LoadResult:
    async with grpc.aio.insecure_channel(target) as channel:
        stub = internal_grpc.SegmentationInternalServiceStub(channel)
        app_id = metadata[1]
        return await closed_loop(lambda i: stub.GetUserContext(
            internal_pb.GetUserContextRequest(app_id=app_id, user_id=ids[i % len(ids)]),
            metadata=metadata[0], timeout=5), duration=duration)


class EmptySegmentation(internal_grpc.SegmentationInternalServiceServicer):
    async def GetUserContext(self, request, context):
        return internal_pb.GetUserContextResponse()


async def serve_floor(port: int) -> None:
    server = grpc.aio.server()
    internal_grpc.add_SegmentationInternalServiceServicer_to_server(EmptySegmentation(), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


async def rpc_rounds(target: str, internal, misses: list[str], hot: list[str]) -> list[dict[str, LoadResult]]:
    """Floor, misses and hits in turn, RPC_ROUNDS times; each round's misses are users not
    asked for before."""
    rounds = []
    async with floor_server(module="tests.bench.segmentation") as floor:
        await rpc_load(target, internal, hot)  # fills the cache with the hot users
        for k in range(RPC_ROUNDS):
            rounds.append({
                FLOOR: await rpc_load(floor, ((), "app"), ["u"]),
                f"GetUserContext, any of {USERS:,} users (misses)": await rpc_load(target, internal, misses[k::RPC_ROUNDS]),
                "GetUserContext, 10k active users (hits)": await rpc_load(target, internal, hot),
            })
    return rounds


def print_rounds(rounds: list[dict[str, LoadResult]]) -> None:
    labels = [label for label in rounds[0] if label != FLOOR]
    print(f"\ninternal GetUserContext RPC: {CONCURRENCY} concurrent callers, {RPC_SECONDS:g}s per load; the floor,"
          f" the misses and the hits in turn, {len(rounds)} rounds; x floor: against the same round's floor")
    for n, r in enumerate(rounds, 1):
        base = r[FLOOR].rate
        print(f"  round {n}: floor {base:,.0f}/s; " + "; ".join(
            f"{label.split(', ')[-1]} {r[label].rate:,.0f}/s {r[label].rate / base:.2f}x p99 {r[label].p99_ms:.1f} ms"
            for label in labels))
    for label in labels:
        ratios = sorted(r[label].rate / r[FLOOR].rate for r in rounds)
        errors = sum(r[label].errors for r in rounds)
        print(f"  {label:<44} median {ratios[len(ratios) // 2]:.2f}x floor"
              f" (rounds, sorted: {', '.join(f'{x:.2f}' for x in ratios)}), errors {errors}")


# Heavier rules, timed too, for an honest picture beyond the 5-condition one.
OTHERS = {
    "app_open >= 10 in 30 days (3M day rows)": ev("app_open", E.EVENT_OPERATOR_AT_LEAST, 10, window=30),
    "purchase in 30 days OR share ever": group(OR, ev("purchase", E.EVENT_OPERATOR_AT_LEAST, 1, window=30),
                                               ev("share", E.EVENT_OPERATOR_AT_LEAST, 1)),
    "plan = free (attribute only)": attr("plan", A.ATTRIBUTE_OPERATOR_EQUALS, string_value="free"),
}


async def main() -> None:
    setup: dict[str, float] = {}
    estimates: dict[str, list[float]] = {}
    async with tuned_database() as url, running_cluster(url) as cluster:
        app = await create_app(url)
        admin = app.auth("admin")
        now = SystemClock().now()
        internal = ((("authorization", f"Bearer {cluster.internal_token}"),), app.id)
        async with grpc.aio.insecure_channel(cluster.target("segmentation")) as channel:
            api = pb_grpc.SegmentationServiceStub(channel)
            ids = []
            for i, rule in enumerate(segment_rules()):
                ids.append((await api.CreateSegment(pb.CreateSegmentRequest(name=f"s{i}", rule=rule),
                                                    metadata=admin, timeout=30)).segment.id)
            extra = membership_rules(ids)
            for i, rule in enumerate(extra[:-1]):
                ids.append((await api.CreateSegment(pb.CreateSegmentRequest(name=f"m{i}", rule=rule),
                                                    metadata=admin, timeout=30)).segment.id)
            big_cart_key = next(counter_key(r.event) for r in segment_rules()
                                if r.WhichOneof("node") == "event" and r.event.property_filters)

            setup[f"load {USERS:,} users with COPY"], counts = await timed(load_users(url, app.id, now, big_cart_key))
            pool = await db.create_pool(url, "segmentation", 1, 2)
            try:
                segments = Segments(pool, Catalogs(pool), SystemClock(),
                                    SegmentationSettings())
                setup[f"rebuild stored memberships, {len(ids)} segments"], _ = await timed(segments.rebuild(app.id))
                async with pool.acquire() as c:
                    await c.execute("VACUUM ANALYZE segmentation.memberships")
                    prewarmed = await prewarm(c)
            finally:
                await pool.close()
            setup[f"CreateSegment #50 (recomputed for {USERS:,} users)"], created = await timed(api.CreateSegment(
                pb.CreateSegmentRequest(name="m-last", rule=extra[-1]), metadata=admin, timeout=120))
            ids.append(created.segment.id)
            assert len(ids) == 50, len(ids)

            for label, rule in {"5 conditions": FIVE, **OTHERS}.items():
                estimates[label] = []
                for _ in range(5 if rule is FIVE else 3):
                    seconds, reply = await timed(api.EstimateAudience(pb.EstimateAudienceRequest(rule=rule),
                                                                      metadata=admin, timeout=60))
                    estimates[label].append(seconds)
                if rule is FIVE:
                    five = reply
            page_times = []
            token = ""
            for _ in range(3):
                seconds, page = await timed(api.ListSegmentMembers(pb.ListSegmentMembersRequest(
                    segment_id=ids[11], page_size=1000, page_token=token), metadata=admin, timeout=60))
                page_times.append(seconds)
                token = page.next_page_token

        inproc = await in_process(url, app.id, now)
        rnd = random.Random(3)
        hot = [user_id(rnd.randrange(USERS)) for _ in range(10_000)]
        rounds = await rpc_rounds(cluster.target("segmentation"), internal,
                                  [user_id(rnd.randrange(USERS)) for _ in range(300_000)], hot)
        async with grpc.aio.insecure_channel(cluster.target("segmentation")) as channel:
            sample = await internal_grpc.SegmentationInternalServiceStub(channel).GetUserContext(
                internal_pb.GetUserContextRequest(app_id=app.id, user_id=hot[0]), metadata=internal[0])
        memory = peak_rss_mb(cluster.processes["segmentation"].pid)
        shared_buffers = await _setting(url, "shared_buffers")

    print(f"\nsegmentation: {USERS:,} users, 50 segments; {counts['event_days']:,} day counters,"
          f" {counts['event_totals']:,} all-time counters; PostgreSQL shared_buffers {shared_buffers}"
          + (", profiles and memberships prewarmed into them" if prewarmed else ""))
    for label, seconds in setup.items():
        print(f"  setup  {label:<52}{seconds:>8.1f} s")
    print(f"\nEstimateAudience ({five.user_count:,} of {five.total_user_count:,} users for the 5 conditions: plan IN,"
          " app_open >= 3 in 7 days, platform, version >= 4.10, not inactive 14 days):")
    for label, runs in estimates.items():
        print(f"  {label:<44}" + ", ".join(f"{s * 1000:.0f} ms" for s in runs)
              + f"   (median {sorted(runs)[len(runs) // 2] * 1000:.0f} ms)")
    print("ListSegmentMembers, pages of 1000 (app_open >= 3 in 7 days): "
          + ", ".join(f"{s * 1000:.0f} ms" for s in page_times))
    print("\nuser-context lookup in-process (one caller):")
    print(f"  {'':<40}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}")
    for label, (p50, p99, worst) in inproc.items():
        print(f"  {label:<40}{p50:>9.3f}{p99:>9.3f}{worst:>9.2f}")
    print_rounds(rounds)
    entry = cache_entry_bytes(sample)
    size = SegmentationSettings().context_cache_size
    print(f"\nsegmentation peak RSS: {memory:.0f} MB; a cached context costs about {entry:.0f} bytes,"
          f" so a full default cache ({size:,}) adds about {entry * size / 2**20:.0f} MB")


if __name__ == "__main__":
    if len(sys.argv) == 2:  # the floor, as harness.floor_server starts it
        runtime.run(serve_floor(int(sys.argv[1])))
