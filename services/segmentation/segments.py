"""Segment definitions and whole-population questions about them.

A change of an app's rules runs under the app's exclusive lock, in one transaction: the new
version is saved, counters for new property filters are filled from ingestion's stored events
(`past_events`; those no segment uses any more are dropped), the stored memberships of the
changed segment and of every segment that refers to it are recomputed in SQL (silently: a
new rule is not an entry of its users; decision is told with segments_changed), and the
announcement is queued.

Why a new counter counts each event exactly once: every apply of the app's events takes the
app's lock shared and records, in its transaction, the last position applied per lane
(`log_positions`). Under the exclusive lock those positions are therefore exact: every event
at or below them was applied with the old rules (which did not count it under the new
counter), and every event above them will be applied after this transaction commits, with
the new rules (which count it live, the catalog version changes here). The past is read from
ingestion up to exactly those positions.

EstimateAudience and ListSegmentMembers compile the rule to SQL (sqlrules) and count or page
over the app's profiles at the current instant; a draft's property filters that no saved
segment counts yet are counted from the same stream of past events, folded in memory and
handed to the SQL as arrays.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

import asyncpg
import structlog

from nudge.segmentation.v1 import segmentation_service_pb2 as pb
from nudgelib.clock import Clock
from nudgelib.errors import Aborted, FailedPrecondition, FieldViolation, InvalidArgument, NotFound
from nudgelib.filters import Filter, compile_filters
from services.segmentation import aggregates, announcements, properties
from services.segmentation.caches import Catalogs, read_catalog
from services.segmentation.catalog import Catalog
from services.segmentation.model import SegmentDef
from services.segmentation.past_events import SOURCE, NoPastEvents, PastEvents
from services.segmentation.rule_tree import dependents, event_conditions, referenced_segments
from services.segmentation.rule_validation import reference_problems, validate
from services.segmentation.store import audiences, definitions, memberships, profiles
from services.segmentation.settings import SegmentationSettings
from services.segmentation.sqlrules import Compiler, Draft, Params

log = structlog.get_logger(__name__)


# Keeps the response of a mutating call under its request_id, in the transaction of the
# change, so a retry gets it back instead of changing anything again (nudgelib.replay).
Remember = Callable[[asyncpg.Connection, SegmentDef], Awaitable[None]]
# Event name -> the new property-filtered counters of that name: (key, filters).
Wanted = dict[str, list[tuple[str, tuple[Filter, ...]]]]


class Segments:
    def __init__(self, pool: asyncpg.Pool, catalogs: Catalogs, clock: Clock, settings: SegmentationSettings,
                 on_queued: Callable[[], None] = lambda: None, past: PastEvents = NoPastEvents()) -> None:
        self.pool = pool
        self.catalogs = catalogs
        self.clock = clock
        self.settings = settings
        self._on_queued = on_queued
        self.past = past

    # ------------------------------------------------------------ definitions

    async def create(self, app_id: str, name: str, description: str, rule: pb.Rule,
                     remember: Remember | None = None, key: str = "") -> SegmentDef:
        async def change(conn: asyncpg.Connection, old: Catalog) -> tuple[SegmentDef, dict[str, SegmentDef], str]:
            _check(reference_problems(rule, None, old.rules))
            _, seq = await definitions.bump_catalog(conn, app_id, take_seq=True)
            segment = await definitions.insert_segment(conn, app_id, seq, name, description, rule, key)
            return segment, {**old.segments, segment.id: segment}, segment.id

        return await self._change(app_id, change, remember)

    async def update(self, app_id: str, segment_id: str, name: str, description: str, rule: pb.Rule,
                     expected_version: int,
                     remember: Remember | None = None, key: str = "") -> SegmentDef:
        async def change(conn: asyncpg.Connection, old: Catalog):
            existing = old.segments.get(segment_id)
            if existing is None:
                raise NotFound(f"segment {segment_id!r} not found")
            if expected_version and existing.version != expected_version:
                raise Aborted(f"segment is at version {existing.version}, not {expected_version}")
            _check(reference_problems(rule, segment_id, old.rules))
            await definitions.bump_catalog(conn, app_id)
            segment = await definitions.update_segment(conn, app_id, segment_id, name, description, rule, key)
            same_rule = existing.rule.SerializeToString(deterministic=True) == rule.SerializeToString(deterministic=True)
            return segment, {**old.segments, segment.id: segment}, None if same_rule else segment.id

        return await self._change(app_id, change, remember)

    async def delete(self, app_id: str, segment_id: str,
                     remember: Remember | None = None) -> SegmentDef:
        async def change(conn: asyncpg.Connection, old: Catalog):
            existing = old.segments.get(segment_id)
            if existing is None:
                raise NotFound(f"segment {segment_id!r} not found")
            users = sorted(sid for sid, r in old.rules.items()
                           if sid != segment_id and segment_id in referenced_segments(r))
            if users:
                raise FailedPrecondition(f"segment is used by segments {', '.join(users)}")
            await definitions.bump_catalog(conn, app_id)
            await definitions.delete_segment(conn, app_id, existing)
            return existing, {sid: s for sid, s in old.segments.items() if sid != segment_id}, None

        return await self._change(app_id, change, remember)

    async def _change(self, app_id: str, change, remember) -> SegmentDef:
        async with self.pool.acquire() as conn, conn.transaction():
            # It queues an announcement: the log's readers wait for it (as long as the change
            # takes), so decision is told of the new rules after what was announced before.
            await memberships.begin_writing(conn)
            version = await definitions.lock_app(conn, app_id, exclusive=True)
            old = await read_catalog(conn, app_id)
            segment, segments, recompute = await change(conn, old)
            new = Catalog(app_id, version + 1, segments)
            await audiences.audience_settings(conn, self.settings.audience_work_mem_mb,
                                          self.settings.audience_timeout_seconds)
            await self._follow(conn, app_id, old, new, recompute, self.clock.now())
            await memberships.queue(conn, [announcements.segments_changed_row(app_id)])
            await definitions.notify_segments(conn, app_id)
            if remember is not None:
                await remember(conn, segment)
        self.catalogs.invalidate(app_id)
        self._on_queued()
        return segment

    async def rebuild(self, app_id: str, group_size: int = 64) -> int:
        """Recomputes every stored membership of an app from its rules, silently: for data
        loaded in bulk (COPY) or restored, which no change recorded. Segments are taken a
        group at a time (one pass over the users each). Returns rows written."""
        written = 0
        async with self.pool.acquire() as conn, conn.transaction():
            await memberships.begin_writing(conn)
            await definitions.lock_app(conn, app_id, exclusive=True)
            catalog = await read_catalog(conn, app_id)
            await audiences.audience_settings(conn, self.settings.audience_work_mem_mb,
                                          self.settings.audience_timeout_seconds * 10)
            ordered = sorted(catalog.segments, key=lambda sid: catalog.segments[sid].seq)
            for i in range(0, len(ordered), group_size):
                written += await _recompute(conn, app_id, catalog, ordered[i:i + group_size], self.clock.now())
            await memberships.queue(conn, [announcements.segments_changed_row(app_id)])
        self._on_queued()
        return written

    async def _follow(self, conn: asyncpg.Connection, app_id: str, old: Catalog, new: Catalog,
                      recompute: str | None, now: datetime) -> None:
        """Counters and stored memberships after a rules change."""
        started = time.perf_counter()
        added = sorted(new.tracked - old.tracked)
        if added:
            # Under the exclusive lock: the exact boundary with the live path (module docstring).
            upto = await audiences.applied_positions(conn, SOURCE, app_id)
            wanted: Wanted = {}
            for key in added:
                name = properties.event_name(key)
                wanted.setdefault(name, []).append((key, dict(new.filters[name])[key]))
            folded = await self._past(conn, app_id, wanted, upto, now)
            await profiles.add_counts(conn, app_id, folded.days, folded.totals)
        await audiences.drop_counters(conn, app_id, sorted(old.tracked - new.tracked))
        written = 0
        if recompute is not None:
            written = await _recompute(conn, app_id, new, dependents(new.rules, recompute), now)
        log.info("segment_rules_changed", version=new.version, counters_filled=len(added),
                 memberships_written=written, seconds=round(time.perf_counter() - started, 3))

    async def _past(self, conn: asyncpg.Connection | asyncpg.Pool, app_id: str, wanted: Wanted,
                    upto: dict[int, int], now: datetime) -> aggregates.Folded:
        """The counts of new property-filtered counters (`wanted`: event name -> its new
        counters' keys and filters) over the events of the last
        NUDGE_SEGMENTATION_EVENT_PROPERTY_DAYS days at or below `upto`, read from ingestion
        and folded here: one row per user, counter and day, whatever the number of events."""
        folded = aggregates.Folded()
        days = self.settings.event_property_days
        if not days or not await audiences.has_profiles(conn, app_id):
            return folded  # nothing to look back on
        read = 0
        async for events in self.past.read(app_id, sorted(wanted), now - timedelta(days=days), upto,
                                           self.settings.audience_timeout_seconds):
            aggregates.count_past(folded, events, wanted, now)
            read += len(events)
        log.info("past_events_counted", app_id=app_id, counters=sum(map(len, wanted.values())), events=read,
                 counted=sum(t[0] for t in folded.totals.values()))
        return folded

    # ------------------------------------------------------------ audiences

    async def _catalog(self, conn: asyncpg.Connection, app_id: str) -> Catalog:
        catalog = await self.catalogs.get(app_id)
        if await definitions.rules_version(conn, app_id) != catalog.version:
            catalog = await read_catalog(conn, app_id)
            self.catalogs.keep(catalog.app_id, catalog)
        return catalog

    async def estimate(self, app_id: str, rule: pb.Rule) -> tuple[int, int]:
        """(users matching now, users known)."""
        now = self.clock.now()
        catalog = await self.catalogs.get(app_id)
        drafts = await self._drafts(app_id, catalog, rule, now)
        async with self.pool.acquire() as conn, conn.transaction(readonly=True):
            catalog = await self._catalog(conn, app_id)
            params = Params(app_id)
            predicate = Compiler(params, now, catalog.tracked, catalog.rules, drafts=drafts).predicate(rule)
            await audiences.audience_settings(conn, self.settings.audience_work_mem_mb,
                                          self.settings.audience_timeout_seconds)
            # The population is counted on another connection meanwhile: on another core.
            matched, total = await asyncio.gather(audiences.count_matching(conn, predicate, params.values),
                                                  audiences.count_users(self.pool, app_id))
            return matched, total

    async def _drafts(self, app_id: str, catalog: Catalog, rule: pb.Rule, now: datetime) -> dict[str, Draft]:
        """The rule's property-filtered counters that no saved segment counts yet, each
        counted from the past as saving the rule would fill it (up to what this service has
        applied so far: an estimate, made without the app's lock)."""
        new: dict[str, tuple[str, tuple[Filter, ...]]] = {}
        for c in event_conditions(rule):
            compiled = compile_filters(c.property_filters)
            key = properties.counter_key(c.name, compiled)
            if compiled and key not in catalog.tracked:
                new[key] = (c.name, compiled)
        if not new:
            return {}
        wanted: Wanted = {}
        for key, (name, compiled) in sorted(new.items()):
            wanted.setdefault(name, []).append((key, compiled))
        upto = await audiences.applied_positions(self.pool, SOURCE, app_id)
        folded = await self._past(self.pool, app_id, wanted, upto, now)
        return {key: Draft.of(folded, key) for key in new}
    async def members(self, app_id: str, segment_id: str, after: str, limit: int) -> list[str]:
        """Members in user id order after `after`, at most `limit`."""
        async with self.pool.acquire() as conn, conn.transaction(readonly=True):
            catalog = await self._catalog(conn, app_id)
            segment = catalog.segments.get(segment_id)
            if segment is None:
                raise NotFound(f"segment {segment_id!r} not found")
            params = Params(app_id, after, limit)
            predicate = Compiler(params, self.clock.now(), catalog.tracked, catalog.rules).predicate(segment.rule)
            await audiences.audience_settings(conn, self.settings.audience_work_mem_mb,
                                          self.settings.audience_timeout_seconds)
            return await audiences.members_page(conn, predicate, params.values)

    async def check(self, app_id: str, rule: pb.Rule, segment_id: str | None) -> None:
        """Validation for a rule not being saved (EstimateAudience of a draft)."""
        _check(validate(rule))
        catalog = await self.catalogs.get(app_id)
        _check(reference_problems(rule, segment_id, catalog.rules))


async def _recompute(conn: asyncpg.Connection, app_id: str, catalog: Catalog, segment_ids: list[str],
                     now: datetime) -> int:
    """Stored memberships of these segments, for every user, in one pass (audiences.recompute)."""
    group = sorted((catalog.segments[sid] for sid in segment_ids), key=lambda s: s.seq)
    params = Params(app_id, [s.seq for s in group])
    compiler = Compiler(params, now, catalog.tracked, catalog.rules, alias="q")
    # Seqs are integers from our own table: safe to write into the SQL.
    hits = "array_remove(ARRAY[" + ", ".join(
        f"CASE WHEN {compiler.predicate(s.rule)} THEN {int(s.seq)} END" for s in group) + "]::integer[], NULL)"
    bounds = [b for s in group if (b := compiler.bound(s.rule)) is not None]
    bound = None if not bounds else bounds[0] if len(bounds) == 1 else f"least({', '.join(bounds)})"
    return await audiences.recompute(conn, hits, bound, params.values)


def _check(problems: list[FieldViolation]) -> None:
    if problems:
        raise InvalidArgument(problems)
