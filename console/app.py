"""build_app(settings): the console's routes, sign-in and sign-out, the browser files, and the
headers every response carries. Wiring only: the pages are in console/pages/."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import grpc
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from console import filters
from console.pages import campaigns, preview, results, segments, settings_page, users
from console.sessions import COOKIE, LOGIN_COOKIE, SessionStore
from console.settings import ConsoleSettings
from console.web import FORM_ERRORS, HERE, Console, close_ended, console_of, redirect, render
from nudge_client import AsyncNudge
from nudgelib.tls import client_credentials
from nudgetools.operate.target import parse_target

REPO = HERE.parent

# Pages are drawn by this console only: no inline scripts, no third-party origins; styles
# inline because the web SDK's renderer themes messages through element styles and its
# stylesheet. Images of messages may come from anywhere over https.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: https:; "
       "connect-src 'self'; frame-src 'self'; frame-ancestors 'self'; form-action 'self'; base-uri 'none'; "
       "object-src 'none'")


def assets_dir(settings: ConsoleSettings) -> Path:
    return Path(settings.assets_dir) if settings.assets_dir else HERE / "build"


def build_app(settings: ConsoleSettings, target: Any = None, clock: Callable[[], float] | None = None,
              client_factory: Callable[..., Any] = AsyncNudge) -> Starlette:
    """`target`: the services as nudge_client takes them (by default from NUDGE_CONSOLE_TARGET);
    `clock`: monotonic seconds for session expiry (tests move it)."""
    store_args = {"clock": clock} if clock is not None else {}
    store = SessionStore(settings.session_idle_minutes * 60, settings.session_max_hours * 3600, **store_args)
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"]))
    filters.install(env)
    templates = Jinja2Templates(env=env)
    console = Console(settings, store, templates, parse_target(settings.target) if target is None else target,
                      client_factory, client_credentials(os.environ))

    routes = [
        Route("/", lambda r: redirect("/campaigns")),
        Route("/login", login, methods=["GET", "POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/healthz", lambda r: PlainTextResponse("ok")),
        *campaigns.routes(), *preview.routes(), *results.routes(), *segments.routes(), *users.routes(),
        *settings_page.routes(),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
        Mount("/assets", StaticFiles(directory=assets_dir(settings), check_dir=False), name="assets"),
    ]
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await _close_all(console)  # every session's channels, at shutdown

    app = Starlette(routes=routes, middleware=[Middleware(SecurityHeaders)], lifespan=lifespan)
    app.state.console = console
    return app


async def _close_all(console: Console) -> None:
    for sid in list(console.store._sessions):
        console.store.end(sid)
    await close_ended(console)


class SecurityHeaders:
    """Adds the headers of every response (pure ASGI, so streaming stays untouched)."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def with_headers(message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [(b"content-security-policy", CSP.encode()), (b"x-content-type-options", b"nosniff"),
                            (b"x-frame-options", b"SAMEORIGIN"), (b"referrer-policy", b"same-origin"),
                            (b"cache-control", b"no-store")]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)


def _cookie_args(request: Request) -> dict[str, Any]:
    return {"httponly": True, "samesite": "strict", "secure": console_of(request).settings.cookie_secure, "path": "/"}


def _safe_next(target: str) -> str:
    # Only a path of this console: never another site (an open redirect).
    parts = urlsplit(target)
    if not target.startswith("/") or target.startswith("//") or parts.scheme or parts.netloc:
        return "/campaigns"
    return target


async def login(request: Request) -> Response:
    console = console_of(request)
    next_page = _safe_next(request.query_params.get("next", "/campaigns"))
    if request.method == "GET":
        token = secrets.token_urlsafe(32)
        response = render(request, "login.html", None, login_csrf=token, next=next_page)
        response.set_cookie(LOGIN_COOKIE, token, max_age=3600, **_cookie_args(request))
        return response
    data = await request.form()
    token = str(data.get("csrf", ""))
    cookie = request.cookies.get(LOGIN_COOKIE, "")
    if not cookie or not secrets.compare_digest(token, cookie):
        return render(request, "error.html", None, status_code=403, title="Form refused",
                      message="This sign-in form did not come from this console (its CSRF token is missing or "
                              "wrong). Open the sign-in page again.")
    key = str(data.get("key", "")).strip()
    next_page = _safe_next(str(data.get("next", "/campaigns")))
    problem = "" if key else "Enter an admin key."
    client = None
    settings_reply = None
    if key:
        client = console.client_factory(console.target, key, timeout=console.settings.call_timeout,
                                        credentials=console.credentials)
        try:
            # Any admin RPC answers whether the key is an app's admin key; this one is cheap.
            settings_reply = await client.get_app_settings()
        except grpc.aio.AioRpcError as exc:
            problem = {
                grpc.StatusCode.UNAUTHENTICATED: "This is not a key of any app (or it was revoked).",
                grpc.StatusCode.PERMISSION_DENIED: "This key is not an admin key: sign in with the app's admin key.",
            }.get(exc.code(), f"The services could not be reached to check the key ({exc.code().name}).")
        except ValueError as exc:
            problem = str(exc)
    if problem:
        if client is not None:
            await client.close()
        token = secrets.token_urlsafe(32)
        response = render(request, "login.html", None, status_code=FORM_ERRORS, login_csrf=token,
                          next=next_page, error=problem)
        response.set_cookie(LOGIN_COOKIE, token, max_age=3600, **_cookie_args(request))
        return response
    zone = settings_reply.settings.default_time_zone or "UTC"
    key_id = key.split("_")[1] if key.count("_") >= 2 else ""
    session = console.store.create(client, label=f"key {key_id or '…'} · {zone}", key_id=key_id)
    response = redirect(next_page)
    response.set_cookie(COOKIE, session.id, max_age=int(console.store.lifetime), **_cookie_args(request))
    response.delete_cookie(LOGIN_COOKIE, path="/")
    return response


async def logout(request: Request) -> Response:
    console = console_of(request)
    session = console.store.get(request.cookies.get(COOKIE))
    if session is not None:
        data = await request.form()
        if not secrets.compare_digest(str(data.get("csrf", "")), session.csrf):
            return render(request, "error.html", session, status_code=403, title="Form refused",
                          message="This form did not come from this console's page for your session.")
        console.store.end(session.id)
        await close_ended(console)
    response = redirect("/login")
    response.delete_cookie(COOKIE, path="/")
    return response
