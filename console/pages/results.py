"""Results: per variant (control included) the counts, rates and conversion uplift over
control with its 95% interval (delivery computes them: services/delivery/stats.py), the funnel
and a daily series as charts (Vega-Lite rendered to SVG on the server), and survey answers."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta

from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from console import charts, render as charts_render
from console.pages.campaigns import app_today
from console.sessions import Session
from console.web import page, render
from nudge_client.protos import delivery

# Days a results page covers unless asked (at most MAX_DAYS).
DEFAULT_DAYS = 14
MAX_DAYS = 366
ANSWERS_SHOWN = 50


def routes() -> list[Route]:
    return [Route("/campaigns/{id}/results", results_page)]


def _days(text: str) -> int:
    return min(max(int(text), 1), MAX_DAYS) if text.isdigit() else DEFAULT_DAYS


def _svg(svg: str, label: str) -> Markup:
    # The chart is an image to assistive technology, named by its caption; the table beside
    # it holds the same numbers.
    return Markup(svg.replace("<svg ", f'<svg role="img" aria-label="{Markup.escape(label)}" ', 1))


@page
async def results_page(request: Request, session: Session) -> Response:
    cid = request.path_params["id"]
    client = session.client
    days = _days(request.query_params.get("days", ""))
    today, zone = await app_today(client)
    end = date.fromisoformat(today)
    start = end - timedelta(days=days - 1)
    c, stats, answers = await asyncio.gather(
        client.get_campaign(campaign_id=cid),
        client.get_campaign_stats(campaign_id=cid, start_date=start.isoformat(), end_date=end.isoformat()),
        client.list_survey_answers(campaign_id=cid, page_size=ANSWERS_SHOWN))
    c = c.campaign
    funnel, daily = await asyncio.gather(charts_render.svg(charts.funnel_spec(stats)),
                                         charts_render.svg(charts.daily_spec(stats)))
    rows = [{"name": charts.variant_name(v), "v": v, "clicks": sum(v.clicks_by_button.values())}
            for v in stats.variants]
    tallies = [(charts.variant_name(v), k, n) for v in stats.variants for k, n in sorted(v.survey_answers.items())]
    return render(request, "results.html", session, c=c, stats=stats, rows=rows, days=days, start=start, end=end,
                  funnel=_svg(funnel, f"Funnel of {c.name} by variant"),
                  daily=_svg(daily, f"Daily counts of {c.name} by variant"),
                  answers=answers.answers, tallies=tallies, has_control=bool(c.control_weight),
                  stage_name=lambda s: delivery.FunnelStage.Name(s).removeprefix("FUNNEL_STAGE_").lower())
