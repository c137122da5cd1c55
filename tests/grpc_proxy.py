"""A real gRPC proxy on loopback, for tests of what a client does when the network between it
and a service fails: every unary call is forwarded, bytes as they are, to the real service,
unless the test's plan says to answer UNAVAILABLE before forwarding (the service never sees
the call), after it (the service did the work, its reply is lost), or to hold the call first.
Only the network is faked; the service behind it is the real one."""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Callable
from dataclasses import dataclass, field

import grpc

from nudgelib.errors import NudgeError

_FORWARDED_HEADERS = ("authorization",)


class Fate(enum.Enum):
    FORWARD = "forward"
    FAIL_BEFORE = "fail_before"  # UNAVAILABLE, the service never sees the call
    FAIL_AFTER = "fail_after"    # forwarded and answered, then UNAVAILABLE instead of the reply


@dataclass(frozen=True)
class Plan:
    fate: Fate = Fate.FORWARD
    hold: float = 0.0                 # seconds to wait before doing the rest
    error: NudgeError | None = None   # the status for a failure (default: UNAVAILABLE, no RetryInfo)


@dataclass
class Call:
    method: str          # e.g. /nudge.ingestion.v1.IngestionService/TrackEvents
    request: bytes
    at: float            # the loop's time when it arrived
    fate: Fate


@dataclass
class Proxy:
    upstream: str
    plan: Callable[[str, int], Plan] = lambda method, n: Plan()  # (method, nth call of it from 1) -> Plan
    calls: list[Call] = field(default_factory=list)
    port: int = 0

    async def start(self) -> "Proxy":
        self._channel = grpc.aio.insecure_channel(self.upstream)
        self._server = grpc.aio.server()
        self._server.add_generic_rpc_handlers([_Handler(self)])
        self.port = self._server.add_insecure_port(f"127.0.0.1:{self.port}")
        await self._server.start()
        return self

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def stop(self, grace: float | None = None) -> None:
        """Stops listening; calls in flight finish within `grace` (None: cut at once)."""
        await self._server.stop(grace=grace)
        await self._channel.close()

    async def restart(self, down_for: float) -> None:
        """Down for `down_for` seconds (connections refused), then back on the same port."""
        await self.stop(grace=1.0)
        await asyncio.sleep(down_for)
        await self.start()

    def count(self, method_suffix: str) -> int:
        return sum(1 for c in self.calls if c.method.endswith(method_suffix))

    async def forward(self, request: bytes, context: grpc.aio.ServicerContext, method: str) -> bytes:
        n = 1 + self.count(method)
        plan = self.plan(method, n)
        self.calls.append(Call(method, request, asyncio.get_running_loop().time(), plan.fate))
        if plan.hold:
            await asyncio.sleep(plan.hold)
        if plan.fate is Fate.FAIL_BEFORE:
            await _abort(context, plan)
        metadata = tuple((k, v) for k, v in context.invocation_metadata() or () if k in _FORWARDED_HEADERS)
        remaining = context.time_remaining()
        try:
            reply = await self._channel.unary_unary(method)(request, metadata=metadata, timeout=remaining)
        except grpc.aio.AioRpcError as exc:
            await context.abort(exc.code(), exc.details() or "", trailing_metadata=exc.trailing_metadata())
        if plan.fate is Fate.FAIL_AFTER:
            await _abort(context, plan)
        return reply


async def _abort(context: grpc.aio.ServicerContext, plan: Plan) -> None:
    if plan.error is None:
        # A bare UNAVAILABLE, as a broken connection gives: no RetryInfo.
        await context.abort(grpc.StatusCode.UNAVAILABLE, "injected by the test's proxy")
    status = plan.error.to_status()
    await context.abort(status.code, status.details, trailing_metadata=status.trailing_metadata)


class _Handler(grpc.GenericRpcHandler):
    def __init__(self, proxy: Proxy) -> None:
        self._proxy = proxy

    def service(self, details: grpc.HandlerCallDetails):
        method = details.method

        async def handle(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
            return await self._proxy.forward(request, context, method)

        # No (de)serializers: the bytes pass through untouched.
        return grpc.unary_unary_rpc_method_handler(handle)
