"""Configuration from environment variables, parsed once into frozen dataclasses.

A missing or malformed value stops start-up with one clear line naming the variable.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Mapping

SERVICES = ("ingestion", "segmentation", "decision", "delivery")
DEFAULT_PORTS = {"ingestion": 50051, "segmentation": 50052, "decision": 50053, "delivery": 50054}
DEFAULT_METRICS_PORTS = {"ingestion": 9461, "segmentation": 9462, "decision": 9463, "delivery": 9464}


class ConfigError(Exception):
    """A configuration value is missing or invalid; the message names the variable."""


def env_str(env: Mapping[str, str], name: str, default: str | None = None) -> str:
    value = env.get(name, "").strip()
    if value:
        return value
    if default is None:
        raise ConfigError(f"{name} is required but not set")
    return default


def env_int(env: Mapping[str, str], name: str, default: int, low: int = 0, high: int = 65535) -> int:
    raw = env_str(env, name, str(default))
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if not low <= value <= high:
        raise ConfigError(f"{name} must be between {low} and {high}, got {value}")
    return value


def env_float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env_str(env, name, str(default))
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if value < 0:
        raise ConfigError(f"{name} must not be negative, got {value}")
    return value


def env_choice(env: Mapping[str, str], name: str, default: str, choices: tuple[str, ...]) -> str:
    value = env_str(env, name, default).lower()
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


def _database_url(env: Mapping[str, str], name: str) -> str:
    url = env.get(name, "").strip() or env.get("DATABASE_URL", "").strip()
    if not url:
        raise ConfigError(f"DATABASE_URL (or {name}) is required but not set")
    if not url.startswith(("postgres://", "postgresql://")):
        raise ConfigError(f"{name} must be a postgresql:// URL")
    return url


def event_loop_from_env(env: Mapping[str, str]) -> str:
    """NUDGE_EVENT_LOOP: uvloop (the default) or asyncio; see nudgelib.runtime."""
    return env_choice(env, "NUDGE_EVENT_LOOP", "uvloop", ("uvloop", "asyncio"))


def peer_address(env: Mapping[str, str], service: str) -> str:
    return env_str(env, f"NUDGE_{service.upper()}_ADDR", f"127.0.0.1:{DEFAULT_PORTS[service]}")


@dataclass(frozen=True)
class LogSettings:
    format: str  # auto | console | json
    level: str

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "LogSettings":
        return cls(
            format=env_choice(env, "NUDGE_LOG_FORMAT", "auto", ("auto", "console", "json")),
            level=env_choice(env, "NUDGE_LOG_LEVEL", "info", ("debug", "info", "warning", "error")),
        )


@dataclass(frozen=True)
class ServiceSettings:
    """Everything one service process needs to start."""

    service: str
    database_url: str
    # Where API keys live; the same database as the service's unless split on purpose.
    accounts_database_url: str
    bind_host: str
    port: int
    metrics_port: int  # 0 disables the metrics endpoint
    internal_token: str
    peers: Mapping[str, str]
    log: LogSettings
    shutdown_grace: float
    db_pool_min: int
    db_pool_max: int
    event_loop: str  # uvloop | asyncio (nudgelib.runtime)

    @classmethod
    def from_env(cls, service: str, env: Mapping[str, str] | None = None) -> "ServiceSettings":
        env = os.environ if env is None else env
        prefix = f"NUDGE_{service.upper()}"
        database_url = _database_url(env, f"{prefix}_DATABASE_URL")
        token = env_str(env, "NUDGE_INTERNAL_TOKEN")
        if len(token) < 16:
            raise ConfigError("NUDGE_INTERNAL_TOKEN must be at least 16 characters")
        return cls(
            service=service,
            database_url=database_url,
            accounts_database_url=env_str(env, "NUDGE_ACCOUNTS_DATABASE_URL", database_url),
            bind_host=env_str(env, "NUDGE_BIND_HOST", "127.0.0.1"),
            port=env_int(env, f"{prefix}_PORT", DEFAULT_PORTS[service]),
            metrics_port=env_int(env, f"{prefix}_METRICS_PORT", DEFAULT_METRICS_PORTS[service]),
            internal_token=token,
            peers={name: peer_address(env, name) for name in SERVICES if name != service},
            log=LogSettings.from_env(env),
            shutdown_grace=env_float(env, "NUDGE_SHUTDOWN_GRACE_SECONDS", 5.0),
            db_pool_min=env_int(env, f"{prefix}_DB_POOL_MIN", 2, 1, 1000),
            db_pool_max=env_int(env, f"{prefix}_DB_POOL_MAX", 10, 1, 1000),
            event_loop=event_loop_from_env(env),
        )


def load_or_exit(service: str) -> ServiceSettings:
    """Parses settings, or prints one line and exits with status 2."""
    try:
        return ServiceSettings.from_env(service)
    except ConfigError as exc:
        print(f"nudge-{service}: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
