"""What `apply` would change, worked out from plain documents: no I/O.

`field_changes` compares two documents' specs (as `document_data` gives them: proto field
names, enums by name, unset fields absent) leaf by leaf, so an edit to one field is one
change, named by its path (`spec.variants[0].contents[0].content.title`). `as_stored` fills
in what the service fills in itself, so a file that leaves such a field out does not differ
from what it was saved as. `segment_order` puts segments after the segments they name."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from nudge.decision.v1 import decision_service_pb2 as decision_pb
from nudgetools.files import Document, Problem, document_data, segment_references


class _Unset:
    def __repr__(self) -> str:
        return "(unset)"


UNSET: Any = _Unset()


@dataclass(frozen=True)
class FieldChange:
    """One leaf that differs: its path, and its value before and after (UNSET when absent)."""

    field: str
    old: Any
    new: Any


def field_changes(old: Any, new: Any, path: str = "spec") -> list[FieldChange]:
    """Every leaf that differs between `old` and `new`, in the new document's field order
    (then fields only the old one has). Mappings are compared key by key, lists of mappings
    item by item; a list of plain values (tags, segment keys) is one value."""
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[FieldChange] = []
        for name in [*new, *(k for k in old if k not in new)]:
            out += field_changes(old.get(name, UNSET), new.get(name, UNSET), f"{path}.{name}")
        return out
    if _records(old) and _records(new):
        out = []
        for i in range(max(len(old), len(new))):
            out += field_changes(old[i] if i < len(old) else UNSET, new[i] if i < len(new) else UNSET,
                                 f"{path}[{i}]")
        return out
    return [] if old == new else [FieldChange(path, old, new)]


def _records(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, dict) for v in value)


def document_changes(current: Document | None, desired: Document) -> list[FieldChange]:
    """The fields `desired` changes in `current` (every field it sets, for a new document)."""
    old = document_data(current)["spec"] if current is not None else {}
    return field_changes(old, document_data(as_stored(desired, current))["spec"])


def as_stored(desired: Document, current: Document | None) -> Document:
    """`desired` as the service will store it: a campaign without a status keeps the one it
    has (UpdateCampaign), or becomes a draft (CreateCampaign)."""
    if desired.kind != "Campaign" or desired.message.status != decision_pb.CAMPAIGN_STATUS_UNSPECIFIED:
        return desired
    message = decision_pb.Campaign()
    message.CopyFrom(desired.message)
    message.status = current.message.status if current is not None else decision_pb.CAMPAIGN_STATUS_DRAFT
    return Document(desired.kind, desired.key, message, desired.origin)


def show(value: Any) -> str:
    """A value as a diff line shows it: strings quoted, lists and mappings inline."""
    if value is UNSET:
        return "(unset)"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(show(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {show(v)}" for k, v in value.items()) + "}"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def segment_order(docs: Iterable[Document]) -> tuple[list[Document], list[Problem]]:
    """The Segment documents, each after the segments of these documents its rule names (so
    each can be created with the ids of those it names), otherwise in the order given; and a
    problem for each segment in a cycle (a rule that names itself through others)."""
    segments = [d for d in docs if d.kind == "Segment"]
    by_key = {d.key: d for d in segments}
    order: list[Document] = []
    state: dict[str, str] = {}  # key -> "visiting" | "done"
    problems: list[Problem] = []

    def visit(doc: Document, chain: list[str]) -> None:
        if state.get(doc.key) == "done":
            return
        if state.get(doc.key) == "visiting":
            cycle = chain[chain.index(doc.key):] + [doc.key]
            origin = doc.origin
            problems.append(Problem(origin.file if origin else "<document>", origin.line_of("spec.rule") if origin else 0,
                                    "spec.rule", f"segments name each other in a circle: {' -> '.join(cycle)}"))
            return
        state[doc.key] = "visiting"
        for ref in segment_references(doc):
            if ref.key in by_key:
                visit(by_key[ref.key], [*chain, doc.key])
        state[doc.key] = "done"
        order.append(doc)

    for doc in segments:
        visit(doc, [])
    return order, problems
