"""The web console in docker-compose.yml and the Kubernetes overlays: its own process from the
one image, calling the edge, one replica (sessions live in
its memory), HTTP probes on /healthz, reachable by the operator's browser."""

from __future__ import annotations

from typing import Any

from tests.unit.test_compose import command, compose, depends_on, environment, host_ports  # noqa: F401 (a fixture)
from tests.unit.test_kubernetes import OUTSIDE, allowed, container, objects, overlay, pod  # noqa: F401 (a fixture)


def test_compose_runs_the_console_against_the_edge_published_on_loopback(compose: dict[str, Any]) -> None:
    console = compose["services"]["console"]
    assert command(console) == ["python", "-m", "console"]
    env = environment(console)
    assert env["NUDGE_CONSOLE_TARGET"] == "edge:8080" and env["NUDGE_CONSOLE_PORT"] == "8090"
    assert "DATABASE_URL" not in env and "NUDGE_INTERNAL_TOKEN_FILE" not in env  # the public API only
    assert depends_on(console) == {"edge": "service_healthy"}
    assert host_ports(console) == [("8090", "8090")]
    assert console["ports"][0]["host_ip"] == "${NUDGE_PUBLISH_IP:-127.0.0.1}"  # as the edge
    assert "/healthz" in " ".join(console["healthcheck"]["test"])
    assert console["image"] == compose["services"]["migrate"]["image"]


def test_kubernetes_runs_one_console_with_http_probes_and_lets_it_reach_what_it_calls(overlay) -> None:
    _name, docs = overlay
    deployment = objects(docs, "Deployment")["console"]
    assert deployment["spec"]["replicas"] == 1
    c = container(deployment)
    assert c["command"] == ["python", "-m", "console"]
    assert {p["httpGet"]["path"] for p in (c["readinessProbe"], c["livenessProbe"])} == {"/healthz"}
    env = {e["name"]: e["value"] for e in c["env"]}
    assert env["NUDGE_CONSOLE_TARGET"] == "edge:8080"
    assert c["securityContext"]["readOnlyRootFilesystem"] is True and c["resources"]["limits"]
    service = objects(docs, "Service")["console"]
    assert service["spec"]["ports"][0]["port"] == 8090
    assert allowed(docs, OUTSIDE, "console", 8090)
    console = pod(docs, "console")
    assert allowed(docs, console, "edge", 8080)
    for service, port in {"ingestion": 50051, "segmentation": 50052, "decision": 50053, "delivery": 50054}.items():
        assert not allowed(docs, console, service, port), service  # the public API, through the edge only
