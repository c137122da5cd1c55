"""Configuration from environment variables, parsed once into frozen dataclasses.

Each field of a settings dataclass says where it comes from: `setting(...)` gives its
variable's name, its default and its bounds, and `read` fills any such class from an
environment. A missing or malformed value raises ConfigError with one line naming the
variable; a service prints it and stops before it touches the database (`load_or_exit`).

A secret (`setting(..., from_file=True)`) may instead be read from the file that `<NAME>_FILE`
names, as container platforms hand secrets over as files (compose volumes, Kubernetes Secrets).
"""

from __future__ import annotations

import ipaddress
import math
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, TypeVar, get_type_hints

SERVICES = ("ingestion", "segmentation", "decision", "delivery")
DEFAULT_PORTS = {"ingestion": 50051, "segmentation": 50052, "decision": 50053, "delivery": 50054}
DEFAULT_METRICS_PORTS = {"ingestion": 9461, "segmentation": 9462, "decision": 9463, "delivery": 9464}
_POSTGRES = ("postgres://", "postgresql://")

T = TypeVar("T")


class ConfigError(Exception):
    """A configuration value is missing or invalid; the message names the variable."""


@dataclass(frozen=True)
class Variable:
    """Where one field's value comes from, and what it may be."""

    # The variables read, the first one set wins; `{SERVICE}` stands for the service's name.
    names: tuple[str, ...]
    # MISSING: required. A mapping: the default of each service, by name.
    default: Any = MISSING
    # Inclusive bounds of a number.
    low: float | None = None
    high: float | None = None
    # The values a string may take (compared lower-cased).
    choices: tuple[str, ...] = ()
    min_length: int = 0
    # The prefixes a URL must start with.
    schemes: tuple[str, ...] = ()
    # Also read from the file named by `<name>_FILE` (surrounding whitespace dropped).
    from_file: bool = False


_VARIABLE = "nudge.variable"
_GROUP = "nudge.group"


def setting(name: str, default: Any = MISSING, *, fallback: tuple[str, ...] = (), low: float | None = None,
            high: float | None = None, choices: tuple[str, ...] = (), min_length: int = 0,
            schemes: tuple[str, ...] = (), from_file: bool = False) -> Any:
    """A dataclass field read from the variable `name` (else from those in `fallback`)."""
    variable = Variable((name, *fallback), default, low, high, choices, min_length, schemes, from_file)
    if default is MISSING or isinstance(default, Mapping):
        return field(metadata={_VARIABLE: variable})
    return field(default=default, metadata={_VARIABLE: variable})


def group(cls: type) -> Any:
    """A dataclass field holding another settings class, read from the same environment."""
    return field(default_factory=cls, metadata={_GROUP: cls})


def read(cls: type[T], env: Mapping[str, str] | None = None, service: str | None = None,
         given: Mapping[str, Any] | None = None) -> T:
    """An instance of the settings dataclass `cls` from `env` (by default the process's):
    each `setting` field from its variable, `group` fields likewise, `given` as they are."""
    env = os.environ if env is None else env
    values = dict(given or {})
    types = get_type_hints(cls)
    for f in fields(cls):
        if f.name in values:
            continue
        if _GROUP in f.metadata:
            values[f.name] = read(f.metadata[_GROUP], env, service)
        elif _VARIABLE in f.metadata:
            values[f.name] = _value(f.metadata[_VARIABLE], types[f.name], env, service)
    return cls(**values)


class Settings:
    """A settings dataclass readable with `from_env` (a service's own settings)."""

    @classmethod
    def from_env(cls: type[T], env: Mapping[str, str] | None = None) -> T:
        return read(cls, env)


def _value(variable: Variable, kind: type, env: Mapping[str, str], service: str | None) -> Any:
    names = [n.format(SERVICE=service.upper()) if "{" in n else n for n in variable.names]
    for name in names:
        raw = env.get(name, "").strip()
        path = env.get(name + "_FILE", "").strip() if variable.from_file else ""
        if raw and path:
            raise ConfigError(f"set {name} or {name}_FILE, not both")
        if path:
            name, raw = name + "_FILE", _read_file(name + "_FILE", path)
        if raw:
            return _checked(variable, name, _parse(kind, name, raw))
    default = variable.default
    if isinstance(default, Mapping):
        default = default[service]
    if default is MISSING:
        if variable.from_file:
            names = [*(n + "_FILE" for n in names), *names]
        others = f" (or {', '.join(names[:-1])})" if len(names) > 1 else ""
        raise ConfigError(f"{names[-1]}{others} is required but not set")
    return default


def _read_file(name: str, path: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            raw = f.read().strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not UTF-8 text"
        raise ConfigError(f"{name}: cannot read {path}: {reason}") from None
    if not raw:
        raise ConfigError(f"{name}: {path} is empty")
    return raw


def _parse(kind: type, name: str, raw: str) -> Any:
    if kind is int:
        try:
            return int(raw)
        except ValueError:
            raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if kind is float:
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise ConfigError(f"{name} must be a number, got {raw!r}")
        return value
    return raw


def _show(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else str(number)


def _checked(v: Variable, name: str, value: Any) -> Any:
    if isinstance(value, (int, float)):
        low, high = v.low, v.high
        if (low is not None and value < low) or (high is not None and value > high):
            if low is not None and high is not None:
                raise ConfigError(f"{name} must be between {_show(low)} and {_show(high)}, got {_show(value)}")
            if low is not None:
                raise ConfigError(f"{name} must be at least {_show(low)}, got {_show(value)}")
            raise ConfigError(f"{name} must be at most {_show(high)}, got {_show(value)}")
        return value
    if v.choices:
        value = value.lower()
        if value not in v.choices:
            raise ConfigError(f"{name} must be one of {', '.join(v.choices)}, got {value!r}")
    if len(value) < v.min_length:
        raise ConfigError(f"{name} must be at least {v.min_length} characters")
    if v.schemes and not value.startswith(v.schemes):
        raise ConfigError(f"{name} must be a {v.schemes[-1]} URL")
    return value


def variables(cls: type) -> dict[str, Variable]:
    """The variable of each `setting` field of `cls`, by field name (for docs and tests)."""
    return {f.name: f.metadata[_VARIABLE] for f in fields(cls) if _VARIABLE in f.metadata}


def peer_address(env: Mapping[str, str], service: str) -> str:
    """How this process reaches `service`, as a gRPC target: NUDGE_<SERVICE>_ADDR (see
    `peer_target`), by default its local port."""
    raw = _value(Variable(("NUDGE_{SERVICE}_ADDR",), f"127.0.0.1:{DEFAULT_PORTS[service]}"), str, env, service)
    return peer_target(f"NUDGE_{service.upper()}_ADDR", raw)


_SCHEMES = ("dns:", "ipv4:", "ipv6:", "unix:")


def peer_target(name: str, raw: str) -> str:
    """The gRPC target for a peer's address as an operator writes it:

    - `host:port`: one name (resolved by DNS; calls go round robin over every address it
      resolves to, as a Kubernetes headless Service gives one per pod), or one replica;
    - `dns:///host:port` (or any `ipv4:`, `ipv6:`, `unix:` target): as gRPC takes it;
    - `10.0.0.5:50053,10.0.0.6:50053`: a list of replicas by IP address (gRPC's `ipv4:` or
      `ipv6:` target), balanced round robin. A list of names is refused: gRPC resolves one name
      per channel, so give a single name that resolves to every replica instead.
    """
    if raw.startswith(_SCHEMES):
        return raw
    items = [item.strip() for item in raw.split(",")]
    families = set()
    for item in items:
        host, colon, port = item.rpartition(":")
        if not colon or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
            raise ConfigError(f"{name} must be host:port, a comma-separated list of ip:port, or dns:///host:port; "
                              f"got {item!r}")
        if len(items) > 1:
            try:
                families.add(ipaddress.ip_address(host.strip("[]")).version)
            except ValueError:
                raise ConfigError(f"{name}: a list holds IP addresses, got {host!r}; for replicas behind one "
                                  "name give that name alone (dns:///host:port)") from None
    if len(items) == 1:
        return items[0]
    if len(families) > 1:
        raise ConfigError(f"{name}: a list holds IPv4 or IPv6 addresses, not both")
    return f"ipv{families.pop()}:" + ",".join(items)


def replicas_of(target: str) -> int | None:
    """How many replicas a peer target names, when it says: the addresses of an `ipv4:` or
    `ipv6:` list, or one for a single IP address; None for a name (DNS may give any number)."""
    if target.startswith(("ipv4:", "ipv6:")):
        return len(target.split(":", 1)[1].split(","))
    host = target.rpartition(":")[0].strip("[]")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return None
    return 1


@dataclass(frozen=True)
class LogSettings(Settings):
    format: str = setting("NUDGE_LOG_FORMAT", "auto", choices=("auto", "console", "json"))
    level: str = setting("NUDGE_LOG_LEVEL", "info", choices=("debug", "info", "warning", "error"))


@dataclass(frozen=True)
class TraceSettings(Settings):
    """Where traces go (nudgelib.tracing): nowhere unless an OTLP/gRPC endpoint is set."""

    # http://collector:4317 (plaintext) or https://... ; NUDGE_OTLP_ENDPOINT wins over the
    # standard OpenTelemetry variables, for a deployment that sets those for something else.
    endpoint: str = setting("NUDGE_OTLP_ENDPOINT", "",
                            fallback=("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"),
                            schemes=("http://", "https://"))
    # The service.name of the spans; by default nudge-<service>, which `nudge run` needs as it
    # starts the four services with one environment.
    service_name: str = setting("OTEL_SERVICE_NAME", "")
    sdk_disabled: str = setting("OTEL_SDK_DISABLED", "false", choices=("true", "false"))

    @property
    def on(self) -> bool:
        return bool(self.endpoint) and self.sdk_disabled != "true"


@dataclass(frozen=True)
class UserTokenSettings(Settings):
    """How user tokens (the JWTs of public keys, nudgelib.user_tokens) are checked."""

    # The longest lifetime (exp - iat) a token may have; 24 hours by default.
    max_lifetime_seconds: float = setting("NUDGE_USER_TOKEN_MAX_LIFETIME_SECONDS", 86_400.0, low=60, high=7 * 86_400)
    # Tolerance for clock skew on exp, nbf and iat.
    leeway_seconds: float = setting("NUDGE_USER_TOKEN_LEEWAY_SECONDS", 30.0, low=0, high=300)


@dataclass(frozen=True)
class TlsSettings(Settings):
    """Mutual TLS between the services (nudgelib.tls): this process's certificate (PEM, its
    chain), the certificate's key, and the CA its peers' certificates are signed by. All
    three or none; none is plaintext."""

    cert_file: str = setting("NUDGE_TLS_CERT_FILE", "")
    key_file: str = setting("NUDGE_TLS_KEY_FILE", "")
    ca_file: str = setting("NUDGE_TLS_CA_FILE", "")


@dataclass(frozen=True, kw_only=True)
class ServiceSettings:
    """Everything one service process needs to start."""

    service: str
    database_url: str = setting("NUDGE_{SERVICE}_DATABASE_URL", fallback=("DATABASE_URL",), schemes=_POSTGRES)
    # Where API keys live; the same database as the service's unless split on purpose.
    accounts_database_url: str = setting("NUDGE_ACCOUNTS_DATABASE_URL",
                                         fallback=("NUDGE_{SERVICE}_DATABASE_URL", "DATABASE_URL"),
                                         schemes=_POSTGRES)
    bind_host: str = setting("NUDGE_BIND_HOST", "127.0.0.1")
    port: int = setting("NUDGE_{SERVICE}_PORT", DEFAULT_PORTS, low=0, high=65535)
    # 0 disables the metrics endpoint.
    metrics_port: int = setting("NUDGE_{SERVICE}_METRICS_PORT", DEFAULT_METRICS_PORTS, low=0, high=65535)
    internal_token: str = setting("NUDGE_INTERNAL_TOKEN", min_length=16, from_file=True)
    peers: Mapping[str, str]
    log: LogSettings = group(LogSettings)
    tracing: TraceSettings = group(TraceSettings)
    user_tokens: UserTokenSettings = group(UserTokenSettings)
    tls: TlsSettings = group(TlsSettings)
    # Seconds in-flight calls get after SIGTERM.
    shutdown_grace: float = setting("NUDGE_SHUTDOWN_GRACE_SECONDS", 5.0, low=0, high=300)
    # A client's connection is asked to move on (GOAWAY) after this many seconds (0: never),
    # so that clients balancing over replicas reconnect and spread onto replicas started since.
    max_connection_age: float = setting("NUDGE_MAX_CONNECTION_AGE_SECONDS", 300.0, low=0, high=86400)
    # Calls still running on a connection past its age, streams included, get this long
    # before it is closed under them.
    max_connection_age_grace: float = setting("NUDGE_MAX_CONNECTION_AGE_GRACE_SECONDS", 3600.0, low=0, high=86400)
    db_pool_min: int = setting("NUDGE_{SERVICE}_DB_POOL_MIN", 2, low=1, high=1000)
    db_pool_max: int = setting("NUDGE_{SERVICE}_DB_POOL_MAX", 10, low=1, high=1000)
    # uvloop | asyncio (nudgelib.runtime)
    event_loop: str = setting("NUDGE_EVENT_LOOP", "uvloop", choices=("uvloop", "asyncio"))

    @classmethod
    def from_env(cls, service: str, env: Mapping[str, str] | None = None) -> "ServiceSettings":
        env = os.environ if env is None else env
        peers = {name: peer_address(env, name) for name in SERVICES if name != service}
        settings = read(cls, env, service, given={"service": service, "peers": peers})
        if settings.db_pool_min > settings.db_pool_max:
            prefix = f"NUDGE_{service.upper()}_DB_POOL"
            raise ConfigError(f"{prefix}_MIN must not exceed {prefix}_MAX, got {settings.db_pool_min} > "
                              f"{settings.db_pool_max}")
        return settings


def event_loop_from_env(env: Mapping[str, str]) -> str:
    """NUDGE_EVENT_LOOP: uvloop (the default) or asyncio; see nudgelib.runtime."""
    return _value(variables(ServiceSettings)["event_loop"], str, env, None)


def load_or_exit(service: str, load: Callable[[], T] | None = None) -> T:
    """Runs `load` (by default: the shared settings from the environment), or prints one line
    naming the bad variable and exits with status 2."""
    try:
        return load() if load is not None else ServiceSettings.from_env(service)
    except ConfigError as exc:
        print(f"nudge-{service}: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
