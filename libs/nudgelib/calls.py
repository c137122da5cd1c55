"""The principal of the call being served, for handlers to read."""

from __future__ import annotations

import contextvars

from nudgelib.accounts import Principal
from nudgelib.errors import PermissionDenied

_current: contextvars.ContextVar[Principal] = contextvars.ContextVar("nudge_principal")


def set_principal(principal: Principal) -> contextvars.Token[Principal]:
    return _current.set(principal)


def current_principal() -> Principal:
    return _current.get()


def current_app_id() -> str:
    """The app of the calling key. Public handlers scope every read and write by it, so a key
    of one app can never reach another app's data."""
    principal = _current.get()
    if principal.internal:
        raise PermissionDenied("internal callers name the app in the request")
    return principal.app_id
