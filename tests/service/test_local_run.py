"""Running Nudge locally: a service never shares its port with another process, and the CLI
says which database it uses and never starts an empty one by accident."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import grpc
import pytest

from nudgetools import embedded
from nudgetools.cluster import REPO, free_ports
from nudgetools.database import redacted
from tests.conftest import INTERNAL_TOKEN


def service_env(database_url: str, **extra: str) -> dict[str, str]:
    return {**os.environ, "DATABASE_URL": database_url, "NUDGE_INTERNAL_TOKEN": INTERNAL_TOKEN,
            "NUDGE_LOG_FORMAT": "json", "NUDGE_SEGMENTATION_METRICS_PORT": "0", **extra}


async def test_a_service_on_a_taken_port_exits_naming_it(database_url):
    # Another gRPC process holds the port with grpc's defaults (SO_REUSEPORT on Linux), with
    # which a second server would bind it too and silently take half of its calls.
    other = grpc.aio.server()
    port = other.add_insecure_port("127.0.0.1:0")
    await other.start()
    try:
        result = await asyncio.to_thread(
            subprocess.run, [sys.executable, "-m", "services.segmentation"], cwd=REPO, capture_output=True,
            text=True, timeout=30, env=service_env(database_url, NUDGE_SEGMENTATION_PORT=str(port)))
    finally:
        await other.stop(0)
    assert result.returncode == 2, result.stderr[-2000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last == (f"nudge-segmentation: configuration error: NUDGE_SEGMENTATION_PORT: cannot listen on "
                    f"127.0.0.1:{port} (in use by another process?)"), result.stderr[-2000:]


async def test_a_service_on_a_taken_metrics_port_exits_naming_it(database_url):
    held = socket.socket()
    held.bind(("127.0.0.1", 0))
    held.listen()
    metrics = held.getsockname()[1]
    try:
        result = await asyncio.to_thread(
            subprocess.run, [sys.executable, "-m", "services.segmentation"], cwd=REPO, capture_output=True,
            text=True, timeout=30, env=service_env(database_url, NUDGE_SEGMENTATION_PORT=str(free_ports(1)[0]),
                                                   NUDGE_SEGMENTATION_METRICS_PORT=str(metrics)))
    finally:
        held.close()
    assert result.returncode == 2, result.stderr[-2000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"nudge-segmentation: configuration error: NUDGE_SEGMENTATION_METRICS_PORT: cannot "
                           f"listen on 127.0.0.1:{metrics}"), result.stderr[-2000:]


def nudge(*args: str, cwd, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "NUDGE_DATA_DIR")}
    return subprocess.run([sys.executable, "-m", "nudgetools.cli", *args], capture_output=True, text=True,
                          cwd=cwd, env={**clean, **env}, timeout=60)


def with_password(url: str, password: str) -> str:
    # The test server trusts local connections: any password is accepted, and must not be shown.
    scheme, _, rest = url.partition("://")
    user, _, host = rest.partition("@")
    return f"{scheme}://{user.partition(':')[0]}:{password}@{host}"


def test_the_cli_says_which_database_it_uses_without_its_password(database_url, tmp_path):
    url = with_password(database_url, "s3cret-pw")
    listed = nudge("apps", "list", cwd=tmp_path, DATABASE_URL=url)
    assert listed.returncode == 0, listed.stderr
    assert listed.stderr.splitlines()[0] == f"database: {redacted(url)} (DATABASE_URL)"
    assert "s3cret-pw" not in listed.stderr + listed.stdout
    assert "database:" not in listed.stdout  # stdout is the apps, for scripts


@pytest.fixture
def outside_pytest_tmp():
    """A folder for a PostgreSQL of its own. Not under pytest's tmp_path: run as root, the
    server's user needs its parents readable, and every pytest started meanwhile (another
    worktree's) makes pytest's root folder private again."""
    with tempfile.TemporaryDirectory(prefix="nudge-test-") as folder:
        yield Path(folder)


def test_only_migrate_creates_a_missing_data_folder(outside_pytest_tmp):
    elsewhere, folder = outside_pytest_tmp / "elsewhere", outside_pytest_tmp / "data"
    elsewhere.mkdir()
    refused = nudge("apps", "list", cwd=elsewhere, NUDGE_DATA_DIR=str(folder))
    assert refused.returncode == 1
    assert refused.stderr.strip() == (f"nudge: no database in {folder}: `nudge run` or `nudge migrate` creates it "
                                      "(NUDGE_DATA_DIR or DATABASE_URL chooses another)")
    assert not folder.exists() and list(elsewhere.iterdir()) == []

    migrated = nudge("migrate", cwd=elsewhere, NUDGE_DATA_DIR=str(folder))
    assert migrated.returncode == 0, migrated.stderr
    assert migrated.stderr.splitlines()[:2] == [f"creating a database in {folder}",
                                                f"database: embedded PostgreSQL in {folder}"]
    listed = nudge("apps", "list", cwd=elsewhere, NUDGE_DATA_DIR=str(folder))
    assert listed.returncode == 0, listed.stderr
    assert listed.stderr.splitlines()[0] == f"database: embedded PostgreSQL in {folder}"
    assert list(elsewhere.iterdir()) == []


def test_the_cli_keeps_its_logs_off_stdout(tmp_path, database_url):
    # A database no migration has reached yet: the CLI applies them, and logs each.
    fresh = f"{database_url.partition('?')[0].rsplit('/', 1)[0]}/nudge_cli_fresh_{os.getpid()}"
    fresh += "?" + database_url.partition("?")[2] if "?" in database_url else ""
    asyncio.run(embedded.ensure_database(fresh))
    listed = nudge("apps", "list", cwd=tmp_path, DATABASE_URL=fresh)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout == ""  # no apps yet, and nothing else
    assert "migration_applied" in listed.stderr
