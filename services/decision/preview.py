"""Previews and test sends of a campaign's message: which variant and content they show, for
whom, and the checks of their requests. Pure: the content is picked by the pull's own rule
(variants.pick_content) and rendered by delivery's own code (nudgelib.templates)."""

from __future__ import annotations

from nudge.common.v1 import common_pb2
from nudge.decision.v1 import decision_service_pb2 as pb
from nudgelib.violations import FieldViolation
from services.decision.variants import pick_content

MAX_USER_ID = 256
MAX_LOCALE = 64
MAX_ATTRIBUTES = 100


def request_problems(campaign_id: str, user_id: str, locale: str, user_required: bool,
                     attributes: int = 0) -> list[FieldViolation]:
    out = []
    if not campaign_id:
        out.append(FieldViolation("campaign_id", "is required"))
    if user_required and not user_id:
        out.append(FieldViolation("user_id", "is required"))
    elif len(user_id) > MAX_USER_ID:
        out.append(FieldViolation("user_id", f"is longer than {MAX_USER_ID} characters"))
    if len(locale) > MAX_LOCALE:
        out.append(FieldViolation("locale", f"is longer than {MAX_LOCALE} characters"))
    if attributes > MAX_ATTRIBUTES:
        out.append(FieldViolation("attributes", f"at most {MAX_ATTRIBUTES}"))
    return out


def variant_of(campaign: pb.Campaign, variant_id: str) -> pb.Variant | None:
    """The variant asked for; its first when `variant_id` is empty. None when it has none."""
    if not variant_id:
        return campaign.variants[0] if campaign.variants else None
    return next((v for v in campaign.variants if v.id == variant_id), None)


def content_for(variant: pb.Variant, asked: str, user: common_pb2.UserContext,
                settings: pb.AppSettings) -> pb.LocalizedContent:
    """The content a pull would pick: the asked locale, the user's, the app's default, then
    the variant's own default (plan.plan_pull's order)."""
    return pick_content(variant, asked, user.locale, settings.default_locale)


def preview_user(context: common_pb2.UserContext, user_id: str,
                 attributes) -> common_pb2.UserContext:
    """The user templates see: segmentation's context (empty without a user), with the
    given attributes set over its own."""
    out = common_pb2.UserContext()
    out.CopyFrom(context)
    out.user_id = user_id
    for name, value in attributes.items():
        out.attributes[name].CopyFrom(value)
    return out
