"""`nudge run`'s checks before it starts anything, the database it names without secrets, and
its supervisor restarting a service that exits, with a backoff that says when it is capped."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from dataclasses import dataclass, field

import pytest

from nudgelib.config import SERVICES, ServiceSettings
from nudgelib.loops import Backoff
from nudgetools import local
from nudgetools.cluster import Cluster, cannot_listen
from nudgetools.database import redacted
from nudgetools.supervisor import Supervisor


@pytest.mark.parametrize(("url", "shown"), [
    ("postgresql://nudge:s3cret@db.example:5432/nudge", "postgresql://nudge@db.example:5432/nudge"),
    ("postgres://db.example/nudge?sslmode=require&password=s3cret", "postgres://db.example/nudge?sslmode=require"),
    ("postgresql://postgres:@/nudge?host=/tmp/pg", "postgresql://postgres@/nudge?host=/tmp/pg"),
    ("postgresql://db.example/nudge", "postgresql://db.example/nudge"),
])
def test_a_database_url_is_shown_without_its_password(url, shown):
    assert redacted(url) == shown


def test_a_port_another_process_listens_on_is_named_with_its_variable():
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        assert cannot_listen("127.0.0.1", port) == "is in use by another process"
        env = {"DATABASE_URL": "postgresql://x", "NUDGE_INTERNAL_TOKEN": "t" * 16, "NUDGE_DECISION_METRICS_PORT": str(port)}
        settings = {n: ServiceSettings.from_env(n, {**env, f"NUDGE_{n.upper()}_PORT": "0"}) for n in SERVICES}
        assert local.busy_port(settings) == (f"port {port} (NUDGE_DECISION_METRICS_PORT, decision) on 127.0.0.1 "
                                             "is in use by another process")
    assert cannot_listen("127.0.0.1", port) is None


def test_a_data_folder_is_held_by_one_nudge_run_at_a_time(tmp_path):
    lock = local.claim(tmp_path)
    try:
        # Another process, as a second `nudge run` would be.
        other = subprocess.run(
            [sys.executable, "-c", "import sys; from pathlib import Path; from nudgetools import local\n"
             "try:\n    local.claim(Path(sys.argv[1]))\nexcept local.FolderInUse as e:\n    print(e); sys.exit(2)",
             str(tmp_path)], capture_output=True, text=True, timeout=30)
        assert other.returncode == 2, other.stderr
        assert other.stdout.strip() == f"data folder {tmp_path} is in use by another `nudge run` (pid {os.getpid()})"
    finally:
        lock.close()
    local.claim(tmp_path).close()  # free again once the first one is done


@dataclass
class Scripted(Cluster):
    """A cluster whose services are small scripts, so the supervisor meets real processes."""

    scripts: dict[str, str] = field(default_factory=dict)

    def start(self, names: tuple[str, ...] | None = None) -> None:
        for name in names or tuple(self.scripts):
            self.processes[name] = subprocess.Popen([sys.executable, "-c", self.scripts[name]])


async def test_a_service_that_keeps_exiting_is_restarted_with_a_capped_backoff_while_the_rest_run():
    cluster = Scripted(database_url="postgresql://x", internal_token="t" * 16,
                       ports={"crashy": 9, "steady": 9}, metrics_ports={},
                       scripts={"crashy": "import sys; sys.exit(3)", "steady": "import time; time.sleep(60)"})
    cluster.start()
    steady = cluster.processes["steady"]
    lines: list[str] = []
    supervisor = Supervisor(cluster, backoff=Backoff(initial=0.05, multiplier=2.0, maximum=0.2, jitter=0.0),
                            poll=0.01, ready_timeout=5, say=lines.append)
    loop = asyncio.get_running_loop()
    steady_alive = False
    began = loop.time()
    supervisor.start()
    try:
        async with asyncio.timeout(20):
            while supervisor.restarts.get("crashy", 0) < 5:
                await asyncio.sleep(0.01)
        took = loop.time() - began
        steady_alive = steady.poll() is None
    finally:
        await supervisor.stop()
        for p in cluster.processes.values():
            p.kill()
            p.wait()
    assert lines[:2] == ["nudge run: crashy exited with status 3; restarting it in 0.05s",
                         "nudge run: crashy exited with status 3; restarting it in 0.1s"]
    assert lines[2] == ("nudge run: crashy exited with status 3; it keeps exiting (3 times in a row), "
                        "restarting it at most every 0.2s")
    assert took >= 0.05 + 0.1 + 0.2 + 0.2 + 0.2  # the pauses it announced were kept
    assert supervisor.restarts == {"crashy": 5}
    assert steady_alive and cluster.processes["steady"] is steady  # it kept running, never restarted


def nudge(*args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "NUDGE_DATA_DIR")}
    return subprocess.run([sys.executable, "-m", "nudgetools.cli", *args], capture_output=True, text=True,
                          env={**clean, **env}, timeout=30)


def test_reset_deletes_the_data_folder_only_when_confirmed_and_unused(tmp_path):
    folder = tmp_path / "data"
    (folder / "pgdata").mkdir(parents=True)
    (folder / "pgdata" / "PG_VERSION").write_text("18\n")
    (folder / "demo-keys.json").write_text("{}")

    unconfirmed = nudge("reset", NUDGE_DATA_DIR=str(folder))
    assert unconfirmed.returncode == 1 and folder.is_dir()
    assert unconfirmed.stderr.strip() == (f"nudge reset: this deletes {folder} (the embedded database and the "
                                          "demo keys); `nudge reset --yes` to do it")

    lock = local.claim(folder)  # as a running `nudge run` holds it
    try:
        held = nudge("reset", "--yes", NUDGE_DATA_DIR=str(folder))
    finally:
        lock.close()
    assert held.returncode == 2 and folder.is_dir()
    assert held.stderr.strip() == (f"nudge reset: data folder {folder} is in use by another `nudge run` "
                                   f"(pid {os.getpid()}); stop it first")

    (folder / "pgdata" / "postmaster.pid").write_text(f"{os.getpid()}\n{folder}/pgdata\n")  # a live server
    running = nudge("reset", "--yes", NUDGE_DATA_DIR=str(folder))
    assert running.returncode == 2 and folder.is_dir()
    assert f"PostgreSQL on {folder} is still running (pid {os.getpid()})" in running.stderr

    (folder / "pgdata" / "postmaster.pid").unlink()
    external = nudge("reset", "--yes", NUDGE_DATA_DIR=str(folder), DATABASE_URL="postgresql://db.example/nudge")
    assert external.returncode == 2 and folder.is_dir()

    done = nudge("reset", "--yes", NUDGE_DATA_DIR=str(folder))
    assert done.returncode == 0, done.stderr
    assert not folder.exists()
    assert done.stdout.strip() == f"deleted {folder}; the next `nudge run` or `nudge migrate` starts an empty database"
