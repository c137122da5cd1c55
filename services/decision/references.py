"""The segments a campaign names, each with the field that names it: what decision asks
segmentation to confirm when a campaign is saved, and what makes a segment "used" when
segmentation is asked to delete it. Pure."""

from __future__ import annotations

from nudge.decision.v1 import decision_service_pb2 as pb


def segment_references(campaign: pb.Campaign, prefix: str = "campaign.") -> list[tuple[str, str]]:
    """(field path, segment id) for every segment the campaign names, in field order."""
    a = campaign.audience
    out = [(f"{prefix}audience.include_segment_ids[{i}]", s) for i, s in enumerate(a.include_segment_ids)]
    out += [(f"{prefix}audience.exclude_segment_ids[{i}]", s) for i, s in enumerate(a.exclude_segment_ids)]
    out += [(f"{prefix}triggers[{i}].segment_entered_id", t.segment_entered_id)
            for i, t in enumerate(campaign.triggers) if t.segment_entered_id]
    return out


def uses_segment(campaign: pb.Campaign, segment_id: str) -> bool:
    """Whether deleting the segment would leave the campaign naming nothing: any campaign that
    is not archived (a draft or a paused one may run again; an archived one never does)."""
    return campaign.status != pb.CAMPAIGN_STATUS_ARCHIVED and any(
        s == segment_id for _, s in segment_references(campaign))
