"""deploy/kubernetes: both overlays render with `kubectl kustomize`, every object is valid
against the Kubernetes schemas (kubernetes-validate's, offline), and the objects are wired the
way the services expect: probes on their ports, peers through headless Services, shutdown
covered by the grace period, and network policies that let only the edge in from outside.

kubectl comes from the machine (`.ci/run` installs Debian's kubernetes-client when it is
missing); without it these tests fail saying so, rather than skip.
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from nudgelib.config import DEFAULT_METRICS_PORTS, DEFAULT_PORTS, ServiceSettings, variables
from nudgelib.server import ServiceHost

ROOT = Path(__file__).resolve().parents[2]
KUBE = ROOT / "deploy" / "kubernetes"
OVERLAYS = ("dev", "prod")
SERVICES = tuple(DEFAULT_PORTS)
# The oldest Kubernetes the manifests are for (the preStop `sleep` action is on by default from
# 1.30) and the newest the pinned schemas know.
KUBERNETES_VERSIONS = ("1.30.0", kubernetes_validate.latest_version())
SECRET = "nudge-secrets"


@functools.cache
def _kubectl() -> tuple[str | None, str]:
    path = shutil.which("kubectl")
    if path is None:
        return None, ("kubectl not found: the Kubernetes overlays are rendered with `kubectl kustomize`. "
                      "Install it (Debian: `apt-get install kubernetes-client`; .ci/run does this).")
    out = subprocess.run([path, "version", "--client", "-o", "json"], capture_output=True, text=True, timeout=60)
    kustomize = json.loads(out.stdout or "{}").get("kustomizeVersion", "") if out.returncode == 0 else ""
    major = re.match(r"v(\d+)\.", kustomize)
    # `patches` with target selectors: kustomize 4 (kubectl 1.21) and later.
    if not major or int(major.group(1)) < 4:
        return None, (f"{path} embeds kustomize {kustomize or '(unknown)'}; the overlays need kustomize 4 or "
                      "later (kubectl 1.21 or later)")
    return path, ""


def kubectl() -> str:
    path, problem = _kubectl()
    if path is None:
        pytest.fail(problem)
    return path


def render(folder: Path) -> list[dict[str, Any]]:
    result = subprocess.run([kubectl(), "kustomize", str(folder)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@pytest.fixture(scope="module", params=OVERLAYS)
def overlay(request) -> tuple[str, list[dict[str, Any]]]:
    return request.param, render(KUBE / "overlays" / request.param)


def objects(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    [c] = deployment["spec"]["template"]["spec"]["containers"]
    return c


def config_map(docs: list[dict[str, Any]], prefix: str) -> dict[str, Any]:
    [cm] = [d for name, d in objects(docs, "ConfigMap").items() if name.startswith(prefix + "-")]
    return cm


# --- rendering and the schemas --------------------------------------------------------------


def schema_errors(docs: list[dict], version: str) -> list[str]:
    """Each object that the Kubernetes schemas of `version` refuse, with why (strict: no
    field the schemas do not know)."""
    errors = []
    for doc in docs:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            errors.append(f"{doc['kind']}/{doc['metadata']['name']}: {exc.message}")
    return errors


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_object_is_valid_against_the_kubernetes_schemas(overlay, version: str) -> None:
    name, docs = overlay
    assert len(docs) >= 25, f"{name} rendered only {len(docs)} objects"
    errors = schema_errors(docs, version)
    assert not errors, "\n".join(errors)


def test_the_schema_check_rejects_a_misspelt_field(overlay) -> None:
    _name, docs = overlay
    deployment = dict(objects(docs, "Deployment")["decision"])
    bad = yaml.safe_load(yaml.safe_dump(deployment))
    container(bad)["readinesProbe"] = container(bad).pop("readinessProbe")
    with pytest.raises(kubernetes_validate.ValidationError, match="readinesProbe"):
        kubernetes_validate.validate(bad, KUBERNETES_VERSIONS[-1], strict=True)


def test_overlays_set_their_namespace_and_image(overlay) -> None:
    name, docs = overlay
    namespaces = {d["metadata"].get("namespace") for d in docs}
    assert namespaces == {"nudge-dev" if name == "dev" else "nudge"}
    images = {c["image"] for d in docs if d["kind"] in ("Deployment", "Job")
              for c in d["spec"]["template"]["spec"]["containers"]}
    assert images == {"nudge:local" if name == "dev" else "registry.example.com/nudge:0.1.0"}


# --- the services ---------------------------------------------------------------------------


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_is_a_deployment_with_grpc_probes_and_resources(overlay, service: str) -> None:
    _name, docs = overlay
    deployment = objects(docs, "Deployment")[service]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    c = container(deployment)
    assert c["command"] == ["python", "-m", f"services.{service}"]
    port = DEFAULT_PORTS[service]
    assert {p["name"]: p["containerPort"] for p in c["ports"]} == {
        "grpc": port, "metrics": DEFAULT_METRICS_PORTS[service]}
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert c[probe]["grpc"] == {"port": port}, probe
    # Readiness reacts within seconds; liveness gives a database outage a minute.
    ready, live = c["readinessProbe"], c["livenessProbe"]
    assert ready["periodSeconds"] * ready["failureThreshold"] <= 5
    assert live["periodSeconds"] * live["failureThreshold"] >= 60
    for kind in ("requests", "limits"):
        assert set(c["resources"][kind]) == {"cpu", "memory"}, kind
    assert "replicas" not in deployment["spec"], "the autoscaler owns the replica count"


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_has_a_headless_service_an_autoscaler_and_a_budget(overlay, service: str) -> None:
    name, docs = overlay
    pod_labels = objects(docs, "Deployment")[service]["spec"]["template"]["metadata"]["labels"]
    svc = objects(docs, "Service")[service]
    assert svc["spec"]["clusterIP"] == "None", "headless: DNS answers with every pod, for client-side balancing"
    assert svc["spec"]["selector"].items() <= pod_labels.items()
    assert {p["port"] for p in svc["spec"]["ports"]} == {DEFAULT_PORTS[service], DEFAULT_METRICS_PORTS[service]}

    hpa = objects(docs, "HorizontalPodAutoscaler")[service]
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": service}
    low, high = hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]
    assert (low, high) == ((1, 2) if name == "dev" else (3, 20))

    pdb = objects(docs, "PodDisruptionBudget")[service]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert pdb["spec"]["maxUnavailable"] == 1


def test_services_read_their_settings_and_secrets(overlay) -> None:
    _name, docs = overlay
    config = config_map(docs, "nudge-config")["data"]
    for service in SERVICES:
        upper = service.upper()
        assert config[f"NUDGE_{upper}_PORT"] == str(DEFAULT_PORTS[service])
        assert config[f"NUDGE_{upper}_METRICS_PORT"] == str(DEFAULT_METRICS_PORTS[service])
        # The headless Service's name: every pod of the peer, balanced by the caller.
        assert config[f"NUDGE_{upper}_ADDR"] == f"dns:///{service}:{DEFAULT_PORTS[service]}"
    assert "NUDGE_INTERNAL_TOKEN" not in config
    token_path = Path(config["NUDGE_INTERNAL_TOKEN_FILE"])

    for service in SERVICES:
        deployment = objects(docs, "Deployment")[service]
        c = container(deployment)
        assert c["envFrom"] == [{"configMapRef": {"name": config_map(docs, "nudge-config")["metadata"]["name"]}}]
        env = {e["name"]: e for e in c["env"]}
        assert env["DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {"name": SECRET, "key": "database-url"}
        [mount] = [m for m in c["volumeMounts"] if m["mountPath"] == str(token_path.parent)]
        volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
        secret = volumes[mount["name"]]["secret"]
        assert secret["secretName"] == SECRET
        assert secret["items"] == [{"key": "internal-token", "path": token_path.name}]


def test_no_secret_is_committed_and_the_readme_says_how_to_create_it(overlay) -> None:
    name, docs = overlay
    assert not objects(docs, "Secret"), "Secrets are created by the operator, never committed"
    keys = set()
    text = yaml.safe_dump(docs)
    for match in re.finditer(r"secretKeyRef:\s+key: ([\w-]+)\s+name: ([\w-]+)", text):
        assert match.group(2) == SECRET
        keys.add(match.group(1))
    assert keys == ({"database-url", "postgres-password"} if name == "dev" else {"database-url"})
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    command = re.search(rf"kubectl -n {objects(docs, 'Deployment')['decision']['metadata']['namespace']} "
                        rf"create secret generic {SECRET}(.*?)\n(?!\s)", readme, re.S)
    assert command, "the README shows the kubectl command that creates the Secret"
    for key in (*keys, "internal-token"):
        assert f"--from-literal={key}=" in command.group(1), key


def test_shutdown_fits_in_the_termination_grace_period(overlay) -> None:
    _name, docs = overlay
    config = config_map(docs, "nudge-config")["data"]
    grace = float(config["NUDGE_SHUTDOWN_GRACE_SECONDS"])
    assert grace != variables(ServiceSettings)["shutdown_grace"].default, "set on purpose, not the default"
    drain = {f.name: f.default for f in dataclasses.fields(ServiceHost)}["drain_delay"]
    for service in SERVICES:
        spec = objects(docs, "Deployment")[service]["spec"]["template"]["spec"]
        pre_stop = container(objects(docs, "Deployment")[service])["lifecycle"]["preStop"]["sleep"]["seconds"]
        # preStop, then SIGTERM: NOT_SERVING, the drain, in-flight calls, then closing (a few seconds).
        needed = pre_stop + drain + grace
        assert needed + 3 <= spec["terminationGracePeriodSeconds"] <= needed + 10, (service, needed)


# --- the edge and the migration ---------------------------------------------------------------


def test_the_edge_runs_envoy_on_the_committed_dns_config(overlay) -> None:
    _name, docs = overlay
    edge = objects(docs, "Deployment")["edge"]
    c = container(edge)
    # Envoy on the committed config, its CORS origins set from nudge-config first.
    assert c["command"][:5] == ["python", "-m", "nudgetools.edge", "--run", "/etc/envoy/envoy.yaml"]
    [origins] = [e for e in c["env"] if e["name"] == "NUDGE_EDGE_ALLOWED_ORIGINS"]
    settings = config_map(docs, "nudge-config")
    assert origins["valueFrom"]["configMapKeyRef"] == {"name": settings["metadata"]["name"],
                                                       "key": "NUDGE_EDGE_ALLOWED_ORIGINS"}
    assert settings["data"]["NUDGE_EDGE_ALLOWED_ORIGINS"] == "*"
    assert c["readinessProbe"]["httpGet"]["path"] == "/ready"
    volumes = {v["name"]: v for v in edge["spec"]["template"]["spec"]["volumes"]}
    [mount] = [m for m in c["volumeMounts"] if m["mountPath"] == "/etc/envoy"]
    envoy_config = config_map(docs, "nudge-envoy")
    assert volumes[mount["name"]]["configMap"]["name"] == envoy_config["metadata"]["name"]
    assert envoy_config["data"]["envoy.yaml"] == (ROOT / "deploy" / "envoy" / "envoy.yaml").read_text(encoding="utf-8")
    # The JSON transcoder's descriptor set beside it, byte for byte (binary, so binaryData).
    descriptor_set = base64.b64decode(envoy_config["binaryData"]["nudge.pb"])
    assert descriptor_set == (ROOT / "deploy" / "envoy" / "nudge.pb").read_bytes()
    assert "proto_descriptor: \"/etc/envoy/nudge.pb\"" in envoy_config["data"]["envoy.yaml"]
    clusters = yaml.safe_load(envoy_config["data"]["envoy.yaml"])["static_resources"]["clusters"]
    hosts = {sa["address"]: sa["port_value"] for cluster in clusters
             for group in cluster["load_assignment"]["endpoints"] for e in group["lb_endpoints"]
             for sa in [e["endpoint"]["address"]["socket_address"]]}
    services = objects(docs, "Service")
    for host, port in hosts.items():
        assert services[host]["spec"]["clusterIP"] == "None" and port in {p["port"] for p in services[host]["spec"]["ports"]}
    public = services["edge"]["spec"]
    assert [p["port"] for p in public["ports"]] == [8080], "only the public port (admin can stop Envoy)"
    assert "HorizontalPodAutoscaler" in {d["kind"] for d in docs if d["metadata"]["name"] == "edge"}
    assert objects(docs, "PodDisruptionBudget")["edge"]


def test_the_base_keeps_a_copy_of_the_envoy_config() -> None:
    assert (KUBE / "base" / "envoy.yaml").read_bytes() == (ROOT / "deploy" / "envoy" / "envoy.yaml").read_bytes()
    assert (KUBE / "base" / "nudge.pb").read_bytes() == (ROOT / "deploy" / "envoy" / "nudge.pb").read_bytes()


def test_migrations_run_as_a_job(overlay) -> None:
    _name, docs = overlay
    job = objects(docs, "Job")["migrate"]
    c = container(job)
    assert c["command"] == ["nudge", "migrate"]
    assert job["spec"]["template"]["spec"]["restartPolicy"] in ("OnFailure", "Never")
    assert c["env"][0]["valueFrom"]["secretKeyRef"] == {"name": SECRET, "key": "database-url"}


# --- who may connect to whom ------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Source:
    labels: dict[str, str] | None  # None: not a pod of the namespace (outside, or another namespace)
    namespace_labels: dict[str, str]


OUTSIDE = Source(None, {"kubernetes.io/metadata.name": "elsewhere"})
MONITORING = Source(None, {"kubernetes.io/metadata.name": "monitoring"})


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    assert set(selector) <= {"matchLabels"}, selector  # matchExpressions: not used here
    return (selector.get("matchLabels") or {}).items() <= labels.items()


def _peer_matches(peer: dict[str, Any], source: Source) -> bool:
    assert "ipBlock" not in peer
    if "namespaceSelector" in peer:
        return _selects(peer["namespaceSelector"], source.namespace_labels) and (
            "podSelector" not in peer or _selects(peer["podSelector"], source.labels or {}))
    return source.labels is not None and _selects(peer["podSelector"], source.labels)


def _port_matches(rule_port: dict[str, Any], port: int) -> bool:
    assert isinstance(rule_port["port"], int), rule_port
    return rule_port["port"] <= port <= rule_port.get("endPort", rule_port["port"])


def allowed(docs: list[dict[str, Any]], source: Source, target: str, port: int) -> bool:
    """Whether the NetworkPolicies let `source` open `port` on a pod of the workload `target`."""
    workloads = {d["metadata"]["name"]: d for d in docs if d["kind"] in ("Deployment", "StatefulSet", "Job")}
    labels = workloads[target]["spec"]["template"]["metadata"]["labels"]
    policies = [p["spec"] for p in objects(docs, "NetworkPolicy").values()
                if "Ingress" in p["spec"]["policyTypes"] and _selects(p["spec"]["podSelector"], labels)]
    if not policies:
        return True
    return any(
        (not rule.get("from") or any(_peer_matches(peer, source) for peer in rule["from"]))
        and (not rule.get("ports") or any(_port_matches(p, port) for p in rule["ports"]))
        for policy in policies for rule in policy.get("ingress") or [])


def pod(docs: list[dict[str, Any]], name: str) -> Source:
    workloads = {d["metadata"]["name"]: d for d in docs if d["kind"] in ("Deployment", "StatefulSet", "Job")}
    return Source(workloads[name]["spec"]["template"]["metadata"]["labels"], {})


def test_only_the_edge_is_reachable_from_outside(overlay) -> None:
    _name, docs = overlay
    assert allowed(docs, OUTSIDE, "edge", 8080)
    assert not allowed(docs, OUTSIDE, "edge", 9901), "Envoy's admin can stop it"
    for service in SERVICES:
        assert not allowed(docs, OUTSIDE, service, DEFAULT_PORTS[service]), service
        assert not allowed(docs, OUTSIDE, service, DEFAULT_METRICS_PORTS[service]), service


def test_internal_rpcs_only_between_services_and_from_the_edge(overlay) -> None:
    _name, docs = overlay
    for service in SERVICES:
        port = DEFAULT_PORTS[service]
        assert allowed(docs, pod(docs, "edge"), service, port)
        for caller in SERVICES:
            assert allowed(docs, pod(docs, caller), service, port), (caller, service)
        assert not allowed(docs, pod(docs, "migrate"), service, port)
        # A pod of the namespace that is not Nudge's own.
        assert not allowed(docs, Source({"app": "other"}, {}), service, port)


def test_monitoring_scrapes_the_metrics_ports_only(overlay) -> None:
    _name, docs = overlay
    for service in SERVICES:
        assert allowed(docs, MONITORING, service, DEFAULT_METRICS_PORTS[service])
        assert not allowed(docs, MONITORING, service, DEFAULT_PORTS[service])
    assert allowed(docs, MONITORING, "edge", 9901)


def test_the_dev_database_takes_only_nudge_pods() -> None:
    docs = render(KUBE / "overlays" / "dev")
    assert allowed(docs, pod(docs, "decision"), "postgres", 5432)
    assert allowed(docs, pod(docs, "migrate"), "postgres", 5432)
    assert not allowed(docs, pod(docs, "edge"), "postgres", 5432)
    assert not allowed(docs, OUTSIDE, "postgres", 5432)


def test_ingestion_refuses_calls_before_its_memory_limit_kills_it(overlay) -> None:
    _name, docs = overlay
    c = container(objects(docs, "Deployment")["ingestion"])
    limit = c["resources"]["limits"]["memory"]
    units = {"Mi": 1, "Gi": 1024}
    limit_mb = int(limit[:-2]) * units[limit[-2:]]
    env = {e["name"]: e.get("value") for e in c["env"]}
    bound = int(env["NUDGE_INGESTION_MAX_MEMORY_MB"])
    assert 0 < bound <= limit_mb * 0.8, (bound, limit)
