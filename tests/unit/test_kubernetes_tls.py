"""deploy/kubernetes/components/tls: the prod overlay with the TLS component renders, every
object is valid against the Kubernetes schemas, and the objects are wired as the services and
the edge expect: each service's certificate Secret where its settings look, probes that speak
mutual TLS (kubelet's gRPC probes cannot), the edge on the committed TLS config and its TLS
port only. The prod overlay names the component, commented out until the Secrets exist."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from nudgelib.config import DEFAULT_PORTS
from nudgetools import edge as edge_config
from tests.unit.test_kubernetes import KUBE, KUBERNETES_VERSIONS, config_map, container, objects, render, schema_errors

SERVICES = tuple(DEFAULT_PORTS)


@pytest.fixture(scope="module")
def docs(tmp_path_factory) -> list[dict[str, Any]]:
    """prod with the component, as an operator's overlay would add it."""
    folder = tmp_path_factory.mktemp("overlay")
    up = Path(os.path.relpath(KUBE, folder))
    (folder / "kustomization.yaml").write_text(yaml.safe_dump({
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
        "resources": [str(up / "overlays" / "prod")], "components": [str(up / "components" / "tls")]}))
    return render(folder)


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_object_is_valid_against_the_kubernetes_schemas(docs, version: str) -> None:
    errors = schema_errors(docs, version)
    assert not errors, "\n".join(errors)


def test_the_prod_overlay_names_the_component_commented_out() -> None:
    text = (KUBE / "overlays" / "prod" / "kustomization.yaml").read_text()
    assert "# components:\n#   - ../../components/tls\n" in text


def volume_at(deployment: dict[str, Any], path: str) -> dict[str, Any]:
    [mount] = [m for m in container(deployment)["volumeMounts"] if m["mountPath"] == path]
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    return volumes[mount["name"]]


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_reads_its_own_certificate_and_its_probes_speak_mutual_tls(docs, service: str) -> None:
    config = config_map(docs, "nudge-config")["data"]
    files = [Path(config[f"NUDGE_TLS_{n}_FILE"]) for n in ("CERT", "KEY", "CA")]
    assert [f.name for f in files] == ["tls.crt", "tls.key", "ca.crt"]  # cert-manager's keys
    assert len({f.parent for f in files}) == 1
    deployment = objects(docs, "Deployment")[service]
    assert volume_at(deployment, str(files[0].parent))["secret"]["secretName"] == f"nudge-tls-{service}"
    assert deployment["spec"]["template"]["spec"]["securityContext"]["fsGroup"] == 10001
    c = container(deployment)
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert "grpc" not in c[probe], probe
        assert c[probe]["exec"]["command"] == ["python", "-m", "nudgetools.health", str(DEFAULT_PORTS[service]),
                                               service]


def test_the_edge_runs_the_tls_config_on_its_tls_port_only(docs) -> None:
    deployment = objects(docs, "Deployment")["edge"]
    c = container(deployment)
    assert c["command"][:5] == ["python", "-m", "nudgetools.edge", "--run", "/etc/envoy/envoy-tls.yaml"]
    envoy = config_map(docs, "nudge-envoy")
    assert volume_at(deployment, "/etc/envoy")["configMap"]["name"] == envoy["metadata"]["name"]
    assert envoy["data"]["envoy-tls.yaml"] == edge_config.COMMITTED_TLS[0].read_text()
    # Every file the config reads is in a mounted Secret.
    secrets = {"/etc/nudge/edge-tls": "nudge-edge-tls", "/etc/nudge/tls": "nudge-tls-edge"}
    for path in edge_config.TLS_FILES.values():
        assert volume_at(deployment, str(Path(path).parent))["secret"]["secretName"] == secrets[str(Path(path).parent)]
    assert deployment["spec"]["template"]["spec"]["securityContext"]["fsGroup"] == 10001
    assert [p["containerPort"] for p in c["ports"]] == [edge_config.TLS_PORT, edge_config.ADMIN_PORT]
    service = objects(docs, "Service")["edge"]["spec"]
    assert [p["port"] for p in service["ports"]] == [edge_config.TLS_PORT]
    assert service["type"] == "LoadBalancer"
    # The network policy lets the TLS port in from outside.
    public = objects(docs, "NetworkPolicy")["edge-public"]["spec"]["ingress"]
    assert {"protocol": "TCP", "port": edge_config.TLS_PORT} in [p for rule in public for p in rule["ports"]]


def test_no_certificate_secret_is_committed(docs) -> None:
    assert not objects(docs, "Secret")
