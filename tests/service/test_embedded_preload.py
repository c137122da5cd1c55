"""The embedded PostgreSQL loads extra libraries only when asked (the bench's
pg_stat_statements), and a server restarted to load them is still stopped when its process
exits, or earlier when released; a server already running without them is never restarted
under its other users. And it takes the connections of many service replicas at once."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import asyncpg

from nudgetools.cluster import REPO

# Run in a process of its own: the wheel stops its servers when the process that started
# them exits, which is what the test checks.
SCRIPT = textwrap.dedent("""
    import asyncio, json, sys
    from pathlib import Path
    import asyncpg
    from nudgetools import embedded

    async def preloaded(url):
        conn = await asyncpg.connect(url.replace("/nudge?", "/postgres?"))
        try:
            loaded = await conn.fetchval("SHOW shared_preload_libraries")
            statements = None
            if loaded:
                await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
                statements = await conn.fetchval("SELECT count(*) FROM pg_stat_statements")
            return loaded, statements
        finally:
            await conn.close()

    asked, default = Path(sys.argv[1]), Path(sys.argv[2])
    out = {}
    out["asked"] = asyncio.run(preloaded(embedded.start(asked, delete_on_exit=True, preload=["pg_stat_statements"])))
    out["default"] = asyncio.run(preloaded(embedded.start(default, delete_on_exit=True)))
    try:
        embedded.start(default, preload=["pg_stat_statements"])
        out["refused"] = None
    except RuntimeError as exc:
        out["refused"] = str(exc)
    out["pids"] = [embedded.server_pid(asked), embedded.server_pid(default)]
    embedded.release(asked)
    out["released_folder_left"] = (asked / "pgdata").exists()
    print(json.dumps(out))
    sys.stdout.flush()
    # Still running: the released server must be gone before this process exits.
    sys.stdin.readline()
""")


def running(pid: int) -> bool:
    """Whether the process exists and is not a zombie waiting for init to reap it."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


async def stopped(pids: list[int], within: float = 15.0) -> bool:
    # `pg_ctl stop -w` returns once the server has removed its pid file, a moment before the
    # postmaster process itself is gone.
    deadline = time.monotonic() + within
    while any(running(pid) for pid in pids):
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.1)
    return True


async def test_preload_loads_the_library_only_when_asked_and_the_server_still_stops(tmp_path):
    process = subprocess.Popen([sys.executable, "-c", SCRIPT, str(tmp_path / "asked"), str(tmp_path / "default")],
                               cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    try:
        line = await asyncio.wait_for(asyncio.to_thread(process.stdout.readline), 90)
        assert line, process.stderr.read()[-2000:]
        out = json.loads(line)
        asked, default = out["pids"]
        # Released while its process still runs: stopped and its data deleted already.
        assert await stopped([asked]) and not out["released_folder_left"]
        assert running(default)
    finally:
        stderr = process.communicate("\n", timeout=60)[1]
    assert process.returncode == 0, stderr[-2000:]

    loaded, statements = out["asked"]
    assert loaded == "pg_stat_statements" and statements > 0
    assert out["default"] == ["", None]
    assert "already runs without pg_stat_statements" in out["refused"]
    # The server not released stopped when its process exited.
    assert await stopped([default])


async def test_the_server_takes_more_connections_than_postgresql_by_default(database_url):
    # Two replicas of every service under load hold about 70, and the session's own four
    # services are up beside them: PostgreSQL's default of 100 was reached, and a replica
    # whose health probe could not connect stayed NOT_SERVING.
    opened = await asyncio.gather(*(asyncpg.connect(database_url) for _ in range(150)), return_exceptions=True)
    try:
        refused = [str(c) for c in opened if isinstance(c, BaseException)]
        assert not refused, refused[:3]
    finally:
        await asyncio.gather(*(c.close() for c in opened if not isinstance(c, BaseException)))
