"""Changes to users and their memberships: applying events and profile updates, re-evaluating
users whose memberships change by the passage of time, answering a user's context, erasing.

Every change to a user runs in one transaction: take the app's lock (shared) and the user's
row, apply the change, load what the app's rules read, evaluate every segment, diff against
the stored memberships, store the new ones and queue the announcement (outbox). So an entry is
announced exactly once per actual entry, and the context of the very next call is correct.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime

import asyncpg
import structlog

from nudge.common.v1 import common_pb2
from nudge.segmentation.v1 import segmentation_internal_service_pb2 as internal_pb
from nudgelib import db
from nudgelib.clock import Clock
from nudgelib.coalesce import Coalescer
from nudgelib.eventlog import positions
from nudgelib.loops import AT_ONCE, Backoff, Loop
from services.segmentation import aggregates, announcements
from services.segmentation.caches import Catalogs, ContextCache, read_catalog
from services.segmentation.catalog import Catalog
from services.segmentation.contexts import context_from_row, context_proto
from services.segmentation.model import Profile
from services.segmentation.settings import SegmentationSettings
from services.segmentation.store import definitions, memberships, profiles

log = structlog.get_logger(__name__)
_RETRIES = 3


def _context_moved(row: asyncpg.Record, profile: Profile, valid_until: datetime | None, now: datetime) -> bool:
    """Whether a change that entered and exited no segment still alters what decision may
    have cached of the user: profile fields it decides or renders with (`context_changed`,
    set by the events' upsert), or a validity that now ends sooner. A validity that ends
    later needs no word: decision's copy expires early and is asked for again. The stored
    record is the reference only while it is valid: past it, decision may hold a context
    evaluated since, so the change is announced. A user created by the change is not: decision
    holds at most a context of them as unknown, which `_record` has it drop in bulk."""
    if row.get("created", False):
        return False
    if row.get("context_changed", False):
        return True
    before = profile.stored_valid_until
    if not profile.stored or (before is not None and before <= now):
        return True
    if valid_until is None:
        return False
    return before is None or valid_until < before


class Memberships:
    def __init__(self, pool: asyncpg.Pool, catalogs: Catalogs, cache: ContextCache, clock: Clock,
                 settings: SegmentationSettings, on_queued: Callable[[], None] = lambda: None) -> None:
        self.pool = pool
        self.catalogs = catalogs
        self.cache = cache
        self.clock = clock
        self.settings = settings
        self._on_queued = on_queued
        # Lookups that miss the cache while others are being read go together: one query for
        # the round (`user_id = any($2)`), not a pool checkout and round trip each; the rounds,
        # one at a time, keep a connection of their own.
        self._reads = Coalescer(self._read_users, gather_turns=8)
        self._reader = db.HeldConnection(pool)

    async def close(self) -> None:
        """Gives the readers' connection back; before the pool closes."""
        await self._reader.close()

    # ------------------------------------------------------------ writes

    async def _locked_catalog(self, conn: asyncpg.Connection, app_id: str) -> Catalog:
        version = await definitions.lock_app(conn, app_id)
        catalog = self.catalogs.peek(app_id)
        if catalog is None or catalog.version != version:
            catalog = await read_catalog(conn, app_id)
            self.catalogs.keep(catalog.app_id, catalog)
        return catalog

    async def _in_transaction(self, app_id: str, work) -> None:
        """Runs work(conn, catalog, now) -> (announced contexts, users touched) under the app's
        shared lock, retrying on deadlocks, then refreshes this replica's cache (the announced
        users' new contexts; the others are read again when asked) and wakes the outbox."""
        for attempt in range(1, _RETRIES + 1):
            try:
                async with self.pool.acquire() as conn, conn.transaction():
                    await memberships.begin_writing(conn)
                    catalog = await self._locked_catalog(conn, app_id)
                    now = self.clock.now()
                    contexts, touched = await work(conn, catalog, now)
                break
            except (asyncpg.DeadlockDetectedError, asyncpg.SerializationError):
                if attempt == _RETRIES:
                    raise
                await asyncio.sleep(0.01 * attempt)
        self.cache.drop(app_id, touched)
        if contexts:
            ticket = self.cache.ticket()
            for user_id, (ctx, valid_until, version) in contexts.items():
                self.cache.put(app_id, user_id, internal_pb.GetUserContextResponse(context=ctx).SerializeToString(),
                               valid_until, version, ticket)
            self._on_queued()

    async def apply_events(self, app_id: str, events: list[common_pb2.Event],
                           span: common_pb2.LogSpan = common_pb2.LogSpan()) -> int:
        if not events:
            return 0
        applied = 0

        async def work(conn, catalog: Catalog, now: datetime):
            nonlocal applied
            # Once per item, by its position in ingestion's log (nudgelib.eventlog.positions);
            # a batch repeating an id (no span) counts it once.
            fresh = aggregates.unique(await positions.fresh(conn, app_id, span, events))
            applied = len(fresh)
            if not fresh:
                return {}, []
            # No raw copy of the events is kept: a property filter saved later counts its
            # past from ingestion's stored events (segments.Segments._follow).
            folded = aggregates.fold_events(fresh, catalog.counters_for, now)
            rows = await profiles.upsert_activity(conn, app_id, folded.users)
            await profiles.add_counts(conn, app_id, folded.days, folded.totals)
            # Most events change nothing decision keeps (only last seen and counters move), and
            # are not announced; see `_context_moved`.
            return await self._record(conn, catalog, app_id, rows, now, announce="moved")

        await self._in_transaction(app_id, work)
        return applied

    async def apply_profile_updates(self, app_id: str, updates: list[internal_pb.ProfileUpdate],
                                    span: common_pb2.LogSpan = common_pb2.LogSpan()) -> int:
        if not updates:
            return 0
        applied = 0

        async def work(conn, catalog: Catalog, now: datetime):
            nonlocal applied
            # Ingestion stores an Identify once per update id (a retried request_id maps to the
            # same id), and its log position makes a redelivery a no-op here. Without a span, a
            # batch repeating an id applies it once.
            fresh = aggregates.unique(await positions.fresh(conn, app_id, span, updates), lambda u: u.update_id)
            applied = len(fresh)
            if not fresh:
                return {}, []
            rows = await profiles.upsert_attributes(conn, app_id, aggregates.merge_updates(fresh))
            return await self._record(conn, catalog, app_id, rows, now, announce="all")

        await self._in_transaction(app_id, work)
        return applied

    async def reevaluate_due(self, app_id: str, users: list[str]) -> int:
        """Re-evaluates users whose valid_until has passed; announces those whose memberships
        changed. Rows another replica is on are skipped."""
        changed = 0

        async def work(conn, catalog: Catalog, now: datetime):
            nonlocal changed
            rows = await profiles.lock_due_users(conn, app_id, users, due_before=now)
            contexts, touched = await self._record(conn, catalog, app_id, rows, now, announce="entries")
            changed = len(contexts)
            return contexts, touched

        await self._in_transaction(app_id, work)
        return changed

    async def _record(self, conn: asyncpg.Connection, catalog: Catalog, app_id: str, rows: list[asyncpg.Record],
                      now: datetime, announce: str) -> tuple[dict[str, tuple], list[str]]:
        """Evaluates the users of `rows` (locked, after their change), stores what changed and
        queues announcements: of every user (`all`), of entries, exits and contexts that moved
        (`moved`), or of entries and exits only (`entries`). Returns the new contexts of the
        users announced, and every user's id."""
        if not rows:
            return {}, []
        users = [r["user_id"] for r in rows]
        counters = await profiles.load_counters(conn, app_id, users, catalog.keys, catalog.day_floor(now.date()))
        saves: list[tuple[str, frozenset[int], datetime | None]] = []
        contexts: dict[str, tuple] = {}
        queued = []
        created: list[str] = []
        for row in rows:
            profile = profiles.profile_of(row, row["user_id"], counters.get(row["user_id"]))
            result = catalog.evaluate(profile, now)
            before = frozenset(s for s in profile.stored_segments if s in catalog.by_seq)
            entered = catalog.ids_of(result.seqs - before)
            exited = catalog.ids_of(before - result.seqs)
            if (not profile.stored or result.seqs != profile.stored_segments
                    or result.valid_until != profile.stored_valid_until):
                saves.append((profile.user_id, result.seqs, result.valid_until))
            if (announce == "all" or entered or exited
                    or (announce == "moved" and _context_moved(row, profile, result.valid_until, now))):
                ctx = context_proto(profile, result.segment_ids, result.valid_until)
                contexts[profile.user_id] = (ctx, result.valid_until, catalog.version)
                queued.append(announcements.change_row(app_id, profile.user_id, memberships.new_change_id(), entered,
                                                       exited, ctx))
            elif row.get("created", False):
                created.append(profile.user_id)
        if created:
            queued.append(announcements.created_row(app_id, created))
        await memberships.save_memberships(conn, app_id, saves)
        await memberships.queue(conn, queued)
        await memberships.notify_users(conn, app_id, sorted(users), self.cache.origin)
        return contexts, users

    async def sweep_once(self) -> int:
        """Re-evaluates one batch of users whose memberships may have changed by time."""
        due = await memberships.due_users(self.pool, self.clock.now(), self.settings.sweep_batch)
        by_app: dict[str, list[str]] = defaultdict(list)
        for r in due:
            by_app[r["app_id"]].append(r["user_id"])
        for app_id, users in by_app.items():
            await self.reevaluate_due(app_id, users)
        return len(due)

    async def run_sweeper(self) -> None:
        async def step() -> float | None:
            # A full batch: more users are due.
            return AT_ONCE if await self.sweep_once() >= self.settings.sweep_batch else None

        # The database away: try again next round.
        interval = self.settings.sweep_interval_seconds
        await Loop("sweeper", step, poll=interval, backoff=Backoff.steady(interval)).run()

    async def erase_user(self, app_id: str, user_id: str) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await definitions.lock_app(conn, app_id)
            await profiles.lock_user(conn, app_id, user_id)
            await profiles.erase_user(conn, app_id, user_id)
            await memberships.notify_users(conn, app_id, [user_id], self.cache.origin)
        self.cache.drop(app_id, [user_id])

    # ------------------------------------------------------------ reads

    async def _read_users(self, app_id: str, users: list[str]) -> list:
        catalog = self.catalogs.peek(app_id)
        now = self.clock.now()
        keys, floor = (catalog.keys, catalog.day_floor(now.date())) if catalog else ([], now.date())
        version, found = await profiles.read_users(self._reader, app_id, list(dict.fromkeys(users)), keys, floor, now)
        return [(version, *found[u]) for u in users]

    async def user_context(self, app_id: str, user_id: str) -> internal_pb.GetUserContextResponse:
        return internal_pb.GetUserContextResponse.FromString(await self.serialized_user_context(app_id, user_id))

    async def serialized_user_context(self, app_id: str, user_id: str) -> bytes:
        """The user's profile and memberships now, as a serialized GetUserContextResponse.
        Served from the stored memberships while they are valid (one primary-key read),
        evaluated when time may have changed them (the sweeper records and announces such a
        change); never written here. Serialized because that is how the cache keeps contexts
        (a tenth of the memory of a message object) and how the internal RPC sends them."""
        now = self.clock.now()
        catalog = await self.catalogs.get(app_id)
        cached = self.cache.get(app_id, user_id, now, catalog.version)
        if cached is not None:
            return cached
        ticket = self.cache.ticket()
        read_version, row, read_counters = await self._reads.submit(app_id, user_id)
        fresh_catalog = read_version == catalog.version
        if not fresh_catalog:
            catalog = await read_catalog(self.pool, app_id)
            self.catalogs.keep(catalog.app_id, catalog)
        if row["user_id"] is not None and row["segments"] is not None and (
                row["valid_until"] is None or now < row["valid_until"]):
            valid_until = row["valid_until"]
            context = context_from_row(row, catalog.ids_of(row["segments"]), valid_until)
        else:
            # Unknown, or time may have changed a membership: evaluate (the sweeper records and
            # announces such a change). The read brought the counters, unless the rules changed.
            if row["user_id"] is None:
                profile = Profile(user_id=user_id)
            else:
                if not fresh_catalog or read_counters is None:
                    # Read with another rules version's counters: again, with this one's.
                    row, counters = await profiles.read_user_with_counters(
                        self.pool, app_id, user_id, catalog.keys, catalog.day_floor(now.date()))
                else:
                    counters = read_counters
                profile = profiles.profile_of(row, user_id, counters)
            result = catalog.evaluate(profile, now)
            valid_until = result.valid_until
            context = context_proto(profile, result.segment_ids, valid_until)
        serialized = internal_pb.GetUserContextResponse(context=context).SerializeToString()
        self.cache.put(app_id, user_id, serialized, valid_until, catalog.version, ticket)
        return serialized

