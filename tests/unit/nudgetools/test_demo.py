"""The demo app of `nudge run`: created once, and the same keys printed on every restart."""

from __future__ import annotations

import json
import secrets
import stat

import pytest

from nudgetools import demo


@pytest.fixture
def demo_app(monkeypatch) -> str:
    # A name of its own: the test database is shared, and may outlive one run.
    name = f"demo-{secrets.token_hex(4)}"
    monkeypatch.setattr(demo, "APP", name)
    return name


async def test_the_demo_app_keeps_its_keys_across_restarts(database_url, tmp_path, demo_app):
    keys_file = tmp_path / "demo-keys.json"
    app_id, keys, created = await demo.app_keys(database_url, keys_file)
    assert created and set(keys) == {"admin", "events", "client"}
    assert stat.S_IMODE(keys_file.stat().st_mode) == 0o600  # the keys are secrets

    assert await demo.app_keys(database_url, keys_file) == (app_id, keys, False)

    # Keys are stored hashed only: with the file gone, the same app gets new keys.
    keys_file.unlink()
    again_id, new_keys, created = await demo.app_keys(database_url, keys_file)
    assert (again_id, created) == (app_id, False)
    assert set(new_keys) == set(keys) and not set(new_keys.values()) & set(keys.values())
    assert json.loads(keys_file.read_text()) == {"app_id": app_id, "keys": new_keys}
