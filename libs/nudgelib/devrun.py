"""`nudge run`: the whole system on one machine, for trying Nudge and developing it."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
from pathlib import Path

import asyncpg

from nudgelib import accounts, demo
from nudgelib.cluster import Cluster, migrate_all
from nudgelib.config import DEFAULT_METRICS_PORTS, DEFAULT_PORTS, SERVICES, ConfigError, ServiceSettings

DEMO_APP = "demo"


async def demo_keys(url: str, keys_file: Path) -> tuple[str, dict[str, str], bool]:
    """The demo app's id and keys, creating them on first run. Keys are kept in the local data
    folder so restarts print the same ones. Returns (app id, label -> key, created now)."""
    conn = await asyncpg.connect(url)
    try:
        app_id = await accounts.find_app(conn, DEMO_APP)
        if app_id and keys_file.exists():
            saved = json.loads(keys_file.read_text())
            if saved.get("app_id") == app_id:
                return app_id, saved["keys"], False
        created = app_id is None
        if created:
            app_id, issued = await accounts.create_app(conn, DEMO_APP)
        else:
            issued = [await accounts.create_key(conn, app_id, label, scopes)
                      for label, scopes in accounts.DEFAULT_KEYS.items()]
    finally:
        await conn.close()
    keys = {k.label: k.secret for k in issued}
    keys_file.parent.mkdir(parents=True, exist_ok=True)
    keys_file.write_text(json.dumps({"app_id": app_id, "keys": keys}, indent=2))
    keys_file.chmod(0o600)
    return app_id, keys, created


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


async def run_dev(data_dir: Path) -> int:
    from nudgelib.cli import database_url

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
        app_id, keys, created = await demo_keys(url, data_dir / "demo-keys.json")
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
