"""Shared fixtures: a real PostgreSQL (embedded unless DATABASE_URL is set), apps with keys,
and the four services running in this process on port 0."""

from __future__ import annotations

import nudgetools  # noqa: F401, I001  first: it turns off gRPC's fork handlers before grpc loads

import asyncio
import os
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest
import structlog

from nudgelib.config import LogSettings, ServiceSettings
from nudgelib.logs import console_renderer
from nudgelib.server import ServiceHost, ServiceSpec
from nudgetools import embedded
from nudgetools.cluster import free_ports
from nudgetools.database import migrate_all
from services.decision.server import SPEC as DECISION
from services.delivery.server import SPEC as DELIVERY
from services.ingestion.server import SPEC as INGESTION
from services.segmentation.server import SPEC as SEGMENTATION
from tests.helpers import App, create_app

# The services in this process log through structlog's default chain; only its renderer is
# swapped, for the plain tracebacks the services' own configuration uses (nudgelib.logs).
structlog.configure(processors=[*structlog.get_config()["processors"][:-1], console_renderer()])

INTERNAL_TOKEN = "test-internal-token-" + secrets.token_hex(8)


@pytest.fixture(scope="session")
def database_url(tmp_path_factory) -> str:
    url = os.environ.get("DATABASE_URL", "").strip()
    if not url:
        url = embedded.start(Path(tmp_path_factory.mktemp("postgres")), delete_on_exit=True)
    asyncio.run(prepare_database(url))
    return url


async def prepare_database(url: str) -> None:
    await embedded.ensure_database(url)
    await migrate_all(url)


@pytest.fixture
async def app(database_url) -> App:
    return await create_app(database_url)


@pytest.fixture
async def other_app(database_url) -> App:
    return await create_app(database_url)


def settings_for(service: str, url: str, peers: dict[str, str], port: int = 0) -> ServiceSettings:
    return ServiceSettings(
        service=service, database_url=url, accounts_database_url=url, bind_host="127.0.0.1",
        port=port, metrics_port=free_ports(1)[0], internal_token=INTERNAL_TOKEN, peers=peers,
        log=LogSettings(format="console", level="warning"), shutdown_grace=1.0,
        db_pool_min=1, db_pool_max=5, event_loop="asyncio",
    )


@dataclass
class Stack:
    """The four services in this process, each on its own port."""

    hosts: dict[str, ServiceHost] = field(default_factory=dict)
    channels: dict[str, grpc.aio.Channel] = field(default_factory=dict)

    def target(self, name: str) -> str:
        return f"127.0.0.1:{self.hosts[name].port}"

    def channel(self, name: str) -> grpc.aio.Channel:
        if name not in self.channels:
            self.channels[name] = grpc.aio.insecure_channel(self.target(name))
        return self.channels[name]

    async def stop(self) -> None:
        for ch in self.channels.values():
            await ch.close()
        for host in reversed(list(self.hosts.values())):
            await host.stop()


async def start_host(spec: ServiceSpec, url: str, peers: dict[str, str], port: int = 0, **kwargs) -> ServiceHost:
    # A peer the test does not name gets an address nothing listens on.
    peers = {**{name: "127.0.0.1:9" for name in spec.peers}, **peers}
    host = ServiceHost(settings_for(spec.name, url, peers, port), spec, drain_delay=0.05, **kwargs)
    await host.start()
    return host


async def start_stack(url: str, rewire: Callable[[str, dict[str, str]], Awaitable[dict[str, str]]] | None = None
                      ) -> Stack:
    """The four services on ports chosen up front, so each knows every other's address.
    `rewire(service, peers)`, if given, returns the peer addresses a service is started with
    (a test putting a proxy between two of them)."""
    ports = dict(zip(("segmentation", "decision", "delivery", "ingestion"), free_ports(4)))
    peers = {name: f"127.0.0.1:{port}" for name, port in ports.items()}
    stack = Stack()
    try:
        for spec in (SEGMENTATION, DECISION, DELIVERY, INGESTION):
            others = {n: a for n, a in peers.items() if n != spec.name}
            if rewire is not None:
                others = await rewire(spec.name, others)
            stack.hosts[spec.name] = await start_host(spec, url, others, ports[spec.name])
    except BaseException:
        # Those started go too: left running in this process, they would act on the database
        # (and log) through every test after.
        await stack.stop()
        raise
    return stack


@pytest.fixture(scope="session")
async def stack(database_url):
    s = await start_stack(database_url)
    yield s
    await s.stop()


async def eventually(check, timeout: float = 10.0, interval: float = 0.05):
    """Polls an async check until it returns a truthy value; returns it."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = await check()
        if result:
            return result
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last: {result!r})")
        await asyncio.sleep(interval)
