"""What every request must satisfy before a handler sees it, whatever its RPC.

The server interceptor decodes each request through `RequestDoor.parse`: bytes that are not
a valid message, strings holding NUL (PostgreSQL text refuses them), Timestamps and Durations
outside protobuf's documented range, enum values the enum does not define and a negative
`page_size` (AIP-158: 0 asks for the default, more than the maximum is capped) become field
violations (`events[3].user_id`), answered INVALID_ARGUMENT before the handler runs. So no
handler meets them, stores them or hands them to clients later.

Protobuf itself refuses invalid UTF-8 in string fields at parse time; `parse_violation` walks
the wire format of the refused bytes to name the field (it runs only for bytes that failed).

A service that validates the items of a batch one by one, answering partial success (as
ingestion does for events), names their message types in `per_item`: the walk leaves them to
it, so one bad event is rejected on its own rather than refusing its whole batch. The
consumers of ingestion's log leave events alone likewise (`INGESTED`): they come only from
ingestion, whose door and `check_event` passed each before it was stored.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from google.protobuf import descriptor as _d
from google.protobuf.message import DecodeError

from nudgelib.violations import FieldViolation

# google.protobuf.Timestamp: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z.
MIN_TIMESTAMP_SECONDS, MAX_TIMESTAMP_SECONDS = -62135596800, 253402300799
# google.protobuf.Duration: ±10,000 years.
MAX_DURATION_SECONDS = 315576000000
MAX_NANOS = 999_999_999
# A request with this many violations is refused with these; the walk stops there.
MAX_VIOLATIONS = 10
# Items that reach a consumer only through ingestion's log, checked when they were ingested.
INGESTED = ("nudge.common.v1.Event",)

_STRING, _ENUM, _MESSAGE, _MAP, _TIMESTAMP, _DURATION, _STRUCT, _SKIP, _PAGE_SIZE = range(9)
_INTEGERS = frozenset((_d.FieldDescriptor.TYPE_INT32, _d.FieldDescriptor.TYPE_INT64,
                       _d.FieldDescriptor.TYPE_SINT32, _d.FieldDescriptor.TYPE_SINT64))
_TIMESTAMP_NAME = "google.protobuf.Timestamp"
_DURATION_NAME = "google.protobuf.Duration"
# Event properties are Structs: walked by a flat loop of their own, about four times faster
# than the general walk over Value messages.
_STRUCT_NAME = "google.protobuf.Struct"


def timestamp_problem(seconds: int, nanos: int) -> str | None:
    if not MIN_TIMESTAMP_SECONDS <= seconds <= MAX_TIMESTAMP_SECONDS:
        return "is outside 0001-01-01T00:00:00Z..9999-12-31T23:59:59Z"
    if not 0 <= nanos <= MAX_NANOS:
        return "nanos must be 0 to 999999999"
    return None


def duration_problem(seconds: int, nanos: int) -> str | None:
    if not -MAX_DURATION_SECONDS <= seconds <= MAX_DURATION_SECONDS:
        return "is outside protobuf's Duration range (±10,000 years)"
    if not -MAX_NANOS <= nanos <= MAX_NANOS or (seconds and nanos and (seconds < 0) != (nanos < 0)):
        return "nanos must be within ±999999999 and of the same sign as seconds"
    return None


class Refused:
    """What the deserializer hands on instead of a request that fails the door."""

    __slots__ = ("violations",)

    def __init__(self, violations: list[FieldViolation]) -> None:
        self.violations = violations


class RequestDoor:
    """Decodes and checks requests. One per server; it keeps a plan per field it has met."""

    def __init__(self, per_item: Iterable[str] = ()) -> None:
        self._per_item = frozenset(per_item)
        self._plans: dict[Any, tuple] = {}

    def deserializer(self, deserialize: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
        """Wraps a generated `Request.FromString`: returns the request, or `Refused`."""
        message_class = getattr(deserialize, "__self__", None)
        descriptor = getattr(message_class, "DESCRIPTOR", None)

        def parse(raw: bytes) -> Any:
            try:
                request = deserialize(raw)
            except Exception as exc:  # noqa: BLE001 - DecodeError and whatever else parsing raises
                return Refused([parse_violation(descriptor, raw, exc)])
            if descriptor is None:
                return request
            problems = self.violations(request)
            return Refused(problems) if problems else request

        return parse

    def violations(self, message: Any) -> list[FieldViolation]:
        out: list[FieldViolation] = []
        self._walk(message, "", out)
        return out

    def _plan(self, fd: Any) -> tuple:
        plan = self._plans.get(fd)
        if plan is not None:
            return plan
        repeated = fd.is_repeated
        extra: Any = None
        if fd.type == _d.FieldDescriptor.TYPE_STRING:
            kind = _STRING
        elif fd.type == _d.FieldDescriptor.TYPE_ENUM:
            kind, extra = _ENUM, (frozenset(fd.enum_type.values_by_number), fd.enum_type.full_name)
        elif fd.type == _d.FieldDescriptor.TYPE_MESSAGE:
            name = fd.message_type.full_name
            if fd.message_type.GetOptions().map_entry:
                kind, extra = _MAP, (self._plan(fd.message_type.fields_by_name["key"]),
                                     self._plan(fd.message_type.fields_by_name["value"]))
            elif name == _TIMESTAMP_NAME:
                kind = _TIMESTAMP
            elif name == _DURATION_NAME:
                kind = _DURATION
            elif name == _STRUCT_NAME:
                kind = _STRUCT
            elif name in self._per_item:
                kind = _SKIP
            else:
                kind = _MESSAGE
        elif fd.name == "page_size" and fd.type in _INTEGERS:
            kind = _PAGE_SIZE
        else:
            kind = _SKIP
        plan = (kind, fd.name, repeated, extra)
        self._plans[fd] = plan
        return plan

    def _walk(self, message: Any, prefix: str, out: list[FieldViolation]) -> None:
        # The common cases (a string, a single message, an enum) are inline and paths are
        # only formatted for a violation: this runs for every item of every internal batch.
        plans = self._plans
        for fd, value in message.ListFields():
            kind, name, repeated, extra = plans.get(fd) or self._plan(fd)
            if kind == _SKIP:
                continue
            if not repeated:
                if kind == _STRING:
                    if "\x00" in value:
                        out.append(FieldViolation(prefix + name, "holds a NUL character"))
                elif kind == _MESSAGE:
                    self._walk(value, f"{prefix}{name}.", out)
                elif kind == _ENUM:
                    if value not in extra[0]:
                        out.append(FieldViolation(prefix + name, f"{value} is not a value of {extra[1]}"))
                else:
                    self._one(kind, extra, value, prefix + name, out)
            elif kind == _MAP:
                key_plan, value_plan = extra
                for key in value:
                    here = f"{prefix}{name}[{key!r}]"
                    if key_plan[0] == _STRING and "\x00" in key:
                        out.append(FieldViolation(here, "the key holds a NUL character"))
                    self._one(value_plan[0], value_plan[3], value[key], here, out)
                    if len(out) >= MAX_VIOLATIONS:
                        return
            elif kind == _STRING:
                for i, item in enumerate(value):
                    if "\x00" in item:
                        out.append(FieldViolation(f"{prefix}{name}[{i}]", "holds a NUL character"))
            else:
                for i, item in enumerate(value):
                    self._one(kind, extra, item, f"{prefix}{name}[{i}]", out)
                    if len(out) >= MAX_VIOLATIONS:
                        return
            if len(out) >= MAX_VIOLATIONS:
                return

    def _one(self, kind: int, extra: Any, value: Any, path: str, out: list[FieldViolation]) -> None:
        if kind == _STRING:
            if "\x00" in value:
                out.append(FieldViolation(path, "holds a NUL character"))
        elif kind == _MESSAGE:
            self._walk(value, path + ".", out)
        elif kind == _STRUCT:
            if (where := _struct_nul(value)) is not None:
                out.append(FieldViolation(path + where, "holds a NUL character"))
        elif kind == _ENUM:
            if value not in extra[0]:
                out.append(FieldViolation(path, f"{value} is not a value of {extra[1]}"))
        elif kind == _TIMESTAMP:
            if (problem := timestamp_problem(value.seconds, value.nanos)) is not None:
                out.append(FieldViolation(path, problem))
        elif kind == _DURATION:
            if (problem := duration_problem(value.seconds, value.nanos)) is not None:
                out.append(FieldViolation(path, problem))
        elif kind == _PAGE_SIZE:
            if value < 0:
                out.append(FieldViolation(path, "must not be negative (0 asks for the default page size)"))


def _struct_nul(struct: Any) -> str | None:
    """Where a key or string of a Struct holds NUL (`["a"]["b"]`), or None."""
    for key, value in struct.fields.items():
        if "\x00" in key:
            return f"[{key!r}]"
        kind = value.WhichOneof("kind")
        if kind == "string_value":
            if "\x00" in value.string_value:
                return f"[{key!r}]"
        elif kind == "struct_value" or kind == "list_value":
            if (where := _value_nul(value)) is not None:
                return f"[{key!r}]{where}"
    return None


def _value_nul(value: Any) -> str | None:
    kind = value.WhichOneof("kind")
    if kind == "string_value":
        return "" if "\x00" in value.string_value else None
    if kind == "struct_value":
        return _struct_nul(value.struct_value)
    if kind == "list_value":
        for i, item in enumerate(value.list_value.values):
            if (where := _value_nul(item)) is not None:
                return f"[{i}]{where}"
    return None


def parse_violation(descriptor: Any, raw: bytes, error: BaseException | None = None) -> FieldViolation:
    """Names the field where `raw` stops being a valid message of `descriptor`: a string that is
    not UTF-8, a length or varint running past the end. Bytes whose fault it cannot place
    (nesting deeper than protobuf allows, say) are named as the whole request (`field` empty)."""
    if descriptor is not None:
        try:
            found = _wire_fault(descriptor, memoryview(raw), "", 0)
        except RecursionError:
            found = None
        if found is not None:
            return FieldViolation(*found)
        name = descriptor.full_name
    else:
        name = "request"
    detail = str(error) if isinstance(error, DecodeError) else "could not be parsed"
    return FieldViolation("", f"is not a valid {name}: {detail}")


def _varint(data: memoryview, pos: int) -> tuple[int, int] | None:
    result = shift = 0
    while pos < len(data) and shift < 70:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
    return None


def _indexed(fd: Any) -> bool:
    """Whether occurrences of this field are items of a list (`events[3]`), not map entries
    or packed numbers."""
    if not fd.is_repeated:
        return False
    if fd.type == _d.FieldDescriptor.TYPE_MESSAGE:
        return not fd.message_type.GetOptions().map_entry
    return fd.type in (_d.FieldDescriptor.TYPE_STRING, _d.FieldDescriptor.TYPE_BYTES)


def _wire_fault(descriptor: Any, data: memoryview, prefix: str, depth: int) -> tuple[str, str] | None:
    if depth > 100:
        return None
    pos, counts = 0, {}
    while pos < len(data):
        tag = _varint(data, pos)
        if tag is None:
            return (prefix.rstrip(".") or "", "is truncated (a field tag runs past the end)")
        key, pos = tag
        number, wire = key >> 3, key & 7
        fd = descriptor.fields_by_number.get(number)
        name = prefix + (fd.name if fd is not None else f"#{number}")
        if fd is not None and wire == 2 and _indexed(fd):
            index = counts.get(number, 0)
            counts[number] = index + 1
            name = f"{name}[{index}]"
        if number == 0:
            return (name, "is malformed (field number 0)")
        if wire == 0:
            if (step := _varint(data, pos)) is None:
                return (name, "is truncated")
            pos = step[1]
        elif wire == 1 or wire == 5:
            pos += 8 if wire == 1 else 4
            if pos > len(data):
                return (name, "is truncated")
        elif wire == 2:
            length = _varint(data, pos)
            if length is None or length[1] + length[0] > len(data):
                return (name, "is truncated (its length runs past the end)")
            start, pos = length[1], length[1] + length[0]
            if fd is None:
                continue
            chunk = data[start:pos]
            if fd.type == _d.FieldDescriptor.TYPE_STRING:
                try:
                    str(chunk, "utf-8")
                except UnicodeDecodeError:
                    return (name, "is not valid UTF-8")
            elif fd.type == _d.FieldDescriptor.TYPE_MESSAGE:
                found = _wire_fault(fd.message_type, chunk, name + ".", depth + 1)
                if found is not None:
                    return found
        else:
            return (name, f"is malformed (wire type {wire})")
    return None
