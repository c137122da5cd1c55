"""The one server interceptor every Nudge service runs.

Per call it binds `rpc`, `request_id` and `app_id` to the log context, authenticates the
caller, checks the method's scope, maps domain errors to gRPC status with rich details, and
records RPC count and latency by method and status code.

grpc.aio runs each call in a task of its own, with its own copy of the context variables, so
what a call binds ends with it: nothing is unbound.

Requests are decoded through nudgelib.request_checks: bytes that do not parse, NUL in strings,
out-of-range Timestamps and Durations and undefined enum values answer INVALID_ARGUMENT naming
the field (after authentication, so an unknown caller learns nothing about the API), and
grpc's own answer for a request it could not decode (UNKNOWN) is never seen. A database that
cannot be reached (see db.unreachable) answers UNAVAILABLE with RetryInfo, not INTERNAL.

A public key (scope `public`, nudgelib.public_clients) reaches only the RPCs open to it, with
a user token in `x-nudge-user-token` metadata (nudgelib.user_tokens), and only for the token's
user: each user id the request names is checked once the request is decoded, before the
handler runs; a stream (Subscribe) ends when its token expires or its key is revoked.
Refusals carry their reason in ErrorInfo (USER_TOKEN_EXPIRED, ...).

A unary handler may return its response already serialized (`bytes`), for example from a
cache that keeps messages serialized; it is sent as it is.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hmac
import inspect
import random
import time
from collections.abc import Mapping
from typing import Any

import grpc
import structlog

from nudgelib import calls, db, public_clients
from nudgelib.accounts import INTERNAL, KeyCache, Principal, Scope
from nudgelib.errors import (
    InvalidArgument, NudgeError, PermissionDenied, Unauthenticated, Unavailable, Unimplemented, internal_status,
)
from nudgelib.metrics import RpcMetrics
from nudgelib.request_checks import Refused, RequestDoor
from nudgelib.tracing import Tracing
from nudgelib.user_token_keys import UserTokens
from nudgelib.user_tokens import MISSING

log = structlog.get_logger(__name__)

# Standard services that answer without a key, so probes and `buf curl` discovery work.
OPEN_PREFIXES = ("/grpc.health.v1.", "/grpc.reflection.")
# Where a public key's call carries its user token (a JWT), beside `authorization`.
USER_TOKEN_HEADER = "x-nudge-user-token"


class AccessPolicy:
    """Which scope each public method needs. Methods of `*InternalService` services take
    only the internal token. A public method missing from the map is closed."""

    def __init__(self, scopes: Mapping[str, Scope]) -> None:
        self._scopes = dict(scopes)

    def check(self, method: str, principal: Principal) -> None:
        if principal.public:
            if not public_clients.is_public_method(method):
                raise PermissionDenied(
                    f"{method.rsplit('/', 1)[-1]} is not open to public keys (they may call "
                    "FetchMessages, Subscribe, ReportInteraction, TrackEvents and Identify)",
                    reason=public_clients.METHOD_NOT_ALLOWED)
            return
        service = method.rsplit("/", 2)[-2]
        if service.endswith("InternalService"):
            if not principal.internal:
                raise PermissionDenied("internal RPCs are not callable with an API key")
            return
        name = method.rsplit("/", 1)[-1]
        scope = self._scopes.get(name)
        if principal.internal:
            raise PermissionDenied("public RPCs need an app's API key")
        if scope is None or not principal.allows(scope):
            need = scope.value if scope else "a scope this method does not grant"
            raise PermissionDenied(f"this API key lacks the {need!r} scope")

    @staticmethod
    def check_request(method: str, principal: Principal, request) -> None:
        """A public key's request names only its token's user."""
        other = public_clients.other_user(method, request, principal.user_id)
        if other is not None:
            raise PermissionDenied(f"the user token is for another user than {other!r}",
                                   reason=public_clients.WRONG_USER)


class Authenticator:
    def __init__(self, keys: KeyCache, internal_token: str, user_tokens: UserTokens | None = None) -> None:
        self._keys = keys
        self._internal_token = internal_token.encode()
        self._user_tokens = user_tokens

    async def authenticate(self, metadata: Mapping[str, str]) -> Principal:
        header = metadata.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise Unauthenticated("missing `authorization: Bearer <API key>` metadata")
        token = token.strip()
        if hmac.compare_digest(token.encode(), self._internal_token):
            return INTERNAL
        return await self._keys.authenticate(token)

    async def with_user(self, principal: Principal, metadata: Mapping[str, str]) -> Principal:
        """A public key's principal bound to the user its user token names."""
        token = metadata.get(USER_TOKEN_HEADER, "").strip()
        if self._user_tokens is None:
            raise Unauthenticated("this server checks no user tokens", reason=MISSING)
        user_id = await self._user_tokens.user_of(principal.app_id, token)
        return dataclasses.replace(principal, user_id=user_id, user_token=token)

    def held(self, principal: Principal, items):
        """A public key's stream, ended (UNAUTHENTICATED) when its user token expires or its key
        is revoked."""
        return self._user_tokens.held(principal.app_id, principal.user_token, items)


class ServerInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, authenticator: Authenticator, policy: AccessPolicy, metrics: RpcMetrics,
                 door: RequestDoor | None = None, tracing: Tracing | None = None) -> None:
        self._auth = authenticator
        self._tracing = tracing
        self._policy = policy
        self._metrics = metrics
        self._door = door or RequestDoor()
        self._wrapped: dict[str, tuple[Any, Any]] = {}

    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None:
            return handler
        cached = self._wrapped.get(method)
        if cached is not None and cached[0] is handler:
            return cached[1]
        wrapped = self._wrap(method, handler, open_method=method.startswith(OPEN_PREFIXES))
        self._wrapped[method] = (handler, wrapped)
        return wrapped

    async def _enter(self, method: str, context: grpc.aio.ServicerContext) -> Principal:
        metadata = {k: v for k, v in context.invocation_metadata() or () if isinstance(v, str)}
        structlog.contextvars.bind_contextvars(
            rpc=method, request_id=metadata.get("x-request-id") or f"{random.getrandbits(64):016x}"
        )
        principal = await self._auth.authenticate(metadata)
        self._policy.check(method, principal)
        if principal.public:
            principal = await self._auth.with_user(principal, metadata)
        if principal.app_id:
            structlog.contextvars.bind_contextvars(app_id=principal.app_id)
        calls.set_principal(principal)
        return principal

    async def _fail(self, method: str, context: grpc.aio.ServicerContext, exc: BaseException) -> str:
        """Aborts the call with the right status; returns the code name for metrics."""
        if isinstance(exc, NotImplementedError):
            exc = Unimplemented(f"{method.rsplit('/', 1)[-1]} is not implemented yet")
        elif not isinstance(exc, NudgeError) and db.unreachable(exc):
            log.warning("database_unreachable", error=f"{type(exc).__name__}: {exc}")
            exc = Unavailable("the database is not reachable right now; retry shortly")
        elif not isinstance(exc, NudgeError) and db.bad_value(exc):
            # A value the door let through: logged as the gap it is, answered as bad input.
            # No field can be named here (the database does not say which): `request`.
            log.warning("value_refused_by_database", method=method, exc_info=exc)
            exc = InvalidArgument.field("request", f"a value is outside what can be stored: {exc}")
        if isinstance(exc, NudgeError):
            if exc.code is not grpc.StatusCode.INVALID_ARGUMENT:
                log.info("rpc_refused", code=exc.code.name, error=exc.message)
            await context.abort_with_status(exc.to_status())
        log.error("rpc_failed", exc_info=exc)
        await context.abort_with_status(internal_status())
        return "INTERNAL"  # not reached: abort raises

    def _wrap(self, method: str, handler, open_method: bool = False):
        """The handler with the door's decoding, authentication, error mapping, metrics and,
        with tracing on, a span (`nudgelib.tracing`). Open methods (health, reflection) get only
        the decoding and error mapping."""
        short = method.rsplit("/", 1)[-1]
        metrics = self._metrics if not open_method else None
        tracing = self._tracing if not open_method else None
        enter = self._enter if not open_method else _no_entry

        def begin(context: grpc.aio.ServicerContext):
            # Before authentication, so a refused call has its span too.
            metadata = {k: v for k, v in context.invocation_metadata() or () if isinstance(v, str)}
            return tracing.server_span(method, metadata)

        def done(error: BaseException | None, context: grpc.aio.ServicerContext, start: float, span) -> None:
            """The end of a traced call (untraced ones observe their metrics inline)."""
            code = code_of(error, context)
            if metrics is not None:
                metrics.observe(short, code, time.perf_counter() - start)
            if span is not None:
                tracing.end(*span, code)

        def code_of(exc: BaseException | None, context: grpc.aio.ServicerContext) -> str:
            if exc is None:
                return "OK"
            if isinstance(exc, NudgeError):
                return exc.code.name
            if isinstance(exc, Exception) and db.unreachable(exc):
                return "UNAVAILABLE"
            if isinstance(exc, Exception) and db.bad_value(exc):
                return "INVALID_ARGUMENT"
            if isinstance(exc, NotImplementedError):
                return "UNIMPLEMENTED"
            if isinstance(exc, asyncio.CancelledError):
                return "CANCELLED"
            code = context.code()
            if isinstance(code, grpc.StatusCode):
                return code.name
            return "INTERNAL"

        deserializer = handler.request_deserializer
        if deserializer is not None:
            deserializer = self._door.deserializer(deserializer)

        def admitted(request):
            """The request as the handler takes it; a refused one raises INVALID_ARGUMENT."""
            if handler.request_streaming:
                return _checked(request)
            if type(request) is Refused:
                raise InvalidArgument(request.violations)
            return request

        field = {(False, False): "unary_unary", (True, False): "stream_unary",
                 (False, True): "unary_stream", (True, True): "stream_stream"}[
            (handler.request_streaming, handler.response_streaming)]
        inner = getattr(handler, field)

        # A handler that returns (a unary response, or a stream it writes with context.write
        # as grpc's health Watch does) is wrapped by a coroutine; one that yields, by a generator.
        if not inspect.isasyncgenfunction(inner):
            async def returning(request, context):
                start = time.perf_counter()
                error: BaseException | None = None
                span = begin(context) if tracing is not None else None
                try:
                    principal = await enter(method, context)
                    request = admitted(request)
                    if principal is not None and principal.public:
                        self._policy.check_request(method, principal, request)
                    return await inner(request, context)
                except (grpc.aio.AbortError, asyncio.CancelledError) as exc:
                    error = exc
                    raise
                except Exception as exc:  # noqa: BLE001 - every error gets a status
                    error = exc
                    await self._fail(method, context, exc)
                finally:
                    if span is not None:
                        done(error, context, start, span)
                    elif metrics is not None:
                        metrics.observe(short, code_of(error, context), time.perf_counter() - start)

            changes = {field: returning, "request_deserializer": deserializer}
            if not handler.response_streaming:
                changes["response_serializer"] = _sends_bytes_as_they_are(handler.response_serializer)
            return handler._replace(**changes)

        async def yielding(request, context):
            start = time.perf_counter()
            error: BaseException | None = None
            span = begin(context) if tracing is not None else None
            try:
                principal = await enter(method, context)
                request = admitted(request)
                items = inner(request, context)
                if principal is not None and principal.public:
                    self._policy.check_request(method, principal, request)
                    items = self._auth.held(principal, items)
                async for item in items:
                    yield item
            except (grpc.aio.AbortError, asyncio.CancelledError, GeneratorExit) as exc:
                error = exc if not isinstance(exc, GeneratorExit) else asyncio.CancelledError()
                raise
            except Exception as exc:  # noqa: BLE001
                error = exc
                await self._fail(method, context, exc)
            finally:
                if span is not None:
                    done(error, context, start, span)
                elif metrics is not None:
                    metrics.observe(short, code_of(error, context), time.perf_counter() - start)

        return handler._replace(**{field: yielding, "request_deserializer": deserializer})


async def _no_entry(method: str, context: grpc.aio.ServicerContext) -> None:
    """What an open method needs before its handler: nothing (probes and discovery need no key)."""


async def _checked(requests):
    """A request stream whose first refused message ends the call with INVALID_ARGUMENT (the
    error rises out of the handler's `async for`)."""
    async for request in requests:
        if type(request) is Refused:
            raise InvalidArgument(request.violations)
        yield request


def _sends_bytes_as_they_are(serialize):
    if serialize is None:
        return None

    def serializer(message):
        return message if type(message) is bytes else serialize(message)

    return serializer
