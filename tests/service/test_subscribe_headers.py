"""Subscribe: the stream's response headers come at once, before any message or keep-alive,
so a client knows the stream is live."""

from __future__ import annotations

import asyncio

from nudge.delivery.v1 import delivery_service_pb2 as pb
from tests.helpers import Clients, create_app


async def test_a_subscriber_sees_the_headers_before_any_message_or_keep_alive(stack, database_url):
    app = await create_app(database_url)
    api = Clients(stack.channel)
    # Nothing to push, and the next keep-alive is 15 seconds away.
    call = api.delivery.Subscribe(pb.SubscribeRequest(user_id="quiet"), metadata=app.auth("client"))
    try:
        headers = await asyncio.wait_for(call.initial_metadata(), timeout=2.0)
        assert headers is not None
        # The headers did not come with a first item: the stream is live and idle.
        read = asyncio.ensure_future(call.read())
        await asyncio.sleep(0.2)
        assert not read.done()
        read.cancel()
    finally:
        call.cancel()
