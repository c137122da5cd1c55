"""Channels and calls from one Nudge service to another: the internal token as metadata,
a deadline on every call, and gRPC's own retry policy for transient failures."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import grpc

from nudgelib.errors import Unavailable
from nudgelib.tls import TlsFiles, peer_options
from nudgelib.tracing import Tracing

Req = TypeVar("Req")
Resp = TypeVar("Resp")

# Retried by the channel itself, with backoff, only when the call never reached a handler or
# failed as UNAVAILABLE; every internal RPC is idempotent (ids, ON CONFLICT) except Decide and
# DecideBatch, which hand out messages and so are never retried blindly.
_SERVICE_CONFIG = json.dumps(
    {
        # Spread calls over every address of the target: each replica of a list, or every
        # address a name resolves to (replicas behind DNS), not just the first that connects.
        "loadBalancingConfig": [{"round_robin": {}}],
        "methodConfig": [
            {
                "name": [{}],
                "retryPolicy": {
                    "maxAttempts": 4,
                    "initialBackoff": "0.05s",
                    "maxBackoff": "1s",
                    "backoffMultiplier": 2,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            },
            {"name": [{"service": "nudge.decision.v1.DecisionInternalService", "method": "Decide"},
                      {"service": "nudge.decision.v1.DecisionInternalService", "method": "DecideBatch"}]},
        ]
    }
)

CHANNEL_OPTIONS = [
    ("grpc.service_config", _SERVICE_CONFIG),
    ("grpc.enable_retries", 1),
    # A restarted peer is found again within a fraction of a second, not after gRPC's default
    # backoff of up to two minutes.
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 2_000),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.max_receive_message_length", 16 * 1024 * 1024),
]


def insecure_channel(target: str, interceptors: Sequence[grpc.aio.ClientInterceptor] = ()) -> grpc.aio.Channel:
    # No interceptors unless some are given (tracing on): an intercepted call costs more.
    return grpc.aio.insecure_channel(target, options=CHANNEL_OPTIONS, interceptors=list(interceptors) or None)


class Peer:
    """Another Nudge service, called with the internal token and a default deadline."""

    def __init__(self, name: str, target: str, internal_token: str, tls: TlsFiles | None = None,
                 timeout: float = 3.0, tracing: Tracing | None = None) -> None:
        self.name = name
        self.target = target
        interceptors = tracing.client_interceptors() if tracing else ()
        # With mutual TLS (nudgelib.tls): our certificate presented, the peer's checked.
        self.channel = (grpc.aio.secure_channel(target, tls.channel_credentials(),
                                                options=CHANNEL_OPTIONS + peer_options(name),
                                                interceptors=list(interceptors) or None)
                        if tls is not None else insecure_channel(target, interceptors))
        self._metadata = (("authorization", f"Bearer {internal_token}"),)
        self._timeout = timeout

    async def call(
        self,
        method: Callable[..., Awaitable[Resp]],
        request: Req,
        timeout: float | None = None,
    ) -> Resp:
        try:
            # wait_for_ready: while the peer restarts, wait (within the deadline) for it to be
            # back instead of failing at once.
            return await method(request, metadata=self._metadata, timeout=timeout or self._timeout,
                                wait_for_ready=True)
        except grpc.aio.AioRpcError as exc:
            if exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                raise Unavailable(f"{self.name} is unavailable ({exc.code().name}); retry shortly") from exc
            raise

    def stream(self, method: Callable[..., Any], request: Req, timeout: float) -> Any:
        """A server-streaming call (iterate it for the replies), with the token and a deadline
        for the whole stream. A peer that is down fails it at once (no wait_for_ready: the
        deadline is the whole stream's); its failures, and resuming, are the caller's."""
        return method(request, metadata=self._metadata, timeout=timeout)

    async def ask(self, method: Callable[..., Awaitable[Resp]], request: Req, purpose: str) -> Resp:
        """`call` for an answer a public RPC cannot go on without (does a segment exist, does
        a campaign use it): any failure of the peer becomes UNAVAILABLE naming it and
        `purpose`, so the caller's client retries and nothing is changed meanwhile; the peer's
        own status (INTERNAL, a refusal) is logged with it, never handed on as ours."""
        try:
            return await self.call(method, request)
        except Unavailable:
            raise
        except grpc.aio.AioRpcError as exc:
            raise Unavailable(f"{self.name} could not {purpose} ({exc.code().name}); retry shortly") from exc

    async def ready(self, timeout: float) -> bool:
        """Whether the peer is connected, waiting at most `timeout` for it. Log readers claim
        lanes only then: calls wait for a peer that is down (up to their deadline), and a reader
        waiting so would hold its lanes, and any erasure on them, all that time."""
        if self.channel.get_state(try_to_connect=True) == grpc.ChannelConnectivity.READY:
            return True
        try:
            await asyncio.wait_for(self.channel.channel_ready(), timeout)
        except asyncio.TimeoutError:
            return False
        return True

    async def close(self) -> None:
        await self.channel.close()
