"""Grouping of outbox rows into consumer calls: every lane replayed in id order."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from nudgelib.eventlog.grouping import group
from nudgelib.eventlog.lanes import LANES


def row(id_: int, lane: int, app: str = "a", kind: str = "event") -> dict:
    return {"id": id_, "lane": lane, "app_id": app, "kind": kind}


def test_one_app_one_kind_is_one_call():
    calls = group([row(i, i % LANES) for i in range(40)])
    assert len(calls) == 1 and [r["id"] for r in calls[0].rows] == list(range(40))


def test_a_profile_update_splits_only_its_own_lane():
    rows = [row(1, 0), row(2, 1), row(3, 0, kind="profile"), row(4, 0), row(5, 1)]
    calls = group(rows)
    assert [(c.kind, [r["id"] for r in c.rows]) for c in calls] == [
        ("event", [1, 2, 5]), ("profile", [3]), ("event", [4])]


rows_strategy = st.lists(
    st.tuples(st.integers(0, 3), st.sampled_from(["a", "b"]), st.sampled_from(["event", "profile"])),
    max_size=60,
)


@given(rows_strategy)
def test_grouping_replays_every_lane_in_id_order(spec):
    rows = [row(i, lane, app, kind) for i, (lane, app, kind) in enumerate(spec)]
    calls = group(rows)
    sent = [r for c in calls for r in c.rows]
    assert sorted(r["id"] for r in sent) == [r["id"] for r in rows]
    for call in calls:
        assert {(r["app_id"], r["kind"]) for r in call.rows} == {(call.app_id, call.kind)}
    for lane in range(4):
        assert [r["id"] for r in sent if r["lane"] == lane] == [r["id"] for r in rows if r["lane"] == lane]
