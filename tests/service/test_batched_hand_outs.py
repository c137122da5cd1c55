"""Delivery records the hand-outs that finish together in one transaction: a pending message
is still handed out once among concurrent pulls and within one batch, and a batch that
cannot be recorded fails each of its hand-outs, which give back what decision reserved."""

from __future__ import annotations

import asyncio
import secrets
from datetime import datetime, timedelta, timezone

import asyncpg
import grpc

from nudge.decision.v1 import decision_internal_service_pb2 as decision_pb
from nudge.delivery.v1 import delivery_service_pb2 as pb
from nudgelib.db import create_pool
from nudgelib.protoconv import to_timestamp
from services.delivery import store, streams
from tests.conftest import eventually
from tests.helpers import Clients, create_app, create_campaign, event, fetch_messages, make_campaign, track


async def pulls(api: Clients, app, users: list[str]) -> list[list[pb.InAppMessage] | grpc.aio.AioRpcError]:
    """The users' pulls, all at once."""
    return await asyncio.gather(*(fetch_messages(api, app, u) for u in users), return_exceptions=True)


async def waiting(api: Clients, app, campaign_id: str) -> int:
    reply = await api.delivery.GetCampaignStats(pb.GetCampaignStatsRequest(campaign_id=campaign_id),
                                                metadata=app.auth("admin"))
    return sum(v.waiting for v in reply.variants)


async def test_concurrent_pulls_hand_each_message_out_once(stack, database_url):
    app = await create_app(database_url)
    api = Clients(stack.channel)
    triggered = await create_campaign(api, app, make_campaign("Level up", "level_up", priority=10))
    on_request = await create_campaign(api, app, make_campaign("Hello"))
    await api.ingestion.TrackEvents(track([event("lv1", "gamer", "level_up")]), metadata=app.auth("events"))
    await eventually(lambda: waiting(api, app, triggered.id))

    others = [f"player-{i}" for i in range(20)]
    # The gamer's eight pulls and twenty other users' pulls at once, recorded in batches.
    replies = await pulls(api, app, ["gamer"] * 8 + others)
    gamer, rest = replies[:8], replies[8:]
    # The triggered message comes first for each of the gamer's pulls, and reaches one.
    shown = [m.campaign_id for r in gamer for m in r]
    assert shown.count(triggered.id) == 1
    assert [[m.campaign_id for m in r] for r in rest] == [[on_request.id]] * len(others)
    # The on-request one, once (if none of the eight had room for it, the next pull).
    shown += [m.campaign_id for m in await fetch_messages(api, app, "gamer")]
    assert sorted(shown) == sorted([triggered.id, on_request.id])
    assert await pulls(api, app, ["gamer"] + others) == [[]] * (1 + len(others))
    stats = await api.delivery.GetCampaignStats(pb.GetCampaignStatsRequest(campaign_id=on_request.id),
                                                metadata=app.auth("admin"))
    assert sum(v.delivered for v in stats.variants) == 1 + len(others)


async def test_a_batch_that_cannot_be_recorded_fails_its_hand_outs_which_give_back_their_caps(stack,
                                                                                             database_url):
    app = await create_app(database_url)
    api = Clients(stack.channel)
    once = make_campaign("Once")
    once.caps.lifetime_max = 1
    once = await create_campaign(api, app, once)
    users = ["unlucky"] + [f"lucky-{i}" for i in range(15)]
    name = f"refuse_{secrets.token_hex(4)}"
    conn = await asyncpg.connect(database_url)
    try:
        # Delivery's write fails for one user, as with the database going away under it:
        # every hand-out recorded in the same transaction fails with it.
        await conn.execute(f"""
            CREATE FUNCTION delivery.{name}() RETURNS trigger LANGUAGE plpgsql AS
              $$ BEGIN RAISE EXCEPTION 'refused for the test' USING ERRCODE = '57P01'; END $$;
            CREATE TRIGGER {name} BEFORE INSERT ON delivery.messages FOR EACH ROW
              WHEN (NEW.app_id = '{app.id}' AND NEW.user_id = 'unlucky') EXECUTE FUNCTION delivery.{name}();""")
        first = await pulls(api, app, users)
    finally:
        await conn.execute(f"DROP TRIGGER IF EXISTS {name} ON delivery.messages;"
                           f" DROP FUNCTION IF EXISTS delivery.{name}();")
        await conn.close()

    assert isinstance(first[0], grpc.aio.AioRpcError) and first[0].code() == grpc.StatusCode.UNAVAILABLE
    failed = [u for u, r in zip(users, first) if isinstance(r, grpc.aio.AioRpcError)]
    assert all(r.code() == grpc.StatusCode.UNAVAILABLE for r in first if isinstance(r, grpc.aio.AioRpcError))
    # Every user who was told to retry gets the message now (its one lifetime showing was
    # given back); the others had it and get nothing more.
    again = dict(zip(users, await pulls(api, app, users)))
    assert {u: [m.campaign_id for m in r] for u, r in again.items()} == {
        u: [once.id] if u in failed else [] for u in users}
    stats = await api.delivery.GetCampaignStats(pb.GetCampaignStatsRequest(campaign_id=once.id),
                                                metadata=app.auth("admin"))
    assert sum(v.delivered for v in stats.variants) == len(users)


def message(message_id: str, campaign_id: str, title: str) -> decision_pb.Decision:
    d = decision_pb.Decision(message_id=message_id, campaign_id=campaign_id, campaign_version=1, variant_id="A",
                             expire_time=to_timestamp(datetime.now(timezone.utc) + timedelta(hours=1)))
    d.content.title = title
    return d


async def test_one_batch_hands_a_pending_message_to_one_of_its_hand_outs(database_url):
    app = await create_app(database_url)
    now = datetime.now(timezone.utc)
    pool = await create_pool(database_url, "delivery", min_size=1, max_size=2)
    try:
        pending = message("msg_pending", "cmp_t", "{{ title }}")
        await store.enqueue(pool, app.id, "both", now, [pending], [], streams.encode("test", app.id, "both"))
        dead = message("msg_dead", "cmp_d", "old")
        await store.enqueue(pool, app.id, "other", now, [dead], [], streams.encode("test", app.id, "other"))
        # A pull and a stream of the same user, and another user's pull, recorded together.
        pull = store.HandOut(app.id, "both", now, "pull", [message("msg_pending", "cmp_t", "Shown"),
                                                           message("msg_new", "cmp_r", "Hi")],
                             inbox=frozenset({"msg_pending"}))
        stream = store.HandOut(app.id, "both", now, "stream", [message("msg_pending", "cmp_t", "Shown")],
                               inbox=frozenset({"msg_pending"}))
        other = store.HandOut(app.id, "other", now, "pull", [message("msg_other", "cmp_r", "Hi")],
                              controls=[message("ctl_other", "cmp_c", "")], dropped=[("msg_dead", "CAPPED")],
                              failed=[message("msg_broken", "cmp_b", "")], inbox=frozenset({"msg_dead"}))
        won = await store.hand_out(pool, [pull, stream, other])
        rows = await pool.fetch("SELECT user_id, message_id, status, delivered_via, drop_reason FROM messages"
                                " WHERE app_id = $1 ORDER BY user_id, message_id", app.id)
    finally:
        await pool.close()

    assert won == [{"msg_pending", "msg_new"}, set(), {"msg_other"}]
    assert [tuple(r) for r in rows] == [
        ("both", "msg_new", "delivered", "pull", ""),
        ("both", "msg_pending", "delivered", "pull", ""),
        ("other", "ctl_other", "control", "pull", ""),
        ("other", "msg_broken", "dropped", "", "RENDER_FAILED"),
        ("other", "msg_dead", "dropped", "", "CAPPED"),
        ("other", "msg_other", "delivered", "pull", ""),
    ]
