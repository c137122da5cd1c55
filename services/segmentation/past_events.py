"""The past of a property filter a segment starts using: ingestion's stored events, read
through its ReadEvents stream, up to the positions of its log this service has applied.

Segmentation keeps no copy of event properties: the events are ingestion's (kept for
NUDGE_INGESTION_EVENT_RETENTION_DAYS). A stream that breaks is resumed from the last page
token received, so every event is read once; a page that arrived is never asked for again.
If ingestion cannot be reached, or does not finish within the deadline, the reader raises
UNAVAILABLE, and the caller's transaction (a segment save) changes nothing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime
from typing import Protocol

import grpc
import structlog

from nudge.common.v1 import common_pb2
from nudge.ingestion.v1 import ingestion_internal_service_pb2 as ingestion_pb
from nudge.ingestion.v1 import ingestion_internal_service_pb2_grpc as ingestion_grpc
from nudgelib.clients import Peer
from nudgelib.errors import Unavailable
from nudgelib.loops import Backoff
from nudgelib.protoconv import to_timestamp

log = structlog.get_logger(__name__)

SOURCE = "ingestion"  # the log whose positions segmentation records (LogSpan.source)
# Failures a stream is resumed after: the peer gone or restarting, a connection cut.
_TRANSIENT = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.ABORTED, grpc.StatusCode.INTERNAL,
                        grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.UNKNOWN})


class PastEvents(Protocol):
    def read(self, app_id: str, names: Sequence[str], since: datetime, upto: Mapping[int, int],
             timeout: float) -> AsyncIterator[list[common_pb2.Event]]:
        """The app's events of these names that occurred at or after `since`, at or below
        `upto` in each lane (a lane not listed: only items from before the log numbered
        them), a page at a time; within `timeout` seconds in all."""
        ...


class IngestionEvents:
    """PastEvents from ingestion's ReadEvents."""

    def __init__(self, peer: Peer, page_size: int = 1000, attempts: int = 5,
                 backoff: Backoff = Backoff(initial=0.1, multiplier=2.0, maximum=2.0)) -> None:
        self._peer = peer
        self._stub = ingestion_grpc.IngestionInternalServiceStub(peer.channel)
        self._page_size = page_size
        self._attempts = attempts
        self._backoff = backoff

    async def read(self, app_id: str, names: Sequence[str], since: datetime, upto: Mapping[int, int],
                   timeout: float) -> AsyncIterator[list[common_pb2.Event]]:
        request = ingestion_pb.ReadEventsRequest(
            app_id=app_id, names=list(names), occurred_since=to_timestamp(since), page_size=self._page_size,
            upto=[common_pb2.LanePosition(lane=lane, position=position) for lane, position in sorted(upto.items())])
        deadline = time.monotonic() + timeout
        failures = 0
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise Unavailable(f"ingestion did not hand over the past events within {timeout:g} s; retry shortly")
            stream = self._peer.stream(self._stub.ReadEvents, request, timeout=left)
            try:
                async for page in stream:
                    failures = 0
                    yield list(page.events)
                    if not page.next_page_token:
                        return
                    # Resumed from here if the stream breaks.
                    request.page_token = page.next_page_token
            except grpc.aio.AioRpcError as exc:
                failures += 1
                code = exc.code()
                if code not in _TRANSIENT or failures >= self._attempts:
                    raise Unavailable(f"ingestion could not hand over the past events ({code.name});"
                                      " retry shortly") from exc
                log.info("past_events_resumed", app_id=app_id, code=code.name, failures=failures,
                         resumed=bool(request.page_token))
                await asyncio.sleep(min(self._backoff.delay(failures), max(0.0, deadline - time.monotonic())))
            finally:
                stream.cancel()
            # A stream that ended without its last page (a server going away gracefully):
            # resumed from the last token like a broken one, on the next round.


class NoPastEvents:
    """For a process that changes no rules (a tool that only rebuilds memberships): any read
    is UNAVAILABLE."""

    async def read(self, app_id: str, names: Sequence[str], since: datetime, upto: Mapping[int, int],
                   timeout: float) -> AsyncIterator[list[common_pb2.Event]]:
        raise Unavailable("this process has no source of past events")
        yield []  # an async generator, like the others
