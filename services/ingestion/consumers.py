"""The consumers the event log is forwarded to, and the calls it makes: stored payload bytes
in, one gRPC call out.

Requests are assembled from the runs the reader framed in SQL (nudgelib.eventlog.framing) and sent as raw bytes, so
forwarding an event costs no protobuf parsing or encoding here; each carries its items' lanes
and positions (`LogSpan`) so the consumer applies each once.
"""

from __future__ import annotations

from nudge.decision.v1 import decision_internal_service_pb2 as decision_internal
from nudge.delivery.v1 import delivery_internal_service_pb2 as delivery_internal
from nudge.segmentation.v1 import segmentation_internal_service_pb2 as seg_internal
from nudgelib.clients import Peer
from nudgelib.eventlog.dispatcher import Run, Target, span_of
from nudgelib.eventlog.framing import request_bytes
from services.ingestion import store


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
    """One consumer service, as the log's readers use it."""

    def __init__(self, name: str, peer: Peer, timeout: float) -> None:
        self.name = name
        self._peer = peer
        self._timeout = timeout
        self._calls = {
            kind: peer.channel.unary_unary(path, request_serializer=None, response_deserializer=response.FromString)
            for (consumer, kind), (path, response) in _METHODS.items() if consumer == name
        }

    async def send(self, app_id: str, kind: int, runs: list[Run]) -> None:
        """Forwards one call's runs of items (of one app and kind); raises if the consumer did
        not take them."""
        request = request_bytes(app_id, [r.framed for r in runs], span_of(store.LOG.source, runs))
        await self._peer.call(self._calls[store.KINDS[kind]], request, timeout=self._timeout)

    def target(self) -> Target:
        return Target(self.name, store.CONSUMER_KINDS[self.name], self.send, self._peer.ready)
