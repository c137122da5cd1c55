"""Two replicas of every service behind Envoy, every call through the edge, and one replica of
each service SIGKILLed mid-load: nothing acknowledged is lost, caps hold exactly, and a stream
held by the killed delivery replica resumes on the other, missing nothing and repeating nothing.

What runs at once, all through the edge's one port:
- producers track `tap` events for some users (retrying what got no acknowledgement, as a real
  client would), and a `ping` now and then for each streaming user;
- each streaming user holds a `Subscribe` stream; a triggered campaign turns every ping into a
  message titled with the ping's number, so the messages a user must see are known;
- pullers call `FetchMessages` for other users, again and again, for an on-request campaign
  capped at CAP messages per user.
A quarter of the way in, one replica of each of the four services is SIGKILLed, and the rest
runs on the survivors. The producers' retries are theirs; the edge only retries calls that
cannot have run, and TrackEvents (idempotent by event id).
"""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from dataclasses import dataclass, field

import asyncpg
import grpc
import pytest

from nudge.common.v1 import common_pb2
from nudge.decision.v1 import decision_service_pb2 as decision_pb
from nudge.delivery.v1 import delivery_service_pb2 as delivery_pb
from nudge.segmentation.v1 import segmentation_service_pb2 as seg_pb
from nudgelib.config import SERVICES
from nudgetools.cluster import EDGE
from nudgetools.edge import admin_get
from tests.conftest import eventually
from tests.e2e.conftest import running
from tests.helpers import App, Clients, create_app, create_campaign, event, log_drained, make_campaign, track

pytestmark = pytest.mark.e2e

REPLICAS = {name: 2 for name in SERVICES}
TAP_USERS, TAPS, BATCH = 6, 100, 20
STREAM_USERS, PINGS = 4, 24
PULL_USERS, PULLERS, CAP = 8, 2, 3
PACE = 0.05
CALL_TIMEOUT = 5.0
# What a client retries: the replica it reached went away, or no answer in time.
RETRIED = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED,
           grpc.StatusCode.RESOURCE_EXHAUSTED}
# Ingestion retries a consumer that is down, and delivery offers waiting messages to open
# streams again (a stream offer fails while the killed decision replica's calls do), at most
# this far apart, so the test is quick.
QUICK = {"NUDGE_INGESTION_OUTBOX_MAX_BACKOFF_SECONDS": "0.5", "NUDGE_DELIVERY_REOFFER_SECONDS": "1"}


def retryable(exc: grpc.aio.AioRpcError) -> bool:
    """A call cut under way surfaces as INTERNAL: gRPC's core says so for a stream broken in
    this process, and the edge resets a call whose replica died after answering its headers
    (RST_STREAM), having no status to send in its place."""
    details = exc.details() or ""
    cut = exc.code() == grpc.StatusCode.INTERNAL and ("Core" in details or "RST_STREAM" in details)
    return exc.code() in RETRIED or cut


@dataclass
class Load:
    api: Clients
    app: App
    # Calls that failed and were retried, by kind.
    retries: Counter = field(default_factory=Counter)
    # Each streaming user's messages as received, over all their stream sessions.
    received: dict[str, list[delivery_pb.InAppMessage]] = field(default_factory=dict)
    sessions: Counter = field(default_factory=Counter)
    # Each pulling user's capped messages as received.
    pulled: dict[str, list[str]] = field(default_factory=dict)

    async def tracked(self, events: list[common_pb2.Event]) -> None:
        """Tries the batch until it is acknowledged, every event accepted."""
        while True:
            try:
                reply = await self.api.ingestion.TrackEvents(track(events), metadata=self.app.auth("events"),
                                                             timeout=CALL_TIMEOUT)
            except grpc.aio.AioRpcError as exc:
                assert retryable(exc), f"TrackEvents: {exc.code().name}: {exc.details()}"
                self.retries["track"] += 1
                await asyncio.sleep(0.1)
                continue
            assert (reply.accepted_count, list(reply.rejected)) == (len(events), [])
            return

    async def subscribe(self, user: str) -> None:
        """Holds a stream for the user until cancelled; after a break, resumes after the last
        message received."""
        got = self.received.setdefault(user, [])
        while True:
            last = got[-1].message_id if got else ""
            self.sessions[user] += 1
            call = self.api.delivery.Subscribe(delivery_pb.SubscribeRequest(user_id=user, last_message_id=last),
                                               metadata=self.app.auth("client"))
            try:
                async for item in call:
                    if item.HasField("message"):
                        got.append(item.message)
            except grpc.aio.AioRpcError as exc:
                assert retryable(exc), f"Subscribe: {exc.code().name}: {exc.details()}"
            self.retries["subscribe"] += 1
            await asyncio.sleep(0.1)

    def missing(self, users: list[str]) -> dict[str, list[int]]:
        """The pings each user's streams have not shown yet."""
        out = {}
        for user in users:
            seen = {m.content.title for m in self.received.get(user, [])}
            if gaps := [n for n in range(PINGS) if f"ping {n}" not in seen]:
                out[user] = gaps
        return out

    async def pull(self, user: str, rounds: int) -> None:
        got = self.pulled.setdefault(user, [])
        for _ in range(rounds):
            try:
                reply = await self.api.delivery.FetchMessages(delivery_pb.FetchMessagesRequest(user_id=user),
                                                              metadata=self.app.auth("client"), timeout=CALL_TIMEOUT)
                got.extend(m.message_id for m in reply.messages)
            except grpc.aio.AioRpcError as exc:
                assert retryable(exc), f"FetchMessages: {exc.code().name}: {exc.details()}"
                self.retries["pull"] += 1
            await asyncio.sleep(PACE)


def taps() -> list[list[common_pb2.Event]]:
    events = [event(f"r-u{u}-t{k}", f"r-u{u}", "tap") for k in range(TAPS) for u in range(TAP_USERS)]
    return [events[i:i + BATCH] for i in range(0, len(events), BATCH)]


def ping(user: str, n: int) -> common_pb2.Event:
    return event(f"{user}-p{n}", user, "ping", n=n)


async def per_replica(cluster, service: str, stat: str) -> dict[str, int]:
    """A counter of the edge's for each replica of a service, by instance (from /clusters:
    `rq_total`, calls sent; `rq_active`, calls open now, streams included)."""
    host, _, port = cluster.edge.admin_target.rpartition(":")
    # Waited for: under load the edge (and this process's loop, busy with the load) may take
    # more than admin_get's default second, which reads as no answer and no replica at all.
    status, body = await admin_get(host, int(port), "/clusters", timeout=10)
    assert status == 200, f"the edge's admin endpoint did not answer /clusters: {status}"
    by_address = {cluster.target(i): i for i in cluster.instances(service)}
    return {by_address[line.split("::")[1]]: int(line.rsplit("::", 1)[1]) for line in body.splitlines()
            if line.startswith(f"{service}::") and line.split("::")[2] == stat}


async def test_one_replica_of_each_service_killed_behind_the_edge_loses_nothing(database_url, tmp_path):
    async with running(database_url, tmp_path / "logs", replicas=REPLICAS, edge=True, **QUICK) as cluster:
        async with grpc.aio.insecure_channel(cluster.target(EDGE)) as channel:
            api = Clients(lambda _: channel)
            app = await create_app(database_url)
            # Every ping becomes a message titled with its number.
            pinged = make_campaign("Ping", on="ping")
            pinged.variants[0].contents[0].content.title = "ping {{ event.n }}"
            pinged.caps.bypass_app_caps = True
            await create_campaign(api, app, pinged)
            capped = make_campaign("Capped", caps=decision_pb.CampaignCaps(lifetime_max=CAP, bypass_app_caps=True))
            capped = await create_campaign(api, app, capped)

            load = Load(api, app)
            streamers = [f"r-s{i}" for i in range(STREAM_USERS)]
            streams = [asyncio.create_task(load.subscribe(u)) for u in streamers]
            try:
                # Every stream is live and has had a message (so a resume has an id to resume
                # after) before anything is killed.
                await load.tracked([ping(u, 0) for u in streamers])
                await eventually(lambda: _true(all(load.received.get(u) for u in streamers)), timeout=20)
                # One replica of each is killed: for delivery, one that holds streams.
                streams_held = await per_replica(cluster, "delivery", "rq_active")
                killed = {name: f"{name}-1" for name in SERVICES}
                killed["delivery"] = max(streams_held, key=streams_held.get)
                await run_load(cluster, load, streamers, killed)
                # Everything acknowledged has been applied, and every ping reached its stream.
                await eventually(lambda: log_drained(database_url, app.id), timeout=30, interval=0.1)
                try:
                    await eventually(lambda: _true(not load.missing(streamers)), timeout=20)
                except AssertionError:
                    raise AssertionError(f"pings never shown: {load.missing(streamers)}; sessions "
                                         f"{dict(load.sessions)}") from None
                await asyncio.sleep(0.5)  # a repeat would come now, if at all
            finally:
                for task in streams:
                    task.cancel()
                for outcome in await asyncio.gather(*streams, return_exceptions=True):
                    # A subscriber that met what a client would not retry failed the test.
                    if not isinstance(outcome, asyncio.CancelledError):
                        raise outcome

            # The killed replicas leave the edge's pools once its health checks (a second
            # apart, two failures in a row) have found them gone, later on a loaded machine;
            # the survivors answer for them.
            survivors_only = {name: (1, 2) for name in SERVICES}
            seen: list[dict[str, tuple[int, int]]] = []

            async def pools_of_survivors() -> bool:
                seen.append(await cluster.edge.membership())
                return seen[-1] == survivors_only

            try:
                await eventually(pools_of_survivors, timeout=15, interval=0.2)
            except AssertionError:
                raise AssertionError(f"the edge's pools (healthy, total): {seen[-1]}") from None

            # Each stream saw each of its pings once across its sessions (two decision replicas
            # release them, so not necessarily in order), and at least one stream was on the
            # killed delivery replica and resumed on the other.
            for user in streamers:
                titles = sorted((m.content.title for m in load.received[user]), key=lambda t: int(t.split()[1]))
                assert titles == [f"ping {n}" for n in range(PINGS)], user
            assert sum(load.sessions[u] - 1 for u in streamers) >= 1, "no stream broke and resumed"

            # Caps are exact: no user got more than CAP, neither as seen by the client nor as
            # delivery recorded it; and what a client saw is what was recorded.
            conn = await asyncpg.connect(database_url)
            try:
                rows = await conn.fetch("SELECT user_id, message_id FROM delivery.messages "
                                        "WHERE app_id = $1 AND campaign_id = $2 AND status = 'delivered'",
                                        app.id, capped.id)
                stored_events = await conn.fetch("SELECT event_id FROM ingestion.events WHERE app_id = $1 AND kind = 0",
                                                 app.id)
                dead = [await conn.fetchval(f"SELECT count(*) FROM {schema}.dead_letters WHERE app_id = $1", app.id)
                        for schema in ("ingestion", "segmentation", "delivery")]
            finally:
                await conn.close()
            recorded: dict[str, set[str]] = {}
            for r in rows:
                recorded.setdefault(r["user_id"], set()).add(r["message_id"])
            for user, ids in load.pulled.items():
                assert len(ids) == len(set(ids)) <= CAP, user
                assert set(ids) <= recorded.get(user, set()), user
            assert all(len(ids) <= CAP for ids in recorded.values())
            assert sum(len(ids) for ids in load.pulled.values()) >= PULL_USERS  # the pulls did hand out

            # No acknowledged event is missing, none stored twice, nothing set aside.
            expected = [e.event_id for batch in taps() for e in batch] + [
                f"{u}-p{n}" for u in streamers for n in range(PINGS)]
            assert sorted(r["event_id"] for r in stored_events) == sorted(expected)
            assert dead == [0, 0, 0]
            # Segmentation counted every tap once.
            rule = seg_pb.Rule(event=seg_pb.EventCondition(name="tap", operator=seg_pb.EVENT_OPERATOR_EXACTLY,
                                                           count=TAPS))
            estimate = await api.segmentation.EstimateAudience(seg_pb.EstimateAudienceRequest(rule=rule),
                                                               metadata=app.auth("admin"), timeout=10)
            assert estimate.user_count == TAP_USERS
        # Only the killed ones are gone.
        assert sorted(cluster.exited()) == sorted(killed.values())


async def _true(value: bool) -> bool:
    return value


async def run_load(cluster, load: Load, streamers: list[str], killed: dict[str, str]) -> None:
    batches = taps()
    quarter = asyncio.Event()

    async def produce() -> None:
        for i, batch in enumerate(batches):
            await load.tracked(batch)
            if i == len(batches) // 4:
                quarter.set()
            await asyncio.sleep(PACE)

    async def pings() -> None:
        for n in range(1, PINGS):
            await load.tracked([ping(u, n) for u in streamers])
            await asyncio.sleep(2 * PACE)

    async def pulls() -> None:
        # Users start pulling one after another, so that some race for their cap across the kill.
        async def user(i: int) -> None:
            await asyncio.sleep(i * 0.3)
            await asyncio.gather(*(load.pull(f"r-p{i}", 20) for _ in range(PULLERS)))

        await asyncio.gather(*(user(i) for i in range(PULL_USERS)))

    async def kill() -> None:
        await quarter.wait()
        # The edge balances over both replicas: each has had calls (pulls and events go on
        # meanwhile).
        async def both_called() -> bool:
            calls = [await per_replica(cluster, name, "rq_total") for name in ("ingestion", "delivery")]
            return all(min(c.values()) > 0 for c in calls)

        await eventually(both_called, timeout=5)
        for instance in killed.values():
            cluster.processes[instance].send_signal(signal.SIGKILL)
        for instance in killed.values():
            await asyncio.to_thread(cluster.processes[instance].wait)
            assert cluster.processes[instance].returncode == -signal.SIGKILL

    await asyncio.wait_for(asyncio.gather(produce(), pings(), pulls(), kill()), timeout=60)
