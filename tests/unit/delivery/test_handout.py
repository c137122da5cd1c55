"""Delivery's hand-out: the re-offer round to open streams goes on through a database error."""

from __future__ import annotations

import asyncio

import asyncpg
import prometheus_client as prom
from structlog.testing import capture_logs

from nudge.decision.v1 import decision_service_pb2 as decision_pb
from nudgelib.clients import Peer
from nudgelib.clock import SystemClock
from services.delivery.handout import Handout
from services.delivery.streams import StreamHub


async def test_the_reoffer_loop_survives_a_database_error_and_offers_again():
    hub = StreamHub()
    hub.open("app", "u1", decision_pb.RequestContext())
    decision = Peer("decision", "127.0.0.1:9", "t" * 16)
    handout = Handout(None, SystemClock(), decision, hub, prom.CollectorRegistry())
    offers: list[tuple[str, str]] = []

    async def offer(app_id: str, user_id: str, pending=None) -> None:
        offers.append((app_id, user_id))
        if len(offers) == 1:
            # What the stream notification after a hand-out meets when the connection drops.
            raise asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed in the middle of operation")

    handout.offer_to_streams = offer
    with capture_logs() as logs:
        task = asyncio.create_task(handout.reoffer_loop(0.05))
        try:
            for _ in range(100):
                if len(offers) >= 3:
                    break
                await asyncio.sleep(0.02)
            assert not task.done()
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await decision.close()
    assert len(offers) >= 3 and set(offers) == {("app", "u1")}
    assert [e["loop"] for e in logs if e["event"] == "loop_step_failed"] == ["reoffer"]
