"""The timeline `nudge simulate` replays: one user's profile and scripted steps (events with
their times and properties, pulls, profile updates). The format is in the README
("Campaigns as files"); a bad timeline fails naming file, line and field.

    user: {id: ada, time_zone: Europe/Paris, attributes: {first_name: Ada}}
    delivery: stream            # or pull: released messages wait for a pull step
    steps:
      - at: 2026-12-01T22:30:00 # no offset: the user's wall clock
        event: cart_abandoned
        properties: {cart_value: 150}
      - after: 20m              # or a time since the previous step
        pull: {screen: home}
    until: 2026-12-03T00:00:00Z # default: two days after the last step
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError

from nudge.common.v1 import common_pb2
from nudge.decision.v1 import decision_service_pb2 as pb
from nudgelib.timezones import is_valid_time_zone
from nudgetools.files import DocumentError, Problem

# How long the simulation runs after the last step when the timeline sets no `until`.
DEFAULT_TAIL = timedelta(days=2)
UTC = timezone.utc
_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
_PLATFORMS = {name: value for name, value in common_pb2.Platform.items()}


# --- the timeline --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    at: datetime
    line: int
    event: str = ""  # an event step: its name
    properties: dict[str, Any] = field(default_factory=dict)
    pull: pb.RequestContext | None = None  # a pull step: the client's context
    limit: int = 1
    attributes: dict[str, Any] | None = None  # a profile step: attributes set (None values unset)
    time_zone: str = ""
    locale: str = ""
    platform: int = 0
    app_version: str = ""


@dataclass
class Timeline:
    user_id: str
    time_zone: str
    locale: str
    attributes: dict[str, Any]
    platforms: list[int]
    app_version: str
    last_seen: datetime | None
    stream: bool  # the user holds a stream: a released message is offered at once
    client: pb.RequestContext  # the stream's context, and the defaults of pulls
    steps: list[Step]
    until: datetime


class TimelineError(DocumentError):
    pass


def _duration(text: Any) -> timedelta | None:
    m = _DURATION.match(str(text).strip()) if text not in (None, "") else None
    if m is None or not any(m.groups()):
        return None
    d, h, mi, s = (int(g) if g else 0 for g in m.groups())
    return timedelta(days=d, hours=h, minutes=mi, seconds=s)


def _instant(value: Any, tz: ZoneInfo) -> datetime | None:
    """An ISO 8601 time; without an offset it is the user's wall clock."""
    if isinstance(value, datetime):
        at = datetime(value.year, value.month, value.day, value.hour, value.minute, value.second,
                      value.microsecond, value.tzinfo)
    elif isinstance(value, str):
        try:
            at = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    else:
        return None
    return (at.replace(tzinfo=tz) if at.tzinfo is None else at).astimezone(UTC)


def _attribute(value: Any) -> dict[str, Any] | None:
    """A YAML value as a stored attribute (type-tagged, nudgelib.protoconv), or None."""
    if isinstance(value, bool):
        return {"b": value}
    if isinstance(value, int):
        return {"i": int(value)}
    if isinstance(value, float):
        return {"d": float(value)}
    if isinstance(value, datetime):
        return {"t": (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()}
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return {"l": [str(v) for v in value]}
    if isinstance(value, str):
        return {"s": str(value)}
    return None


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, (datetime, date)):
        return value
    return str(value)


def _request(data: Any, base: pb.RequestContext, problem, line: int, where: str) -> pb.RequestContext:
    out = pb.RequestContext()
    out.CopyFrom(base)
    if data is None or data is True:
        return out
    if not isinstance(data, dict):
        problem(line, where, "is a mapping of platform, screen, app_version, locale")
        return out
    for name, value in data.items():
        if name == "platform":
            if value not in _PLATFORMS:
                problem(line, f"{where}.platform", f"must be one of {', '.join(_PLATFORMS)}")
            else:
                out.platform = _PLATFORMS[value]
        elif name in ("screen", "app_version", "locale"):
            setattr(out, name, str(value))
        else:
            problem(line, f"{where}.{name}", "is not a field here (platform, screen, app_version, locale)")
    return out


def load_timeline(path: str | Path) -> Timeline:
    """A timeline file; raises TimelineError naming file, line and field."""
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise TimelineError([Problem(file, 0, "", f"cannot be read: {exc.strerror or exc}")]) from None
    return parse_timeline(text, file)


def parse_timeline(text: str, file: str = "<timeline>") -> Timeline:
    problems: list[Problem] = []

    def problem(line: int, where: str, message: str) -> None:
        problems.append(Problem(file, line, where, message))

    try:
        root = YAML(typ="rt").load(io.StringIO(text))
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise TimelineError([Problem(file, mark.line + 1 if mark else 0, "", f"not valid YAML: {exc}")]) from None
    if not isinstance(root, CommentedMap):
        raise TimelineError([Problem(file, 1, "", "a timeline is a mapping of user, steps and until")])

    def line_of(node: Any, key: Any) -> int:
        return node.lc.key(key)[0] + 1 if isinstance(node, CommentedMap) and key in node else (
            node.lc.line + 1 if hasattr(node, "lc") else 1)

    for extra in set(root) - {"user", "steps", "until", "delivery", "client"}:
        problem(line_of(root, extra), str(extra), "is not a timeline field (user, client, delivery, steps, until)")
    user = root.get("user") or CommentedMap()
    if not isinstance(user, CommentedMap):
        problem(line_of(root, "user"), "user", "is a mapping")
        user = CommentedMap()
    known_user = {"id", "time_zone", "locale", "attributes", "platforms", "app_version", "last_seen"}
    for extra in set(user) - known_user:
        problem(line_of(user, extra), f"user.{extra}", f"is not a user field ({', '.join(sorted(known_user))})")
    tz_name = str(user.get("time_zone") or "")
    if tz_name and not is_valid_time_zone(tz_name):
        problem(line_of(user, "time_zone"), "user.time_zone", f"unknown IANA time zone {tz_name!r}")
        tz_name = ""
    tz = ZoneInfo(tz_name or "UTC")
    attributes: dict[str, Any] = {}
    for name, value in (user.get("attributes") or {}).items():
        stored = _attribute(_plain(value))
        if stored is None:
            problem(line_of(user["attributes"], name), f"user.attributes.{name}",
                    "must be a string, number, boolean, time or list of strings")
        else:
            attributes[str(name)] = stored
    platforms = []
    for i, name in enumerate(user.get("platforms") or []):
        if name not in _PLATFORMS:
            problem(line_of(user, "platforms"), f"user.platforms[{i}]", f"must be one of {', '.join(_PLATFORMS)}")
        else:
            platforms.append(_PLATFORMS[name])
    last_seen = None
    if user.get("last_seen") is not None:
        last_seen = _instant(user["last_seen"], tz)
        if last_seen is None:
            problem(line_of(user, "last_seen"), "user.last_seen", "must be an ISO 8601 time")
    delivery = str(root.get("delivery", "stream"))
    if delivery not in ("stream", "pull"):
        problem(line_of(root, "delivery"), "delivery", "must be stream or pull")
    client = _request(root.get("client"), pb.RequestContext(
        platform=platforms[0] if platforms else 0, app_version=str(user.get("app_version") or ""),
        locale=str(user.get("locale") or "")), problem, line_of(root, "client"), "client")

    steps: list[Step] = []
    previous: datetime | None = None
    raw_steps = root.get("steps") or []
    if not isinstance(raw_steps, CommentedSeq) or not raw_steps:
        problem(line_of(root, "steps"), "steps", "is required: a list of steps")
        raw_steps = []
    for i, s in enumerate(raw_steps):
        where = f"steps[{i}]"
        line = raw_steps.lc.item(i)[0] + 1
        if not isinstance(s, CommentedMap):
            problem(line, where, "is a mapping (at or after, then event, pull or attributes)")
            continue
        at = None
        if "at" in s:
            at = _instant(s["at"], tz)
            if at is None:
                problem(line_of(s, "at"), f"{where}.at", "must be an ISO 8601 time, e.g. 2026-12-01T22:30:00+01:00")
        elif "after" in s:
            gap = _duration(s["after"])
            if gap is None:
                problem(line_of(s, "after"), f"{where}.after", "must be a duration such as 20m, 1h30m, 2d or 45s")
            elif previous is None:
                problem(line_of(s, "after"), f"{where}.after", "the first step needs `at`")
            else:
                at = previous + gap
        else:
            problem(line, where, "needs `at` (a time) or `after` (a duration since the previous step)")
        if at is not None and previous is not None and at < previous:
            problem(line_of(s, "at"), f"{where}.at", "is before the previous step: steps are in time order")
        actions = [k for k in ("event", "pull", "attributes") if k in s]
        if len(actions) != 1:
            problem(line, where, "needs exactly one of event, pull or attributes")
        allowed = {"at", "after", "event", "properties", "platform", "app_version", "pull", "limit",
                   "attributes", "time_zone", "locale"}
        for extra in set(s) - allowed:
            problem(line_of(s, extra), f"{where}.{extra}", f"is not a step field ({', '.join(sorted(allowed))})")
        if at is None or len(actions) != 1:
            continue
        previous = at
        if "event" in s:
            props = _plain(s.get("properties") or {})
            if not isinstance(props, dict):
                problem(line_of(s, "properties"), f"{where}.properties", "is a mapping")
                props = {}
            platform = s.get("platform")
            if platform is not None and platform not in _PLATFORMS:
                problem(line_of(s, "platform"), f"{where}.platform", f"must be one of {', '.join(_PLATFORMS)}")
            steps.append(Step(at, line, event=str(s["event"]), properties=json.loads(json.dumps(props, default=str)),
                              platform=_PLATFORMS.get(platform, 0) if platform else 0,
                              app_version=str(s.get("app_version") or "")))
        elif "pull" in s:
            limit = s.get("limit", 1)
            if not isinstance(limit, int) or limit < 1:
                problem(line_of(s, "limit"), f"{where}.limit", "must be a positive number")
                limit = 1
            steps.append(Step(at, line, pull=_request(s["pull"], client, problem, line_of(s, "pull"), f"{where}.pull"),
                              limit=limit))
        else:
            changes = {}
            for name, value in (s.get("attributes") or {}).items():
                stored = None if value is None else _attribute(_plain(value))
                if value is not None and stored is None:
                    problem(line_of(s["attributes"], name), f"{where}.attributes.{name}",
                            "must be a string, number, boolean, time or list of strings (or null to unset)")
                changes[str(name)] = stored
            step_zone = str(s.get("time_zone") or "")
            if step_zone and not is_valid_time_zone(step_zone):
                problem(line_of(s, "time_zone"), f"{where}.time_zone", f"unknown IANA time zone {step_zone!r}")
            steps.append(Step(at, line, attributes=changes, time_zone=step_zone, locale=str(s.get("locale") or "")))
    until = None
    if root.get("until") is not None:
        until = _instant(root["until"], tz)
        if until is None:
            problem(line_of(root, "until"), "until", "must be an ISO 8601 time")
    if problems:
        raise TimelineError(problems)
    if until is None:
        until = steps[-1].at + DEFAULT_TAIL
    return Timeline(str(user.get("id") or "user-1"), tz_name, str(user.get("locale") or ""), attributes, platforms,
                    str(user.get("app_version") or ""), last_seen, delivery == "stream", client, steps, until)
