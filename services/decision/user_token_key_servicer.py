"""UserTokenKeyService: an app's operators register, list and revoke the public keys its
backend signs user tokens with (the table lives in the accounts schema: nudgelib.user_token_keys)."""

from __future__ import annotations

import asyncpg

from nudge.decision.v1 import user_token_key_service_pb2 as pb
from nudge.decision.v1 import user_token_key_service_pb2_grpc as pb_grpc
from nudgelib import user_token_keys as keys
from nudgelib.calls import current_app_id
from nudgelib.errors import InvalidArgument, NotFound
from nudgelib.pagination import created_after, created_page, page_size
from nudgelib.protoconv import set_timestamp
from nudgelib.user_tokens import BadPublicKey, KID_PATTERN, parse_public_key

MAX_PUBLIC_KEY_LENGTH = 16_384
_ALGORITHMS = {"ES256": pb.USER_TOKEN_ALGORITHM_ES256, "RS256": pb.USER_TOKEN_ALGORITHM_RS256}


def _message(key: keys.TokenKey) -> pb.UserTokenKey:
    out = pb.UserTokenKey(key_id=key.kid, algorithm=_ALGORITHMS[key.algorithm], public_key_pem=key.public_key_pem)
    set_timestamp(out.create_time, key.created_at)
    set_timestamp(out.revoke_time, key.revoked_at)
    return out


class UserTokenKeyServicer(pb_grpc.UserTokenKeyServiceServicer):
    def __init__(self, accounts: asyncpg.Pool) -> None:
        self._pool = accounts

    async def AddUserTokenKey(self, request: pb.AddUserTokenKeyRequest, context) -> pb.AddUserTokenKeyResponse:
        app_id = current_app_id()
        if len(request.public_key) > MAX_PUBLIC_KEY_LENGTH:
            raise InvalidArgument.field("public_key", f"is longer than {MAX_PUBLIC_KEY_LENGTH} characters")
        if request.key_id and not KID_PATTERN.fullmatch(request.key_id):
            raise InvalidArgument.field("key_id", "is 1 to 128 letters, digits or . _ : -")
        try:
            parsed = parse_public_key(request.public_key, request.key_id)
        except BadPublicKey as exc:
            # Without a key_id, a JWK's own kid may be the bad part; it is in public_key.
            raise InvalidArgument.field("public_key", str(exc)) from None
        async with self._pool.acquire() as conn:
            key, created = await keys.add_key(conn, app_id, parsed)
        return pb.AddUserTokenKeyResponse(key=_message(key), created=created)

    async def ListUserTokenKeys(self, request: pb.ListUserTokenKeysRequest, context) -> pb.ListUserTokenKeysResponse:
        size = page_size(request.page_size)
        try:
            after = created_after(request.page_token)
        except ValueError:
            raise InvalidArgument.field("page_token", "is not a page token of this call") from None
        found = await keys.list_keys(self._pool, current_app_id(), request.show_revoked, after, size + 1)
        page, token = created_page(found, size, lambda k: (k.created_at, k.kid))
        return pb.ListUserTokenKeysResponse(keys=[_message(k) for k in page], next_page_token=token)

    async def RevokeUserTokenKey(self, request: pb.RevokeUserTokenKeyRequest,
                                 context) -> pb.RevokeUserTokenKeyResponse:
        if not request.key_id:
            raise InvalidArgument.field("key_id", "is required")
        revoked = await keys.revoke_key(self._pool, request.key_id, current_app_id())
        if not revoked:
            raise NotFound(f"no user token key {request.key_id!r} in this app")
        return pb.RevokeUserTokenKeyResponse(key=_message(revoked[0]))
