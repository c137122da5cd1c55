"""Campaigns for decision's unit tests: the demo's welcome modal with fields set."""

from __future__ import annotations

from nudge.decision.v1 import decision_service_pb2 as pb
from nudgetools import demo


def campaign(**kw) -> pb.Campaign:
    c = demo.welcome_campaign("seg_signup")
    c.id = kw.pop("id", "cmp_1")
    for k, v in kw.items():
        setattr(c, k, v)
    return c
