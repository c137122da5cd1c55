"""The Python client package (clients/python) against the real services: every service's calls
with the app's key, deadlines, and retries that honour the server's RetryInfo and only where a
second try is safe. Failures are injected by a real gRPC proxy between the client and the
service (tests/grpc_proxy.py); the services are the session's real ones."""

from __future__ import annotations

import asyncio
import time
import uuid

import grpc
import pytest

from nudge_client import AsyncNudge, Nudge, RetryPolicy, field_violations
from nudge_client.protos import common, decision, delivery, ingestion, segmentation
from nudgelib.errors import ResourceExhausted, Unavailable
from tests.conftest import eventually
from tests.grpc_proxy import Fate, Plan, Proxy
from tests.helpers import announced, make_campaign

SERVICES = ("ingestion", "segmentation", "decision", "delivery")
# Quick retries, so a test of what is retried does not wait for the default backoff.
FAST = RetryPolicy(max_attempts=4, initial_backoff=0.01, max_backoff=0.05)


def targets(stack) -> dict[str, str]:
    return {name: stack.target(name) for name in SERVICES}


@pytest.fixture
async def proxied(stack):
    """A proxy in front of decision; the test sets its plan."""
    proxy = await Proxy(stack.target("decision")).start()
    yield proxy
    await proxy.stop()


async def test_each_service_answers_the_client_with_the_apps_keys(stack, app, database_url):
    admin = AsyncNudge(targets(stack), app.keys["admin"])
    events = AsyncNudge(targets(stack), app.keys["events"])
    client = AsyncNudge(targets(stack), app.keys["client"])
    async with admin, events, client:
        segment = (await admin.create_segment(name="Signed up", rule=segmentation.Rule(
            event=segmentation.EventCondition(name="signup", operator=segmentation.EVENT_OPERATOR_AT_LEAST,
                                              count=1)))).segment
        campaign = make_campaign("Client welcome")
        campaign.audience.include_segment_ids.append(segment.id)
        created = (await admin.create_campaign(campaign=campaign)).campaign
        assert (await admin.get_campaign(campaign_id=created.id)).campaign.name == "Client welcome"
        assert created.id in [c.id for c in (await admin.list_campaigns()).campaigns]
        assert (await admin.get_app_settings()).settings is not None

        user = f"u-{uuid.uuid4().hex[:8]}"
        await events.identify(user_id=user, time_zone="Europe/Paris")
        tracked = await events.track_events(events=[common.Event(user_id=user, name="signup")])
        assert (tracked.accepted_count, list(tracked.rejected)) == (1, [])

        async def member() -> bool:
            page = await admin.list_segment_members(segment_id=segment.id)
            return user in page.user_ids
        await eventually(member)
        # Decision hears of the membership from segmentation's announcements, which may still
        # be on their way: one of an older change (the identify) arriving after decision read
        # the user afresh is kept until the next one comes, and a pull meanwhile sees no segment.
        await eventually(lambda: announced(database_url, app.id))
        profile = (await admin.get_user_profile(user_id=user)).profile
        assert profile.time_zone == "Europe/Paris"
        assert (await admin.estimate_audience(segment_id=segment.id)).user_count >= 1
        explained = await admin.explain_decision(user_id=user)
        assert created.id in [c.campaign_id for c in explained.campaigns]
        assert list((await admin.list_pending_sends(user_id=user)).pending_sends) == []

        shown = (await client.fetch_messages(user_id=user)).messages
        assert [m.campaign_id for m in shown] == [created.id]
        reported = await client.report_interaction(message_id=shown[0].message_id, user_id=user,
                                                   type=delivery.INTERACTION_TYPE_IMPRESSION)
        assert reported.recorded

        async def impression_counted() -> bool:
            stats = await admin.get_campaign_stats(campaign_id=created.id)
            return sum(v.impressions for v in stats.variants) == 1
        await eventually(impression_counted)
        assert list((await admin.list_survey_answers(campaign_id=created.id)).answers) == []
        await admin.set_campaign_status(campaign_id=created.id, status=decision.CAMPAIGN_STATUS_PAUSED)
        assert (await admin.delete_user(user_id=user)).completed


async def test_the_blocking_client_makes_the_same_calls(stack, app):
    def run() -> tuple[str, str]:
        with Nudge(targets(stack), app.keys["admin"]) as nudge:
            created = nudge.create_campaign(campaign=make_campaign("Blocking")).campaign
            return created.id, nudge.get_campaign(decision.GetCampaignRequest(campaign_id=created.id)).campaign.id
    created, fetched = await asyncio.to_thread(run)
    assert created and fetched == created


async def test_a_wrong_key_or_a_bad_field_is_the_servers_answer_not_retried(stack, app):
    async with AsyncNudge(targets(stack), "not-a-key", retry=FAST) as stranger:
        with pytest.raises(grpc.aio.AioRpcError) as denied:
            await stranger.list_campaigns()
        assert denied.value.code() == grpc.StatusCode.UNAUTHENTICATED
    async with AsyncNudge(targets(stack), app.keys["admin"], retry=FAST) as admin:
        with pytest.raises(grpc.aio.AioRpcError) as bad:
            await admin.create_campaign(campaign=make_campaign(name=""))
        assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "campaign.name" in field_violations(bad.value)


async def test_the_default_deadline_and_a_per_call_one_cut_a_slow_call(stack, app, proxied):
    # The bounds leave a loaded machine a second or more either way: each is far from what
    # the other deadline (or none) would give.
    proxied.plan = lambda method, n: Plan(hold=6.0)
    async with AsyncNudge({"decision": proxied.target}, app.keys["admin"], timeout=2.0) as nudge:
        began = time.monotonic()
        with pytest.raises(grpc.aio.AioRpcError) as by_default:
            await nudge.get_app_settings()
        assert by_default.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert 1.95 < time.monotonic() - began < 4.5
        began = time.monotonic()
        with pytest.raises(grpc.aio.AioRpcError) as per_call:
            await nudge.get_app_settings(timeout=0.1)
        assert per_call.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert time.monotonic() - began < 1.2

    def blocking() -> grpc.StatusCode:
        with Nudge({"decision": proxied.target}, app.keys["admin"], timeout=0.2) as nudge:
            try:
                nudge.get_app_settings()
            except grpc.RpcError as exc:
                return exc.code()
        raise AssertionError("the call outlived its deadline")
    began = time.monotonic()
    assert await asyncio.to_thread(blocking) == grpc.StatusCode.DEADLINE_EXCEEDED
    assert time.monotonic() - began < 1.5


async def test_a_retry_after_unavailable_waits_the_delay_the_server_asked_for(stack, app, proxied):
    advice = Unavailable("decision's database is away", retry_after_seconds=0.4)
    proxied.plan = lambda method, n: Plan(Fate.FAIL_BEFORE, error=advice) if n == 1 else Plan()
    # Without the advice the first retry would come after at most 10 ms.
    async with AsyncNudge({"decision": proxied.target}, app.keys["admin"], retry=FAST) as nudge:
        await nudge.get_app_settings()
    first, second = proxied.calls
    assert 0.4 <= second.at - first.at < 1.5


async def test_the_blocking_client_waits_the_advised_delay_too(stack, app, proxied):
    advice = Unavailable("decision's database is away", retry_after_seconds=0.3)
    proxied.plan = lambda method, n: Plan(Fate.FAIL_BEFORE, error=advice) if n == 1 else Plan()

    def blocking() -> None:  # in a thread: the proxy answers on this loop
        with Nudge({"decision": proxied.target}, app.keys["admin"], retry=FAST) as nudge:
            nudge.get_app_settings()
    await asyncio.to_thread(blocking)
    first, second = proxied.calls
    assert 0.3 <= second.at - first.at < 1.5


async def test_resource_exhausted_is_retried_only_with_retry_info(stack, app, proxied):
    shed = ResourceExhausted("ingestion is shedding load", retry_after_seconds=0.05)
    proxied.plan = lambda method, n: Plan(Fate.FAIL_BEFORE, error=shed) if n == 1 else Plan()
    async with AsyncNudge({"decision": proxied.target}, app.keys["admin"], retry=FAST) as nudge:
        await nudge.get_app_settings()
        assert proxied.count("GetAppSettings") == 2
        # The same code without advice is a limit waiting will not lift: raised at once.
        proxied.calls.clear()
        proxied.plan = lambda method, n: Plan(Fate.FAIL_BEFORE, error=_bare(grpc.StatusCode.RESOURCE_EXHAUSTED))
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await nudge.get_app_settings()
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert proxied.count("GetAppSettings") == 1


async def test_retries_are_bounded_and_stop_at_the_deadline(stack, app, proxied):
    proxied.plan = lambda method, n: Plan(Fate.FAIL_BEFORE)
    async with AsyncNudge({"decision": proxied.target}, app.keys["admin"], retry=FAST) as nudge:
        with pytest.raises(grpc.aio.AioRpcError) as exhausted:
            await nudge.get_app_settings()
        assert exhausted.value.code() == grpc.StatusCode.UNAVAILABLE
        assert proxied.count("GetAppSettings") == FAST.max_attempts
        # Advice to come back after the deadline: no point waiting for it.
        proxied.calls.clear()
        later = Unavailable("down for a while", retry_after_seconds=5)
        proxied.plan = lambda method, n: Plan(Fate.FAIL_BEFORE, error=later)
        began = time.monotonic()
        with pytest.raises(grpc.aio.AioRpcError):
            await nudge.get_app_settings(timeout=3.0)
        assert time.monotonic() - began < 2.5  # not waited out
        assert proxied.count("GetAppSettings") == 1


async def test_a_write_whose_reply_was_lost_is_retried_under_one_request_id_and_runs_once(stack, app, proxied):
    # The first CreateCampaign reaches decision and is committed; its reply is lost.
    proxied.plan = lambda method, n: Plan(Fate.FAIL_AFTER) if method.endswith("CreateCampaign") and n == 1 else Plan()
    name = f"Once {uuid.uuid4().hex[:6]}"
    request = decision.CreateCampaignRequest(campaign=make_campaign(name))
    async with AsyncNudge({"decision": proxied.target}, app.keys["admin"], retry=FAST) as nudge:
        created = (await nudge.create_campaign(request)).campaign
        assert request.request_id == ""  # the caller's message is left as it was
        listed = [c for c in (await nudge.list_campaigns(page_size=100)).campaigns if c.name == name]
    attempts = [decision.CreateCampaignRequest.FromString(c.request) for c in proxied.calls
                if c.method.endswith("CreateCampaign")]
    assert len(attempts) == 2 and attempts[0].request_id and attempts[0].request_id == attempts[1].request_id
    assert [c.id for c in listed] == [created.id]


async def test_fetch_messages_is_never_retried(stack, app):
    proxy = await Proxy(stack.target("delivery"), plan=lambda method, n: Plan(Fate.FAIL_BEFORE)).start()
    try:
        async with AsyncNudge({"delivery": proxy.target}, app.keys["client"], retry=FAST) as nudge:
            with pytest.raises(grpc.aio.AioRpcError) as failed:
                await nudge.fetch_messages(user_id="u1")
        assert failed.value.code() == grpc.StatusCode.UNAVAILABLE
        assert proxy.count("FetchMessages") == 1
    finally:
        await proxy.stop()


async def test_events_without_ids_get_one_each_and_are_stored_once_across_a_retry(stack, app):
    proxy = await Proxy(stack.target("ingestion"),
                        plan=lambda method, n: Plan(Fate.FAIL_AFTER) if n == 1 else Plan()).start()
    try:
        async with AsyncNudge({"ingestion": proxy.target}, app.keys["events"], retry=FAST) as nudge:
            reply = await nudge.track_events(ingestion.TrackEventsRequest(
                events=[common.Event(user_id="u1", name="opened"), common.Event(user_id="u2", name="opened")]))
        # The second attempt found both stored by the first.
        assert (reply.accepted_count, reply.duplicate_count) == (2, 2)
        sent = [ingestion.TrackEventsRequest.FromString(c.request) for c in proxy.calls]
        ids = [[e.event_id for e in r.events] for r in sent]
        assert ids[0] == ids[1] and all(uuid.UUID(i) for i in ids[0]) and len(set(ids[0])) == 2
    finally:
        await proxy.stop()


def _bare(code: grpc.StatusCode):
    """A status of `code` without any RetryInfo."""
    from nudgelib.errors import NudgeError

    error = NudgeError("no advice")
    error.code, error.reason = code, code.name
    return error
