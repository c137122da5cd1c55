"""Erasure reaches the kept responses of request ids: a test send's response, its content
rendered with the user's attributes, is kept under its `request_id` for a retry; after
DeleteUser nothing of it is left, and the same `request_id` retried runs as a new call (a new
test message, rendered from what is known of the user now), never the old content. Kept
responses of calls about no user (a campaign's creation) outlive the erasure."""

from __future__ import annotations

import asyncpg

from nudge.common.v1 import common_pb2
from nudge.decision.v1 import decision_service_pb2 as pb
from nudge.ingestion.v1 import ingestion_service_pb2 as ingestion_pb
from tests.conftest import eventually
from tests.helpers import Clients, create_app, fetch_messages, make_campaign, traces_of_user, user_profile

# Every replay table of every service (nudgelib.replay), and a user's name no id contains.
REPLAY_TABLES = ("decision.request_responses", "segmentation.segment_requests")
NAME = "Zorvath"


async def kept_mentions(conn: asyncpg.Connection, app_id: str, text: str) -> dict[str, int]:
    """Kept responses of the app whose bytes hold `text`, by table."""
    found = {}
    for table in REPLAY_TABLES:
        n = await conn.fetchval(
            f"SELECT count(*) FROM {table} WHERE app_id = $1 AND position($2::bytea IN response) > 0",
            app_id, text.encode())
        if n:
            found[table] = n
    return found


async def test_a_retried_test_send_after_delete_user_runs_again_without_the_old_content(stack, database_url):
    app = await create_app(database_url)
    api = Clients(stack.channel)
    admin = app.auth("admin")
    c = make_campaign("Greeting")
    c.variants[0].contents[0].content.title = "Hi {{ user.first_name | default: 'there' }}"
    campaign = (await api.decision.CreateCampaign(pb.CreateCampaignRequest(campaign=c, request_id="create-1"),
                                                  metadata=admin)).campaign
    await api.ingestion.Identify(ingestion_pb.IdentifyRequest(
        user_id="zed", attributes={"first_name": common_pb2.AttributeValue(string_value=NAME)}),
        metadata=app.auth("events"))

    async def named():
        profile = await user_profile(api, app, "zed")
        return profile is not None and profile.attributes["first_name"].string_value == NAME

    await eventually(named)
    request = pb.SendTestMessageRequest(campaign_id=campaign.id, user_id="zed", request_id="test-send-1")
    sent = await api.decision.SendTestMessage(request, metadata=admin)
    assert sent.content.title == f"Hi {NAME}"
    # Within the window a retry is the same answer, nothing sent again.
    assert await api.decision.SendTestMessage(request, metadata=admin) == sent
    conn = await asyncpg.connect(database_url)
    try:
        # The test looks where the content was: it is kept, under the request id.
        assert await kept_mentions(conn, app.id, NAME) == {"decision.request_responses": 1}

        reply = await api.ingestion.DeleteUser(ingestion_pb.DeleteUserRequest(user_id="zed"), metadata=admin)
        assert reply.completed
        assert await kept_mentions(conn, app.id, NAME) == {}
        assert await traces_of_user(conn, app.id, "zed") == {}

        # The retry runs as a new call: another test message, rendered for the user as now
        # known (erased: no attributes), and in the inbox.
        again = await api.decision.SendTestMessage(request, metadata=admin)
        assert again.message_id != sent.message_id and again.message_id.startswith("test_")
        assert again.content.title == "Hi there"
        (got,) = await fetch_messages(api, app, "zed")
        assert (got.message_id, got.content.title, got.test) == (again.message_id, "Hi there", True)
        assert await kept_mentions(conn, app.id, NAME) == {}

        # A kept response of a call about no user stays: the creation's retry is its answer.
        retried = await api.decision.CreateCampaign(pb.CreateCampaignRequest(campaign=c, request_id="create-1"),
                                                    metadata=admin)
        assert retried.campaign.id == campaign.id
    finally:
        await conn.close()
