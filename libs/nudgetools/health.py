"""Client side of gRPC health checking: wait until a service reports SERVING."""

from __future__ import annotations

import asyncio

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


async def status(target: str, timeout: float = 1.0) -> int | None:
    """The overall health status of the server at target, or None if it does not answer."""
    async with grpc.aio.insecure_channel(target) as channel:
        try:
            reply = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=timeout)
        except grpc.aio.AioRpcError:
            return None
        return reply.status


async def wait_serving(target: str, timeout: float = 60.0, alive=None) -> None:
    """Polls until target reports SERVING; `alive()` returning False stops early."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if alive is not None and not alive():
            raise RuntimeError(f"{target} exited before it was ready")
        if await status(target) == health_pb2.HealthCheckResponse.SERVING:
            return
        await asyncio.sleep(0.2)
    raise TimeoutError(f"{target} not SERVING after {timeout:.0f}s")
