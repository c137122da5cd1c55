"""A/B arms and content: which variant (or the control group) a user gets, and in which
locale its content is shown. Pure.

Assignment is sticky: the hash of (campaign, user) picks an arm, and the arm is persisted on
first exposure, so later weight edits move no one who has seen the campaign. An arm the
campaign no longer has (its variant removed) is gone: the user gets a new arm by hash, and
that one is persisted in its place (store: `_ARMS`), so they keep it through later weight
edits as well. The control group is never gone: a control weight set to 0 is a weight edit,
like a variant's weight set to 0, and keeps the users already held out.
"""

from __future__ import annotations

from collections.abc import Callable

from nudge.decision.v1 import decision_internal_service_pb2 as internal_pb
from nudge.decision.v1 import decision_service_pb2 as pb
from nudgelib.buckets import bucket
from services.decision.model import UserState

CONTROL = ""


def assign_variant(campaign: pb.Campaign, user_id: str) -> str:
    """A stable arm for (campaign, user): a variant id, or CONTROL.

    The hash picks a point in [0, total weight); arms take consecutive ranges in the order
    control first, then variants as listed.
    """
    weights = [(CONTROL, campaign.control_weight)] + [
        (v.id, v.weight or (1 if len(campaign.variants) == 1 else 0)) for v in campaign.variants
    ]
    total = sum(w for _, w in weights)
    if total == 0:
        return campaign.variants[0].id
    point = bucket(campaign.id, user_id, total)
    for arm, weight in weights:
        if point < weight:
            return arm
        point -= weight
    return campaign.variants[-1].id  # not reached


def live_arms(campaign: pb.Campaign) -> frozenset[str]:
    """The arms a stored assignment may name and stay: the variants, and CONTROL."""
    return frozenset(v.id for v in campaign.variants) | {CONTROL}


def _has_arm(campaign: pb.Campaign, arm: str) -> bool:
    # live_arms without building the set: this runs for every campaign of every pull.
    return arm == CONTROL or any(v.id == arm for v in campaign.variants)


def arm_for(campaign: pb.Campaign, user_id: str, state: UserState) -> tuple[str, bool]:
    """The user's arm and whether it is new: the persisted one while the campaign still has
    it, else by hash."""
    known = state.arms.get(campaign.id)
    if known is not None and _has_arm(campaign, known):
        return known, False
    return assign_variant(campaign, user_id), True


def without_gone_arms(state: UserState, campaign_of: Callable[[str], pb.Campaign | None]) -> UserState:
    """The state without the arms their campaign no longer has, so a plan treats those users
    as not yet assigned and records the arm it gives them (a pending message's too, which the
    plan records only for a campaign without an arm). An arm of a campaign `campaign_of` does
    not know (stopped, not in the catalog) is kept: nothing says it is gone. The same state
    when nothing is gone, which is nearly always."""
    gone = [c for c, arm in state.arms.items() if (campaign := campaign_of(c)) is not None
            and not _has_arm(campaign, arm)]
    if not gone:
        return state
    return UserState(state.history, {c: arm for c, arm in state.arms.items() if c not in gone})


def _locale_key(locale: str) -> str:
    return locale.lower().replace("_", "-")


def pick_content(variant: pb.Variant, *locales: str) -> pb.LocalizedContent:
    """Content in the first of `locales` the variant has (exact, then by language), else its
    default locale, else its first content."""
    by_locale = {_locale_key(c.locale): c for c in variant.contents}
    for wanted in locales:
        if not wanted:
            continue
        exact = by_locale.get(_locale_key(wanted))
        if exact is not None:
            return exact
        language = _locale_key(wanted).split("-")[0]
        for key, content in by_locale.items():
            if key.split("-")[0] == language:
                return content
    default = by_locale.get(_locale_key(variant.default_locale))
    if default is not None:
        return default
    return variant.contents[0]


def in_locale(message: internal_pb.Decision, campaign: pb.Campaign,
              locales: tuple[str, ...]) -> internal_pb.Decision:
    """A released message in the locale of the client that is now asking (its content was
    picked when it was released, before any client asked)."""
    variant = next((v for v in campaign.variants if v.id == message.variant_id), None)
    if variant is None:
        return message
    chosen = pick_content(variant, *locales)
    out = internal_pb.Decision()
    out.CopyFrom(message)
    out.content.CopyFrom(chosen.content)
    out.locale = chosen.locale
    return out
