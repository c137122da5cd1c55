"""JSON over HTTP/1.1 through the real edge in front of the four real service processes: a
client with no gRPC (curl, a backend in any language, a page's fetch) tracks an event, gets
the triggered message, reports it and sees why a bad call failed; browsers' preflights are
answered for the allowed origin only; internal services stay out of reach."""

from __future__ import annotations

import asyncio
import http.client
import json
import socket
import threading
import time

import pytest
from google.protobuf import json_format

from nudgelib.interceptor import USER_TOKEN_HEADER
from tests.conftest import INTERNAL_TOKEN, eventually
from tests.e2e.conftest import running
from tests.helpers import App, create_app, make_campaign
from tests.service.test_user_tokens import public_key_of
from tests.signing import SigningKey

pytestmark = pytest.mark.e2e

SHOP = "https://shop.example"
INGESTION = "/nudge.ingestion.v1.IngestionService"
DELIVERY = "/nudge.delivery.v1.DeliveryService"
DECISION = "/nudge.decision.v1.DecisionService"


@pytest.fixture(scope="module")
async def edge(database_url, tmp_path_factory):
    """The services and the edge, browsers allowed from SHOP only; keep-alives on streams
    every second, so the stream test sees one without waiting 15 s."""
    async with running(database_url, tmp_path_factory.mktemp("edge-json"), edge=True, edge_origins=(SHOP,),
                       NUDGE_DELIVERY_KEEPALIVE_SECONDS="1") as cluster:
        yield cluster


@pytest.fixture(scope="module")
async def shop(database_url) -> App:
    return await create_app(database_url)


class Reply:
    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body

    def json(self):
        assert self.headers.get("content-type") == "application/json", (self.status, self.headers, self.body)
        return json.loads(self.body)


def _request(target: str, method: str, path: str, body, headers: dict[str, str]) -> Reply:
    host, _, port = target.rpartition(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
        sent = {"content-type": "application/json", **headers} if data is not None else headers
        connection.request(method, path, body=data, headers=sent)
        response = connection.getresponse()
        return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
    finally:
        connection.close()


async def call(edge, path: str, body=None, key: str = "", method: str = "POST", **headers: str) -> Reply:
    """One plain HTTP/1.1 request to the edge (in a thread: the test's loop keeps running)."""
    sent = {k.replace("_", "-"): v for k, v in headers.items()}
    if key:
        sent["authorization"] = f"Bearer {key}"
    return await asyncio.to_thread(_request, edge.edge.target, method, path, body, sent)


def violations(status: dict) -> dict[str, str]:
    """The BadRequest field violations in a google.rpc.Status body: field -> description."""
    found = {}
    for detail in status.get("details", []):
        if detail["@type"] == "type.googleapis.com/google.rpc.BadRequest":
            found.update({v["field"]: v["description"] for v in detail["fieldViolations"]})
    return found


def reason(status: dict) -> str:
    [info] = [d for d in status.get("details", []) if d["@type"] == "type.googleapis.com/google.rpc.ErrorInfo"]
    return info["reason"]


async def test_an_event_then_its_message_and_the_report_all_as_json(edge, shop):
    # The campaign itself goes in as JSON too (an admin RPC of decision): triggered by signup.
    campaign = json.loads(json_format.MessageToJson(make_campaign("JSON welcome", on="signup")))
    created = await call(edge, f"{DECISION}/CreateCampaign", {"campaign": campaign}, shop.keys["admin"])
    assert created.status == 200, created.body
    assert created.json()["campaign"]["name"] == "JSON welcome"

    tracked = await call(edge, f"{INGESTION}/TrackEvents",
                         {"events": [{"eventId": "json-e1", "userId": "json-u1", "name": "signup",
                                      "properties": {"plan": "pro"}}]}, shop.keys["events"])
    assert (tracked.status, tracked.json()) == (200, {"acceptedCount": 1})

    async def fetched():
        reply = await call(edge, f"{DELIVERY}/FetchMessages", {"userId": "json-u1", "platform": "PLATFORM_WEB"},
                           shop.keys["client"])
        assert reply.status == 200, reply.body
        return reply.json().get("messages")

    (message,) = await eventually(fetched, timeout=10, interval=0.1)
    assert message["content"]["title"] == "Welcome to Nudge!"  # make_campaign's content
    assert message["content"]["layout"] == "LAYOUT_MODAL"  # enums by name, fields in lowerCamelCase
    assert message["campaignId"] == created.json()["campaign"]["id"]

    reported = await call(edge, f"{DELIVERY}/ReportInteraction",
                          {"messageId": message["messageId"], "userId": "json-u1", "type": "INTERACTION_TYPE_IMPRESSION"},
                          shop.keys["client"])
    assert reported.status == 200, reported.body
    # Handed out once: the next pull is empty, printed as the empty object.
    again = await call(edge, f"{DELIVERY}/FetchMessages", {"userId": "json-u1"}, shop.keys["client"])
    assert (again.status, again.json()) == (200, {})


async def test_a_bad_request_is_400_naming_the_field(edge, shop):
    reply = await call(edge, f"{DELIVERY}/FetchMessages", {"userId": ""}, shop.keys["client"])
    assert reply.status == 400
    status = reply.json()
    assert status["code"] == 3  # INVALID_ARGUMENT, as google.rpc.Status
    assert "user_id" in violations(status), status
    assert reason(status) == "INVALID_ARGUMENT"

    reply = await call(edge, f"{DELIVERY}/ReportInteraction", {"userId": "json-u1"}, shop.keys["client"])
    assert reply.status == 400
    assert {"message_id", "type"} <= set(violations(reply.json()))

    # What is not the request's JSON at all stops at the edge, also as 400 and saying why.
    for body, said in ((b"{not json", ""), ({"userId": "u1", "limit": "many"}, "limit")):
        reply = await call(edge, f"{DELIVERY}/FetchMessages", body, shop.keys["client"])
        assert reply.status == 400, (body, reply.status, reply.body)
        assert said.encode() in reply.body
    # A field the request does not have is ignored (as proto3 JSON parsers may): a misspelt
    # one shows as the field it should have been, missing.
    misspelt = await call(edge, f"{DELIVERY}/FetchMessages", {"userID": "u1"}, shop.keys["client"])
    assert misspelt.status == 400 and "user_id" in violations(misspelt.json())


async def test_without_a_valid_key_401_and_outside_its_scope_403(edge, shop):
    body = {"events": [{"eventId": "json-e2", "userId": "json-u2", "name": "signup"}]}
    missing = await call(edge, f"{INGESTION}/TrackEvents", body)
    assert missing.status == 401
    assert missing.json()["code"] == 16 and "authorization" in missing.json()["message"]
    wrong = await call(edge, f"{INGESTION}/TrackEvents", body, "nk_not-a-key")
    assert (wrong.status, wrong.json()["code"]) == (401, 16)
    # The mobile backend's key reads messages; it sends no events.
    denied = await call(edge, f"{INGESTION}/TrackEvents", body, shop.keys["client"])
    assert (denied.status, denied.json()["code"]) == (403, 7)


async def test_the_user_token_header_reaches_the_services(edge, shop, database_url):
    signer = SigningKey("ES256", kid="json-web")
    # The app registers its signing key through the edge too (decision hosts the key service).
    added = await call(edge, "/nudge.decision.v1.UserTokenKeyService/AddUserTokenKey",
                       {"publicKey": signer.public_pem, "keyId": signer.kid}, shop.keys["admin"])
    assert added.status == 200, added.body
    public = await public_key_of(database_url, shop)
    path = f"{DELIVERY}/FetchMessages"

    async def ada_gets_hers() -> bool:
        reply = await call(edge, path, {"userId": "json-ada"}, public, **{USER_TOKEN_HEADER: signer.token("json-ada")})
        return reply.status == 200
    # Delivery learns of the new key within moments (its key cache is told of changes).
    await eventually(ada_gets_hers, timeout=10, interval=0.2)
    # The same token for another user's messages, or none: refused with the reason.
    other = await call(edge, path, {"userId": "json-bob"}, public, **{USER_TOKEN_HEADER: signer.token("json-ada")})
    assert (other.status, other.json()["code"]) == (403, 7)
    none = await call(edge, path, {"userId": "json-ada"}, public)
    assert none.status == 401 and reason(none.json())


def upstream_calls(stats: dict[str, int]) -> int:
    return sum(v for k, v in stats.items() if k.startswith("cluster.") and k.endswith(".upstream_rq_total"))


async def test_internal_services_health_and_unknown_paths_are_404(edge, shop):
    internal = {"authorization": f"Bearer {INTERNAL_TOKEN}"}
    before = upstream_calls(await edge.edge.stats())
    for path in ("/nudge.delivery.v1.DeliveryInternalService/EraseUser",
                 "/nudge.decision.v1.DecisionInternalService/Decide",
                 "/grpc.health.v1.Health/Check",
                 "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
                 f"{DELIVERY}/NoSuchMethod",
                 "/nudge.delivery.v1.DeliveryService"):
        reply = await call(edge, path, {"appId": shop.id, "userId": "json-u1"}, **internal)
        assert reply.status == 404, (path, reply.status, reply.body)
    # A public method, but not as POST.
    reply = await call(edge, f"{DELIVERY}/FetchMessages", None, shop.keys["client"], method="GET")
    assert reply.status == 404
    # The edge answered them all itself: none reached a service.
    assert upstream_calls(await edge.edge.stats()) == before


async def test_preflights_are_answered_for_the_allowed_origin_only(edge, shop):
    preflight = {"access_control_request_method": "POST",
                 "access_control_request_headers": f"authorization,content-type,{USER_TOKEN_HEADER}"}
    allowed = await call(edge, f"{DELIVERY}/FetchMessages", method="OPTIONS", origin=SHOP, **preflight)
    assert allowed.status == 200
    assert allowed.headers["access-control-allow-origin"] == SHOP
    assert "POST" in allowed.headers["access-control-allow-methods"]
    assert {"authorization", "content-type", USER_TOKEN_HEADER} <= {
        h.strip() for h in allowed.headers["access-control-allow-headers"].split(",")}

    refused = await call(edge, f"{DELIVERY}/FetchMessages", method="OPTIONS", origin="https://evil.example",
                         **preflight)
    assert not any(h.startswith("access-control-allow") for h in refused.headers), refused.headers
    # A look-alike (the allowed origin as a prefix) is another origin.
    lookalike = await call(edge, f"{DELIVERY}/FetchMessages", method="OPTIONS", origin=SHOP + ".evil.example",
                           **preflight)
    assert "access-control-allow-origin" not in lookalike.headers

    # The call itself: the browser may read the answer from SHOP only.
    body = {"userId": "json-nobody"}
    mine = await call(edge, f"{DELIVERY}/FetchMessages", body, shop.keys["client"], origin=SHOP)
    assert mine.status == 200 and mine.headers["access-control-allow-origin"] == SHOP
    theirs = await call(edge, f"{DELIVERY}/FetchMessages", body, shop.keys["client"], origin="https://evil.example")
    assert "access-control-allow-origin" not in theirs.headers


def _subscribe(target: str, key: str, user: str, stop: threading.Event, lines: list[dict]) -> None:
    """Holds a JSON Subscribe until `stop` is set (seen at the next line: a keep-alive comes
    every second) or a minute passes, noting each line it reads."""
    host, _, port = target.rpartition(":")
    body = json.dumps({"userId": user}).encode()
    with socket.create_connection((host, int(port)), timeout=60) as s:
        s.sendall(f"POST {DELIVERY}/Subscribe HTTP/1.1\r\nhost: {target}\r\ncontent-type: application/json\r\n"
                  f"authorization: Bearer {key}\r\ncontent-length: {len(body)}\r\n\r\n".encode() + body)
        reader = s.makefile("rb")
        head = []
        while (line := reader.readline()) not in (b"\r\n", b""):
            head.append(line.decode().strip().lower())
        assert head[0].startswith("http/1.1 200"), head
        assert "transfer-encoding: chunked" in head and "content-type: application/json" in head, head
        start = time.monotonic()
        pending = b""
        while not stop.is_set() and time.monotonic() - start < 60:
            size = reader.readline()
            if not size.strip():
                break
            pending += reader.read(int(size.strip(), 16))
            reader.readline()  # the chunk's CRLF
            while b"\n" in pending:
                line, _, pending = pending.partition(b"\n")
                if line.strip():
                    lines.append(json.loads(line))


async def test_subscribe_streams_one_json_object_per_line(edge, shop):
    campaign = json.loads(json_format.MessageToJson(make_campaign("JSON stream", on="json_stream_start")))
    assert (await call(edge, f"{DECISION}/CreateCampaign", {"campaign": campaign}, shop.keys["admin"])).status == 200
    lines: list[dict] = []
    stop = threading.Event()
    held = asyncio.ensure_future(asyncio.to_thread(_subscribe, edge.edge.target, shop.keys["client"], "json-s1", stop,
                                                   lines))

    def read() -> list[dict]:
        if held.done():
            held.result()  # the stream failed: say how
            raise AssertionError(f"the stream ended by itself: {lines}")
        return list(lines)

    async def kept_alive() -> bool:
        return any("keepAliveTime" in line for line in read())

    async def kept_alive_after_the_message() -> bool:
        got = read()
        first = next((i for i, line in enumerate(got) if "message" in line), len(got))
        return any("keepAliveTime" in line for line in got[first + 1:])

    try:
        # The stream is open and delivery holds it: its keep-alives begin once it is registered.
        await eventually(kept_alive, timeout=30)
        tracked = await call(edge, f"{INGESTION}/TrackEvents",
                             {"events": [{"eventId": "json-s1", "userId": "json-s1", "name": "json_stream_start"}]},
                             shop.keys["events"])
        assert tracked.status == 200
        # Pushed as it happened, not when the stream ends (a Subscribe never ends by itself, and
        # this one only once the test is done): the message, then a keep-alive more after it.
        await eventually(kept_alive_after_the_message, timeout=30)
    finally:
        stop.set()
        await held
    messages = [line["message"] for line in lines if "message" in line]
    assert [m["content"]["title"] for m in messages] == ["Welcome to Nudge!"], lines


async def test_a_stream_refused_at_once_is_400_and_a_client_stream_takes_a_json_array(edge, shop):
    bad = await call(edge, f"{DELIVERY}/Subscribe", {"userId": ""}, shop.keys["client"])
    assert bad.status == 400 and "user_id" in violations(bad.json())
    # StreamEvents: the batches as one JSON array, each acknowledgement on its own line.
    batches = [{"batchId": f"b{i}", "events": [{"eventId": f"json-b{i}", "userId": "json-b", "name": "tap"}]}
               for i in (1, 2)]
    reply = await call(edge, f"{INGESTION}/StreamEvents", batches, shop.keys["events"])
    assert reply.status == 200
    acks = [json.loads(line) for line in reply.body.splitlines()]
    assert acks == [{"batchId": "b1", "acceptedCount": 1}, {"batchId": "b2", "acceptedCount": 1}]
