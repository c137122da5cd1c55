"""The segments a campaign names, by field, and when a campaign uses a segment."""

from __future__ import annotations

from nudge.decision.v1 import decision_service_pb2 as pb
from services.decision.references import segment_references, uses_segment
from tests.unit.decision.builders import campaign


def test_every_segment_is_named_with_its_field():
    c = campaign(delivery_mode=pb.DELIVERY_MODE_TRIGGERED)
    c.audience.exclude_segment_ids.append("seg_out")
    c.triggers.add(event_name="app_open")
    c.triggers.add(segment_entered_id="seg_vip")
    assert segment_references(c) == [("campaign.audience.include_segment_ids[0]", "seg_signup"),
                                     ("campaign.audience.exclude_segment_ids[0]", "seg_out"),
                                     ("campaign.triggers[1].segment_entered_id", "seg_vip")]


def test_any_campaign_but_an_archived_one_uses_its_segments():
    for status in (pb.CAMPAIGN_STATUS_DRAFT, pb.CAMPAIGN_STATUS_ACTIVE, pb.CAMPAIGN_STATUS_PAUSED):
        assert uses_segment(campaign(status=status), "seg_signup")
    assert not uses_segment(campaign(status=pb.CAMPAIGN_STATUS_ACTIVE), "seg_other")
    assert not uses_segment(campaign(status=pb.CAMPAIGN_STATUS_ARCHIVED), "seg_signup")
