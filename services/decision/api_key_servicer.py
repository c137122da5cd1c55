"""ApiKeyService: an app's operators create, list and revoke its API keys through the public
API (the table lives in the accounts schema; the SQL, shared with `nudge keys`, in
nudgelib.accounts). The app is always the calling key's app."""

from __future__ import annotations

import asyncpg

from nudge.decision.v1 import api_key_service_pb2 as pb
from nudge.decision.v1 import api_key_service_pb2_grpc as pb_grpc
from nudgelib import accounts
from nudgelib.calls import current_app_id
from nudgelib.errors import InvalidArgument, NotFound
from nudgelib.violations import FieldViolation
from nudgelib.pagination import created_after, created_page, page_size
from nudgelib.protoconv import set_timestamp

# More names than scopes exist is bad input, not a list to check one by one.
MAX_SCOPES = 10
MAX_KEY_ID_LENGTH = 64


def _message(key: accounts.ApiKey) -> pb.ApiKey:
    out = pb.ApiKey(key_id=key.id, label=key.label, scopes=list(key.scopes))
    set_timestamp(out.create_time, key.created_at)
    set_timestamp(out.revoke_time, key.revoked_at)
    return out


class ApiKeyServicer(pb_grpc.ApiKeyServiceServicer):
    def __init__(self, accounts_pool: asyncpg.Pool) -> None:
        self._pool = accounts_pool

    async def CreateApiKey(self, request: pb.CreateApiKeyRequest, context) -> pb.CreateApiKeyResponse:
        violations = []
        if (problem := accounts.label_problem(request.label)) is not None:
            violations.append(FieldViolation("label", problem))
        if len(request.scopes) > MAX_SCOPES:
            violations.append(FieldViolation("scopes", f"has {len(request.scopes)} entries; at most {MAX_SCOPES}"))
        else:
            try:
                scopes = accounts.scopes_of(list(request.scopes))
            except ValueError as exc:
                violations.append(FieldViolation("scopes", str(exc)))
        if violations:
            raise InvalidArgument(violations)
        async with self._pool.acquire() as conn:
            key, secret = await accounts.issue_key(conn, current_app_id(), request.label, scopes)
        return pb.CreateApiKeyResponse(key=_message(key), secret=secret)

    async def ListApiKeys(self, request: pb.ListApiKeysRequest, context) -> pb.ListApiKeysResponse:
        size = page_size(request.page_size)
        try:
            after = created_after(request.page_token)
        except ValueError:
            raise InvalidArgument.field("page_token", "is not a page token of this call") from None
        found = await accounts.list_keys(self._pool, current_app_id(), request.show_revoked, after, size + 1)
        page, token = created_page(found, size, lambda k: (k.created_at, k.id))
        return pb.ListApiKeysResponse(keys=[_message(k) for k in page], next_page_token=token)

    async def RevokeApiKey(self, request: pb.RevokeApiKeyRequest, context) -> pb.RevokeApiKeyResponse:
        if not request.key_id:
            raise InvalidArgument.field("key_id", "is required")
        if len(request.key_id) > MAX_KEY_ID_LENGTH:
            raise InvalidArgument.field("key_id", f"is longer than {MAX_KEY_ID_LENGTH} characters")
        async with self._pool.acquire() as conn:
            revoked = await accounts.revoke_key(conn, request.key_id, current_app_id(), keep_an_admin=True)
        if revoked is None:
            # Another app's key is answered as no key at all: its ids are not this app's to learn.
            raise NotFound(f"no API key {request.key_id!r} in this app")
        return pb.RevokeApiKeyResponse(key=_message(revoked[0]))
