"""`make bench`: throughput and latency of the pull path, as ratios of a floor measured in
the same run on the same machine.

- floor: an empty grpc.aio FetchMessages handler in its own process;
- thin path, no message: FetchMessages through delivery -> decision -> segmentation for users
  no campaign targets (reads only);
- thin path, message handed out: the same for users in the demo campaign's audience, each
  pull committing the delivery in decision and the message in delivery.

Every scenario uses one client process with CONCURRENCY callers on one channel for DURATION
seconds after a warm-up. Peak memory (VmHWM) of each service process is reported at the end.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import asyncpg
import grpc

from nudge.common.v1 import common_pb2
from nudge.delivery.v1 import delivery_service_pb2 as delivery_pb
from nudge.delivery.v1 import delivery_service_pb2_grpc as delivery_grpc
from nudge.ingestion.v1 import ingestion_service_pb2 as ingestion_pb
from nudge.ingestion.v1 import ingestion_service_pb2_grpc as ingestion_grpc
from nudgelib import accounts, demo, embedded
from nudgelib.cluster import REPO, Cluster, migrate_all
from nudgelib.config import SERVICES

CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "32"))
DURATION = float(os.environ.get("BENCH_SECONDS", "8"))
WARMUP = 1.5
USERS = 2000


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


async def load(target: str, metadata, users: list[str]) -> dict[str, float]:
    """CONCURRENCY callers pulling for `users` in turn; returns rate and latency percentiles."""
    latencies: list[float] = []
    errors = 0
    async with grpc.aio.insecure_channel(target) as channel:
        stub = delivery_grpc.DeliveryServiceStub(channel)
        loop = asyncio.get_running_loop()
        start = loop.time()
        measure_from, stop_at = start + WARMUP, start + WARMUP + DURATION

        async def caller(offset: int) -> None:
            nonlocal errors
            i = offset
            while True:
                t0 = loop.time()
                if t0 >= stop_at:
                    return
                try:
                    await stub.FetchMessages(delivery_pb.FetchMessagesRequest(user_id=users[i % len(users)]),
                                             metadata=metadata, timeout=5)
                except grpc.aio.AioRpcError:
                    errors += 1
                t1 = loop.time()
                if t0 >= measure_from and t1 <= stop_at:
                    latencies.append(t1 - t0)
                i += CONCURRENCY

        await asyncio.gather(*(caller(k) for k in range(CONCURRENCY)))
    latencies.sort()
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0.0] * 99
    return {"rate": len(latencies) / DURATION, "p50_ms": q[49] * 1000, "p99_ms": q[98] * 1000,
            "errors": errors}


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def main() -> None:
    results: dict[str, dict[str, float]] = {}
    (floor_port,) = free_ports(1)
    floor = subprocess.Popen([sys.executable, "-m", "tests.bench.floor", str(floor_port)], cwd=REPO)
    try:
        await asyncio.sleep(0.5)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{floor_port}") as ch:
            await ch.channel_ready()
        results["floor: empty grpc.aio handler"] = await load(f"127.0.0.1:{floor_port}", (), ["u"])
    finally:
        floor.terminate()
        floor.wait()

    with tempfile.TemporaryDirectory(prefix="nudge-bench-") as tmp:
        url = os.environ.get("DATABASE_URL") or embedded.start(Path(tmp), delete_on_exit=True)
        await embedded.ensure_database(url)
        await migrate_all(url)
        ports = free_ports(8)
        cluster = Cluster(database_url=url, internal_token=secrets.token_urlsafe(24),
                          ports=dict(zip(SERVICES, ports[:4])), metrics_ports=dict(zip(SERVICES, ports[4:])),
                          extra_env={"NUDGE_LOG_LEVEL": "warning"}, log_dir=Path(tmp) / "logs")
        cluster.start()
        try:
            await cluster.wait_ready()
            conn = await asyncpg.connect(url)
            app_id, keys = await accounts.create_app(conn, f"bench-{secrets.token_hex(3)}")
            await conn.close()
            secret = {k.label: k.secret for k in keys}
            await demo.seed(cluster.target("segmentation"), cluster.target("decision"), secret["admin"])
            signed_up = [f"s{i}" for i in range(USERS)]
            async with grpc.aio.insecure_channel(cluster.target("ingestion")) as ch:
                stub = ingestion_grpc.IngestionServiceStub(ch)
                for i in range(0, USERS, 500):
                    await stub.TrackEvents(ingestion_pb.TrackEventsRequest(events=[
                        common_pb2.Event(event_id=f"su-{u}", user_id=u, name="signup")
                        for u in signed_up[i:i + 500]]), metadata=(("authorization", f"Bearer {secret['events']}"),))
            await asyncio.sleep(2)  # let the outbox reach segmentation
            client = (("authorization", f"Bearer {secret['client']}"),)
            results["thin path, no message"] = await load(
                cluster.target("delivery"), client, [f"n{i}" for i in range(USERS)])
            results["thin path, message handed out"] = await load(cluster.target("delivery"), client, signed_up)
            memory = {n: peak_rss_mb(p.pid) for n, p in cluster.processes.items()}
        finally:
            cluster.stop()

    floor_rate = results["floor: empty grpc.aio handler"]["rate"]
    print(f"\nNudge bench: {CONCURRENCY} concurrent callers, {DURATION:g}s per scenario, "
          f"{os.cpu_count()} cores\n")
    print(f"{'scenario':<34}{'calls/s':>10}{'x floor':>9}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}")
    for name, r in results.items():
        print(f"{name:<34}{r['rate']:>10.0f}{r['rate'] / floor_rate:>9.2f}{r['p50_ms']:>9.2f}"
              f"{r['p99_ms']:>9.2f}{r['errors']:>8.0f}")
    print("\npeak RSS per service (MB): " + ", ".join(f"{n} {m:.0f}" for n, m in memory.items()))


if __name__ == "__main__":
    asyncio.run(main())
