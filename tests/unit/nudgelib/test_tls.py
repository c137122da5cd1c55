"""The TLS settings (nudgelib.tls): all three files or none, each read and checked at start, and
a bad one named in one line, by the loader and by a service process that is given it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from nudgelib.config import ConfigError, ServiceSettings, TlsSettings
from nudgelib.tls import client_credentials, load
from nudgetools import certs
from nudgetools.cluster import REPO


@pytest.fixture(scope="module")
def issued(tmp_path_factory) -> certs.LocalCerts:
    return certs.issue(tmp_path_factory.mktemp("tls"), names=("decision", "delivery"))


def settings(c: certs.LocalCerts, name: str = "decision", **changes: str) -> TlsSettings:
    values = {"cert_file": str(c.cert(name)), "key_file": str(c.key(name)), "ca_file": str(c.ca), **changes}
    return TlsSettings(**values)


def test_tls_is_off_unless_configured_and_on_with_all_three(issued):
    assert load(TlsSettings()) is None
    files = load(settings(issued))
    assert files is not None and files.cert == issued.cert("decision").read_bytes()
    assert files.ca == issued.ca.read_bytes()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("NUDGE_TLS_")},
           "DATABASE_URL": "postgresql://x", "NUDGE_INTERNAL_TOKEN": "t" * 16, **issued.env("decision")}
    assert ServiceSettings.from_env("decision", env).tls == settings(issued)


@pytest.mark.parametrize(("changes", "message"), [
    ({"ca_file": ""}, "NUDGE_TLS_CA_FILE must be set too: mutual TLS needs a certificate, its key and the CA "
                      "(got only NUDGE_TLS_CERT_FILE, NUDGE_TLS_KEY_FILE)"),
    ({"cert_file": "", "key_file": ""}, "NUDGE_TLS_CERT_FILE, NUDGE_TLS_KEY_FILE must be set too"),
    ({"ca_file": "/nonexistent/ca.crt"}, "NUDGE_TLS_CA_FILE: cannot read /nonexistent/ca.crt: No such file or directory"),
    ({"cert_file": "/nonexistent/x.crt"}, "NUDGE_TLS_CERT_FILE: cannot read /nonexistent/x.crt"),
])
def test_a_missing_setting_or_file_is_named(issued, changes, message):
    with pytest.raises(ConfigError) as error:
        load(settings(issued, **changes))
    assert str(error.value).startswith(message)


def test_a_key_that_is_not_the_certificates_is_named(issued):
    with pytest.raises(ConfigError) as error:
        load(settings(issued, key_file=str(issued.key("delivery"))))
    assert str(error.value) == (f"NUDGE_TLS_KEY_FILE: {issued.key('delivery')} is not the key of the certificate in "
                                f"NUDGE_TLS_CERT_FILE ({issued.cert('decision')})")


def test_files_that_are_not_pem_are_named(issued, tmp_path):
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    for field, name in (("cert_file", "NUDGE_TLS_CERT_FILE"), ("ca_file", "NUDGE_TLS_CA_FILE")):
        with pytest.raises(ConfigError, match=f"^{name}: {junk} holds no PEM certificate$"):
            load(settings(issued, **{field: str(junk)}))
    with pytest.raises(ConfigError, match=f"^NUDGE_TLS_KEY_FILE: {junk} is not a PEM private key$"):
        load(settings(issued, key_file=str(junk)))
    # A certificate given as the key.
    with pytest.raises(ConfigError, match="^NUDGE_TLS_KEY_FILE: .* is not a PEM private key$"):
        load(settings(issued, key_file=str(issued.cert("decision"))))


def test_the_tools_trust_the_ca_and_present_a_certificate_only_when_given_one(issued):
    assert client_credentials({}) is None
    assert client_credentials({"NUDGE_TLS_CA_FILE": str(issued.ca)}) is not None
    assert client_credentials(issued.env("decision")) is not None
    with pytest.raises(ConfigError, match="^NUDGE_TLS_CA_FILE must be set too"):
        client_credentials({"NUDGE_TLS_CERT_FILE": str(issued.cert("decision"))})
    with pytest.raises(ConfigError, match="^NUDGE_TLS_KEY_FILE must be set too"):
        client_credentials({"NUDGE_TLS_CA_FILE": str(issued.ca), "NUDGE_TLS_CERT_FILE": str(issued.cert("decision"))})


def test_a_service_given_a_bad_key_stops_at_start_with_one_line(issued):
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUDGE_")}
    # No database is reachable there: the certificates are checked before it is looked for.
    env.update({"DATABASE_URL": "postgresql://nobody@127.0.0.1:9/none", "NUDGE_INTERNAL_TOKEN": "t" * 16,
                "NUDGE_DECISION_METRICS_PORT": "0", "PYTHONPATH": os.pathsep.join([str(REPO / "libs"), str(REPO)]),
                **issued.env("decision"), "NUDGE_TLS_KEY_FILE": str(issued.key("delivery"))})
    result = subprocess.run([sys.executable, "-m", "services.decision"], cwd=REPO, env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [(
        f"nudge-decision: configuration error: NUDGE_TLS_KEY_FILE: {issued.key('delivery')} is not the key of the "
        f"certificate in NUDGE_TLS_CERT_FILE ({issued.cert('decision')})")]


def test_local_certificates_are_kept_across_runs(tmp_path: Path):
    first = certs.issue(tmp_path, names=("decision",))
    before = (first.ca.read_bytes(), first.cert("decision").read_bytes())
    again = certs.issue(tmp_path, names=("decision", "delivery"))
    assert (again.ca.read_bytes(), again.cert("decision").read_bytes()) == before
    assert again.cert("delivery").exists()
    assert oct(again.key("delivery").stat().st_mode & 0o777) == "0o600"
