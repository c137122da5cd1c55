"""The database a tool works on, and its schemas.

`DATABASE_URL` when set; otherwise the embedded PostgreSQL in `NUDGE_DATA_DIR` (default
`.nudge`), started if it is not running. Shared by the CLI and the local runner.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from nudgelib import accounts, db
from nudgelib.config import SERVICES
from nudgetools import embedded


def data_dir() -> Path:
    return Path(os.environ.get("NUDGE_DATA_DIR", ".nudge"))


async def database_url() -> str:
    url = os.environ.get("DATABASE_URL", "").strip()
    if url:
        return url
    url = embedded.start(data_dir())
    await embedded.ensure_database(url)
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
