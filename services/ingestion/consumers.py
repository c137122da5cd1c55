"""The consumers the outbox forwards to, and the calls it makes: stored payload bytes in, one
gRPC call out.

Requests are assembled from the rows' framed payloads (framing.py) and sent as raw bytes,
so forwarding an event costs no protobuf parsing or encoding here.
"""

from __future__ import annotations

import asyncio

import grpc

from nudge.decision.v1 import decision_internal_service_pb2 as decision_internal
from nudge.delivery.v1 import delivery_internal_service_pb2 as delivery_internal
from nudge.segmentation.v1 import segmentation_internal_service_pb2 as seg_internal
from nudgelib.clients import Peer
from services.ingestion.framing import request_bytes


def _path(module, service: str, method: str) -> str:
    return f"/{module.DESCRIPTOR.services_by_name[service].full_name}/{method}"


_METHODS = {
    ("segmentation", "event"): (_path(seg_internal, "SegmentationInternalService", "ApplyEvents"),
                                seg_internal.ApplyEventsResponse),
    ("segmentation", "profile"): (_path(seg_internal, "SegmentationInternalService", "ApplyProfileUpdates"),
                                  seg_internal.ApplyProfileUpdatesResponse),
    ("decision", "event"): (_path(decision_internal, "DecisionInternalService", "ApplyEvents"),
                            decision_internal.ApplyEventsResponse),
    ("delivery", "event"): (_path(delivery_internal, "DeliveryInternalService", "ApplyEvents"),
                            delivery_internal.ApplyEventsResponse),
}


class Consumer:
    """One consumer service, as the outbox dispatch loops use it."""

    def __init__(self, name: str, peer: Peer, timeout: float) -> None:
        self.name = name
        self._peer = peer
        self._timeout = timeout
        self._calls = {
            kind: peer.channel.unary_unary(path, request_serializer=None, response_deserializer=response.FromString)
            for (consumer, kind), (path, response) in _METHODS.items() if consumer == name
        }

    async def send(self, app_id: str, kind: str, framed: list[bytes]) -> None:
        """Forwards one call's items (framed payloads of one app and kind); raises if the
        consumer did not take them."""
        await self._peer.call(self._calls[kind], request_bytes(app_id, framed), timeout=self._timeout)

    async def ready(self, timeout: float) -> bool:
        """Whether the consumer is connected, waiting at most `timeout` for it. Loops claim
        lanes only then: internal calls wait for a peer that is down (up to their deadline),
        and a loop waiting so would hold its lanes, and any erasure on them, all that time."""
        channel = self._peer.channel
        if channel.get_state(try_to_connect=True) == grpc.ChannelConnectivity.READY:
            return True
        try:
            await asyncio.wait_for(channel.channel_ready(), timeout)
        except asyncio.TimeoutError:
            return False
        return True
