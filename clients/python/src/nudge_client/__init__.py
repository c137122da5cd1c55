"""Nudge's Python client: `Nudge` (blocking) and `AsyncNudge` (asyncio) over the public RPCs,
and `EventProducer`, batching events into ingestion. See the package README."""

from nudge_client.client import DEFAULT_TIMEOUT, AsyncNudge, Nudge, local_targets
from nudge_client.producer import (BufferFull, DeliveryFailed, EventProducer, EventResult, ProducerClosed,
                                   ProducerStats)
from nudge_client.retry import RetryPolicy
from nudge_client.status import field_violations, retry_delay

__all__ = [
    "DEFAULT_TIMEOUT", "AsyncNudge", "BufferFull", "DeliveryFailed", "EventProducer", "EventResult", "Nudge",
    "ProducerClosed", "ProducerStats", "RetryPolicy", "field_violations", "local_targets", "retry_delay",
]
__version__ = "0.1.0"
