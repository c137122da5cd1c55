"""Liquid personalization of message content, sandboxed.

Templates see `user` (the user's attributes, plus `id`, `locale` and `time_zone`) and
`event` (the trigger event's properties; empty for on-request messages), and the standard
filters, `default` among them. They cannot read files or the network: there is no template
loader, so `include` and `render` find nothing. Work is bounded by limits on loop
iterations, output size and nesting rather than by a clock, so rendering always ends.

Campaigns are checked when saved (`check`); a template that still fails when rendering is
not shown at all (`RenderError`), never half-rendered.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from google.protobuf import struct_pb2
from liquid import DictLoader, Environment
from liquid.exceptions import LiquidError

from nudge.common.v1 import common_pb2
from nudgelib.protoconv import attribute_python, attribute_to_json


class SandboxedEnvironment(Environment):
    output_stream_limit = 16 * 1024
    loop_iteration_limit = 1_000
    context_depth_limit = 20
    local_namespace_limit = 2 * 1024


class RenderError(Exception):
    def __init__(self, field: str, cause: Exception) -> None:
        super().__init__(f"{field}: {cause}")
        self.field = field


_ENV = SandboxedEnvironment(loader=DictLoader({}), strict_filters=True)

# Rendered: what a person reads or follows. Ids (buttons, questions, anchors) are not.
_TEXT_FIELDS = ("title", "body", "image_url")


def _text_paths(content: common_pb2.MessageContent) -> Iterator[tuple[str, Any, str]]:
    """(field path, message, attribute) for every templated string field."""
    for name in _TEXT_FIELDS:
        yield name, content, name
    for i, b in enumerate(content.buttons):
        yield f"buttons[{i}].text", b, "text"
        yield f"buttons[{i}].target", b, "target"
    for i, s in enumerate(content.slides):
        for name in _TEXT_FIELDS:
            yield f"slides[{i}].{name}", s, name
        for j, b in enumerate(s.buttons):
            yield f"slides[{i}].buttons[{j}].text", b, "text"
            yield f"slides[{i}].buttons[{j}].target", b, "target"
    for i, q in enumerate(content.questions):
        yield f"questions[{i}].text", q, "text"


def _struct_strings(value: struct_pb2.Value, path: str) -> Iterator[tuple[str, struct_pb2.Value]]:
    kind = value.WhichOneof("kind")
    if kind == "string_value":
        yield path, value
    elif kind == "struct_value":
        for k, v in value.struct_value.fields.items():
            yield from _struct_strings(v, f"{path}.{k}")
    elif kind == "list_value":
        for i, v in enumerate(value.list_value.values):
            yield from _struct_strings(v, f"{path}[{i}]")


def _render(text: str, variables: dict[str, Any], field: str) -> str:
    if "{" not in text:
        return text  # most texts are plain: no parse, no render
    try:
        return _ENV.from_string(text).render(**variables)
    except LiquidError as exc:
        raise RenderError(field, exc) from exc


def check(content: common_pb2.MessageContent) -> list[tuple[str, str]]:
    """(field, problem) for every template that does not parse or cannot render at all."""
    problems = []
    sample = {"user": {}, "event": {}}
    for path, msg, attr in _text_paths(content):
        try:
            _render(getattr(msg, attr), sample, path)
        except RenderError as exc:
            problems.append((path, str(exc.__cause__).splitlines()[0]))
    for key, value in content.custom_data.fields.items():
        for path, leaf in _struct_strings(value, f"custom_data.{key}"):
            try:
                _render(leaf.string_value, sample, path)
            except RenderError as exc:
                problems.append((path, str(exc.__cause__).splitlines()[0]))
    for i, q in enumerate(content.questions):
        for j, choice in enumerate(q.choices):
            if "{" in choice:
                problems.append((f"questions[{i}].choices[{j}]", "choices are counted as written: no templates"))
    return problems


def variables(user: common_pb2.UserContext, event: struct_pb2.Struct | None) -> dict[str, Any]:
    attrs: dict[str, Any] = {}
    for name, value in user.attributes.items():
        data = attribute_to_json(value)
        if data is not None:
            v = attribute_python(data)
            attrs[name] = v.isoformat() if isinstance(v, datetime) else v
    attrs.update({"id": user.user_id, "locale": user.locale, "time_zone": user.time_zone})
    event_vars = {k: _plain(v) for k, v in event.fields.items()} if event is not None else {}
    return {"user": attrs, "event": event_vars}


def _plain(value: struct_pb2.Value) -> Any:
    kind = value.WhichOneof("kind")
    if kind == "struct_value":
        return {k: _plain(v) for k, v in value.struct_value.fields.items()}
    if kind == "list_value":
        return [_plain(v) for v in value.list_value.values]
    if kind == "number_value":
        n = value.number_value
        return int(n) if n.is_integer() else n
    return getattr(value, kind) if kind and kind != "null_value" else None


def _render_each(content: common_pb2.MessageContent, variables: dict[str, Any],
                 failed: Callable[[RenderError], None]) -> common_pb2.MessageContent:
    """A copy of the content with every templated field rendered, field by field; a field
    that fails is handed to `failed` (which may raise) and keeps its template text."""
    out = common_pb2.MessageContent()
    out.CopyFrom(content)
    for path, msg, attr in _text_paths(out):
        try:
            setattr(msg, attr, _render(getattr(msg, attr), variables, path))
        except RenderError as exc:
            failed(exc)
    for key, value in out.custom_data.fields.items():
        for path, leaf in _struct_strings(value, f"custom_data.{key}"):
            try:
                leaf.string_value = _render(leaf.string_value, variables, path)
            except RenderError as exc:
                failed(exc)
    return out


def _raise(exc: RenderError) -> None:
    raise exc


def render(content: common_pb2.MessageContent, variables: dict[str, Any]) -> common_pb2.MessageContent:
    """A rendered copy of the content; raises RenderError naming the first failing field."""
    return _render_each(content, variables, _raise)


def render_report(content: common_pb2.MessageContent,
                  variables: dict[str, Any]) -> tuple[common_pb2.MessageContent, list[tuple[str, str]]]:
    """What `render` does, without stopping at a failure: the content with every field that
    renders rendered (a failing one keeps its template text), and (field, problem) for each
    that fails, in field order. For previews: production shows no message with a problem."""
    problems: list[tuple[str, str]] = []
    out = _render_each(content, variables,
                       lambda exc: problems.append((exc.field, str(exc.__cause__).splitlines()[0])))
    return out, problems
