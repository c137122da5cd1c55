"""`nudge user-token-keys`: an operator registers, lists and revokes the public keys an app's
backend signs user tokens with."""

from __future__ import annotations

import re

from tests.helpers import create_app
from tests.service.test_cli import nudge
from tests.signing import SigningKey


async def test_add_list_and_revoke_from_files(database_url, tmp_path):
    app = await create_app(database_url)
    es, rs = SigningKey("ES256"), SigningKey("RS256")
    (tmp_path / "es.pem").write_text(es.public_pem)
    (tmp_path / "rs.jwk").write_text(rs.public_jwk(kid="rs-2026"))

    added = nudge(database_url, "user-token-keys", "add", app.id, "--file", str(tmp_path / "es.pem"),
                  "--key-id", "es-2026")
    assert added.returncode == 0, added.stderr
    assert re.match(r"es-2026\s+ES256\s+added .*active$", added.stdout.strip())
    added = nudge(database_url, "user-token-keys", "add", app.id, "--file", str(tmp_path / "rs.jwk"))
    assert added.returncode == 0 and added.stdout.startswith("rs-2026  RS256"), added.stderr
    again = nudge(database_url, "user-token-keys", "add", app.id, "--file", str(tmp_path / "rs.jwk"))
    assert again.returncode == 0 and "unchanged" in again.stdout

    revoked = nudge(database_url, "user-token-keys", "revoke", "es-2026")
    assert revoked.returncode == 0 and f"revoked es-2026 of {app.id}" in revoked.stdout, revoked.stderr
    active = nudge(database_url, "user-token-keys", "list", app.id).stdout.split()
    assert "rs-2026" in active and "es-2026" not in active
    every = nudge(database_url, "user-token-keys", "list", app.id, "--all").stdout
    assert re.search(r"^es-2026\s+ES256\s+added \S+ \S+\s+revoked", every, re.M)
    assert re.search(r"^rs-2026\s+RS256\s+added \S+ \S+\s+active", every, re.M)


async def test_an_id_two_apps_use_needs_the_app(database_url, tmp_path):
    first, second = await create_app(database_url), await create_app(database_url)
    for app in (first, second):
        (tmp_path / f"{app.id}.pem").write_text(SigningKey("ES256").public_pem)
        assert nudge(database_url, "user-token-keys", "add", app.id, "--file", str(tmp_path / f"{app.id}.pem"),
                     "--key-id", "shared-id").returncode == 0
    ambiguous = nudge(database_url, "user-token-keys", "revoke", "shared-id")
    assert ambiguous.returncode == 1 and "--app" in ambiguous.stderr
    chosen = nudge(database_url, "user-token-keys", "revoke", "shared-id", "--app", second.id)
    assert chosen.returncode == 0, chosen.stderr
    assert "active" in nudge(database_url, "user-token-keys", "list", first.id).stdout
    assert nudge(database_url, "user-token-keys", "list", second.id).stdout == ""


async def test_a_private_key_or_an_unknown_id_is_refused_with_one_line(database_url, tmp_path):
    app = await create_app(database_url)
    (tmp_path / "private.pem").write_text(SigningKey("ES256").private_pem)
    result = nudge(database_url, "user-token-keys", "add", app.id, "--file", str(tmp_path / "private.pem"))
    assert result.returncode == 1 and "private key" in result.stderr
    assert nudge(database_url, "user-token-keys", "list", app.id).stdout == ""
    missing = nudge(database_url, "user-token-keys", "revoke", "no-such-key")
    assert missing.returncode == 1 and "no user token key 'no-such-key'" in missing.stderr
