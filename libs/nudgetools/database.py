"""The database a tool works on, and its schemas.

`DATABASE_URL` when set; otherwise the embedded PostgreSQL in the data folder (`data_dir`),
started if it is not running. Shared by the CLI and the local runner, which say on stderr
which database they use (`describe`).

The data folder is `NUDGE_DATA_DIR` when set, else `.nudge` in the Nudge checkout, wherever
the command is run from: a `nudge` run from another directory finds the same data. Only
`nudge run` and `nudge migrate` create a missing one (and say so); the other commands refuse
with one line rather than start an empty database.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from nudgelib import accounts, db
from nudgelib.config import SERVICES
from nudgetools import embedded
from nudgetools.cluster import REPO


class DataFolderError(RuntimeError):
    """There is no data folder to use; the message says what to do."""


def data_dir(env: Mapping[str, str] | None = None) -> Path:
    """The data folder (embedded PostgreSQL's `pgdata`, the demo keys), as an absolute path."""
    env = os.environ if env is None else env
    raw = env.get("NUDGE_DATA_DIR", "").strip()
    if raw:
        return Path(raw).expanduser().resolve()
    # The checkout this package runs from (an editable install, as `make` makes); a copy
    # installed elsewhere has none, and needs NUDGE_DATA_DIR for embedded data.
    if (REPO / "pyproject.toml").is_file():
        return REPO / ".nudge"
    raise DataFolderError("no data folder: set NUDGE_DATA_DIR (for the embedded PostgreSQL) or DATABASE_URL")


def has_database(folder: Path) -> bool:
    """Whether the folder holds an initialised embedded PostgreSQL."""
    return (folder / "pgdata" / "PG_VERSION").is_file()


def redacted(url: str) -> str:
    """The URL without its password (in the authority or as a `password` parameter)."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")
        netloc = f"{userinfo.partition(':')[0]}@{host}"
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "password"],
                      safe="/")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def say(line: str) -> None:
    # stderr: what a command prints on stdout (keys, lists) stays clean for scripts.
    print(line, file=sys.stderr, flush=True)


async def database_url(create: bool = False) -> str:
    """The URL to use, starting the embedded server if that is the one. A missing data folder
    is created only if `create` (nudge run, nudge migrate); else DataFolderError."""
    url = os.environ.get("DATABASE_URL", "").strip()
    if url:
        say(f"database: {redacted(url)} (DATABASE_URL)")
        return url
    folder = data_dir()
    if not has_database(folder):
        if not create:
            raise DataFolderError(
                f"no database in {folder}: `nudge run` or `nudge migrate` creates it "
                "(NUDGE_DATA_DIR or DATABASE_URL chooses another)")
        say(f"creating a database in {folder}")
    url = embedded.start(folder)
    await embedded.ensure_database(url)
    say(f"database: embedded PostgreSQL in {folder}")
    return url


def service_migrations(name: str) -> Path:
    """The service's migrations folder, wherever the package is installed (source tree,
    editable install or image), found without importing the service."""
    spec = importlib.util.find_spec(f"services.{name}")
    if spec is None or spec.origin is None:
        raise RuntimeError(f"service package services.{name} is not installed")
    return Path(spec.origin).parent / "migrations"


async def migrate_all(url: str) -> None:
    """Applies the accounts schema and every service's schema to one database."""
    await db.migrate(url, accounts.SCHEMA, accounts.MIGRATIONS)
    for name in SERVICES:
        await db.migrate(url, name, service_migrations(name))
