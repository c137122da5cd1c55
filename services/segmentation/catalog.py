"""Each app's segment rules, compiled, with what evaluating them needs to read: which
counters an event adds to, which counters and how many days of them the rules read. Pure;
the cache of catalogs is `caches.Catalogs`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from google.protobuf import struct_pb2

from nudge.segmentation.v1 import segmentation_service_pb2 as pb
from nudgelib.filters import Filter, compile_filters, match_all, plain_struct
from services.segmentation import properties
from services.segmentation.model import Profile, SegmentDef
from services.segmentation.rule_evaluation import Node, compile_rule, memberships
from services.segmentation.rule_tree import event_conditions, window_days


@dataclass(frozen=True)
class Evaluation:
    segment_ids: list[str]
    seqs: frozenset[int]
    valid_until: datetime | None


@dataclass
class Catalog:
    app_id: str
    version: int
    segments: dict[str, SegmentDef]
    nodes: dict[str, Node] = field(init=False)
    by_seq: dict[int, str] = field(init=False)
    # Event name -> its property-filtered counters: (key, filters).
    filters: dict[str, list[tuple[str, tuple[Filter, ...]]]] = field(init=False)
    # Every counter some segment reads, and how many days back the widest window looks.
    keys: list[str] = field(init=False)
    widest_window: int = field(init=False)

    @classmethod
    def of(cls, app_id: str, version: int, segments: list[SegmentDef]) -> Catalog:
        return cls(app_id, version, {s.id: s for s in segments})

    def __post_init__(self) -> None:
        self.nodes = {sid: compile_rule(s.rule) for sid, s in self.segments.items()}
        self.by_seq = {s.seq: sid for sid, s in self.segments.items()}
        keys: set[str] = set()
        filters: dict[str, dict[str, tuple[Filter, ...]]] = {}
        widest = 0
        for s in self.segments.values():
            for c in event_conditions(s.rule):
                compiled = compile_filters(c.property_filters)
                key = properties.counter_key(c.name, compiled)
                keys.add(key)
                if compiled:
                    filters.setdefault(c.name, {})[key] = compiled
                widest = max(widest, window_days(c))
        self.keys = sorted(keys)
        self.filters = {name: sorted(found.items()) for name, found in filters.items()}
        self.widest_window = widest

    @property
    def rules(self) -> dict[str, pb.Rule]:
        return {sid: s.rule for sid, s in self.segments.items()}

    @property
    def tracked(self) -> frozenset[str]:
        """Property-filtered counters that hold rows (plain names always do)."""
        return frozenset(k for k in self.keys if properties.KEY_SEPARATOR in k)

    def day_floor(self, today: date) -> date:
        """The earliest day any rule can look at; older day counts need not be loaded."""
        return today - timedelta(days=max(self.widest_window, 1) - 1)

    def counters_for(self, name: str, properties: struct_pb2.Struct) -> list[str]:
        """The counters one event adds to: its name, and each matching filtered counter. The
        properties are converted only for a name some filter reads: most events' are not."""
        filtered = self.filters.get(name)
        if not filtered:
            return [name]
        found = [name]
        props = plain_struct(properties)
        for key, compiled in filtered:
            if match_all(compiled, props):
                found.append(key)
        return found

    def evaluate(self, profile: Profile, now: datetime) -> Evaluation:
        if not self.nodes:
            return Evaluation([], frozenset(), None)
        inside, valid_until = memberships(self.nodes, profile, now)
        return Evaluation(inside, frozenset(self.segments[s].seq for s in inside), valid_until)

    def ids_of(self, seqs) -> list[str]:
        return sorted(self.by_seq[s] for s in seqs if s in self.by_seq)
