"""The four real service processes, shared by the end-to-end tests of one module."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from nudgelib.cluster import Cluster, free_ports
from nudgelib.config import SERVICES
from tests.conftest import INTERNAL_TOKEN


@contextlib.asynccontextmanager
async def running(database_url: str, log_dir: Path, **extra_env: str) -> AsyncIterator[Cluster]:
    ports = free_ports(8)
    cluster = Cluster(
        database_url=database_url, internal_token=INTERNAL_TOKEN,
        ports=dict(zip(SERVICES, ports[:4])), metrics_ports=dict(zip(SERVICES, ports[4:])),
        extra_env={"NUDGE_LOG_FORMAT": "json", "NUDGE_SHUTDOWN_GRACE_SECONDS": "2", **extra_env},
        log_dir=log_dir,
    )
    cluster.start()
    try:
        await cluster.wait_ready(timeout=90)
        yield cluster
    finally:
        cluster.stop()
