"""The documented bounds of what operators and clients set, refused at the door: conversion
event names, tags, screens, cap rule tags and message content when a campaign or the app's
settings are saved, and an interaction dated too far ahead when it is reported. Each bad
value is INVALID_ARGUMENT naming its field, and the value at the bound is accepted. An
interaction event ingestion refuses all the same is logged and counted by delivery."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import grpc
import prometheus_client as prom
import pytest
from google.protobuf import duration_pb2, struct_pb2
from structlog.testing import capture_logs

from nudge.common.v1 import common_pb2
from nudge.decision.v1 import decision_service_pb2 as pb
from nudge.delivery.v1 import delivery_service_pb2 as delivery_pb
from nudge.ingestion.v1 import ingestion_internal_service_pb2 as ingestion_internal_pb
from nudge.ingestion.v1 import ingestion_internal_service_pb2_grpc as ingestion_internal_grpc
from nudgelib.clients import Peer
from nudgelib.eventlog.dispatcher import Run
from nudgelib.eventlog.framing import frame_item
from nudgelib.protoconv import to_datetime, to_timestamp
from services.delivery.interaction_events import EVENT, IngestionSender
from tests.conftest import INTERNAL_TOKEN, eventually
from tests.helpers import Clients, create_campaign, expect_error, fetch_messages, make_campaign, violated_fields

INTERNAL = (("authorization", f"Bearer {INTERNAL_TOKEN}"),)
DAY = duration_pb2.Duration(seconds=86400)


def content(c: pb.Campaign) -> common_pb2.MessageContent:
    return c.variants[0].contents[0].content


def conversion(*names: str) -> dict:
    return {"conversion": pb.Conversion(event_names=list(names), deadline=DAY)}


def with_content(change) -> pb.Campaign:
    c = make_campaign()
    change(content(c))
    return c


def carousel(title: str = "", buttons: int = 1, slides: int = 1) -> pb.Campaign:
    def change(m):
        m.layout = common_pb2.LAYOUT_CAROUSEL
        for i in range(slides):
            s = m.slides.add(title=title or f"slide {i}")
            for j in range(buttons):
                s.buttons.add(id=f"s{i}b{j}", text="Next", action=common_pb2.BUTTON_ACTION_TYPE_NEXT)
    return with_content(change)


def survey(choices: list[str], questions: int = 1) -> pb.Campaign:
    def change(m):
        m.layout = common_pb2.LAYOUT_SURVEY
        for i in range(questions):
            m.questions.add(id=f"q{i}", text="How was it?", type=common_pb2.QUESTION_TYPE_SINGLE_CHOICE,
                            choices=choices)
    return with_content(change)


def tagged(tags: list[str]) -> pb.Campaign:
    c = make_campaign()
    c.ClearField("tags")
    c.tags.extend(tags)
    return c


def custom_data(size: int) -> pb.Campaign:
    def change(m):
        m.custom_data.Clear()
        m.custom_data.update({"blob": "x" * size})
    return with_content(change)


def struct_bytes(size: int) -> int:
    s = struct_pb2.Struct()
    s.update({"blob": "x" * size})
    return s.ByteSize()


# The longest custom_data string that fits 16 KiB serialized (key and framing included).
CUSTOM_DATA_FITS = max(n for n in range(16 * 1024 - 64, 16 * 1024) if struct_bytes(n) <= 16 * 1024)


def set_field(path: str, value):
    def change(m):
        *parents, last = path.split(".")
        target = m
        for p in parents:
            target = getattr(target, p)
        setattr(target, last, value)
    return change


# (campaign, the field refused); each has an accepted neighbour at its bound below.
REFUSED = [
    (make_campaign(**conversion("Purchase Completed!")), "campaign.conversion.event_names[0]"),
    (make_campaign(**conversion("purchase", "")), "campaign.conversion.event_names[1]"),
    (make_campaign(**conversion("p" * 129)), "campaign.conversion.event_names[0]"),
    (make_campaign(**conversion(*[f"e{i}" for i in range(21)])), "campaign.conversion.event_names"),
    (tagged([""]), "campaign.tags[0]"),
    (tagged(["ok", "t" * 65]), "campaign.tags[1]"),
    (tagged(["promo "]), "campaign.tags[0]"),
    (tagged([f"t{i}" for i in range(51)]), "campaign.tags"),
    (make_campaign(audience=pb.Audience(screens=[""])), "campaign.audience.screens[0]"),
    (make_campaign(audience=pb.Audience(screens=["home", "s" * 129])), "campaign.audience.screens[1]"),
    (make_campaign(audience=pb.Audience(screens=[f"s{i}" for i in range(101)])), "campaign.audience.screens"),
    (with_content(set_field("title", "x" * 4097)), "campaign.variants[0].contents[0].content.title"),
    (with_content(set_field("title", "x" * 100_000)), "campaign.variants[0].contents[0].content.title"),
    (with_content(set_field("body", "x" * 4097)), "campaign.variants[0].contents[0].content.body"),
    (with_content(set_field("image_url", "https://x/" + "x" * 2039)),
     "campaign.variants[0].contents[0].content.image_url"),
    (with_content(lambda m: setattr(m.buttons[0], "text", "x" * 4097)),
     "campaign.variants[0].contents[0].content.buttons[0].text"),
    (with_content(lambda m: setattr(m.buttons[0], "target", "x" * 2049)),
     "campaign.variants[0].contents[0].content.buttons[0].target"),
    (with_content(lambda m: [m.buttons.add(id=f"b{i}", text="b") for i in range(11 - len(m.buttons))]),
     "campaign.variants[0].contents[0].content.buttons"),
    (carousel(title="x" * 4097), "campaign.variants[0].contents[0].content.slides[0].title"),
    (carousel(buttons=11), "campaign.variants[0].contents[0].content.slides[0].buttons"),
    (carousel(slides=21), "campaign.variants[0].contents[0].content.slides"),
    (survey(["yes", "x" * 4097]), "campaign.variants[0].contents[0].content.questions[0].choices[1]"),
    (survey([f"c{i}" for i in range(51)]), "campaign.variants[0].contents[0].content.questions[0].choices"),
    (survey(["yes"], questions=21), "campaign.variants[0].contents[0].content.questions"),
    (with_content(set_field("anchor.screen", "s" * 129)), "campaign.variants[0].contents[0].content.anchor.screen"),
    (custom_data(CUSTOM_DATA_FITS + 1), "campaign.variants[0].contents[0].content.custom_data"),
    # Each text within its bound, the whole beyond 64 KiB.
    (carousel(title="x" * 4096, slides=17), "campaign.variants[0].contents[0].content"),
]

ACCEPTED = [
    make_campaign(**conversion("purchase", "checkout.completed", "p" * 128)),
    make_campaign(**conversion(*[f"e{i}" for i in range(20)])),
    tagged(["t" * 64, "spring sale"] + [f"t{i}" for i in range(48)]),
    make_campaign(audience=pb.Audience(screens=["/checkout/cart", "s" * 128] + [f"s{i}" for i in range(98)])),
    with_content(lambda m: (setattr(m, "title", "x" * 4096), setattr(m, "body", "y" * 4096),
                            setattr(m, "image_url", "https://x/" + "x" * 2038),
                            setattr(m.buttons[0], "target", "x" * 2048))),
    carousel(title="x" * 4096, buttons=10, slides=15),
    survey([f"c{i}" for i in range(50)], questions=20),
    custom_data(CUSTOM_DATA_FITS),
]


@pytest.mark.parametrize("campaign, field", REFUSED, ids=[f for _, f in REFUSED])
async def test_a_campaign_value_out_of_its_bound_is_refused_naming_the_field(stack, app, campaign, field):
    api = Clients(stack.channel)
    exc = await expect_error(api.decision.CreateCampaign(pb.CreateCampaignRequest(campaign=campaign),
                                                         metadata=app.auth("admin")), grpc.StatusCode.INVALID_ARGUMENT)
    assert violated_fields(exc) == {field}, exc.details()
    reply = await api.decision.ListCampaigns(pb.ListCampaignsRequest(), metadata=app.auth("admin"))
    assert list(reply.campaigns) == []


@pytest.mark.parametrize("campaign", ACCEPTED)
async def test_a_campaign_value_at_its_bound_is_accepted(stack, app, campaign):
    api = Clients(stack.channel)
    saved = await create_campaign(api, app, campaign)
    got = (await api.decision.GetCampaign(pb.GetCampaignRequest(campaign_id=saved.id),
                                          metadata=app.auth("admin"))).campaign
    assert got.tags == campaign.tags and got.audience.screens == campaign.audience.screens
    assert got.conversion.event_names == campaign.conversion.event_names
    assert got.variants[0].contents[0].content == content(campaign)


def cap_rule(tag: str) -> pb.AppSettings:
    return pb.AppSettings(cap_rules=[pb.CapRule(id="promo-per-day", max_messages=1, calendar_days=1, tag=tag)])


@pytest.mark.parametrize("tag", [" promo", "t" * 65, " "])
async def test_a_cap_rule_tag_out_of_its_bound_is_refused_naming_the_field(stack, app, tag):
    api = Clients(stack.channel)
    exc = await expect_error(api.decision.UpdateAppSettings(pb.UpdateAppSettingsRequest(settings=cap_rule(tag)),
                                                            metadata=app.auth("admin")),
                             grpc.StatusCode.INVALID_ARGUMENT)
    assert violated_fields(exc) == {"settings.cap_rules[0].tag"}, exc.details()


@pytest.mark.parametrize("tag", ["", "t" * 64])
async def test_a_cap_rule_tag_at_its_bound_is_accepted(stack, app, tag):
    api = Clients(stack.channel)
    await api.decision.UpdateAppSettings(pb.UpdateAppSettingsRequest(settings=cap_rule(tag)),
                                         metadata=app.auth("admin"))
    got = await api.decision.GetAppSettings(pb.GetAppSettingsRequest(), metadata=app.auth("admin"))
    assert [r.tag for r in got.settings.cap_rules] == [tag]


async def clicks_in_ingestion(stack, app_id: str, user_id: str) -> list[common_pb2.Event]:
    """The app's message_clicked events that ingestion stored for the user."""
    stub = ingestion_internal_grpc.IngestionInternalServiceStub(stack.channel("ingestion"))
    found = []
    async for page in stub.ReadEvents(ingestion_internal_pb.ReadEventsRequest(
            app_id=app_id, names=["message_clicked"],
            upto=[common_pb2.LanePosition(lane=lane, position=2**62) for lane in range(16)]), metadata=INTERNAL):
        found += [e for e in page.events if e.user_id == user_id]
    return found


async def click(api: Clients, app, user: str, ahead: timedelta):
    (message,) = await fetch_messages(api, app, user)
    return api.delivery.ReportInteraction(delivery_pb.ReportInteractionRequest(
        message_id=message.message_id, user_id=user, type=delivery_pb.INTERACTION_TYPE_CLICK,
        button_id=message.content.buttons[0].id, occurred_time=to_timestamp(datetime.now(timezone.utc) + ahead)),
        metadata=app.auth("client"))


async def test_an_interaction_ten_minutes_ahead_is_refused_and_counts_nothing(stack, app):
    api = Clients(stack.channel)
    campaign = await create_campaign(api, app, make_campaign())
    exc = await expect_error(await click(api, app, "skewed", timedelta(minutes=10)), grpc.StatusCode.INVALID_ARGUMENT)
    assert violated_fields(exc) == {"occurred_time"}, exc.details()
    stats = await api.delivery.GetCampaignStats(delivery_pb.GetCampaignStatsRequest(campaign_id=campaign.id),
                                                metadata=app.auth("admin"))
    assert sum(stats.variants[0].clicks_by_button.values()) == 0


async def test_an_interaction_one_minute_ahead_is_recorded_and_its_event_reaches_ingestion(stack, app):
    api = Clients(stack.channel)
    campaign = await create_campaign(api, app, make_campaign())
    reply = await (await click(api, app, "ahead", timedelta(minutes=1)))
    assert reply.recorded
    stats = await api.delivery.GetCampaignStats(delivery_pb.GetCampaignStatsRequest(campaign_id=campaign.id),
                                                metadata=app.auth("admin"))
    assert sum(stats.variants[0].clicks_by_button.values()) == 1

    async def stored():
        return await clicks_in_ingestion(stack, app.id, "ahead")

    (event,) = await eventually(stored, timeout=15)
    assert event.properties["campaign_id"] == campaign.id
    assert to_datetime(event.occurred_time) > datetime.now(timezone.utc)


async def test_an_interaction_event_ingestion_refuses_is_logged_and_counted_by_reason(stack, app):
    """Delivery no longer queues such an event, but one queued before (or with clocks apart)
    goes to ingestion as the log reader sends it: its refusal is told, not dropped unseen."""
    registry = prom.CollectorRegistry()
    peer = Peer("ingestion", stack.target("ingestion"), INTERNAL_TOKEN)
    sender = IngestionSender(peer, registry)
    good = common_pb2.Event(event_id="m1:message_clicked:b", user_id="u1", name="message_clicked",
                            occurred_time=to_timestamp(datetime.now(timezone.utc)))
    future = common_pb2.Event(event_id="m2:message_clicked:b", user_id="u2", name="message_clicked",
                              occurred_time=to_timestamp(datetime.now(timezone.utc) + timedelta(minutes=10)))
    run = Run(lane=0, app_id=app.id, kind=EVENT, positions=[1, 2], users=["u1", "u2"],
              framed=frame_item(good.SerializeToString()) + frame_item(future.SerializeToString()))
    try:
        with capture_logs() as logs:
            await sender(app.id, EVENT, [run])
    finally:
        await peer.channel.close()
    rejected = [entry for entry in logs if entry["event"] == "interaction_event_rejected"]
    assert [(e["log_level"], e["event_id"], e["reason"]) for e in rejected] == [
        ("warning", "m2:message_clicked:b", "FUTURE_TIMESTAMP")]
    assert registry.get_sample_value("nudge_delivery_interaction_events_rejected_total",
                                     {"reason": "FUTURE_TIMESTAMP"}) == 1
    assert [e.event_id for e in await clicks_in_ingestion(stack, app.id, "u1")] == ["m1:message_clicked:b"]
