"""User contexts as decision and delivery get them: built from a profile after evaluating,
or straight from a stored row when the stored memberships are still valid. Pure; the cache
in front of them is `caches.ContextCache`."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from nudge.common.v1 import common_pb2
from nudgelib.protoconv import set_attribute, set_timestamp
from services.segmentation.model import Profile


def context_proto(profile: Profile, segment_ids: list[str], valid_until: datetime | None) -> common_pb2.UserContext:
    ctx = common_pb2.UserContext(
        user_id=profile.user_id,
        known=profile.known,
        time_zone=profile.time_zone,
        locale=profile.locale,
        app_version=profile.app_version,
        platforms=sorted(profile.platforms),
        segment_ids=segment_ids,
    )
    for name, value in profile.stored_attributes.items():
        set_attribute(ctx.attributes[name], value)
    set_timestamp(ctx.first_seen_time, profile.first_seen)
    set_timestamp(ctx.last_seen_time, profile.last_seen)
    set_timestamp(ctx.valid_until_time, valid_until)
    return ctx


def context_from_row(row: Mapping[str, Any], segment_ids: list[str],
                     valid_until: datetime | None) -> common_pb2.UserContext:
    """context_proto straight from a stored profile row: the read path, where nothing needs
    evaluating, skips building a Profile."""
    ctx = common_pb2.UserContext(
        user_id=row["user_id"], known=True, time_zone=row["time_zone"], locale=row["locale"],
        app_version=row["app_version"], platforms=row["platforms"], segment_ids=segment_ids,
    )
    for name, value in json.loads(row["attributes"]).items():
        set_attribute(ctx.attributes[name], value)
    set_timestamp(ctx.first_seen_time, row["first_seen"])
    set_timestamp(ctx.last_seen_time, row["last_seen"])
    set_timestamp(ctx.valid_until_time, valid_until)
    return ctx
