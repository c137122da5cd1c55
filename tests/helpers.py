"""Client-side helpers for tests that drive the public API."""

from __future__ import annotations

import asyncio
import itertools
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import grpc

from nudge.common.v1 import common_pb2
from nudge.decision.v1 import decision_service_pb2 as decision_pb
from nudge.decision.v1 import decision_service_pb2_grpc
from nudge.delivery.v1 import delivery_service_pb2 as delivery_pb
from nudge.delivery.v1 import delivery_service_pb2_grpc
from nudge.ingestion.v1 import ingestion_service_pb2 as ingestion_pb
from nudge.ingestion.v1 import ingestion_service_pb2_grpc
from nudge.segmentation.v1 import segmentation_service_pb2 as segmentation_pb
from nudge.segmentation.v1 import segmentation_service_pb2_grpc
from nudgelib import accounts
from nudgelib.errors import violations_of
from nudgelib.eventlog.lanes import lane_of
from nudgetools import demo, embedded
from nudgetools.database import migrate_all


class Clients:
    """Public stubs for a set of service targets."""

    def __init__(self, channel_for) -> None:
        self.ingestion = ingestion_service_pb2_grpc.IngestionServiceStub(channel_for("ingestion"))
        self.segmentation = segmentation_service_pb2_grpc.SegmentationServiceStub(channel_for("segmentation"))
        self.decision = decision_service_pb2_grpc.DecisionServiceStub(channel_for("decision"))
        self.delivery = delivery_service_pb2_grpc.DeliveryServiceStub(channel_for("delivery"))


def make_campaign(name: str = "Campaign", on: str = "", **fields) -> decision_pb.Campaign:
    """The demo's welcome modal for every user (no audience): on request, or triggered by the
    event `on`; `fields` are set on it (messages copied, values assigned)."""
    c = demo.welcome_campaign("unused")
    c.name = name
    c.audience.ClearField("include_segment_ids")
    if on:
        c.delivery_mode = decision_pb.DELIVERY_MODE_TRIGGERED
        c.triggers.add(event_name=on)
    for k, v in fields.items():
        getattr(c, k).CopyFrom(v) if hasattr(v, "CopyFrom") else setattr(c, k, v)
    return c


async def create_campaign(api: Clients, app: "App", c: decision_pb.Campaign) -> decision_pb.Campaign:
    return (await api.decision.CreateCampaign(decision_pb.CreateCampaignRequest(campaign=c),
                                              metadata=app.auth("admin"))).campaign


async def fetch_messages(api: Clients, app: "App", user: str, limit: int = 1) -> list[delivery_pb.InAppMessage]:
    return list((await api.delivery.FetchMessages(delivery_pb.FetchMessagesRequest(user_id=user, limit=limit),
                                                  metadata=app.auth("client"))).messages)


async def user_profile(api: Clients, app: "App", user_id: str):
    """Segmentation's profile of the user, or None while it has none."""
    try:
        return (await api.segmentation.GetUserProfile(
            segmentation_pb.GetUserProfileRequest(user_id=user_id), metadata=app.auth("admin"))).profile
    except grpc.aio.AioRpcError as exc:
        if exc.code() == grpc.StatusCode.NOT_FOUND:
            return None
        raise


def event(event_id: str, user_id: str, name: str, **properties) -> common_pb2.Event:
    e = common_pb2.Event(event_id=event_id, user_id=user_id, name=name)
    e.properties.update(properties)
    return e


def track(events: list[common_pb2.Event]) -> ingestion_pb.TrackEventsRequest:
    return ingestion_pb.TrackEventsRequest(events=events)


async def expect_error(call, code: grpc.StatusCode) -> grpc.aio.AioRpcError:
    try:
        await call
    except grpc.aio.AioRpcError as exc:
        assert exc.code() == code, f"expected {code.name}, got {exc.code().name}: {exc.details()}"
        return exc
    raise AssertionError(f"expected {code.name}, the call succeeded")


def violated_fields(exc: grpc.aio.AioRpcError) -> set[str]:
    return {v.field for v in violations_of(exc)}


@dataclass(frozen=True)
class App:
    id: str
    keys: dict[str, str]  # label (admin, events, client) -> key

    def auth(self, label: str) -> tuple[tuple[str, str]]:
        return (("authorization", f"Bearer {self.keys[label]}"),)


async def create_app(url: str, name: str | None = None) -> App:
    """A new app with its admin, events and client keys, straight in the accounts schema."""
    conn = await asyncpg.connect(url)
    try:
        app_id, keys = await accounts.create_app(conn, name or f"test-{secrets.token_hex(4)}")
    finally:
        await conn.close()
    return App(app_id, {k.label: k.secret for k in keys})


def sibling_url(url: str, name: str) -> str:
    """The URL of database `name` on the same server as `url`."""
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


@asynccontextmanager
async def own_database(url: str, prefix: str,
                       migrate: Callable[[str], Awaitable[object]] = migrate_all) -> AsyncIterator[str]:
    """A new database on the same server as `url`, migrated (every schema unless `migrate`
    says otherwise) and dropped afterwards: for tests whose rows the session's services must
    not see, or that must not see theirs."""
    own = sibling_url(url, f"{prefix}_{secrets.token_hex(4)}")
    await embedded.ensure_database(own)
    await migrate(own)
    try:
        yield own
    finally:
        admin = await asyncpg.connect(sibling_url(url, "postgres"))
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{urlsplit(own).path[1:]}" WITH (FORCE)')
        finally:
            await admin.close()


class LogPositions:
    """Lanes and positions as ingestion's log hands them out, for tests that call a consumer's
    apply RPC directly: an item id gets its position on first sight, so sending it again
    carries the same one and the consumer skips it (nudgelib.eventlog.positions)."""

    def __init__(self) -> None:
        self._known: dict[tuple[str, str], tuple[int, int]] = {}
        self._next = itertools.count(1)

    def span(self, app_id: str, items) -> common_pb2.LogSpan:
        """The span of events or profile updates (anything with a user_id and an event_id or
        update_id)."""
        lanes, positions = [], []
        for item in items:
            key = (app_id, getattr(item, "event_id", "") or item.update_id)
            if key not in self._known:
                self._known[key] = (lane_of(app_id, item.user_id), next(self._next))
            lanes.append(self._known[key][0])
            positions.append(self._known[key][1])
        return common_pb2.LogSpan(source="ingestion", lanes=lanes, positions=positions)


# Whether every consumer has taken all of an app's items from ingestion's log: none above its
# cursor (segmentation reads every kind, the others events only) and no app held after failures.
LOG_DRAINED = """
SELECT NOT EXISTS (
    SELECT 1 FROM ingestion.log_cursors c JOIN ingestion.events e ON e.lane = c.lane AND e.position > c.position
    WHERE e.app_id = $1 AND (c.consumer = 'segmentation' OR e.kind = 0))
   AND NOT EXISTS (SELECT 1 FROM ingestion.log_holds WHERE app_id = $1)
"""


async def _holds_for_app(database_url: str, sql: str, app_id: str) -> bool:
    conn = await asyncpg.connect(database_url)
    try:
        return await conn.fetchval(sql, app_id)
    finally:
        await conn.close()


async def log_drained(database_url: str, app_id: str) -> bool:
    return await _holds_for_app(database_url, LOG_DRAINED, app_id)


# Whether decision has taken every announcement segmentation queued for an app (the log
# deletes what its consumer took) and none is held after failures.
ANNOUNCED = """
SELECT NOT EXISTS (SELECT 1 FROM segmentation.outbox WHERE app_id = $1)
   AND NOT EXISTS (SELECT 1 FROM segmentation.log_holds WHERE app_id = $1)
"""


async def announced(database_url: str, app_id: str) -> bool:
    return await _holds_for_app(database_url, ANNOUNCED, app_id)


async def traces_of_user(conn: asyncpg.Connection, app_id: str, user_id: str) -> dict[str, int]:
    """Rows naming the user in every table of the four services that has a user column
    (found from the catalog, so tables added later are covered too)."""
    columns = await conn.fetch(
        """SELECT c.table_schema AS schema, c.table_name AS name, c.column_name AS col,
                  EXISTS (SELECT 1 FROM information_schema.columns a WHERE a.table_schema = c.table_schema
                          AND a.table_name = c.table_name AND a.column_name = 'app_id') AS has_app
           FROM information_schema.columns c JOIN information_schema.tables t
                ON t.table_schema = c.table_schema AND t.table_name = c.table_name AND t.table_type = 'BASE TABLE'
           WHERE c.table_schema IN ('ingestion', 'segmentation', 'decision', 'delivery')
             AND c.column_name IN ('user_id', 'user_ids')""")
    found = {}
    for c in columns:
        match = "$2 = any(user_ids)" if c["col"] == "user_ids" else "user_id = $2"
        where = f"app_id = $1 AND {match}" if c["has_app"] else f"($1::text IS NOT NULL AND {match})"
        n = await conn.fetchval(f'SELECT count(*) FROM "{c["schema"]}"."{c["name"]}" WHERE {where}', app_id, user_id)
        if n:
            found[f'{c["schema"]}.{c["name"]}'] = n
    return found


class Stream:
    """A Subscribe call read in the background."""

    def __init__(self, api: Clients, app, user: str, last: str = "") -> None:
        self.call = api.delivery.Subscribe(delivery_pb.SubscribeRequest(user_id=user, last_message_id=last),
                                           metadata=app.auth("client"))
        self.messages: list[delivery_pb.InAppMessage] = []
        self.task = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        try:
            async for item in self.call:
                if item.HasField("message"):
                    self.messages.append(item.message)
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.CANCELLED:
                raise

    async def close(self) -> None:
        self.call.cancel()
        await asyncio.gather(self.task, return_exceptions=True)

    def ids(self) -> list[str]:
        return [m.message_id for m in self.messages]
