"""`nudge run` with TLS at the edge: the edge's own certificate checked before anything starts,
and the TLS port, not the plaintext one, checked and named."""

from __future__ import annotations

import asyncio
import socket

from nudgelib.config import SERVICES, ServiceSettings
from nudgetools import certs, local
from nudgetools.edge import EdgeSettings


def test_an_edge_key_that_is_not_its_certificates_stops_nudge_run_before_the_database(monkeypatch, capsys,
                                                                                      tmp_path):
    async def no_database() -> str:
        raise AssertionError("nudge run started the database despite a bad certificate")

    issued = certs.issue(tmp_path / "tls", names=("public", "edge"))
    monkeypatch.setattr(local, "database_url", no_database)
    monkeypatch.setenv("NUDGE_EDGE_TLS_CERT_FILE", str(issued.cert("public")))
    monkeypatch.setenv("NUDGE_EDGE_TLS_KEY_FILE", str(issued.key("edge")))
    assert asyncio.run(local.run_local(tmp_path / "data")) == 2
    assert capsys.readouterr().out == (
        f"nudge run: configuration error: NUDGE_EDGE_TLS_KEY_FILE: {issued.key('edge')} is not the key of the "
        f"certificate in NUDGE_EDGE_TLS_CERT_FILE ({issued.cert('public')})\n")


def test_with_tls_the_edges_tls_port_is_the_one_checked_and_named():
    env = {"DATABASE_URL": "postgresql://x", "NUDGE_INTERNAL_TOKEN": "t" * 16}
    settings = {n: ServiceSettings.from_env(n, {**env, f"NUDGE_{n.upper()}_PORT": "0",
                                               f"NUDGE_{n.upper()}_METRICS_PORT": "0"}) for n in SERVICES}
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        # The plaintext port is taken, the TLS port free: only a plaintext run is stopped.
        plain_taken = EdgeSettings.from_env({"NUDGE_EDGE_PORT": str(port), "NUDGE_EDGE_TLS_PORT": "1",
                                             "NUDGE_EDGE_ADMIN_PORT": "2"})
        assert local.busy_port(settings, edge=plain_taken, tls=False).startswith(f"port {port} (NUDGE_EDGE_PORT")
        tls_taken = EdgeSettings.from_env({"NUDGE_EDGE_TLS_PORT": str(port), "NUDGE_EDGE_PORT": "1",
                                           "NUDGE_EDGE_ADMIN_PORT": "2"})
        assert local.busy_port(settings, edge=tls_taken, tls=True) == (
            f"port {port} (NUDGE_EDGE_TLS_PORT, the edge) on 127.0.0.1 is in use by another process")
