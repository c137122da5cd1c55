"""What every page shares: the session of a request, CSRF checks, rendering, and how a failed
call to the services reads on a page."""

from __future__ import annotations

import functools
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import grpc
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.templating import Jinja2Templates

from console.sessions import COOKIE, Session, SessionStore
from console.settings import ConsoleSettings

HERE = Path(__file__).resolve().parent
Handler = Callable[[Request, Session], Awaitable[Response]]


@dataclass
class Console:
    settings: ConsoleSettings
    store: SessionStore
    templates: Jinja2Templates
    # The services, as nudge_client takes them (one address, or one per service).
    target: Any
    # Makes the admin client of a session: (target, key, timeout, credentials) -> AsyncNudge.
    client_factory: Callable[..., Any]
    # TLS to the services (nudgelib.tls.client_credentials), None for plaintext.
    credentials: Any = None


def console_of(request: Request) -> Console:
    return request.app.state.console


class CsrfRefused(Exception):
    """A form without this session's token: not sent by one of this console's own pages."""


async def _form(request: Request) -> dict[str, str]:
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


def check_csrf(session: Session, form: dict[str, str]) -> None:
    if not secrets.compare_digest(form.get("csrf", ""), session.csrf):
        raise CsrfRefused()


def page(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """A page that needs a signed-in operator: without a live session, to the sign-in page
    (then back here); a POST must carry the session's CSRF token (403 otherwise). The form is
    read once and left on `request.state.form`."""

    @functools.wraps(handler)
    async def wrapped(request: Request) -> Response:
        console = console_of(request)
        await close_ended(console)
        session = console.store.get(request.cookies.get(COOKIE))
        if session is None:
            if request.method != "GET" or request.headers.get("hx-request"):
                return render(request, "expired.html", None, status_code=401)
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"/login?next={quote(target)}", status_code=303)
        if request.method == "POST":
            request.state.form = await _form(request)
            try:
                check_csrf(session, request.state.form)
            except CsrfRefused:
                return render(request, "error.html", session, status_code=403, title="Form refused",
                              message="This form did not come from this console's page for your session (its "
                                      "CSRF token is missing or wrong). Reload the page and try again.")
        else:
            request.state.form = {}
        try:
            return await handler(request, session)
        except grpc.aio.AioRpcError as exc:
            if exc.code() in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
                # The key was revoked (or its scope changed) since sign-in.
                console.store.end(session.id)
                await close_ended(console)
            return call_failed(request, session, exc)

    return wrapped


async def close_ended(console: Console) -> None:
    for ended in console.store.take_ended():
        await ended.client.close()


def call_failed(request: Request, session: Session | None, exc: grpc.aio.AioRpcError) -> Response:
    code = exc.code()
    status = {grpc.StatusCode.NOT_FOUND: 404, grpc.StatusCode.INVALID_ARGUMENT: 400,
              grpc.StatusCode.UNAVAILABLE: 503, grpc.StatusCode.DEADLINE_EXCEEDED: 504,
              grpc.StatusCode.UNAUTHENTICATED: 401, grpc.StatusCode.PERMISSION_DENIED: 403}.get(code, 502)
    return render(request, "error.html", session, status_code=status, title=f"The services answered {code.name}",
                  message=exc.details() or "")


def render(request: Request, template: str, session: Session | None, status_code: int = 200,
           **context: Any) -> HTMLResponse:
    console = console_of(request)
    return console.templates.TemplateResponse(request, template, {
        "session": session, "csrf": session.csrf if session else "", **context}, status_code=status_code)


def form(request: Request) -> dict[str, str]:
    return request.state.form


def redirect(path: str) -> RedirectResponse:
    return RedirectResponse(path, status_code=303)


# A form shown again with its problems is a page like any other, answered 200 as most web
# frameworks do: a browser logs every 4xx document as a console error, and the page itself
# says what is wrong, at each field.
FORM_ERRORS = 200
