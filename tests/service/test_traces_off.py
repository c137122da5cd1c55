"""With no OTLP endpoint, tracing costs the services nothing: an event's whole path (stored,
forwarded by the log readers, applied by segmentation and decision) and the pull it leads to
(delivery → decision → segmentation) run without entering OpenTelemetry's code at all, not
even to find out that no span is current."""

from __future__ import annotations

import os
import sys

from nudge.delivery.v1 import delivery_service_pb2 as delivery_pb
from nudgetools import demo
from tests.conftest import eventually
from tests.helpers import Clients, create_app, event, track

_OTEL = f"{os.sep}opentelemetry{os.sep}"


async def test_an_event_and_the_pull_it_leads_to_never_enter_opentelemetry(stack, database_url):
    assert all(host.tracing is None for host in stack.hosts.values())
    app = await create_app(database_url)
    api = Clients(stack.channel)
    await demo.seed(stack.target("segmentation"), stack.target("decision"), app.keys["admin"])
    entered: set[str] = set()

    def watch(frame, what, _arg):
        if what == "call" and _OTEL in frame.f_code.co_filename:
            entered.add(f"{frame.f_code.co_filename}:{frame.f_code.co_name}")

    async def pulled():
        reply = await api.delivery.FetchMessages(delivery_pb.FetchMessagesRequest(user_id="off-1"),
                                                 metadata=app.auth("client"))
        return list(reply.messages)

    # Every service runs on this thread's event loop: the hook sees all their Python calls.
    sys.setprofile(watch)
    try:
        # A caller's traceparent is no reason to trace either.
        reply = await api.ingestion.TrackEvents(
            track([event("off-e1", "off-1", "signup")]),
            metadata=(*app.auth("events"), ("traceparent", "00-" + "ab" * 16 + "-" + "cd" * 8 + "-01")))
        assert reply.accepted_count == 1
        # The demo campaign triggers on signup: the message arrives once the event went the
        # whole way (ingestion's log, segmentation, decision, delivery's inbox).
        (message,) = await eventually(pulled, timeout=15)
    finally:
        sys.setprofile(None)
    assert message.content.title == "Welcome to Nudge!"
    assert entered == set()
