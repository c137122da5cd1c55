"""docker-compose.tls.yml, the TLS layer over docker-compose.yml: valid against the compose
specification, each service given its own certificate at the paths its settings name, the edge
on the committed TLS config with every file it reads, and the services' health probe (run for
real here against a server requiring client certificates) passing only while SERVING and only
with a certificate the CA signed."""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from nudgelib.tls import TlsFiles
from nudgetools import certs, edge
from tests.unit.test_compose import SERVICES, _check_jsonschema, _load_yaml, command, environment, host_ports

ROOT = Path(__file__).resolve().parents[2]
TLS_COMPOSE = ROOT / "docker-compose.tls.yml"
LIBS = ROOT / "libs"


@pytest.fixture(scope="module")
def layer() -> dict[str, Any]:
    return _load_yaml(TLS_COMPOSE)


def mounts(service: dict[str, Any]) -> dict[str, str]:
    """Container path -> host path (as written, its variable's default or its name left in)."""
    found = {}
    for volume in service.get("volumes") or []:
        source, target = str(volume).rsplit(":", 2)[:2] if str(volume).endswith(":ro") else str(volume).split(":")
        found[target] = source
    return found


def test_the_tls_layer_matches_the_compose_specification() -> None:
    result = _check_jsonschema(TLS_COMPOSE)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", list(SERVICES))
def test_each_service_gets_its_own_certificate_where_its_settings_say(layer, name: str) -> None:
    service = layer["services"][name]
    env = environment(service)
    files = mounts(service)
    assert files[env["NUDGE_TLS_CERT_FILE"]].endswith(f"/{name}.crt")
    assert files[env["NUDGE_TLS_KEY_FILE"]].endswith(f"/{name}.key")
    assert files[env["NUDGE_TLS_CA_FILE"]].endswith("/ca.crt")
    # The folder is required, with a message saying so.
    assert all(source.startswith("${NUDGE_TLS_DIR:?") for source in files.values())
    assert service["healthcheck"]["test"] == ["CMD", "python", "-m", "nudgetools.health", str(SERVICES[name][0]), name]


def test_the_edge_runs_the_committed_tls_config_with_every_file_it_reads(layer) -> None:
    service = layer["services"]["edge"]
    cmd = command(service)
    # nudgetools.edge --run sets the origins, then becomes Envoy on the config it names.
    assert cmd[:4] == ["python", "-m", "nudgetools.edge", "--run"]
    config = cmd[4]
    files = mounts(service)
    assert files[config] == "./" + str(edge.COMMITTED_TLS[0].relative_to(ROOT))
    assert set(edge.TLS_FILES.values()) <= set(files)
    # The transcoder's descriptor set comes from the base file's mounts (merged by path).
    assert ("8443", "8443") in host_ports(service)


@pytest.fixture(scope="module")
def issued(tmp_path_factory) -> certs.LocalCerts:
    return certs.issue(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def mutual_health_server(issued):
    files = TlsFiles(issued.cert("decision").read_bytes(), issued.key("decision").read_bytes(),
                     issued.ca.read_bytes())
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_secure_port("127.0.0.1:0", files.server_credentials())
    server.start()
    try:
        yield servicer, port
    finally:
        server.stop(None)


def probe(port: int, env: dict[str, str], service: str = "decision") -> int:
    base = {k: v for k, v in os.environ.items() if not k.startswith("NUDGE_TLS_")}
    base["PYTHONPATH"] = os.pathsep.join([str(LIBS), base.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, "-m", "nudgetools.health", str(port), service], env={**base, **env},
                          capture_output=True, text=True, timeout=30).returncode


def test_the_health_probe_speaks_mutual_tls_with_the_services_own_certificate(mutual_health_server, issued,
                                                                            tmp_path) -> None:
    servicer, port = mutual_health_server
    own = issued.env("decision")
    servicer.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
    assert probe(port, own) == 1
    servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    assert probe(port, own) == 0
    # Plaintext, or the CA alone (no client certificate): refused, so the probe fails.
    assert probe(port, {}) == 1
    assert probe(port, {"NUDGE_TLS_CA_FILE": own["NUDGE_TLS_CA_FILE"]}) == 1
    # A certificate of another CA.
    assert probe(port, certs.issue(tmp_path / "other", names=("decision",)).env("decision")) == 1
    # The server's certificate is checked for the service the probe names.
    assert probe(port, own, service="delivery") == 1
