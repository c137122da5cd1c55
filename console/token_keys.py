"""The app's user-token signing keys (UserTokenKeyService: decision's port, or the edge),
which the Python client does not wrap: a stub on a channel of its own, with the session's
admin key and the console's deadline on every call."""

from __future__ import annotations

from typing import Any

import grpc

from nudge_client.client import CHANNEL_OPTIONS
from nudge_client._proto.nudge.decision.v1 import user_token_key_service_pb2 as pb
from nudge_client._proto.nudge.decision.v1 import user_token_key_service_pb2_grpc as pb_grpc


class TokenKeys:
    def __init__(self, target: str | dict[str, str], key: str, timeout: float,
                 credentials: grpc.ChannelCredentials | None = None) -> None:
        address = target if isinstance(target, str) else target["decision"]
        self._channel = (grpc.aio.secure_channel(address, credentials, options=CHANNEL_OPTIONS) if credentials
                         else grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS))
        self._stub = pb_grpc.UserTokenKeyServiceStub(self._channel)
        self._metadata = (("authorization", f"Bearer {key}"),)
        self._timeout = timeout

    async def list(self, show_revoked: bool = True) -> list[Any]:
        out, token = [], ""
        while True:
            got = await self._stub.ListUserTokenKeys(pb.ListUserTokenKeysRequest(
                page_size=100, page_token=token, show_revoked=show_revoked),
                metadata=self._metadata, timeout=self._timeout)
            out += got.keys
            if not (token := got.next_page_token):
                return out

    async def add(self, public_key: str, key_id: str) -> Any:
        return await self._stub.AddUserTokenKey(pb.AddUserTokenKeyRequest(public_key=public_key, key_id=key_id),
                                                metadata=self._metadata, timeout=self._timeout)

    async def revoke(self, key_id: str) -> Any:
        return await self._stub.RevokeUserTokenKey(pb.RevokeUserTokenKeyRequest(key_id=key_id),
                                                   metadata=self._metadata, timeout=self._timeout)

    async def close(self) -> None:
        await self._channel.close()
