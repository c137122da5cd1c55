"""`nudge run`: the whole system on one machine, for trying Nudge and developing it: the
database, its schemas, the four services as processes (each as several replicas if asked:
`--replicas decision=3,delivery=2`, or NUDGE_REPLICAS), Envoy in front of them as the one
public port (nudgetools.edge), the demo app, and the demo shop page's server
(nudgetools.demo_server) when the page is built. With `--tls`, every connection is encrypted:
a local CA and certificates in the data folder's `tls/` (nudgetools.certs), mutual TLS between
the processes and the edge on its TLS port only.

Before anything starts, it checks what would stop it half-way, each reported on one line
with exit status 2: a bad setting, a data folder another `nudge run` holds, a gRPC, metrics or
edge port another process listens on. Once everything is up (the banner), the processes are
supervised (nudgetools.supervisor): one that exits is restarted with a backoff while the others
go on. Ctrl-C or SIGTERM stops everything.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import secrets
import signal
from pathlib import Path
from typing import IO

from console.settings import ConsoleSettings
from nudgelib.config import SERVICES, ConfigError, ServiceSettings
from nudgelib.tls import load_pair
from nudgetools import certs as local_certs, demo, demo_server
from nudgetools.cluster import EDGE, REPO, Cluster, cannot_listen, instance_names, replica_ports
from nudgetools.edge import ANY_ORIGIN, Edge, EdgeSettings
from nudgetools.webconsole import ConsoleProcess
from nudgetools.database import database_url, migrate_all
from nudgetools.supervisor import Supervisor


# Replicas per service that `nudge run` starts at most (their ports are the service's + 100·k).
MAX_REPLICAS = 16


def parse_replicas(text: str, source: str = "NUDGE_REPLICAS") -> dict[str, int]:
    """`decision=3,delivery=2` as {"decision": 3, "delivery": 2} (services not named: one);
    ConfigError naming `source` for anything else."""
    counts: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, equals, count = (x.strip() for x in item.partition("="))
        if not equals or name not in SERVICES:
            raise ConfigError(f"{source} must be like decision=3,delivery=2 (services: {', '.join(SERVICES)}), "
                              f"got {item!r}")
        if not count.isdigit() or not 1 <= int(count) <= MAX_REPLICAS:
            raise ConfigError(f"{source}: {name}'s replicas must be a whole number from 1 to {MAX_REPLICAS}, "
                              f"got {count!r}")
        counts[name] = int(count)
    return counts


# The name of the demo shop's server among the processes.
DEMO = "demo"


def demo_lines(cluster: Cluster, skipped: str | None) -> list[str]:
    if DEMO in cluster.sidecars:
        return [f"  {'demo shop':<15} {cluster.sidecars[DEMO].url}/"
                "   (sign up, add to cart, leave, come back: the messages appear as they are sent)"]
    return [f"  {'demo shop':<15} not served: {skipped}"] if skipped else []


def banner(cluster: Cluster, app_id: str, keys: dict[str, str], demo_skipped: str | None = None) -> str:
    # Calls go through the edge; without one, straight to a replica.
    rows = []
    # TLS at the edge: --tls (the local CA's certificates), or the operator's certificate.
    tls = cluster.edge is not None and cluster.edge.tls is not None
    if cluster.edge is not None:
        ingestion = delivery = cluster.target(EDGE)
        kind = "grpc+tls" if tls else "grpc"
        rows.append(f"  {'edge':<15} {kind} {ingestion:<17} admin http://{cluster.edge.admin_target}/stats/prometheus"
                    "   (the public API of all four services)")
    else:
        ingestion, delivery = cluster.target("ingestion"), cluster.target("delivery")
    if cluster.console is not None:
        rows.append(f"  {'console':<15} {cluster.console.url:<22}"
                    "   (the web console: sign in with the admin key below)")
    # The edge routes no reflection: buf reads the API from the checkout's protos.
    protos = REPO / "protos"
    schema = "--schema protos " if Path.cwd() == REPO else f"--schema {protos} "
    # With TLS, buf negotiates HTTP/2 by ALPN and trusts the local CA.
    connect = (f"--cacert {cluster.certs.ca} " if cluster.certs else "") if tls else "--http2-prior-knowledge "
    scheme = "https" if tls else "http"
    trust = []
    if cluster.certs is not None:
        c = cluster.certs
        trust = ["The `nudge` commands and nudge_client trust the local CA (and, to call a service directly, "
                 "present the operator's certificate):",
                 f"  export NUDGE_TARGET={cluster.target(EDGE)} NUDGE_TLS_CA_FILE={c.ca}",
                 f"  export NUDGE_TLS_CERT_FILE={c.cert(local_certs.OPERATOR)} "
                 f"NUDGE_TLS_KEY_FILE={c.key(local_certs.OPERATOR)}", ""]
    rows += [f"  {n:<15} grpc {cluster.target(n):<17} metrics http://127.0.0.1:{cluster.metrics_ports[n]}/metrics"
             for n in cluster.ports]
    rows += demo_lines(cluster, demo_skipped)
    lines = [
        "",
        "Nudge is running.",
        *rows,
        "",
        f"Demo app {app_id} (a 'Welcome' campaign for users who performed `signup`):",
        f"  export NUDGE_ADMIN_KEY={keys['admin']}",
        f"  export NUDGE_EVENTS_KEY={keys['events']}",
        f"  export NUDGE_CLIENT_KEY={keys['client']}",
        # The shop page's key: valid only with a user token (README: Public-client keys).
        *([f"  export NUDGE_PUBLIC_KEY={keys[demo.PUBLIC_LABEL]}"] if demo.PUBLIC_LABEL in keys else []),
        "",
        *trust,
        "Send a signup for u1, then ask for u1's next message (buf is in .venv/bin):",
        f"  buf curl {schema}--protocol grpc {connect}-H \"authorization: Bearer $NUDGE_EVENTS_KEY\" \\",
        "    -d '{\"events\":[{\"eventId\":\"e1\",\"userId\":\"u1\",\"name\":\"signup\"}]}' \\",
        f"    {scheme}://{ingestion}/nudge.ingestion.v1.IngestionService/TrackEvents",
        f"  buf curl {schema}--protocol grpc {connect}-H \"authorization: Bearer $NUDGE_CLIENT_KEY\" \\",
        "    -d '{\"userId\":\"u1\",\"platform\":\"PLATFORM_IOS\"}' \\",
        f"    {scheme}://{delivery}/nudge.delivery.v1.DeliveryService/FetchMessages",
        "",
        "Ctrl-C stops everything.",
    ]
    return "\n".join(lines)


class FolderInUse(Exception):
    """Another `nudge run` holds the data folder; the message names it."""


def claim(folder: Path) -> IO[str]:
    """Takes the data folder for this `nudge run` for as long as the returned file stays open
    (an exclusive lock on its `run.lock`, released by the system if the process dies, so a
    crash leaves nothing stale). Two runs on one folder would share its PostgreSQL and demo
    keys while their services fought over the ports."""
    folder.mkdir(parents=True, exist_ok=True)
    lock = open(folder / "run.lock", "a+")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.seek(0)
        holder = lock.read().strip() or "unknown"
        lock.close()
        raise FolderInUse(f"data folder {folder} is in use by another `nudge run` (pid {holder})") from None
    lock.truncate(0)
    lock.write(f"{os.getpid()}\n")
    lock.flush()
    return lock


def busy_port(settings: dict[str, ServiceSettings], replicas: dict[str, int] | None = None,
              edge: EdgeSettings | None = None, tls: bool = False,
              shop: demo_server.DemoSettings | None = None, console: ConsoleSettings | None = None) -> str | None:
    """The first gRPC, metrics or edge port that could not be listened on, as one line."""
    replicas = replicas or {}
    for name, s in settings.items():
        upper = name.upper()
        instances = instance_names(name, replicas.get(name, 1))
        for variable, base in ((f"NUDGE_{upper}_PORT", s.port), (f"NUDGE_{upper}_METRICS_PORT", s.metrics_port)):
            for instance, port in replica_ports({name: base}, {name: len(instances)}).items():
                if port and (why := cannot_listen(s.bind_host, port)):
                    whose = name if instance == name else f"{name}, replica {instance}"
                    return f"port {port} ({variable}, {whose}) on {s.bind_host} {why}"
    if edge is not None:
        public = ("NUDGE_EDGE_TLS_PORT", edge.tls_port) if tls or edge.tls else ("NUDGE_EDGE_PORT", edge.port)
        for variable, port in (public, ("NUDGE_EDGE_ADMIN_PORT", edge.admin_port)):
            if why := cannot_listen(edge.bind_host, port):
                return f"port {port} ({variable}, the edge) on {edge.bind_host} {why}"
    if shop is not None and (why := cannot_listen(shop.bind_host, shop.port)):
        return f"port {shop.port} (NUDGE_DEMO_PORT, the demo shop) on {shop.bind_host} {why}"
    if console is not None and (why := cannot_listen(console.bind_host, console.port)):
        return f"port {console.port} (NUDGE_CONSOLE_PORT, the console) on {console.bind_host} {why}"
    return None


async def run_local(data_dir: Path, replicas: str | None = None, tls: bool = False) -> int:
    """`replicas` as `--replicas` gives it (it wins over NUDGE_REPLICAS); `tls` as `--tls`."""
    env = os.environ
    try:
        # The same checks the services make, before anything starts.
        settings = {name: ServiceSettings.from_env(name, {**env, "DATABASE_URL": "postgresql://check",
                                                          "NUDGE_INTERNAL_TOKEN": "x" * 16})
                    for name in SERVICES}
        edge = EdgeSettings.from_env(env)
        if edge.tls is not None:  # the operator's own certificate for the edge's listener
            load_pair("NUDGE_EDGE_TLS_CERT_FILE", edge.tls_cert_file, "NUDGE_EDGE_TLS_KEY_FILE", edge.tls_key_file)
        shop = demo_server.DemoSettings.from_env(env)
        console = ConsoleSettings.from_env(env)
        counts = (parse_replicas(replicas, "--replicas") if replicas is not None
                  else parse_replicas(env.get("NUDGE_REPLICAS", "")))
    except ConfigError as exc:
        print(f"nudge run: configuration error: {exc}")
        return 2
    # A folder that does not exist yet is nobody's; it is claimed once created.
    lock = None
    try:
        if data_dir.exists():
            lock = claim(data_dir)
        if problem := busy_port(settings, counts, edge, tls, shop if site_built() else None, console):
            print(f"nudge run: {problem}")
            return 2
        url = await database_url(create=True)
        lock = lock or claim(data_dir)
    except FolderInUse as exc:
        print(f"nudge run: {exc}")
        return 2
    try:
        certs = local_certs.issue(data_dir / "tls") if tls else None
        return await _serve(url, data_dir, settings, counts, edge, shop, console, certs)
    finally:
        lock.close()


def with_shop(origins: tuple[str, ...], shop: demo_server.DemoSettings) -> tuple[str, ...]:
    """The edge's allowed origins, and the demo page's own when they are a list and it is
    served: the page `nudge run` serves must be able to call the edge `nudge run` starts."""
    if origins == (ANY_ORIGIN,) or not site_built():
        return origins
    return tuple(dict.fromkeys((*origins, demo_server.origin(shop.bind_host, shop.port))))


def site_built() -> bool:
    return (demo_server.SITE / "shop.js").is_file()


async def _start_shop(cluster: Cluster, url: str, data_dir: Path, app_id: str, keys: dict[str, str],
                      shop: demo_server.DemoSettings) -> str | None:
    """The shop's signing key and campaigns, and its server if the page is built; returns why
    the page is not served, or None."""
    signer, registered = await demo.shop_signer(url, app_id, data_dir)
    if registered:  # a new data folder, or one from before the shop
        await demo.seed_shop(cluster.target("decision"), keys["admin"], cluster.credentials())
    if not site_built():
        return (f"{demo_server.SITE.relative_to(REPO)} is not built "
                "(`make run` builds it when npm is installed: Node 20 and npm)")
    assert cluster.edge is not None
    # With TLS at the edge the page calls it over https (a browser must trust its certificate).
    scheme = "https" if cluster.edge.tls is not None else "http"
    cluster.sidecars[DEMO] = demo_server.sidecar(shop.bind_host, shop.port, f"{scheme}://{cluster.edge.target}",
                                                 keys[demo.PUBLIC_LABEL], signer.key_file, signer.kid)
    cluster.start((DEMO,))
    await cluster.wait_ready(names=(DEMO,))
    return None


async def _serve(url: str, data_dir: Path, settings: dict[str, ServiceSettings], replicas: dict[str, int],
                 edge: EdgeSettings, shop: demo_server.DemoSettings, console: ConsoleSettings,
                 certs: local_certs.LocalCerts | None = None) -> int:
    env = os.environ
    await migrate_all(url)
    cluster = Cluster(
        database_url=url,
        internal_token=env.get("NUDGE_INTERNAL_TOKEN") or secrets.token_urlsafe(24),
        ports=replica_ports({n: s.port for n, s in settings.items()}, replicas),
        metrics_ports=replica_ports({n: s.metrics_port for n, s in settings.items()}, replicas),
        # With TLS (--tls, or the edge's own certificate), on the TLS port only.
        edge=Edge(edge.tls_port if certs or edge.tls else edge.port, edge.admin_port, data_dir / "envoy.yaml",
                  host=edge.bind_host, origins=with_shop(edge.allowed_origins, shop), tls=edge.tls),
        certs=certs,
    )
    # The console calls the public API through the edge, as an operator's browser would reach it.
    cluster.console = ConsoleProcess(console.port, console.target or cluster.edge.target, host=console.bind_host,
                                     ca_file=str(certs.ca) if certs is not None else None)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    supervisor = Supervisor(cluster)
    cluster.start()
    try:
        # A service that exits before it is first ready is a start-up error, not a crash:
        # it would only fail again, so everything stops with its reason.
        ready = asyncio.ensure_future(cluster.wait_ready())
        stopped = asyncio.ensure_future(stop.wait())
        await asyncio.wait((ready, stopped), return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        if not ready.done():
            ready.cancel()
            return 130
        ready.result()
        app_id, keys, created = await demo.app_keys(url, data_dir / "demo-keys.json")
        if created:
            await demo.seed(cluster.target("segmentation"), cluster.target("decision"), keys["admin"],
                            cluster.credentials())
        skipped = await _start_shop(cluster, url, data_dir, app_id, keys, shop)
        print(banner(cluster, app_id, keys, skipped), flush=True)
        supervisor.start()
        await stop.wait()
        return 0
    finally:
        await supervisor.stop()
        print("stopping services…", flush=True)
        cluster.stop()
