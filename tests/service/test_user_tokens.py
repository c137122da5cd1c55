"""Signed user tokens through the real services: an app registers the public half of its
backend's signing key (UserTokenKeyService), a public key with a token reaches only the token's
user and only the five RPCs open to it, every bad token is refused with its reason, a revoked
key is refused on every replica, and backend keys work as before."""

from __future__ import annotations

import asyncio
import re
import textwrap
import time
from pathlib import Path

import asyncpg
import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from nudge.decision.v1 import decision_internal_service_pb2 as decision_internal_pb
from nudge.decision.v1 import decision_internal_service_pb2_grpc as decision_internal_grpc
from nudge.decision.v1 import decision_service_pb2 as decision_pb
from nudge.decision.v1 import user_token_key_service_pb2 as keys_pb
from nudge.decision.v1 import user_token_key_service_pb2_grpc as keys_grpc
from nudge.delivery.v1 import delivery_service_pb2 as delivery_pb
from nudge.delivery.v1 import delivery_service_pb2_grpc as delivery_grpc
from nudge.ingestion.v1 import ingestion_service_pb2 as ingestion_pb
from nudge.segmentation.v1 import segmentation_service_pb2 as seg_pb
from nudgelib import accounts
from nudgelib.interceptor import USER_TOKEN_HEADER
from services.delivery.server import SPEC as DELIVERY
from tests.conftest import INTERNAL_TOKEN, eventually, start_host
from tests.helpers import App, Clients, create_campaign, event, expect_error, make_campaign, track, user_profile
from tests.signing import SigningKey

DENIED = grpc.StatusCode.PERMISSION_DENIED
UNAUTHENTICATED = grpc.StatusCode.UNAUTHENTICATED


def reason_of(exc: grpc.aio.AioRpcError) -> str:
    """The ErrorInfo reason the error carries."""
    for key, value in exc.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            for detail in status_pb2.Status.FromString(value).details:
                if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                    info = error_details_pb2.ErrorInfo()
                    detail.Unpack(info)
                    return info.reason
    raise AssertionError(f"no ErrorInfo in {exc.code().name}: {exc.details()}")


async def refused(call, code: grpc.StatusCode) -> str:
    """The reason of a call that must fail with `code`."""
    return reason_of(await expect_error(call, code))


class PublicClient:
    """What ships in an app: the app's public key, and the token its backend gave this user."""

    def __init__(self, app: App, public_key: str, token: str = "") -> None:
        self.app = app
        self.public_key = public_key
        self.token = token

    def auth(self, token: str | None = None) -> tuple[tuple[str, str], ...]:
        token = self.token if token is None else token
        meta = (("authorization", f"Bearer {self.public_key}"),)
        return meta + ((USER_TOKEN_HEADER, token),) if token else meta


async def public_key_of(database_url: str, app: App) -> str:
    conn = await asyncpg.connect(database_url)
    try:
        return (await accounts.create_key(conn, app.id, "web", (accounts.Scope.PUBLIC,))).secret
    finally:
        await conn.close()


def key_stub(stack) -> keys_grpc.UserTokenKeyServiceStub:
    return keys_grpc.UserTokenKeyServiceStub(stack.channel("decision"))


async def register(stack, app: App, key: SigningKey) -> keys_pb.UserTokenKey:
    reply = await key_stub(stack).AddUserTokenKey(
        keys_pb.AddUserTokenKeyRequest(public_key=key.public_pem, key_id=key.kid), metadata=app.auth("admin"))
    return reply.key


@pytest.fixture
async def signer(stack, app) -> SigningKey:
    key = SigningKey("ES256", kid="web-2026")
    await register(stack, app, key)
    return key


@pytest.fixture
async def client(database_url, app) -> PublicClient:
    return PublicClient(app, await public_key_of(database_url, app))


# --- registering keys -----------------------------------------------------------------------

async def test_an_admin_adds_lists_and_revokes_keys(stack, app, other_app):
    stub = key_stub(stack)
    admin = app.auth("admin")
    es = SigningKey("ES256", kid="es-key")
    added = await stub.AddUserTokenKey(keys_pb.AddUserTokenKeyRequest(public_key=es.public_pem, key_id="es-key"),
                                       metadata=admin)
    assert added.created and added.key.key_id == "es-key"
    assert added.key.algorithm == keys_pb.USER_TOKEN_ALGORITHM_ES256
    assert added.key.create_time.seconds > 0 and not added.key.HasField("revoke_time")
    # A JWK without an id is named by its thumbprint; registering it again is a harmless retry.
    rs = SigningKey("RS256")
    jwk = await stub.AddUserTokenKey(keys_pb.AddUserTokenKeyRequest(public_key=rs.public_jwk()), metadata=admin)
    assert jwk.created and len(jwk.key.key_id) == 43 and jwk.key.algorithm == keys_pb.USER_TOKEN_ALGORITHM_RS256
    again = await stub.AddUserTokenKey(keys_pb.AddUserTokenKeyRequest(public_key=rs.public_pem), metadata=admin)
    assert not again.created and again.key == jwk.key

    # Another key under a taken id, or something that is no public key, is refused.
    await expect_error(stub.AddUserTokenKey(keys_pb.AddUserTokenKeyRequest(
        public_key=SigningKey("ES256").public_pem, key_id="es-key"), metadata=admin), grpc.StatusCode.ALREADY_EXISTS)
    bad = await expect_error(stub.AddUserTokenKey(keys_pb.AddUserTokenKeyRequest(public_key=es.private_pem),
                                                  metadata=admin), grpc.StatusCode.INVALID_ARGUMENT)
    assert "public_key" in bad.details() and "private key" in bad.details()
    await expect_error(stub.AddUserTokenKey(keys_pb.AddUserTokenKeyRequest(public_key=es.public_pem, key_id="a b"),
                                            metadata=admin), grpc.StatusCode.INVALID_ARGUMENT)

    first = await stub.ListUserTokenKeys(keys_pb.ListUserTokenKeysRequest(page_size=1), metadata=admin)
    second = await stub.ListUserTokenKeys(keys_pb.ListUserTokenKeysRequest(page_size=1, page_token=first.next_page_token),
                                          metadata=admin)
    assert [k.key_id for k in first.keys] + [k.key_id for k in second.keys] == ["es-key", jwk.key.key_id]
    assert second.next_page_token == ""

    revoked = await stub.RevokeUserTokenKey(keys_pb.RevokeUserTokenKeyRequest(key_id="es-key"), metadata=admin)
    assert revoked.key.HasField("revoke_time")
    twice = await stub.RevokeUserTokenKey(keys_pb.RevokeUserTokenKeyRequest(key_id="es-key"), metadata=admin)
    assert twice.key.revoke_time == revoked.key.revoke_time
    active = await stub.ListUserTokenKeys(keys_pb.ListUserTokenKeysRequest(), metadata=admin)
    assert [k.key_id for k in active.keys] == [jwk.key.key_id]
    listed = await stub.ListUserTokenKeys(keys_pb.ListUserTokenKeysRequest(show_revoked=True), metadata=admin)
    assert [k.key_id for k in listed.keys] == ["es-key", jwk.key.key_id]
    # A revoked id is never reused, so its tokens stay refused.
    await expect_error(stub.AddUserTokenKey(keys_pb.AddUserTokenKeyRequest(public_key=es.public_pem, key_id="es-key"),
                                            metadata=admin), grpc.StatusCode.FAILED_PRECONDITION)

    # Another app sees none of it and cannot revoke it; keys other than admin cannot manage keys.
    theirs = await stub.ListUserTokenKeys(keys_pb.ListUserTokenKeysRequest(show_revoked=True),
                                          metadata=other_app.auth("admin"))
    assert list(theirs.keys) == []
    await expect_error(stub.RevokeUserTokenKey(keys_pb.RevokeUserTokenKeyRequest(key_id=jwk.key.key_id),
                                               metadata=other_app.auth("admin")), grpc.StatusCode.NOT_FOUND)
    for label in ("client", "events"):
        await expect_error(stub.ListUserTokenKeys(keys_pb.ListUserTokenKeysRequest(), metadata=app.auth(label)),
                           DENIED)


async def test_an_app_holds_at_most_ten_active_keys(stack, app):
    for i in range(10):
        await register(stack, app, SigningKey("ES256", kid=f"k{i}"))
    await expect_error(register(stack, app, SigningKey("ES256", kid="k10")), grpc.StatusCode.FAILED_PRECONDITION)
    await key_stub(stack).RevokeUserTokenKey(keys_pb.RevokeUserTokenKeyRequest(key_id="k0"), metadata=app.auth("admin"))
    await register(stack, app, SigningKey("ES256", kid="k10"))


# --- what a public key with a token may do --------------------------------------------------

async def test_the_tokens_user_can_identify_track_fetch_subscribe_and_report(stack, app, signer, client):
    api = Clients(stack.channel)
    client.token = signer.token("shopper")
    campaign = await create_campaign(api, app, make_campaign("Cart reminder", on="cart_abandoned"))

    await api.ingestion.Identify(ingestion_pb.IdentifyRequest(user_id="shopper", locale="fr-FR"),
                                 metadata=client.auth())
    stream = api.delivery.Subscribe(delivery_pb.SubscribeRequest(user_id="shopper"), metadata=client.auth())
    try:
        await asyncio.wait_for(stream.initial_metadata(), 5)
        reply = await api.ingestion.TrackEvents(track([event("c1", "shopper", "cart_abandoned"),
                                                       event("c2", "shopper", "screen_view")]),
                                                metadata=client.auth())
        assert reply.accepted_count == 2
        item = await asyncio.wait_for(stream.read(), 10)
        assert item.message.campaign_id == campaign.id
    finally:
        stream.cancel()
    report = await api.delivery.ReportInteraction(delivery_pb.ReportInteractionRequest(
        message_id=item.message.message_id, user_id="shopper", type=delivery_pb.INTERACTION_TYPE_IMPRESSION),
        metadata=client.auth())
    assert report.recorded
    await api.delivery.FetchMessages(delivery_pb.FetchMessagesRequest(user_id="shopper"), metadata=client.auth())
    profile = await eventually(lambda: user_profile(api, app, "shopper"))
    assert profile.locale == "fr-FR"


async def test_another_users_data_is_refused(stack, app, signer, client):
    api = Clients(stack.channel)
    client.token = signer.token("alice")
    for call in (
        api.delivery.FetchMessages(delivery_pb.FetchMessagesRequest(user_id="bob"), metadata=client.auth()),
        api.delivery.ReportInteraction(delivery_pb.ReportInteractionRequest(
            message_id="m", user_id="bob", type=delivery_pb.INTERACTION_TYPE_CLICK), metadata=client.auth()),
        api.ingestion.Identify(ingestion_pb.IdentifyRequest(user_id="bob"), metadata=client.auth()),
        # One event of another user refuses the whole batch: nothing of it is stored.
        api.ingestion.TrackEvents(track([event("a1", "alice", "signup"), event("b1", "bob", "signup")]),
                                  metadata=client.auth()),
        # A public client always names its user.
        api.delivery.FetchMessages(delivery_pb.FetchMessagesRequest(), metadata=client.auth()),
    ):
        assert await refused(call, DENIED) == "USER_TOKEN_WRONG_USER"
    stream = api.delivery.Subscribe(delivery_pb.SubscribeRequest(user_id="bob"), metadata=client.auth())
    assert await refused(stream.read(), DENIED) == "USER_TOKEN_WRONG_USER"
    # The batch's own event was not stored either: sending it now is no duplicate.
    again = await api.ingestion.TrackEvents(track([event("a1", "alice", "signup")]), metadata=client.auth())
    assert (again.accepted_count, again.duplicate_count) == (1, 0)


async def test_rpcs_outside_the_five_are_closed_to_public_keys(stack, app, signer, client):
    api = Clients(stack.channel)
    meta = client.auth(signer.token("alice"))
    internal = decision_internal_grpc.DecisionInternalServiceStub(stack.channel("decision"))
    for call in (
        api.decision.ListCampaigns(decision_pb.ListCampaignsRequest(), metadata=meta),
        api.delivery.GetCampaignStats(delivery_pb.GetCampaignStatsRequest(campaign_id="c"), metadata=meta),
        api.ingestion.DeleteUser(ingestion_pb.DeleteUserRequest(user_id="alice"), metadata=meta),
        api.segmentation.GetUserProfile(seg_pb.GetUserProfileRequest(user_id="alice"), metadata=meta),
        key_stub(stack).AddUserTokenKey(keys_pb.AddUserTokenKeyRequest(public_key=signer.public_pem), metadata=meta),
        internal.Decide(decision_internal_pb.DecideRequest(app_id=app.id, user_id="alice"), metadata=meta),
    ):
        assert await refused(call, DENIED) == "PUBLIC_KEY_METHOD_NOT_ALLOWED"
    # Closed whatever the token: the method is checked first.
    no_token = api.decision.ListCampaigns(decision_pb.ListCampaignsRequest(), metadata=client.auth(""))
    assert await refused(no_token, DENIED) == "PUBLIC_KEY_METHOD_NOT_ALLOWED"
    events = api.ingestion.StreamEvents(metadata=meta)
    await events.write(ingestion_pb.StreamEventsRequest(batch_id="b", events=[event("s1", "alice", "signup")]))
    assert await refused(events.read(), DENIED) == "PUBLIC_KEY_METHOD_NOT_ALLOWED"


# --- bad tokens -----------------------------------------------------------------------------

async def test_every_bad_token_is_refused_with_its_reason(stack, app, signer, client):
    api = Clients(stack.channel)
    now = time.time()
    impostor = SigningKey("ES256", kid=signer.kid)
    unregistered = SigningKey("ES256", kid="never-registered")
    rs = SigningKey("RS256", kid=signer.kid)
    cases = {
        "": "USER_TOKEN_MISSING",
        "eyJub3Q.a.jwt": "USER_TOKEN_MALFORMED",
        signer.token("alice", now=now - 3600, lifetime=600): "USER_TOKEN_EXPIRED",
        signer.token("alice", now=now, nbf=now + 600): "USER_TOKEN_NOT_YET_VALID",
        signer.token("alice", lifetime=2 * 86_400): "USER_TOKEN_LIFETIME_TOO_LONG",
        signer.token("alice", exp=None): "USER_TOKEN_INVALID_CLAIMS",
        signer.token("alice", aud="app_someone_else"): "USER_TOKEN_WRONG_AUDIENCE",
        impostor.token("alice"): "USER_TOKEN_BAD_SIGNATURE",
        unregistered.token("alice"): "USER_TOKEN_UNKNOWN_KEY",
        rs.token("alice"): "USER_TOKEN_ALGORITHM_MISMATCH",
    }
    for token, reason in cases.items():
        fetch = api.delivery.FetchMessages(delivery_pb.FetchMessagesRequest(user_id="alice"),
                                           metadata=client.auth(token))
        assert await refused(fetch, UNAUTHENTICATED) == reason, token
    # The same on a stream and on ingestion.
    stream = api.delivery.Subscribe(delivery_pb.SubscribeRequest(user_id="alice"),
                                    metadata=client.auth(impostor.token("alice")))
    assert await refused(stream.read(), UNAUTHENTICATED) == "USER_TOKEN_BAD_SIGNATURE"
    assert await refused(api.ingestion.TrackEvents(track([event("x", "alice", "signup")]), metadata=client.auth()),
                         UNAUTHENTICATED) == "USER_TOKEN_MISSING"


async def test_a_token_of_another_apps_key_is_unknown_here(stack, app, other_app, signer, client):
    # The other app registers the very same key id; its tokens mean nothing to this app.
    theirs = SigningKey("ES256", kid=signer.kid)
    await register(stack, other_app, theirs)
    api = Clients(stack.channel)
    fetch = api.delivery.FetchMessages(delivery_pb.FetchMessagesRequest(user_id="alice"),
                                       metadata=client.auth(theirs.token("alice")))
    assert await refused(fetch, UNAUTHENTICATED) == "USER_TOKEN_BAD_SIGNATURE"


async def test_a_key_registered_while_running_is_accepted_at_once(stack, app, client):
    api = Clients(stack.channel)
    fresh = SigningKey("RS256", kid="added-later")
    request = delivery_pb.FetchMessagesRequest(user_id="alice")
    # First seen unknown (and the app's keys cached), then registered: no restart needed.
    assert await refused(api.delivery.FetchMessages(request, metadata=client.auth(fresh.token("alice"))),
                         UNAUTHENTICATED) == "USER_TOKEN_UNKNOWN_KEY"
    await register(stack, app, fresh)

    async def accepted():
        try:
            await api.delivery.FetchMessages(request, metadata=client.auth(fresh.token("alice")))
        except grpc.aio.AioRpcError:
            return False
        return True

    await eventually(accepted, timeout=5)


async def test_a_revoked_key_is_refused_on_every_replica(stack, database_url, app, signer, client):
    peers = {"decision": stack.target("decision"), "ingestion": stack.target("ingestion")}
    replicas = [await start_host(DELIVERY, database_url, peers) for _ in range(2)]
    channels = [grpc.aio.insecure_channel(f"127.0.0.1:{h.port}") for h in replicas]
    try:
        stubs = [delivery_grpc.DeliveryServiceStub(c) for c in channels]
        token = signer.token("alice")
        request = delivery_pb.FetchMessagesRequest(user_id="alice")
        # Both replicas have verified (and remembered) the token.
        for stub in stubs:
            await stub.FetchMessages(request, metadata=client.auth(token))
        await key_stub(stack).RevokeUserTokenKey(keys_pb.RevokeUserTokenKeyRequest(key_id=signer.kid),
                                                 metadata=app.auth("admin"))

        async def refused_everywhere():
            reasons = []
            for stub in stubs:
                for attempt in (token, signer.token("alice", lifetime=300)):  # remembered, and new
                    try:
                        await stub.FetchMessages(request, metadata=client.auth(attempt))
                        reasons.append("OK")
                    except grpc.aio.AioRpcError as exc:
                        reasons.append(f"{exc.code().name} {reason_of(exc)}")
            return set(reasons) == {"UNAUTHENTICATED USER_TOKEN_KEY_REVOKED"}

        await eventually(refused_everywhere, timeout=5)
    finally:
        for c in channels:
            await c.close()
        for h in replicas:
            await h.stop()


# --- open streams ---------------------------------------------------------------------------

async def test_a_stream_ends_when_its_token_expires(stack, app, signer, client):
    api = Clients(stack.channel)
    now = time.time()
    # Past its exp, within the 30 s leeway for two more seconds.
    token = signer.token("alice", iat=int(now) - 29, exp=int(now) - 28)
    stream = api.delivery.Subscribe(delivery_pb.SubscribeRequest(user_id="alice"), metadata=client.auth(token))
    await asyncio.wait_for(stream.initial_metadata(), 5)
    started = time.monotonic()
    assert await refused(asyncio.wait_for(stream.read(), 10), UNAUTHENTICATED) == "USER_TOKEN_EXPIRED"
    # At its end, not at the next keep-alive (15 s away).
    assert 0.5 < time.monotonic() - started < 5


async def test_a_stream_ends_when_its_key_is_revoked_and_lives_on_through_other_changes(stack, app, signer, client):
    api = Clients(stack.channel)
    campaign = await create_campaign(api, app, make_campaign("Ping", on="ping"))
    client.token = signer.token("alice")
    stream = api.delivery.Subscribe(delivery_pb.SubscribeRequest(user_id="alice"), metadata=client.auth())
    try:
        await asyncio.wait_for(stream.initial_metadata(), 5)
        # Another key added: the stream checks its token again and stays open, still delivering.
        await register(stack, app, SigningKey("ES256", kid="next-key"))
        await asyncio.sleep(0.3)
        await api.ingestion.TrackEvents(track([event("p1", "alice", "ping")]), metadata=client.auth())
        item = await asyncio.wait_for(stream.read(), 10)
        assert item.message.campaign_id == campaign.id
        # Its own key revoked: it ends at once, with the reason.
        await key_stub(stack).RevokeUserTokenKey(keys_pb.RevokeUserTokenKeyRequest(key_id=signer.kid),
                                                 metadata=app.auth("admin"))
        assert await refused(asyncio.wait_for(stream.read(), 5), UNAUTHENTICATED) == "USER_TOKEN_KEY_REVOKED"
    finally:
        stream.cancel()


# --- backend keys ---------------------------------------------------------------------------

async def test_backend_keys_work_as_before_and_ignore_user_tokens(stack, app, signer):
    api = Clients(stack.channel)
    # A token for alice beside a backend key changes nothing: the backend may act for any user.
    token = ((USER_TOKEN_HEADER, signer.token("alice")),)
    garbage = ((USER_TOKEN_HEADER, "garbage"),)
    for extra in ((), token, garbage):
        await api.ingestion.TrackEvents(track([event(f"b-{len(extra)}-{extra[:1]!r}", "bob", "signup")]),
                                        metadata=app.auth("events") + extra)
        await api.delivery.FetchMessages(delivery_pb.FetchMessagesRequest(user_id="bob"),
                                         metadata=app.auth("client") + extra)
        await api.decision.ListCampaigns(decision_pb.ListCampaignsRequest(), metadata=app.auth("admin") + extra)
    # And their scopes hold as before.
    await expect_error(api.ingestion.TrackEvents(track([event("s", "u", "signup")]), metadata=app.auth("client")),
                       DENIED)
    internal = decision_internal_grpc.DecisionInternalServiceStub(stack.channel("decision"))
    await internal.Decide(decision_internal_pb.DecideRequest(app_id=app.id, user_id="bob"),
                          metadata=(("authorization", f"Bearer {INTERNAL_TOKEN}"),))


async def test_the_readme_example_signs_tokens_the_services_accept(stack, app, client, tmp_path, monkeypatch):
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    example = re.search(r"```python\n([^`]*def nudge_user_token[^`]*)```", readme).group(1)
    key = SigningKey("ES256", kid="web-2026")  # the README's key id
    await register(stack, app, key)
    (tmp_path / "user-token-key.pem").write_text(key.private_pem)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(textwrap.dedent(example), "README.md", "exec"), namespace)
    token = namespace["nudge_user_token"]("alice")
    api = Clients(stack.channel)
    await api.delivery.FetchMessages(delivery_pb.FetchMessagesRequest(user_id="alice"), metadata=client.auth(token))
    assert await refused(api.delivery.FetchMessages(delivery_pb.FetchMessagesRequest(user_id="bob"),
                                                    metadata=client.auth(token)), DENIED) == "USER_TOKEN_WRONG_USER"
