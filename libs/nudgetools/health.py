"""Client side of gRPC health checking: wait until a service reports SERVING."""

from __future__ import annotations

import asyncio

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


async def status(target: str, timeout: float = 1.0, credentials: grpc.ChannelCredentials | None = None,
                 options: list[tuple[str, object]] | None = None) -> int | None:
    """The overall health status of the server at target, or None if it does not answer (or
    refuses the connection: TLS without `credentials`, or credentials it does not accept)."""
    channel = (grpc.aio.secure_channel(target, credentials, options=options) if credentials is not None
               else grpc.aio.insecure_channel(target, options=options))
    async with channel:
        try:
            reply = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=timeout)
        except grpc.aio.AioRpcError:
            return None
        return reply.status


async def wait_serving(target: str, timeout: float = 60.0, alive=None,
                       credentials: grpc.ChannelCredentials | None = None) -> None:
    """Polls until target reports SERVING; `alive()` returning False stops early."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if alive is not None and not alive():
            raise RuntimeError(f"{target} exited before it was ready")
        if await status(target, credentials=credentials) == health_pb2.HealthCheckResponse.SERVING:
            return
        await asyncio.sleep(0.2)
    raise TimeoutError(f"{target} not SERVING after {timeout:.0f}s")


def main(argv: list[str] | None = None) -> int:
    """`python -m nudgetools.health PORT [SERVICE]`: a container's health probe. Exit status 0
    only if the server on 127.0.0.1:PORT reports SERVING. With NUDGE_TLS_CA_FILE (and the
    service's own certificate, NUDGE_TLS_CERT_FILE and NUDGE_TLS_KEY_FILE) it speaks TLS and
    checks the certificate for SERVICE's name, as the service's peers do."""
    import argparse
    import os

    from nudgelib.tls import client_credentials, peer_options

    p = argparse.ArgumentParser(prog="python -m nudgetools.health")
    p.add_argument("port", type=int)
    p.add_argument("service", nargs="?", default="", help="the name the certificate must have (with TLS)")
    args = p.parse_args(argv)
    credentials = client_credentials(os.environ)
    target = f"127.0.0.1:{args.port}"
    options = [("grpc.enable_http_proxy", 0)]
    if credentials is not None and args.service:
        options += peer_options(args.service)
    serving = asyncio.run(status(target, 3.0, credentials, options)) == health_pb2.HealthCheckResponse.SERVING
    return 0 if serving else 1


if __name__ == "__main__":
    raise SystemExit(main())
