"""The four services as separate processes, and the edge in front of them: what `nudge run`,
the end-to-end tests and the benchmark start. Each service process is `python -m
services.<name>` with its environment; Envoy is the edge's (nudgetools.edge).

A service may run as several replicas, each a process on ports of its own, named
`<service>-<k>` (`decision-1`, `decision-2`…; a service with one replica is just `decision`).
Every process is told every replica's address of each peer, as a list (`NUDGE_<SERVICE>_ADDR`,
balanced round robin by the peer clients), and the edge lists them too.

Beside them, `sidecars`: processes that are not Nudge's but run with it locally (the demo
shop's server), started after the services and supervised the same way.
"""

from __future__ import annotations

import asyncio
import dataclasses
import errno
import os
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Protocol

import grpc

from nudgelib.config import SERVICES, TlsSettings
from nudgetools import health
from nudgetools.certs import EDGE as EDGE_IDENTITY, OPERATOR, PUBLIC, LocalCerts
from nudgetools.edge import Edge
from nudgetools.webconsole import ConsoleProcess

REPO = Path(__file__).resolve().parents[2]


def free_ports(n: int) -> list[int]:
    """n loopback ports free right now (the OS picks them), for processes started next, and
    kept from anyone else for a minute. A port merely found free and let go would be the
    OS's to hand out again at once: to a server of another test binding port 0, or to another
    caller of this, before the process it was picked for binds it (seconds later on a loaded
    machine). So each is left with a connection closed on its side, in TIME_WAIT: until that
    ends (60 s on Linux) no bind to port 0 and no outgoing connection gets the port, while a
    server that sets SO_REUSEADDR, as gRPC, Envoy, the metrics endpoint and the HTTP servers
    here do, listens on it as usual."""
    return [_reserved_port() for _ in range(n)]


def _reserved_port() -> int:
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        address = listener.getsockname()
        with socket.create_connection(address):
            accepted, _ = listener.accept()
            # Closed first, the accepted end is the one left in TIME_WAIT, on the port.
            accepted.close()
        return address[1]


def cannot_listen(host: str, port: int) -> str | None:
    """Why a server could not listen on host:port now (another process holds the port, the
    address is not this machine's…), or None if it could. SO_REUSEADDR as the servers set it,
    so a port with only connections in TIME_WAIT left counts as free."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return "is in use by another process"
            return f"cannot be listened on: {exc.strerror}"
    return None


# The process names of the edge and the web console, beside the services' instances.
EDGE = "edge"
CONSOLE = "console"


def instance_names(service: str, count: int) -> list[str]:
    """The process names of a service's replicas."""
    return [service] if count == 1 else [f"{service}-{k}" for k in range(1, count + 1)]


def service_of(instance: str) -> str:
    return instance.partition("-")[0]


def replica_ports(base: dict[str, int], replicas: dict[str, int], step: int = 100) -> dict[str, int]:
    """Ports by instance: replica k (from 0) of a service on its base port + k·step (decision's
    three on 50053, 50153, 50253), so that every port is known before anything starts. A base
    of 0 (a metrics endpoint turned off) stays 0 for every replica."""
    return {instance: base[name] + k * step if base[name] else 0
            for name in base for k, instance in enumerate(instance_names(name, replicas.get(name, 1)))}


def free_replica_ports(replicas: dict[str, int], extra: int = 0) -> tuple[dict[str, int], dict[str, int], list[int]]:
    """gRPC and metrics ports by instance, and `extra` more (the edge's), all free right now and
    all different (for tests and benchmarks)."""
    instances = [i for name in SERVICES for i in instance_names(name, replicas.get(name, 1))]
    n = len(instances)
    ports = free_ports(2 * n + extra)
    return dict(zip(instances, ports)), dict(zip(instances, ports[n:2 * n])), ports[2 * n:]


class Sidecar(Protocol):
    """A process beside the services (nudgetools.demo_server.Sidecar)."""

    env: dict[str, str]

    @property
    def url(self) -> str: ...

    def command(self) -> list[str]: ...

    async def ready(self) -> bool: ...


def _pythonpath() -> str:
    """The checkout's packages first, for processes started from it."""
    return os.pathsep.join([str(REPO / "libs"), str(REPO), os.environ.get("PYTHONPATH", "")])


@dataclass
class Cluster:
    database_url: str
    internal_token: str
    # By instance (a service's name, or `<service>-<k>` for one of several replicas).
    ports: dict[str, int]
    metrics_ports: dict[str, int]
    extra_env: dict[str, str] = field(default_factory=dict)
    # Where each process's log goes; None inherits the terminal.
    log_dir: Path | None = None
    # Envoy in front of the public services, started with them when set.
    edge: Edge | None = None
    # Mutual TLS between every process, and TLS at the edge, with these certificates
    # (nudgetools.certs); None: plaintext, whatever TLS settings this process's environment has.
    certs: LocalCerts | None = None
    # By name; started with `start((name,))` (not by default), supervised once running.
    sidecars: dict[str, Sidecar] = field(default_factory=dict)
    # The web console, started after the edge when set (`nudge run`).
    console: ConsoleProcess | None = None
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    _logs: list[IO] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.certs is not None and self.edge is not None:
            # The edge's listener gets the public certificate, its upstreams its own identity.
            c = self.certs
            self.edge = dataclasses.replace(
                self.edge, tls=(str(c.cert(PUBLIC)), str(c.key(PUBLIC))),
                upstream_tls=TlsSettings(str(c.cert(EDGE_IDENTITY)), str(c.key(EDGE_IDENTITY)), str(c.ca)))

    def target(self, name: str) -> str:
        """The address of an instance, or of a service's first replica."""
        if name == EDGE and self.edge is not None:
            return self.edge.target
        if name not in self.ports:
            name = self.instances(name)[0]
        return f"127.0.0.1:{self.ports[name]}"

    def instances(self, service: str) -> list[str]:
        return [i for i in self.ports if service_of(i) == service]

    def addresses(self, service: str) -> list[str]:
        """Every replica of a service, as host:port."""
        return [self.target(i) for i in self.instances(service)]

    def env(self, instance: str | None = None) -> dict[str, str]:
        """The environment of a service process (of `instance`'s, with its own ports)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("NUDGE_TLS_", "NUDGE_EDGE_TLS_"))}
        if self.certs is not None and instance is not None:
            env.update(self.certs.env(service_of(instance)))
        env.update({
            "DATABASE_URL": self.database_url,
            "NUDGE_INTERNAL_TOKEN": self.internal_token,
            "PYTHONPATH": _pythonpath(),
        })
        for name in SERVICES:
            upper = name.upper()
            own = instance if instance is not None and service_of(instance) == name else self.instances(name)[0]
            env[f"NUDGE_{upper}_PORT"] = str(self.ports[own])
            env[f"NUDGE_{upper}_METRICS_PORT"] = str(self.metrics_ports[own])
            env[f"NUDGE_{upper}_ADDR"] = ",".join(self.addresses(name))
        env.update(self.extra_env)
        return env

    def start(self, names: tuple[str, ...] | None = None) -> None:
        """Starts the named processes: by default every instance, then the edge and the console
        if there are."""
        if names is None:
            names = (*self.ports, *((EDGE,) if self.edge is not None else ()),
                     *((CONSOLE,) if self.console is not None else ()))
        for name in names:
            out: IO | None = None
            if self.log_dir is not None:
                self.log_dir.mkdir(parents=True, exist_ok=True)
                out = open(self.log_dir / f"{name}.log", "ab")
                self._logs.append(out)
            if name == EDGE:
                assert self.edge is not None
                self.edge.write_config({s: self.addresses(s) for s in SERVICES})
                command, env = self.edge.command(), None
            elif name in self.sidecars:
                sidecar = self.sidecars[name]
                # Not the services' environment: a sidecar gets no database nor internal token.
                command, env = sidecar.command(), {**os.environ, "PYTHONPATH": self.env()["PYTHONPATH"], **sidecar.env}
            elif name == CONSOLE:
                assert self.console is not None
                # Only what it needs: it calls the public API, never the database or internal RPCs.
                command = self.console.command()
                env = {**{k: v for k, v in os.environ.items()
                          if k not in ("DATABASE_URL", "NUDGE_INTERNAL_TOKEN") and not k.startswith("NUDGE_TLS_")},
                       "PYTHONPATH": _pythonpath(), **self.console.env()}
            else:
                command, env = [sys.executable, "-m", f"services.{service_of(name)}"], self.env(name)
            self.processes[name] = subprocess.Popen(
                command, env=env, cwd=REPO,
                stdout=out, stderr=subprocess.STDOUT if out else None,
                # Own process group: Ctrl-C in a terminal reaches the supervisor only, which
                # then stops the services in order.
                start_new_session=True,
            )

    async def wait_ready(self, timeout: float = 60.0, names: tuple[str, ...] | None = None) -> None:
        """Until each named process (by default every one started) is ready: a service SERVING,
        the edge done with its first health checks."""
        names = names or tuple(self.processes)

        def ready(n: str):
            alive = lambda: self.processes[n].poll() is None  # noqa: E731
            if n == EDGE and self.edge is not None:
                return self.edge.wait_ready(timeout, alive=alive)
            if n in self.sidecars:
                return _wait_sidecar(n, self.sidecars[n], timeout, alive)
            if n == CONSOLE and self.console is not None:
                return self.console.wait_ready(timeout, alive=alive)
            return health.wait_serving(self.target(n), timeout, alive=alive, credentials=self.credentials())

        async def ready_or_say_why(n: str) -> None:
            try:
                await ready(n)
            except (TimeoutError, RuntimeError) as exc:
                raise type(exc)(f"{exc}{self._log_tail(n)}") from None

        await asyncio.gather(*(ready_or_say_why(n) for n in names))

    def _log_tail(self, name: str, lines: int = 8) -> str:
        """The last lines a process logged, to go with an error about it (nothing when its
        output is not kept)."""
        if self.log_dir is None or not (path := self.log_dir / f"{name}.log").exists():
            return ""
        tail = path.read_text(errors="replace").splitlines()[-lines:]
        return "".join(f"\n  {name}: {line}" for line in tail)

    def credentials(self) -> grpc.ChannelCredentials | None:
        """How the tools (health checks, the demo's seeding) call the services: with the
        operator's certificate when TLS is on."""
        if self.certs is None:
            return None
        c = self.certs
        return grpc.ssl_channel_credentials(c.ca.read_bytes(), c.key(OPERATOR).read_bytes(),
                                            c.cert(OPERATOR).read_bytes())

    def exited(self) -> list[str]:
        return [n for n, p in self.processes.items() if p.poll() is not None]

    def stop(self, name: str | None = None, timeout: float = 15.0) -> dict[str, int]:
        """SIGTERM, wait for a graceful exit, SIGKILL if it does not come; returns exit codes."""
        names = [name] if name else list(self.processes)
        for n in names:
            if self.processes[n].poll() is None:
                self.processes[n].send_signal(signal.SIGTERM)
        codes = {}
        for n in names:
            try:
                codes[n] = self.processes[n].wait(timeout)
            except subprocess.TimeoutExpired:
                self.processes[n].kill()
                codes[n] = self.processes[n].wait()
        if name is None:
            for f in self._logs:
                f.close()
        return codes


async def _wait_sidecar(name: str, sidecar: Sidecar, timeout: float, alive) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if not alive():
            raise RuntimeError(f"{name} exited before it was ready")
        if await sidecar.ready():
            return
        await asyncio.sleep(0.05)
    raise TimeoutError(f"{name} not ready after {timeout:.0f}s")
