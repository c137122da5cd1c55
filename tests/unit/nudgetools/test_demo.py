"""The demo app of `nudge run`: created once, and the same keys printed on every restart; the
shop page's signing key made once and registered as the app's user token key."""

from __future__ import annotations

import json
import secrets
import stat

import asyncpg
import pytest

from nudgelib import accounts, user_token_keys
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
    assert created and set(keys) == {"admin", "events", "client", "public"}
    assert stat.S_IMODE(keys_file.stat().st_mode) == 0o600  # the keys are secrets

    assert await demo.app_keys(database_url, keys_file) == (app_id, keys, False)

    # Keys are stored hashed only: with the file gone, the same app gets new keys.
    keys_file.unlink()
    again_id, new_keys, created = await demo.app_keys(database_url, keys_file)
    assert (again_id, created) == (app_id, False)
    assert set(new_keys) == set(keys) and not set(new_keys.values()) & set(keys.values())
    assert json.loads(keys_file.read_text()) == {"app_id": app_id, "keys": new_keys}


async def test_a_data_folder_from_before_the_shop_gets_a_public_key(database_url, tmp_path, demo_app):
    keys_file = tmp_path / "demo-keys.json"
    app_id, keys, _ = await demo.app_keys(database_url, keys_file)
    older = {k: v for k, v in keys.items() if k != "public"}
    keys_file.write_text(json.dumps({"app_id": app_id, "keys": older}))
    _, again, created = await demo.app_keys(database_url, keys_file)
    assert not created and {k: again[k] for k in older} == older and again["public"] != keys["public"]
    conn = await asyncpg.connect(database_url)
    try:
        scopes = {k.label: list(k.scopes) for k in await accounts.list_keys(conn, app_id, include_revoked=False)}
    finally:
        await conn.close()
    assert scopes["public"] == ["public"]


async def test_the_shop_signing_key_is_made_once_and_registered_once(database_url, tmp_path, demo_app):
    app_id, _, _ = await demo.app_keys(database_url, tmp_path / "demo-keys.json")
    signer, registered = await demo.shop_signer(database_url, app_id, tmp_path)
    assert registered and signer.kid == "demo-shop"
    assert stat.S_IMODE(signer.key_file.stat().st_mode) == 0o600  # the private half
    pem = signer.key_file.read_bytes()
    again, registered = await demo.shop_signer(database_url, app_id, tmp_path)
    assert (again, registered, again.key_file.read_bytes()) == (signer, False, pem)
    conn = await asyncpg.connect(database_url)
    try:
        [key] = await user_token_keys.list_keys(conn, app_id)
    finally:
        await conn.close()
    assert (key.kid, key.algorithm, key.revoked_at) == ("demo-shop", "ES256", None)


def test_the_shop_campaigns_react_only_to_the_shop_page():
    campaigns = demo.shop_campaigns()
    assert [c.key for c in campaigns] == ["shop-welcome", "shop-abandoned-cart", "shop-checkout-survey"]
    for c in campaigns:
        [trigger] = c.triggers
        assert [(f.name, f.value.string_value) for f in trigger.property_filters][0] == ("source", "shop"), c.key
