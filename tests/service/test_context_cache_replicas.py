"""Decision's cached user contexts with two replicas: segmentation announces a change to one
of them, and the other drops its copy; a user segmentation did not know yet is cached too,
until their first event is announced.

The services run on a database of their own: the session's stack would otherwise take this
app's events from ingestion's log and announce them to its own decision.
"""

from __future__ import annotations

import grpc
import pytest

from nudge.common.v1 import common_pb2
from nudge.decision.v1 import decision_internal_service_pb2 as internal_pb
from nudge.decision.v1 import decision_internal_service_pb2_grpc as internal_grpc
from nudge.ingestion.v1 import ingestion_service_pb2 as ingestion_pb
from nudge.ingestion.v1 import ingestion_service_pb2_grpc as ingestion_grpc
from nudge.segmentation.v1 import segmentation_service_pb2 as seg_pb
from nudge.segmentation.v1 import segmentation_service_pb2_grpc as seg_grpc
from nudgelib.config import peer_target
from nudgetools.cluster import free_ports
from services.decision.server import SPEC as DECISION
from services.ingestion.server import SPEC as INGESTION
from services.segmentation.server import SPEC as SEGMENTATION
from tests.conftest import INTERNAL_TOKEN, eventually, start_host
from tests.helpers import create_app, own_database

INTERNAL = (("authorization", f"Bearer {INTERNAL_TOKEN}"),)


@pytest.fixture
async def replicas(database_url):
    """Segmentation, ingestion and two decision replicas; segmentation and ingestion reach
    the replicas as a list (round robin)."""
    async with own_database(database_url, "ctx_replicas") as url:
        seg_port, d1, d2, ing_port = free_ports(4)
        decisions = peer_target("NUDGE_DECISION_ADDR", f"127.0.0.1:{d1},127.0.0.1:{d2}")
        segmentation = f"127.0.0.1:{seg_port}"
        hosts = [await start_host(SEGMENTATION, url, {"decision": decisions}, seg_port)]
        hosts += [await start_host(DECISION, url, {"segmentation": segmentation}, p) for p in (d1, d2)]
        hosts.append(await start_host(INGESTION, url, {"segmentation": segmentation, "decision": decisions}, ing_port))
        channels = {n: grpc.aio.insecure_channel(f"127.0.0.1:{p}") for n, p in
                    (("seg", seg_port), ("d1", d1), ("d2", d2), ("ing", ing_port))}
        try:
            yield url, hosts, channels
        finally:
            for c in channels.values():
                await c.close()
            for h in reversed(hosts):
                await h.stop()


async def contexts(channels, app_id: str, user_id: str) -> list[common_pb2.UserContext]:
    """The context each replica decides with now (no campaign: a Decide writes nothing)."""
    out = []
    for name in ("d1", "d2"):
        stub = internal_grpc.DecisionInternalServiceStub(channels[name])
        out.append((await stub.Decide(internal_pb.DecideRequest(app_id=app_id, user_id=user_id),
                                      metadata=INTERNAL, timeout=5)).user)
    return out


async def track(channels, app, *events: common_pb2.Event) -> None:
    await ingestion_grpc.IngestionServiceStub(channels["ing"]).TrackEvents(
        ingestion_pb.TrackEventsRequest(events=list(events)), metadata=app.auth("events"), timeout=5)


def context_reads(hosts) -> float:
    return hosts[0].registry.get_sample_value(
        "nudge_rpc_requests_total", {"service": "segmentation", "method": "GetUserContext", "code": "OK"}) or 0.0


async def test_a_user_not_known_yet_is_cached_until_their_first_event_reaches_every_replica(replicas):
    url, hosts, channels = replicas
    app = await create_app(url)
    first = await contexts(channels, app.id, "newcomer")
    assert [c.known for c in first] == [False, False]
    # Both replicas keep that answer: pulls for a visitor who has sent nothing cost no call
    # to segmentation.
    reads = context_reads(hosts)
    for _ in range(5):
        assert [c.known for c in await contexts(channels, app.id, "newcomer")] == [False, False]
    assert context_reads(hosts) == reads
    # Their first event enters no segment (there are none), yet every replica learns of it:
    # one from segmentation's announcement, the other from its sibling's notice.
    await track(channels, app, common_pb2.Event(event_id="n1", user_id="newcomer", name="open", app_version="2.1.0",
                                                platform=common_pb2.PLATFORM_ANDROID))

    async def everywhere():
        now = await contexts(channels, app.id, "newcomer")
        return all(c.known and c.app_version == "2.1.0" for c in now) and now

    now = await eventually(everywhere, timeout=10)
    assert all(list(c.platforms) == [common_pb2.PLATFORM_ANDROID] for c in now)


async def test_a_change_announced_to_one_replica_replaces_the_other_replicas_copy(replicas):
    url, hosts, channels = replicas
    app = await create_app(url)
    await track(channels, app, common_pb2.Event(event_id="a1", user_id="u1", name="open", app_version="1.0.0"))
    await eventually(lambda: _all(channels, app.id, "u1", lambda c: c.app_version == "1.0.0"))
    # Both replicas now hold u1's context. A new app version is something decision decides
    # with: announced to one replica; the other must not go on with 1.0.0 for the cache's TTL.
    for i in range(4):  # round robin: the announcements reach both replicas in turn
        version = f"1.{i + 1}.0"
        await track(channels, app, common_pb2.Event(event_id=f"a{i + 2}", user_id="u1", name="open",
                                                    app_version=version))
        await eventually(lambda: _all(channels, app.id, "u1", lambda c: c.app_version == version), timeout=5)


async def test_new_segment_rules_reach_every_replica(replicas):
    url, hosts, channels = replicas
    app = await create_app(url)
    await track(channels, app, common_pb2.Event(event_id="b1", user_id="buyer", name="purchase"))
    await eventually(lambda: _all(channels, app.id, "buyer", lambda c: c.known))
    # A segment created now holds the buyer at once (no entry is announced for it: it is a new
    # rule, not a change of the user); segmentation tells one replica the app's rules changed,
    # and that one tells the other.
    segment = (await seg_grpc.SegmentationServiceStub(channels["seg"]).CreateSegment(seg_pb.CreateSegmentRequest(
        name="buyers", rule=seg_pb.Rule(event=seg_pb.EventCondition(
            name="purchase", operator=seg_pb.EVENT_OPERATOR_AT_LEAST, count=1))),
        metadata=app.auth("admin"), timeout=5)).segment
    await eventually(lambda: _all(channels, app.id, "buyer", lambda c: list(c.segment_ids) == [segment.id]),
                     timeout=5)


async def _all(channels, app_id: str, user_id: str, check) -> bool:
    return all(check(c) for c in await contexts(channels, app_id, user_id))


async def test_contexts_kept_by_both_replicas_serve_pulls_without_segmentation(replicas):
    url, hosts, channels = replicas
    app = await create_app(url)
    await track(channels, app, *(common_pb2.Event(event_id=f"k{i}", user_id=f"k{i}", name="open") for i in range(20)))
    await eventually(lambda: _every_known(channels, app.id, 20))
    # A replica may have read a user from segmentation before the announcement of that user
    # reached it or its sibling; that word then drops the copy read (it may be older), and the
    # next pull reads again. Once the word is in, whole passes cost no read at all.

    async def a_pass_without_reads() -> bool:
        reads = context_reads(hosts)
        for i in range(20):
            await contexts(channels, app.id, f"k{i}")
        return context_reads(hosts) == reads

    await eventually(a_pass_without_reads, timeout=10)
    assert await a_pass_without_reads()


async def _every_known(channels, app_id: str, n: int) -> bool:
    for i in range(n):
        if not await _all(channels, app_id, f"k{i}", lambda c: c.known):
            return False
    return True
