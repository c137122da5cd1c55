"""Ingestion's internal ReadEvents against the real service (the shared stack): an app's
stored events, of some names, up to a position per lane, in (lane, position) order, paged by
count and bytes, resumable from any page's token, refusing bad input by field."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import asyncpg
import grpc
import pytest

from nudge.common.v1 import common_pb2
from nudge.ingestion.v1 import ingestion_internal_service_pb2 as pb
from nudge.ingestion.v1 import ingestion_internal_service_pb2_grpc as pb_grpc
from nudge.ingestion.v1 import ingestion_service_pb2 as public_pb
from nudgelib.protoconv import to_timestamp
from services.ingestion import reads
from tests.conftest import INTERNAL_TOKEN
from tests.helpers import Clients, event, expect_error, track, violated_fields

INTERNAL = (("authorization", f"Bearer {INTERNAL_TOKEN}"),)
EVERY_LANE = 1 << 62  # a position above any stored one


@pytest.fixture
async def reader(stack) -> pb_grpc.IngestionInternalServiceStub:
    return pb_grpc.IngestionInternalServiceStub(stack.channel("ingestion"))


async def stored(database_url: str, app_id: str) -> list[tuple[int, int, str]]:
    """(lane, position, event_id) of the app's events, in (lane, position) order."""
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch("SELECT lane, position, event_id FROM ingestion.events"
                                " WHERE app_id = $1 AND kind = 0 ORDER BY lane, position", app_id)
    finally:
        await conn.close()
    return [(r["lane"], r["position"], r["event_id"]) for r in rows]


def every_lane(position: int = EVERY_LANE) -> list[common_pb2.LanePosition]:
    return [common_pb2.LanePosition(lane=lane, position=position) for lane in range(16)]


async def read_all(reader, request: pb.ReadEventsRequest) -> list[pb.ReadEventsResponse]:
    return await _drain(reader.ReadEvents(request, metadata=INTERNAL))


def ids(pages) -> list[str]:
    return [e.event_id for page in pages for e in page.events]


async def test_reads_the_apps_events_of_the_names_up_to_each_lanes_position(stack, app, other_app, reader,
                                                                            database_url):
    api = Clients(stack.channel)
    await api.ingestion.TrackEvents(track([event(f"b{i}", f"user-{i % 7}", "buy") for i in range(30)]
                                          + [event(f"o{i}", f"user-{i}", "open") for i in range(5)]),
                                    metadata=app.auth("events"))
    await api.ingestion.TrackEvents(track([event("x1", "user-1", "buy")]), metadata=other_app.auth("events"))
    await api.ingestion.Identify(public_pb.IdentifyRequest(user_id="user-1", time_zone="Europe/Paris"),
                                 metadata=app.auth("events"))
    log = [row for row in await stored(database_url, app.id) if row[2].startswith("b")]
    assert len(log) == 30

    pages = await read_all(reader, pb.ReadEventsRequest(app_id=app.id, names=["buy"], upto=every_lane()))
    assert ids(pages) == [event_id for _, _, event_id in log]  # (lane, position) order, nothing else
    assert pages[-1].next_page_token == ""

    # Up to the middle event of each lane; lanes not listed hold only items from before the
    # log (position 0), so none of these.
    by_lane: dict[int, list[tuple[int, str]]] = {}
    for lane, position, event_id in log:
        by_lane.setdefault(lane, []).append((position, event_id))
    listed = sorted(by_lane)[:-1]
    upto = [common_pb2.LanePosition(lane=lane, position=by_lane[lane][len(by_lane[lane]) // 2][0]) for lane in listed]
    expected = [event_id for lane in listed for position, event_id in by_lane[lane]
                if position <= by_lane[lane][len(by_lane[lane]) // 2][0]]
    pages = await read_all(reader, pb.ReadEventsRequest(app_id=app.id, names=["buy"], upto=upto))
    assert ids(pages) == expected

    both = await read_all(reader, pb.ReadEventsRequest(app_id=app.id, names=["open", "buy"], upto=every_lane()))
    assert sorted(ids(both)) == sorted([f"b{i}" for i in range(30)] + [f"o{i}" for i in range(5)])


async def test_only_events_that_occurred_within_the_bounds(stack, app, reader):
    now = datetime.now(timezone.utc)
    events = []
    for i, age in enumerate((timedelta(days=40), timedelta(days=9), timedelta(days=2), timedelta(0))):
        e = event(f"t{i}", "timed", "buy")
        e.occurred_time.CopyFrom(to_timestamp(now - age))
        events.append(e)
    await Clients(stack.channel).ingestion.TrackEvents(track(events), metadata=app.auth("events"))
    request = pb.ReadEventsRequest(app_id=app.id, names=["buy"], upto=every_lane(),
                                   occurred_since=to_timestamp(now - timedelta(days=10)),
                                   occurred_until=to_timestamp(now - timedelta(days=1)))
    assert ids(await read_all(reader, request)) == ["t1", "t2"]


async def test_pages_resume_from_any_token_without_repeating_or_skipping(stack, app, reader):
    await Clients(stack.channel).ingestion.TrackEvents(
        track([event(f"p{i}", f"pager-{i % 5}", "buy") for i in range(23)]), metadata=app.auth("events"))
    request = pb.ReadEventsRequest(app_id=app.id, names=["buy"], upto=every_lane(), page_size=4)
    pages = await read_all(reader, request)
    assert [len(p.events) for p in pages] == [4, 4, 4, 4, 4, 3]
    assert all(p.next_page_token for p in pages[:-1]) and not pages[-1].next_page_token
    whole = ids(pages)
    assert sorted(whole) == sorted(f"p{i}" for i in range(23))
    # A stream broken after page 2: called again with its token, it goes on from page 3.
    request.page_token = pages[1].next_page_token
    assert ids(await read_all(reader, request)) == whole[8:]


async def test_a_page_stays_within_its_byte_bound(stack, app, reader):
    big = "x" * 30_000
    for start in (0, 25, 50):
        await Clients(stack.channel).ingestion.TrackEvents(
            track([event(f"big{i}", f"heavy-{i % 3}", "upload", blob=big) for i in range(start, start + 25)]),
            metadata=app.auth("events"))
    pages = await read_all(reader, pb.ReadEventsRequest(app_id=app.id, names=["upload"], upto=every_lane(),
                                                        page_size=5000))
    assert len(ids(pages)) == 75
    assert len(pages) >= 3
    assert all(p.ByteSize() <= reads.PAGE_BYTES + 1024 for p in pages)


async def test_bad_requests_name_their_field(stack, app, reader):
    await Clients(stack.channel).ingestion.TrackEvents(track([event("q1", "q", "buy"), event("q2", "q", "buy")]),
                                                        metadata=app.auth("events"))
    good = pb.ReadEventsRequest(app_id=app.id, names=["buy"], upto=every_lane())
    token = (await read_all(reader, pb.ReadEventsRequest(app_id=app.id, names=["buy"], page_size=1,
                                                         upto=every_lane())))[0].next_page_token
    cases = [
        (pb.ReadEventsRequest(names=["buy"]), "app_id"),
        (pb.ReadEventsRequest(app_id=app.id), "names"),
        (pb.ReadEventsRequest(app_id=app.id, names=["buy", "9bad"]), "names[1]"),
        (pb.ReadEventsRequest(app_id=app.id, names=["buy", "buy"]), "names[1]"),
        (pb.ReadEventsRequest(app_id=app.id, names=["buy"], upto=[common_pb2.LanePosition(lane=16)]), "upto[0].lane"),
        (pb.ReadEventsRequest(app_id=app.id, names=["buy"], upto=[common_pb2.LanePosition(lane=3),
                                                                  common_pb2.LanePosition(lane=3)]), "upto[1].lane"),
        (pb.ReadEventsRequest(app_id=app.id, names=["buy"], upto=[common_pb2.LanePosition(lane=3, position=-1)]),
         "upto[0].position"),
        (pb.ReadEventsRequest(app_id=app.id, names=["buy"], occurred_since=to_timestamp(datetime(2026, 5, 2)),
                              occurred_until=to_timestamp(datetime(2026, 5, 1))), "occurred_until"),
        (pb.ReadEventsRequest(app_id=app.id, names=["buy"], page_size=-1), "page_size"),
        (pb.ReadEventsRequest(app_id=app.id, names=["buy"], page_token="nonsense"), "page_token"),
        # A token of another request (other names) is refused rather than misread.
        (pb.ReadEventsRequest(app_id=app.id, names=["open"], upto=every_lane(), page_token=token), "page_token"),
    ]
    assert token
    for request, field in cases:
        exc = await expect_error(read_all(reader, request), grpc.StatusCode.INVALID_ARGUMENT)
        assert field in violated_fields(exc), (field, exc.details())
    assert len(await read_all(reader, good)) == 1  # the same request, well formed, is answered


async def test_an_api_key_cannot_read_events(stack, app, reader):
    for label in ("admin", "events"):
        stream = reader.ReadEvents(pb.ReadEventsRequest(app_id=app.id, names=["buy"], upto=every_lane()),
                                   metadata=app.auth(label))
        await expect_error(_drain(stream), grpc.StatusCode.PERMISSION_DENIED)


async def _drain(stream) -> list:
    return [page async for page in stream]
