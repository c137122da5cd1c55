"""Client-side helpers for tests that drive the public API."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import asyncpg
import grpc

from nudge.common.v1 import common_pb2
from nudge.decision.v1 import decision_service_pb2_grpc
from nudge.delivery.v1 import delivery_service_pb2_grpc
from nudge.ingestion.v1 import ingestion_service_pb2 as ingestion_pb
from nudge.ingestion.v1 import ingestion_service_pb2_grpc
from nudge.segmentation.v1 import segmentation_service_pb2_grpc
from nudgelib import accounts
from nudgelib.errors import violations_of


class Clients:
    """Public stubs for a set of service targets."""

    def __init__(self, channel_for) -> None:
        self.ingestion = ingestion_service_pb2_grpc.IngestionServiceStub(channel_for("ingestion"))
        self.segmentation = segmentation_service_pb2_grpc.SegmentationServiceStub(channel_for("segmentation"))
        self.decision = decision_service_pb2_grpc.DecisionServiceStub(channel_for("decision"))
        self.delivery = delivery_service_pb2_grpc.DeliveryServiceStub(channel_for("delivery"))


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
