"""Configuration: defaults that work locally, and one clear line for a bad value."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from dataclasses import MISSING, dataclass

import pytest

from nudgelib.config import ConfigError, LogSettings, ServiceSettings, Settings, read, setting, variables
from services.decision.settings import DecisionSettings
from services.delivery.settings import DeliverySettings
from services.ingestion.settings import IngestionSettings
from services.segmentation.settings import SegmentationSettings

BASE = {"DATABASE_URL": "postgresql://localhost/nudge", "NUDGE_INTERNAL_TOKEN": "a" * 24}


def test_defaults():
    s = ServiceSettings.from_env("decision", BASE)
    assert (s.port, s.metrics_port, s.bind_host) == (50053, 9463, "127.0.0.1")
    assert s.peers == {"ingestion": "127.0.0.1:50051", "segmentation": "127.0.0.1:50052",
                       "delivery": "127.0.0.1:50054"}
    assert s.accounts_database_url == s.database_url
    assert s.event_loop == "uvloop"


def test_per_service_database_and_ports():
    env = {**BASE, "NUDGE_DECISION_DATABASE_URL": "postgresql://other/decision", "NUDGE_DECISION_PORT": "6000"}
    s = ServiceSettings.from_env("decision", env)
    assert (s.database_url, s.port) == ("postgresql://other/decision", 6000)


@pytest.mark.parametrize("env, message", [
    ({"NUDGE_INTERNAL_TOKEN": "a" * 24}, r"DATABASE_URL \(or NUDGE_DECISION_DATABASE_URL\) is required"),
    ({**BASE, "NUDGE_DECISION_PORT": "http"}, "NUDGE_DECISION_PORT must be a whole number"),
    ({**BASE, "NUDGE_DECISION_PORT": "70000"}, "NUDGE_DECISION_PORT must be between 0 and 65535"),
    ({**BASE, "NUDGE_INTERNAL_TOKEN": "short"}, "NUDGE_INTERNAL_TOKEN must be at least 16"),
    ({**BASE, "NUDGE_LOG_FORMAT": "xml"}, "NUDGE_LOG_FORMAT must be one of"),
    ({**BASE, "NUDGE_EVENT_LOOP": "trio"}, "NUDGE_EVENT_LOOP must be one of uvloop, asyncio"),
    ({**BASE, "DATABASE_URL": "mysql://x"}, "must be a postgresql:// URL"),
    ({**BASE, "NUDGE_DECISION_DB_POOL_MIN": "20"}, "NUDGE_DECISION_DB_POOL_MIN must not exceed NUDGE_DECISION_DB_POOL_MAX"),
    ({**BASE, "NUDGE_SHUTDOWN_GRACE_SECONDS": "-1"}, "NUDGE_SHUTDOWN_GRACE_SECONDS must be between 0 and 300"),
    ({**BASE, "NUDGE_ACCOUNTS_DATABASE_URL": "mysql://keys"}, "NUDGE_ACCOUNTS_DATABASE_URL must be a postgresql:// URL"),
    ({**BASE, "NUDGE_DECISION_METRICS_PORT": "-5"}, "NUDGE_DECISION_METRICS_PORT must be between 0 and 65535"),
])
def test_bad_values_name_the_variable(env, message):
    with pytest.raises(ConfigError, match=message):
        ServiceSettings.from_env("decision", env)


def test_service_refuses_to_start_with_one_clear_line():
    result = subprocess.run([sys.executable, "-m", "services.decision"], capture_output=True, text=True,
                            env={"PATH": "", "NUDGE_INTERNAL_TOKEN": "a" * 24}, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "nudge-decision: configuration error: DATABASE_URL (or NUDGE_DECISION_DATABASE_URL) is required but not set"]


@pytest.mark.parametrize("choice, loop_module", [("uvloop", "uvloop"), ("asyncio", "asyncio")])
def test_processes_run_on_the_event_loop_named(choice, loop_module):
    probe = ("import asyncio; from nudgelib import runtime\n"
             "async def main(): return type(asyncio.get_running_loop()).__module__\n"
             "print(runtime.run(main()))")
    out = subprocess.run([sys.executable, "-c", probe], env={"NUDGE_EVENT_LOOP": choice, "PATH": ""},
                         capture_output=True, text=True, check=True).stdout
    assert out.strip().split(".")[0] == loop_module


# ---------------------------------------------------------------- the one reader


@dataclass(frozen=True)
class Toy(Settings):
    count: int = setting("TOY_COUNT", 3, low=1, high=10)
    ratio: float = setting("TOY_RATIO", 0.5, low=0.1)
    ceiling: float = setting("TOY_CEILING", 1.0, high=2)
    mode: str = setting("TOY_MODE", "fast", choices=("fast", "slow"))
    name: str = setting("TOY_NAME", "toy")


def test_the_reader_takes_defaults_and_overrides():
    assert Toy.from_env({}) == Toy()
    env = {"TOY_COUNT": " 7 ", "TOY_RATIO": "2.5", "TOY_MODE": "SLOW", "TOY_NAME": "bear", "OTHER": "x"}
    assert Toy.from_env(env) == Toy(count=7, ratio=2.5, ceiling=1.0, mode="slow", name="bear")
    # Unset and blank are the same: the default.
    assert read(Toy, {"TOY_COUNT": "  "}).count == 3


@pytest.mark.parametrize("env, message", [
    ({"TOY_COUNT": "3.5"}, "TOY_COUNT must be a whole number, got '3.5'"),
    ({"TOY_COUNT": "0"}, "TOY_COUNT must be between 1 and 10, got 0"),
    ({"TOY_COUNT": "11"}, "TOY_COUNT must be between 1 and 10, got 11"),
    ({"TOY_RATIO": "0"}, "TOY_RATIO must be at least 0.1, got 0"),
    ({"TOY_RATIO": "often"}, "TOY_RATIO must be a number, got 'often'"),
    ({"TOY_RATIO": "nan"}, "TOY_RATIO must be a number, got 'nan'"),
    ({"TOY_RATIO": "inf"}, "TOY_RATIO must be a number, got 'inf'"),
    ({"TOY_CEILING": "2.5"}, "TOY_CEILING must be at most 2, got 2.5"),
    ({"TOY_MODE": "warp"}, "TOY_MODE must be one of fast, slow, got 'warp'"),
])
def test_a_bad_value_is_one_line_naming_the_variable(env, message):
    with pytest.raises(ConfigError) as error:
        Toy.from_env(env)
    assert str(error.value) == message


def test_a_variable_may_fall_back_on_others_and_defaults_may_differ_per_service():
    env = {**BASE, "NUDGE_DELIVERY_DATABASE_URL": "postgresql://own/delivery"}
    delivery = ServiceSettings.from_env("delivery", env)
    assert (delivery.database_url, delivery.accounts_database_url) == ("postgresql://own/delivery",) * 2
    assert ServiceSettings.from_env("ingestion", env).database_url == BASE["DATABASE_URL"]
    assert (delivery.port, delivery.metrics_port) == (50054, 9464)
    assert ServiceSettings.from_env("ingestion", env).port == 50051


OWN_SETTINGS = [IngestionSettings, SegmentationSettings, DecisionSettings, DeliverySettings]


@pytest.mark.parametrize("cls", [ServiceSettings, LogSettings, *OWN_SETTINGS])
def test_every_setting_has_a_default_within_its_own_bounds(cls):
    for name, v in variables(cls).items():
        if v.default is MISSING:
            continue
        for default in (v.default.values() if isinstance(v.default, dict) else [v.default]):
            if v.low is not None:
                assert default >= v.low, name
            if v.high is not None:
                assert default <= v.high, name
            if v.choices:
                assert default in v.choices, name


@pytest.mark.parametrize("cls", OWN_SETTINGS)
def test_every_positive_interval_of_a_service_must_be_positive(cls):
    """A zero interval, poll or keep-alive makes a loop that never sleeps."""
    for name, v in variables(cls).items():
        if v.names[0].endswith(("_INTERVAL_SECONDS", "_POLL_SECONDS", "_REFRESH_SECONDS", "_KEEPALIVE_SECONDS",
                                "_REOFFER_SECONDS", "_BACKOFF_SECONDS", "_TIMEOUT_SECONDS")):
            assert v.low is not None and v.low > 0, v.names[0]


@pytest.mark.parametrize("service, variable, complaint", [
    ("ingestion", "NUDGE_INGESTION_OUTBOX_POLL_SECONDS", "must be between 0.01 and 60, got 0"),
    ("segmentation", "NUDGE_SEGMENTATION_SWEEP_INTERVAL_SECONDS", "must be between 0.01 and 3600, got 0"),
    ("decision", "NUDGE_DECISION_RELEASE_POLL_SECONDS", "must be between 0.01 and 60, got 0"),
    ("delivery", "NUDGE_DELIVERY_KEEPALIVE_SECONDS", "must be at least 0.1, got 0"),
])
def test_a_bad_service_setting_stops_start_up_before_the_database(service, variable, complaint):
    # A database that accepts connections and never answers: a service that went to it first
    # would wait there (30 s and more) instead of failing at once.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"postgresql://nudge@127.0.0.1:{silent.getsockname()[1]}/nudge"
        started = time.monotonic()
        result = subprocess.run([sys.executable, "-m", f"services.{service}"], capture_output=True, text=True,
                                env={"PATH": "", "DATABASE_URL": url, "NUDGE_INTERNAL_TOKEN": "a" * 24, variable: "0"},
                                timeout=20)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"nudge-{service}: configuration error: {variable} {complaint}"]
    assert time.monotonic() - started < 15
