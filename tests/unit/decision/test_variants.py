"""Variant assignment, the control group and content localization."""

from __future__ import annotations

from collections import Counter

from nudge.common.v1 import common_pb2
from nudge.decision.v1 import decision_service_pb2 as pb
from services.decision.model import UserState
from services.decision.variants import CONTROL, arm_for, assign_variant, pick_content
from tests.unit.decision.builders import campaign


def test_variant_assignment_is_sticky_and_split_by_weight():
    c = campaign()
    base = c.variants[0]
    c.ClearField("variants")
    for vid, weight in (("A", 2), ("B", 1)):
        v = c.variants.add()
        v.CopyFrom(base)
        v.id, v.weight = vid, weight
    c.control_weight = 1
    arms = Counter(assign_variant(c, f"user-{i}") for i in range(8000))
    assert abs(arms["A"] / 8000 - 0.5) < 0.03
    assert abs(arms["B"] / 8000 - 0.25) < 0.03
    assert abs(arms[CONTROL] / 8000 - 0.25) < 0.03
    assert all(assign_variant(c, f"user-{i}") == assign_variant(c, f"user-{i}") for i in range(100))


def test_content_falls_back_by_language_then_default():
    v = pb.Variant(id="A", default_locale="en", contents=[
        pb.LocalizedContent(locale="en", content=common_pb2.MessageContent(title="Hi")),
        pb.LocalizedContent(locale="fr-FR", content=common_pb2.MessageContent(title="Salut")),
    ])
    assert pick_content(v, "fr_FR").content.title == "Salut"
    assert pick_content(v, "fr-CA").content.title == "Salut"
    assert pick_content(v, "", "de-DE").content.title == "Hi"


def test_sticky_variant_survives_weight_changes():
    c = campaign(id="cmp")
    c.variants[0].weight = 1
    b = c.variants.add()
    b.CopyFrom(c.variants[0])
    b.id = "B"
    arms = {u: arm_for(c, u, UserState())[0] for u in (f"user-{i}" for i in range(100))}
    c.variants[0].weight, b.weight = 1, 99  # the operator moves traffic to B
    for user, arm in arms.items():
        assert arm_for(c, user, UserState([], {"cmp": arm}))[0] == arm
