"""The web console as a process of `nudge run` (`python -m console`), beside the services and
the edge: its environment (where it listens, which services it calls) and when it is ready
(its /healthz answers)."""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass

from nudgetools.edge import admin_get


@dataclass(frozen=True)
class ConsoleProcess:
    port: int
    # The services, as NUDGE_CONSOLE_TARGET takes them (the edge's address under `nudge run`).
    target: str
    # The CA that signs the edge's certificate when it has TLS (`nudge run --tls`), else None.
    ca_file: str | None = None
    host: str = "127.0.0.1"

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{self.port}"

    def command(self) -> list[str]:
        return [sys.executable, "-m", "console"]

    def env(self) -> dict[str, str]:
        env = {"NUDGE_CONSOLE_PORT": str(self.port), "NUDGE_CONSOLE_BIND_HOST": self.host,
               "NUDGE_CONSOLE_TARGET": self.target}
        if self.ca_file:
            env["NUDGE_TLS_CA_FILE"] = self.ca_file
        return env

    async def wait_ready(self, timeout: float = 30.0, alive=None) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        while loop.time() < deadline:
            if alive is not None and not alive():
                raise RuntimeError(f"the console on {self.url} exited before it was ready")
            status, _ = await admin_get(host, self.port, "/healthz")
            if status == 200:
                return
            await asyncio.sleep(0.1)
        raise TimeoutError(f"the console on {self.url} not ready after {timeout:.0f}s")
