"""The operator's `nudge` command: apps and keys, keys shown once, revocation."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import asyncpg

from nudgelib import accounts


def nudge(database_url: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DATABASE_URL": database_url}
    return subprocess.run([sys.executable, "-m", "nudgetools.cli", *args], capture_output=True, text=True,
                          env=env, timeout=60)


async def test_create_list_and_revoke(database_url):
    created = nudge(database_url, "apps", "create", "cli-shop")
    assert created.returncode == 0, created.stderr
    keys = dict(re.findall(r"^\s+(admin|events|client)\s+\S+\s+(nudge_\S+)$", created.stdout, re.M))
    assert set(keys) == {"admin", "events", "client"}

    conn = await asyncpg.connect(database_url)
    try:
        # Only hashes are stored, never the keys themselves.
        stored = await conn.fetch("SELECT key_hash FROM accounts.api_keys k JOIN accounts.apps a ON a.id = k.app_id"
                                  " WHERE a.name = 'cli-shop'")
        assert {bytes(r["key_hash"]) for r in stored} == {accounts.hash_key(k) for k in keys.values()}
    finally:
        await conn.close()

    assert "cli-shop" in nudge(database_url, "apps", "list").stdout
    duplicate = nudge(database_url, "apps", "create", "cli-shop")
    assert duplicate.returncode == 1 and "exists already" in duplicate.stderr

    key_id = keys["client"].split("_")[1]
    assert nudge(database_url, "keys", "revoke", key_id).returncode == 0
    listed = nudge(database_url, "keys", "list", "cli-shop").stdout
    assert re.search(rf"^{key_id}\s+client\s+messages:read\s+revoked", listed, re.M)
    assert nudge(database_url, "keys", "revoke", key_id).returncode == 1


def test_an_unknown_app_is_named(database_url):
    for command in (("keys", "list", "no-such-app"), ("keys", "create", "no-such-app", "--scope", "admin")):
        result = nudge(database_url, *command)
        assert result.returncode == 1 and "no app 'no-such-app'" in result.stderr, command
