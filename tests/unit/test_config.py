"""Configuration: defaults that work locally, and one clear line for a bad value."""

from __future__ import annotations

import subprocess
import sys

import pytest

from nudgelib.config import ConfigError, ServiceSettings

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
