"""Ordered outbox shards: a user's announcements always travel through one shard, so they
arrive in commit order, and users spread over every shard."""

from __future__ import annotations

from nudgelib.ordered_outbox import shard_of


def test_a_users_changes_always_share_a_shard():
    assert shard_of("app/u1", 4) == shard_of("app/u1", 4)
    assert {shard_of(f"app/u{i}", 4) for i in range(100)} == {0, 1, 2, 3}
