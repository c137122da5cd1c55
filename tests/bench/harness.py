"""What every bench scenario shares: a cluster on an embedded PostgreSQL, an app with keys,
a closed-loop load generator, percentiles, and memory (current and peak) of processes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from nudgelib.config import SERVICES
from nudgetools import embedded
from nudgetools.cluster import EDGE, Cluster, free_ports
from nudgetools.edge import Edge
from nudgetools.database import migrate_all

CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "32"))
DURATION = float(os.environ.get("BENCH_SECONDS", "8"))
WARMUP = 1.5


@contextlib.asynccontextmanager
async def database(preload: Sequence[str] = ()) -> AsyncIterator[str]:
    """DATABASE_URL if set, else a throw-away embedded PostgreSQL loading the `preload`
    libraries (a server at DATABASE_URL loads what it was configured to); migrated."""
    external = os.environ.get("DATABASE_URL")
    with tempfile.TemporaryDirectory(prefix="nudge-bench-") as tmp:
        url = external or embedded.start(Path(tmp), delete_on_exit=True, preload=preload)
        try:
            await embedded.ensure_database(url)
            await migrate_all(url)
            yield url
        finally:
            if not external:
                # Stopped before its folder is removed, not at exit: a running server writes
                # WAL into the folder while it is being deleted, and the deletion fails.
                embedded.release(Path(tmp))


@contextlib.asynccontextmanager
async def running_cluster(url: str, extra_env: dict[str, str] | None = None, edge: bool = False
                          ) -> AsyncIterator[Cluster]:
    """The four services as processes on free ports, logs in a temporary folder; with `edge`,
    Envoy in front of them (`cluster.target("edge")`)."""
    with tempfile.TemporaryDirectory(prefix="nudge-bench-logs-") as logs:
        ports = free_ports(10)
        cluster = Cluster(database_url=url, internal_token=secrets.token_urlsafe(24),
                          ports=dict(zip(SERVICES, ports[:4])), metrics_ports=dict(zip(SERVICES, ports[4:8])),
                          extra_env={"NUDGE_LOG_LEVEL": "warning", **(extra_env or {})}, log_dir=Path(logs),
                          edge=Edge(ports[8], ports[9], Path(logs) / "envoy.yaml") if edge else None)
        cluster.start()
        try:
            await cluster.wait_ready()
            yield cluster
        finally:
            cluster.stop()


@dataclass(frozen=True)
class LoadResult:
    rate: float
    p50_ms: float
    p99_ms: float
    errors: int


async def closed_loop(call: Callable[[int], Awaitable[object]], concurrency: int = CONCURRENCY,
                      duration: float = DURATION, warmup: float = WARMUP) -> LoadResult:
    """`concurrency` callers each awaiting `call(i)` back to back (i counts up per caller,
    interleaved); calls that start after the warm-up and end before the deadline count."""
    latencies: list[float] = []
    errors = 0
    # perf_counter, not loop.time(): uvloop's clock ticks in whole milliseconds.
    start = time.perf_counter()
    measure_from, stop_at = start + warmup, start + warmup + duration

    async def caller(offset: int) -> None:
        nonlocal errors
        i = offset
        while True:
            t0 = time.perf_counter()
            if t0 >= stop_at:
                return
            try:
                await call(i)
            except Exception:  # noqa: BLE001 - counted, the load goes on
                errors += 1
            t1 = time.perf_counter()
            if t0 >= measure_from and t1 <= stop_at:
                latencies.append(t1 - t0)
            i += concurrency

    await asyncio.gather(*(caller(k) for k in range(concurrency)))
    p50, p99 = percentiles(latencies, 50, 99)
    return LoadResult(len(latencies) / duration, p50 * 1000, p99 * 1000, errors)


def percentiles(values: list[float], *ps: int) -> list[float]:
    if len(values) < 2:
        return [values[0] if values else 0.0 for _ in ps]
    q = statistics.quantiles(values, n=100)
    return [q[p - 1] for p in ps]


@contextlib.asynccontextmanager
async def edge_in_front(target: str) -> AsyncIterator[tuple[str, int]]:
    """Envoy, as the edge runs it, with `target` standing for every service (a floor); yields
    its address and pid."""
    import subprocess

    with tempfile.TemporaryDirectory(prefix="nudge-bench-edge-") as tmp:
        edge = Edge(*free_ports(2), Path(tmp) / "envoy.yaml")
        edge.write_config({name: [target] for name in SERVICES})
        process = subprocess.Popen(edge.command(), stderr=subprocess.DEVNULL)
        try:
            await edge.wait_ready(alive=lambda: process.poll() is None)
            yield edge.target, process.pid
        finally:
            process.terminate()
            process.wait()


def edge_pid(cluster: Cluster) -> int:
    return cluster.processes[EDGE].pid


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int) -> float:
    """The most memory the process has held resident since it started."""
    return _status_mb(pid, "VmHWM")


def rss_mb(pid: int) -> float:
    """The memory the process holds resident now: what a soak follows over time."""
    return _status_mb(pid, "VmRSS")


def _status_mb(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def print_table(title: str, rows: dict[str, LoadResult], floor: str) -> None:
    base = rows[floor].rate
    print(f"\n{title}: {CONCURRENCY} concurrent callers, {DURATION:g}s per scenario, {os.cpu_count()} cores\n")
    print(f"{'scenario':<40}{'calls/s':>10}{'x floor':>9}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}")
    for name, r in rows.items():
        print(f"{name:<40}{r.rate:>10.0f}{r.rate / base:>9.2f}{r.p50_ms:>9.2f}{r.p99_ms:>9.2f}{r.errors:>8}")


@contextlib.asynccontextmanager
async def floor_server(database_url: str | None = None, forward_to: str | None = None,
                       module: str = "tests.bench.floor") -> AsyncIterator[str]:
    """A floor in its own process (`python -m <module> PORT ...`, tests.bench.floor unless a
    scenario serves a floor of its own); yields its address."""
    import subprocess
    import sys

    import grpc

    from nudgetools.cluster import REPO

    (port,) = free_ports(1)
    args = [sys.executable, "-m", module, str(port)] + ([database_url] if database_url else [])
    if forward_to:
        args += ["--to", forward_to]
    process = subprocess.Popen(args, cwd=REPO)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
            await asyncio.wait_for(ch.channel_ready(), 30)
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait()
