"""Validation of campaigns and app settings: pure functions returning field violations."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from nudge.common.v1 import common_pb2
from nudge.decision.v1 import decision_service_pb2 as pb
from nudgelib import filters, templates
from nudgelib.keys import key_problems
from nudgelib.violations import FieldViolation
from nudgelib.names import EVENT_NAME_RULE, is_event_name
from nudgelib.versions import parse_version
from nudgelib.protoconv import to_datetime, to_timedelta

MAX_NAME = 200
ID_RE = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
COLOR_RE = re.compile(r"^#([0-9A-Fa-f]{6}|[0-9A-Fa-f]{8})$")
MINUTES_PER_DAY = 24 * 60
MAX_EXCEPTION_EVENTS = 20
# Segments an audience names (each list) and triggers a campaign has: far above any real
# campaign, and well inside what one CheckSegments call to segmentation answers (1,000).
MAX_AUDIENCE_SEGMENTS = 100
MAX_TRIGGERS = 50
# Conversion events, like a trigger's exception events.
MAX_CONVERSION_EVENTS = 20
# Tags group campaigns for tag cap rules (`CapRule.tag` matches a tag exactly, so surrounding
# spaces, which no one sees, are refused rather than making a rule silently match nothing).
MAX_TAGS = 50
MAX_TAG = 64
# Screens a campaign may show on: what a client names in its request (a screen name or a path).
MAX_SCREENS = 100
MAX_SCREEN = 128

# Message content: a message is read on a phone, so these are far above any real one, and
# they keep what delivery stores per user and hands to clients small. Lengths are in
# characters; templates count as written, before rendering.
MAX_TEXT = 4096          # title, body, button text, question text, choice, anchor element
MAX_URL = 2048           # image_url, button target (deep link or address)
MAX_BUTTONS = 10         # per message and per slide
MAX_SLIDES = 20
MAX_QUESTIONS = 20
MAX_CHOICES = 50
MAX_CUSTOM_DATA_BYTES = 16 * 1024  # custom_data, serialized
MAX_CONTENT_BYTES = 64 * 1024      # one locale's whole content, serialized

# Supported ranges of what an operator sets (the proto and the README say the same). Each keeps
# the instants derived from it (due, expiry, a cap's window) far inside what datetime and
# PostgreSQL hold, and each count inside PostgreSQL's integer.
MAX_DELAY = timedelta(days=365)
MAX_TTL = timedelta(days=365)
MAX_CONVERSION_DEADLINE = timedelta(days=365)
MAX_REELIGIBILITY = timedelta(days=3650)
MAX_ROLLING = timedelta(days=365)
MAX_CALENDAR_DAYS = 365
MAX_CALENDAR_WEEKS = 52
MAX_LIFETIME = 1_000_000
MAX_CAP_MESSAGES = 1_000_000
MAX_WEIGHT = 1_000_000
EARLIEST_TIME = datetime(2000, 1, 1, tzinfo=timezone.utc)
LATEST_TIME = datetime(3000, 1, 1, tzinfo=timezone.utc)
STATUSES = frozenset(pb.CampaignStatus.values())
DELIVERY_MODES = frozenset(pb.DeliveryMode.values())
PLATFORMS = frozenset(common_pb2.Platform.values())


def _duration(d, path: str, maximum: timedelta, positive: bool = False) -> list[FieldViolation]:
    """A duration within [0, maximum] (or (0, maximum] when `positive`)."""
    value = to_timedelta(d)
    if value < timedelta(0) or (positive and value == timedelta(0)):
        return [FieldViolation(path, "must be positive" if positive else "must not be negative")]
    if value > maximum:
        return [FieldViolation(path, f"must be at most {maximum.days} days")]
    return []


def _count(value: int, path: str, maximum: int, minimum: int = 0) -> list[FieldViolation]:
    if value < minimum:
        return [FieldViolation(path, "must be positive")]
    if value > maximum:
        return [FieldViolation(path, f"must be at most {maximum:,}")]
    return []


def _instant(ts, path: str) -> list[FieldViolation]:
    at = to_datetime(ts)
    if not EARLIEST_TIME <= at < LATEST_TIME:
        return [FieldViolation(path, "must be from 2000-01-01T00:00:00Z to before 3000-01-01T00:00:00Z")]
    return []


def _text(value: str, path: str, maximum: int = MAX_TEXT) -> list[FieldViolation]:
    if len(value) > maximum:
        return [FieldViolation(path, f"is longer than {maximum:,} characters")]
    return []


def _label(value: str, path: str, maximum: int) -> list[FieldViolation]:
    """A name matched exactly (a tag, a screen): 1 to `maximum` characters, no surrounding space."""
    if not value.strip():
        return [FieldViolation(path, "must not be empty")]
    if value != value.strip():
        return [FieldViolation(path, "must not start or end with a space")]
    return _text(value, path, maximum)


def _list(values, path: str, maximum: int) -> list[FieldViolation]:
    if len(values) > maximum:
        return [FieldViolation(path, f"at most {maximum}")]
    return []


def _buttons(buttons, path: str) -> list[FieldViolation]:
    out = _list(buttons, path, MAX_BUTTONS)
    for i, b in enumerate(buttons):
        out += _text(b.text, f"{path}[{i}].text") + _text(b.target, f"{path}[{i}].target", MAX_URL)
    return out


def _content_sizes(c: common_pb2.MessageContent, path: str) -> list[FieldViolation]:
    """Every text of a content within its bound, and the lists and the whole too."""
    out = _text(c.title, f"{path}.title") + _text(c.body, f"{path}.body")
    out += _text(c.image_url, f"{path}.image_url", MAX_URL)
    out += _buttons(c.buttons, f"{path}.buttons")
    out += _list(c.slides, f"{path}.slides", MAX_SLIDES)
    for i, slide in enumerate(c.slides):
        sp = f"{path}.slides[{i}]"
        out += _text(slide.title, f"{sp}.title") + _text(slide.body, f"{sp}.body")
        out += _text(slide.image_url, f"{sp}.image_url", MAX_URL)
        out += _buttons(slide.buttons, f"{sp}.buttons")
    out += _list(c.questions, f"{path}.questions", MAX_QUESTIONS)
    for i, q in enumerate(c.questions):
        qp = f"{path}.questions[{i}]"
        out += _text(q.text, f"{qp}.text") + _list(q.choices, f"{qp}.choices", MAX_CHOICES)
        for j, choice in enumerate(q.choices):
            out += _text(choice, f"{qp}.choices[{j}]")
    out += _text(c.anchor.screen, f"{path}.anchor.screen", MAX_SCREEN)
    out += _text(c.anchor.element_id, f"{path}.anchor.element_id")
    if c.custom_data.ByteSize() > MAX_CUSTOM_DATA_BYTES:
        out.append(FieldViolation(f"{path}.custom_data", f"is larger than {MAX_CUSTOM_DATA_BYTES:,} bytes"))
    if not out and c.ByteSize() > MAX_CONTENT_BYTES:
        out.append(FieldViolation(path, f"is larger than {MAX_CONTENT_BYTES:,} bytes"))
    return out


def _content(c: common_pb2.MessageContent, path: str) -> list[FieldViolation]:
    out: list[FieldViolation] = []
    if c.layout == common_pb2.LAYOUT_UNSPECIFIED:
        out.append(FieldViolation(f"{path}.layout", "is required"))
    sizes = _content_sizes(c, path)
    out += sizes
    buttons = list(c.buttons) + [b for s in c.slides for b in s.buttons]
    seen: set[str] = set()
    for i, b in enumerate(c.buttons):
        if not ID_RE.match(b.id):
            out.append(FieldViolation(f"{path}.buttons[{i}].id", "is required: letters, digits, _ or -"))
    for b in buttons:
        if b.id in seen:
            out.append(FieldViolation(f"{path}.buttons", f"button id {b.id!r} is used twice"))
        seen.add(b.id)
    if c.layout == common_pb2.LAYOUT_CAROUSEL and not c.slides:
        out.append(FieldViolation(f"{path}.slides", "a carousel needs at least one slide"))
    if c.layout == common_pb2.LAYOUT_SURVEY and not c.questions:
        out.append(FieldViolation(f"{path}.questions", "a survey needs at least one question"))
    # Oversized texts are refused already: parsing them as templates would only cost time.
    for field, problem in [] if sizes else templates.check(c):
        out.append(FieldViolation(f"{path}.{field}", f"template: {problem}"))
    for i, q in enumerate(c.questions):
        if not ID_RE.match(q.id):
            out.append(FieldViolation(f"{path}.questions[{i}].id", "is required: letters, digits, _ or -"))
    for name in ("background_color", "text_color", "button_color", "button_text_color"):
        value = getattr(c.theme, name)
        if value and not COLOR_RE.match(value):
            out.append(FieldViolation(f"{path}.theme.{name}", "must be #RRGGBB or #RRGGBBAA"))
    return out


def _unique_id(value: str, seen: set[str], path: str, kind: str) -> list[FieldViolation]:
    """An id an operator chooses: letters, digits, _ or -, and not one already in `seen`."""
    if not ID_RE.match(value):
        return [FieldViolation(path, "is required: letters, digits, _ or -")]
    if value in seen:
        return [FieldViolation(path, f"{kind} id {value!r} is used twice")]
    seen.add(value)
    return []


def _trigger(t: pb.Trigger, path: str) -> list[FieldViolation]:
    out: list[FieldViolation] = []
    source = t.WhichOneof("source")
    if source is None:
        out.append(FieldViolation(path, "set event_name or segment_entered_id"))
    elif source == "event_name" and not is_event_name(t.event_name):
        out.append(FieldViolation(f"{path}.event_name", EVENT_NAME_RULE))
    elif source == "segment_entered_id" and t.property_filters:
        out.append(FieldViolation(f"{path}.property_filters", "only event triggers have property filters"))
    out += filters.validate(t.property_filters, f"{path}.property_filters")
    out += _duration(t.delay, f"{path}.delay", MAX_DELAY)
    if len(t.exception_events) > MAX_EXCEPTION_EVENTS:
        out.append(FieldViolation(f"{path}.exception_events", f"at most {MAX_EXCEPTION_EVENTS}"))
    for j, x in enumerate(t.exception_events):
        here = f"{path}.exception_events[{j}]"
        if not is_event_name(x.event_name):
            out.append(FieldViolation(f"{here}.event_name", EVENT_NAME_RULE))
        out += filters.validate(x.property_filters, f"{here}.property_filters")
    return out


def window_violations(w: pb.SendWindow, path: str) -> list[FieldViolation]:
    out: list[FieldViolation] = []
    if w.start_minute >= MINUTES_PER_DAY:
        out.append(FieldViolation(f"{path}.start_minute", "must be below 1440"))
    if w.end_minute >= MINUTES_PER_DAY:
        out.append(FieldViolation(f"{path}.end_minute", "must be below 1440"))
    for i, day in enumerate(w.weekdays):
        if not 1 <= day <= 7:
            out.append(FieldViolation(f"{path}.weekdays[{i}]", "must be 1 (Monday) to 7 (Sunday)"))
    return out


def campaign_violations(c: pb.Campaign, path: str = "campaign") -> list[FieldViolation]:
    out: list[FieldViolation] = []
    if not c.name.strip():
        out.append(FieldViolation(f"{path}.name", "is required"))
    elif len(c.name) > MAX_NAME:
        out.append(FieldViolation(f"{path}.name", f"is longer than {MAX_NAME} characters"))
    out += key_problems(c.key, f"{path}.key")
    out += _list(c.tags, f"{path}.tags", MAX_TAGS)
    for i, tag in enumerate(c.tags):
        out += _label(tag, f"{path}.tags[{i}]", MAX_TAG)
    bounds = [(name, getattr(c, name)) for name in ("start_time", "end_time") if c.HasField(name)]
    for name, ts in bounds:
        out += _instant(ts, f"{path}.{name}")
    if len(bounds) == 2 and to_datetime(c.end_time) <= to_datetime(c.start_time):
        out.append(FieldViolation(f"{path}.end_time", "must be after start_time"))
    if c.status not in STATUSES:
        out.append(FieldViolation(f"{path}.status", f"{c.status} is not a CampaignStatus"))
    if c.delivery_mode == pb.DELIVERY_MODE_UNSPECIFIED:
        out.append(FieldViolation(f"{path}.delivery_mode", "is required"))
    elif c.delivery_mode not in DELIVERY_MODES:
        out.append(FieldViolation(f"{path}.delivery_mode", f"{c.delivery_mode} is not a DeliveryMode"))
    for field in ("include_segment_ids", "exclude_segment_ids"):
        if len(getattr(c.audience, field)) > MAX_AUDIENCE_SEGMENTS:
            out.append(FieldViolation(f"{path}.audience.{field}", f"at most {MAX_AUDIENCE_SEGMENTS}"))
    if len(c.triggers) > MAX_TRIGGERS:
        out.append(FieldViolation(f"{path}.triggers", f"at most {MAX_TRIGGERS}"))
    out += _list(c.audience.screens, f"{path}.audience.screens", MAX_SCREENS)
    for i, screen in enumerate(c.audience.screens):
        out += _label(screen, f"{path}.audience.screens[{i}]", MAX_SCREEN)
    for i, platform in enumerate(c.audience.platforms):
        if platform not in PLATFORMS:
            out.append(FieldViolation(f"{path}.audience.platforms[{i}]", f"{platform} is not a Platform"))
    if c.delivery_mode == pb.DELIVERY_MODE_TRIGGERED and not c.triggers:
        out.append(FieldViolation(f"{path}.triggers", "a triggered campaign needs at least one trigger"))
    if c.delivery_mode == pb.DELIVERY_MODE_ON_REQUEST and c.triggers:
        out.append(FieldViolation(f"{path}.triggers", "only triggered campaigns have triggers"))
    for i, t in enumerate(c.triggers):
        out += _trigger(t, f"{path}.triggers[{i}]")
    if not c.variants:
        out.append(FieldViolation(f"{path}.variants", "needs at least one variant"))
    variant_ids: set[str] = set()
    for i, v in enumerate(c.variants):
        vp = f"{path}.variants[{i}]"
        out += _unique_id(v.id, variant_ids, f"{vp}.id", "variant")
        if len(c.variants) > 1 and v.weight == 0:
            out.append(FieldViolation(f"{vp}.weight", "must be positive when there are several variants"))
        out += _count(v.weight, f"{vp}.weight", MAX_WEIGHT)
        if not v.contents:
            out.append(FieldViolation(f"{vp}.contents", "needs content in at least one locale"))
        locales = [lc.locale for lc in v.contents]
        if len(set(locales)) != len(locales):
            out.append(FieldViolation(f"{vp}.contents", "a locale appears twice"))
        if v.default_locale and v.default_locale not in locales:
            out.append(FieldViolation(f"{vp}.default_locale", "must be one of the contents' locales"))
        if not v.default_locale and len(v.contents) > 1:
            out.append(FieldViolation(f"{vp}.default_locale", "is required when there are several locales"))
        for j, lc in enumerate(v.contents):
            out += _content(lc.content, f"{vp}.contents[{j}].content")
    for bound in ("min_app_version", "max_app_version"):
        text = getattr(c.audience, bound)
        if text and parse_version(text) is None:
            out.append(FieldViolation(f"{path}.audience.{bound}", "must be dotted numbers, e.g. 4.10.2"))
    if c.HasField("send_window"):
        out += window_violations(c.send_window, f"{path}.send_window")
    out += _count(c.control_weight, f"{path}.control_weight", MAX_WEIGHT)
    out += _duration(c.message_ttl, f"{path}.message_ttl", MAX_TTL)
    if c.HasField("conversion") and c.conversion.event_names:
        out += _duration(c.conversion.deadline, f"{path}.conversion.deadline", MAX_CONVERSION_DEADLINE, positive=True)
    # A name ingestion would refuse could never convert: refused here, like a trigger's.
    out += _list(c.conversion.event_names, f"{path}.conversion.event_names", MAX_CONVERSION_EVENTS)
    for i, name in enumerate(c.conversion.event_names):
        if not is_event_name(name):
            out.append(FieldViolation(f"{path}.conversion.event_names[{i}]", EVENT_NAME_RULE))
    out += _count(c.caps.lifetime_max, f"{path}.caps.lifetime_max", MAX_LIFETIME)
    out += _duration(c.caps.reeligibility_interval, f"{path}.caps.reeligibility_interval", MAX_REELIGIBILITY)
    return out


def settings_violations(s: pb.AppSettings, valid_zone, path: str = "settings") -> list[FieldViolation]:
    out: list[FieldViolation] = []
    if s.default_time_zone and not valid_zone(s.default_time_zone):
        out.append(FieldViolation(f"{path}.default_time_zone", f"unknown IANA time zone {s.default_time_zone!r}"))
    ids: set[str] = set()
    for i, rule in enumerate(s.cap_rules):
        rp = f"{path}.cap_rules[{i}]"
        out += _unique_id(rule.id, ids, f"{rp}.id", "rule")
        if rule.tag:  # empty: the rule counts every campaign
            out += _label(rule.tag, f"{rp}.tag", MAX_TAG)
        out += _count(rule.max_messages, f"{rp}.max_messages", MAX_CAP_MESSAGES, minimum=1)
        period = rule.WhichOneof("period")
        if period is None:
            out.append(FieldViolation(f"{rp}.period", "set rolling, calendar_days or calendar_weeks"))
        elif period == "rolling":
            out += _duration(rule.rolling, f"{rp}.rolling", MAX_ROLLING, positive=True)
        elif period == "calendar_days":
            out += _count(rule.calendar_days, f"{rp}.calendar_days", MAX_CALENDAR_DAYS, minimum=1)
        else:
            out += _count(rule.calendar_weeks, f"{rp}.calendar_weeks", MAX_CALENDAR_WEEKS, minimum=1)
    if s.HasField("quiet_hours"):
        out += window_violations(s.quiet_hours, f"{path}.quiet_hours")
    return out
