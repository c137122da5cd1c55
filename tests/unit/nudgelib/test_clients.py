"""What a peer's failure becomes for the caller of a public RPC."""

from __future__ import annotations

import grpc
import pytest

from nudgelib.clients import Peer
from nudgelib.errors import Unavailable


def failing(code: grpc.StatusCode):
    async def method(request, **kwargs):
        raise grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details="no")

    return method


@pytest.mark.parametrize("code", [grpc.StatusCode.INTERNAL, grpc.StatusCode.INVALID_ARGUMENT,
                                  grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED])
async def test_an_answer_the_caller_cannot_go_on_without_fails_as_unavailable_naming_the_peer(code):
    peer = Peer("segmentation", "127.0.0.1:9", "t" * 32)
    try:
        with pytest.raises(Unavailable, match="segmentation"):
            await peer.ask(failing(code), object(), "check the campaign's segments")
    finally:
        await peer.close()
