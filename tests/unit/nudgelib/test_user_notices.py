"""User notices fit NOTIFY's payload limit however many users they name, and read back."""

import json

import pytest

from nudgelib import user_notices


def test_many_users_go_in_several_notices_each_under_the_limit():
    users = [f"user-{i:05d}-é\"x" for i in range(3000)]  # escapes make JSON longer than the text
    notices = user_notices.payloads("app_1", users, "origin1")
    assert len(notices) > 1
    assert all(len(n.encode()) < 8000 for n in notices)
    back = [u for n in notices for u in user_notices.parse(n)[2]]
    assert back == users
    assert {user_notices.parse(n)[:2] for n in notices} == {("origin1", "app_1")}


def test_a_whole_app_notice_names_no_users():
    assert user_notices.parse(user_notices.whole_app("app_1", "o")) == ("o", "app_1", None)


@pytest.mark.parametrize("payload", ["", "not json", "[]", json.dumps({"u": []}), json.dumps({"a": 1, "u": []}),
                                     json.dumps({"a": "x", "u": "u1"})])
def test_anything_else_is_a_bad_notice(payload):
    with pytest.raises(user_notices.BadNotice):
        user_notices.parse(payload)
