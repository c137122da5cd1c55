"""The API keys on the console's Settings page, on a real port against the session's real
services, driven over HTTP as a browser would: the app's keys listed (the session's own
marked), a key created through the form and its secret shown that once, each problem at its
field, a revoke that every service then honours, the app's last admin key kept with a message
on the page, and revoking the session's own key ending the session."""

from __future__ import annotations

import re

import grpc
import pytest

from nudge.delivery.v1 import delivery_service_pb2 as delivery_pb
from tests.conftest import eventually
from tests.consoles import csrf_of, running_console
from tests.helpers import Clients
from tests.service.test_console import text_of

SERVICES = ("ingestion", "segmentation", "decision", "delivery")


@pytest.fixture(scope="module")
async def console(stack):
    async with running_console({name: stack.target(name) for name in SERVICES}) as running:
        yield running


def secret_on(page: str) -> str | None:
    found = re.search(r'id="new-api-key-secret"[^>]*value="([^"]+)"', page)
    return found.group(1) if found else None


def row_of(page: str, label: str) -> str:
    """The text of the API key table's row of `label`."""
    table = page[page.index('id="api-keys"'):]
    for row in re.findall(r"<tr>.*?</tr>", table, flags=re.S):
        cells = re.findall(r"<td>(.*?)</td>", row, flags=re.S)
        if cells and cells[0] == label:
            return text_of(row)
    raise AssertionError(f"no API key {label!r} listed")


async def test_a_key_created_on_the_page_shows_its_secret_once_works_and_is_revoked_there(console, app, stack):
    admin_id = app.keys["admin"].split("_")[1]
    async with console.signed_in(app.keys["admin"]) as http:
        page = await http.get("/settings")
        assert re.search(rf"{admin_id} \(this session's key\) admin admin \S+ \S+ UTC no Revoke", row_of(page.text, "admin"))
        assert re.search(r"events:write \S+ \S+ UTC no Revoke", row_of(page.text, "events"))
        assert secret_on(page.text) is None

        made = await http.post("/settings/api-keys", data={"csrf": csrf_of(page.text), "api_label": "ios-backend",
                                                           "scope.messages:read": "on", "scope.events:write": "on"})
        assert made.status_code == 200 and made.headers["cache-control"] == "no-store"
        secret = secret_on(made.text)
        assert secret and secret.startswith("nudge_")
        key_id = secret.split("_")[1]
        shown = text_of(made.text)
        assert f"API key ios-backend ({key_id}) was created" in shown
        assert "Copy it now: it will not be shown again." in shown
        assert re.search(r"ios-backend events:write, messages:read \S+ \S+ UTC no Revoke", row_of(made.text, "ios-backend"))

        # The key works at once; the page never shows its secret again.
        api = Clients(stack.channel)
        auth = (("authorization", f"Bearer {secret}"),)
        await api.delivery.FetchMessages(delivery_pb.FetchMessagesRequest(user_id="console-u1"), metadata=auth)
        again = await http.get("/settings")
        assert secret not in again.text and secret_on(again.text) is None and key_id in again.text

        revoked = await http.post("/settings/api-keys/revoke", data={"csrf": csrf_of(again.text), "key_id": key_id})
        assert revoked.status_code == 303 and revoked.headers["location"] == f"/settings?revoked={key_id}#api-keys"
        after = await http.get(revoked.headers["location"])
        assert f"API key ios-backend ({key_id}) was revoked." in text_of(after.text)
        row = row_of(after.text, "ios-backend")
        assert re.search(r"messages:read \S+ \S+ UTC \S+ \S+ UTC$", row) and "Revoke" not in row

        async def refused() -> bool:
            try:
                await api.delivery.FetchMessages(delivery_pb.FetchMessagesRequest(user_id="console-u1"), metadata=auth)
            except grpc.aio.AioRpcError as exc:
                return exc.code() == grpc.StatusCode.UNAUTHENTICATED
            return False
        await eventually(refused, timeout=3)


async def test_each_problem_of_the_new_key_form_is_shown_at_its_field(console, app):
    async with console.signed_in(app.keys["admin"]) as http:
        page = await http.get("/settings")
        bad = await http.post("/settings/api-keys", data={"csrf": csrf_of(page.text), "api_label": ""})
        assert bad.status_code == 200 and secret_on(bad.text) is None
        assert re.search(r'id="ak-label" name="api_label"[^>]*aria-invalid="true" aria-describedby="err-api_label"',
                         bad.text)
        assert re.search(r'<p class="error" id="err-api_label">is required[^<]*</p>', bad.text)
        assert re.search(r'<fieldset id="ak-scopes" aria-describedby="err-api_scopes">', bad.text)
        assert re.search(r'<p class="error" id="err-api_scopes">is required: one or more of [^<]+</p>', bad.text)
        # What was typed and ticked is kept.
        mixed = await http.post("/settings/api-keys", data={"csrf": csrf_of(page.text), "api_label": "web",
                                                            "scope.public": "on", "scope.admin": "on"})
        assert re.search(r'<p class="error" id="err-api_scopes">public is a scope of its own[^<]*</p>', mixed.text)
        assert re.search(r'name="api_label" maxlength="100" value="web"', mixed.text)
        assert re.search(r'name="scope.public" value="on" checked', mixed.text)
        listed = await http.get("/settings")
        assert "No API keys." not in listed.text and 'web</td>' not in listed.text
        # A form without the session's CSRF token makes nothing.
        forged = await http.post("/settings/api-keys", data={"api_label": "forged", "scope.admin": "on"})
        assert forged.status_code == 403
        assert "forged" not in (await http.get("/settings")).text


async def test_the_last_admin_key_is_kept_with_a_message_and_revoking_the_sessions_key_ends_it(console, app):
    admin_id = app.keys["admin"].split("_")[1]
    async with console.signed_in(app.keys["admin"]) as http:
        page = await http.get("/settings")
        refused = await http.post("/settings/api-keys/revoke", data={"csrf": csrf_of(page.text), "key_id": admin_id})
        assert refused.status_code == 200
        shown = text_of(refused.text)
        assert "The key was not revoked" in shown and "last active admin key" in shown
        assert re.search(r"admin admin \S+ \S+ UTC no Revoke", row_of(refused.text, "admin"))
        # The session goes on: another admin key is made, then the session's own is revoked.
        made = await http.post("/settings/api-keys", data={"csrf": csrf_of(page.text), "api_label": "ops",
                                                           "scope.admin": "on"})
        successor = secret_on(made.text)
        assert successor
        gone = await http.post("/settings/api-keys/revoke", data={"csrf": csrf_of(page.text), "key_id": admin_id})
        assert (gone.status_code, gone.headers["location"]) == (303, "/login?next=/settings")
        later = await http.get("/settings")
        assert later.status_code == 303 and later.headers["location"].startswith("/login")
    # The new admin key signs in, and sees the old one revoked.
    async with console.signed_in(successor) as http:
        page = await http.get("/settings")
        assert re.search(r"admin admin \S+ \S+ UTC \S+ \S+ UTC", row_of(page.text, "admin"))
        assert "(this session's key)" in row_of(page.text, "ops")
