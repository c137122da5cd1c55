"""The examples against the real services: every document is accepted as it is (segment keys
mapped to the ids the service assigns), and what the services then return, turned back into
documents (ids mapped back to keys), is what the files say."""

from __future__ import annotations

from pathlib import Path

from nudge.decision.v1 import decision_service_pb2 as pb
from nudge.decision.v1 import decision_service_pb2_grpc as pb_grpc
from nudge.segmentation.v1 import segmentation_service_pb2 as seg_pb
from nudge.segmentation.v1 import segmentation_service_pb2_grpc as seg_grpc
from nudgetools.files import from_message, load_documents, with_segment_ids
from tests.helpers import create_app

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


async def test_the_services_take_every_example_and_give_back_the_same_documents(stack, database_url):
    app = await create_app(database_url)
    auth = app.auth("admin")
    segments = seg_grpc.SegmentationServiceStub(stack.channel("segmentation"))
    decision = pb_grpc.DecisionServiceStub(stack.channel("decision"))
    docs = load_documents([EXAMPLES])

    ids: dict[str, str] = {}  # segment key -> id
    for d in (d for d in docs if d.kind == "Segment"):
        s = with_segment_ids(d, ids)
        saved = await segments.CreateSegment(seg_pb.CreateSegmentRequest(
            name=s.name, description=s.description, rule=s.rule), metadata=auth)
        ids[d.key] = saved.segment.id
    campaign_ids: dict[str, str] = {}
    for d in (d for d in docs if d.kind == "Campaign"):
        saved = await decision.CreateCampaign(pb.CreateCampaignRequest(campaign=with_segment_ids(d, ids)),
                                              metadata=auth)
        campaign_ids[d.key] = saved.campaign.id
    (settings,) = [d for d in docs if d.kind == "AppSettings"]
    await decision.UpdateAppSettings(pb.UpdateAppSettingsRequest(settings=settings.message), metadata=auth)

    keys = {v: k for k, v in ids.items()}
    exported = []
    for d in docs:
        if d.kind == "Segment":
            got = await segments.GetSegment(seg_pb.GetSegmentRequest(segment_id=ids[d.key]), metadata=auth)
            exported.append(from_message("Segment", got.segment, d.key, keys))
        elif d.kind == "Campaign":
            got = await decision.GetCampaign(pb.GetCampaignRequest(campaign_id=campaign_ids[d.key]), metadata=auth)
            assert got.campaign.status == pb.CAMPAIGN_STATUS_ACTIVE and got.campaign.id
            exported.append(from_message("Campaign", got.campaign, d.key, keys))
        else:
            got = await decision.GetAppSettings(pb.GetAppSettingsRequest(), metadata=auth)
            exported.append(from_message("AppSettings", got.settings))
    assert exported == docs
