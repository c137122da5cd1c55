"""The edge's configuration: the committed files are the template's dns variant, Envoy accepts
both variants, and the routes send every public method, and no internal one, to its service,
with streams free of a route timeout."""

from __future__ import annotations

import importlib
import pkgutil
import re
import subprocess
from pathlib import Path

import pytest

from nudgelib.config import SERVICES
from nudgetools import edge

ADDRESSES = {name: [f"127.0.0.1:{50051 + i}", f"127.0.0.1:{50151 + i}"] for i, name in enumerate(SERVICES)}


def methods():
    """Every RPC of every Nudge service, public and internal: (path, service, streaming)."""
    for name in SERVICES:
        package = importlib.import_module(f"nudge.{name}.v1")
        for module in (m.name for m in pkgutil.iter_modules(package.__path__) if m.name.endswith("_pb2")):
            descriptor = importlib.import_module(f"nudge.{name}.v1.{module}").DESCRIPTOR
            for service in descriptor.services_by_name.values():
                for m in service.methods:
                    yield f"/{service.full_name}/{m.name}", service.full_name, m.client_streaming or m.server_streaming


def routes(config: str) -> list[tuple[str, str, str, str]]:
    """The routes in order: (match kind, value, cluster, timeout)."""
    found = re.findall(r"- match: \{ (path|prefix): (\S+) \}\n\s+route: \{ cluster: (\w+), timeout: (\w+)", config)
    assert found
    return found


def route_for(config: str, path: str) -> tuple[str, str] | None:
    for kind, value, cluster, timeout in routes(config):
        if (kind == "path" and path == value) or (kind == "prefix" and path.startswith(value)):
            return cluster, timeout
    return None


def test_the_committed_configuration_is_the_templates_dns_variant():
    assert edge.stale() == [], "run `python -m nudgetools.edge` after changing deploy/envoy/envoy.yaml.in"
    committed = edge.COMMITTED[0].read_text()
    assert "type: STRICT_DNS" in committed and "type: STATIC" not in committed
    for i, name in enumerate(SERVICES):
        assert f"address: {name}, port_value: {50051 + i}" in committed
    assert "port_value: 8080" in committed and "port_value: 9901" in committed


def envoy_validates(text: str, folder: Path) -> None:
    """Envoy itself accepts the configuration (`--mode validate`), with nothing deprecated in it."""
    path = folder / "envoy.yaml"
    path.write_text(text)
    result = subprocess.run([str(edge.binary()), "--mode", "validate", "--config-path", str(path),
                             "--disable-hot-restart", "--log-level", "warning"], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    # Nothing a coming Envoy release drops.
    assert "Deprecated field" not in result.stdout + result.stderr


@pytest.mark.parametrize("variant", ["static", "dns"])
def test_envoy_accepts_the_configuration(variant, tmp_path):
    text = edge.render_static(ADDRESSES, "127.0.0.1", 18080, 19901) if variant == "static" else edge.render_dns()
    if variant == "dns":
        # Envoy reads the descriptor set while validating: the checkout's stands for the mount.
        assert edge.MOUNTED_DESCRIPTOR_SET in text
        text = text.replace(edge.MOUNTED_DESCRIPTOR_SET, str(edge.DESCRIPTOR_SET))
    envoy_validates(text, tmp_path)


@pytest.mark.parametrize("variant", ["static", "dns"])
def test_every_public_method_and_no_internal_one_is_routed_to_its_service(variant):
    config = edge.render_static(ADDRESSES, "127.0.0.1", 18080, 19901) if variant == "static" else edge.render_dns()
    for path, service, streaming in methods():
        route = route_for(config, path)
        if "InternalService" in service:
            assert route is None, path
            continue
        assert route is not None, path
        cluster, timeout = route
        assert service in edge.public_services(cluster), path
        # Envoy's default route timeout would end a stream after 15 s.
        assert (timeout == "0s") == streaming, path


def test_the_static_variant_lists_every_replica():
    config = edge.render_static(ADDRESSES, "127.0.0.1", 18080, 19901)
    for addresses in ADDRESSES.values():
        for address in addresses:
            host, port = address.split(":")
            assert f"address: {host}, port_value: {port} }}" in config
    assert "port_value: 18080" in config and "port_value: 19901" in config
