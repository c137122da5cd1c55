"""Decision writes a DecideBatch's reservations in one transaction: caps stay exact for a user
twice in one batch and for batches of two delivery replicas that share users, sent to two
decision replicas; a pull whose reservation the database refuses fails alone."""

from __future__ import annotations

import asyncio
import random
import secrets
from collections import Counter

import asyncpg
import grpc

from nudge.decision.v1 import decision_internal_service_pb2 as internal_pb
from nudge.decision.v1 import decision_internal_service_pb2_grpc as internal_grpc
from services.decision.server import SPEC as DECISION
from tests.conftest import start_host
from tests.service.test_decision import INTERNAL, five_banners_capped_at_three

CAP = 3  # five_banners_capped_at_three: five banners, at most three a day


def handed(result: internal_pb.DecideResult) -> list[str]:
    assert result.HasField("response"), result.error.message
    return [d.campaign_id for d in result.response.decisions]


async def deliveries(database_url: str, app_id: str) -> Counter:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch("SELECT user_id FROM decision.deliveries WHERE app_id = $1", app_id)
    finally:
        await conn.close()
    return Counter(r["user_id"] for r in rows)


async def test_a_user_twice_in_one_batch_gets_no_more_than_the_cap(stack, database_url):
    app = await five_banners_capped_at_three(stack, database_url)
    internal = internal_grpc.DecisionInternalServiceStub(stack.channel("decision"))
    pull = lambda user: internal_pb.DecideRequest(app_id=app.id, user_id=user, limit=2)  # noqa: E731
    reply = await internal.DecideBatch(internal_pb.DecideBatchRequest(
        requests=[pull("twice"), pull("once"), pull("twice")]), metadata=INTERNAL)

    first, other, second = (handed(r) for r in reply.results)
    # Two pulls of two each, but three a day: the second gets what the first left.
    assert sorted([len(first), len(second)]) == [1, 2]
    assert len(set(first + second)) == CAP
    assert len(other) == 2
    assert await deliveries(database_url, app.id) == {"twice": CAP, "once": 2}
    # And the next pull of the same user, by itself, gets nothing more today.
    alone = await internal.Decide(pull("twice"), metadata=INTERNAL)
    assert list(alone.decisions) == []


async def test_batches_of_two_delivery_replicas_sharing_users_keep_every_cap(stack, database_url):
    app = await five_banners_capped_at_three(stack, database_url)
    users = [f"shared-{i}" for i in range(12)]
    peers = {"segmentation": stack.target("segmentation"), "delivery": "127.0.0.1:9"}
    replicas = [await start_host(DECISION, database_url, peers) for _ in range(2)]
    channels = [grpc.aio.insecure_channel(f"127.0.0.1:{h.port}") for h in replicas]
    conn = await asyncpg.connect(database_url)
    try:
        deadlocks = "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()"
        deadlocks_before = await conn.fetchval(deadlocks)
        stubs = [internal_grpc.DecisionInternalServiceStub(c) for c in channels]
        rng = random.Random(15)
        batches = []
        for k in range(10):
            # Each batch holds every user, twice, in an order of its own: the same users'
            # locks are wanted by every batch at once, asked for in different orders.
            order = users * 2
            rng.shuffle(order)
            batches.append([internal_pb.DecideRequest(app_id=app.id, user_id=u, limit=2) for u in order])
        replies = await asyncio.gather(*(
            stubs[k % 2].DecideBatch(internal_pb.DecideBatchRequest(requests=b), metadata=INTERNAL)
            for k, b in enumerate(batches)))
        await asyncio.sleep(1.5)  # the statistics reach pg_stat_database within a second
        assert await conn.fetchval(deadlocks) == deadlocks_before
    finally:
        await conn.close()
        for c in channels:
            await c.close()
        for h in replicas:
            await h.stop()

    got: dict[str, list[str]] = {u: [] for u in users}
    for batch, reply in zip(batches, replies):
        for request, result in zip(batch, reply.results):
            got[request.user_id] += handed(result)
    # Every user got exactly the cap, each banner at most once, over 20 pulls in 10 batches.
    assert {u: len(c) for u, c in got.items()} == {u: CAP for u in users}
    assert all(len(set(c)) == CAP for c in got.values())
    assert await deliveries(database_url, app.id) == {u: CAP for u in users}


async def test_a_pull_whose_reservation_the_database_refuses_fails_alone(stack, database_url):
    app = await five_banners_capped_at_three(stack, database_url)
    internal = internal_grpc.DecisionInternalServiceStub(stack.channel("decision"))
    name = f"refuse_{secrets.token_hex(4)}"
    conn = await asyncpg.connect(database_url)
    try:
        # The database refuses one user's reservation, as it would a value it cannot store.
        await conn.execute(f"""
            CREATE FUNCTION decision.{name}() RETURNS trigger LANGUAGE plpgsql AS
              $$ BEGIN RAISE EXCEPTION 'refused for the test' USING ERRCODE = '23514'; END $$;
            CREATE TRIGGER {name} BEFORE INSERT ON decision.deliveries FOR EACH ROW
              WHEN (NEW.app_id = '{app.id}' AND NEW.user_id = 'refused') EXECUTE FUNCTION decision.{name}();""")
        reply = await internal.DecideBatch(internal_pb.DecideBatchRequest(requests=[
            internal_pb.DecideRequest(app_id=app.id, user_id=u, limit=1) for u in ("fine-1", "refused", "fine-2")]),
            metadata=INTERNAL)
    finally:
        await conn.execute(f"DROP TRIGGER IF EXISTS {name} ON decision.deliveries;"
                           f" DROP FUNCTION IF EXISTS decision.{name}();")
        await conn.close()

    fine_1, refused, fine_2 = reply.results
    assert refused.error.code == grpc.StatusCode.INTERNAL.value[0]
    assert len(handed(fine_1)) == 1 and len(handed(fine_2)) == 1
    assert await deliveries(database_url, app.id) == {"fine-1": 1, "fine-2": 1}
