"""API keys: apps are isolated, scopes are enforced, internal RPCs are closed to public keys,
and a revoked key stops working without a restart."""

from __future__ import annotations

import asyncpg
import grpc

from nudge.decision.v1 import decision_internal_service_pb2 as decision_internal_pb
from nudge.decision.v1 import decision_internal_service_pb2_grpc as decision_internal_grpc
from nudge.decision.v1 import decision_service_pb2 as decision_pb
from nudge.delivery.v1 import delivery_service_pb2 as delivery_pb
from nudge.segmentation.v1 import segmentation_service_pb2 as seg_pb
from nudgelib import accounts
from nudgetools import demo
from tests.conftest import INTERNAL_TOKEN, eventually
from tests.helpers import Clients, event, expect_error, track


async def test_key_of_one_app_cannot_touch_another(stack, app, other_app):
    api = Clients(stack.channel)
    segment = (await api.segmentation.CreateSegment(demo.signup_segment(), metadata=app.auth("admin"))).segment
    campaign = (await api.decision.CreateCampaign(
        decision_pb.CreateCampaignRequest(campaign=demo.welcome_campaign(segment.id)),
        metadata=app.auth("admin"))).campaign

    await expect_error(api.segmentation.GetSegment(seg_pb.GetSegmentRequest(segment_id=segment.id),
                                                   metadata=other_app.auth("admin")), grpc.StatusCode.NOT_FOUND)
    await expect_error(api.decision.GetCampaign(decision_pb.GetCampaignRequest(campaign_id=campaign.id),
                                                metadata=other_app.auth("admin")), grpc.StatusCode.NOT_FOUND)
    await expect_error(api.decision.SetCampaignStatus(decision_pb.SetCampaignStatusRequest(
        campaign_id=campaign.id, status=decision_pb.CAMPAIGN_STATUS_PAUSED), metadata=other_app.auth("admin")),
        grpc.StatusCode.NOT_FOUND)
    listed = await api.decision.ListCampaigns(decision_pb.ListCampaignsRequest(), metadata=other_app.auth("admin"))
    assert list(listed.campaigns) == []

    # The same user id in the other app is another user: app A's signup does not qualify it.
    await api.ingestion.TrackEvents(track([event("x1", "shared-user", "signup")]), metadata=app.auth("events"))

    async def fetch(which):
        return (await api.delivery.FetchMessages(
            delivery_pb.FetchMessagesRequest(user_id="shared-user"), metadata=which.auth("client"))).messages

    (message,) = await eventually(lambda: fetch(app))
    assert list(await fetch(other_app)) == []
    await expect_error(api.delivery.ReportInteraction(delivery_pb.ReportInteractionRequest(
        message_id=message.message_id, user_id="shared-user", type=delivery_pb.INTERACTION_TYPE_IMPRESSION),
        metadata=other_app.auth("client")), grpc.StatusCode.NOT_FOUND)


async def test_scopes_are_enforced(stack, app):
    api = Clients(stack.channel)
    # A mobile backend's key cannot manage campaigns or send events.
    await expect_error(api.decision.ListCampaigns(decision_pb.ListCampaignsRequest(), metadata=app.auth("client")),
                       grpc.StatusCode.PERMISSION_DENIED)
    await expect_error(api.ingestion.TrackEvents(track([event("s", "u", "signup")]), metadata=app.auth("client")),
                       grpc.StatusCode.PERMISSION_DENIED)
    # A producer's key cannot read messages.
    await expect_error(api.delivery.FetchMessages(delivery_pb.FetchMessagesRequest(user_id="u"),
                                                  metadata=app.auth("events")), grpc.StatusCode.PERMISSION_DENIED)
    # Admin may do everything public.
    await api.delivery.FetchMessages(delivery_pb.FetchMessagesRequest(user_id="u"), metadata=app.auth("admin"))


async def test_missing_or_unknown_key_is_unauthenticated(stack):
    api = Clients(stack.channel)
    await expect_error(api.decision.ListCampaigns(decision_pb.ListCampaignsRequest()),
                       grpc.StatusCode.UNAUTHENTICATED)
    await expect_error(api.decision.ListCampaigns(decision_pb.ListCampaignsRequest(),
                                                  metadata=(("authorization", "Bearer nudge_nope_nope"),)),
                       grpc.StatusCode.UNAUTHENTICATED)


async def test_internal_rpcs_are_closed_to_public_keys(stack, app):
    stub = decision_internal_grpc.DecisionInternalServiceStub(stack.channel("decision"))
    request = decision_internal_pb.DecideRequest(app_id=app.id, user_id="u1")
    for label in ("admin", "client", "events"):
        await expect_error(stub.Decide(request, metadata=app.auth(label)), grpc.StatusCode.PERMISSION_DENIED)
    reply = await stub.Decide(request, metadata=(("authorization", f"Bearer {INTERNAL_TOKEN}"),))
    assert list(reply.decisions) == []


async def test_revoked_key_stops_working_without_restart(stack, app, database_url):
    api = Clients(stack.channel)
    request = decision_pb.ListCampaignsRequest()
    await api.decision.ListCampaigns(request, metadata=app.auth("admin"))
    key_id = app.keys["admin"].split("_")[1]
    conn = await asyncpg.connect(database_url)
    try:
        assert await accounts.revoke_key(conn, key_id)
    finally:
        await conn.close()

    async def refused():
        try:
            await api.decision.ListCampaigns(request, metadata=app.auth("admin"))
        except grpc.aio.AioRpcError as exc:
            return exc.code() == grpc.StatusCode.UNAUTHENTICATED
        return False

    await eventually(refused, timeout=5)
