"""Stored arms the campaign no longer has (a removed variant): the user gets a new arm by
hash, marked new (to be persisted in place of the gone one), and a pull plans as if they had
none. The control group is never gone: its weight set to 0 keeps those held out."""

from __future__ import annotations

from nudge.decision.v1 import decision_service_pb2 as pb
from services.decision.model import Delivered, UserState
from services.decision.variants import CONTROL, arm_for, assign_variant, live_arms, without_gone_arms
from tests.unit.decision.builders import campaign


def two_ways(control: int = 0, cid: str = "cmp") -> pb.Campaign:
    c = campaign(id=cid, control_weight=control)
    b = c.variants.add()
    b.CopyFrom(c.variants[0])
    b.id = "B"
    return c


def test_live_arms_are_the_variants_and_control():
    assert live_arms(two_ways()) == {"A", "B", CONTROL}
    assert live_arms(two_ways(control=1)) == {"A", "B", CONTROL}


def test_a_removed_variant_gives_a_new_arm_by_hash():
    c = two_ways()
    c.variants.pop()  # B removed
    assert arm_for(c, "u1", UserState([], {"cmp": "B"})) == ("A", True)
    # A live stored arm is kept, not new.
    assert arm_for(c, "u1", UserState([], {"cmp": "A"})) == ("A", False)


def test_a_control_weight_set_to_0_keeps_those_held_out():
    with_control = two_ways(control=5)
    user = next(u for u in (f"u{i}" for i in range(1000)) if assign_variant(with_control, u) == CONTROL)
    assert arm_for(two_ways(control=0), user, UserState([], {"cmp": CONTROL})) == (CONTROL, False)


def test_without_gone_arms_drops_only_arms_their_campaign_no_longer_has():
    kept, gone = two_ways(cid="kept"), two_ways(cid="gone")
    gone.variants.pop()
    campaigns = {"kept": kept, "gone": gone}
    history = [Delivered("kept", (), None)]  # type: ignore[arg-type]
    state = UserState(history, {"kept": "B", "gone": "B", "stopped": "X", "held": CONTROL})
    campaigns["held"] = two_ways(cid="held")  # its control weight 0
    current = without_gone_arms(state, campaigns.get)
    # A campaign not in the catalog (stopped) keeps its arm: nothing says it is gone.
    assert current.arms == {"kept": "B", "stopped": "X", "held": CONTROL}
    assert current.history is history
    assert state.arms == {"kept": "B", "gone": "B", "stopped": "X", "held": CONTROL}  # not changed


def test_without_gone_arms_is_the_same_state_when_nothing_is_gone():
    state = UserState([], {"kept": "A"})
    assert without_gone_arms(state, {"kept": two_ways(cid="kept")}.get) is state
