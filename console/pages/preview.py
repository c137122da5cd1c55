"""Preview and test sends. Each variant × locale is rendered by PreviewMessage (for a user id,
or sample attributes and event properties) and drawn by the web SDK's own renderer in a frame
of its own: the frame's SDK fetches the rendered message from this console over gRPC-Web, as
a page fetches a user's messages from the edge, so what the operator sees is what users see.
Nothing the operator does in a frame is reported anywhere."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import grpc
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from console import grpcweb
from console.sessions import COOKIE, Session
from console.web import FORM_ERRORS, console_of, form, page, render
from nudge_client.protos import decision, delivery
from nudgelib.errors import violations_of
# The CLI's helper: attribute values as `nudge preview --attr` reads them.
from nudgetools.operate.commands import _attribute_value

_DELIVERY = "nudge.delivery.v1.DeliveryService"


def routes() -> list[Route]:
    return [
        Route("/campaigns/{id}/preview", preview_page),
        Route("/campaigns/{id}/test", send_test, methods=["POST"]),
        Route("/preview/{pid}", preview_frame),
        Route("/preview/{pid}/rpc/{service}/{method}", preview_rpc, methods=["POST"]),
    ]


def _json_object(text: str, what: str, errors: dict[str, str], name: str) -> dict[str, Any]:
    if not text.strip():
        return {}
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        errors[name] = f"not JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        return {}
    if not isinstance(data, dict):
        errors[name] = f"a JSON object of {what}, e.g. {{\"first_name\": \"Ada\"}}"
        return {}
    return data


def _sample(values: dict[str, str], errors: dict[str, str]) -> dict[str, Any]:
    """The preview's inputs as request fields."""
    fields: dict[str, Any] = {"user_id": values.get("user", "").strip()}
    attributes = _json_object(values.get("attributes", ""), "attributes", errors, "attributes")
    event = _json_object(values.get("event", ""), "the event's properties", errors, "event")
    if attributes:
        fields["attributes"] = {k: _attribute_value(v) for k, v in attributes.items()}
    if event:
        fields["event_properties"] = event
    return fields


async def _preview(session: Session, c: Any, variant: str, locale: str, sample: dict[str, Any]) -> dict[str, Any]:
    request = decision.PreviewMessageRequest(campaign_id=c.id, version=c.version, variant_id=variant, locale=locale,
                                             user_id=sample.get("user_id", ""))
    for name, value in sample.get("attributes", {}).items():
        request.attributes[name].CopyFrom(value)
    if "event_properties" in sample:
        request.event_properties.update(sample["event_properties"])
    got = await session.client.preview_message(request)
    pid = session.keep_preview(got)
    return {"variant": variant, "asked_locale": locale, "got": got, "pid": pid}


async def _page(request: Request, session: Session, values: dict[str, str], notice: Any = None,
                test_errors: dict[str, str] | None = None, status_code: int = 200) -> Response:
    cid = request.path_params["id"]
    c = (await session.client.get_campaign(campaign_id=cid)).campaign
    errors: dict[str, str] = {}
    sample = _sample(values, errors)
    cells = []
    if not errors:
        pairs = [(v.id, content.locale) for v in c.variants for content in v.contents] or [("", "")]
        try:
            cells = await asyncio.gather(*(_preview(session, c, v, loc, sample) for v, loc in pairs))
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.INVALID_ARGUMENT:
                raise
            for v in violations_of(exc):
                name = {"user_id": "user", "attributes": "attributes"}.get(v.field.split(".")[0].split("[")[0], "")
                errors[name or "general"] = v.description
    return render(request, "preview.html", session, status_code=status_code, c=c, values=values, errors=errors,
                  cells=cells, notice=notice, test_errors=test_errors or {},
                  variants=[v.id for v in c.variants],
                  locales=sorted({content.locale for v in c.variants for content in v.contents}))


@page
async def preview_page(request: Request, session: Session) -> Response:
    return await _page(request, session, dict(request.query_params))


@page
async def send_test(request: Request, session: Session) -> Response:
    values = form(request)
    cid = request.path_params["id"]
    test_errors: dict[str, str] = {}
    user = values.get("test_user", "").strip()
    if not user:
        test_errors["test_user"] = "is required: the user who gets the test message"
    event = _json_object(values.get("test_event", ""), "the event's properties", test_errors, "test_event")
    notice = None
    if not test_errors:
        request_fields: dict[str, Any] = dict(campaign_id=cid, user_id=user, variant_id=values.get("test_variant", ""),
                                              locale=values.get("test_locale", ""))
        if event:
            request_fields["event_properties"] = event
        try:
            test = decision.SendTestMessageRequest(
                **{k: v for k, v in request_fields.items() if k != "event_properties"})
            if event:
                test.event_properties.update(event)
            notice = await session.client.send_test_message(test)
        except grpc.aio.AioRpcError as exc:
            if exc.code() not in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION):
                raise
            found = violations_of(exc)
            names = {"user_id": "test_user", "variant_id": "test_variant", "locale": "test_locale",
                     "event_properties": "test_event"}
            for v in found:
                test_errors[names.get(v.field.split(".")[0], "test_general")] = v.description
            if not found:
                test_errors["test_general"] = exc.details() or exc.code().name
    shown = {k: values.get(k, "") for k in ("user", "attributes", "event")}
    return await _page(request, session, {**shown, **{k: values.get(k, "") for k in values if k.startswith("test_")}},
                       notice=notice, test_errors=test_errors, status_code=FORM_ERRORS)


async def _session(request: Request) -> Session | None:
    return console_of(request).store.get(request.cookies.get(COOKIE))


async def preview_frame(request: Request) -> Response:
    session = await _session(request)
    if session is None or request.path_params["pid"] not in session.previews:
        return render(request, "expired.html", None, status_code=404)
    got = session.previews[request.path_params["pid"]]
    return render(request, "preview_frame.html", session, pid=request.path_params["pid"], got=got)


async def preview_rpc(request: Request) -> Response:
    """The frame's SDK calls: FetchMessages gets the preview as one message; a report
    (ReportInteraction) is answered and recorded nowhere. Only gRPC-Web requests of a live
    session: a form of another site can send neither the content type nor the cookie."""
    session = await _session(request)
    if not request.headers.get("content-type", "").startswith("application/grpc-web"):
        return Response(status_code=415)

    def answer(body: bytes) -> Response:
        return Response(body, media_type=grpcweb.CONTENT_TYPE, headers={"grpc-accept-encoding": "identity"})

    got = session.previews.get(request.path_params["pid"]) if session is not None else None
    if got is None:
        return answer(grpcweb.response(b"", 16, "the console session has ended"))
    if request.path_params["service"] != _DELIVERY:
        return answer(grpcweb.response(b"", 12, "not a preview call"))
    method = request.path_params["method"]
    if method == "FetchMessages":
        message = delivery.InAppMessage(message_id=f"preview_{request.path_params['pid']}", campaign_id=got.campaign_id,
                                        campaign_version=got.campaign_version, variant_id=got.variant_id,
                                        locale=got.locale, test=True)
        message.content.CopyFrom(got.content)
        return answer(grpcweb.response(delivery.FetchMessagesResponse(messages=[message]).SerializeToString()))
    if method == "ReportInteraction":
        return answer(grpcweb.response(delivery.ReportInteractionResponse().SerializeToString()))
    return answer(grpcweb.response(b"", 12, f"{method} is not part of a preview"))
