"""`nudge run`: the whole system on one machine, for trying Nudge and developing it: the
database, its schemas, the four services as processes and the demo app."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
from pathlib import Path

from nudgelib.config import DEFAULT_METRICS_PORTS, DEFAULT_PORTS, SERVICES, ConfigError, ServiceSettings
from nudgetools import demo
from nudgetools.cluster import Cluster
from nudgetools.database import database_url, migrate_all


def banner(cluster: Cluster, app_id: str, keys: dict[str, str]) -> str:
    ingestion, delivery = cluster.target("ingestion"), cluster.target("delivery")
    lines = [
        "",
        "Nudge is running.",
        *(f"  {n:<13} grpc {cluster.target(n)}   metrics http://127.0.0.1:{cluster.metrics_ports[n]}/metrics"
          for n in SERVICES),
        "",
        f"Demo app {app_id} (a 'Welcome' campaign for users who performed `signup`):",
        f"  export NUDGE_ADMIN_KEY={keys['admin']}",
        f"  export NUDGE_EVENTS_KEY={keys['events']}",
        f"  export NUDGE_CLIENT_KEY={keys['client']}",
        "",
        "Send a signup for u1, then ask for u1's next message (buf is in .venv/bin):",
        "  buf curl --protocol grpc --http2-prior-knowledge -H \"authorization: Bearer $NUDGE_EVENTS_KEY\" \\",
        "    -d '{\"events\":[{\"eventId\":\"e1\",\"userId\":\"u1\",\"name\":\"signup\"}]}' \\",
        f"    http://{ingestion}/nudge.ingestion.v1.IngestionService/TrackEvents",
        "  buf curl --protocol grpc --http2-prior-knowledge -H \"authorization: Bearer $NUDGE_CLIENT_KEY\" \\",
        "    -d '{\"userId\":\"u1\",\"platform\":\"PLATFORM_IOS\"}' \\",
        f"    http://{delivery}/nudge.delivery.v1.DeliveryService/FetchMessages",
        "",
        "Ctrl-C stops everything.",
    ]
    return "\n".join(lines)


async def run_local(data_dir: Path) -> int:
    env = os.environ
    try:
        for name in SERVICES:  # the same checks the services make, before anything starts
            ServiceSettings.from_env(name, {**env, "DATABASE_URL": "postgresql://check",
                                             "NUDGE_INTERNAL_TOKEN": "x" * 16})
    except ConfigError as exc:
        print(f"nudge run: configuration error: {exc}")
        return 2
    url = await database_url()
    print(f"database: {'DATABASE_URL' if env.get('DATABASE_URL') else f'embedded PostgreSQL in {data_dir}/pgdata'}")
    await migrate_all(url)
    cluster = Cluster(
        database_url=url,
        internal_token=env.get("NUDGE_INTERNAL_TOKEN") or secrets.token_urlsafe(24),
        ports={n: int(env.get(f"NUDGE_{n.upper()}_PORT", DEFAULT_PORTS[n])) for n in SERVICES},
        metrics_ports={n: int(env.get(f"NUDGE_{n.upper()}_METRICS_PORT", DEFAULT_METRICS_PORTS[n]))
                       for n in SERVICES},
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    cluster.start()
    try:
        await cluster.wait_ready()
        app_id, keys, created = await demo.app_keys(url, data_dir / "demo-keys.json")
        if created:
            await demo.seed(cluster.target("segmentation"), cluster.target("decision"), keys["admin"])
        print(banner(cluster, app_id, keys), flush=True)
        while not stop.is_set() and not cluster.exited():
            try:
                await asyncio.wait_for(stop.wait(), 1.0)
            except asyncio.TimeoutError:
                pass
        if cluster.exited():
            print(f"nudge run: {', '.join(cluster.exited())} exited; stopping the rest")
            return 1
        return 0
    finally:
        print("stopping services…", flush=True)
        cluster.stop()
