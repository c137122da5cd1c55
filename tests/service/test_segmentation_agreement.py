"""The two evaluators agree: random rules over random users, each user's memberships as the
per-user evaluator (rule_evaluation.py) sees them, against the whole-population SQL (sqlrules.py) run
by PostgreSQL, now and later (time passing), with property-filtered counters filled as events
arrive or filled from the past events when the segment is saved after them, plus the stored memberships and
each user's valid_until. On a database of its own, where no other replica sweeps its users."""

from __future__ import annotations

import asyncio
import os
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import pytest
from google.protobuf import duration_pb2, struct_pb2
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st

from nudge.common.v1 import common_pb2
from nudge.segmentation.v1 import segmentation_internal_service_pb2 as internal_pb
from nudge.segmentation.v1 import segmentation_service_pb2 as pb
from nudgelib import db
from nudgelib.clock import FixedClock
from nudgelib.protoconv import to_timestamp
from services.segmentation.caches import Catalogs, ContextCache, read_catalog
from services.segmentation.membership import Memberships
from services.segmentation.segments import Segments
from services.segmentation.rule_validation import validate
from services.segmentation.settings import SegmentationSettings
from services.segmentation.store import profiles
from tests.helpers import own_database

NOW = datetime(2026, 6, 15, 9, 30, tzinfo=timezone.utc)
MIDNIGHT = datetime(2026, 6, 15, tzinfo=timezone.utc)
A = pb.AttributeOperator
E = pb.EventOperator
ATTRIBUTES = ("a", "b", "c")
EVENTS = ("e1", "e2")
PROPS = ("p", "q")
TICK = timedelta(microseconds=1)
# A few seconds in `make test`; raise it for a deeper search.
EXAMPLES = int(os.environ.get("NUDGE_AGREEMENT_EXAMPLES", "60"))


# ---------------------------------------------------------------- strategies

# Instants near NOW and near day boundaries, where windows and durations flip.
offsets = st.one_of(
    st.integers(-10 * 86400, 0).map(lambda s: timedelta(seconds=s)),
    st.integers(-9, 0).flatmap(lambda d: st.sampled_from([timedelta(0), -TICK, TICK]).map(
        lambda e: (MIDNIGHT - NOW) + timedelta(days=d) + e)),
)

attribute_values = st.one_of(
    st.sampled_from(["", "x", "xy", "y", "é"]).map(lambda v: common_pb2.AttributeValue(string_value=v)),
    st.integers(-2, 3).map(lambda v: common_pb2.AttributeValue(int_value=v)),
    st.sampled_from([-1.5, 0.0, 1.0, 2.5, 3.0]).map(lambda v: common_pb2.AttributeValue(double_value=v)),
    st.booleans().map(lambda v: common_pb2.AttributeValue(bool_value=v)),
    offsets.map(lambda d: common_pb2.AttributeValue(time_value=to_timestamp(NOW + d))),
    st.lists(st.sampled_from(["x", "y", ""]), max_size=2).map(
        lambda v: common_pb2.AttributeValue(string_list_value=common_pb2.StringList(values=v))),
)

property_values = st.one_of(
    st.sampled_from([0.0, 1.0, 1.5, 100.0, -2.0]), st.sampled_from(["", "x", "xy", "y"]), st.booleans(),
    st.none(), st.lists(st.sampled_from(["x", "y", 1.0]), max_size=2),
)


def duration(td: timedelta) -> duration_pb2.Duration:
    d = duration_pb2.Duration()
    d.FromTimedelta(td)
    return d


durations = st.one_of(st.integers(1, 9).map(lambda d: timedelta(days=d)),
                      st.integers(1, 9 * 86400).map(lambda s: timedelta(seconds=s)))


def scalar(v) -> struct_pb2.Value:
    out = struct_pb2.Value()
    if isinstance(v, bool):
        out.bool_value = v
    elif isinstance(v, str):
        out.string_value = v
    else:
        out.number_value = v
    return out


@st.composite
def property_filters(draw):
    op = draw(st.sampled_from([A.ATTRIBUTE_OPERATOR_EQUALS, A.ATTRIBUTE_OPERATOR_NOT_EQUALS,
                               A.ATTRIBUTE_OPERATOR_GREATER, A.ATTRIBUTE_OPERATOR_LESS_OR_EQUAL,
                               A.ATTRIBUTE_OPERATOR_IN, A.ATTRIBUTE_OPERATOR_NOT_IN,
                               A.ATTRIBUTE_OPERATOR_CONTAINS, A.ATTRIBUTE_OPERATOR_STARTS_WITH,
                               A.ATTRIBUTE_OPERATOR_EXISTS, A.ATTRIBUTE_OPERATOR_IS_EMPTY,
                               common_pb2.PROPERTY_OPERATOR_WITHIN_DISTANCE]))
    # Dotted names reach into the object property `o`; a distance looks at `o` as a location.
    f = common_pb2.PropertyFilter(name=draw(st.sampled_from(PROPS + ("o.p", "o"))), operator=op)
    if op == common_pb2.PROPERTY_OPERATOR_WITHIN_DISTANCE:
        f.name = "o"
        f.circle.CopyFrom(common_pb2.GeoCircle(latitude=0, longitude=0,
                                               radius_meters=draw(st.sampled_from([1_000.0, 200_000.0]))))
    elif op in (A.ATTRIBUTE_OPERATOR_IN, A.ATTRIBUTE_OPERATOR_NOT_IN):
        values = draw(st.lists(st.sampled_from([1.0, 100.0, "x", True]), min_size=1, max_size=3))
        f.value.list_value.values.extend(scalar(v) for v in values)
    elif op in (A.ATTRIBUTE_OPERATOR_CONTAINS, A.ATTRIBUTE_OPERATOR_STARTS_WITH):
        f.value.string_value = draw(st.sampled_from(["", "x", "y"]))
    elif op in (A.ATTRIBUTE_OPERATOR_GREATER, A.ATTRIBUTE_OPERATOR_LESS_OR_EQUAL):
        f.value.CopyFrom(scalar(draw(st.sampled_from([0.0, 1.5, 100.0, "x"]))))
    elif op != A.ATTRIBUTE_OPERATOR_EXISTS and op != A.ATTRIBUTE_OPERATOR_IS_EMPTY:
        f.value.CopyFrom(scalar(draw(st.sampled_from([1.0, 100.0, "x", "", True, False]))))
    return f


@st.composite
def attribute_conditions(draw):
    op = draw(st.sampled_from([o for o in A.values() if o != A.ATTRIBUTE_OPERATOR_UNSPECIFIED]))
    c = pb.AttributeCondition(name=draw(st.sampled_from(ATTRIBUTES + ("zz",))), operator=op)
    value = draw(attribute_values)
    if op in (A.ATTRIBUTE_OPERATOR_CONTAINS, A.ATTRIBUTE_OPERATOR_STARTS_WITH):
        value = common_pb2.AttributeValue(string_value=draw(st.sampled_from(["", "x", "y"])))
    elif op in (A.ATTRIBUTE_OPERATOR_BEFORE, A.ATTRIBUTE_OPERATOR_AFTER):
        value = common_pb2.AttributeValue(time_value=to_timestamp(NOW + draw(offsets)))
    elif op in (A.ATTRIBUTE_OPERATOR_GREATER, A.ATTRIBUTE_OPERATOR_GREATER_OR_EQUAL, A.ATTRIBUTE_OPERATOR_LESS,
                A.ATTRIBUTE_OPERATOR_LESS_OR_EQUAL) and value.WhichOneof("kind") in ("bool_value", "string_list_value"):
        value = common_pb2.AttributeValue(int_value=1)
    c.value.CopyFrom(value)
    c.values.extend(draw(st.lists(attribute_values, min_size=1, max_size=3)))
    c.duration.CopyFrom(duration(draw(durations)))
    return pb.Rule(attribute=c)


@st.composite
def event_conditions(draw):
    op = draw(st.sampled_from([o for o in E.values() if o != E.EVENT_OPERATOR_UNSPECIFIED]))
    c = pb.EventCondition(name=draw(st.sampled_from(EVENTS)), operator=op)
    if op in (E.EVENT_OPERATOR_AT_LEAST, E.EVENT_OPERATOR_AT_MOST, E.EVENT_OPERATOR_EXACTLY):
        c.count = draw(st.integers(0, 3))
    if op == E.EVENT_OPERATOR_EACH_DAY:
        c.days = draw(st.integers(1, 3))
    elif op == E.EVENT_OPERATOR_LAST_PERFORMED_MORE_THAN_AGO:
        c.window.CopyFrom(duration(draw(durations)))
    elif draw(st.booleans()):
        c.window.CopyFrom(duration(timedelta(days=draw(st.integers(1, 8)))))
    c.property_filters.extend(draw(st.lists(property_filters(), max_size=2)))
    return pb.Rule(event=c)


leaves = st.one_of(
    attribute_conditions(), event_conditions(), event_conditions(),
    durations.map(lambda d: pb.Rule(inactive=pb.InactiveCondition(duration=duration(d)))),
    st.lists(st.sampled_from([1, 2, 3]), min_size=1, max_size=2).map(
        lambda p: pb.Rule(platform=pb.PlatformCondition(platforms=p))),
    st.tuples(st.sampled_from([A.ATTRIBUTE_OPERATOR_EQUALS, A.ATTRIBUTE_OPERATOR_NOT_EQUALS,
                               A.ATTRIBUTE_OPERATOR_GREATER, A.ATTRIBUTE_OPERATOR_LESS_OR_EQUAL]),
              st.sampled_from(["1.2", "1.10", "2", "1.2.0"])).map(
        lambda t: pb.Rule(app_version=pb.AppVersionCondition(operator=t[0], version=t[1]))),
    st.tuples(st.integers(0, 99), st.integers(1, 100), st.sampled_from(["", "s"])).filter(lambda t: t[0] < t[1]).map(
        lambda t: pb.Rule(random_bucket=pb.RandomBucketCondition(from_percent=t[0], to_percent=t[1], salt=t[2]))),
)


def rule_trees(helper: str | None):
    base = leaves if helper is None else st.one_of(
        leaves, st.booleans().map(lambda n: pb.Rule(segment=pb.SegmentMembershipCondition(segment_id=helper,
                                                                                          negate=n))))
    return st.recursive(base, lambda children: st.tuples(
        st.sampled_from([pb.GROUP_OPERATOR_AND, pb.GROUP_OPERATOR_OR, pb.GROUP_OPERATOR_NOT]),
        st.lists(children, min_size=1, max_size=3)).map(
        lambda t: pb.Rule(group=pb.Group(operator=t[0], rules=t[1]))), max_leaves=5)


@st.composite
def users(draw):
    out = []
    for i in range(draw(st.integers(1, 6))):
        user_id = draw(st.sampled_from(["u", "ü", "user-"])) + str(i)
        update = internal_pb.ProfileUpdate(update_id=f"upd-{i}", user_id=user_id)
        for name in draw(st.lists(st.sampled_from(ATTRIBUTES), unique=True)):
            update.attributes[name].CopyFrom(draw(attribute_values))
        events = []
        for j in range(draw(st.integers(0, 5))):
            e = common_pb2.Event(event_id=f"ev-{i}-{j}", user_id=user_id, name=draw(st.sampled_from(EVENTS)),
                                 occurred_time=to_timestamp(NOW + draw(offsets)),
                                 platform=draw(st.sampled_from([0, 1, 2, 3])),
                                 app_version=draw(st.sampled_from(["", "1.2", "1.10", "2", "1.2.0", "x"])))
            nested = draw(st.sampled_from(["none", "object", "location", "scalar"]))
            if nested == "object":
                e.properties.update({"o": {"p": draw(st.sampled_from([1.0, 100.0, "x", True]))}})
            elif nested == "location":
                e.properties.update({"o": {"latitude": draw(st.sampled_from([0.0, 0.005, 1.0, 95.0])),
                                           "longitude": draw(st.sampled_from([0.0, 0.005, 1.0, "east"]))}})
            elif nested == "scalar":
                e.properties["o"] = "x"
            for p in draw(st.lists(st.sampled_from(PROPS), unique=True)):
                value = draw(property_values)
                if isinstance(value, list):
                    e.properties.get_or_create_list(p).extend(value)
                elif value is None:
                    e.properties.fields[p].null_value = 0
                else:
                    e.properties[p] = value
            events.append(e)
        out.append((update if draw(st.booleans()) or not events else None, events))
    return out


# ---------------------------------------------------------------- the world


class AppliedEvents:
    """The past a new property filter counts (segments' PastEvents): here, every event this
    test applied, as ingestion would hand back the events segmentation had applied."""

    def __init__(self) -> None:
        self.by_app: dict[str, list[common_pb2.Event]] = {}

    async def read(self, app_id, names, since, upto, timeout):
        yield [e for e in self.by_app.get(app_id, []) if e.name in names and e.occurred_time.ToDatetime(
            timezone.utc) >= since]


@dataclass
class World:
    loop: asyncio.AbstractEventLoop
    pool: object
    clock: FixedClock
    memberships: Memberships
    segments: Segments
    past: AppliedEvents

    def run(self, coro):
        return self.loop.run_until_complete(coro)


@pytest.fixture(scope="module")
def world(database_url):
    loop = asyncio.new_event_loop()
    database = own_database(database_url, "seg")
    url = loop.run_until_complete(database.__aenter__())
    pool = loop.run_until_complete(db.create_pool(url, "segmentation", 1, 3))
    clock = FixedClock(NOW)
    config = SegmentationSettings()
    catalogs = Catalogs(pool)
    past = AppliedEvents()
    w = World(loop, pool, clock, Memberships(pool, catalogs, ContextCache(0), clock, config),
              Segments(pool, catalogs, clock, config, past=past), past)
    yield w
    loop.run_until_complete(w.memberships.close())
    loop.run_until_complete(pool.close())
    loop.run_until_complete(database.__aexit__(None, None, None))
    loop.close()


async def python_view(w: World, app_id: str, at: datetime) -> dict[str, tuple[list[str], datetime | None]]:
    """Each known user's memberships and valid_until, by the per-user evaluator."""
    catalog = await read_catalog(w.pool, app_id)
    user_ids = [r["user_id"] for r in await w.pool.fetch("SELECT user_id FROM profiles WHERE app_id = $1", app_id)]
    async with w.pool.acquire() as conn:
        rows = {r["user_id"]: r for r in await conn.fetch(
            """SELECT p.*, m.segments, m.valid_until, m.version FROM profiles p LEFT JOIN memberships m
               ON m.app_id = p.app_id AND m.user_id = p.user_id WHERE p.app_id = $1""", app_id)}
        counters = await profiles.load_counters(conn, app_id, user_ids, catalog.keys, catalog.day_floor(at.date()))
    out = {}
    for u in user_ids:
        result = catalog.evaluate(profiles.profile_of(rows[u], u, counters.get(u)), at)
        out[u] = (result.segment_ids, result.valid_until)
    return out


async def sql_members(w: World, app_id: str, segment_id: str) -> set[str]:
    return set(await w.segments.members(app_id, segment_id, "", 1000))


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(data=st.data(), people=users(), early=st.booleans(), later=st.integers(0, 12 * 86400))
def test_per_user_and_sql_evaluators_agree(world, data, people, early, later):
    w = world
    w.clock.set(NOW)
    app_id = f"hyp_{uuid.uuid4().hex[:12]}"
    helper_rule = data.draw(rule_trees(None), label="helper")
    helper = w.run(w.segments.create(app_id, "helper", "", helper_rule))
    rule = data.draw(rule_trees(helper.id), label="rule")
    assert validate(rule) == [], validate(rule)
    note(f"early={early}")

    target = w.run(w.segments.create(app_id, "target", "", rule)) if early else None
    updates = [u for u, _ in people if u is not None]
    if updates:
        w.run(w.memberships.apply_profile_updates(app_id, updates))
    applied = [e for _, events in people for e in events]
    w.run(w.memberships.apply_events(app_id, applied))
    w.past.by_app[app_id] = applied
    if target is None:
        drafted = w.run(w.segments.estimate(app_id, rule))  # unsaved filters: from past events
        target = w.run(w.segments.create(app_id, "target", "", rule))
    else:
        drafted = None

    view = w.run(python_view(w, app_id, NOW))
    expected = {u for u, (ids, _) in view.items() if target.id in ids}
    event("some users in, some out" if 0 < len(expected) < len(view) else "all or none in")
    assert w.run(sql_members(w, app_id, target.id)) == expected
    assert w.run(w.segments.estimate(app_id, rule)) == (len(expected), len(view))
    if drafted is not None:
        assert drafted == (len(expected), len(view))
    # What is stored (recorded on each change, recomputed in SQL when a rule is saved) is
    # what the evaluator says, and holds until valid_until.
    seq = {helper.id: helper.seq, target.id: target.seq}

    def check_stored():
        stored = {r["user_id"]: (sorted(r["segments"]), r["valid_until"]) for r in w.run(
            w.pool.fetch("SELECT user_id, segments, valid_until FROM memberships WHERE app_id = $1", app_id))}
        for u, (ids, valid_until) in view.items():
            assert stored[u][0] == sorted(seq[s] for s in ids), u
            if stored[u][1] is not None and valid_until is not None:
                assert stored[u][1] <= valid_until, u  # never later than the truth
            elif valid_until is not None:
                raise AssertionError(f"{u}: stored says no change by time, evaluator says {valid_until}")

    check_stored()
    # Recomputed in one pass for both segments (as after a bulk load): the same.
    w.run(w.pool.execute("UPDATE memberships SET segments = '{}', valid_until = NULL WHERE app_id = $1", app_id))
    w.run(w.segments.rebuild(app_id))
    check_stored()

    # Time passes: both evaluators again, at a random later instant and just before each
    # user's valid_until (nothing may change before it).
    for at in {NOW + timedelta(seconds=later), *(v - TICK for _, v in view.values() if v is not None)}:
        w.clock.set(at)
        later_view = w.run(python_view(w, app_id, at))
        expected = {u for u, (ids, _) in later_view.items() if target.id in ids}
        assert w.run(sql_members(w, app_id, target.id)) == expected, at
        for u, (ids, valid_until) in view.items():
            if valid_until is not None and at < valid_until:
                assert later_view[u][0] == ids, (u, at)
            elif valid_until is None:
                assert later_view[u][0] == ids, (u, at)
