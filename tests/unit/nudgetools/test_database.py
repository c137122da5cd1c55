"""The database a tool works on: DATABASE_URL when set, and every service's migrations."""

from __future__ import annotations

import asyncio

import pytest

from nudgelib.config import SERVICES
from nudgetools import database


def test_database_url_wins_over_the_embedded_server(monkeypatch):
    def no_embedded(*args, **kwargs):
        raise AssertionError("the embedded server was started although DATABASE_URL is set")

    monkeypatch.setattr(database.embedded, "start", no_embedded)
    monkeypatch.setenv("DATABASE_URL", " postgresql://db.example/nudge ")
    assert asyncio.run(database.database_url()) == "postgresql://db.example/nudge"


def test_the_data_folder_is_nudge_data_dir(monkeypatch, tmp_path):
    monkeypatch.delenv("NUDGE_DATA_DIR", raising=False)
    assert str(database.data_dir()) == ".nudge"
    monkeypatch.setenv("NUDGE_DATA_DIR", str(tmp_path))
    assert database.data_dir() == tmp_path


@pytest.mark.parametrize("service", SERVICES)
def test_every_service_has_its_migrations_found(service):
    assert sorted(database.service_migrations(service).glob("*.sql")), service


def test_an_unknown_service_is_named():
    with pytest.raises(RuntimeError, match="services.billing is not installed"):
        database.service_migrations("billing")
