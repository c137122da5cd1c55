"""The plan of a pull: priority, pending messages, variants, control groups."""

from __future__ import annotations

from datetime import datetime, timedelta

from nudge.common.v1 import common_pb2
from nudge.decision.v1 import decision_internal_service_pb2 as internal_pb
from nudge.decision.v1 import decision_service_pb2 as pb
from nudgetools import demo
from nudgelib.protoconv import to_timestamp
from services.decision.catalog import AppCatalog
from services.decision.model import Delivered, UserState
from services.decision.plan import plan_pull
from services.decision.variants import CONTROL, arm_for
from tests.unit.decision.test_triggers import NOW, abandoned_cart


def on_request(cid: str, priority: int, **kw) -> pb.Campaign:
    c = demo.welcome_campaign("seg")
    c.id, c.priority = cid, priority
    c.audience.ClearField("include_segment_ids")
    for k, v in kw.items():
        if hasattr(v, "CopyFrom"):
            getattr(c, k).CopyFrom(v)
        else:
            setattr(c, k, v)
    return c


def catalog(*campaigns: pb.Campaign, settings: pb.AppSettings | None = None) -> AppCatalog:
    return AppCatalog.of(list(campaigns), settings or pb.AppSettings(default_time_zone="UTC"))


USER = common_pb2.UserContext(user_id="u1", known=True)


def pull(cat: AppCatalog, state: UserState | None = None, limit: int = 1, pending=(), now: datetime = NOW):
    return plan_pull(cat, USER, pb.RequestContext(), state or UserState(), now, limit, list(pending))


class TestPlan:
    def test_highest_priority_wins_and_ties_break_by_id(self):
        cat = catalog(on_request("cmp_b", 5), on_request("cmp_a", 5), on_request("cmp_low", 1))
        assert [d.campaign_id for d in pull(cat).decisions] == ["cmp_a"]
        assert [d.campaign_id for d in pull(cat, limit=3).decisions] == ["cmp_a", "cmp_b", "cmp_low"]

    def test_start_and_end(self):
        later = on_request("cmp_later", 9)
        later.start_time.CopyFrom(to_timestamp(NOW + timedelta(hours=1)))
        ended = on_request("cmp_ended", 8)
        ended.end_time.CopyFrom(to_timestamp(NOW))
        cat = catalog(later, ended, on_request("cmp_now", 1))
        assert [d.campaign_id for d in pull(cat).decisions] == ["cmp_now"]
        assert [d.campaign_id for d in pull(cat, now=NOW + timedelta(hours=1)).decisions] == ["cmp_later"]

    def test_a_pull_that_hands_out_nothing_writes_nothing(self):
        capped = on_request("cmp", 1, caps=pb.CampaignCaps(lifetime_max=1))
        state = UserState([Delivered("cmp", (), NOW - timedelta(days=1))], {"cmp": "A"})
        plan = pull(catalog(capped), state)
        assert plan.decisions == [] and not plan.writes

    def test_delivery_and_first_exposure_are_written_once(self):
        plan = pull(catalog(on_request("cmp", 1)))
        (d,) = plan.decisions
        assert plan.reservation.deliveries == [(d.message_id, "cmp", "A", ("onboarding",), True)]
        assert plan.reservation.arms == [("cmp", "A")]
        again = pull(catalog(on_request("cmp", 1)), UserState([], {"cmp": "A"}))
        assert again.reservation.arms == []

    def test_control_users_get_nothing_and_their_first_exposure_is_recorded(self):
        c = on_request("cmp", 1, control_weight=1)
        c.variants[0].weight = 1
        users = [f"user-{i}" for i in range(200)]
        control = next(u for u in users if arm_for(c, u, UserState())[0] == CONTROL)
        user = common_pb2.UserContext(user_id=control)
        plan = plan_pull(catalog(c), user, pb.RequestContext(), UserState(), NOW, 1, [])
        assert plan.decisions == [] and [x.campaign_id for x in plan.controls] == ["cmp"]
        assert plan.reservation.arms == [("cmp", CONTROL)]
        again = plan_pull(catalog(c), user, pb.RequestContext(), UserState([], {"cmp": CONTROL}), NOW, 1, [])
        assert again.controls == [] and not again.writes

    def test_pending_triggered_messages_take_their_campaigns_rank_and_dead_ones_are_dropped(self):
        cart = abandoned_cart()  # priority 0
        cat = catalog(on_request("cmp_promo", 100), cart)
        waiting = internal_pb.Decision(message_id="msg_p", campaign_id=cart.id, variant_id="A",
                                       expire_time=to_timestamp(NOW + timedelta(hours=1)))
        gone = internal_pb.Decision(message_id="msg_gone", campaign_id="cmp_deleted", variant_id="A",
                                    expire_time=to_timestamp(NOW + timedelta(hours=1)))
        stale = internal_pb.Decision(message_id="msg_old", campaign_id=cart.id, variant_id="A",
                                     expire_time=to_timestamp(NOW))
        plan = pull(cat, limit=2, pending=[gone, waiting, stale])
        assert [d.campaign_id for d in plan.decisions] == ["cmp_promo", cart.id]
        assert plan.decisions[1].message_id == "msg_p"
        # The expired one is not a drop: delivery counts it as expired.
        assert [(d.message_id, d.reason) for d in plan.dropped] == [
            ("msg_gone", internal_pb.DROP_REASON_CAMPAIGN_NOT_RUNNING)]
        # One message asked for: the higher priority wins, and the pending one waits in the
        # inbox for a later pull, neither handed out nor dropped.
        one = pull(cat, limit=1, pending=[waiting])
        assert [d.campaign_id for d in one.decisions] == ["cmp_promo"] and one.dropped == []
        assert [v.campaign.id for v in one.verdicts if v.verdict == pb.VERDICT_CHOSEN] == ["cmp_promo"]

    def test_a_pending_message_of_a_higher_priority_campaign_goes_before_an_on_request_one(self):
        cart = abandoned_cart()
        cart.priority = 50
        cat = catalog(on_request("cmp_promo", 10), cart)
        waiting = internal_pb.Decision(message_id="msg_p", campaign_id=cart.id, variant_id="A",
                                       expire_time=to_timestamp(NOW + timedelta(hours=1)))
        plan = pull(cat, limit=1, pending=[waiting])
        assert [d.message_id for d in plan.decisions] == ["msg_p"]
        [promo] = [v for v in plan.verdicts if v.campaign.id == "cmp_promo"]
        assert promo.verdict == pb.VERDICT_LOWER_PRIORITY

    def test_a_pending_message_handed_out_counts_toward_the_caps_of_campaigns_ranked_after_it(self):
        cart = abandoned_cart()
        cart.priority = 50
        settings = pb.AppSettings(default_time_zone="UTC",
                                  cap_rules=[pb.CapRule(id="1-per-day", max_messages=1, calendar_days=1)])
        cat = catalog(on_request("cmp_promo", 10), cart, settings=settings)
        waiting = internal_pb.Decision(message_id="msg_p", campaign_id=cart.id, variant_id="A",
                                       expire_time=to_timestamp(NOW + timedelta(hours=1)))
        plan = pull(cat, limit=2, pending=[waiting])
        assert [d.message_id for d in plan.decisions] == ["msg_p"]
        [promo] = [v for v in plan.verdicts if v.campaign.id == "cmp_promo"]
        assert promo.exclusion.reason == "CAPPED"

    def test_pending_message_outside_its_window_waits(self):
        cart = abandoned_cart()
        cart.send_window.CopyFrom(pb.SendWindow(start_minute=13 * 60, end_minute=14 * 60))
        waiting = internal_pb.Decision(message_id="msg_p", campaign_id=cart.id, variant_id="A",
                                       expire_time=to_timestamp(NOW + timedelta(hours=5)))
        plan = pull(catalog(cart), pending=[waiting])
        assert plan.decisions == [] and plan.dropped == []
        assert [d.message_id for d in pull(catalog(cart), pending=[waiting], now=NOW + timedelta(hours=1)).decisions] == ["msg_p"]


def test_a_released_message_outside_a_dropping_window_is_dropped_at_the_pull_too():
    cart = abandoned_cart()
    cart.send_window.CopyFrom(pb.SendWindow(start_minute=13 * 60, end_minute=14 * 60, drop_outside_window=True))
    waiting = internal_pb.Decision(message_id="msg_p", campaign_id=cart.id, variant_id="A",
                                   expire_time=to_timestamp(NOW + timedelta(hours=5)))
    plan = pull(catalog(cart), pending=[waiting])
    assert plan.decisions == [] and [(d.message_id, d.reason) for d in plan.dropped] == [
        ("msg_p", internal_pb.DROP_REASON_OUTSIDE_WINDOW)]
