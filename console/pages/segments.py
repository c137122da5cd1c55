"""Segments: the list with each audience's size, a rule editor (the rule as in a segment file,
checked by segmentation's own validation, each problem at its line) with a live audience
estimate of the rule being typed (EstimateAudience takes a rule), and a saved segment's sample
members (ListSegmentMembers; the API lists members of saved segments only)."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from console.forms import SEGMENT_STARTER, CampaignForm, FormErrors, parse_segment_form, segment_form_of
from console.sessions import Session
from console.web import FORM_ERRORS, form, page, redirect, render
from nudgelib.errors import violations_of
from nudgetools.files import DocumentError, with_segment_ids
from nudgetools.operate.state import read_segments, segment_document

SAMPLE_MEMBERS = 20


def routes() -> list[Route]:
    return [
        Route("/segments", segments_list),
        Route("/segments/new", segment_new, methods=["GET", "POST"]),
        Route("/segments/estimate", segment_estimate, methods=["POST"]),
        Route("/segments/{id}", segment_edit, methods=["GET", "POST"]),
        Route("/segments/{id}/delete", segment_delete, methods=["POST"]),
    ]


def _share(got: Any) -> dict[str, Any]:
    total = got.total_user_count
    return {"count": got.user_count, "total": total, "share": got.user_count / total if total else 0.0}


@page
async def segments_list(request: Request, session: Session) -> Response:
    segments = await read_segments(session.client)
    found = sorted(segments.by_id.values(), key=lambda s: s.name)
    sizes = await asyncio.gather(*(session.client.estimate_audience(segment_id=s.id) for s in found))
    return render(request, "segments.html", session, rows=[(s, _share(n)) for s, n in zip(found, sizes)])


def _fields(values: dict[str, str]) -> CampaignForm:
    return CampaignForm({k: values.get(k, "").strip() for k in ("name", "key", "description")}, values.get("rule", ""))


async def _message(session: Session, f: CampaignForm) -> tuple[Any, FormErrors]:
    doc, errors = parse_segment_form(f)
    if doc is None:
        return None, errors
    segments = await read_segments(session.client)
    try:
        return with_segment_ids(doc, segments.id_of), errors
    except DocumentError as exc:
        return None, FormErrors(rest=[(p.line - 6, p.field, p.message) for p in exc.problems])


def _form_page(request: Request, session: Session, f: CampaignForm, errors: FormErrors, segment: Any = None,
               members: list[str] | None = None, estimate: Any = None, status_code: int = 200) -> Response:
    return render(request, "segment_form.html", session, status_code=status_code, form=f, errors=errors,
                  segment=segment, members=members, estimate=estimate,
                  action=f"/segments/{segment.id}" if segment is not None else "/segments/new")


async def _save(session: Session, f: CampaignForm, segment: Any = None) -> tuple[Any, FormErrors]:
    message, errors = await _message(session, f)
    if message is None:
        return None, errors
    fields = dict(name=message.name, description=message.description, rule=message.rule, key=message.key)
    try:
        if segment is None:
            return (await session.client.create_segment(**fields)).segment, errors
        return (await session.client.update_segment(segment_id=segment.id, expected_version=segment.version,
                                                    **fields)).segment, errors
    except grpc.aio.AioRpcError as exc:
        if exc.code() == grpc.StatusCode.INVALID_ARGUMENT:
            out = FormErrors()
            for v in violations_of(exc):
                name = v.field.removeprefix("segment.")
                if name in ("name", "key", "description"):
                    out.inputs.setdefault(name, []).append(v.description)
                else:
                    out.rest.append((0, v.field, v.description))
            return None, out
        if exc.code() in (grpc.StatusCode.ALREADY_EXISTS, grpc.StatusCode.ABORTED, grpc.StatusCode.FAILED_PRECONDITION):
            return None, FormErrors(general=[exc.details()])
        raise


@page
async def segment_new(request: Request, session: Session) -> Response:
    if request.method == "GET":
        return _form_page(request, session, CampaignForm({}, SEGMENT_STARTER), FormErrors())
    f = _fields(form(request))
    saved, errors = await _save(session, f)
    if saved is None:
        return _form_page(request, session, f, errors, status_code=FORM_ERRORS)
    return redirect(f"/segments/{saved.id}")


async def _members(session: Session, segment_id: str) -> list[str]:
    got = await session.client.list_segment_members(segment_id=segment_id, page_size=SAMPLE_MEMBERS)
    return list(got.user_ids)


@page
async def segment_edit(request: Request, session: Session) -> Response:
    segment = (await session.client.get_segment(segment_id=request.path_params["id"])).segment
    if request.method == "POST":
        f = _fields(form(request))
        saved, errors = await _save(session, f, segment)
        if saved is None:
            return _form_page(request, session, f, errors, segment, status_code=FORM_ERRORS)
        return redirect(f"/segments/{saved.id}")
    segments = await read_segments(session.client)
    f = segment_form_of(segment_document(segment, segments))
    estimate, members = await asyncio.gather(session.client.estimate_audience(segment_id=segment.id),
                                             _members(session, segment.id))
    return _form_page(request, session, f, FormErrors(), segment, members, _share(estimate))


@page
async def segment_estimate(request: Request, session: Session) -> Response:
    """The audience of the rule in the editor, as typed (htmx swaps it in while typing)."""
    values = form(request)
    f = _fields({**values, "name": values.get("name") or "estimate"})
    message, errors = await _message(session, f)
    if message is None:
        return render(request, "segment_estimate.html", session, errors=errors, estimate=None)
    try:
        got = await session.client.estimate_audience(rule=message.rule)
    except grpc.aio.AioRpcError as exc:
        if exc.code() != grpc.StatusCode.INVALID_ARGUMENT:
            raise
        return render(request, "segment_estimate.html", session, estimate=None,
                      errors=FormErrors(rest=[(0, v.field, v.description) for v in violations_of(exc)]))
    return render(request, "segment_estimate.html", session, errors=FormErrors(), estimate=_share(got))


@page
async def segment_delete(request: Request, session: Session) -> Response:
    try:
        await session.client.delete_segment(segment_id=request.path_params["id"])
    except grpc.aio.AioRpcError as exc:
        if exc.code() != grpc.StatusCode.FAILED_PRECONDITION:
            raise
        return render(request, "error.html", session, status_code=409, title="The segment is in use",
                      message=exc.details())
    return redirect("/segments")
