"""The floor: a grpc.aio server whose FetchMessages does nothing, on the port given.

Run as its own process, like the real services, so both are measured with the same client
from the same place."""

from __future__ import annotations

import asyncio
import sys

import grpc

from nudge.delivery.v1 import delivery_service_pb2 as pb
from nudge.delivery.v1 import delivery_service_pb2_grpc as pb_grpc

EMPTY = pb.FetchMessagesResponse()


class EmptyDelivery(pb_grpc.DeliveryServiceServicer):
    async def FetchMessages(self, request, context):
        return EMPTY


async def serve(port: int) -> None:
    server = grpc.aio.server()
    pb_grpc.add_DeliveryServiceServicer_to_server(EmptyDelivery(), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1])))
