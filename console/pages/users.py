"""Users: one user's profile and attributes, segment memberships, Explain (why each campaign
would or would not show now, in a context the operator picks), pending triggered sends and
the settled ones of the last seven days (ListPendingSends), and erasure in every service."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import grpc
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from console.sessions import Session
from console.web import FORM_ERRORS, form, page, render
from nudge_client.protos import common, decision
from nudgetools.operate.commands import _attribute
from nudgetools.operate.state import read_segments

# States of a pending send that are settled (history), the others still pending.
SETTLED = {decision.PENDING_SEND_STATE_RELEASED, decision.PENDING_SEND_STATE_CONTROL,
           decision.PENDING_SEND_STATE_CANCELLED, decision.PENDING_SEND_STATE_DROPPED,
           decision.PENDING_SEND_STATE_EXPIRED, decision.PENDING_SEND_STATE_FAILED}
PLATFORMS = ("", "PLATFORM_IOS", "PLATFORM_ANDROID", "PLATFORM_WEB")


def routes() -> list[Route]:
    return [Route("/users", user_page), Route("/users/delete", user_delete, methods=["POST"])]


async def _profile(session: Session, user: str) -> Any:
    try:
        return (await session.client.get_user_profile(user_id=user)).profile
    except grpc.aio.AioRpcError as exc:
        if exc.code() == grpc.StatusCode.NOT_FOUND:
            return None
        raise


async def _sends(session: Session, user: str) -> list[Any]:
    out, token = [], ""
    for _ in range(10):  # at most 1000: a person reads far fewer
        got = await session.client.list_pending_sends(user_id=user, page_size=100, page_token=token)
        out += got.pending_sends
        if not (token := got.next_page_token):
            break
    return out


@page
async def user_page(request: Request, session: Session) -> Response:
    q = request.query_params
    user = q.get("user", "").strip()
    values = {"user": user, "screen": q.get("screen", ""), "platform": q.get("platform", "")}
    if not user:
        return render(request, "users.html", session, values=values, platforms=PLATFORMS, user=None)
    context = decision.RequestContext(screen=values["screen"])
    if values["platform"] in PLATFORMS[1:]:
        context.platform = common.Platform.Value(values["platform"])
    profile, explained, sends, segments = await asyncio.gather(
        _profile(session, user), session.client.explain_decision(user_id=user, context=context),
        _sends(session, user), read_segments(session.client))
    memberships = [(sid, segments.by_id.get(sid)) for sid in (profile.segment_ids if profile else [])]
    attributes = sorted((k, json.dumps(_attribute(v), ensure_ascii=False)) for k, v in profile.attributes.items()) \
        if profile else []
    return render(request, "users.html", session, values=values, platforms=PLATFORMS, user=user, profile=profile,
                  attributes=attributes, memberships=memberships, explained=explained.campaigns,
                  pending=[s for s in sends if s.state not in SETTLED], history=[s for s in sends if s.state in SETTLED],
                  verdict=lambda v: decision.Verdict.Name(v).removeprefix("VERDICT_").lower().replace("_", " "),
                  state=lambda s: decision.PendingSendState.Name(s).removeprefix("PENDING_SEND_STATE_").lower()
                  .replace("_", " "),
                  platform=lambda p: common.Platform.Name(p).removeprefix("PLATFORM_").lower())


@page
async def user_delete(request: Request, session: Session) -> Response:
    values = form(request)
    user = values.get("user", "").strip()
    if not user or values.get("confirm") != user:
        return render(request, "users.html", session, status_code=FORM_ERRORS, values={"user": user}, platforms=PLATFORMS,
                      user=None, delete_error="Type the user id again to confirm the erasure.")
    got = await session.client.delete_user(user_id=user)
    return render(request, "users.html", session, values={"user": ""}, platforms=PLATFORMS, user=None,
                  deleted=user, completed=got.completed)
