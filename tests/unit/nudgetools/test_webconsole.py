"""The web console as a process of `nudge run`: started by the cluster with only what it
needs (no database URL, no internal token), ready when /healthz answers, named in the banner,
and a busy console port stops `nudge run` before anything starts."""

from __future__ import annotations

import socket
from pathlib import Path

from console.settings import ConsoleSettings
from nudgelib.config import SERVICES, ServiceSettings
from nudgetools import local
from nudgetools.cluster import CONSOLE, Cluster, free_ports
from nudgetools.edge import admin_get
from nudgetools.webconsole import ConsoleProcess


async def test_the_cluster_starts_the_console_without_the_databases_secrets_and_waits_for_it(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql://secret@db/nudge")
    port = free_ports(1)[0]
    cluster = Cluster(database_url="postgresql://secret@db/nudge", internal_token="t" * 16, ports={},
                      metrics_ports={}, console=ConsoleProcess(port, "127.0.0.1:9"))
    cluster.start((CONSOLE,))
    try:
        await cluster.wait_ready(30, names=(CONSOLE,))
        status, body = await admin_get("127.0.0.1", port, "/login")
        assert status == 200 and "Admin key" in body
        environ = Path(f"/proc/{cluster.processes[CONSOLE].pid}/environ").read_bytes().split(b"\0")
        names = {item.partition(b"=")[0].decode() for item in environ if item}
        assert "DATABASE_URL" not in names and "NUDGE_INTERNAL_TOKEN" not in names
        assert f"NUDGE_CONSOLE_PORT={port}".encode() in environ
    finally:
        assert cluster.stop()[CONSOLE] == 0  # SIGTERM: a clean exit


def test_the_banner_names_the_console_and_a_busy_console_port_stops_nudge_run(tmp_path):
    cluster = Cluster(database_url="postgresql://x", internal_token="t" * 16,
                      ports={n: 51000 + i for i, n in enumerate(SERVICES)},
                      metrics_ports={n: 9000 + i for i, n in enumerate(SERVICES)},
                      console=ConsoleProcess(18090, "127.0.0.1:8080"))
    text = local.banner(cluster, "app_1", {"admin": "nudge_a", "events": "nudge_e", "client": "nudge_c"})
    assert "console         http://127.0.0.1:18090" in text and "sign in with the admin key below" in text
    env = {"DATABASE_URL": "postgresql://x", "NUDGE_INTERNAL_TOKEN": "t" * 16}
    settings = {n: ServiceSettings.from_env(n, {**env, f"NUDGE_{n.upper()}_PORT": "0",
                                                f"NUDGE_{n.upper()}_METRICS_PORT": "0"}) for n in SERVICES}
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        console = ConsoleSettings.from_env({"NUDGE_CONSOLE_PORT": str(port)})
        assert local.busy_port(settings, {}, None, console=console) == (
            f"port {port} (NUDGE_CONSOLE_PORT, the console) on 127.0.0.1 is in use by another process")
