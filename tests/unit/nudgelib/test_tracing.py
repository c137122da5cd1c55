"""Trace settings, the traceparent format, the user hash and the log readers' links."""

from __future__ import annotations

import pytest

from nudgelib.config import ConfigError, ServiceSettings, TraceSettings
from nudgelib.eventlog.horizon import PER_TRANSACTION
from nudgelib.eventlog.traces import links_of
from nudgelib.tracing import Tracing, parse_traceparent, traceparent, user_hash

BASE = {"DATABASE_URL": "postgresql://localhost/nudge", "NUDGE_INTERNAL_TOKEN": "x" * 16}


def test_tracing_is_off_without_an_endpoint():
    settings = ServiceSettings.from_env("delivery", BASE).tracing
    assert (settings.endpoint, settings.on) == ("", False)
    assert Tracing.start("delivery", settings) is None


@pytest.mark.parametrize(("env", "endpoint"), [
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317"}, "http://collector:4317"),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://a:4317", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://b:4317"},
     "https://b:4317"),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://a:4317", "NUDGE_OTLP_ENDPOINT": "http://c:4317"}, "http://c:4317"),
])
def test_the_endpoint_comes_from_nudge_then_the_standard_variables(env, endpoint):
    settings = TraceSettings.from_env(env)
    assert settings.endpoint == endpoint and settings.on


def test_the_sdk_switch_turns_tracing_off_whatever_the_endpoint():
    assert not TraceSettings.from_env({"NUDGE_OTLP_ENDPOINT": "http://c:4317", "OTEL_SDK_DISABLED": "true"}).on


@pytest.mark.parametrize(("env", "named"), [
    ({"NUDGE_OTLP_ENDPOINT": "collector:4317"}, "NUDGE_OTLP_ENDPOINT"),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "grpc://collector"}, "OTEL_EXPORTER_OTLP_ENDPOINT"),
    ({"OTEL_SDK_DISABLED": "yes"}, "OTEL_SDK_DISABLED"),
])
def test_a_bad_setting_stops_start_up_naming_it(env, named):
    with pytest.raises(ConfigError, match=named):
        ServiceSettings.from_env("decision", {**BASE, **env})


def test_a_traceparent_round_trips():
    value = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    context = parse_traceparent(value)
    assert context is not None and context.is_remote and context.trace_flags.sampled
    assert (context.trace_id, context.span_id) == (0x0af7651916cd43dd8448eb211c80319c, 0xb7ad6b7169203331)
    assert traceparent(context) == value


@pytest.mark.parametrize("value", [
    "", "garbage", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",  # no flags
    "00-" + "0" * 32 + "-b7ad6b7169203331-01",  # an all-zero trace id is invalid
    "00-0af7651916cd43dd8448eb211c80319c-" + "0" * 16 + "-01",
    "00-0af7651916cd43dd8448eb211c8031zz-b7ad6b7169203331-01",
])
def test_anything_else_is_no_parent(value):
    assert parse_traceparent(value) is None


def test_the_user_hash_depends_on_the_key_app_and_user_and_hides_the_id():
    one = user_hash(b"token", "app", "ada@example.com")
    assert len(one) == 16 and "ada" not in one
    assert one == user_hash(b"token", "app", "ada@example.com")
    assert len({one, user_hash(b"other", "app", "ada@example.com"), user_hash(b"token", "app2", "ada@example.com"),
                user_hash(b"token", "app", "bob@example.com")}) == 4
    # The separator keeps (app, user) pairs apart that would concatenate alike.
    assert user_hash(b"k", "ab", "c") != user_hash(b"k", "a", "bc")


def test_a_forwarding_span_links_each_producing_batch_once():
    a, b = parse_traceparent("00-" + "1" * 32 + "-" + "a" * 16 + "-01"), parse_traceparent(
        "00-" + "2" * 32 + "-" + "b" * 16 + "-01")
    found = {7: a, 9: b}  # by writing transaction
    positions = [7 * PER_TRANSACTION + 1, 9 * PER_TRANSACTION + 1, 7 * PER_TRANSACTION + 2,
                 8 * PER_TRANSACTION + 1]  # transaction 8 was not traced
    assert links_of(found, positions) == [a, b]
