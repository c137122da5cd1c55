"""`nudge run` as a user starts it: a service killed is restarted while the others keep
serving; a second run on the same data folder or ports stops before its banner, naming
which; the demo shop's server is supervised like the services; SIGTERM stops everything."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from grpc_health.v1 import health_pb2

from nudgelib.config import SERVICES
from nudgetools import health
from nudgetools.cluster import REPO, free_ports
from nudgetools.edge import admin_get
from tests.conftest import INTERNAL_TOKEN, eventually, prepare_database
from tests.consoles import signs_in
from tests.web_site import built_site

pytestmark = pytest.mark.e2e

SERVING = health_pb2.HealthCheckResponse.SERVING


def children(pid: int) -> dict[str, int]:
    """The services a process started, by name, the edge as `edge`, the demo shop's server as
    `demo` and the web console as `console` (from /proc: their command lines)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if int(stat.rpartition(")")[2].split()[1]) != pid:
            continue
        if cmdline[0].endswith(b"/envoy"):
            found["edge"] = int(entry.name)
        elif b"-m" in cmdline:
            module = cmdline[cmdline.index(b"-m") + 1].decode()
            if module.startswith("services."):
                found[module.removeprefix("services.")] = int(entry.name)
            elif module == "nudgetools.demo_server":
                found["demo"] = int(entry.name)
            elif module == "console":
                found["console"] = int(entry.name)
    return found


def banner_commands(banner: str) -> list[str]:
    """The banner's `export` lines and each `buf curl` command, as one shell script each."""
    lines = banner.splitlines()
    exports = "; ".join(line.strip() for line in lines if line.strip().startswith("export NUDGE_"))
    commands, current = [], []
    for line in lines:
        if line.strip().startswith("buf curl") or current:
            current.append(line.strip().removesuffix("\\"))
            if not line.endswith("\\"):
                commands.append(" ".join(current))
                current = []
    return [f"{exports}; {c}" for c in commands]


def shell(script: str, cwd: Path) -> str:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(["bash", "-c", script], cwd=cwd, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


def run_env(database_url: str, data_dir: Path, ports: list[int]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUDGE_")}
    env.update({"DATABASE_URL": database_url, "NUDGE_DATA_DIR": str(data_dir), "NUDGE_INTERNAL_TOKEN": INTERNAL_TOKEN,
                "NUDGE_LOG_FORMAT": "json", "NUDGE_LOG_LEVEL": "warning", "NUDGE_SHUTDOWN_GRACE_SECONDS": "1"})
    for i, name in enumerate(SERVICES):
        env[f"NUDGE_{name.upper()}_PORT"] = str(ports[i])
        env[f"NUDGE_{name.upper()}_METRICS_PORT"] = str(ports[4 + i])
    # The edge's ports follow the services' (a run beside this one may hold 8080), then the shop's.
    env["NUDGE_EDGE_PORT"], env["NUDGE_EDGE_ADMIN_PORT"] = str(ports[8]), str(ports[9])
    env["NUDGE_DEMO_PORT"] = str(ports[10])
    # The console's port, free now (the callers' ports lists are theirs to use).
    env["NUDGE_CONSOLE_PORT"] = str(free_ports(1)[0])
    return env


def nudge_run(env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "nudgetools.cli", "run"], cwd=REPO, env=env,
                            stdout=open(log.with_suffix(".out"), "w"), stderr=open(log.with_suffix(".err"), "w"))


@pytest.fixture(scope="module")
def local_database(database_url) -> str:
    """A database of its own: its demo app and its services stay apart from the other clusters."""
    base, _, query = database_url.partition("?")
    url = f"{base.rsplit('/', 1)[0]}/nudge_local_run" + (f"?{query}" if query else "")
    asyncio.run(prepare_database(url))
    return url


@pytest.mark.timeout(300)  # the demo page is built first when it is not yet
async def test_nudge_run_restarts_a_killed_service_refuses_a_second_run_and_stops_on_sigterm(
        local_database, tmp_path):
    built_site()  # as `make run` builds it before `nudge run`
    data_dir, ports = tmp_path / "data", free_ports(11)
    env = run_env(local_database, data_dir, ports)
    targets = {name: f"127.0.0.1:{ports[i]}" for i, name in enumerate(SERVICES)}
    log = tmp_path / "run"
    run = nudge_run(env, log)
    try:
        out, err = log.with_suffix(".out"), log.with_suffix(".err")

        async def banner() -> bool:
            assert run.poll() is None, err.read_text()
            return "Nudge is running." in out.read_text()

        await eventually(banner, timeout=90, interval=0.2)
        started = children(run.pid)
        assert set(started) == {*SERVICES, "edge", "demo", "console"}
        # The banner's examples work as printed, through the edge: u1 signs up, then gets the
        # welcome modal (once segmentation has applied the signup).
        printed = out.read_text()
        assert f"http://127.0.0.1:{ports[8]}/nudge.delivery.v1.DeliveryService/FetchMessages" in printed
        # The web console beside them, its sign-in page served.
        console_port = int(env["NUDGE_CONSOLE_PORT"])
        assert f"http://127.0.0.1:{console_port}" in printed
        assert (await admin_get("127.0.0.1", console_port, "/login"))[0] == 200
        admin_key = re.search(r"export NUDGE_ADMIN_KEY=(\S+)", printed).group(1)
        assert await signs_in(f"http://127.0.0.1:{console_port}", admin_key)  # through the edge
        track_command, fetch_command = banner_commands(printed)
        tracked = await asyncio.to_thread(shell, track_command, cwd=REPO)
        assert json.loads(tracked) == {"acceptedCount": 1}

        async def welcomed() -> bool:
            reply = json.loads(await asyncio.to_thread(shell, fetch_command, cwd=REPO))
            return [m["content"]["title"] for m in reply.get("messages", [])] == ["Welcome to Nudge!"]

        await eventually(welcomed, timeout=20, interval=0.3)

        # A second `nudge run` on the same folder, or on the same ports, stops before its banner.
        second = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "nudgetools.cli", "run"], cwd=REPO,
                                         env=run_env(local_database, data_dir, free_ports(11)),
                                         capture_output=True, text=True, timeout=30)
        assert (second.returncode, second.stdout) == (
            2, f"nudge run: data folder {data_dir} is in use by another `nudge run` (pid {run.pid})\n")
        other_folder = tmp_path / "other"
        third = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "nudgetools.cli", "run"], cwd=REPO,
                                        env=run_env(local_database, other_folder, ports),
                                        capture_output=True, text=True, timeout=30)
        assert (third.returncode, third.stdout) == (
            2, f"nudge run: port {ports[0]} (NUDGE_INGESTION_PORT, ingestion) on 127.0.0.1 "
               "is in use by another process\n")
        assert not other_folder.exists()

        os.kill(started["decision"], signal.SIGKILL)
        for _ in range(3):  # the others keep serving while decision is away
            for name in ("ingestion", "segmentation", "delivery"):
                assert await health.status(targets[name]) == SERVING, name
            await asyncio.sleep(0.1)

        async def decision_back() -> bool:
            return "nudge run: decision is serving again" in err.read_text()

        await eventually(decision_back, timeout=60, interval=0.2)
        assert "nudge run: decision was killed by signal 9; restarting it in" in err.read_text()
        assert await health.status(targets["decision"]) == SERVING
        now = children(run.pid)
        assert now["decision"] != started["decision"]
        assert {n: now[n] for n in now if n != "decision"} == {n: started[n] for n in started if n != "decision"}
        assert run.poll() is None

        # The edge is supervised like the services: killed, it is started again, and the
        # banner's commands work through it as before.
        os.kill(now["edge"], signal.SIGKILL)

        async def edge_back() -> bool:
            return "nudge run: edge is serving again" in err.read_text()

        await eventually(edge_back, timeout=60, interval=0.2)
        again = json.loads(await asyncio.to_thread(shell, track_command, cwd=REPO))
        assert again == {"acceptedCount": 1, "duplicateCount": 1}  # the same event e1, once more
        now = children(run.pid)
        assert now["edge"] != started["edge"]

        # The demo shop, at the address the banner gives, tells its page where the edge is and
        # which key to use (the banner's public key); killed, it is started again.
        shop = f"http://127.0.0.1:{ports[10]}"
        assert f"demo shop       {shop}/" in printed
        public_key = next(line.split("=", 1)[1] for line in printed.splitlines()
                          if line.strip().startswith("export NUDGE_PUBLIC_KEY="))
        assert await asyncio.to_thread(get_json, f"{shop}/config.json") == {
            "endpoint": f"http://127.0.0.1:{ports[8]}", "apiKey": public_key}
        os.kill(now["demo"], signal.SIGKILL)

        async def demo_back() -> bool:
            return "nudge run: demo is serving again" in err.read_text()

        await eventually(demo_back, timeout=60, interval=0.2)
        assert (await asyncio.to_thread(get_json, f"{shop}/token?user=u1"))["expires_in"] > 0
        now = children(run.pid)
        assert now["demo"] != started["demo"]

        run.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(run.wait, 60) == 0, err.read_text()
        assert not [n for n, pid in now.items() if alive(pid)]
    finally:
        # Its children are found before it dies: once it has, they belong to pid 1 (a failed
        # assertion would otherwise leave the services and the edge running).
        left = children(run.pid)
        if run.poll() is None:
            run.kill()
            run.wait()
        for pid in left.values():
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
