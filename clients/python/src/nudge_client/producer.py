"""`EventProducer`: events to ingestion in batches, for services that emit many.

- Batches close at `max_batch_events` events, `max_batch_bytes` bytes (serialized), or
  `linger` seconds after their first event, whichever comes first.
- Every event gets a uuid4 `event_id` when it has none. A batch is retried as it was, with
  the same ids, so a retry after a reply that was lost stores nothing twice: ingestion keeps
  one event per event_id.
- One batch is in flight at a time, so events reach ingestion in the order they were sent.
- The buffer holds at most `max_buffered_events` events not yet confirmed (waiting or in
  flight). When it is full, `send` waits for room; with `send_timeout` set it raises
  `BufferFull` after that many seconds instead.
- Outcomes: `send` returns a future of the event's `EventResult` (accepted, or rejected with
  ingestion's reason; also passed to `on_rejected`). A batch that could not be delivered
  (attempts used up, or a status that is not retried such as UNAUTHENTICATED) fails each of
  its futures with `DeliveryFailed` and calls `on_failed(events, error)`: whether those
  events were stored is unknown, so they can be sent again, with the same ids, safely.
- `close()` (or leaving `async with`) sends what is buffered and waits for it.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc

from nudge_client import rpcs
from nudge_client.client import AsyncNudge
from nudge_client.protos import common, ingestion
from nudge_client.retry import RetryPolicy
from nudge_client.status import retry_delay

log = logging.getLogger("nudge_client.producer")

# Ingestion takes at most 1,000 events per TrackEvents.
MAX_BATCH_EVENTS = 1000
# Safe to retry for a batch whose events all carry ids: an attempt that timed out may have
# been stored, and its repeat is then counted as a duplicate.
_ALSO_RETRIED = frozenset({"DEADLINE_EXCEEDED"})


@dataclass(frozen=True)
class EventResult:
    """What ingestion said of one event: accepted (stored now or before), or rejected."""

    event_id: str
    accepted: bool
    reason: str = ""   # e.g. INVALID_NAME, when rejected
    message: str = ""


class BufferFull(Exception):
    """`send` waited `send_timeout` seconds and the buffer had no room."""


class ProducerClosed(Exception):
    """`send` after `close()`."""


class DeliveryFailed(Exception):
    """A batch was not confirmed by ingestion: a transport failure or a refused call, never a
    rejection of the event itself. `cause` is the last error (a grpc.aio.AioRpcError, or None
    when close() gave up waiting)."""

    def __init__(self, message: str, cause: BaseException | None = None) -> None:
        super().__init__(message)
        self.cause = cause


@dataclass
class ProducerStats:
    sent: int = 0          # events handed to `send`
    accepted: int = 0      # confirmed stored (duplicates included)
    duplicates: int = 0    # of those, already stored before (retries)
    rejected: int = 0      # refused by ingestion's validation
    failed: int = 0        # not confirmed (DeliveryFailed)
    batches: int = 0       # TrackEvents calls that answered
    retries: int = 0       # attempts after the first


@dataclass
class _Item:
    event: common.Event
    size: int
    future: asyncio.Future[EventResult]


class EventProducer:
    def __init__(self, client: AsyncNudge, *, max_batch_events: int = 500, max_batch_bytes: int = 1_000_000,
                 linger: float = 0.05, max_buffered_events: int = 10_000, send_timeout: float | None = None,
                 attempt_timeout: float = 10.0,
                 retry: RetryPolicy = RetryPolicy(max_attempts=20, initial_backoff=0.1, max_backoff=5.0),
                 on_rejected: Callable[[common.Event, EventResult], Any] | None = None,
                 on_failed: Callable[[list[common.Event], DeliveryFailed], Any] | None = None) -> None:
        if not 1 <= max_batch_events <= MAX_BATCH_EVENTS:
            raise ValueError(f"max_batch_events must be within 1..{MAX_BATCH_EVENTS}")
        if max_batch_bytes < 1 or linger < 0 or attempt_timeout <= 0:
            raise ValueError("max_batch_bytes, linger and attempt_timeout must be positive")
        if max_buffered_events < max_batch_events:
            raise ValueError("max_buffered_events must hold at least one full batch")
        self._client = client
        self._max_events = max_batch_events
        self._max_bytes = max_batch_bytes
        self._linger = linger
        self._send_timeout = send_timeout
        self._attempt_timeout = attempt_timeout
        self._retry = retry
        self._on_rejected = on_rejected
        self._on_failed = on_failed
        self._queue: collections.deque[_Item] = collections.deque()
        self._in_flight: list[_Item] = []
        self._queued_bytes = 0
        self._first_queued_at = 0.0
        self._room = asyncio.Semaphore(max_buffered_events)  # waiting + in flight
        self._changed = asyncio.Event()
        self._outstanding: set[asyncio.Future[EventResult]] = set()
        self._flushing = 0
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self.stats = ProducerStats()

    async def __aenter__(self) -> "EventProducer":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def send(self, event: common.Event | None = None, /, **fields: Any) -> asyncio.Future[EventResult]:
        """Buffers one event (a common.Event, or its fields) and returns the future of its
        result; waits while the buffer is full (BufferFull after `send_timeout`). The event is
        copied: changing it afterwards changes nothing sent."""
        if self._closing:
            raise ProducerClosed("the producer is closed")
        message = common.Event(**fields) if event is None else _copy(event)
        if not message.event_id:
            message.event_id = rpcs.new_id()
        try:
            await asyncio.wait_for(self._room.acquire(), self._send_timeout)
        except TimeoutError:
            raise BufferFull(f"no room in the buffer within {self._send_timeout:g}s") from None
        if self._closing:  # closed while waiting for room
            self._room.release()
            raise ProducerClosed("the producer is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[EventResult] = loop.create_future()
        # Failures are reported through on_failed too; nobody has to await the future.
        future.add_done_callback(lambda f: f.cancelled() or f.exception())
        if not self._queue:
            self._first_queued_at = loop.time()
        item = _Item(message, message.ByteSize(), future)
        self._queue.append(item)
        self._queued_bytes += item.size
        self._outstanding.add(future)
        self.stats.sent += 1
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="nudge-event-producer")
        self._changed.set()
        return future

    async def flush(self) -> None:
        """Sends what is buffered now without waiting for `linger`, and waits until each of
        those events has its outcome."""
        pending = list(self._outstanding)
        if not pending:
            return
        self._flushing += 1
        self._changed.set()
        try:
            await asyncio.gather(*pending, return_exceptions=True)
        finally:
            self._flushing -= 1

    async def close(self, timeout: float | None = None) -> None:
        """Refuses new events, sends the buffered ones and waits for them (at most `timeout`
        seconds: then what is left fails with DeliveryFailed)."""
        self._closing = True
        self._changed.set()
        if self._task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout)
        except TimeoutError:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        leftover = [i for i in [*self._in_flight, *self._queue] if not i.future.done()]
        self._queue.clear()
        if leftover:
            error = DeliveryFailed(f"closed with {len(leftover)} events not confirmed")
            self._fail([i.event for i in leftover], [i.future for i in leftover], error)

    # The sender: one batch at a time, in order.

    async def _run(self) -> None:
        try:
            await self._send_batches()
        except Exception as exc:  # a bug here must not leave callers waiting on their futures
            log.exception("nudge_producer_stopped")
            self._closing = True
            leftover = [*self._in_flight, *self._queue]
            self._queue.clear()
            self._fail([i.event for i in leftover], [i.future for i in leftover],
                       DeliveryFailed(f"the producer stopped: {exc!r}", exc))

    async def _send_batches(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            while not self._queue:
                if self._closing:
                    return
                self._changed.clear()
                await self._changed.wait()
            while not (self._full() or self._closing or self._flushing):
                remaining = self._first_queued_at + self._linger - loop.time()
                if remaining <= 0:
                    break
                self._changed.clear()
                try:
                    await asyncio.wait_for(self._changed.wait(), remaining)
                except TimeoutError:
                    break
            self._in_flight = self._take(loop)
            await self._deliver(self._in_flight)
            self._in_flight = []

    def _full(self) -> bool:
        return len(self._queue) >= self._max_events or self._queued_bytes >= self._max_bytes

    def _take(self, loop: asyncio.AbstractEventLoop) -> list[_Item]:
        batch: list[_Item] = []
        size = 0
        while self._queue and len(batch) < self._max_events:
            item = self._queue[0]
            if batch and size + item.size > self._max_bytes:
                break
            batch.append(self._queue.popleft())
            size += item.size
            self._queued_bytes -= item.size
        # What is left waits its own linger from now: it was not late, the batch was full.
        self._first_queued_at = loop.time()
        return batch

    async def _deliver(self, batch: list[_Item]) -> None:
        request = ingestion.TrackEventsRequest(events=[i.event for i in batch])
        # The client's channel and key, with the producer's own attempts: a timeout per
        # attempt (not one budget for all) and DEADLINE_EXCEEDED retried too.
        stub = self._client._stub("ingestion")
        attempt = 0
        while True:
            attempt += 1
            try:
                response = await stub.TrackEvents(request, metadata=self._client._metadata,
                                                  timeout=self._attempt_timeout)
                break
            except grpc.aio.AioRpcError as exc:
                wait = self._retry.delay(exc.code().name, attempt, retry_delay(exc), also=_ALSO_RETRIED)
                if wait is None:
                    error = DeliveryFailed(f"TrackEvents failed after {attempt} attempts: "
                                           f"{exc.code().name}: {exc.details()}", exc)
                    self._fail([i.event for i in batch], [i.future for i in batch], error)
                    return
                self.stats.retries += 1
                log.info("nudge_producer_retry", extra={"attempt": attempt, "code": exc.code().name, "wait": wait})
                await asyncio.sleep(wait)
        self.stats.batches += 1
        self.stats.duplicates += response.duplicate_count
        rejected = {r.index: r for r in response.rejected}
        for index, item in enumerate(batch):
            refusal = rejected.get(index)
            if refusal is None:
                result = EventResult(item.event.event_id, True)
                self.stats.accepted += 1
            else:
                result = EventResult(item.event.event_id, False, refusal.reason, refusal.message)
                self.stats.rejected += 1
                self._callback(self._on_rejected, item.event, result)
            self._settle(item.future, result=result)

    def _settle(self, future: asyncio.Future[EventResult], result: EventResult | None = None,
                error: BaseException | None = None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)  # type: ignore[arg-type]
        self._outstanding.discard(future)
        self._room.release()

    def _fail(self, events: list[common.Event], futures: list[asyncio.Future[EventResult]],
              error: DeliveryFailed) -> None:
        for future in futures:
            if not future.done():
                self.stats.failed += 1
            self._settle(future, error=error)
        self._callback(self._on_failed, events, error)

    @staticmethod
    def _callback(callback: Callable[..., Any] | None, *args: Any) -> None:
        if callback is None:
            return
        try:
            callback(*args)
        except Exception:  # a caller's bug must not stop the sender
            log.exception("nudge_producer_callback_failed")


def _copy(event: common.Event) -> common.Event:
    if not isinstance(event, common.Event):
        raise TypeError(f"send takes a nudge.common.v1.Event, not {type(event).__name__}")
    copy = common.Event()
    copy.CopyFrom(event)
    return copy
