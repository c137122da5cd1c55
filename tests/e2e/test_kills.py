"""End to end under SIGKILL: a service, or PostgreSQL itself, dies while producers stream and
track events; producers retry what got no acknowledgement, as a real client would. Afterwards
nothing acknowledged is missing, nothing retried is counted twice, and each user's events
took effect in their order.

What each user does: taps, a purchase part-way, more taps. A triggered campaign sends a day
after each tap, cancelled by a purchase, so decision starts one pending send per tap and the
purchase cancels exactly the sends of the taps before it. Had decision applied a user's
purchase before one of their earlier taps, that tap's send would still be pending: order shows
in the sends' statuses, not only in counts.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import asyncpg
import grpc
import pytest
from google.protobuf import duration_pb2

from nudge.common.v1 import common_pb2
from nudge.ingestion.v1 import ingestion_service_pb2 as pb
from nudge.segmentation.v1 import segmentation_service_pb2 as seg_pb
from nudgelib.config import SERVICES
from nudgetools import embedded
from nudgetools.cluster import REPO, Cluster
from nudgetools.database import migrate_all
from tests.conftest import eventually
from tests.e2e.conftest import running
from tests.helpers import App, Clients, create_app, create_campaign, event, fetch_messages, log_drained, make_campaign, track

pytestmark = pytest.mark.e2e

USERS = 12
TAPS = 200     # per user, plus one purchase part-way
BATCH = 25     # events per batch
PACE = 0.01    # seconds between a producer's batches
CALL_TIMEOUT = 5.0  # a call with no answer by then is given up and retried
# What a client retries: the service or its database away, no answer in time (or given up by
# us), refused for backpressure. Anything else fails the test.
RETRIED = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED,
           grpc.StatusCode.RESOURCE_EXHAUSTED}


def broke_here(exc: grpc.aio.AioRpcError) -> bool:
    """A stream that broke in this process: a batch written just as the server ended the
    stream (refused, or gone) fails in gRPC's own core, which then reports INTERNAL in place
    of the status the server sent."""
    return exc.code() == grpc.StatusCode.INTERNAL and exc.details() == "Internal error from Core"


# Ingestion's retry of a consumer that is down, at most this far apart, so the tests are quick.
QUICK = {"NUDGE_INGESTION_OUTBOX_MAX_BACKOFF_SECONDS": "0.5"}


@dataclass
class Script:
    """Every user's events, split between two producers (one streams, one tracks), and what
    must come of them."""

    streamed: list[list[common_pb2.Event]]
    tracked: list[list[common_pb2.Event]]
    event_ids: list[str]
    # The cause of each send decision must hold ("event:<tap id>") -> its status at the end.
    sends: dict[str, str]


def script(prefix: str, start: datetime) -> Script:
    users = [f"{prefix}-u{i}" for i in range(USERS)]
    per_user: list[list[tuple[common_pb2.Event, str]]] = []
    for u, user in enumerate(users):
        # Each user buys after a different number of taps, a third to two thirds of the way in.
        bought_after = TAPS // 3 + u % (TAPS // 3)
        taps = [event(f"{user}-t{k}", user, "tap") for k in range(TAPS)]
        seq = [(t, "cancelled" if k < bought_after else "pending") for k, t in enumerate(taps)]
        seq.insert(bought_after, (event(f"{user}-buy", user, "buy"), ""))
        per_user.append(seq)
    # Users take turns; each event happens a millisecond after the one before, so the order the
    # producers send in is the order of occurrence.
    interleaved = [seq[k] for k in range(TAPS + 1) for seq in per_user]
    for n, (e, _) in enumerate(interleaved):
        e.occurred_time.FromDatetime(start + timedelta(milliseconds=n))

    def batches(parity: int) -> list[list[common_pb2.Event]]:
        mine = [e for e, _ in interleaved if users.index(e.user_id) % 2 == parity]
        return [mine[i:i + BATCH] for i in range(0, len(mine), BATCH)]

    return Script(batches(0), batches(1), [e.event_id for e, _ in interleaved],
                  {f"event:{e.event_id}": status for e, status in interleaved if status})


@dataclass
class Producer:
    """Sends its batches in order and retries each until it is acknowledged. Each batch is
    acknowledged once: with no duplicates, or (only if an earlier attempt got no answer) as
    all duplicates."""

    api: Clients
    app: App
    batches: list[list[common_pb2.Event]]
    acked: int = 0
    failed_calls: int = 0

    def check_ack(self, i: int, accepted: int, duplicates: int, rejected, retried: bool) -> None:
        size = len(self.batches[i])
        assert (accepted, list(rejected)) == (size, []), f"batch {i}: {accepted}/{size} accepted, {rejected}"
        assert duplicates in ((0, size) if retried else (0,)), f"batch {i}: {duplicates} duplicates"

    async def failed(self, exc: BaseException) -> None:
        if isinstance(exc, grpc.aio.AioRpcError):
            assert exc.code() in RETRIED or broke_here(exc), f"{exc.code().name}: {exc.details()}"
        self.failed_calls += 1
        await asyncio.sleep(0.1)

    async def tracked(self, i: int) -> tuple[pb.TrackEventsResponse, bool]:
        """Batch i through TrackEvents, tried until answered; whether a try failed first."""
        retried = False
        while True:
            try:
                return await self.api.ingestion.TrackEvents(track(self.batches[i]), metadata=self.app.auth("events"),
                                                            timeout=CALL_TIMEOUT), retried
            except grpc.aio.AioRpcError as exc:
                await self.failed(exc)
                retried = True

    async def track(self, until: int) -> None:
        for i in range(self.acked, until):
            reply, retried = await self.tracked(i)
            self.check_ack(i, reply.accepted_count, reply.duplicate_count, reply.rejected, retried)
            self.acked = i + 1
            await asyncio.sleep(PACE)

    async def stream(self, until: int) -> None:
        """Batches on one stream, sent ahead of their acknowledgements; when the stream breaks
        (or an acknowledgement is overdue), a new stream resends from the first batch not
        acknowledged."""
        unanswered: set[int] = set()  # sent on a stream that broke before acknowledging them
        while self.acked < until:
            first, sent = self.acked, []

            async def requests():
                for i in range(first, until):
                    sent.append(i)
                    yield pb.StreamEventsRequest(batch_id=f"b{i}", events=self.batches[i])
                    await asyncio.sleep(PACE)

            call = self.api.ingestion.StreamEvents(requests(), metadata=self.app.auth("events"))
            try:
                while (ack := await asyncio.wait_for(call.read(), CALL_TIMEOUT)) is not grpc.aio.EOF:
                    assert ack.batch_id == f"b{self.acked}", (ack.batch_id, self.acked)
                    self.check_ack(self.acked, ack.accepted_count, ack.duplicate_count, ack.rejected,
                                   self.acked in unanswered)
                    self.acked += 1
                if self.acked < until:
                    raise EOFError("the stream ended before acknowledging every batch")
            except (grpc.aio.AioRpcError, asyncio.TimeoutError, EOFError) as exc:
                call.cancel()
                unanswered.update(i for i in sent if i >= self.acked)
                await self.failed(exc)

    async def resend(self, i: int) -> None:
        """Sends acknowledged batch i again, as a producer that missed its acknowledgement
        would: all of it is a duplicate."""
        reply, _ = await self.tracked(i)
        size = len(self.batches[i])
        assert (reply.accepted_count, reply.duplicate_count) == (size, size), f"resent batch {i}"


async def prepare(api: Clients, url: str, prefix: str) -> tuple[App, Script]:
    app = await create_app(url)
    # A day after each tap, unless the user buys first; and, for checking that delivery answers
    # afterwards, a modal on request for everyone.
    campaign = make_campaign("After a tap", on="tap")
    campaign.triggers[0].delay.CopyFrom(duration_pb2.Duration(seconds=86400))
    campaign.triggers[0].exception_events.add(event_name="buy")
    await create_campaign(api, app, campaign)
    await create_campaign(api, app, make_campaign("On request"))
    return app, script(prefix, datetime.now(timezone.utc))


async def produce_through(api: Clients, app: App, s: Script, kill_and_restart) -> list[Producer]:
    """Both producers run; once either has sent a quarter of its batches, `kill_and_restart`
    runs beside them; they keep going, and wait for it to end before their last quarter, so
    there is load before the kill, while it is down and after it is back."""
    producers = [Producer(api, app, s.streamed), Producer(api, app, s.tracked)]
    quarter = asyncio.Event()
    back = asyncio.Event()

    async def run(p: Producer, send) -> None:
        n = len(p.batches)
        await send(n // 4)
        quarter.set()
        await send(3 * n // 4)
        # A batch acknowledged around the kill, sent again as if its acknowledgement was lost.
        await p.resend(n // 4 - 1)
        await back.wait()
        await send(n)
        await p.resend(n - 1)

    async def killer() -> None:
        await quarter.wait()
        await kill_and_restart()
        back.set()

    await asyncio.wait_for(asyncio.gather(run(producers[0], producers[0].stream), run(producers[1], producers[1].track),
                                          killer()), timeout=45)
    return producers


async def check_exactly_once(api: Clients, url: str, app: App, s: Script) -> None:
    await eventually(lambda: log_drained(url, app.id), timeout=30, interval=0.1)
    conn = await asyncpg.connect(url)
    try:
        # Ingestion stored each event once: none acknowledged is missing, no retry stored twice.
        stored = await conn.fetch("SELECT event_id FROM ingestion.events WHERE app_id = $1 AND kind = 0", app.id)
        assert sorted(r["event_id"] for r in stored) == sorted(s.event_ids)
        # Decision started one send per tap, and each user's purchase cancelled exactly those
        # of the taps before it.
        sends = await conn.fetch("SELECT cause, status FROM decision.pending_sends WHERE app_id = $1", app.id)
        assert len(sends) == len(s.sends)
        assert {r["cause"]: r["status"] for r in sends} == s.sends
        # Nothing set aside on the way.
        for schema in ("ingestion", "segmentation", "delivery"):
            assert await conn.fetchval(f"SELECT count(*) FROM {schema}.dead_letters WHERE app_id = $1", app.id) == 0
    finally:
        await conn.close()

    # Segmentation counted every user's taps and purchase once each.
    async def audience(name: str, operator: int, count: int) -> int:
        rule = seg_pb.Rule(event=seg_pb.EventCondition(name=name, operator=operator, count=count))
        return (await api.segmentation.EstimateAudience(seg_pb.EstimateAudienceRequest(rule=rule),
                                                        metadata=app.auth("admin"))).user_count

    assert await audience("tap", seg_pb.EVENT_OPERATOR_EXACTLY, TAPS) == USERS
    assert await audience("tap", seg_pb.EVENT_OPERATOR_AT_LEAST, TAPS + 1) == 0
    assert await audience("buy", seg_pb.EVENT_OPERATOR_EXACTLY, 1) == USERS
    assert await audience("buy", seg_pb.EVENT_OPERATOR_AT_LEAST, 2) == 0
    # And the front door answers: a pull through delivery and decision.
    (message,) = await fetch_messages(api, app, "someone-new")
    assert message.content.title == "Welcome to Nudge!"


@contextlib.asynccontextmanager
async def clients(cluster: Cluster) -> AsyncIterator[Clients]:
    opened = {n: grpc.aio.insecure_channel(cluster.target(n)) for n in SERVICES}
    try:
        yield Clients(opened.__getitem__)
    finally:
        for ch in opened.values():
            await ch.close()


@pytest.fixture(scope="module")
async def cluster(database_url, tmp_path_factory):
    async with running(database_url, tmp_path_factory.mktemp("kills-logs"), **QUICK) as c:
        yield c


@pytest.mark.parametrize("name", ["ingestion", "decision", "delivery"])
async def test_a_service_killed_under_load_loses_nothing_and_counts_nothing_twice(cluster, database_url, name):
    async with clients(cluster) as api:
        app, s = await prepare(api, database_url, f"k-{name}")

        async def kill_and_restart() -> None:
            process = cluster.processes[name]
            process.kill()
            await asyncio.to_thread(process.wait)
            assert process.returncode == -signal.SIGKILL
            cluster.start((name,))
            await cluster.wait_ready(timeout=60, names=(name,))

        producers = await produce_through(api, app, s, kill_and_restart)
        if name == "ingestion":
            # The kill broke calls in flight: the producers did have to retry.
            assert sum(p.failed_calls for p in producers) > 0
        await check_exactly_once(api, database_url, app, s)
        assert cluster.exited() == []


# A PostgreSQL of the test's own, run from a child process: the wheel keeps one server object
# per process and folder, so a fresh process is what can start it again after a SIGKILL. The
# child prints the URL once the server is ready, then waits.
SERVE = ("import sys; from pathlib import Path; from nudgetools import embedded; "
         "print(embedded.start(Path(sys.argv[1])), flush=True); sys.stdin.read()")


class OwnPostgres:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.child: subprocess.Popen | None = None

    def start(self, timeout: float = 30.0) -> str:
        """Starts the server; a first try can fail while backends of a killed server are
        still on their way out (their shared memory is still in use)."""
        deadline = time.monotonic() + timeout
        while True:
            with open(self.folder / "serve.log", "ab") as log:
                self.child = subprocess.Popen(
                    [sys.executable, "-c", SERVE, str(self.folder)], cwd=REPO, stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE, stderr=log,
                    env={**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "libs"), str(REPO)])})
            ready, _, _ = select.select([self.child.stdout], [], [], max(0.0, deadline - time.monotonic()))
            url = self.child.stdout.readline().decode().strip() if ready else ""
            if url:
                return url
            self._end_child()
            assert time.monotonic() < deadline, f"PostgreSQL did not start: see {self.folder / 'serve.log'}"
            time.sleep(0.2)

    def kill(self) -> None:
        """SIGKILL to the postmaster; returns once it is gone (its parent has reaped it)."""
        pid = embedded.server_pid(self.folder)
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        self._end_child()
        self._wait_gone(pid)

    def stop(self) -> None:
        pid = embedded.server_pid(self.folder)
        if pid is not None:
            os.kill(pid, signal.SIGINT)  # fast shutdown: clients are cut, nothing is waited for
            self._wait_gone(pid)
        self._end_child()

    def _end_child(self) -> None:
        # Killed, not let go: on a normal exit the wheel's atexit hook would stop the server.
        if self.child is not None:
            if self.child.poll() is None:
                self.child.kill()
                self.child.wait()
            self.child.stdin.close()
            self.child.stdout.close()

    def _wait_gone(self, pid: int, timeout: float = 15.0) -> None:
        # A zombie still answers kill(pid, 0), and both the wheel and PostgreSQL would take it
        # for a running server; it is reaped by whoever adopted it (pid 1), not by us.
        deadline = time.monotonic() + timeout
        while (state := process_state(pid)) is not None:
            if time.monotonic() > deadline:
                assert state == "Z", f"PostgreSQL {pid} still running"
                # Dead but never reaped: its lock file is stale.
                (self.folder / "pgdata" / "postmaster.pid").unlink(missing_ok=True)
                return
            time.sleep(0.02)


def process_state(pid: int) -> str | None:
    """The process's state letter (R, S, Z…), or None once it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


@pytest.fixture
async def own_postgres(tmp_path):
    server = OwnPostgres(tmp_path / "pg")
    server.folder.mkdir()
    try:
        url = await asyncio.to_thread(server.start)
        await embedded.ensure_database(url)
        await migrate_all(url)
        yield server, url
    finally:
        await asyncio.to_thread(server.stop)
        shutil.rmtree(server.folder, ignore_errors=True)


async def test_postgres_killed_under_load_loses_nothing_and_counts_nothing_twice(own_postgres, tmp_path):
    server, url = own_postgres
    async with running(url, tmp_path / "logs", **QUICK) as cluster, clients(cluster) as api:
        app, s = await prepare(api, url, "k-postgres")

        async def kill_and_restart() -> None:
            await asyncio.to_thread(server.kill)
            await asyncio.to_thread(server.start)

        producers = await produce_through(api, app, s, kill_and_restart)
        # Writes during the outage were refused (UNAVAILABLE), and retried.
        assert sum(p.failed_calls for p in producers) > 0
        await check_exactly_once(api, url, app, s)
        # Every service came back on its own: none exited, none was restarted.
        assert cluster.exited() == []
