"""The judge of a pending triggered send: release, defer (until when, why), drop (why) or
control — the one verdict both the releaser and the pull follow."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from google.protobuf import duration_pb2

from nudge.common.v1 import common_pb2
from nudge.decision.v1 import decision_service_pb2 as pb
from nudgetools import demo
from nudgelib.protoconv import to_timestamp
from services.decision.eligibility import compile_campaign
from services.decision.judge import SEGMENTATION_RECHECK, judge
from services.decision.model import Action, Delivered, PendingSend, UserState
from services.decision.variants import CONTROL, arm_for

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)  # 13:00 in Paris, 07:00 in New York
UTC = pb.AppSettings(default_time_zone="UTC")
USER = common_pb2.UserContext(user_id="u1", known=True, last_seen_time=to_timestamp(NOW))


def triggered(**kw) -> pb.Campaign:
    c = demo.welcome_campaign("seg")
    c.id = "cmp"
    c.audience.ClearField("include_segment_ids")
    c.delivery_mode = pb.DELIVERY_MODE_TRIGGERED
    c.triggers.add(event_name="cart_abandoned")
    for k, v in kw.items():
        getattr(c, k).CopyFrom(v) if hasattr(v, "CopyFrom") else setattr(c, k, v)
    return c


def send(hours_to_live: float = 24, **kw) -> PendingSend:
    return PendingSend("u1", "cmp", NOW + timedelta(hours=hours_to_live), **kw)


def verdict(c: pb.Campaign | None, s: PendingSend | None = None, settings: pb.AppSettings = UTC,
            user: common_pb2.UserContext = USER, state: UserState | None = None, request=None, now=NOW):
    return judge(s or send(), compile_campaign(c) if c else None, settings, user, state or UserState(), now, request)


def test_a_due_send_in_the_audience_is_released_in_the_users_arm():
    v = verdict(triggered())
    assert (v.action, v.arm, v.new_arm) == (Action.RELEASE, "A", True)
    again = verdict(triggered(), state=UserState([], {"cmp": "A"}))
    assert (again.action, again.new_arm) == (Action.RELEASE, False)


def test_before_its_delay_a_send_waits_for_its_due_time():
    v = verdict(triggered(), send(due=NOW + timedelta(minutes=30)))
    assert (v.action, v.reason, v.until) == (Action.DEFER, "DELAY", NOW + timedelta(minutes=30))


@pytest.mark.parametrize("change, reason", [
    (lambda c: setattr(c, "status", pb.CAMPAIGN_STATUS_PAUSED), "NOT_ACTIVE"),
    (lambda c: c.end_time.CopyFrom(to_timestamp(NOW)), "AFTER_END"),
    (lambda c: c.audience.include_segment_ids.append("seg_vip"), "NOT_IN_AUDIENCE"),
])
def test_what_waiting_cannot_change_drops_it(change, reason):
    c = triggered()
    change(c)
    v = verdict(c)
    assert (v.action, v.reason) == (Action.DROP, reason)


def test_expired_or_gone_is_dropped():
    assert (verdict(triggered(), send(hours_to_live=0)).reason) == "EXPIRED"
    assert verdict(None).action is Action.DROP and verdict(None).reason == "NOT_ACTIVE"


def test_outside_the_window_it_waits_for_the_users_next_opening():
    window = pb.SendWindow(start_minute=9 * 60, end_minute=21 * 60)
    new_yorker = common_pb2.UserContext(user_id="u1", known=True, time_zone="America/New_York")
    v = verdict(triggered(send_window=window), user=new_yorker)
    assert (v.action, v.reason, v.until) == (Action.DEFER, "OUTSIDE_WINDOW", datetime(2026, 11, 25, 14, 0, tzinfo=timezone.utc))
    parisian = common_pb2.UserContext(user_id="u1", known=True, time_zone="Europe/Paris")
    assert verdict(triggered(send_window=window), user=parisian).action is Action.RELEASE


def test_outside_the_window_it_is_dropped_if_the_campaign_says_so_or_it_would_expire_first():
    window = pb.SendWindow(start_minute=13 * 60, end_minute=14 * 60)
    dropping = pb.SendWindow(start_minute=13 * 60, end_minute=14 * 60, drop_outside_window=True)
    assert verdict(triggered(send_window=dropping)).action is Action.DROP
    assert verdict(triggered(send_window=window), send(hours_to_live=0.5)).reason == "OUTSIDE_WINDOW"
    assert verdict(triggered(send_window=window), send(hours_to_live=0.5)).action is Action.DROP
    assert verdict(triggered(send_window=window), send(hours_to_live=2)).action is Action.DEFER


def test_in_quiet_hours_it_waits_for_their_end_in_the_users_zone():
    quiet = pb.AppSettings(default_time_zone="Europe/Paris",
                           quiet_hours=pb.SendWindow(start_minute=12 * 60, end_minute=14 * 60))
    v = verdict(triggered(), settings=quiet)  # 13:00 in Paris, the app's default zone
    assert (v.action, v.reason, v.until) == (Action.DEFER, "QUIET_HOURS", datetime(2026, 11, 25, 13, 0, tzinfo=timezone.utc))
    tokyo = common_pb2.UserContext(user_id="u1", known=True, time_zone="Asia/Tokyo")  # 21:00 there
    assert verdict(triggered(), settings=quiet, user=tokyo).action is Action.RELEASE
    assert verdict(triggered(), send(hours_to_live=0.5), settings=quiet).action is Action.DROP


def test_a_full_cap_defers_to_when_it_frees_up_or_drops_when_that_is_never():
    daily = pb.AppSettings(default_time_zone="UTC", cap_rules=[pb.CapRule(id="1-per-day", max_messages=1,
                                                                            calendar_days=1)])
    state = UserState([Delivered("other", (), NOW - timedelta(hours=1))], {})
    v = verdict(triggered(), settings=daily, state=state)
    assert (v.action, v.reason, v.until) == (Action.DEFER, "CAPPED", datetime(2026, 11, 26, tzinfo=timezone.utc))
    assert verdict(triggered(), send(hours_to_live=6), settings=daily, state=state).action is Action.DROP
    once = triggered(caps=pb.CampaignCaps(lifetime_max=1))
    seen = UserState([Delivered("cmp", (), NOW - timedelta(days=3))], {"cmp": "A"})
    assert (verdict(once, state=seen).action, verdict(once, state=seen).reason) == (Action.DROP, "CAPPED")


def test_before_the_start_it_waits_for_the_start_unless_it_expires_first():
    c = triggered(start_time=to_timestamp(NOW + timedelta(hours=2)))
    assert (verdict(c).action, verdict(c).until) == (Action.DEFER, NOW + timedelta(hours=2))
    assert verdict(c, send(hours_to_live=1)).action is Action.DROP


def test_a_control_user_gets_control_and_the_exposure_is_new_once():
    c = triggered(control_weight=1)
    c.variants[0].weight = 1
    user_id = next(u for u in (f"user-{i}" for i in range(200)) if arm_for(c, u, UserState())[0] == CONTROL)
    s = PendingSend(user_id, "cmp", NOW + timedelta(hours=1))
    first = judge(s, compile_campaign(c), UTC, USER, UserState(), NOW)
    assert (first.action, first.arm, first.new_arm) == (Action.CONTROL, CONTROL, True)
    later = judge(s, compile_campaign(c), UTC, USER, UserState([], {"cmp": CONTROL}), NOW)
    assert (later.action, later.new_arm) == (Action.CONTROL, False)


def test_an_event_triggered_send_for_a_segment_waits_until_segmentation_has_its_event():
    c = triggered()
    c.audience.include_segment_ids.append("seg_buyers")
    s = send(cause="event:buy-1", triggered_at=NOW)
    behind = common_pb2.UserContext(user_id="u1", known=True, last_seen_time=to_timestamp(NOW - timedelta(seconds=1)))
    v = verdict(c, s, user=behind)
    assert (v.action, v.reason, v.until) == (Action.DEFER, "WAITING_FOR_SEGMENTATION", NOW + SEGMENTATION_RECHECK)
    caught_up = common_pb2.UserContext(user_id="u1", known=True, last_seen_time=to_timestamp(NOW),
                                       segment_ids=["seg_buyers"])
    assert verdict(c, s, user=caught_up).action is Action.RELEASE
    # A segment-entry cause, or an audience of everyone, never waits.
    assert verdict(c, send(cause="segment:seg_buyers:1", triggered_at=NOW), user=behind).reason == "NOT_IN_AUDIENCE"
    assert verdict(triggered(), s, user=behind).action is Action.RELEASE


def test_a_released_message_waits_for_a_client_that_fits_and_keeps_its_arm():
    c = triggered()
    c.audience.platforms.append(common_pb2.PLATFORM_IOS)
    s = send(arm="A")
    android = pb.RequestContext(platform=common_pb2.PLATFORM_ANDROID)
    v = verdict(c, s, request=android)
    assert (v.action, v.reason, v.until) == (Action.DEFER, "PLATFORM", None)
    ios = verdict(c, s, request=pb.RequestContext(platform=common_pb2.PLATFORM_IOS))
    assert (ios.action, ios.arm, ios.new_arm) == (Action.RELEASE, "A", False)
    # Without a client (the release), the client's rules are left for when one asks.
    assert verdict(c, send()).action is Action.RELEASE


def test_the_trigger_delay_does_not_count_once_due():
    c = triggered()
    c.triggers[0].delay.CopyFrom(duration_pb2.Duration(seconds=1800))
    assert verdict(c, send(due=NOW)).action is Action.RELEASE


def test_a_held_send_waits_until_every_timing_rule_allows_it_named_by_the_one_that_holds_it_last():
    # 13:00 in Paris, outside a 15:00-21:00 window; quiet hours 14:00-16:00 cover the
    # opening, and the day cap of 3 is full until midnight: nothing can go before tomorrow
    # 16:00 (the window opens at 15:00 in quiet hours), so the send waits for that, and a
    # send that expires before then is dropped now rather than deferred again and again.
    settings = pb.AppSettings(default_time_zone="Europe/Paris",
                              quiet_hours=pb.SendWindow(start_minute=14 * 60, end_minute=16 * 60),
                              cap_rules=[pb.CapRule(id="3-per-day", max_messages=3, calendar_days=1)])
    window = pb.SendWindow(start_minute=15 * 60, end_minute=21 * 60)
    today = UserState([Delivered("other", (), NOW - timedelta(minutes=m)) for m in (10, 20, 30)], {})
    v = verdict(triggered(send_window=window), send(hours_to_live=48), settings=settings, state=today)
    assert (v.action, v.reason, v.until) == (Action.DEFER, "QUIET_HOURS", datetime(2026, 11, 26, 15, 0, tzinfo=timezone.utc))
    assert verdict(triggered(send_window=window), send(hours_to_live=20), settings=settings,
                   state=today).action is Action.DROP
    # Without the full cap, today's opening in quiet hours is followed to their end.
    v = verdict(triggered(send_window=window), settings=settings)
    assert (v.reason, v.until) == ("QUIET_HOURS", datetime(2026, 11, 25, 15, 0, tzinfo=timezone.utc))
