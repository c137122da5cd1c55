"""The database a tool works on: DATABASE_URL when set, and every service's migrations."""

from __future__ import annotations

import asyncio

import pytest

from nudgelib.config import SERVICES
from nudgetools import database
from nudgetools.cluster import REPO


def test_database_url_wins_over_the_embedded_server(monkeypatch):
    def no_embedded(*args, **kwargs):
        raise AssertionError("the embedded server was started although DATABASE_URL is set")

    monkeypatch.setattr(database.embedded, "start", no_embedded)
    monkeypatch.setenv("DATABASE_URL", " postgresql://db.example/nudge ")
    assert asyncio.run(database.database_url()) == "postgresql://db.example/nudge"


def test_the_data_folder_is_the_checkouts_wherever_nudge_runs(monkeypatch, tmp_path):
    monkeypatch.delenv("NUDGE_DATA_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    assert database.data_dir() == REPO / ".nudge"
    monkeypatch.setenv("NUDGE_DATA_DIR", "here")  # an explicit one is taken relative to where it is given
    assert database.data_dir() == tmp_path / "here"


@pytest.mark.parametrize("service", SERVICES)
def test_every_service_has_its_migrations_found(service):
    assert sorted(database.service_migrations(service).glob("*.sql")), service


def test_an_unknown_service_is_named():
    with pytest.raises(RuntimeError, match="services.billing is not installed"):
        database.service_migrations("billing")
