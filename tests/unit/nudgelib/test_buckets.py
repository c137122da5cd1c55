"""The stable bucket: segments and variants persist in effect what it gives each user, so it
must give the same number on every replica and in every release."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nudgelib.buckets import bucket


@given(st.text(min_size=1, max_size=20))
def test_random_bucket_is_stable_and_in_range(user_id):
    b = bucket("salt", user_id, 100)
    assert 0 <= b < 100 and b == bucket("salt", user_id, 100)


@pytest.mark.parametrize("salt, user_id, modulo, expected", [
    ("salt", "u1", 100, 20),
    ("s", "user-0", 100, 4),
    ("spring-sale", "alice", 100, 49),
    ("", "", 100, 68),
    ("camp_1", "u1", 7, 1),
    ("camp_1", "u1", 2**64, 10510529746756509877),  # the whole first 8 bytes, big-endian
])
def test_known_inputs_keep_their_bucket(salt, user_id, modulo, expected):
    # sha256("salt:user_id"), first 8 bytes big-endian, modulo N: a change here would move
    # users already placed in a segment or a variant.
    assert bucket(salt, user_id, modulo) == expected


def test_a_modulo_below_one_is_refused():
    with pytest.raises(ValueError, match="modulo"):
        bucket("s", "u", 0)
