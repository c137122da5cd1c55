"""The four real service processes, shared by the end-to-end tests of one module."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from nudgetools.cluster import Cluster, free_replica_ports
from nudgetools.edge import Edge
from tests.conftest import INTERNAL_TOKEN, prepare_database


@pytest.fixture(scope="session")
def database_url(database_url: str) -> str:
    """A database of their own for the clusters: the session's in-process services (the
    `stack` of tests/service) stay up, and as replicas of a deployment on the same database
    they would take the clusters' outbox rows and send them to their own peers."""
    base, _, query = database_url.partition("?")
    url = f"{base.rsplit('/', 1)[0]}/nudge_e2e" + (f"?{query}" if query else "")
    asyncio.run(prepare_database(url))
    return url


@contextlib.asynccontextmanager
async def running(database_url: str, log_dir: Path, replicas: dict[str, int] | None = None, edge: bool = False,
                  edge_origins: tuple[str, ...] = ("*",), **extra_env: str) -> AsyncIterator[Cluster]:
    """The services as processes (`replicas` of each, by default one), with Envoy in front
    if `edge` (browsers allowed from `edge_origins`); ready once every process is."""
    # Every port in one pick: ports picked apart may come out the same.
    ports, metrics_ports, edge_ports = free_replica_ports(replicas or {}, extra=2)
    cluster = Cluster(
        database_url=database_url, internal_token=INTERNAL_TOKEN, ports=ports, metrics_ports=metrics_ports,
        extra_env={"NUDGE_LOG_FORMAT": "json", "NUDGE_SHUTDOWN_GRACE_SECONDS": "2", **extra_env},
        log_dir=log_dir, edge=Edge(*edge_ports, log_dir / "envoy.yaml", origins=edge_origins) if edge else None,
    )
    cluster.start()
    try:
        await cluster.wait_ready(timeout=90)
        yield cluster
    finally:
        cluster.stop()
