"""What a public key may do: the RPCs open to it, and whose data each request names.

A public key (scope `public`) ships inside an app or a web page, so anyone can read it; it is
valid only with a user token (nudgelib.user_tokens) and reaches only that user: each of
these RPCs names its user in the request, and every user id it names must be the token's.
Every other RPC is closed to public keys.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any


def _user_id(request: Any) -> Iterable[str]:
    return (request.user_id,)


def _event_users(request: Any) -> Iterable[str]:
    return (event.user_id for event in request.events)


# Full gRPC method name -> the user ids its request names (all unary requests: the user
# check needs the whole request before the handler runs).
PUBLIC_METHODS: dict[str, Callable[[Any], Iterable[str]]] = {
    "/nudge.delivery.v1.DeliveryService/FetchMessages": _user_id,
    "/nudge.delivery.v1.DeliveryService/Subscribe": _user_id,
    "/nudge.delivery.v1.DeliveryService/ReportInteraction": _user_id,
    "/nudge.ingestion.v1.IngestionService/TrackEvents": _event_users,
    "/nudge.ingestion.v1.IngestionService/Identify": _user_id,
}

# ErrorInfo reasons (PERMISSION_DENIED).
METHOD_NOT_ALLOWED = "PUBLIC_KEY_METHOD_NOT_ALLOWED"
WRONG_USER = "USER_TOKEN_WRONG_USER"


def is_public_method(method: str) -> bool:
    return method in PUBLIC_METHODS


def other_user(method: str, request: Any, user_id: str) -> str | None:
    """The first user id the request names that is not `user_id` (an empty one counts: a
    public client always names its user), or None when the request is the user's alone."""
    for named in PUBLIC_METHODS[method](request):
        if named != user_id:
            return named
    return None
