"""The four services as separate processes: what `nudge run`, the end-to-end tests and the
benchmark start. Each process is `python -m services.<name>` with its environment."""

from __future__ import annotations

import asyncio
import errno
import os
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from nudgelib.config import SERVICES
from nudgetools import health

REPO = Path(__file__).resolve().parents[2]


def free_ports(n: int) -> list[int]:
    """n loopback ports free right now (the OS picks them), for processes started next."""
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


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


@dataclass
class Cluster:
    database_url: str
    internal_token: str
    ports: dict[str, int]
    metrics_ports: dict[str, int]
    extra_env: dict[str, str] = field(default_factory=dict)
    # Where each service's log goes; None inherits the terminal.
    log_dir: Path | None = None
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    _logs: list[IO] = field(default_factory=list)

    def target(self, name: str) -> str:
        return f"127.0.0.1:{self.ports[name]}"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update({
            "DATABASE_URL": self.database_url,
            "NUDGE_INTERNAL_TOKEN": self.internal_token,
            "PYTHONPATH": os.pathsep.join([str(REPO / "libs"), str(REPO), env.get("PYTHONPATH", "")]),
        })
        for name in SERVICES:
            upper = name.upper()
            env[f"NUDGE_{upper}_PORT"] = str(self.ports[name])
            env[f"NUDGE_{upper}_METRICS_PORT"] = str(self.metrics_ports[name])
            env[f"NUDGE_{upper}_ADDR"] = self.target(name)
        env.update(self.extra_env)
        return env

    def start(self, names: tuple[str, ...] = SERVICES) -> None:
        env = self.env()
        for name in names:
            out: IO | None = None
            if self.log_dir is not None:
                self.log_dir.mkdir(parents=True, exist_ok=True)
                out = open(self.log_dir / f"{name}.log", "ab")
                self._logs.append(out)
            self.processes[name] = subprocess.Popen(
                [sys.executable, "-m", f"services.{name}"], env=env, cwd=REPO,
                stdout=out, stderr=subprocess.STDOUT if out else None,
                # Own process group: Ctrl-C in a terminal reaches the supervisor only, which
                # then stops the services in order.
                start_new_session=True,
            )

    async def wait_ready(self, timeout: float = 60.0, names: tuple[str, ...] | None = None) -> None:
        names = names or tuple(self.processes)
        await asyncio.gather(*(
            health.wait_serving(self.target(n), timeout, alive=lambda n=n: self.processes[n].poll() is None)
            for n in names))

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
