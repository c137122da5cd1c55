"""The shape of campaign and segment keys."""

from __future__ import annotations

from nudgelib.keys import key_problems


def test_keys():
    for good in ("a", "0", "cart-abandoners", "nps.v2", "win_back-30d", "a" * 64):
        assert key_problems(good, "campaign.key") == [], good
    for bad in ("A", "-a", ".a", "_a", "a b", "a/b", "é", "a" * 65, "a\x00"):
        assert [p.field for p in key_problems(bad, "campaign.key")] == ["campaign.key"], bad
    assert key_problems("", "key") == []
    assert [p.field for p in key_problems("", "key", required=True)] == ["key"]
