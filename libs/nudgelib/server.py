"""Bootstrap shared by the four services.

Start-up: read and check the settings (a bad value stops here, before the database is
touched), wait for the database, apply the service's migrations, load API keys, wire the
servicers, listen, then report SERVING. Shutdown (SIGTERM / SIGINT): report NOT_SERVING,
give load balancers a moment to notice, drain in-flight calls, close peers and pool.

Background tasks are supervised: one that fails (a loop that met a bug, see nudgelib.loops)
or ends is logged with its name, the service reports NOT_SERVING and shuts down, and its
process exits with status 1, for its supervisor to restart it.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import grpc
import prometheus_client as prom
import structlog
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection

from nudgelib import accounts, db, runtime
from nudgelib.accounts import KeyCache
from nudgelib.clients import Peer
from nudgelib.clock import Clock, SystemClock
from nudgelib.loops import Loop
from nudgelib.config import ConfigError, ServiceSettings, load_or_exit
from nudgelib.interceptor import AccessPolicy, Authenticator, ServerInterceptor
from nudgelib.metrics import RpcMetrics, serve_metrics
from nudgelib.request_checks import RequestDoor
from nudgelib.tls import TlsFiles, load as load_tls
from nudgelib.tracing import Tracing
from nudgelib.user_token_keys import UserTokenKeyCache, UserTokens, changed_app
from nudgelib.user_tokens import TokenRules

log = structlog.get_logger(__name__)

SERVER_OPTIONS = [
    ("grpc.max_receive_message_length", 16 * 1024 * 1024),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    # grpc sets SO_REUSEPORT by default on Linux: a second process would bind a taken port
    # silently and share its calls. Off, it fails to start and says which port.
    ("grpc.so_reuseport", 0),
]


def server_options(settings: ServiceSettings) -> list[tuple[str, int]]:
    """SERVER_OPTIONS, and the connection age the settings give: a connection older than
    that gets a GOAWAY (gRPC adds ±10% jitter, so replicas' clients do not reconnect in step);
    the client opens a new one, re-resolving its target, and so spreads onto replicas started
    after it first connected. Calls in flight keep the old connection for the grace."""
    options = list(SERVER_OPTIONS)
    if settings.max_connection_age > 0:
        options += [("grpc.max_connection_age_ms", int(settings.max_connection_age * 1000)),
                    ("grpc.max_connection_age_grace_ms", int(settings.max_connection_age_grace * 1000))]
    return options


@dataclass(frozen=True)
class ServiceSpec:
    """What distinguishes one service: its schema, migrations, API and how to wire it."""

    name: str
    migrations: Path
    policy: AccessPolicy
    # Fully qualified gRPC service names, for health and reflection.
    service_names: tuple[str, ...]
    # Reads and checks the service's own settings from an environment (its settings
    # class's from_env); they are read before the database is touched.
    settings: Callable[[Mapping[str, str]], Any]
    # Wires the servicers and background loops, given the host and the service's settings.
    wire: Callable[["ServiceHost", Any], Awaitable[None]]
    # The peers it calls, by service name.
    peers: tuple[str, ...] = ()
    # Message types (full names) whose items the service validates one by one, answering
    # partial success; the generic request checks leave them to it (nudgelib.request_checks).
    per_item: tuple[str, ...] = ()
    # Message types (full names) that reach the service only from another Nudge service that
    # checked them where they entered Nudge; the generic checks leave them alone too, as a
    # second walk of every event of a batch would cost a tenth of a consumer's time.
    checked_upstream: tuple[str, ...] = ()

    @property
    def schema(self) -> str:
        return self.name


@dataclass
class ServiceHost:
    """One running service: owns the pool, the gRPC server and everything to close."""

    settings: ServiceSettings
    spec: ServiceSpec
    # The service's own settings (spec.settings); read from the environment at start if not given.
    own_settings: Any = None
    clock: Clock = field(default_factory=SystemClock)
    # Seconds between reporting NOT_SERVING and refusing new calls, so load balancers move on.
    drain_delay: float = 0.5

    pool: asyncpg.Pool = field(init=False)
    # The accounts schema's pool (the service's own when both live in one database).
    accounts_pool: asyncpg.Pool = field(init=False)
    # The user token check of public keys, and its per-app key cache.
    user_tokens: UserTokens = field(init=False)
    server: grpc.aio.Server = field(init=False)
    health: HealthServicer = field(init=False)
    peers: dict[str, Peer] = field(init=False, default_factory=dict)
    # Traces (nudgelib.tracing); None when no OTLP endpoint is set.
    tracing: Tracing | None = field(init=False, default=None)
    port: int = field(init=False, default=0)
    # This process's certificate, key and CA when mutual TLS is on (nudgelib.tls), else None.
    tls: TlsFiles | None = field(init=False, default=None)
    metrics_port: int = field(init=False, default=0)
    registry: prom.CollectorRegistry = field(init=False, default_factory=prom.CollectorRegistry)
    _closers: list[Callable[[], Awaitable[None]]] = field(init=False, default_factory=list)
    _background: list[asyncio.Task[None]] = field(init=False, default_factory=list)
    _listeners: list[db.Listener] = field(init=False, default_factory=list)
    _metrics_server: object = field(init=False, default=None)
    _stopped: asyncio.Event = field(init=False, default_factory=asyncio.Event)
    # Set when a background task failed: the service is NOT_SERVING for good and stops.
    failure: BaseException | None = field(init=False, default=None)
    _failed: asyncio.Event = field(init=False, default_factory=asyncio.Event)
    _health_updates: set[asyncio.Task[None]] = field(init=False, default_factory=set)

    def on_close(self, closer: Callable[[], Awaitable[None]]) -> None:
        """Registers cleanup run at shutdown, after the server has drained, in reverse order."""
        self._closers.append(closer)

    def run_in_background(self, coro: Awaitable[None], name: str) -> None:
        """A task that lives as long as the service; cancelled at shutdown. If it fails or
        ends before, the service turns NOT_SERVING and stops (see the module's docstring)."""
        task = asyncio.ensure_future(coro)
        task.set_name(name)
        task.add_done_callback(self._background_done)
        self._background.append(task)

    def _background_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or self._stopped.is_set():
            return
        error = task.exception() or RuntimeError(f"background task {task.get_name()} ended")
        log.error("background_task_failed", task=task.get_name(), error=f"{type(error).__name__}: {error}")
        if self.failure is None:
            self.failure = error
            self._failed.set()
            if hasattr(self, "health"):  # else start() reports NOT_SERVING when it gets there
                update = asyncio.ensure_future(self._set_health(False))
                self._health_updates.add(update)
                update.add_done_callback(self._health_updates.discard)

    def listener(self, channel: str, on_notify) -> db.Listener:
        return self._listen(self.settings.database_url, channel, on_notify)

    def _listen(self, url: str, channel: str, on_notify) -> db.Listener:
        listener = db.Listener(url, channel, on_notify)
        self.run_in_background(listener.run(), listener.name)
        self._listeners.append(listener)
        return listener

    async def start(self) -> int:
        try:
            return await self._start()
        except BaseException:
            # A start that failed half-way (a port taken, the database gone) leaves nothing
            # running behind it: in a process that goes on (a test starting services in
            # itself), its listeners and loops would go on acting on the shared database.
            self._stopped.set()
            if hasattr(self, "server"):
                await self.server.stop(0)
            await self._release()
            raise

    async def _start(self) -> int:
        s = self.settings
        # Read and checked before anything else: a bad certificate stops start-up like a bad setting.
        self.tls = load_tls(s.tls)
        if self.own_settings is None:
            self.own_settings = self.spec.settings(os.environ)
        await db.wait_for_database(s.database_url)
        await db.migrate(s.accounts_database_url, accounts.SCHEMA, accounts.MIGRATIONS)
        await db.migrate(s.database_url, self.spec.schema, self.spec.migrations)
        self.pool = await db.create_pool(s.database_url, self.spec.schema, s.db_pool_min, s.db_pool_max)
        if s.accounts_database_url == s.database_url:
            keys_pool = self.pool
        else:
            keys_pool = await db.create_pool(s.accounts_database_url, accounts.SCHEMA, 1, 2)
            self.on_close(keys_pool.close)
        self.accounts_pool = keys_pool
        keys = KeyCache(keys_pool)
        await keys.reload()
        self.user_tokens = UserTokens(UserTokenKeyCache(keys_pool), self.clock,
                                      TokenRules(s.user_tokens.max_lifetime_seconds, s.user_tokens.leeway_seconds))

        async def on_key_change(payload: str | None) -> None:
            # A change to one app's user token keys leaves API keys alone, and API key changes
            # leave token keys alone; None (notifications may have been missed) drops both.
            app_id = changed_app(payload)
            if app_id is not None:
                self.user_tokens.invalidate(app_id)
                return
            if payload is None:
                self.user_tokens.invalidate()
            await keys.reload()

        self._listen(s.accounts_database_url, accounts.NOTIFY_CHANNEL, on_key_change)

        self.tracing = Tracing.start(self.spec.name, s.tracing, s.internal_token)
        for name in self.spec.peers:
            self.peers[name] = Peer(name, s.peers[name], s.internal_token, self.tls, tracing=self.tracing)

        metrics = RpcMetrics(self.spec.name, self.registry)
        self.server = grpc.aio.server(
            interceptors=[ServerInterceptor(Authenticator(keys, s.internal_token, self.user_tokens), self.spec.policy, metrics,
                                            RequestDoor(self.spec.per_item + self.spec.checked_upstream),
                                            self.tracing)],
            options=server_options(s),
        )
        self.health = HealthServicer()
        for name in ("", *self.spec.service_names):
            await self.health.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        reflection.enable_server_reflection(
            (*self.spec.service_names, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
             reflection.SERVICE_NAME),
            self.server,
        )
        await self.spec.wire(self, self.own_settings)
        try:
            address = f"{s.bind_host}:{s.port}"
            self.port = (self.server.add_secure_port(address, self.tls.server_credentials()) if self.tls
                         else self.server.add_insecure_port(address))
        except RuntimeError:  # grpc's way of saying the port is taken (or the address not ours)
            self.port = 0
        if self.port == 0:
            raise ConfigError(f"NUDGE_{s.service.upper()}_PORT: cannot listen on {s.bind_host}:{s.port} "
                              "(in use by another process?)")
        # No call is served before every listener is listening: a cache filled by a call before
        # then could miss the NOTIFY that invalidates it (an erased user kept by this replica).
        await self._listeners_ready()
        await self.server.start()
        if s.metrics_port:
            try:
                self._metrics_server, _, self.metrics_port = serve_metrics(self.registry, s.bind_host, s.metrics_port)
            except OSError as exc:
                raise ConfigError(f"NUDGE_{s.service.upper()}_METRICS_PORT: cannot listen on "
                                  f"{s.bind_host}:{s.metrics_port}: {exc.strerror}") from None
        self.run_in_background(self._database_watch().run(), "db-health")
        await self._set_health(True)
        log.info("service_started", port=self.port, metrics_port=self.metrics_port)
        return self.port

    async def _listeners_ready(self, timeout: float = 30.0) -> None:
        try:
            await asyncio.wait_for(asyncio.gather(*(x.ready.wait() for x in self._listeners)), timeout)
        except TimeoutError:
            waiting = ", ".join(x.name for x in self._listeners if not x.ready.is_set())
            raise RuntimeError(f"not listening to the database after {timeout:.0f}s: {waiting}") from None

    async def _set_health(self, serving: bool) -> None:
        # A service whose background task failed stays NOT_SERVING until it is restarted.
        serving = serving and self.failure is None
        status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        for name in ("", *self.spec.service_names):
            await self.health.set(name, status)

    def _database_watch(self, interval: float = 0.2, timeout: float = 0.5) -> Loop:
        """Reports NOT_SERVING while the database does not answer, SERVING when it is back:
        within interval + timeout (under a second) either way. The probe has a connection
        of its own, so a busy pool never reads as a lost database."""
        serving = True
        probe = db.Probe(self.settings.database_url, timeout)
        self.on_close(probe.close)

        async def check() -> None:
            nonlocal serving
            ok = await probe.check()
            if ok != serving:
                serving = ok
                log.warning("database_health_changed", serving=ok, **({} if ok else {"error": probe.error}))
                await self._set_health(ok)

        return Loop("db-health", check, poll=interval)

    async def stop(self) -> None:
        if self._stopped.is_set():
            return
        self._stopped.set()
        log.info("service_stopping")
        await self.health.enter_graceful_shutdown()
        await asyncio.sleep(self.drain_delay)
        await self.server.stop(self.settings.shutdown_grace)
        await self._release()
        log.info("service_stopped")

    async def _release(self) -> None:
        """After the server has stopped: cancels the background tasks, runs the closers,
        closes peers and pool, the metrics endpoint, then tracing; only what start() got to."""
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        for closer in reversed(self._closers):
            await closer()
        for peer in self.peers.values():
            await peer.close()
        if hasattr(self, "pool"):
            await self.pool.close()
        if self._metrics_server is not None:
            self._metrics_server.shutdown()
        if self.tracing is not None:
            # Last: the spans of the calls drained above are exported too.
            await asyncio.to_thread(self.tracing.shutdown)

    async def run_until_signalled(self) -> int:
        """Starts, then serves until SIGTERM or SIGINT, or until a background task fails, then
        shuts down gracefully; returns the process's exit status (1 after a failure)."""
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await self.start()
        signalled = asyncio.ensure_future(stop.wait())
        failed = asyncio.ensure_future(self._failed.wait())
        await asyncio.wait((signalled, failed), return_when=asyncio.FIRST_COMPLETED)
        signalled.cancel()
        failed.cancel()
        await self.stop()
        return 1 if self.failure is not None else 0


def main(spec: ServiceSpec) -> None:
    """Entry point of `python -m services.<name>`: settings first (a bad one exits with status
    2 and one line), then serve; exits with status 1 if a background task failed."""
    from nudgelib.logs import configure_logging

    settings = load_or_exit(spec.name, lambda: ServiceSettings.from_env(spec.name))
    own = load_or_exit(spec.name, lambda: spec.settings(os.environ))
    configure_logging(spec.name, settings.log, traced=settings.tracing.on)
    try:
        # A port another process holds stops start-up like a bad setting (ConfigError).
        code = load_or_exit(spec.name, lambda: runtime.run(ServiceHost(settings, spec, own).run_until_signalled(),
                                                           settings.event_loop))
    except KeyboardInterrupt:
        code = 0
    raise SystemExit(code)
