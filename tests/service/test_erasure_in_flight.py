"""DeleteUser while the user's items are on their way between services.

Items of a user flow ingestion → segmentation → decision → delivery, and back from delivery
to ingestion (interactions become events). Each service's erasure waits for its own readers,
so once it commits it sends nothing more of the user; but an interaction delivery was
sending when the erasure began reaches ingestion after ingestion's own erasure. Here a proxy
holds delivery's calls to ingestion, so that interaction is certain to arrive late.
"""

from __future__ import annotations

import asyncio

import asyncpg

from nudge.decision.v1 import decision_service_pb2 as decision_pb
from nudge.delivery.v1 import delivery_service_pb2 as delivery_pb
from nudge.ingestion.v1 import ingestion_service_pb2 as pb
from nudgetools import demo
from tests.conftest import eventually, start_stack
from tests.grpc_proxy import Plan, Proxy
from tests.helpers import Clients, create_app, event, own_database, track, traces_of_user

HOLD = 1.0  # seconds delivery's forwarding of an interaction to ingestion is held


async def test_an_interaction_reaching_ingestion_during_delete_user_is_erased_too(database_url):
    async with own_database(database_url, "erasure") as url:
        proxies: list[Proxy] = []

        async def rewire(service: str, peers: dict[str, str]) -> dict[str, str]:
            if service != "delivery":
                return peers
            proxy = await Proxy(peers["ingestion"], plan=lambda method, n: Plan(
                hold=HOLD if method.endswith("/IngestEvents") else 0.0)).start()
            proxies.append(proxy)
            return {**peers, "ingestion": proxy.target}

        stack = await start_stack(url, rewire)
        try:
            app = await create_app(url)
            api = Clients(stack.channel)
            segment = (await api.segmentation.CreateSegment(demo.signup_segment(), metadata=app.auth("admin"))).segment
            await api.decision.CreateCampaign(decision_pb.CreateCampaignRequest(
                campaign=demo.welcome_campaign(segment.id)), metadata=app.auth("admin"))
            await api.ingestion.TrackEvents(track([event("s1", "gone", "signup")]), metadata=app.auth("events"))

            async def fetch():
                return (await api.delivery.FetchMessages(delivery_pb.FetchMessagesRequest(user_id="gone"),
                                                         metadata=app.auth("client"))).messages

            (message,) = await eventually(fetch)
            await api.delivery.ReportInteraction(delivery_pb.ReportInteractionRequest(
                message_id=message.message_id, user_id="gone", type=delivery_pb.INTERACTION_TYPE_IMPRESSION),
                metadata=app.auth("client"))
            # The impression is now in delivery's log; its reader takes it and is held on its
            # way to ingestion.
            (proxy,) = proxies
            await eventually(lambda: _async(proxy.count("/IngestEvents") > 0), timeout=10)

            reply = await api.ingestion.DeleteUser(pb.DeleteUserRequest(user_id="gone"), metadata=app.auth("admin"))
            assert reply.completed
            conn = await asyncpg.connect(url)
            try:
                assert await traces_of_user(conn, app.id, "gone") == {}
                # Nothing of the user comes back later either.
                await asyncio.sleep(HOLD + 0.5)
                assert await traces_of_user(conn, app.id, "gone") == {}
            finally:
                await conn.close()
        finally:
            await stack.stop()
            for proxy in proxies:
                await proxy.stop()


async def _async(value):
    return value
