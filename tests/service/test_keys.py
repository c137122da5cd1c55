"""Campaign and segment keys: chosen by the operator, unique per app (campaigns: among those
not archived), found by Get and List; a malformed key is INVALID_ARGUMENT naming the field, a
taken one ALREADY_EXISTS; and a create-or-update by key (the client's upsert) converges."""

from __future__ import annotations

import grpc

from nudge.decision.v1 import decision_service_pb2 as pb
from nudge.segmentation.v1 import segmentation_service_pb2 as seg
from tests.helpers import Clients, create_app, create_campaign, expect_error, make_campaign, violated_fields

EVERYONE = seg.Rule(attribute=seg.AttributeCondition(name="plan", operator=seg.ATTRIBUTE_OPERATOR_EXISTS))


async def upsert_campaign(api, app, campaign: pb.Campaign) -> pb.Campaign:
    """Create-or-update by key, as the proto comments describe it."""
    admin = app.auth("admin")
    try:
        found = (await api.decision.GetCampaign(pb.GetCampaignRequest(key=campaign.key), metadata=admin)).campaign
    except grpc.aio.AioRpcError as exc:
        assert exc.code() == grpc.StatusCode.NOT_FOUND
        return (await api.decision.CreateCampaign(pb.CreateCampaignRequest(campaign=campaign), metadata=admin)).campaign
    campaign.id = found.id
    return (await api.decision.UpdateCampaign(pb.UpdateCampaignRequest(
        campaign=campaign, expected_version=found.version), metadata=admin)).campaign


async def test_campaign_keys_find_and_upsert_and_are_unique_among_unarchived(stack, database_url):
    app, other = await create_app(database_url), await create_app(database_url)
    api = Clients(stack.channel)
    admin = app.auth("admin")
    created = await upsert_campaign(api, app, make_campaign("Welcome", key="welcome"))
    assert (created.key, created.version) == ("welcome", 1)
    updated = await upsert_campaign(api, app, make_campaign("Welcome, again", key="welcome"))
    assert (updated.id, updated.version, updated.name, updated.key) == (created.id, 2, "Welcome, again", "welcome")
    plain = await create_campaign(api, app, make_campaign("No key"))
    assert plain.key == ""

    got = (await api.decision.GetCampaign(pb.GetCampaignRequest(key="welcome"), metadata=admin)).campaign
    assert (got.id, got.version) == (created.id, 2)
    first = (await api.decision.GetCampaign(pb.GetCampaignRequest(key="welcome", version=1), metadata=admin)).campaign
    assert first.name == "Welcome"
    listed = (await api.decision.ListCampaigns(pb.ListCampaignsRequest(key="welcome"), metadata=admin)).campaigns
    assert [c.id for c in listed] == [created.id]
    # Another app may use the same key; it does not see this app's.
    await expect_error(api.decision.GetCampaign(pb.GetCampaignRequest(key="welcome"), metadata=other.auth("admin")),
                       grpc.StatusCode.NOT_FOUND)
    theirs = await create_campaign(api, other, make_campaign("Theirs", key="welcome"))
    assert theirs.key == "welcome"

    exc = await expect_error(api.decision.CreateCampaign(pb.CreateCampaignRequest(
        campaign=make_campaign("Twin", key="welcome")), metadata=admin), grpc.StatusCode.ALREADY_EXISTS)
    assert "welcome" in exc.details()
    plain.key = "welcome"
    await expect_error(api.decision.UpdateCampaign(pb.UpdateCampaignRequest(campaign=plain), metadata=admin),
                       grpc.StatusCode.ALREADY_EXISTS)

    # Archiving frees the key; the archived campaign keeps it, and List still finds it.
    await api.decision.SetCampaignStatus(pb.SetCampaignStatusRequest(
        campaign_id=created.id, status=pb.CAMPAIGN_STATUS_ARCHIVED), metadata=admin)
    await expect_error(api.decision.GetCampaign(pb.GetCampaignRequest(key="welcome"), metadata=admin),
                       grpc.StatusCode.NOT_FOUND)
    successor = await upsert_campaign(api, app, make_campaign("Welcome 2027", key="welcome"))
    assert successor.id != created.id and successor.version == 1
    listed = (await api.decision.ListCampaigns(pb.ListCampaignsRequest(key="welcome"), metadata=admin)).campaigns
    assert sorted(c.id for c in listed) == sorted([created.id, successor.id])


async def test_bad_campaign_keys_name_the_field(stack, database_url):
    app = await create_app(database_url)
    api = Clients(stack.channel)
    admin = app.auth("admin")
    for bad in ("Welcome", "-lead", "a b", "x" * 65, "ünï", "a/b"):
        exc = await expect_error(api.decision.CreateCampaign(pb.CreateCampaignRequest(
            campaign=make_campaign(key=bad)), metadata=admin), grpc.StatusCode.INVALID_ARGUMENT)
        assert violated_fields(exc) == {"campaign.key"}, bad
        exc = await expect_error(api.decision.GetCampaign(pb.GetCampaignRequest(key=bad), metadata=admin),
                                 grpc.StatusCode.INVALID_ARGUMENT)
        assert violated_fields(exc) == {"key"}
        exc = await expect_error(api.decision.ListCampaigns(pb.ListCampaignsRequest(key=bad), metadata=admin),
                                 grpc.StatusCode.INVALID_ARGUMENT)
        assert violated_fields(exc) == {"key"}
    ok = await create_campaign(api, app, make_campaign(key="a" + "x" * 63))
    assert len(ok.key) == 64
    exc = await expect_error(api.decision.GetCampaign(pb.GetCampaignRequest(campaign_id=ok.id, key=ok.key),
                                                      metadata=admin), grpc.StatusCode.INVALID_ARGUMENT)
    assert violated_fields(exc) == {"key"}
    exc = await expect_error(api.decision.GetCampaign(pb.GetCampaignRequest(), metadata=admin),
                             grpc.StatusCode.INVALID_ARGUMENT)
    assert violated_fields(exc) == {"campaign_id"}


async def test_segment_keys_find_and_are_unique_per_app(stack, database_url):
    app, other = await create_app(database_url), await create_app(database_url)
    api = Clients(stack.channel)
    admin = app.auth("admin")
    made = (await api.segmentation.CreateSegment(seg.CreateSegmentRequest(
        name="Payers", rule=EVERYONE, key="payers.v1"), metadata=admin)).segment
    assert made.key == "payers.v1"
    got = (await api.segmentation.GetSegment(seg.GetSegmentRequest(key="payers.v1"), metadata=admin)).segment
    assert (got.id, got.name, got.key) == (made.id, "Payers", "payers.v1")
    listed = (await api.segmentation.ListSegments(seg.ListSegmentsRequest(key="payers.v1"), metadata=admin)).segments
    assert [s.id for s in listed] == [made.id]
    await expect_error(api.segmentation.GetSegment(seg.GetSegmentRequest(key="payers.v1"),
                                                   metadata=other.auth("admin")), grpc.StatusCode.NOT_FOUND)

    await expect_error(api.segmentation.CreateSegment(seg.CreateSegmentRequest(
        name="Twin", rule=EVERYONE, key="payers.v1"), metadata=admin), grpc.StatusCode.ALREADY_EXISTS)
    twin = (await api.segmentation.CreateSegment(seg.CreateSegmentRequest(
        name="Twin", rule=EVERYONE, key="twin"), metadata=admin)).segment
    await expect_error(api.segmentation.UpdateSegment(seg.UpdateSegmentRequest(
        segment_id=twin.id, name="Twin", rule=EVERYONE, key="payers.v1"), metadata=admin),
        grpc.StatusCode.ALREADY_EXISTS)
    renamed = (await api.segmentation.UpdateSegment(seg.UpdateSegmentRequest(
        segment_id=made.id, name="Payers", rule=EVERYONE, key="payers", expected_version=1), metadata=admin)).segment
    assert (renamed.key, renamed.version) == ("payers", 2)
    await expect_error(api.segmentation.GetSegment(seg.GetSegmentRequest(key="payers.v1"), metadata=admin),
                       grpc.StatusCode.NOT_FOUND)

    for bad in ("Payers", "_x", "x" * 65):
        exc = await expect_error(api.segmentation.CreateSegment(seg.CreateSegmentRequest(
            name="Bad", rule=EVERYONE, key=bad), metadata=admin), grpc.StatusCode.INVALID_ARGUMENT)
        assert violated_fields(exc) == {"key"}
        exc = await expect_error(api.segmentation.GetSegment(seg.GetSegmentRequest(key=bad), metadata=admin),
                                 grpc.StatusCode.INVALID_ARGUMENT)
        assert violated_fields(exc) == {"key"}
    exc = await expect_error(api.segmentation.GetSegment(seg.GetSegmentRequest(segment_id=made.id, key="payers"),
                                                         metadata=admin), grpc.StatusCode.INVALID_ARGUMENT)
    assert violated_fields(exc) == {"key"}
