"""A stream offer that fails because decision cannot be reached for a moment is tried again
within a second or two, not at the next re-offer round (NUDGE_DELIVERY_REOFFER_SECONDS, 30 s):
the triggered message reaches the open stream soon after decision answers again."""

from __future__ import annotations

import time

from nudgelib.errors import Unavailable
from tests.conftest import eventually, start_stack
from tests.grpc_proxy import Fate, Plan, Proxy
from tests.helpers import Clients, Stream, create_app, create_campaign, event, make_campaign, own_database, track


async def test_a_failed_stream_offer_is_retried_soon_after_decision_is_back(database_url):
    async with own_database(database_url, "offer") as url:
        down = {"decide": True}
        proxies: list[Proxy] = []

        def plan(method: str, n: int) -> Plan:
            # Delivery's calls to decision for stream offers fail while `down` says so.
            if method.endswith("/DecideBatch") and down["decide"]:
                return Plan(Fate.FAIL_BEFORE, error=Unavailable("decision is restarting"))
            return Plan()

        async def rewire(service: str, peers: dict[str, str]) -> dict[str, str]:
            if service != "delivery":
                return peers
            proxies.append(await Proxy(peers["decision"], plan=plan).start())
            return {**peers, "decision": proxies[0].target}

        stack = await start_stack(url, rewire)
        (proxy,) = proxies
        stream = None
        try:
            app = await create_app(url)
            api = Clients(stack.channel)
            await create_campaign(api, app, make_campaign("Ping", on="ping"))
            stream = Stream(api, app, "listener")
            await api.ingestion.TrackEvents(track([event("p1", "listener", "ping")]), metadata=app.auth("events"))

            # Decision released the send to delivery, whose offer to the stream failed.
            await eventually(lambda: _value(proxy.count("/DecideBatch") >= 1), timeout=10)
            assert stream.messages == []
            down["decide"] = False
            back = time.monotonic()
            await eventually(lambda: _value(len(stream.messages) == 1), timeout=5)
            assert time.monotonic() - back < 3
            # Exactly one message, handed out once.
            assert [m.content.title for m in stream.messages] == ["Welcome to Nudge!"]
        finally:
            if stream is not None:
                await stream.close()
            await stack.stop()
            await proxy.stop()


async def _value(v):
    return v
