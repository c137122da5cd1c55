"""The JSON schema of campaign files, generated at run time from the protos' message
descriptors, so a field added to a `.proto` is accepted by files the moment `make protos`
regenerates the messages: there is no second copy of the fields to keep in step.

A document is `{kind, key, spec}`; `spec` is the message in protobuf's JSON mapping, written
with the proto field names (the loader renames lowerCamelCase names to them first, see
documents.py). What the schema adds to the protos:
- enums by name only (`CAMPAIGN_STATUS_ACTIVE`, not 2);
- Timestamps as RFC 3339 with an offset, Durations as seconds with an `s` (`1800s`);
- segment references (`audience.include_segment_ids`, `audience.exclude_segment_ids`, a
  trigger's `segment_entered_id`, a rule's `segment.segment_id`) hold segment keys;
- server-assigned fields (`id`, `version`, `create_time`, `update_time`) and `key` are
  refused inside `spec` (the key is the document's own top-level field).

`python -m nudgetools.files` prints the schema of a whole document, e.g. for an
editor's YAML language server.
"""

from __future__ import annotations

from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor

from nudge.decision.v1 import decision_service_pb2 as decision_pb
from nudge.segmentation.v1 import segmentation_service_pb2 as segmentation_pb

# Operator-chosen keys, as the issue 16 conventions define them.
KEY_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,63}$"
KEY_RULE = "a key: 1 to 64 of a-z 0-9 . _ -, starting with a letter or digit"

# kind -> the message its spec holds
KINDS: dict[str, type] = {
    "Segment": segmentation_pb.Segment,
    "Campaign": decision_pb.Campaign,
    "AppSettings": decision_pb.AppSettings,
}
KEYED = frozenset({"Segment", "Campaign"})

# Fields the services assign, never written in files (per kind's top-level message).
SERVER_FIELDS = frozenset({"id", "version", "create_time", "update_time"})

# (message full name, field name) of every field holding segment references: keys in files.
SEGMENT_REFERENCES = frozenset({
    ("nudge.decision.v1.Audience", "include_segment_ids"),
    ("nudge.decision.v1.Audience", "exclude_segment_ids"),
    ("nudge.decision.v1.Trigger", "segment_entered_id"),
    ("nudge.segmentation.v1.SegmentMembershipCondition", "segment_id"),
})

# A readable reason for a value a pattern refuses (jsonschema's own message prints the regex).
MESSAGE = "x-message"

_TIMESTAMP = {"type": "string", MESSAGE: "must be an RFC 3339 time with an offset, e.g. 2026-12-01T09:00:00Z",
              "pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$"}
_DURATION = {"type": "string", MESSAGE: "must be a duration in seconds ending in s, e.g. 1800s for 30 minutes",
             "pattern": r"^-?\d+(\.\d{1,9})?s$"}
_WELL_KNOWN: dict[str, dict[str, Any]] = {
    "google.protobuf.Timestamp": _TIMESTAMP,
    "google.protobuf.Duration": _DURATION,
    "google.protobuf.Struct": {"type": "object"},
    "google.protobuf.Value": {},
    "google.protobuf.ListValue": {"type": "array"},
}
_KEY = {"type": "string", "pattern": KEY_PATTERN, MESSAGE: f"must be {KEY_RULE}"}

_INT64 = {"anyOf": [{"type": "integer"}, {"type": "string", "pattern": r"^-?\d+$"}]}
_UINT64 = {"anyOf": [{"type": "integer", "minimum": 0}, {"type": "string", "pattern": r"^\d+$"}]}
_FLOAT = {"anyOf": [{"type": "number"}, {"enum": ["NaN", "Infinity", "-Infinity"]}]}
F = FieldDescriptor
_SCALARS: dict[int, dict[str, Any]] = {
    F.TYPE_STRING: {"type": "string"},
    F.TYPE_BYTES: {"type": "string", "contentEncoding": "base64"},
    F.TYPE_BOOL: {"type": "boolean"},
    F.TYPE_INT32: {"type": "integer", "minimum": -(2**31), "maximum": 2**31 - 1},
    F.TYPE_SINT32: {"type": "integer", "minimum": -(2**31), "maximum": 2**31 - 1},
    F.TYPE_SFIXED32: {"type": "integer", "minimum": -(2**31), "maximum": 2**31 - 1},
    F.TYPE_UINT32: {"type": "integer", "minimum": 0, "maximum": 2**32 - 1},
    F.TYPE_FIXED32: {"type": "integer", "minimum": 0, "maximum": 2**32 - 1},
    F.TYPE_INT64: _INT64, F.TYPE_SINT64: _INT64, F.TYPE_SFIXED64: _INT64,
    F.TYPE_UINT64: _UINT64, F.TYPE_FIXED64: _UINT64,
    F.TYPE_DOUBLE: _FLOAT, F.TYPE_FLOAT: _FLOAT,
}


def _ref(descriptor: Descriptor) -> str:
    return f"#/$defs/{descriptor.full_name}"


def _is_map(field: FieldDescriptor) -> bool:
    return field.type == F.TYPE_MESSAGE and field.message_type.GetOptions().map_entry


def _value(field: FieldDescriptor, defs: dict[str, Any]) -> dict[str, Any]:
    """The schema of one value of the field (an item, for a repeated field)."""
    if (field.containing_type.full_name, field.name) in SEGMENT_REFERENCES:
        return _KEY
    if field.type == F.TYPE_ENUM:
        return {"enum": [v.name for v in field.enum_type.values]}
    if field.type == F.TYPE_MESSAGE:
        known = _WELL_KNOWN.get(field.message_type.full_name)
        if known is not None:
            return known
        _define(field.message_type, defs)
        return {"$ref": _ref(field.message_type)}
    return _SCALARS[field.type]


def _field(field: FieldDescriptor, defs: dict[str, Any]) -> dict[str, Any]:
    if _is_map(field):
        return {"type": "object", "additionalProperties": _value(field.message_type.fields_by_name["value"], defs)}
    if field.is_repeated:
        return {"type": "array", "items": _value(field, defs)}
    return _value(field, defs)


def _define(descriptor: Descriptor, defs: dict[str, Any]) -> None:
    if descriptor.full_name in defs:
        return
    defs[descriptor.full_name] = {}  # placeholder: recursive messages (Rule) refer to themselves
    defs[descriptor.full_name] = {
        "type": "object",
        "properties": {f.name: _field(f, defs) for f in descriptor.fields},
        "additionalProperties": False,
    }


def spec_schema(kind: str) -> dict[str, Any]:
    """The schema of a document's `spec` for `kind`."""
    descriptor = KINDS[kind].DESCRIPTOR
    defs: dict[str, Any] = {}
    _define(descriptor, defs)
    top = dict(defs[descriptor.full_name])
    refused = {name: False for name in (SERVER_FIELDS | {"key"}) if name in descriptor.fields_by_name}
    top["properties"] = {**top["properties"], **refused}
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **top, "$defs": defs}


def document_schema() -> dict[str, Any]:
    """The schema of a whole document: the envelope, and the spec of each kind."""
    defs: dict[str, Any] = {}
    branches = []
    for kind in KINDS:
        spec = spec_schema(kind)
        defs.update(spec.pop("$defs"))
        spec.pop("$schema")
        defs[f"{kind}.spec"] = spec
        branches.append({
            "if": {"properties": {"kind": {"const": kind}}},
            "then": {"properties": {"spec": {"$ref": f"#/$defs/{kind}.spec"}},
                     **({"required": ["kind", "key", "spec"]} if kind in KEYED else {"not": {"required": ["key"]}})},
        })
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {"kind": {"enum": list(KINDS)}, "key": _KEY, "spec": {"type": "object"}},
        "required": ["kind", "spec"],
        "additionalProperties": False,
        "allOf": branches,
        "$defs": defs,
    }
