"""Settings: the app's time zone and default locale, its cap rules and quiet hours (the
AppSettings document, checked as `nudge apply` checks it), the user-token signing keys (add,
revoke) and the app's API keys (ApiKeyService: create, shown once, and revoke)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from console.forms import (CampaignForm, FormErrors, parse_settings_form, settings_form_of, settings_violation_errors,
                           violation_errors)
from console.sessions import Session
from console.web import FORM_ERRORS, close_ended, console_of, form, page, redirect, render
from nudge_client.protos import user_token_keys as token_pb
from nudgelib.errors import violations_of
from nudgetools.operate.state import read_settings, settings_document


def routes() -> list[Route]:
    return [
        Route("/settings", settings_view, methods=["GET", "POST"]),
        Route("/settings/signing-keys", signing_key_add, methods=["POST"]),
        Route("/settings/signing-keys/revoke", signing_key_revoke, methods=["POST"]),
        Route("/settings/api-keys", api_key_create, methods=["POST"]),
        Route("/settings/api-keys/revoke", api_key_revoke, methods=["POST"]),
    ]


# The scopes a key may be given, as ApiKeyService names them, and what each lets it call.
SCOPES = (
    ("admin", "every public call: campaigns, segments, users, settings, keys"),
    ("events:write", "producers: TrackEvents, Identify"),
    ("messages:read", "mobile and web backends: FetchMessages, Subscribe, ReportInteraction"),
    ("public", "ships in an app or a page: only with a user token, only for its user (no other scope with it)"),
)
# The API keys the page lists, at most: an app holds at most 100 active ones, and revoked ones
# pile up over the years (`nudge keys list` shows them all).
MAX_LISTED_KEYS = 300
# ApiKeyService's request fields → this page's inputs.
_API_KEY_INPUTS = {"label": "api_label", "scopes": "api_scopes"}


@dataclass
class ApiKeyView:
    """What the API keys part of the page shows besides the list."""

    errors: FormErrors = field(default_factory=FormErrors)
    values: dict[str, str] = field(default_factory=dict)
    created: Any = None  # the CreateApiKeyResponse just made: its secret is shown this once
    refused: str = ""  # a revoke the service refused (the app's last admin key), in words
    revoked: str = ""


async def _keys(list_call: Callable[..., Awaitable[Any]]) -> tuple[list[Any], bool]:
    """The keys a list call of the client names (API keys, signing keys), revoked ones too,
    oldest first, and whether there were more than the page lists."""
    out, token = [], ""
    while len(out) < MAX_LISTED_KEYS:
        got = await list_call(page_size=100, page_token=token, show_revoked=True)
        out += got.keys
        if not (token := got.next_page_token):
            return out, False
    return out[:MAX_LISTED_KEYS], True


async def _page(request: Request, session: Session, f: CampaignForm | None = None, errors: FormErrors | None = None,
                key_errors: dict[str, str] | None = None, key_values: dict[str, str] | None = None,
                saved: bool = False, status_code: int = 200, api: ApiKeyView | None = None) -> Response:
    if f is None:
        f = settings_form_of(settings_document(await read_settings(session.client)))
    keys, keys_problem = [], ""
    try:
        keys, _ = await _keys(session.client.list_user_token_keys)
    except grpc.aio.AioRpcError as exc:
        if exc.code() not in (grpc.StatusCode.UNIMPLEMENTED, grpc.StatusCode.UNAVAILABLE):
            raise
        # The rest of the page still works: say what is missing where the keys would be.
        keys_problem = f"The signing keys could not be read: {exc.code().name} {exc.details() or ''}".strip()
    api_keys, more_keys, api_keys_problem = [], False, ""
    try:
        api_keys, more_keys = await _keys(session.client.list_api_keys)
    except grpc.aio.AioRpcError as exc:
        if exc.code() not in (grpc.StatusCode.UNIMPLEMENTED, grpc.StatusCode.UNAVAILABLE):
            raise
        api_keys_problem = f"The API keys could not be read: {exc.code().name} {exc.details() or ''}".strip()
    return render(request, "settings.html", session, status_code=status_code, form=f, errors=errors or FormErrors(),
                  keys=keys, keys_problem=keys_problem, key_errors=key_errors or {}, key_values=key_values or {}, saved=saved,
                  algorithm=lambda a: token_pb.UserTokenAlgorithm.Name(a).removeprefix("USER_TOKEN_ALGORITHM_"),
                  api=api or ApiKeyView(revoked=request.query_params.get("revoked", "")), api_keys=api_keys,
                  more_api_keys=more_keys, api_keys_problem=api_keys_problem, scopes=SCOPES,
                  max_listed_keys=MAX_LISTED_KEYS)


@page
async def settings_view(request: Request, session: Session) -> Response:
    if request.method == "GET":
        return await _page(request, session, saved=request.query_params.get("saved") == "1")
    values = form(request)
    f = CampaignForm({k: values.get(k, "").strip() for k in ("default_time_zone", "default_locale")},
                     values.get("rest", ""))
    doc, errors = parse_settings_form(f)
    if doc is None:
        return await _page(request, session, f, errors, status_code=FORM_ERRORS)
    try:
        await session.client.update_app_settings(settings=doc.message)
    except grpc.aio.AioRpcError as exc:
        if exc.code() != grpc.StatusCode.INVALID_ARGUMENT:
            raise
        errors = settings_violation_errors([(v.field, v.description) for v in violations_of(exc)], doc, f)
        return await _page(request, session, f, errors, status_code=FORM_ERRORS)
    return redirect("/settings?saved=1")


@page
async def signing_key_add(request: Request, session: Session) -> Response:
    values = form(request)
    public_key, key_id = values.get("public_key", "").strip(), values.get("key_id", "").strip()
    if not public_key:
        return await _page(request, session, key_errors={"public_key": "is required: the public half, PEM or JWK"},
                           key_values=values, status_code=FORM_ERRORS)
    try:
        await session.client.add_user_token_key(public_key=public_key, key_id=key_id)
    except grpc.aio.AioRpcError as exc:
        if exc.code() not in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.ALREADY_EXISTS,
                              grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.RESOURCE_EXHAUSTED):
            raise
        found = {("key_id" if v.field == "key_id" else "public_key"): v.description for v in violations_of(exc)}
        return await _page(request, session, key_errors=found or {"public_key": exc.details()}, key_values=values,
                           status_code=FORM_ERRORS)
    return redirect("/settings#signing-keys")


@page
async def signing_key_revoke(request: Request, session: Session) -> Response:
    await session.client.revoke_user_token_key(key_id=form(request).get("key_id", ""))
    return redirect("/settings#signing-keys")


@page
async def api_key_create(request: Request, session: Session) -> Response:
    values = form(request)
    label = values.get("api_label", "").strip()
    chosen = [name for name, _ in SCOPES if values.get(f"scope.{name}")]
    try:
        created = await session.client.create_api_key(label=label, scopes=chosen)
    except grpc.aio.AioRpcError as exc:
        if exc.code() not in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION):
            raise
        found = violation_errors([(v.field, v.description) for v in violations_of(exc)], _API_KEY_INPUTS)
        if not found:
            found.general.append(exc.details() or exc.code().name)
        return await _page(request, session, api=ApiKeyView(errors=found, values=values), status_code=FORM_ERRORS)
    # Answered here, not through a redirect: the secret is in this page only and is kept
    # nowhere, not even in the session (the page is served no-store).
    return await _page(request, session, api=ApiKeyView(created=created))


@page
async def api_key_revoke(request: Request, session: Session) -> Response:
    key_id = form(request).get("key_id", "")
    try:
        await session.client.revoke_api_key(key_id=key_id)
    except grpc.aio.AioRpcError as exc:
        if exc.code() != grpc.StatusCode.FAILED_PRECONDITION:
            raise
        # The app's last admin key: the service keeps it, and the page says why.
        return await _page(request, session, api=ApiKeyView(refused=exc.details() or ""), status_code=FORM_ERRORS)
    if key_id == session.key_id:
        # The key this session calls with is gone: so is the session.
        console = console_of(request)
        console.store.end(session.id)
        await close_ended(console)
        return redirect("/login?next=/settings")
    return redirect(f"/settings?revoked={key_id}#api-keys")
