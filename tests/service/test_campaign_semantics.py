"""Campaign semantics a user sees: an on-request campaign is shown once per user unless it
asks for repeats; a trigger fires only while its campaign runs."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import grpc
import pytest
from google.protobuf import duration_pb2

from nudge.decision.v1 import decision_internal_service_pb2 as internal_pb
from nudge.decision.v1 import decision_internal_service_pb2_grpc as internal_grpc
from nudge.decision.v1 import decision_service_pb2 as pb
from nudge.decision.v1 import decision_service_pb2_grpc as pb_grpc
from nudgelib.clock import FixedClock
from services.decision.server import SPEC as DECISION
from tests.conftest import INTERNAL_TOKEN, start_host
from tests.helpers import create_app
from tests.service.test_decision import banner

INTERNAL = (("authorization", f"Bearer {INTERNAL_TOKEN}"),)


async def pulls(internal, app_id: str, user_id: str, times: int) -> list[int]:
    """How many messages each of `times` pulls hands out."""
    out = []
    for _ in range(times):
        got = await internal.Decide(internal_pb.DecideRequest(app_id=app_id, user_id=user_id), metadata=INTERNAL)
        out.append(len(got.decisions))
    return out


@pytest.fixture
async def decision_at(stack, database_url):
    """A decision replica on a clock the test moves, and its stubs."""
    clock = FixedClock(datetime.now(timezone.utc))
    host = await start_host(DECISION, database_url, {"segmentation": stack.target("segmentation")}, clock=clock)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{host.port}")
    yield clock, pb_grpc.DecisionServiceStub(channel), internal_grpc.DecisionInternalServiceStub(channel)
    await channel.close()
    await host.stop()


async def test_an_on_request_campaign_is_shown_once_per_user_by_default(stack, database_url):
    app = await create_app(database_url)
    admin = pb_grpc.DecisionServiceStub(stack.channel("decision"))
    internal = internal_grpc.DecisionInternalServiceStub(stack.channel("decision"))
    await admin.CreateCampaign(pb.CreateCampaignRequest(campaign=banner("Once")), metadata=app.auth("admin"))

    assert await pulls(internal, app.id, "u1", 3) == [1, 0, 0]
    # Each user once.
    assert await pulls(internal, app.id, "u2", 2) == [1, 0]
    explained = await admin.ExplainDecision(pb.ExplainDecisionRequest(user_id="u1"), metadata=app.auth("admin"))
    assert [(c.reason, c.detail) for c in explained.campaigns] == [("CAPPED", "capped by lifetime")]


async def test_a_lifetime_max_above_one_allows_that_many(stack, database_url):
    app = await create_app(database_url)
    admin = pb_grpc.DecisionServiceStub(stack.channel("decision"))
    internal = internal_grpc.DecisionInternalServiceStub(stack.channel("decision"))
    await admin.CreateCampaign(pb.CreateCampaignRequest(
        campaign=banner("Thrice", caps=pb.CampaignCaps(lifetime_max=3))), metadata=app.auth("admin"))

    assert await pulls(internal, app.id, "u", 4) == [1, 1, 1, 0]


async def test_a_reeligibility_interval_shows_it_again_once_the_interval_passed(decision_at, database_url):
    clock, admin, internal = decision_at
    app = await create_app(database_url)
    await admin.CreateCampaign(pb.CreateCampaignRequest(campaign=banner(
        "Daily", caps=pb.CampaignCaps(reeligibility_interval=duration_pb2.Duration(seconds=86400)))),
        metadata=app.auth("admin"))

    assert await pulls(internal, app.id, "u", 2) == [1, 0]
    clock.advance(timedelta(days=1, seconds=1))
    assert await pulls(internal, app.id, "u", 2) == [1, 0]
