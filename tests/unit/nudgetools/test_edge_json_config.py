"""The edge's JSON transcoding and CORS origins as configured: the committed descriptor sets
are what the protos give (like the generated code), they describe every public service and the
error details and no internal service, the transcoder sits between CORS and the router and
transcodes the four routed services only, and the allowed origins come from the setting, also
where compose and Kubernetes start Envoy on the committed file (`--run`)."""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
import time

import pytest
from google.protobuf import descriptor_pb2, descriptor_pool
from ruamel.yaml import YAML

from nudgelib.config import SERVICES, ConfigError
from nudgetools import edge, protogen
from nudgetools.cluster import free_ports

ADDRESSES = {name: [f"127.0.0.1:{50051 + i}"] for i, name in enumerate(SERVICES)}
TRANSCODER = "envoy.filters.http.grpc_json_transcoder"


def load(text: str):
    return YAML(typ="safe", pure=True).load(text)


def connection_manager(config: dict) -> dict:
    [listener] = [lis for lis in config["static_resources"]["listeners"] if lis["name"] == "public"]
    [hcm] = [f for chain in listener["filter_chains"] for f in chain["filters"]
             if f["name"] == "envoy.filters.network.http_connection_manager"]
    return hcm["typed_config"]


def cors_origins(config: dict) -> list[dict]:
    [host] = connection_manager(config)["route_config"]["virtual_hosts"]
    return host["typed_per_filter_config"]["envoy.filters.http.cors"]["allow_origin_string_match"]


def test_the_committed_descriptor_sets_are_what_the_protos_give():
    assert protogen.stale_descriptor_sets() == [], "run `make protos`: deploy/envoy/nudge.pb is stale"


def test_the_descriptor_set_has_every_public_service_the_error_details_and_nothing_internal():
    files = descriptor_pb2.FileDescriptorSet.FromString(protogen.DESCRIPTOR_SETS[0].read_bytes()).file
    # Imports included: the files load into an empty pool in their order, each finding the
    # files it imports already there.
    pool = descriptor_pool.DescriptorPool()
    for f in files:
        pool.Add(f)
    for name in SERVICES:
        for full_name in edge.public_services(name):
            service = pool.FindServiceByName(full_name)
            assert service.methods, service.full_name
    assert not [s.name for f in files for s in f.service if "Internal" in s.name]
    # What a JSON error prints: the status, and the details the services attach.
    for message in ("google.rpc.Status", "google.rpc.BadRequest", "google.rpc.ErrorInfo"):
        assert pool.FindMessageTypeByName(message)


@pytest.mark.parametrize("variant", ["static", "dns"])
def test_the_transcoder_sits_before_the_router_for_the_public_services_only(variant):
    text = edge.render_static(ADDRESSES, "127.0.0.1", 18080, 19901) if variant == "static" else edge.render_dns()
    filters = connection_manager(load(text))["http_filters"]
    assert [f["name"] for f in filters] == ["envoy.filters.http.grpc_web", "envoy.filters.http.cors", TRANSCODER,
                                            "envoy.filters.http.router"]
    [transcoder] = [f["typed_config"] for f in filters if f["name"] == TRANSCODER]
    # The services the edge routes, no others: an internal service is not transcoded.
    assert transcoder["services"] == [s for name in SERVICES for s in edge.public_services(name)]
    assert "nudge.decision.v1.UserTokenKeyService" in transcoder["services"]
    assert "nudge.decision.v1.ApiKeyService" in transcoder["services"]
    assert transcoder["auto_mapping"] and transcoder["convert_grpc_status"]
    # Not gRPC and no method of theirs: answered 404 by the edge, never passed on.
    assert transcoder["request_validation_options"]["reject_unknown_method"]
    assert transcoder["print_options"]["preserve_proto_field_names"] is False
    expected = edge.MOUNTED_DESCRIPTOR_SET if variant == "dns" else str(edge.DESCRIPTOR_SET)
    assert transcoder["proto_descriptor"] == expected


@pytest.mark.parametrize(("raw", "origins"), [
    ("*", ("*",)),
    (" * ", ("*",)),
    ("https://shop.example", ("https://shop.example",)),
    ("https://Shop.Example, http://127.0.0.1:3000,https://shop.example", ("https://shop.example", "http://127.0.0.1:3000")),
    ("capacitor://localhost", ("capacitor://localhost",)),
])
def test_allowed_origins_are_exact_origins_or_any(raw, origins):
    assert edge.allowed_origins(raw) == origins
    assert edge.EdgeSettings.from_env({"NUDGE_EDGE_ALLOWED_ORIGINS": raw}).allowed_origins == origins


@pytest.mark.parametrize(("raw", "said"), [
    ("https://shop.example/", "scheme, host and port only"),
    ("https://shop.example/app", "scheme, host and port only"),
    ("shop.example", "scheme, host and port only"),
    ("https://*.shop.example", "scheme, host and port only"),
    ("https://user@shop.example", "scheme, host and port only"),
    ("*,https://shop.example", "stands alone"),
    (",", "at least one origin"),
])
def test_a_bad_origin_list_stops_start_up_naming_the_setting(raw, said):
    with pytest.raises(ConfigError, match="NUDGE_EDGE_ALLOWED_ORIGINS") as caught:
        edge.EdgeSettings.from_env({"NUDGE_EDGE_ALLOWED_ORIGINS": raw})
    assert said in str(caught.value)


def test_the_default_allows_any_origin():
    assert edge.EdgeSettings.from_env({}).allowed_origins == ("*",)
    assert cors_origins(load(edge.render_dns())) == [{"safe_regex": {"regex": ".*"}}]


def test_origins_set_on_the_committed_file_are_as_if_rendered_with_them():
    shops = ("https://shop.example", "http://127.0.0.1:3000")
    rewritten = load(edge.with_origins(edge.COMMITTED[0].read_text(), shops))
    assert cors_origins(rewritten) == [{"exact": o} for o in shops]
    upstreams = {name: [(name, port)] for name, port in edge.DEFAULT_PORTS.items()}
    rendered = edge.render(upstreams, ("0.0.0.0", edge.PUBLIC_PORT), ("0.0.0.0", edge.ADMIN_PORT), dns=True,
                           origins=shops)
    assert rewritten == load(rendered)
    assert cors_origins(load(edge.with_origins(rendered, ("*",)))) == [{"safe_regex": {"regex": ".*"}}]


def _preflight(port: int, origin: str) -> dict[str, str] | None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        connection.request("OPTIONS", "/nudge.delivery.v1.DeliveryService/FetchMessages",
                           headers={"origin": origin, "access-control-request-method": "POST"})
        return {k.lower(): v for k, v in connection.getresponse().getheaders()}
    except OSError:
        return None
    finally:
        connection.close()


def test_run_starts_envoy_on_the_committed_file_with_the_settings_origins(tmp_path):
    """What compose and Kubernetes run: the committed dns variant (its ports and descriptor
    path moved onto this machine), the origins from the environment. Preflights need no
    replica behind the edge, so none runs here."""
    port, admin = free_ports(2)
    text = (edge.COMMITTED[0].read_text()
            .replace(f"port_value: {edge.PUBLIC_PORT}", f"port_value: {port}")
            .replace(f"port_value: {edge.ADMIN_PORT}", f"port_value: {admin}")
            .replace("address: 0.0.0.0", "address: 127.0.0.1")
            .replace(edge.MOUNTED_DESCRIPTOR_SET, str(edge.DESCRIPTOR_SET)))
    config = tmp_path / "envoy.yaml"
    config.write_text(text)
    env = {**os.environ, "NUDGE_EDGE_ALLOWED_ORIGINS": "https://shop.example", "TMPDIR": str(tmp_path)}
    process = subprocess.Popen([sys.executable, "-m", "nudgetools.edge", "--run", str(config),
                                "--disable-hot-restart", "--log-level", "error"], env=env,
                               stdout=subprocess.DEVNULL, stderr=open(tmp_path / "envoy.log", "wb"))
    try:
        deadline = time.monotonic() + 30
        while (allowed := _preflight(port, "https://shop.example")) is None:
            assert process.poll() is None, (tmp_path / "envoy.log").read_text()
            assert time.monotonic() < deadline, "the edge never answered"
            time.sleep(0.1)
        assert allowed["access-control-allow-origin"] == "https://shop.example"
        refused = _preflight(port, "https://evil.example")
        assert refused is not None and "access-control-allow-origin" not in refused
        # The file it runs is the committed one with only the origins changed.
        written = tmp_path / "nudge-envoy.yaml"
        assert load(written.read_text()) == load(edge.with_origins(text, ("https://shop.example",)))
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_run_refuses_a_bad_origin_list_with_one_line(tmp_path):
    env = {**os.environ, "NUDGE_EDGE_ALLOWED_ORIGINS": "https://shop.example/", "TMPDIR": str(tmp_path)}
    result = subprocess.run([sys.executable, "-m", "nudgetools.edge", "--run", str(edge.COMMITTED[0])], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "nudge edge: configuration error: NUDGE_EDGE_ALLOWED_ORIGINS must be origins like https://shop.example "
        "(scheme, host and port only), got 'https://shop.example/'"]
    assert not (tmp_path / "nudge-envoy.yaml").exists()
