"""A message counts toward caps only once it is handed to a client: a template that fails
to render, or a hand-out delivery cannot record, gives back what decision reserved, so the
user's daily and lifetime caps are still there for the next message."""

from __future__ import annotations

import secrets

import asyncpg
import grpc

from nudge.decision.v1 import decision_service_pb2 as decision_pb
from nudge.delivery.v1 import delivery_service_pb2 as pb
from tests.conftest import eventually
from tests.helpers import (Clients, create_app, create_campaign, event, expect_error, fetch_messages, make_campaign,
                           track)

LOOP = "{% for i in (1..event.rounds) %}*{% endfor %}"


async def waiting(api: Clients, app, campaign_id: str) -> int:
    reply = await api.delivery.GetCampaignStats(pb.GetCampaignStatsRequest(campaign_id=campaign_id),
                                                metadata=app.auth("admin"))
    return sum(v.waiting for v in reply.variants)


async def test_a_template_that_fails_leaves_the_daily_cap_for_another_campaign(stack, database_url):
    app = await create_app(database_url)
    api = Clients(stack.channel)
    await api.decision.UpdateAppSettings(decision_pb.UpdateAppSettingsRequest(settings=decision_pb.AppSettings(
        default_time_zone="UTC", cap_rules=[decision_pb.CapRule(id="1-a-day", max_messages=1, calendar_days=1)])),
        metadata=app.auth("admin"))
    broken = make_campaign("Broken for big players", on="played", priority=20)
    broken.variants[0].contents[0].content.body = LOOP
    broken = await create_campaign(api, app, broken)
    fine = await create_campaign(api, app, make_campaign("Fine on request"))
    await api.ingestion.TrackEvents(track([event("big", "player", "played", rounds=100000)]),
                                    metadata=app.auth("events"))
    await eventually(lambda: waiting(api, app, broken.id))
    # The triggered one goes first, fails to render and is not shown.
    assert await fetch_messages(api, app, "player") == []
    # It used up nothing: the day's one message is still there.
    assert [m.campaign_id for m in await fetch_messages(api, app, "player")] == [fine.id]
    assert await fetch_messages(api, app, "player") == []  # and now the day's cap is used


async def test_a_template_that_fails_leaves_the_lifetime_cap_for_the_same_campaign(stack, database_url):
    app = await create_app(database_url)
    api = Clients(stack.channel)
    c = make_campaign("Once in a lifetime", on="played")
    c.variants[0].contents[0].content.body = LOOP
    c.caps.lifetime_max = 1
    c = await create_campaign(api, app, c)
    events = app.auth("events")
    await api.ingestion.TrackEvents(track([event("big", "player", "played", rounds=100000)]), metadata=events)
    await eventually(lambda: waiting(api, app, c.id))
    assert await fetch_messages(api, app, "player") == []
    await api.ingestion.TrackEvents(track([event("small", "player", "played", rounds=3)]), metadata=events)
    (shown,) = await eventually(lambda: fetch_messages(api, app, "player"))
    assert (shown.campaign_id, shown.content.body) == (c.id, "***")


async def test_a_hand_out_delivery_cannot_record_uses_up_no_cap(stack, database_url):
    app = await create_app(database_url)
    api = Clients(stack.channel)
    c = make_campaign("Once")
    c.caps.lifetime_max = 1
    c = await create_campaign(api, app, c)
    name = f"refuse_{secrets.token_hex(4)}"
    conn = await asyncpg.connect(database_url)
    try:
        # Delivery's commit fails for this campaign's messages, as it would with the database
        # going away between decision's reservation and delivery's write.
        await conn.execute(f"""
            CREATE FUNCTION delivery.{name}() RETURNS trigger LANGUAGE plpgsql AS
              $$ BEGIN RAISE EXCEPTION 'refused for the test' USING ERRCODE = '57P01'; END $$;
            CREATE TRIGGER {name} BEFORE INSERT ON delivery.messages FOR EACH ROW
              WHEN (NEW.campaign_id = '{c.id}') EXECUTE FUNCTION delivery.{name}();""")
        # (57P01, admin shutdown: what PostgreSQL says when it stops under a session.) The
        # client is told to retry.
        await expect_error(fetch_messages(api, app, "unlucky"), grpc.StatusCode.UNAVAILABLE)
    finally:
        await conn.execute(f"DROP TRIGGER IF EXISTS {name} ON delivery.messages;"
                           f" DROP FUNCTION IF EXISTS delivery.{name}();")
        await conn.close()
    # The failed hand-out reserved the campaign's one lifetime showing, and gave it back.
    assert [m.campaign_id for m in await fetch_messages(api, app, "unlucky")] == [c.id]
    assert await fetch_messages(api, app, "unlucky") == []
