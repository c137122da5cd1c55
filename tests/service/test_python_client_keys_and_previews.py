"""The Python client's API key and user-token key methods (decision's ApiKeyService and
UserTokenKeyService) and its preview and test-send methods, against the session's real
services: a key made with the client works at once and is refused once revoked with it;
creating a key is never retried (a second key nobody saw would stay active), revoking is; a
signing key added with the client signs tokens the services take until it is revoked with
it, and adding it is retried across a lost reply; a preview renders for sample attributes,
and a test send reaches the user once, across a retry. Failures come from the real gRPC proxy of
tests/grpc_proxy.py."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from nudge_client import AsyncNudge, Nudge, RetryPolicy, field_violations
from nudge.delivery.v1 import delivery_service_pb2 as delivery_pb
from nudge.delivery.v1 import delivery_service_pb2_grpc as delivery_grpc
from nudge_client.protos import api_keys, common, decision
from nudgelib.interceptor import USER_TOKEN_HEADER
from tests.conftest import eventually
from tests.grpc_proxy import Fate, Plan, Proxy
from tests.helpers import make_campaign
from tests.signing import SigningKey

SERVICES = ("ingestion", "segmentation", "decision", "delivery")
FAST = RetryPolicy(max_attempts=4, initial_backoff=0.01, max_backoff=0.05)


def targets(stack) -> dict[str, str]:
    return {name: stack.target(name) for name in SERVICES}


@pytest.fixture
async def proxied(stack):
    """A proxy in front of decision; the test sets its plan."""
    proxy = await Proxy(stack.target("decision")).start()
    yield proxy
    await proxy.stop()


async def test_a_key_made_with_the_client_works_and_is_refused_once_revoked_with_it(stack, app):
    async with AsyncNudge(targets(stack), app.keys["admin"]) as admin:
        made = await admin.create_api_key(label="producer", scopes=["events:write"])
        assert made.secret.startswith(f"nudge_{made.key.key_id}_")
        async with AsyncNudge(targets(stack), made.secret) as producer:
            tracked = await producer.track_events(events=[common.Event(user_id="ck-u1", name="signup")])
            assert tracked.accepted_count == 1
            keys = (await admin.list_api_keys(api_keys.ListApiKeysRequest(show_revoked=True))).keys
            assert [k for k in keys if k.key_id == made.key.key_id] == [made.key]
            revoked = (await admin.revoke_api_key(key_id=made.key.key_id)).key
            assert revoked.HasField("revoke_time")

            async def refused() -> bool:
                try:
                    await producer.track_events(events=[common.Event(user_id="ck-u1", name="signup")])
                except grpc.aio.AioRpcError as exc:
                    return exc.code() == grpc.StatusCode.UNAUTHENTICATED
                return False
            await eventually(refused, timeout=3)
        with pytest.raises(grpc.aio.AioRpcError) as bad:
            await admin.create_api_key(label="", scopes=["root"])
        assert set(field_violations(bad.value)) == {"label", "scopes"}


async def test_the_blocking_client_has_the_same_key_methods(stack, app):
    def run() -> tuple[str, list[str], bool]:
        with Nudge(targets(stack), app.keys["admin"]) as nudge:
            made = nudge.create_api_key(label="blocking", scopes=["messages:read"])
            listed = [k.label for k in nudge.list_api_keys(show_revoked=True).keys]
            revoked = nudge.revoke_api_key(api_keys.RevokeApiKeyRequest(key_id=made.key.key_id)).key
            return made.key.label, listed, revoked.HasField("revoke_time")
    label, listed, revoked = await asyncio.to_thread(run)
    assert label == "blocking" and listed[-1] == "blocking" and revoked


async def test_creating_a_key_is_never_retried_and_revoking_one_is(stack, app, proxied):
    proxied.plan = lambda method, n: Plan(Fate.FAIL_AFTER) if n == 1 else Plan()
    async with AsyncNudge({"decision": proxied.target}, app.keys["admin"], retry=FAST) as admin:
        with pytest.raises(grpc.aio.AioRpcError) as lost:
            await admin.create_api_key(label="lost-reply", scopes=["events:write"])
        assert lost.value.code() == grpc.StatusCode.UNAVAILABLE
        assert proxied.count("CreateApiKey") == 1
        # The key was made (its reply was lost): one, to be revoked by whoever lists the keys.
        [orphan] = [k for k in (await admin.list_api_keys()).keys if k.label == "lost-reply"]
        proxied.calls.clear()
        proxied.plan = lambda method, n: Plan(Fate.FAIL_AFTER) if n == 1 else Plan()
        revoked = (await admin.revoke_api_key(key_id=orphan.key_id)).key
    assert revoked.key_id == orphan.key_id and revoked.HasField("revoke_time")
    assert proxied.count("RevokeApiKey") == 2


async def test_a_signing_key_added_with_the_client_signs_tokens_until_revoked_with_it(stack, app, proxied):
    signer = SigningKey("ES256", kid="client-web")
    # The first reply is lost: the retry finds the key registered and returns it unchanged.
    proxied.plan = lambda method, n: Plan(Fate.FAIL_AFTER) if method.endswith("AddUserTokenKey") and n == 1 else Plan()
    async with AsyncNudge({"decision": proxied.target}, app.keys["admin"], retry=FAST) as admin:
        added = await admin.add_user_token_key(public_key=signer.public_pem, key_id=signer.kid)
        web = await admin.create_api_key(label="web", scopes=["public"])
    assert proxied.count("AddUserTokenKey") == 2 and not added.created and added.key.key_id == "client-web"

    delivery = delivery_grpc.DeliveryServiceStub(stack.channel("delivery"))

    async def fetch(token: str):
        return await delivery.FetchMessages(
            delivery_pb.FetchMessagesRequest(user_id="ck-signed"),
            metadata=(("authorization", f"Bearer {web.secret}"), (USER_TOKEN_HEADER, token)))

    await fetch(signer.token("ck-signed"))
    async with AsyncNudge(targets(stack), app.keys["admin"]) as admin:
        listed = (await admin.list_user_token_keys(show_revoked=True)).keys
        assert [k.key_id for k in listed] == ["client-web"]
        revoked = (await admin.revoke_user_token_key(key_id="client-web")).key
    assert revoked.HasField("revoke_time")

    async def refused() -> bool:
        try:
            await fetch(signer.token("ck-signed"))
        except grpc.aio.AioRpcError as exc:
            return exc.code() == grpc.StatusCode.UNAUTHENTICATED
        return False
    await eventually(refused, timeout=3)


async def test_a_preview_renders_for_sample_attributes_and_a_test_send_reaches_the_user_once(stack, app, proxied):
    campaign = make_campaign("Client preview")
    campaign.status = decision.CAMPAIGN_STATUS_DRAFT
    campaign.variants[0].contents[0].content.title = "Hello {{ user.first_name | default: 'friend' }}"
    async with AsyncNudge(targets(stack), app.keys["admin"]) as admin:
        created = (await admin.create_campaign(campaign=campaign)).campaign
        request = decision.PreviewMessageRequest(campaign_id=created.id)
        request.attributes["first_name"].CopyFrom(common.AttributeValue(string_value="Ada"))
        shown = await admin.preview_message(request)
        assert (shown.content.title, list(shown.errors)) == ("Hello Ada", [])
        assert (await admin.preview_message(campaign_id=created.id)).content.title == "Hello friend"
    # The reply of the first test send is lost: the retry carries the same request_id, and the
    # user gets one message.
    proxied.plan = lambda method, n: Plan(Fate.FAIL_AFTER) if method.endswith("SendTestMessage") and n == 1 else Plan()
    async with AsyncNudge({"decision": proxied.target}, app.keys["admin"], retry=FAST) as admin:
        sent = await admin.send_test_message(campaign_id=created.id, user_id="ck-tess")
    attempts = [decision.SendTestMessageRequest.FromString(c.request) for c in proxied.calls
                if c.method.endswith("SendTestMessage")]
    assert len(attempts) == 2 and attempts[0].request_id and attempts[0].request_id == attempts[1].request_id
    async with AsyncNudge(targets(stack), app.keys["client"]) as client:
        got = (await client.fetch_messages(user_id="ck-tess", limit=5)).messages
    assert [m.message_id for m in got] == [sent.message_id] and got[0].content.title == "Hello friend"
