"""Rendering for a preview: the same rendering as production, field by field, every failure
reported at its field and the rest rendered."""

from __future__ import annotations

import pytest

from nudge.common.v1 import common_pb2 as c
from nudgelib import templates

LOOP = "{% for i in (1..event.n) %}*{% endfor %}"


def content() -> c.MessageContent:
    out = c.MessageContent(title="Hi {{ user.name }}", body=LOOP, slides=[c.Slide(title=LOOP, body="{{ event.n }}")],
                           buttons=[c.Button(id="b", text="Go", target="app://{{ user.id }}")])
    out.custom_data.update({"list": ["{{ event.n }}", LOOP]})
    return out


def test_a_report_renders_what_render_renders_when_nothing_fails():
    variables = {"user": {"name": "Ann", "id": "u1"}, "event": {"n": 2}}
    rendered, problems = templates.render_report(content(), variables)
    assert problems == [] and rendered == templates.render(content(), variables)
    assert (rendered.body, rendered.buttons[0].target, rendered.custom_data["list"][1]) == ("**", "app://u1", "**")


def test_every_failing_field_is_reported_in_order_and_keeps_its_template():
    variables = {"user": {"name": "Ann", "id": "u1"}, "event": {"n": 100_000}}
    rendered, problems = templates.render_report(content(), variables)
    assert [f for f, _ in problems] == ["body", "slides[0].title", "custom_data.list[1]"]
    assert all("loop iteration limit" in p for _, p in problems)
    assert (rendered.title, rendered.body, rendered.slides[0].body) == ("Hi Ann", LOOP, "100000")
    with pytest.raises(templates.RenderError) as raised:
        templates.render(content(), variables)
    assert raised.value.field == "body"  # production stops at the first
