"""The demo the README walks through: an app named `demo` with its keys, a segment of users
who performed `signup` and an active welcome campaign shown to them, created through the
public API like any operator's."""

from __future__ import annotations

import json
from pathlib import Path

import asyncpg
import grpc

from nudgelib import accounts
from nudge.common.v1 import common_pb2
from nudge.decision.v1 import decision_service_pb2 as decision_pb
from nudge.decision.v1 import decision_service_pb2_grpc as decision_grpc
from nudge.segmentation.v1 import segmentation_service_pb2 as seg_pb
from nudge.segmentation.v1 import segmentation_service_pb2_grpc as seg_grpc

APP = "demo"
SEGMENT_KEY = "signed-up"
CAMPAIGN_KEY = "welcome"


async def app_keys(url: str, keys_file: Path) -> tuple[str, dict[str, str], bool]:
    """The demo app's id and keys, creating them on first run. Keys are kept in the local data
    folder so restarts print the same ones. Returns (app id, label -> key, created now)."""
    conn = await asyncpg.connect(url)
    try:
        app_id = await accounts.find_app(conn, APP)
        if app_id and keys_file.exists():
            saved = json.loads(keys_file.read_text())
            if saved.get("app_id") == app_id:
                return app_id, saved["keys"], False
        created = app_id is None
        if created:
            app_id, issued = await accounts.create_app(conn, APP)
        else:
            issued = [await accounts.create_key(conn, app_id, label, scopes)
                      for label, scopes in accounts.DEFAULT_KEYS.items()]
    finally:
        await conn.close()
    keys = {k.label: k.secret for k in issued}
    keys_file.parent.mkdir(parents=True, exist_ok=True)
    keys_file.write_text(json.dumps({"app_id": app_id, "keys": keys}, indent=2))
    keys_file.chmod(0o600)
    return app_id, keys, created


def signup_segment() -> seg_pb.CreateSegmentRequest:
    return seg_pb.CreateSegmentRequest(
        name="Signed up",
        description="Users who performed signup at least once",
        rule=seg_pb.Rule(event=seg_pb.EventCondition(
            name="signup", operator=seg_pb.EVENT_OPERATOR_AT_LEAST, count=1)),
    )


def welcome_campaign(segment_id: str) -> decision_pb.Campaign:
    return decision_pb.Campaign(
        name="Welcome",
        tags=["onboarding"],
        priority=10,
        status=decision_pb.CAMPAIGN_STATUS_ACTIVE,
        delivery_mode=decision_pb.DELIVERY_MODE_ON_REQUEST,
        audience=decision_pb.Audience(include_segment_ids=[segment_id]),
        variants=[decision_pb.Variant(
            id="A", name="Welcome modal", weight=1, default_locale="en",
            contents=[decision_pb.LocalizedContent(locale="en", content=common_pb2.MessageContent(
                layout=common_pb2.LAYOUT_MODAL,
                title="Welcome to Nudge!",
                body="Thanks for signing up. Take the tour?",
                buttons=[
                    common_pb2.Button(id="tour", text="Take the tour",
                                      action=common_pb2.BUTTON_ACTION_TYPE_DEEP_LINK, target="app://tour"),
                    common_pb2.Button(id="later", text="Later", action=common_pb2.BUTTON_ACTION_TYPE_DISMISS),
                ],
            ))],
        )],
    )


async def seed(segmentation_target: str, decision_target: str, admin_key: str,
               credentials: grpc.ChannelCredentials | None = None) -> tuple[str, str]:
    """Creates the demo segment and campaign (with `credentials`, over TLS); returns their ids."""
    metadata = (("authorization", f"Bearer {admin_key}"),)

    def channel(target: str) -> grpc.aio.Channel:
        return grpc.aio.secure_channel(target, credentials) if credentials else grpc.aio.insecure_channel(target)

    async with channel(segmentation_target) as seg_channel, channel(decision_target) as dec_channel:
        # With keys, so `nudge export` writes them and `nudge apply` of that finds them again.
        request = signup_segment()
        request.key = SEGMENT_KEY
        segment = (await seg_grpc.SegmentationServiceStub(seg_channel).CreateSegment(
            request, metadata=metadata, timeout=10)).segment
        campaign = welcome_campaign(segment.id)
        campaign.key = CAMPAIGN_KEY
        campaign = (await decision_grpc.DecisionServiceStub(dec_channel).CreateCampaign(
            decision_pb.CreateCampaignRequest(campaign=campaign), metadata=metadata, timeout=10)).campaign
    return segment.id, campaign.id
