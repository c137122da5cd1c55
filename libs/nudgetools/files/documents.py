"""Campaign files: YAML documents of segments, campaigns and app settings, read into typed
`Document`s and written back.

    kind: Segment          # Segment | Campaign | AppSettings
    key: cart-abandoners   # required for Segment and Campaign; absent for AppSettings
    spec:                  # the message's fields in protobuf's JSON mapping
      name: Cart abandoners

Reading a document, in order (every problem of every file is collected, then one
`DocumentError` names each with its file, line and field, before anything is sent anywhere):
1. YAML (1.2: `on`, `no` are strings), keeping each key's line (ruamel.yaml);
2. the envelope: `kind`, `key` (its syntax, present exactly for Segment and Campaign), `spec`;
3. inside `spec`, lowerCamelCase names become the proto names (a field written both ways is
   refused), and two fields of one oneof are refused;
4. the JSON schema generated from the protos (schema.py): unknown fields, types, enum names,
   times, durations, key syntax of segment references, server-assigned fields;
5. the message is parsed (json_format), then checked by the services' own pure validation
   (`services.decision.validation`, `services.segmentation.rule_validation`), each violation
   mapped back to its line;
6. across files: a (kind, key) given twice, or AppSettings given twice.

Segment references in files hold segment keys; `segment_references` lists them with their
fields, `with_segment_ids` gives the message with ids for a call, and `from_message` turns a
message read from a service back into a document (ids mapped back to keys, server-assigned
fields left out), so `load(dump(export))` gives the same documents.
"""

from __future__ import annotations

import difflib
import io
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import jsonschema
from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.scalarstring import LiteralScalarString

from nudgelib.timezones import is_valid_time_zone
from nudgelib.violations import FieldViolation
from nudgetools.files.schema import KEY_PATTERN, KEY_RULE, KEYED, KINDS, MESSAGE, SERVER_FIELDS, spec_schema
from services.decision.validation import campaign_violations, settings_violations
from services.segmentation.rule_validation import validate as rule_violations

Path_ = tuple[str | int, ...]
_KEY = re.compile(KEY_PATTERN)
_TOKEN = re.compile(r"([^.\[\]]+)|\[(\d+)\]")
_STRUCTS = frozenset({"google.protobuf.Struct", "google.protobuf.Value", "google.protobuf.ListValue"})
_SCALAR_MESSAGES = frozenset({"google.protobuf.Timestamp", "google.protobuf.Duration"})


@dataclass(frozen=True)
class Problem:
    """One bad thing in a file: where (file, 1-based line; 0 when the file itself is the
    problem), which field (`spec.triggers[0].delay`, or `kind`/`key`/`spec`; empty for
    the document as a whole) and what."""

    file: str
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


class DocumentError(ValueError):
    """Files that cannot be used, with every problem found (in file and line order)."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems, key=lambda p: (p.file, p.line, p.field))
        super().__init__("\n".join(str(p) for p in self.problems))


@dataclass(frozen=True)
class Origin:
    """Where a document was read: its file, the line it starts on, and the line of each field
    path (`spec.name`, `spec.triggers[0]`, ...), so later steps (apply, diff) can name lines too."""

    file: str
    line: int
    lines: Mapping[str, int] = field(default_factory=dict)

    def line_of(self, path: str) -> int:
        """The line of `path`, or of its nearest enclosing field that has one."""
        parts = _parse_path(path)
        while parts:
            found = self.lines.get(_dotted(parts))
            if found is not None:
                return found
            parts = parts[:-1]
        return self.line


@dataclass(frozen=True)
class Document:
    """One YAML document.

    `kind` is "Segment", "Campaign" or "AppSettings"; `key` the operator's key ("" for
    AppSettings); `message` the spec as its proto (`nudge.segmentation.v1.Segment`,
    `nudge.decision.v1.Campaign`, `nudge.decision.v1.AppSettings`) with segment references
    holding segment keys, and no server-assigned field set (if the message type has a `key`
    field, it holds the key). Documents are equal when kind, key and message are: `origin`
    (where it was read, None when built in code) does not count."""

    kind: str
    key: str
    message: Message
    origin: Origin | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Reference:
    """A segment reference in a document: the field (`spec.audience.include_segment_ids[0]`)
    and the segment key it holds."""

    field: str
    key: str


# --- paths ------------------------------------------------------------------------------------


def _dotted(path: Iterable[str | int]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def _parse_path(text: str) -> Path_:
    return tuple(int(index) if index else name for name, index in _TOKEN.findall(text))


# --- YAML to plain data, with lines -------------------------------------------------------------


def _plain(node: Any, path: Path_, lines: dict[str, int]) -> Any:
    """ruamel's node as JSON-like data; records the line of every key and list item."""
    if isinstance(node, CommentedMap):
        out = {}
        for k, v in node.items():
            lines[_dotted((*path, str(k)))] = node.lc.key(k)[0] + 1
            out[str(k)] = _plain(v, (*path, str(k)), lines)
        return out
    if isinstance(node, CommentedSeq):
        out_list = []
        for i, v in enumerate(node):
            lines[_dotted((*path, i))] = node.lc.item(i)[0] + 1
            out_list.append(_plain(v, (*path, i), lines))
        return out_list
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, datetime):
        # YAML resolves unquoted times itself; the JSON mapping wants the text back.
        if node.tzinfo is None:
            return node.isoformat()
        text = datetime(node.year, node.month, node.day, node.hour, node.minute, node.second,
                        node.microsecond, node.tzinfo).isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text
    if isinstance(node, date):
        return node.isoformat()
    return str(node)


def _normalize(data: Any, descriptor: Descriptor, path: Path_, lines: dict[str, int],
               problem: Callable[..., None]) -> Any:
    """A message's mapping with lowerCamelCase names turned into proto names (lines follow);
    a field written twice, or a second field of a oneof, is a problem. Unknown names stay,
    for the schema to name."""
    if not isinstance(data, dict):
        return data
    by_json = {f.json_name: f for f in descriptor.fields}
    out: dict[str, Any] = {}
    oneofs: dict[str, str] = {}
    for name, value in data.items():
        f = descriptor.fields_by_name.get(name) or by_json.get(name)
        if f is None:
            out[name] = value
            continue
        here = (*path, f.name)
        if f.name in out:
            problem(here, f"is given twice (as {f.name} and {f.json_name})", lines.get(_dotted((*path, name))))
            continue
        if f.name != name:
            _move_lines(lines, _dotted((*path, name)), _dotted(here))
        group = f.containing_oneof
        if group is not None and group.name in oneofs and not _synthetic(group):
            problem(here, f"only one of {', '.join(x.name for x in group.fields)} may be set "
                          f"({oneofs[group.name]} is)")
            continue
        if group is not None:
            oneofs[group.name] = f.name
        out[f.name] = _normalize_field(value, f, here, lines, problem)
    return out


def _synthetic(group) -> bool:
    return len(group.fields) == 1 and group.name.startswith("_")


def _normalize_field(value: Any, f: FieldDescriptor, path: Path_, lines: dict[str, int],
                     problem: Callable[..., None]) -> Any:
    if f.type != FieldDescriptor.TYPE_MESSAGE or f.message_type.full_name in _STRUCTS | _SCALAR_MESSAGES:
        return value
    if f.message_type.GetOptions().map_entry:
        inner = f.message_type.fields_by_name["value"]
        if isinstance(value, dict):
            return {k: _normalize_field(v, inner, (*path, k), lines, problem) for k, v in value.items()}
        return value
    if f.is_repeated and isinstance(value, list):
        return [_normalize(v, f.message_type, (*path, i), lines, problem) for i, v in enumerate(value)]
    return _normalize(value, f.message_type, path, lines, problem)


def _move_lines(lines: dict[str, int], old: str, new: str) -> None:
    for k in [k for k in lines if k == old or k.startswith((old + ".", old + "["))]:
        lines[new + k[len(old):]] = lines.pop(k)


# --- checking ------------------------------------------------------------------------------------


_VALIDATORS: dict[str, jsonschema.protocols.Validator] = {}


def _validator(kind: str) -> jsonschema.protocols.Validator:
    if kind not in _VALIDATORS:
        _VALIDATORS[kind] = jsonschema.Draft202012Validator(spec_schema(kind))
    return _VALIDATORS[kind]


def _schema_problems(kind: str, spec: Any) -> list[tuple[Path_, str]]:
    found: list[tuple[Path_, str]] = []
    # Server-assigned fields and `key` (whether or not the message has such a field yet) are
    # refused at the top of spec here: jsonschema reports a `false` schema without its path.
    refused = [name for name in spec if name == "key" or (
        name in SERVER_FIELDS and name in KINDS[kind].DESCRIPTOR.fields_by_name)]
    for name in refused:
        found.append((("spec", name), "is written at the document's top level, not in spec" if name == "key"
                      else "is assigned by the service and not written in files"))
    for e in _validator(kind).iter_errors(spec):
        path = ("spec", *e.absolute_path)
        if e.schema is False:
            continue  # named above
        if e.validator == "additionalProperties" and isinstance(e.instance, dict):
            known = e.schema.get("properties", {})
            allowed = [k for k, v in known.items() if v is not False]
            for extra in (k for k in e.instance if k not in known and (path != ("spec",) or k not in refused)):
                close = difflib.get_close_matches(extra, allowed, n=1)
                hint = f" (did you mean {close[0]}?)" if close else f"; known: {', '.join(allowed)}"
                found.append(((*path, extra), f"is not a field here{hint}"))
        elif e.validator == "enum":
            names = [str(v) for v in e.validator_value]
            close = difflib.get_close_matches(str(e.instance), names, n=1)
            found.append((path, f"{e.instance!r} is not one of {', '.join(names)}" if not close
                          else f"{e.instance!r} is not a value here (did you mean {close[0]}?)"))
        elif isinstance(e.schema, dict) and MESSAGE in e.schema:
            found.append((path, f"{e.instance!r} {e.schema[MESSAGE]}"))
        elif e.validator == "anyOf":
            found.append((path, f"{e.instance!r} is not a valid value here"))
        else:
            found.append((path, e.message))
    return found


def _service_violations(kind: str, message: Message) -> list[FieldViolation]:
    """What the service would answer INVALID_ARGUMENT to, from its own pure validation."""
    if kind == "Campaign":
        return campaign_violations(message, "spec")
    if kind == "AppSettings":
        return settings_violations(message, is_valid_time_zone, "spec")
    out = []
    if not message.name.strip():
        out.append(FieldViolation("spec.name", "is required"))
    if not message.HasField("rule"):
        out.append(FieldViolation("spec.rule", "is required"))
    else:
        out += rule_violations(message.rule, "spec.rule")
    return out


def _read_document(node: Any, file: str, start: int, problems: list[Problem]) -> Document | None:
    lines: dict[str, int] = {}
    origin = Origin(file, start, lines)
    found: list[Problem] = []

    def problem(path: Path_, message: str, line: int | None = None) -> None:
        text = _dotted(path)
        found.append(Problem(file, line or origin.line_of(text), text, message))

    data = _plain(node, (), lines)
    if not isinstance(data, dict):
        problems.append(Problem(file, start, "", "a document is a mapping of kind, key and spec"))
        return None
    for extra in sorted(set(data) - {"kind", "key", "spec"}):
        problem((extra,), "is not a document field (kind, key, spec; the message's fields go under spec)")
    kind = data.get("kind")
    if kind not in KINDS:
        problem(("kind",), f"must be one of {', '.join(KINDS)}" + ("" if kind is None else f", not {kind!r}"))
        problems += found
        return None
    key = data.get("key")
    if kind in KEYED:
        if key is None:
            problem(("kind",), f"a {kind} needs a key")
        elif not isinstance(key, str) or not _KEY.match(key):
            problem(("key",), f"{key!r} must be {KEY_RULE}")
    elif key is not None:
        problem(("key",), "AppSettings have no key (there is one per app)")
    spec = data.get("spec")
    if not isinstance(spec, dict):
        problem(("spec",), "is required: a mapping of the message's fields")
        problems += found
        return None
    descriptor = KINDS[kind].DESCRIPTOR
    spec = _normalize(spec, descriptor, ("spec",), lines, problem)
    for path, message in _schema_problems(kind, spec):
        problem(path, message)
    if found:
        problems += found
        return None
    message = KINDS[kind]()
    try:
        json_format.ParseDict(spec, message)
    except json_format.ParseError as exc:  # what the schema cannot see, e.g. a time out of range
        problem(("spec",), str(exc))
        problems += found
        return None
    key = key if kind in KEYED else ""
    if "key" in descriptor.fields_by_name:
        message.key = key
    for v in _service_violations(kind, message):
        problem(_parse_path(v.field), v.description)
    problems += found
    return None if found else Document(kind, key, message, origin)


# --- reading ------------------------------------------------------------------------------------


def _yaml() -> YAML:
    y = YAML(typ="rt")
    y.allow_duplicate_keys = False
    return y


def parse_documents(text: str, file: str = "<string>") -> list[Document]:
    """The documents of one YAML text (one file); raises DocumentError."""
    problems: list[Problem] = []
    docs = _parse(text, file, problems)
    _check_together(docs, problems)
    if problems:
        raise DocumentError(problems)
    return docs


def _parse(text: str, file: str, problems: list[Problem]) -> list[Document]:
    try:
        nodes = list(_yaml().load_all(io.StringIO(text)))
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 0
        problems.append(Problem(file, line, "", f"not valid YAML: {exc.problem or exc.context}"))
        return []
    except YAMLError as exc:
        problems.append(Problem(file, 0, "", f"not valid YAML: {exc}"))
        return []
    docs = []
    for node in nodes:
        if node is None:  # an empty document (a trailing ---)
            continue
        start = node.lc.line + 1 if isinstance(node, (CommentedMap, CommentedSeq)) else 1
        doc = _read_document(node, file, start, problems)
        if doc is not None:
            docs.append(doc)
    return docs


def _check_together(docs: list[Document], problems: list[Problem]) -> None:
    seen: dict[tuple[str, str], Document] = {}
    for doc in docs:
        first = seen.setdefault((doc.kind, doc.key), doc)
        if first is doc or first.origin is None or doc.origin is None:
            continue
        what = f"{doc.kind} {doc.key!r}" if doc.key else doc.kind
        at = doc.origin.line_of("key" if doc.key else "kind")
        problems.append(Problem(doc.origin.file, at, "key" if doc.key else "kind",
                                f"{what} is given twice (first at {first.origin.file}:"
                                f"{first.origin.line_of('key' if doc.key else 'kind')})"))


def files_of(paths: Iterable[str | Path]) -> list[Path]:
    """The files `paths` name: a file as given, a folder as its *.yaml and *.yml files sorted
    by name (not its subfolders)."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(f for f in p.iterdir() if f.is_file() and f.suffix in (".yaml", ".yml"))
        else:
            out.append(p)
    return out


def load_documents(paths: Iterable[str | Path]) -> list[Document]:
    """Every document of the files and folders given (folders: their *.yaml and *.yml files,
    sorted by name), in order. Raises DocumentError naming every problem, with file, line
    and field, before anything is done with any of them."""
    problems: list[Problem] = []
    docs: list[Document] = []
    for f in files_of(paths):
        try:
            text = f.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(Problem(str(f), 0, "", f"cannot be read: {exc.strerror or exc}"
                                    if isinstance(exc, OSError) else f"is not UTF-8 text: {exc}"))
            continue
        docs += _parse(text, str(f), problems)
    _check_together(docs, problems)
    if problems:
        raise DocumentError(problems)
    return docs


# --- references ---------------------------------------------------------------------------------


def _rule_references(rule, path: str) -> list[tuple[str, Message, str]]:
    node = rule.WhichOneof("node")
    if node == "group":
        return [r for i, child in enumerate(rule.group.rules) for r in _rule_references(child, f"{path}.group.rules[{i}]")]
    if node == "segment":
        return [(f"{path}.segment.segment_id", rule.segment, "segment_id")]
    return []


def _reference_slots(kind: str, message: Message) -> list[tuple[str, Message, str | int]]:
    """(field path, the message or list holding it, attribute name or index) of every reference."""
    if kind == "Segment":
        return _rule_references(message.rule, "spec.rule") if message.HasField("rule") else []
    if kind != "Campaign":
        return []
    a = message.audience
    out: list[tuple[str, Any, str | int]] = []
    for name in ("include_segment_ids", "exclude_segment_ids"):
        out += [(f"spec.audience.{name}[{i}]", getattr(a, name), i) for i in range(len(getattr(a, name)))]
    out += [(f"spec.triggers[{i}].segment_entered_id", t, "segment_entered_id")
            for i, t in enumerate(message.triggers) if t.segment_entered_id]
    return out


def _get(holder: Any, slot: str | int) -> str:
    return holder[slot] if isinstance(slot, int) else getattr(holder, slot)


def _set(holder: Any, slot: str | int, value: str) -> None:
    if isinstance(slot, int):
        holder[slot] = value
    else:
        setattr(holder, slot, value)


def segment_references(doc: Document) -> list[Reference]:
    """Every segment key the document names, with its field, in field order."""
    return [Reference(path, _get(holder, slot)) for path, holder, slot in _reference_slots(doc.kind, doc.message)]


def _mapped(kind: str, message: Message, mapping: Mapping[str, str],
            on_missing: Callable[[str, str], None]) -> Message:
    out = type(message)()
    out.CopyFrom(message)
    for path, holder, slot in _reference_slots(kind, out):
        value = _get(holder, slot)
        if value in mapping:
            _set(holder, slot, mapping[value])
        else:
            on_missing(path, value)
    return out


def with_segment_ids(doc: Document, ids: Mapping[str, str]) -> Message:
    """The document's message with segment keys replaced by ids (`ids`: key -> id), ready for
    a Create/Update call. A key not in `ids` raises DocumentError at its line."""
    problems: list[Problem] = []

    def missing(path: str, key: str) -> None:
        origin = doc.origin or Origin("<document>", 0)
        problems.append(Problem(origin.file, origin.line_of(path), path, f"no segment has the key {key!r}"))

    out = _mapped(doc.kind, doc.message, ids, missing)
    if problems:
        raise DocumentError(problems)
    return out


def from_message(kind: str, message: Message, key: str = "", segment_keys: Mapping[str, str] | None = None) -> Document:
    """A document from a message a service returned: segment ids mapped back to keys
    (`segment_keys`: id -> key; an id without a key raises KeyError, since a file could not
    name it), server-assigned fields cleared. With a `key` field in the message, its value
    is the key when `key` is not given."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}")
    descriptor = KINDS[kind].DESCRIPTOR
    if not key and "key" in descriptor.fields_by_name:
        key = message.key

    def missing(path: str, segment_id: str) -> None:
        raise KeyError(f"{path}: segment {segment_id!r} has no key")

    out = _mapped(kind, message, segment_keys or {}, missing)
    for name in SERVER_FIELDS:
        if name in descriptor.fields_by_name:
            out.ClearField(name)
    if "key" in descriptor.fields_by_name:
        out.key = key if kind in KEYED else ""
    return Document(kind, key if kind in KEYED else "", out)


# --- writing ------------------------------------------------------------------------------------


def _literal(data: Any) -> Any:
    """Multi-line strings as YAML literal blocks, the way a person writes them."""
    if isinstance(data, dict):
        return {k: _literal(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_literal(v) for v in data]
    if isinstance(data, str) and "\n" in data:
        return LiteralScalarString(data)
    return data


def document_data(doc: Document) -> dict[str, Any]:
    """The document as plain data: kind, key (for Segment and Campaign), spec with the proto
    field names in field order and enums by name; no server-assigned field, no key in spec."""
    spec = json_format.MessageToDict(doc.message, preserving_proto_field_name=True)
    for name in SERVER_FIELDS | {"key"}:
        spec.pop(name, None)
    out: dict[str, Any] = {"kind": doc.kind}
    if doc.kind in KEYED:
        out["key"] = doc.key
    out["spec"] = spec
    return out


def dump_documents(docs: Iterable[Document]) -> str:
    """YAML text of the documents, `---` between them; `parse_documents` of it gives them back."""
    y = YAML(typ="rt")
    y.default_flow_style = False
    y.indent(mapping=2, sequence=4, offset=2)
    y.width = 100
    parts = []
    for doc in docs:
        buffer = io.StringIO()
        y.dump(_literal(document_data(doc)), buffer)
        parts.append(buffer.getvalue())
    return "---\n".join(parts)
