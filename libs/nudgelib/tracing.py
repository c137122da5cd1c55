"""OpenTelemetry traces, exported over OTLP/gRPC when an endpoint is configured, and off
(no `Tracing` at all) otherwise.

Off is the default and costs nothing: no tracer provider is built, the SDK and the exporter
are not even imported, no exporter thread starts, and the places that would make spans hold
`None` instead of a `Tracing` and take the untraced path (the server interceptor wraps its
handlers without spans, peers' channels get no interceptor, log lines get no trace ids, the
log readers make no spans and read no trace contexts, `annotate_user` and `child_span`
return after one context variable lookup): an event's path and a pull then never enter
OpenTelemetry's code (tests/service/test_traces_off.py).

On, a process has one `Tracing`: a tracer provider of its own (not the API's global one, so
nothing is kept in a module global) with a batch processor sending to the endpoint. Context
travels between services in the W3C `traceparent` metadata (`Tracing.client_interceptors`
for the calling side, `server_span` for the called side), and from a producer of a log to
its consumers through the log itself (`nudgelib.eventlog.traces`).

Privacy: spans carry app ids, RPC names, counts and log positions, never a user id or any
event or message content. Where a span is about one user it carries `nudge.user_hash`, an
HMAC of the app and user id keyed with the internal token: the same user hashes alike in
every service (spans of one user can be found together) but the id cannot be read back from
a collector, and erasing a user leaves nothing personal behind in traces.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import hmac
from collections.abc import Iterable, Mapping
from typing import Any

import grpc
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags

from nudgelib.config import TraceSettings

TRACEPARENT = "traceparent"
# The Tracing of the call being served, set by `server_span` (the key of `nudge.user_hash`,
# and the tracer of `child_span`): outside a traced call it is unset, and the helpers below
# return after one context variable lookup, without calling into OpenTelemetry at all.
_SERVING: contextvars.ContextVar["Tracing | None"] = contextvars.ContextVar("nudge_tracing", default=None)

# gRPC codes that mean the server failed (OpenTelemetry's RPC conventions): a refusal of bad
# input or a missing key is the caller's error, and leaves a server span's status unset.
_SERVER_ERRORS = frozenset({"UNKNOWN", "DEADLINE_EXCEEDED", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE",
                            "DATA_LOSS"})


def traceparent(context: SpanContext) -> str:
    """The W3C traceparent header of a span context."""
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"


def parse_traceparent(value: str) -> SpanContext | None:
    """The span context of a W3C traceparent (version 00), or None if it is not one."""
    parts = value.strip().split("-")
    if len(parts) < 4 or len(parts[1]) != 32 or len(parts[2]) != 16 or len(parts[3]) != 2:
        return None
    try:
        trace_id, span_id, flags = int(parts[1], 16), int(parts[2], 16), int(parts[3], 16)
    except ValueError:
        return None
    if trace_id == 0 or span_id == 0:
        return None
    return SpanContext(trace_id, span_id, is_remote=True, trace_flags=TraceFlags(flags & 0xFF))


def serving_traceparent() -> str | None:
    """`current_traceparent` within a traced call; None, without calling into OpenTelemetry,
    anywhere else (tracing off, or a background loop)."""
    if _SERVING.get() is None:
        return None
    return current_traceparent()


def current_traceparent() -> str | None:
    """The traceparent of the current span, if one is recording (sampled)."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid or not context.trace_flags.sampled:
        return None
    return traceparent(context)


def annotate_user(app_id: str, user_id: str, attributes: Mapping[str, Any] | None = None) -> None:
    """Sets attributes on the current span of a traced call about one user (else does
    nothing): its app, `nudge.user_hash` (never the id) and `attributes`."""
    tracing = _SERVING.get()
    if tracing is None:
        return
    span = trace.get_current_span()
    if span.is_recording():
        span.set_attributes({"nudge.app_id": app_id, "nudge.user_hash": user_hash(tracing.user_key, app_id, user_id),
                             **(attributes or {})})


def child_span(name: str, attributes: Mapping[str, Any] | None = None):
    """A context manager: a span of work within the current call (its child, made current),
    or nothing at all outside a traced call (tracing off)."""
    tracing = _SERVING.get()
    if tracing is None:
        return contextlib.nullcontext()
    return tracing.tracer.start_as_current_span(name, attributes=attributes)


def user_hash(key: bytes, app_id: str, user_id: str) -> str:
    """A user as spans name them (see the module's docstring)."""
    return hmac.new(key, f"{app_id}\x1f{user_id}".encode(), hashlib.sha256).hexdigest()[:16]


class Tracing:
    """The tracing of one process (exists only when tracing is on)."""

    def __init__(self, provider: Any, user_key: bytes = b"") -> None:
        self.provider = provider
        self.tracer = provider.get_tracer("nudge")
        self.user_key = user_key

    @classmethod
    def start(cls, service: str, settings: TraceSettings, user_key: str = "") -> "Tracing | None":
        """A Tracing exporting to `settings.endpoint`; None (and nothing done) when no endpoint
        is set or OTEL_SDK_DISABLED is true."""
        if not settings.on:
            return None
        # Imported here: with tracing off, none of the SDK is loaded.
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        # Resource.create also takes OTEL_RESOURCE_ATTRIBUTES; the sampler comes from
        # OTEL_TRACES_SAMPLER (parent-based, always on, by default), the batching from
        # OTEL_BSP_*, and the exporter's headers, certificates, compression and timeout from
        # OTEL_EXPORTER_OTLP_*: the SDK's own settings.
        resource = Resource.create({"service.name": settings.service_name or f"nudge-{service}",
                                    "service.namespace": "nudge"})
        provider = TracerProvider(resource=resource)
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=settings.endpoint)))
        return cls(provider, user_key.encode())

    def shutdown(self) -> None:
        """Exports what is still batched, then stops the exporter."""
        self.provider.shutdown()

    # ------------------------------------------------------------ the called side

    def server_span(self, method: str, metadata: Mapping[str, str]) -> tuple[Any, object, object]:
        """Starts the span of a call being served, as the child of the caller's span (its
        `traceparent`), and makes it current; returns it and the tokens `end` needs."""
        parent = None
        remote = parse_traceparent(metadata.get(TRACEPARENT, ""))
        if remote is not None:
            parent = trace.set_span_in_context(trace.NonRecordingSpan(remote))
        service, _, name = method.lstrip("/").rpartition("/")
        span = self.tracer.start_span(f"{service}/{name}", context=parent, kind=SpanKind.SERVER,
                                      attributes={"rpc.system": "grpc", "rpc.service": service, "rpc.method": name})
        token = otel_context.attach(trace.set_span_in_context(span, parent))
        return span, token, _SERVING.set(self)

    @staticmethod
    def end(span: Any, token: object, serving: contextvars.Token, code: str) -> None:
        """Ends a server span with the call's status code (a grpc.StatusCode name)."""
        status = grpc.StatusCode.__members__.get(code, grpc.StatusCode.UNKNOWN)
        span.set_attribute("rpc.grpc.status_code", status.value[0])
        if code in _SERVER_ERRORS:
            span.set_status(Status(StatusCode.ERROR, code))
        try:
            _SERVING.reset(serving)
        except ValueError:  # a stream closed from another context than it ran in: nothing to undo
            pass
        otel_context.detach(token)
        span.end()

    def span(self, name: str, links: Iterable[SpanContext] = (), **attributes: Any):
        """A span of work inside a service (a context manager that makes it current)."""
        return self.tracer.start_as_current_span(name, links=[Link(c) for c in links], attributes=attributes)

    # ------------------------------------------------------------ the calling side

    def client_interceptors(self) -> list[grpc.aio.ClientInterceptor]:
        """Interceptors for a channel to another service: a client span per call, its context
        sent as `traceparent`."""
        return [_UnaryUnary(self.tracer), _UnaryStream(self.tracer)]


class _Client:
    def __init__(self, tracer: Any) -> None:
        self._tracer = tracer

    def _begin(self, details: grpc.aio.ClientCallDetails) -> tuple[Any, grpc.aio.ClientCallDetails]:
        method = details.method.decode() if isinstance(details.method, bytes) else details.method
        service, _, name = method.lstrip("/").rpartition("/")
        span = self._tracer.start_span(f"{service}/{name}", kind=SpanKind.CLIENT,
                                       attributes={"rpc.system": "grpc", "rpc.service": service, "rpc.method": name})
        metadata = grpc.aio.Metadata(*(details.metadata or ()))
        metadata.add(TRACEPARENT, traceparent(span.get_span_context()))
        return span, details._replace(metadata=metadata)


def _finish(span: Any, code: grpc.StatusCode) -> None:
    span.set_attribute("rpc.grpc.status_code", code.value[0])
    if code is not grpc.StatusCode.OK:
        span.set_status(Status(StatusCode.ERROR, code.name))
    span.end()


class _UnaryUnary(_Client, grpc.aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(self, continuation, client_call_details, request):
        span, details = self._begin(client_call_details)
        try:
            call = await continuation(details, request)
            code = await call.code()
        except BaseException:
            _finish(span, grpc.StatusCode.CANCELLED)
            raise
        _finish(span, code)
        return call


class _UnaryStream(_Client, grpc.aio.UnaryStreamClientInterceptor):
    async def intercept_unary_stream(self, continuation, client_call_details, request):
        # A stream can last hours: its client span covers opening it.
        span, details = self._begin(client_call_details)
        try:
            call = await continuation(details, request)
        finally:
            span.end()
        return call


def trace_ids(_logger: Any, _name: str, event: dict[str, Any]) -> dict[str, Any]:
    """structlog processor: the current span's `trace_id` and `span_id` on each line logged
    while one is active (installed only when tracing is on)."""
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event["trace_id"] = f"{context.trace_id:032x}"
        event["span_id"] = f"{context.span_id:016x}"
    return event
