"""Page sizes and page tokens: what every list RPC shares."""

from __future__ import annotations

import pytest

from nudgelib.pagination import decode_token, encode_token, page_size


def test_a_page_size_of_zero_is_the_default_and_a_large_one_is_capped():
    assert page_size(0) == 50 and page_size(7) == 7 and page_size(10_000) == 100
    assert page_size(0, default=100, maximum=1000) == 100 and page_size(5000, maximum=1000) == 1000


def test_a_token_gives_back_its_parts_and_nothing_else_passes_for_one():
    token = encode_token("2026-12-01T10:00:00+00:00", "msg|1", "3")
    assert decode_token(token, 3) == ["2026-12-01T10:00:00+00:00", "msg|1", "3"]
    for bad in ("not base64!", encode_token("a", "b"), encode_token("a", "", "c"), "\u00e9"):
        with pytest.raises(ValueError):
            decode_token(bad, 3)


def test_a_list_in_creation_order_pages_by_time_and_id():
    from datetime import datetime, timezone

    from nudgelib.pagination import created_after, created_page

    t = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)
    rows = [(t, f"k{i}") for i in range(3)]  # read with one more than the page size
    page, token = created_page(rows, 2, lambda r: r)
    assert page == rows[:2] and created_after(token) == (t, "k1")
    assert created_page(rows[:2], 2, lambda r: r) == (rows[:2], "")  # the last page
    assert created_after("") is None
