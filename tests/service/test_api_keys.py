"""ApiKeyService against the session's real services: an admin key creates a key that works at
once, lists keys without their secrets, and revokes a key so that every service refuses it
within a bounded wait; another app's keys stay out of reach, the app's last admin key is not
revoked, and bad labels and scopes are INVALID_ARGUMENT naming the field. Through the edge
too, as JSON over HTTP."""

from __future__ import annotations

import asyncio
import hashlib
import json
import subprocess
import time
import urllib.error
import urllib.request

import asyncpg
import grpc
import pytest

from nudge.decision.v1 import api_key_service_pb2 as pb
from nudge.decision.v1 import api_key_service_pb2_grpc as pb_grpc
from nudge.decision.v1 import decision_service_pb2 as decision_pb
from nudge.delivery.v1 import delivery_service_pb2 as delivery_pb
from nudgelib import accounts
from nudgelib.config import SERVICES
from nudgelib.errors import FailedPrecondition
from nudgetools.cluster import free_ports
from nudgetools.edge import Edge
from tests.conftest import eventually
from tests.helpers import App, Clients, event, expect_error, track, violated_fields

UNAUTHENTICATED = grpc.StatusCode.UNAUTHENTICATED
# The README's promise is "within about a second"; the bound leaves a loaded machine room.
REVOKED_WITHIN = 3.0


def keys_stub(stack) -> pb_grpc.ApiKeyServiceStub:
    return pb_grpc.ApiKeyServiceStub(stack.channel("decision"))


def bearer(secret: str) -> tuple[tuple[str, str]]:
    return (("authorization", f"Bearer {secret}"),)


def key_id_of(secret: str) -> str:
    return secret.split("_")[1]


async def create(stack, app: App, label: str, *scopes: str) -> pb.CreateApiKeyResponse:
    return await keys_stub(stack).CreateApiKey(pb.CreateApiKeyRequest(label=label, scopes=list(scopes)),
                                               metadata=app.auth("admin"))


async def listed(stack, app: App, show_revoked: bool = True, key: str = "") -> list[pb.ApiKey]:
    out, token = [], ""
    while True:
        page = await keys_stub(stack).ListApiKeys(pb.ListApiKeysRequest(page_token=token, show_revoked=show_revoked),
                                                  metadata=bearer(key or app.keys["admin"]))
        out += page.keys
        if not (token := page.next_page_token):
            return out


async def test_a_new_key_works_at_once_is_listed_without_its_secret_and_once_revoked_every_service_refuses_it(
        stack, app):
    made = await create(stack, app, "ios-backend", "events:write", "messages:read", "events:write")
    key, secret = made.key, made.secret
    assert secret.startswith(f"nudge_{key.key_id}_") and len(secret) > 40
    assert (key.label, list(key.scopes)) == ("ios-backend", ["events:write", "messages:read"])
    assert key.create_time.seconds > 0 and not key.HasField("revoke_time")

    api = Clients(stack.channel)
    tracked = await api.ingestion.TrackEvents(track([event("ak-e1", "ak-u1", "signup")]), metadata=bearer(secret))
    assert tracked.accepted_count == 1
    await api.delivery.FetchMessages(delivery_pb.FetchMessagesRequest(user_id="ak-u1"), metadata=bearer(secret))
    # Its scopes hold: it is no admin key.
    await expect_error(api.decision.ListCampaigns(decision_pb.ListCampaignsRequest(), metadata=bearer(secret)),
                       grpc.StatusCode.PERMISSION_DENIED)

    # Listed with its label and scopes, and nowhere its secret or the hash stored for it.
    page = await keys_stub(stack).ListApiKeys(pb.ListApiKeysRequest(), metadata=app.auth("admin"))
    [found] = [k for k in page.keys if k.key_id == key.key_id]
    assert found == key
    wire = page.SerializeToString()
    assert secret.encode() not in wire and hashlib.sha256(secret.encode()).digest() not in wire
    assert secret.split("_", 2)[2].encode() not in wire
    # The app's own keys (admin, events, client: made together, so in id order) then this one.
    assert sorted(k.label for k in page.keys[:3]) == ["admin", "client", "events"]
    assert page.keys[3].label == "ios-backend" and len(page.keys) == 4

    revoked = (await keys_stub(stack).RevokeApiKey(pb.RevokeApiKeyRequest(key_id=key.key_id),
                                                   metadata=app.auth("admin"))).key
    assert revoked.HasField("revoke_time") and revoked.key_id == key.key_id
    started = time.monotonic()

    async def refused_by(call) -> bool:
        try:
            await call()
        except grpc.aio.AioRpcError as exc:
            return exc.code() == UNAUTHENTICATED
        return False

    calls = {
        "ingestion": lambda: api.ingestion.TrackEvents(track([event("ak-e2", "ak-u1", "signup")]),
                                                       metadata=bearer(secret)),
        "delivery": lambda: api.delivery.FetchMessages(delivery_pb.FetchMessagesRequest(user_id="ak-u1"),
                                                       metadata=bearer(secret)),
        "decision": lambda: api.decision.ListCampaigns(decision_pb.ListCampaignsRequest(), metadata=bearer(secret)),
    }
    for name, call in calls.items():
        await eventually(lambda c=call: refused_by(c), timeout=REVOKED_WITHIN, interval=0.02)
    assert time.monotonic() - started < REVOKED_WITHIN
    # And it stays refused (nothing read before the revocation brings it back).
    await asyncio.sleep(0.3)
    for call in calls.values():
        assert await refused_by(call)

    # Revoking it again changes nothing; the active list leaves it out, the whole list marks it.
    again = (await keys_stub(stack).RevokeApiKey(pb.RevokeApiKeyRequest(key_id=key.key_id),
                                                 metadata=app.auth("admin"))).key
    assert again == revoked
    assert key.key_id not in [k.key_id for k in await listed(stack, app, show_revoked=False)]
    assert [k for k in await listed(stack, app) if k.key_id == key.key_id] == [revoked]


async def test_keys_are_paged_oldest_first(stack, app):
    for i in range(3):
        await create(stack, app, f"paged-{i}", "events:write")
    stub, admin = keys_stub(stack), app.auth("admin")
    first = await stub.ListApiKeys(pb.ListApiKeysRequest(page_size=4), metadata=admin)
    # The app's first three keys were made in one transaction: the same time, then by id.
    assert sorted(k.label for k in first.keys[:3]) == ["admin", "client", "events"]
    assert [k.key_id for k in first.keys[:3]] == sorted(k.key_id for k in first.keys[:3])
    assert first.keys[3].label == "paged-0" and first.next_page_token
    second = await stub.ListApiKeys(pb.ListApiKeysRequest(page_size=4, page_token=first.next_page_token),
                                    metadata=admin)
    assert [k.label for k in second.keys] == ["paged-1", "paged-2"] and not second.next_page_token
    exc = await expect_error(stub.ListApiKeys(pb.ListApiKeysRequest(page_token="not-a-token"), metadata=admin),
                             grpc.StatusCode.INVALID_ARGUMENT)
    assert violated_fields(exc) == {"page_token"}


async def test_another_apps_keys_are_not_found_and_not_listed(stack, app, other_app):
    theirs = (await create(stack, other_app, "theirs", "admin")).key
    stub = keys_stub(stack)
    await expect_error(stub.RevokeApiKey(pb.RevokeApiKeyRequest(key_id=theirs.key_id), metadata=app.auth("admin")),
                       grpc.StatusCode.NOT_FOUND)
    await expect_error(stub.RevokeApiKey(pb.RevokeApiKeyRequest(key_id=key_id_of(other_app.keys["events"])),
                                         metadata=app.auth("admin")), grpc.StatusCode.NOT_FOUND)
    await expect_error(stub.RevokeApiKey(pb.RevokeApiKeyRequest(key_id="000000000000"), metadata=app.auth("admin")),
                       grpc.StatusCode.NOT_FOUND)
    mine = {k.key_id for k in await listed(stack, app)}
    assert theirs.key_id not in mine and key_id_of(other_app.keys["admin"]) not in mine
    # Nothing was revoked: their keys still work.
    await Clients(stack.channel).decision.ListCampaigns(decision_pb.ListCampaignsRequest(),
                                                        metadata=other_app.auth("admin"))
    assert not [k for k in await listed(stack, other_app) if k.HasField("revoke_time")]


async def test_the_apps_last_active_admin_key_is_not_revoked(stack, app, database_url):
    stub = keys_stub(stack)
    first = key_id_of(app.keys["admin"])
    exc = await expect_error(stub.RevokeApiKey(pb.RevokeApiKeyRequest(key_id=first), metadata=app.auth("admin")),
                             grpc.StatusCode.FAILED_PRECONDITION)
    assert "last active admin key" in exc.details()
    # With a second admin key, the first may go; the second is then the last.
    second = await create(stack, app, "ops", "admin")
    await stub.RevokeApiKey(pb.RevokeApiKeyRequest(key_id=first), metadata=bearer(second.secret))
    await expect_error(stub.RevokeApiKey(pb.RevokeApiKeyRequest(key_id=second.key.key_id),
                                         metadata=bearer(second.secret)), grpc.StatusCode.FAILED_PRECONDITION)
    # Two admin keys revoked at once (two connections, as two replicas of decision would):
    # one goes, the other stays, never both.
    third = await keys_stub(stack).CreateApiKey(pb.CreateApiKeyRequest(label="ops-2", scopes=["admin"]),
                                                metadata=bearer(second.secret))
    conns = [await asyncpg.connect(database_url) for _ in range(2)]
    try:
        both = await asyncio.gather(*(accounts.revoke_key(c, made.key.key_id, app.id, keep_an_admin=True)
                                      for c, made in zip(conns, (second, third))), return_exceptions=True)
    finally:
        for c in conns:
            await c.close()
    assert sorted(type(r).__name__ for r in both) == ["FailedPrecondition", "tuple"], both
    [survivor] = [made for made, r in zip((second, third), both) if isinstance(r, FailedPrecondition)]
    active = await listed(stack, app, show_revoked=False, key=survivor.secret)
    assert [k.key_id for k in active if "admin" in k.scopes] == [survivor.key.key_id]


async def test_only_admin_keys_manage_keys(stack, app, database_url):
    conn = await asyncpg.connect(database_url)
    try:
        public = (await accounts.create_key(conn, app.id, "web", (accounts.Scope.PUBLIC,))).secret
    finally:
        await conn.close()
    stub = keys_stub(stack)
    calls = (lambda m: stub.CreateApiKey(pb.CreateApiKeyRequest(label="x", scopes=["admin"]), metadata=m),
             lambda m: stub.ListApiKeys(pb.ListApiKeysRequest(), metadata=m),
             lambda m: stub.RevokeApiKey(pb.RevokeApiKeyRequest(key_id=key_id_of(app.keys["events"])), metadata=m))
    for metadata in (app.auth("events"), app.auth("client"), bearer(public)):
        for call in calls:
            await expect_error(call(metadata), grpc.StatusCode.PERMISSION_DENIED)
    # No key at all, or a made-up one.
    for metadata in ((), bearer("nudge_000000000000_nothing")):
        await expect_error(calls[1](metadata), UNAUTHENTICATED)
    assert sorted(k.label for k in await listed(stack, app)) == ["admin", "client", "events", "web"]


@pytest.mark.parametrize(("label", "scopes", "fields"), [
    ("ci", [], {"scopes"}),
    ("ci", ["root"], {"scopes"}),
    ("ci", ["events:write", "EVENTS_WRITE"], {"scopes"}),
    ("ci", ["public", "admin"], {"scopes"}),
    ("ci", ["admin"] * 11, {"scopes"}),
    ("", ["admin"], {"label"}),
    ("   ", ["admin"], {"label"}),
    ("x" * 101, ["admin"], {"label"}),
    ("two\nlines", ["admin"], {"label"}),
    ("", ["nope"], {"label", "scopes"}),
])
async def test_bad_labels_and_scopes_name_the_field_and_make_no_key(stack, app, label, scopes, fields):
    exc = await expect_error(keys_stub(stack).CreateApiKey(pb.CreateApiKeyRequest(label=label, scopes=scopes),
                                                           metadata=app.auth("admin")),
                             grpc.StatusCode.INVALID_ARGUMENT)
    assert violated_fields(exc) == fields
    assert len(await listed(stack, app)) == 3


async def test_a_label_of_the_longest_length_and_a_missing_key_id(stack, app):
    made = await create(stack, app, "é" * 100, "public")
    assert made.key.label == "é" * 100 and list(made.key.scopes) == ["public"]
    exc = await expect_error(keys_stub(stack).RevokeApiKey(pb.RevokeApiKeyRequest(), metadata=app.auth("admin")),
                             grpc.StatusCode.INVALID_ARGUMENT)
    assert violated_fields(exc) == {"key_id"}


async def test_an_app_holds_a_bounded_number_of_active_keys(app, database_url):
    conn = await asyncpg.connect(database_url)
    try:
        await accounts.issue_key(conn, app.id, "fourth", (accounts.Scope.EVENTS_WRITE,), max_active=4)
        with pytest.raises(FailedPrecondition, match="4 active API keys"):
            await accounts.issue_key(conn, app.id, "fifth", (accounts.Scope.EVENTS_WRITE,), max_active=4)
        await accounts.revoke_key(conn, key_id_of(app.keys["events"]), app.id)
        fifth, _ = await accounts.issue_key(conn, app.id, "fifth", (accounts.Scope.EVENTS_WRITE,), max_active=4)
    finally:
        await conn.close()
    assert fifth.label == "fifth"


# --- through the edge -------------------------------------------------------------------------

@pytest.fixture
async def edge(stack, tmp_path):
    e = Edge(*free_ports(2), tmp_path / "envoy.yaml")
    e.write_config({name: [stack.target(name)] for name in SERVICES})
    process = subprocess.Popen(e.command(), stdout=subprocess.DEVNULL, stderr=open(tmp_path / "envoy.log", "wb"))
    try:
        await e.wait_ready(alive=lambda: process.poll() is None)
        yield e
    finally:
        process.terminate()
        process.wait()


def post_json(target: str, path: str, body: dict, key: str) -> tuple[int, dict]:
    """One plain HTTP/1.1 POST of JSON, as curl or any backend without gRPC would send it."""
    request = urllib.request.Request(f"http://{target}{path}", data=json.dumps(body).encode(), method="POST",
                                     headers={"content-type": "application/json", "authorization": f"Bearer {key}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


async def test_keys_are_managed_as_json_through_the_edge(edge, app):
    service = "/nudge.decision.v1.ApiKeyService"

    async def post(method: str, body: dict, key: str = app.keys["admin"]) -> tuple[int, dict]:
        return await asyncio.to_thread(post_json, edge.target, f"{service}/{method}", body, key)

    status, made = await post("CreateApiKey", {"label": "json-backend", "scopes": ["messages:read"]})
    assert status == 200, made
    assert made["key"]["label"] == "json-backend" and made["secret"].startswith(f"nudge_{made['key']['keyId']}_")
    assert made["key"]["scopes"] == ["messages:read"] and "revokeTime" not in made["key"]
    status, page = await post("ListApiKeys", {"showRevoked": True})
    assert status == 200 and [k["label"] for k in page["keys"]][-1] == "json-backend"
    assert made["secret"] not in json.dumps(page)
    status, bad = await post("CreateApiKey", {"label": "x", "scopes": ["root"]})
    assert (status, bad["code"]) == (400, 3)
    [violation] = [d for d in bad["details"] if d["@type"].endswith("BadRequest")][0]["fieldViolations"]
    assert violation["field"] == "scopes"
    status, refused = await post("RevokeApiKey", {"keyId": key_id_of(app.keys["admin"])})
    assert (status, refused["code"]) == (400, 9)  # FAILED_PRECONDITION: the last admin key
    status, revoked = await post("RevokeApiKey", {"keyId": made["key"]["keyId"]})
    assert status == 200 and revoked["key"]["revokeTime"]

    async def refused_at_the_edge() -> bool:
        status, _ = await asyncio.to_thread(post_json, edge.target, "/nudge.delivery.v1.DeliveryService/FetchMessages",
                                            {"userId": "json-u1"}, made["secret"])
        return status == 401
    await eventually(refused_at_the_edge, timeout=REVOKED_WITHIN, interval=0.05)
