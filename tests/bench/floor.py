"""Floors for the benchmarks: grpc.aio servers that do nothing, or one committed write per
call, on the port given. Run as their own process, like the real services, so they are
measured with the same client from the same place.

    python -m tests.bench.floor PORT              # empty FetchMessages handler
    python -m tests.bench.floor PORT DATABASE_URL # one committed INSERT per call
    python -m tests.bench.floor PORT --to TARGET  # calls TARGET's FetchMessages, returns its reply:
                                                  # with an empty handler there, an empty chain of two
"""

from __future__ import annotations

import sys
import uuid

import asyncpg
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer

from nudge.delivery.v1 import delivery_service_pb2 as pb
from nudge.delivery.v1 import delivery_service_pb2_grpc as pb_grpc
from nudgelib import runtime

EMPTY = pb.FetchMessagesResponse()


class EmptyDelivery(pb_grpc.DeliveryServiceServicer):
    async def FetchMessages(self, request, context):
        return EMPTY


class ForwardingDelivery(pb_grpc.DeliveryServiceServicer):
    def __init__(self, target: str) -> None:
        self._stub = pb_grpc.DeliveryServiceStub(grpc.aio.insecure_channel(target))

    async def FetchMessages(self, request, context):
        return await self._stub.FetchMessages(request, timeout=5)


class OneWriteDelivery(pb_grpc.DeliveryServiceServicer):
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def FetchMessages(self, request, context):
        await self._pool.execute("INSERT INTO bench_floor_writes (id, user_id) VALUES ($1, $2)",
                                 uuid.uuid4().hex, request.user_id)
        return EMPTY


async def serve(port: int, database_url: str | None, forward_to: str | None = None) -> None:
    server = grpc.aio.server()
    if forward_to:
        pb_grpc.add_DeliveryServiceServicer_to_server(ForwardingDelivery(forward_to), server)
    elif database_url:
        pool = await asyncpg.create_pool(database_url, min_size=10, max_size=10)
        await pool.execute("CREATE TABLE IF NOT EXISTS bench_floor_writes (id text PRIMARY KEY, user_id text,"
                           " at timestamptz NOT NULL DEFAULT now())")
        pb_grpc.add_DeliveryServiceServicer_to_server(OneWriteDelivery(pool), server)
    else:
        pb_grpc.add_DeliveryServiceServicer_to_server(EmptyDelivery(), server)
    # SERVING under every public service's name, so an edge in front of it sends it calls.
    health = HealthServicer()
    for name in ("ingestion", "segmentation", "decision", "delivery"):
        await health.set(f"nudge.{name}.v1.{name.capitalize()}Service", health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[2] == "--to":
        runtime.run(serve(int(sys.argv[1]), None, sys.argv[3]))
    else:
        runtime.run(serve(int(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else None))
