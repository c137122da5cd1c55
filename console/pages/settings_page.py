"""Settings: the app's time zone and default locale, its cap rules and quiet hours (the
AppSettings document, checked as `nudge apply` checks it), and the user-token signing keys
(add, revoke). API keys are not in the public API: they are made and revoked with `nudge keys`
on the accounts database, so this page lists none."""

from __future__ import annotations

import grpc
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from console.forms import CampaignForm, FormErrors, parse_settings_form, settings_form_of, settings_violation_errors
from console.sessions import Session
from console.web import FORM_ERRORS, form, page, redirect, render
from nudge_client._proto.nudge.decision.v1 import user_token_key_service_pb2 as token_pb
from nudgelib.errors import violations_of
from nudgetools.operate.state import read_settings, settings_document


def routes() -> list[Route]:
    return [
        Route("/settings", settings_view, methods=["GET", "POST"]),
        Route("/settings/signing-keys", signing_key_add, methods=["POST"]),
        Route("/settings/signing-keys/revoke", signing_key_revoke, methods=["POST"]),
    ]


async def _page(request: Request, session: Session, f: CampaignForm | None = None, errors: FormErrors | None = None,
                key_errors: dict[str, str] | None = None, key_values: dict[str, str] | None = None,
                saved: bool = False, status_code: int = 200) -> Response:
    if f is None:
        f = settings_form_of(settings_document(await read_settings(session.client)))
    keys, keys_problem = [], ""
    try:
        keys = await session.token_keys.list()
    except grpc.aio.AioRpcError as exc:
        if exc.code() not in (grpc.StatusCode.UNIMPLEMENTED, grpc.StatusCode.UNAVAILABLE):
            raise
        # The rest of the page still works: say what is missing where the keys would be.
        keys_problem = f"The signing keys could not be read: {exc.code().name} {exc.details() or ''}".strip()
    return render(request, "settings.html", session, status_code=status_code, form=f, errors=errors or FormErrors(),
                  keys=keys, keys_problem=keys_problem, key_errors=key_errors or {}, key_values=key_values or {}, saved=saved,
                  algorithm=lambda a: token_pb.UserTokenAlgorithm.Name(a).removeprefix("USER_TOKEN_ALGORITHM_"))


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
        await session.token_keys.add(public_key, key_id)
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
    await session.token_keys.revoke(form(request).get("key_id", ""))
    return redirect("/settings#signing-keys")
