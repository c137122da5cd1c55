"""A campaign as the console edits it: its main fields as form inputs, and everything else
(audience, triggers with filters, delay, exception events, window, caps, variants with
weights and control, content per locale, conversions) as the rest of its YAML document,
the format of campaign files (nudgetools.files), so that every field can be edited and is
checked by the same code as `nudge apply` (the services' own validation, each problem at its
line). No I/O.

The form's text is put together as one document, `kind: Campaign`, `key`, `spec:` with the
inputs first and the editor's lines after them, so a problem is found at its place: an input
(by its field) or a line of the editor (its line minus the lines put before it).
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from ruamel.yaml import YAML

from nudgetools.files import Document, DocumentError, Problem, document_data, parse_documents

# The inputs, by name, in the order they are written into the document.
INPUTS = ("name", "key", "status", "priority", "delivery_mode", "start_time", "end_time", "tags")
STATUSES = ("CAMPAIGN_STATUS_DRAFT", "CAMPAIGN_STATUS_ACTIVE", "CAMPAIGN_STATUS_PAUSED", "CAMPAIGN_STATUS_ARCHIVED")
MODES = ("DELIVERY_MODE_ON_REQUEST", "DELIVERY_MODE_TRIGGERED")
# A key is required by campaign files; a campaign without one is written with this stand-in,
# which never reaches a service (the message's key is the input's, empty or not).
_NO_KEY = "console-campaign-without-key"
_FILE = "campaign"

STARTER = """\
audience: {}
variants:
  - id: A
    weight: 1
    contents:
      - locale: en
        content:
          layout: LAYOUT_MODAL
          title: 'Hello {{ user.first_name | default: "there" }}'
          body: Something new is waiting for you.
          buttons:
            - id: ok
              text: Show me
"""


@dataclass
class CampaignForm:
    """What the operator typed: each input's text, and the editor's text."""

    values: dict[str, str] = field(default_factory=dict)
    rest: str = ""

    @classmethod
    def from_fields(cls, data: Mapping[str, str]) -> "CampaignForm":
        return cls({name: str(data.get(name, "")).strip() for name in INPUTS}, str(data.get("rest", "")))


@dataclass
class FormErrors:
    """Problems at their places: by input name, and the editor's as (line, field, message)."""

    inputs: dict[str, list[str]] = field(default_factory=dict)
    rest: list[tuple[int, str, str]] = field(default_factory=list)
    # Problems of the whole form (not tied to a field).
    general: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.inputs or self.rest or self.general)


def _yaml() -> YAML:
    y = YAML(typ="rt")
    y.default_flow_style = False
    y.indent(mapping=2, sequence=4, offset=2)
    y.width = 100
    return y


def form_of(doc: Document) -> CampaignForm:
    """The form showing a campaign document (segment references as keys)."""
    spec = document_data(doc)["spec"]
    values = {
        "name": spec.pop("name", ""),
        "key": doc.key if doc.key != _NO_KEY else "",
        "status": spec.pop("status", "CAMPAIGN_STATUS_DRAFT"),
        "priority": str(spec.pop("priority", 0)),
        "delivery_mode": spec.pop("delivery_mode", "DELIVERY_MODE_ON_REQUEST"),
        "start_time": _local_input(spec.pop("start_time", "")),
        "end_time": _local_input(spec.pop("end_time", "")),
        "tags": ", ".join(spec.pop("tags", [])),
    }
    return CampaignForm(values, _yaml_text(spec))


def _local_input(stamp: str) -> str:
    """An RFC 3339 time as a datetime-local input shows it, in UTC (`2026-12-01T09:30`)."""
    if not stamp:
        return ""
    moment = datetime.fromisoformat(stamp.replace("Z", "+00:00")).astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M")


_LOCAL = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?$")


def _header(form: CampaignForm, errors: FormErrors) -> list[str]:
    """The document's lines before the editor's: envelope and inputs (JSON scalars are YAML)."""
    v = form.values
    lines = ["kind: Campaign", f"key: {json.dumps(v.get('key') or _NO_KEY)}", "spec:"]
    lines.append(f"  name: {json.dumps(v.get('name', ''))}")
    if v.get("status"):
        lines.append(f"  status: {json.dumps(v['status'])}")
    priority = v.get("priority", "")
    if priority:
        if re.fullmatch(r"-?\d+", priority):
            lines.append(f"  priority: {int(priority)}")
        else:
            errors.inputs.setdefault("priority", []).append("must be a whole number")
    if v.get("delivery_mode"):
        lines.append(f"  delivery_mode: {json.dumps(v['delivery_mode'])}")
    for name in ("start_time", "end_time"):
        text = v.get(name, "")
        if not text:
            continue
        if not _LOCAL.match(text):
            errors.inputs.setdefault(name, []).append("must be a date and time, YYYY-MM-DDTHH:MM (UTC)")
            continue
        lines.append(f"  {name}: {json.dumps(text + (':00' if len(text) == 16 else '') + 'Z')}")
    tags = [t.strip() for t in v.get("tags", "").split(",") if t.strip()]
    if tags:
        lines.append(f"  tags: {json.dumps(tags)}")
    return lines


def parse_form(form: CampaignForm) -> tuple[Document | None, FormErrors]:
    """The campaign document the form describes (its message's key the input's, maybe empty),
    or the problems, each at its input or editor line."""
    errors = FormErrors()
    header = _header(form, errors)
    rest_lines = form.rest.expandtabs(2).splitlines()
    text = "\n".join([*header, *("  " + line if line.strip() else "" for line in rest_lines)]) + "\n"
    try:
        docs = parse_documents(text, _FILE)
    except DocumentError as exc:
        place_problems(exc.problems, len(header), errors)
        return None, errors
    if errors:
        return None, errors
    if len(docs) != 1:
        errors.general.append("the editor holds the rest of one campaign: no `---` documents")
        return None, errors
    doc = docs[0]
    doc.message.key = form.values.get("key", "")
    return doc, errors


def input_of(path: str) -> str | None:
    """The input that shows a document field (`spec.tags[0]` → tags), or None for the editor."""
    if path == "key":
        return "key"
    for name in INPUTS:
        if path == f"spec.{name}" or path.startswith((f"spec.{name}.", f"spec.{name}[")):
            return name
    return None


def place_problems(problems: Iterable[Problem], header_lines: int, errors: FormErrors) -> None:
    for p in problems:
        target = input_of(p.field)
        if target is not None:
            errors.inputs.setdefault(target, []).append(p.message)
        elif p.line > header_lines:
            errors.rest.append((p.line - header_lines, p.field, p.message))
        elif p.field:
            # A field of the editor that the document names only as a whole (`spec`).
            errors.rest.append((0, p.field, p.message))
        else:
            errors.general.append(p.message)


def header_length(form: CampaignForm) -> int:
    return len(_header(form, FormErrors()))


def place_violations(violations: Iterable[tuple[str, str]], doc: Document, form: CampaignForm) -> FormErrors:
    """A service's BadRequest violations (`campaign.variants[0].weight`, `request_id`…) at
    their inputs or editor lines, found through the document's origin."""
    errors = FormErrors()
    header = header_length(form)
    problems = []
    for path, message in violations:
        if path.startswith("campaign."):
            spec_path = "spec." + path.removeprefix("campaign.")
            line = doc.origin.line_of(spec_path) if doc.origin else 0
            problems.append(Problem(_FILE, line, "key" if spec_path == "spec.key" else spec_path, message))
        else:
            errors.general.append(f"{path}: {message}" if path else message)
    place_problems(problems, header, errors)
    return errors


def plain_value(value: Any) -> str:
    """A value of a version diff as one line."""
    return json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value


# --- segments ------------------------------------------------------------------------------

SEGMENT_INPUTS = ("name", "key", "description")
SEGMENT_STARTER = """\
event:
  name: app_open
  operator: EVENT_OPERATOR_AT_LEAST
  count: 3
  window: 604800s
"""


def segment_form_of(doc: Document) -> CampaignForm:
    spec = document_data(doc)["spec"]
    values = {"name": spec.get("name", ""), "key": doc.key, "description": spec.get("description", "")}
    rest = ""
    if spec.get("rule"):
        buffer = io.StringIO()
        _yaml().dump(spec["rule"], buffer)
        rest = buffer.getvalue()
    return CampaignForm(values, rest)


def _segment_header(form: CampaignForm) -> list[str]:
    v = form.values
    return ["kind: Segment", f"key: {json.dumps(v.get('key') or _NO_KEY)}", "spec:",
            f"  name: {json.dumps(v.get('name', ''))}", f"  description: {json.dumps(v.get('description', ''))}",
            "  rule:"]


def parse_segment_form(form: CampaignForm) -> tuple[Document | None, FormErrors]:
    """The segment document the form describes (the rule from the editor, at `spec.rule`)."""
    errors = FormErrors()
    header = _segment_header(form)
    lines = form.rest.expandtabs(2).splitlines()
    text = "\n".join([*header, *("    " + line if line.strip() else "" for line in lines)]) + "\n"
    try:
        docs = parse_documents(text, _FILE)
    except DocumentError as exc:
        for p in exc.problems:
            name = next((n for n in SEGMENT_INPUTS if p.field in (f"spec.{n}", n)), None)
            if name is not None:
                errors.inputs.setdefault(name, []).append(p.message)
            elif p.line > len(header):
                errors.rest.append((p.line - len(header), p.field, p.message))
            else:
                errors.rest.append((0, p.field, p.message))
        return None, errors
    doc = docs[0]
    doc.message.key = form.values.get("key", "")
    return doc, errors


# --- app settings ------------------------------------------------------------------------------

SETTINGS_INPUTS = ("default_time_zone", "default_locale")


def _yaml_text(spec: dict) -> str:
    """What is left of a document's spec once the form's inputs took theirs, as the YAML the
    editor shows ('' when nothing is left)."""
    if not spec:
        return ""
    buffer = io.StringIO()
    _yaml().dump(spec, buffer)
    return buffer.getvalue()


def settings_form_of(doc: Document) -> CampaignForm:
    spec = document_data(doc)["spec"]
    values = {name: spec.pop(name, "") for name in SETTINGS_INPUTS}
    return CampaignForm(values, _yaml_text(spec))


def parse_settings_form(form: CampaignForm) -> tuple[Document | None, FormErrors]:
    """The AppSettings document: time zone and locale from inputs, cap rules and quiet hours
    from the editor."""
    errors = FormErrors()
    header = ["kind: AppSettings", "spec:"]
    header += [f"  {name}: {json.dumps(form.values[name])}" for name in SETTINGS_INPUTS if form.values.get(name)]
    lines = form.rest.expandtabs(2).splitlines()
    text = "\n".join([*header, *("  " + line if line.strip() else "" for line in lines)]) + "\n"
    try:
        docs = parse_documents(text, _FILE)
    except DocumentError as exc:
        for p in exc.problems:
            name = next((n for n in SETTINGS_INPUTS if p.field == f"spec.{n}"), None)
            if name is not None:
                errors.inputs.setdefault(name, []).append(p.message)
            else:
                errors.rest.append((p.line - len(header) if p.line > len(header) else 0, p.field, p.message))
        return None, errors
    return docs[0], errors


def settings_violation_errors(violations: Iterable[tuple[str, str]], doc: Document, form: CampaignForm) -> FormErrors:
    errors = FormErrors()
    header = 2 + sum(1 for name in SETTINGS_INPUTS if form.values.get(name))
    for path, message in violations:
        spec_path = "spec." + path.removeprefix("settings.")
        name = next((n for n in SETTINGS_INPUTS if spec_path == f"spec.{n}"), None)
        if name is not None:
            errors.inputs.setdefault(name, []).append(message)
            continue
        line = doc.origin.line_of(spec_path) if doc.origin else 0
        errors.rest.append((line - header if line > header else 0, spec_path, message))
    return errors


def violation_errors(violations: Iterable[tuple[str, str]], inputs: Mapping[str, str]) -> FormErrors:
    """A service's field violations at the inputs of a plain form (`inputs`: a request field,
    or its first part, → the input's name); a field no input shows is a problem of the form."""
    errors = FormErrors()
    for path, message in violations:
        name = inputs.get(path) or inputs.get(re.split(r"[.\[]", path, maxsplit=1)[0])
        if name is None:
            errors.general.append(f"{path}: {message}" if path else message)
        else:
            errors.inputs.setdefault(name, []).append(message)
    return errors
