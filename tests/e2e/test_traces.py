"""Traces end to end: the four service processes export their spans over OTLP/gRPC to a
receiver this test runs (the collector lies outside Nudge: the receiver implements
OpenTelemetry's TraceService.Export, as a collector does, and keeps what it gets).

The client starts each trace itself (a `traceparent` of its own on the call), as an
instrumented backend would, so the spans of one call are found by their trace id."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from google.protobuf import struct_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.trace.v1 import trace_pb2

from nudge.common.v1 import common_pb2
from nudge.delivery.v1 import delivery_service_pb2 as delivery_pb
from nudge.segmentation.v1 import segmentation_service_pb2 as seg_pb
from nudgelib.config import SERVICES
from nudgetools import demo
from nudgetools.cluster import free_ports
from tests.conftest import INTERNAL_TOKEN, eventually
from tests.e2e.conftest import running
from tests.helpers import Clients, create_app, event, expect_error, track

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
SERVER, CLIENT = trace_pb2.Span.SPAN_KIND_SERVER, trace_pb2.Span.SPAN_KIND_CLIENT


@dataclass(frozen=True)
class Got:
    """One exported span and the service.name of the process that sent it."""

    service: str
    span: trace_pb2.Span

    @property
    def attributes(self) -> dict[str, object]:
        out: dict[str, object] = {}
        for a in self.span.attributes:
            kind = a.value.WhichOneof("value")
            out[a.key] = getattr(a.value, kind) if kind else None
        return out


class Receiver(trace_service_pb2_grpc.TraceServiceServicer):
    """An OTLP trace receiver on a free loopback port."""

    def __init__(self) -> None:
        self.spans: list[Got] = []
        self.exports = 0
        self.endpoint = ""

    async def Export(self, request, context):
        self.exports += 1
        for resource in request.resource_spans:
            names = [a.value.string_value for a in resource.resource.attributes if a.key == "service.name"]
            for scope in resource.scope_spans:
                self.spans.extend(Got(names[0] if names else "", s) for s in scope.spans)
        return trace_service_pb2.ExportTraceServiceResponse()

    def of_trace(self, trace_id: str) -> list[Got]:
        return [g for g in self.spans if g.span.trace_id.hex() == trace_id]

    def by_id(self, span_id: bytes) -> Got | None:
        return next((g for g in self.spans if g.span.span_id == span_id), None)


@pytest.fixture(scope="module")
async def receiver():
    server = grpc.aio.server()
    got = Receiver()
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(got, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    got.endpoint = f"http://127.0.0.1:{port}"
    yield got
    await server.stop(0)


@pytest.fixture(scope="module")
async def cluster(database_url, tmp_path_factory, receiver):
    # The standard variable, and batches sent every 50 ms rather than every 5 s.
    async with running(database_url, tmp_path_factory.mktemp("traced"), OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
                       OTEL_BSP_SCHEDULE_DELAY="50") as c:
        yield c


@pytest.fixture(scope="module")
async def api(cluster):
    opened = {n: grpc.aio.insecure_channel(cluster.target(n)) for n in SERVICES}
    yield Clients(opened.__getitem__)
    for ch in opened.values():
        await ch.close()


async def _now(value):
    """`value` as the async check `eventually` takes."""
    return value


def new_parent() -> tuple[str, str, tuple[str, str]]:
    """A trace the test starts: its id, the test's span id, and the metadata carrying them."""
    trace_id, span_id = secrets.token_hex(16), secrets.token_hex(8)
    return trace_id, span_id, ("traceparent", f"00-{trace_id}-{span_id}-01")


def server_span(spans: list[Got], service: str, method: str) -> Got | None:
    return next((g for g in spans if g.service == f"nudge-{service}" and g.span.kind == SERVER
                 and g.span.name.endswith("/" + method)), None)


def parent_of(receiver: Receiver, got: Got) -> Got:
    parent = receiver.by_id(got.span.parent_span_id)
    assert parent is not None, f"the parent of {got.span.name} ({got.service}) was not exported"
    return parent


def called_by(receiver: Receiver, callee: Got, caller: Got) -> bool:
    """The callee's server span is the child of a client span of the caller, a descendant of
    the caller's server span within the caller's process (through spans of work, if any)."""
    client = parent_of(receiver, callee)
    if client.span.kind != CLIENT or client.service != caller.service or client.span.name != callee.span.name:
        return False
    at = client
    while at.span.parent_span_id != caller.span.span_id:
        at = parent_of(receiver, at)
        if at.service != caller.service or at.span.kind == SERVER:
            return False
    return True


async def test_a_pull_is_one_trace_through_delivery_decision_and_segmentation(cluster, api, receiver, database_url):
    app = await create_app(database_url)
    await demo.seed(cluster.target("segmentation"), cluster.target("decision"), app.keys["admin"])
    trace_id, parent_id, traceparent = new_parent()
    user = "pull-" + secrets.token_hex(4)  # no events yet: decision asks segmentation for the user
    reply = await api.delivery.FetchMessages(delivery_pb.FetchMessagesRequest(user_id=user),
                                             metadata=(*app.auth("client"), traceparent))

    async def complete():
        spans = receiver.of_trace(trace_id)
        found = [server_span(spans, "delivery", "FetchMessages"), server_span(spans, "decision", "DecideBatch"),
                 server_span(spans, "segmentation", "GetUserContext")]
        return found if all(found) else None

    delivery, decision, segmentation = await eventually(complete, timeout=20)
    assert delivery.span.parent_span_id.hex() == parent_id
    assert called_by(receiver, decision, delivery)
    assert called_by(receiver, segmentation, decision)
    assert delivery.attributes["nudge.app_id"] == app.id
    assert delivery.attributes["nudge.messages"] == len(reply.messages)
    # Decision's work for this pull (one of a DecideBatch's) has its own span, parent of the
    # call to segmentation.
    decide = parent_of(receiver, parent_of(receiver, segmentation))
    assert (decide.service, decide.span.name, decide.span.parent_span_id) == (
        "nudge-decision", "decide", decision.span.span_id)
    assert decide.attributes["nudge.campaigns.active"] >= 1
    assert decide.attributes["nudge.decisions"] == len(reply.messages)
    # The user is named by a hash, the same in every service, and never by their id.
    hashed = delivery.attributes["nudge.user_hash"]
    assert len(hashed) == 16 and decide.attributes["nudge.user_hash"] == hashed
    assert segmentation.attributes["nudge.user_hash"] == hashed
    assert not [g for g in receiver.of_trace(trace_id) if user in str(g.attributes)]


def forwarded(receiver: Receiver, source: str, consumer: str, method: str, producer: Got) -> tuple[Got, Got] | None:
    """The span of `source`'s log reader forwarding items that `producer`'s call wrote (linked
    to it), and `consumer`'s span applying them (that span's child over gRPC)."""
    for g in list(receiver.spans):
        if g.service != f"nudge-{source}" or g.span.name != f"{source} log to {consumer}":
            continue
        if not any(link.trace_id == producer.span.trace_id and link.span_id == producer.span.span_id
                   for link in g.span.links):
            continue
        for s in receiver.of_trace(g.span.trace_id.hex()):
            if s.service == f"nudge-{consumer}" and s.span.kind == SERVER and s.span.name.endswith("/" + method):
                client = receiver.by_id(s.span.parent_span_id)
                if client is not None and client.span.parent_span_id == g.span.span_id:
                    return g, s
    return None


async def test_an_event_is_traced_from_ingestion_to_each_consumer(cluster, api, receiver, database_url):
    app = await create_app(database_url)
    await demo.seed(cluster.target("segmentation"), cluster.target("decision"), app.keys["admin"])
    trace_id, parent_id, traceparent = new_parent()
    reply = await api.ingestion.TrackEvents(
        track([event("t-" + secrets.token_hex(4), "traced-user", "signup"),
               event("t-" + secrets.token_hex(4), "other-user", "signup")]),
        metadata=(*app.auth("events"), traceparent))
    assert reply.accepted_count == 2
    tracked = await eventually(
        lambda: _now(server_span(receiver.of_trace(trace_id), "ingestion", "TrackEvents")), timeout=20)
    assert tracked.span.parent_span_id.hex() == parent_id

    applied = {}
    for consumer in ("segmentation", "decision", "delivery"):
        forward, applied[consumer] = await eventually(
            lambda: _now(forwarded(receiver, "ingestion", consumer, "ApplyEvents", tracked)), timeout=20)
        assert forward.span.trace_id != tracked.span.trace_id  # a trace of its own, linked
        assert forward.attributes["nudge.app_id"] == app.id
        assert forward.attributes["nudge.log.items"] >= 1
        assert applied[consumer].span.status.code != trace_pb2.Status.STATUS_CODE_ERROR
    # Both users entered the demo segment: segmentation's announcement to decision is
    # forwarded by its own log, linked to the call that applied the events.
    forward, changes = await eventually(
        lambda: _now(forwarded(receiver, "segmentation", "decision", "ApplyUserChanges", applied["segmentation"])),
        timeout=20)
    assert forward.attributes["nudge.log.kind"] == "change"


async def test_an_interaction_is_traced_to_ingestion(cluster, api, receiver, database_url):
    app = await create_app(database_url)
    await demo.seed(cluster.target("segmentation"), cluster.target("decision"), app.keys["admin"])
    await api.ingestion.TrackEvents(track([event("i-" + secrets.token_hex(4), "shown", "signup")]),
                                    metadata=app.auth("events"))

    async def pulled():
        return list((await api.delivery.FetchMessages(delivery_pb.FetchMessagesRequest(user_id="shown"),
                                                      metadata=app.auth("client"))).messages)

    (message,) = await eventually(pulled, timeout=20)
    trace_id, _, traceparent = new_parent()
    await api.delivery.ReportInteraction(delivery_pb.ReportInteractionRequest(
        message_id=message.message_id, user_id="shown", type=delivery_pb.INTERACTION_TYPE_IMPRESSION),
        metadata=(*app.auth("client"), traceparent))
    reported = await eventually(
        lambda: _now(server_span(receiver.of_trace(trace_id), "delivery", "ReportInteraction")), timeout=20)
    # Its message_impression event goes through delivery's log to ingestion, which stores it
    # with the context of that call, and forwards it on to the consumers.
    _, ingested = await eventually(
        lambda: _now(forwarded(receiver, "delivery", "ingestion", "IngestEvents", reported)), timeout=20)
    await eventually(lambda: _now(forwarded(receiver, "ingestion", "decision", "ApplyEvents", ingested)), timeout=20)


async def test_a_stream_between_services_is_traced(cluster, api, receiver, database_url):
    """Segmentation reads past events from ingestion's ReadEvents stream for a property filter
    it has not counted yet: the stream is a child of the call that needed it, and works."""
    app = await create_app(database_url)
    bought = event("s-" + secrets.token_hex(4), "big-spender", "purchase")
    bought.properties["cart_value"] = 500
    await api.ingestion.TrackEvents(track([bought]), metadata=app.auth("events"))
    rule = seg_pb.Rule(event=seg_pb.EventCondition(
        name="purchase", operator=seg_pb.EVENT_OPERATOR_AT_LEAST, count=1,
        property_filters=[common_pb2.PropertyFilter(name="cart_value", operator=common_pb2.PROPERTY_OPERATOR_GREATER,
                                                    value=struct_pb2.Value(number_value=100))]))
    trace_id = ""

    async def estimated():
        nonlocal trace_id
        trace_id, _, traceparent = new_parent()
        reply = await api.segmentation.EstimateAudience(seg_pb.EstimateAudienceRequest(rule=rule),
                                                        metadata=(*app.auth("admin"), traceparent))
        return reply.user_count == 1  # once segmentation has applied the event

    await eventually(estimated, timeout=20)

    async def streamed():
        spans = receiver.of_trace(trace_id)
        found = [server_span(spans, "segmentation", "EstimateAudience"), server_span(spans, "ingestion", "ReadEvents")]
        return found if all(found) else None

    estimate, read = await eventually(streamed, timeout=20)
    assert called_by(receiver, read, estimate)


async def test_log_lines_carry_the_trace_id(cluster, api, receiver, database_url):
    app = await create_app(database_url)
    trace_id, _, traceparent = new_parent()
    # An events key cannot pull: delivery logs the refusal, within the call's span.
    await expect_error(api.delivery.FetchMessages(delivery_pb.FetchMessagesRequest(user_id="u"),
                                                  metadata=(*app.auth("events"), traceparent)),
                       grpc.StatusCode.PERMISSION_DENIED)
    served = await eventually(lambda: _now(server_span(receiver.of_trace(trace_id), "delivery", "FetchMessages")),
                              timeout=20)
    assert served.attributes["rpc.grpc.status_code"] == grpc.StatusCode.PERMISSION_DENIED.value[0]

    async def logged():
        for line in (cluster.log_dir / "delivery.log").read_text().splitlines():
            if line.startswith("{") and trace_id in line:
                return json.loads(line)
        return None

    line = await eventually(logged, timeout=10)
    assert line["event"] == "rpc_refused"
    assert (line["trace_id"], line["span_id"]) == (trace_id, served.span.span_id.hex())


# A service started in a process of its own with the given environment: it serves a call
# with a traceparent, logs inside it, stops, and prints what ran (threads, modules loaded).
_PROBE = """
import asyncio, json, sys, threading
import grpc
from nudgelib.config import ServiceSettings
from nudgelib.logs import configure_logging
from nudgelib.server import ServiceHost
from services.ingestion.server import SPEC
from nudge.ingestion.v1 import ingestion_service_pb2 as pb, ingestion_service_pb2_grpc as pb_grpc

async def main():
    settings = ServiceSettings.from_env("ingestion")
    configure_logging("ingestion", settings.log, traced=settings.tracing.on)
    host = ServiceHost(settings, SPEC, drain_delay=0.01)
    await host.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{host.port}") as channel:
        try:  # refused (no key), after the interceptor has seen its traceparent
            await pb_grpc.IngestionServiceStub(channel).TrackEvents(
                pb.TrackEventsRequest(), metadata=(("traceparent", "00-" + "ab" * 16 + "-" + "cd" * 8 + "-01"),))
        except grpc.aio.AioRpcError as exc:
            assert exc.code() is grpc.StatusCode.UNAUTHENTICATED
    threads = [t.name for t in threading.enumerate()]
    await host.stop()
    print(json.dumps({"tracing": host.tracing is not None, "threads": threads,
                      "sdk": sorted(m for m in sys.modules if m.startswith("opentelemetry.sdk"))}))

asyncio.run(main())
"""


async def probe(env: dict[str, str]) -> tuple[dict, list[dict]]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _PROBE, cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env=env)
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()[-2000:]
    logged = [json.loads(line) for line in err.decode().splitlines() if line.startswith("{")]
    return json.loads(out.decode().strip().splitlines()[-1]), logged


@pytest.mark.parametrize("env", [
    {},  # no endpoint at all
    {"OTEL_SDK_DISABLED": "true"},  # an endpoint, and the SDK's own switch off
], ids=["no-endpoint", "sdk-disabled"])
async def test_without_an_endpoint_nothing_is_exported_and_no_exporter_runs(receiver, env, free_port_env):
    before = receiver.exports
    if env:
        env = {**env, "NUDGE_OTLP_ENDPOINT": receiver.endpoint}
    ran, logged = await probe({**free_port_env, **env})
    assert ran["tracing"] is False
    assert not [t for t in ran["threads"] if t.startswith("Otel")]
    assert ran["sdk"] == []
    await asyncio.sleep(0.3)
    assert receiver.exports == before
    # The refusal is logged, inside the call, without trace ids.
    (refused,) = [line for line in logged if line["event"] == "rpc_refused"]
    assert refused["code"] == "UNAUTHENTICATED" and "trace_id" not in refused


async def test_the_same_probe_with_an_endpoint_sees_the_exporter(receiver, free_port_env):
    """The control of the test above: with the endpoint, the probe sees all it looks for."""
    before = len(receiver.of_trace("ab" * 16))
    ran, logged = await probe({**free_port_env, "NUDGE_OTLP_ENDPOINT": receiver.endpoint})
    assert ran["tracing"] is True
    assert [t for t in ran["threads"] if t.startswith("OtelBatchSpan")]
    assert "opentelemetry.sdk.trace" in ran["sdk"]
    # Stopping exported what was batched: the refused call's span, in the caller's trace.
    (refused,) = [line for line in logged if line["event"] == "rpc_refused"]
    assert refused["trace_id"] == "ab" * 16
    assert len(receiver.of_trace("ab" * 16)) == before + 1


@pytest.fixture
def free_port_env(database_url):
    """The probe's environment: this session's database, ports of its own, no tracing
    variable from outside."""
    port, metrics = free_ports(2)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "NUDGE_"))}
    return {**env, "DATABASE_URL": database_url, "NUDGE_INTERNAL_TOKEN": INTERNAL_TOKEN,
            "NUDGE_INGESTION_PORT": str(port), "NUDGE_INGESTION_METRICS_PORT": str(metrics),
            "NUDGE_LOG_FORMAT": "json",
            "PYTHONPATH": f"{REPO / 'libs'}:{REPO}"}
