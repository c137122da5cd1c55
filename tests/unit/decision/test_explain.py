"""What Explain says of a user's triggered sends: each pending one as the judge would decide
it now, each settled one as it ended, instants in the user's local time in the text."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from nudge.common.v1 import common_pb2
from nudge.decision.v1 import decision_service_pb2 as pb
from nudgelib.protoconv import to_timestamp
from services.decision.eligibility import compile_campaign
from services.decision.explain import explain_sends
from services.decision.model import Delivered, StoredSend, UserState
from services.decision.windows import local_text, zone
from tests.unit.decision.builders import campaign

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)  # 13:00 in Paris
PARIS = pb.AppSettings(default_time_zone="Europe/Paris",
                       cap_rules=[pb.CapRule(id="1-per-day", max_messages=1, calendar_days=1)])
USER = common_pb2.UserContext(user_id="u1", known=True, last_seen_time=to_timestamp(NOW))


def cart(window: pb.SendWindow | None = None) -> pb.Campaign:
    c = campaign(id="cmp", name="Cart", delivery_mode=pb.DELIVERY_MODE_TRIGGERED)
    if window is not None:
        c.send_window.CopyFrom(window)
    c.audience.ClearField("include_segment_ids")
    c.triggers.add(event_name="cart_abandoned")
    return c


def row(status: str = "pending", outcome: str = "", due: timedelta = timedelta(0), **kw) -> StoredSend:
    return StoredSend(id="msg_1", user_id="u1", campaign_id="cmp", trigger_index=0, cause="event:e1",
                      triggered_at=NOW - timedelta(minutes=10), due_at=NOW + due, expire_at=NOW + timedelta(hours=24),
                      status=status, outcome=outcome, updated_at=NOW - timedelta(minutes=1), **kw)


def explain(send: StoredSend, c: pb.Campaign | None = None, state: UserState | None = None,
            user: common_pb2.UserContext = USER) -> pb.PendingSend:
    active = {} if c is None else {c.id: compile_campaign(c)}
    (out,) = explain_sends([send], active, {"cmp": "Cart"}, PARIS, user, state or UserState(), NOW)
    return out


def test_local_text_is_the_users_wall_time_with_its_offset():
    assert local_text(NOW, zone("Europe/Paris")) == "2026-11-25T13:00:00+01:00"
    assert local_text(NOW + timedelta(microseconds=5), zone("America/New_York")) == "2026-11-25T07:00:00-05:00"
    assert local_text(None, zone("UTC")) == "never"


def test_a_send_in_its_delay_waits_until_its_due_time():
    out = explain(row(due=timedelta(minutes=20)), cart())
    assert (out.state, out.reason) == (pb.PENDING_SEND_STATE_WAITING_FOR_DELAY, "DELAY")
    assert out.until_time == to_timestamp(NOW + timedelta(minutes=20)) == out.due_time
    assert out.detail == "waiting for the trigger's delay until 2026-11-25T13:20:00+01:00"
    assert (out.campaign_name, out.cause, out.trigger_time) == ("Cart", "event:e1",
                                                               to_timestamp(NOW - timedelta(minutes=10)))


def test_a_deferred_send_is_judged_past_its_delay_and_names_the_full_cap():
    # The releaser deferred it to the cap's end: its due_at is that end, not a delay.
    history = UserState(history=[Delivered("other", (), NOW - timedelta(hours=1))])
    out = explain(row(outcome="CAPPED", due=timedelta(hours=11)), cart(), history)
    assert (out.state, out.reason, out.rule) == (pb.PENDING_SEND_STATE_HELD, "CAPPED", "1-per-day")
    midnight = datetime(2026, 11, 25, 23, 0, tzinfo=timezone.utc)  # 00:00 in Paris
    assert out.until_time == to_timestamp(midnight)
    assert out.detail == "held: capped by 1-per-day until 2026-11-26T00:00:00+01:00"


def test_a_send_held_by_the_window_says_when_it_opens_in_local_time():
    out = explain(row(outcome="OUTSIDE_WINDOW"), cart(pb.SendWindow(start_minute=18 * 60,
                                                                               end_minute=20 * 60)))
    assert (out.state, out.reason) == (pb.PENDING_SEND_STATE_HELD, "OUTSIDE_WINDOW")
    assert out.until_time == to_timestamp(datetime(2026, 11, 25, 17, 0, tzinfo=timezone.utc))
    assert out.detail == "held: outside the send window until 2026-11-25T18:00:00+01:00"


def test_a_pending_send_of_a_stopped_campaign_will_be_dropped_and_a_free_one_is_due():
    stopped = explain(row(due=timedelta(minutes=20)), None)
    assert (stopped.state, stopped.reason) == (pb.PENDING_SEND_STATE_WILL_DROP, "NOT_ACTIVE")
    assert not stopped.HasField("until_time")
    due = explain(row(), cart())
    assert (due.state, due.reason, due.HasField("until_time")) == (pb.PENDING_SEND_STATE_DUE, "", False)


def test_a_send_whose_trigger_may_enter_the_audience_waits_for_segmentation():
    c = cart()
    c.audience.include_segment_ids.append("seg_buyers")
    behind = common_pb2.UserContext(user_id="u1", known=True,
                                    last_seen_time=to_timestamp(NOW - timedelta(hours=1)))
    out = explain(row(), c, user=behind)
    assert (out.state, out.reason) == (pb.PENDING_SEND_STATE_WAITING_FOR_SEGMENTATION, "WAITING_FOR_SEGMENTATION")
    assert out.HasField("until_time")


def test_settled_sends_say_how_they_ended():
    cancelled = explain(row("cancelled", "EXCEPTION_EVENT", cancelled_by_event_id="p1",
                            cancelled_by_event_name="purchase"), cart())
    assert (cancelled.state, cancelled.cancelled_by_event_name, cancelled.cancelled_by_event_id) == (
        pb.PENDING_SEND_STATE_CANCELLED, "purchase", "p1")
    assert cancelled.detail == "cancelled by exception event purchase (p1) at 2026-11-25T12:59:00+01:00"
    assert cancelled.finish_time == to_timestamp(NOW - timedelta(minutes=1))
    dropped = explain(row("dropped", "NOT_IN_AUDIENCE"), cart())
    assert (dropped.state, dropped.reason) == (pb.PENDING_SEND_STATE_DROPPED, "NOT_IN_AUDIENCE")
    assert dropped.detail == "dropped (NOT_IN_AUDIENCE) at 2026-11-25T12:59:00+01:00"
    assert explain(row("expired", "EXPIRED"), cart()).state == pb.PENDING_SEND_STATE_EXPIRED
    released = explain(row("released"), cart())
    assert (released.state, released.reason, released.HasField("until_time")) == (
        pb.PENDING_SEND_STATE_RELEASED, "", False)
