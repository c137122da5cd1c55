"""Campaigns: the list (status, schedule, priority, today's delivered, impressions and clicks),
create and edit (main fields as inputs, the rest as the campaign's YAML document, every problem
at its input or line), pause, resume, archive, and versions with a diff."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import grpc
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from console.forms import (MODES, STARTER, STATUSES, CampaignForm, FormErrors, form_of, header_length, parse_form,
                           place_problems, place_violations)
from console.sessions import Session
from console.web import FORM_ERRORS, form, page, redirect, render
from nudge_client.protos import decision
from nudgelib.errors import violations_of
from nudgetools.files import DocumentError, document_data, with_segment_ids
from nudgetools.operate.changes import field_changes, show
from nudgetools.operate.state import campaign_document, read_segments

# How many of a campaign's versions the versions page lists (newest first).
VERSIONS_SHOWN = 50


def routes() -> list[Route]:
    return [
        Route("/campaigns", campaigns_list),
        Route("/campaigns/new", campaign_new, methods=["GET", "POST"]),
        Route("/campaigns/{id}", campaign_view),
        Route("/campaigns/{id}/edit", campaign_edit, methods=["GET", "POST"]),
        Route("/campaigns/{id}/status", campaign_status, methods=["POST"]),
        Route("/campaigns/{id}/versions", campaign_versions),
    ]


def status_name(c: Any) -> str:
    return decision.CampaignStatus.Name(c.status)


async def app_today(client: Any) -> tuple[str, str]:
    zone = (await client.get_app_settings()).settings.default_time_zone or "UTC"
    return datetime.now(ZoneInfo(zone)).date().isoformat(), zone


async def _today_counts(client: Any, campaign_id: str, today: str, gate: asyncio.Semaphore) -> dict[str, int]:
    async with gate:
        stats = await client.get_campaign_stats(campaign_id=campaign_id, start_date=today, end_date=today)
    variants = [v for d in stats.days for v in d.variants]
    return {"delivered": sum(v.delivered for v in variants), "impressions": sum(v.impressions for v in variants),
            "clicks": sum(sum(v.clicks_by_button.values()) for v in variants)}


@page
async def campaigns_list(request: Request, session: Session) -> Response:
    client = session.client
    wanted = request.query_params.get("status", "")
    status = decision.CampaignStatus.Value(wanted) if wanted in STATUSES else 0
    found, token = [], ""
    while True:
        got = await client.list_campaigns(page_size=100, page_token=token, status=status)
        found += got.campaigns
        if not (token := got.next_page_token):
            break
    if not status:  # archived ones are over: shown only when asked for
        found = [c for c in found if c.status != decision.CAMPAIGN_STATUS_ARCHIVED]
    found.sort(key=lambda c: (-c.priority, c.name))
    today, zone = await app_today(client)
    gate = asyncio.Semaphore(8)  # the stats calls of one page, a few at a time
    counts = await asyncio.gather(*(_today_counts(client, c.id, today, gate) for c in found))
    rows = [{"c": c, "status": status_name(c), "today": n} for c, n in zip(found, counts)]
    return render(request, "campaigns.html", session, rows=rows, today=today, zone=zone, statuses=STATUSES,
                  wanted=wanted)


def _form_page(request: Request, session: Session, title: str, action: str, f: CampaignForm,
               errors: FormErrors | None = None, version: int = 0, status_code: int = 200) -> Response:
    return render(request, "campaign_form.html", session, status_code=status_code, title=title, action=action,
                  form=f, errors=errors or FormErrors(), statuses=STATUSES, modes=MODES, version=version)


async def _save(request: Request, session: Session, f: CampaignForm, campaign_id: str = "",
                version: int = 0) -> tuple[Any, FormErrors]:
    doc, errors = parse_form(f)
    if doc is None:
        return None, errors
    client = session.client
    segments = await read_segments(client)
    try:
        message = with_segment_ids(doc, segments.id_of)
    except DocumentError as exc:
        errors = FormErrors()
        place_problems(exc.problems, header_length(f), errors)
        return None, errors
    message.key = doc.message.key
    try:
        if campaign_id:
            message.id = campaign_id
            saved = (await client.update_campaign(campaign=message, expected_version=version)).campaign
        else:
            saved = (await client.create_campaign(campaign=message)).campaign
    except grpc.aio.AioRpcError as exc:
        if exc.code() == grpc.StatusCode.INVALID_ARGUMENT:
            return None, place_violations([(v.field, v.description) for v in violations_of(exc)], doc, f)
        if exc.code() == grpc.StatusCode.ALREADY_EXISTS:
            return None, FormErrors(inputs={"key": [exc.details()]})
        if exc.code() == grpc.StatusCode.ABORTED:
            return None, FormErrors(general=["Someone saved this campaign since you opened it: reload the page "
                                             "to edit the latest version (your changes are still in the form)."])
        raise
    return saved, FormErrors()


@page
async def campaign_new(request: Request, session: Session) -> Response:
    if request.method == "GET":
        f = CampaignForm({"status": "CAMPAIGN_STATUS_DRAFT", "priority": "0",
                          "delivery_mode": "DELIVERY_MODE_ON_REQUEST"}, STARTER)
        return _form_page(request, session, "New campaign", "/campaigns/new", f)
    f = CampaignForm.from_fields(form(request))
    saved, errors = await _save(request, session, f)
    if saved is None:
        return _form_page(request, session, "New campaign", "/campaigns/new", f, errors, status_code=FORM_ERRORS)
    return redirect(f"/campaigns/{saved.id}")


async def _campaign(session: Session, campaign_id: str, version: int = 0) -> Any:
    return (await session.client.get_campaign(campaign_id=campaign_id, version=version)).campaign


@page
async def campaign_view(request: Request, session: Session) -> Response:
    c = await _campaign(session, request.path_params["id"])
    segments = await read_segments(session.client)
    doc = campaign_document(c, segments)
    f = form_of(doc)
    return render(request, "campaign.html", session, c=c, status=status_name(c), form=f,
                  mode=decision.DeliveryMode.Name(c.delivery_mode))


@page
async def campaign_edit(request: Request, session: Session) -> Response:
    cid = request.path_params["id"]
    action = f"/campaigns/{cid}/edit"
    if request.method == "GET":
        c = await _campaign(session, cid)
        f = form_of(campaign_document(c, await read_segments(session.client)))
        return _form_page(request, session, f"Edit {c.name}", action, f, version=c.version)
    data = form(request)
    f = CampaignForm.from_fields(data)
    version = int(data.get("version", "0") or 0)
    saved, errors = await _save(request, session, f, cid, version)
    if saved is None:
        return _form_page(request, session, f"Edit {f.values.get('name') or cid}", action, f, errors, version,
                          status_code=FORM_ERRORS)
    return redirect(f"/campaigns/{cid}")


_ACTIONS = {"pause": decision.CAMPAIGN_STATUS_PAUSED, "resume": decision.CAMPAIGN_STATUS_ACTIVE,
            "activate": decision.CAMPAIGN_STATUS_ACTIVE, "archive": decision.CAMPAIGN_STATUS_ARCHIVED}


@page
async def campaign_status(request: Request, session: Session) -> Response:
    cid = request.path_params["id"]
    action = form(request).get("action", "")
    if action not in _ACTIONS:
        return render(request, "error.html", session, status_code=400, title="Unknown action",
                      message=f"{action!r} is not one of {', '.join(_ACTIONS)}")
    await session.client.set_campaign_status(campaign_id=cid, status=_ACTIONS[action])
    return redirect(form(request).get("back") if form(request).get("back") == "/campaigns" else f"/campaigns/{cid}")


@page
async def campaign_versions(request: Request, session: Session) -> Response:
    cid = request.path_params["id"]
    latest = await _campaign(session, cid)
    low = max(1, latest.version - VERSIONS_SHOWN + 1)
    older = await asyncio.gather(*(_campaign(session, cid, v) for v in range(low, latest.version)))
    versions = {c.version: c for c in [*older, latest]}

    def number(name: str, default: int) -> int:
        text = request.query_params.get(name, "")
        return int(text) if text.isdigit() and int(text) in versions else default

    new = number("to", latest.version)
    old = number("from", max(low, new - 1))
    segments = await read_segments(session.client)
    spec = lambda c: document_data(campaign_document(c, segments))["spec"]  # noqa: E731
    changes = [(ch.field, show(ch.old), show(ch.new)) for ch in field_changes(spec(versions[old]), spec(versions[new]))]
    return render(request, "versions.html", session, c=latest,
                  versions=sorted(versions.values(), key=lambda c: -c.version), old=old, new=new, changes=changes,
                  status_name=status_name)
