"""docker-compose.yml and Dockerfile: valid, and wired the way the services expect.

No Docker engine is needed: the compose file is checked against the compose specification
(check-jsonschema's vendored schema) and read with ruamel.yaml, and the healthcheck probes it
runs in the containers are exercised against an in-process gRPC health server and an HTTP
server standing in for Envoy's admin.
"""

from __future__ import annotations

import http.server
import re
import shlex
import subprocess
import sys
import threading
from concurrent import futures
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
ENVOY_CONFIG = ROOT / "deploy" / "envoy" / "envoy.yaml"
TOKEN_PATH = "/var/lib/nudge/secrets/internal-token"

# service name -> (gRPC port, metrics port), the services' defaults.
SERVICES: dict[str, tuple[int, int]] = {
    "ingestion": (50051, 9461),
    "segmentation": (50052, 9462),
    "decision": (50053, 9463),
    "delivery": (50054, 9464),
}
# The edge: Envoy's public listener and its admin (metrics), the only published ports.
EDGE = {"public": 8080, "admin": 9901}


# --- helpers --------------------------------------------------------------------------------


def _load_yaml(path: Path) -> Any:
    yaml = pytest.importorskip("ruamel.yaml")
    # Round-trip loader: unlike "safe", it also rejects duplicate keys in mappings that use
    # merge keys (<<), which docker compose refuses.
    return yaml.YAML(typ="rt", pure=True).load(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = _load_yaml(COMPOSE_FILE)
    assert isinstance(data, dict), "docker-compose.yml is not a mapping"
    assert isinstance(data.get("services"), dict), "docker-compose.yml has no services"
    return data


_VAR = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)")


def interpolate(value: Any) -> str:
    """Compose variable interpolation using only the defaults written in the file."""

    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        if m.group(2) in (":-", "-"):
            return m.group(3)
        return ""

    return _VAR.sub(sub, str(value))


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        pairs = (item.split("=", 1) if "=" in item else (item, "") for item in env)
        return {k: v for k, v in pairs}
    return {k: "" if v is None else str(v) for k, v in env.items()}


def command(service: dict[str, Any]) -> list[str]:
    cmd = service.get("command")
    if cmd is None:
        return []
    return shlex.split(cmd) if isinstance(cmd, str) else [str(part) for part in cmd]


def depends_on(service: dict[str, Any]) -> dict[str, str]:
    """Dependency -> condition (the short list syntax means service_started)."""
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return {name: "service_started" for name in deps}
    return {name: (spec or {}).get("condition", "service_started") for name, spec in deps.items()}


def host_ports(service: dict[str, Any]) -> list[tuple[str, str]]:
    """(host port as written, container port) of each published port; '' = ephemeral."""
    result = []
    for entry in service.get("ports") or []:
        if isinstance(entry, dict):
            published = interpolate(entry.get("published") or "")
            target = str(entry["target"])
        else:
            spec = interpolate(entry).split("/", 1)[0]
            parts = spec.rsplit(":", 2)
            target = parts[-1]
            published = parts[-2] if len(parts) >= 2 else ""
        result.append((published, target))
    return result


def healthcheck_probe(service: dict[str, Any]) -> tuple[str, str]:
    """(python -c script, port argument) of a service's gRPC health healthcheck."""
    test = service["healthcheck"]["test"]
    assert isinstance(test, list) and test[:3] == ["CMD", "python", "-c"] and len(test) == 5, test
    return test[3], test[4]


# --- the compose specification -------------------------------------------------------------


def _check_jsonschema(path: Path) -> subprocess.CompletedProcess[str]:
    pytest.importorskip("check_jsonschema")
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )


def test_compose_file_matches_the_compose_specification() -> None:
    result = _check_jsonschema(COMPOSE_FILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_rejects_an_invalid_file(tmp_path: Path) -> None:
    bad = tmp_path / "docker-compose.yml"
    bad.write_text(
        "services:\n"
        "  decision:\n"
        "    image: nudge:local\n"
        "    depends_on:\n"
        "      postgres:\n"
        "        condition: service_ready\n",
        encoding="utf-8",
    )
    result = _check_jsonschema(bad)
    assert result.returncode != 0, result.stdout + result.stderr


# --- what the stack needs -------------------------------------------------------------------


def test_all_services_are_defined(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) >= {"postgres", "migrate", *SERVICES}


def test_no_service_has_a_fixed_container_name(compose: dict[str, Any]) -> None:
    named = [name for name, svc in compose["services"].items() if "container_name" in svc]
    assert not named, f"container_name prevents --scale: {named}"


@pytest.mark.parametrize("name", SERVICES)
def test_service_runs_its_module(compose: dict[str, Any], name: str) -> None:
    service = compose["services"][name]
    assert "entrypoint" not in service
    assert command(service)[:3] == ["python", "-m", f"services.{name}"]


@pytest.mark.parametrize("name", SERVICES)
def test_service_waits_for_a_healthy_migrated_database(compose: dict[str, Any], name: str) -> None:
    deps = depends_on(compose["services"][name])
    assert deps.get("postgres") == "service_healthy"
    assert deps.get("migrate") == "service_completed_successfully"


@pytest.mark.parametrize("name", SERVICES)
def test_service_healthcheck_probes_grpc_health_on_its_own_port(
    compose: dict[str, Any], name: str
) -> None:
    service = compose["services"][name]
    healthcheck = service.get("healthcheck")
    assert healthcheck, f"{name} has no healthcheck"
    assert not healthcheck.get("disable")
    script, port = healthcheck_probe(service)
    assert "grpc_health.v1" in script and "127.0.0.1" in script
    assert port == str(SERVICES[name][0])
    assert environment(service)[f"NUDGE_{name.upper()}_PORT"] == port


@pytest.mark.parametrize("name", SERVICES)
def test_service_environment(compose: dict[str, Any], name: str) -> None:
    env = environment(compose["services"][name])
    assert re.fullmatch(r"postgres(ql)?://[^@/]+@postgres:5432/\w+", interpolate(env["DATABASE_URL"]))
    assert "NUDGE_INTERNAL_TOKEN" not in env, "the token comes from the generated file"
    assert env["NUDGE_INTERNAL_TOKEN_FILE"] == TOKEN_PATH
    assert env["NUDGE_BIND_HOST"] == "0.0.0.0"
    for other, (port, metrics_port) in SERVICES.items():
        upper = other.upper()
        assert env[f"NUDGE_{upper}_PORT"] == str(port)
        assert env[f"NUDGE_{upper}_METRICS_PORT"] == str(metrics_port)
        # dns:/// resolves to every replica of a scaled service, not only the first.
        assert env[f"NUDGE_{upper}_ADDR"] == f"dns:///{other}:{port}"


def test_services_share_one_environment_and_image(compose: dict[str, Any]) -> None:
    services = compose["services"]
    envs = [environment(services[name]) for name in ("migrate", *SERVICES)]
    assert all(env == envs[0] for env in envs)
    images = {(services[name].get("image"), repr(services[name].get("build"))) for name in ("migrate", *SERVICES)}
    assert len(images) == 1, images
    assert services["migrate"].get("build"), "the image is built from ./Dockerfile"


def test_dependencies_exist_are_acyclic_and_wait_for_health(compose: dict[str, Any]) -> None:
    services = compose["services"]
    graph = {name: depends_on(svc) for name, svc in services.items()}
    for name, deps in graph.items():
        for dep, condition in deps.items():
            assert dep in services, f"{name} depends on unknown service {dep}"
            if dep in SERVICES:
                assert condition == "service_healthy", f"{name} -> {dep}: {condition}"

    state: dict[str, int] = {}

    def visit(name: str, path: list[str]) -> None:
        if state.get(name) == 2:
            return
        assert state.get(name) != 1, f"dependency cycle: {' -> '.join([*path, name])}"
        state[name] = 1
        for dep in graph[name]:
            visit(dep, [*path, name])
        state[name] = 2

    for name in graph:
        visit(name, [])


def test_only_the_edge_publishes_ports_so_every_service_scales(compose: dict[str, Any]) -> None:
    # And the web console, for the operator's browser (one replica: tests/unit/console/test_deploy.py).
    published = {name: host_ports(svc) for name, svc in compose["services"].items() if svc.get("ports")}
    assert set(published) == {"edge", "console"}, f"a published port prevents --scale: {sorted(published)}"
    for name in SERVICES:
        assert "replicas" not in (compose["services"][name].get("deploy") or {})


def test_the_edge_publishes_its_public_and_admin_ports(compose: dict[str, Any]) -> None:
    ports = host_ports(compose["services"]["edge"])
    assert sorted(ports) == sorted((str(port), str(port)) for port in EDGE.values())
    admin = next(p for p in compose["services"]["edge"]["ports"] if p["target"] == EDGE["admin"])
    assert admin["host_ip"] == "127.0.0.1", "Envoy's admin can stop it: never beyond loopback"


def test_every_long_running_service_has_a_healthcheck(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        if service.get("restart", "no") == "no":
            continue
        healthcheck = service.get("healthcheck") or {}
        assert healthcheck.get("test") and not healthcheck.get("disable"), f"{name} has no healthcheck"


def test_the_edge_runs_envoy_on_the_committed_dns_config(compose: dict[str, Any]) -> None:
    edge = compose["services"]["edge"]
    assert (edge.get("image"), repr(edge.get("build"))) == (
        compose["services"]["migrate"].get("image"), repr(compose["services"]["migrate"].get("build")))
    cmd = command(edge)
    # Envoy on the committed config, its CORS origins set from the edge's setting first.
    assert cmd[:5] == ["python", "-m", "nudgetools.edge", "--run", "/etc/envoy/envoy.yaml"]
    assert interpolate(environment(edge)["NUDGE_EDGE_ALLOWED_ORIGINS"]) == "*"
    assert "./deploy/envoy/envoy.yaml:/etc/envoy/envoy.yaml:ro" in edge["volumes"]
    # The JSON transcoder's descriptor set, where the config reads it.
    assert "./deploy/envoy/nudge.pb:/etc/envoy/nudge.pb:ro" in edge["volumes"]
    assert {dep: cond for dep, cond in depends_on(edge).items()} == {n: "service_healthy" for n in SERVICES}

    config = _load_yaml(ENVOY_CONFIG)
    assert config["admin"]["address"]["socket_address"]["port_value"] == EDGE["admin"]
    listeners = config["static_resources"]["listeners"]
    assert [listener["address"]["socket_address"]["port_value"] for listener in listeners] == [EDGE["public"]]
    clusters = {c["name"]: c for c in config["static_resources"]["clusters"]}
    assert set(clusters) == set(SERVICES)
    for name, (port, _metrics) in SERVICES.items():
        cluster = clusters[name]
        assert cluster["type"] in ("STRICT_DNS", "LOGICAL_DNS")
        [address] = [e["endpoint"]["address"]["socket_address"]
                     for group in cluster["load_assignment"]["endpoints"] for e in group["lb_endpoints"]]
        # The compose service name: Docker's DNS answers it with every replica.
        assert (address["address"], address["port_value"]) == (name, port)
        assert cluster["health_checks"][0]["grpc_health_check"] is not None


def test_the_token_is_generated_never_a_default(compose: dict[str, Any]) -> None:
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    assert not re.search(r"NUDGE_INTERNAL_TOKEN:-[^}]", text), "a default token"
    writer = compose["services"]["internal-token"]
    assert command(writer) == ["python", "-m", "nudgetools.tokens", TOKEN_PATH]
    # Given one, compose hands it to the writer; else (empty) the writer generates one.
    assert environment(writer) == {"NUDGE_INTERNAL_TOKEN": "${NUDGE_INTERNAL_TOKEN:-}"}
    assert writer.get("restart") == "no" and not writer.get("ports")
    assert "secrets:/var/lib/nudge/secrets" in writer["volumes"]
    assert "secrets" in compose["volumes"]
    for name in ("migrate", *SERVICES):
        service = compose["services"][name]
        assert "secrets:/var/lib/nudge/secrets:ro" in service["volumes"], name
        if name in SERVICES:
            assert depends_on(service).get("internal-token") == "service_completed_successfully", name


def test_migrate_is_a_one_shot_nudge_migrate_after_postgres(compose: dict[str, Any]) -> None:
    migrate = compose["services"]["migrate"]
    assert command(migrate) == ["nudge", "migrate"]
    assert depends_on(migrate).get("postgres") == "service_healthy"
    assert migrate.get("restart", "no") in ("no", "on-failure")
    assert not migrate.get("ports")


def test_postgres_is_18_with_a_readiness_check_and_a_named_volume(compose: dict[str, Any]) -> None:
    postgres = compose["services"]["postgres"]
    assert str(postgres["image"]).startswith("postgres:18")
    test = postgres["healthcheck"]["test"]
    assert "pg_isready" in (test if isinstance(test, str) else " ".join(test))
    env = environment(postgres)
    assert env["POSTGRES_PASSWORD"] and env["POSTGRES_USER"] and env["POSTGRES_DB"]
    # postgres:18 keeps its data under /var/lib/postgresql/18/docker: mount the parent.
    mounts = {}
    for volume in postgres.get("volumes") or []:
        if isinstance(volume, dict):
            mounts[volume["target"]] = volume.get("source")
        else:
            source, target = str(volume).split(":")[:2]
            mounts[target] = source
    assert "/var/lib/postgresql/data" not in mounts
    source = mounts.get("/var/lib/postgresql")
    assert source and source in (compose.get("volumes") or {}), mounts


# --- the healthcheck probe, run for real ----------------------------------------------------


@pytest.fixture
def health_server():
    grpc = pytest.importorskip("grpc")
    health = pytest.importorskip("grpc_health.v1.health")
    health_pb2_grpc = pytest.importorskip("grpc_health.v1.health_pb2_grpc")
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield servicer, port
    finally:
        server.stop(None)


def _run_probe(script: str, port: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", script, str(port)], capture_output=True, text=True, timeout=30
    )


def test_healthcheck_probe_passes_only_while_serving(compose: dict[str, Any], health_server) -> None:
    from grpc_health.v1 import health_pb2

    servicer, port = health_server
    scripts = {healthcheck_probe(compose["services"][name])[0] for name in SERVICES}
    assert len(scripts) == 1
    script = scripts.pop()

    servicer.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
    assert _run_probe(script, port).returncode == 1
    servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    result = _run_probe(script, port)
    assert result.returncode == 0, result.stderr
    server_down = _run_probe(script, 1)
    assert server_down.returncode == 1


def test_edge_healthcheck_passes_only_when_envoy_is_ready(compose: dict[str, Any]) -> None:
    test = compose["services"]["edge"]["healthcheck"]["test"]
    assert test[:3] == ["CMD", "python", "-c"] and test[4] == str(EDGE["admin"]), test
    ready = threading.Event()

    class Admin(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            ok = self.path == "/ready" and ready.is_set()
            self.send_response(200 if ok else 503)
            self.end_headers()
            self.wfile.write(b"LIVE\n" if ok else b"PRE_INITIALIZING\n")

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Admin)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        assert _run_probe(test[3], port).returncode == 1
        ready.set()
        result = _run_probe(test[3], port)
        assert result.returncode == 0, result.stderr
    finally:
        server.shutdown()
        server.server_close()
    assert _run_probe(test[3], port).returncode == 1


# --- the Dockerfile -------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuations joined and comments dropped."""
    lines: list[str] = []
    pending = ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        lines.append(pending + line)
        pending = ""
    if pending:
        lines.append(pending)
    return [(line.split(None, 1)[0].upper(), (line.split(None, 1) + [""])[1]) for line in lines]


def test_dockerfile_one_image_non_root_with_a_grpc_healthcheck(compose: dict[str, Any]) -> None:
    instructions = dockerfile_instructions()
    args = {}
    for keyword, rest in instructions:
        if keyword == "FROM":
            break
        if keyword == "ARG" and "=" in rest:
            key, value = rest.split("=", 1)
            args[key.strip()] = value.strip()
    froms = [re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), m.group(0)), rest.split()[0])
             for keyword, rest in instructions if keyword == "FROM"]
    assert froms and froms[-1] == "python:3.11-slim", froms

    runtime = instructions[max(i for i, (k, _) in enumerate(instructions) if k == "FROM"):]
    users = [rest.strip() for keyword, rest in runtime if keyword == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0"), users

    assert any(k == "RUN" and re.search(r"pip install\b.*(\s\.$|\s\.\s)", rest) for k, rest in instructions)
    healthchecks = [rest for keyword, rest in runtime if keyword == "HEALTHCHECK"]
    assert len(healthchecks) == 1
    script, _port = healthcheck_probe(compose["services"]["ingestion"])
    assert script in healthchecks[0], "the image's HEALTHCHECK and the compose probe differ"
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert not re.search(r"\b(curl|wget|grpc_health_probe)\b|^ADD\s+https?://", text, re.M)

    # The token volume is mounted here: it must start out writable by the service user.
    assert any(k == "RUN" and "install -d -o 10001 -g 10001 -m 0700 /var/lib/nudge/secrets" in rest
               for k, rest in runtime)
    assert users[-1].split(":")[0] == "10001"

    cmds = [rest for keyword, rest in runtime if keyword == "CMD"]
    assert cmds and cmds[-1].replace(" ", "") == '["python","-m","services.ingestion"]'


def test_dockerignore_keeps_local_state_out_of_the_build_context() -> None:
    patterns = {
        line.strip().rstrip("/")
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    for required in (".git", ".venv", ".nudge", ".pytest_cache", ".env"):
        assert required in patterns, required
    assert patterns & {"__pycache__", "**/__pycache__"}
    assert not patterns & {"libs", "services", "pyproject.toml"}, "the build needs these"
