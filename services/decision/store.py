"""SQL for decision's own schema: campaigns and their versions, app settings, deliveries."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

import asyncpg

from nudge.common.v1 import common_pb2
from nudge.decision.v1 import decision_service_pb2 as pb
from nudgelib import replay
from nudgelib.errors import AlreadyExists
from nudgelib.eventlog import positions
from nudgelib.protoconv import set_timestamp
from services.decision.model import Cancel, Delivered, NewPending, Reaction, Reservation, StoredSend, UserState
from services.decision.variants import live_arms

T = TypeVar("T")

CAMPAIGNS_CHANNEL = "nudge_campaigns"
# A user's deliveries shrank (reservations given back): every replica forgets its cached state.
STATES_CHANNEL = "nudge_user_states"
# An erased user, as state_key(app_id, user_id): every replica drops what it caches of them.
ERASED_USERS_CHANNEL = "nudge_erased_users"
# Responses of mutating RPCs by request_id (nudgelib.replay), with the user of a call about one.
REQUEST_RESPONSES = "request_responses"
# Keeps an RPC's response in the transaction of its change (nudgelib.replay, request ids).
KeepCampaign = Callable[[asyncpg.Connection, pb.Campaign], Awaitable[None]]


def _campaign(row: asyncpg.Record) -> pb.Campaign:
    campaign = pb.Campaign.FromString(row["definition"])
    set_timestamp(campaign.create_time, row["created_at"])
    set_timestamp(campaign.update_time, row["updated_at"])
    return campaign


KEY_INDEX = "campaigns_key_idx"  # migration 0008


def _key_taken(key: str) -> AlreadyExists:
    return AlreadyExists(f"campaign.key: {key!r} is the key of another campaign of this app that is not archived")


async def create_campaign(pool: asyncpg.Pool, app_id: str, campaign: pb.Campaign,
                          keep: KeepCampaign | None = None, at: datetime | None = None) -> pb.Campaign:
    """Stores a new campaign; `at` (now) is when it became active, if it is created ACTIVE."""
    campaign.id = f"cmp_{uuid.uuid4().hex}"
    campaign.version = 1
    campaign.ClearField("create_time")
    campaign.ClearField("update_time")
    blob = campaign.SerializeToString()
    async with pool.acquire() as conn, conn.transaction():
        try:
            row = await conn.fetchrow(
                "INSERT INTO campaigns (app_id, id, version, name, status, definition, active_since, key)"
                " VALUES ($1, $2, 1, $3, $4, $5, CASE WHEN $4::smallint = $7::smallint THEN $6::timestamptz END, $8)"
                " RETURNING *",
                app_id, campaign.id, campaign.name, campaign.status, blob, at, pb.CAMPAIGN_STATUS_ACTIVE, campaign.key)
        except asyncpg.UniqueViolationError as exc:
            if exc.constraint_name != KEY_INDEX:
                raise
            raise _key_taken(campaign.key) from None
        await conn.execute(
            "INSERT INTO campaign_versions (app_id, id, version, definition) VALUES ($1, $2, 1, $3)",
            app_id, campaign.id, blob)
        await conn.execute("SELECT pg_notify($1, $2)", CAMPAIGNS_CHANNEL, app_id)
        saved = _campaign(row)
        if keep is not None:
            await keep(conn, saved)
    return saved


async def save_version(pool: asyncpg.Pool, app_id: str, campaign: pb.Campaign,
                       expected_version: int, keep: KeepCampaign | None = None,
                       at: datetime | None = None) -> pb.Campaign | None:
    """Stores `campaign` as the next version. None when it does not exist or (with
    expected_version) was changed meanwhile. A campaign that becomes ACTIVE now records `at`."""
    async with pool.acquire() as conn, conn.transaction():
        current = await conn.fetchval(
            "SELECT version FROM campaigns WHERE app_id = $1 AND id = $2 FOR UPDATE", app_id, campaign.id)
        if current is None or (expected_version and current != expected_version):
            return None
        campaign.version = current + 1
        campaign.ClearField("create_time")
        campaign.ClearField("update_time")
        blob = campaign.SerializeToString()
        try:
            row = await conn.fetchrow(
                "UPDATE campaigns SET version = $3, name = $4, status = $5, definition = $6, updated_at = now(),"
                " active_since = CASE WHEN $5::smallint <> $8::smallint THEN NULL"
                " WHEN status = $8::smallint THEN active_since ELSE $7::timestamptz END, key = $9"
                " WHERE app_id = $1 AND id = $2 RETURNING *",
                app_id, campaign.id, campaign.version, campaign.name, campaign.status, blob, at,
                pb.CAMPAIGN_STATUS_ACTIVE, campaign.key)
        except asyncpg.UniqueViolationError as exc:
            if exc.constraint_name != KEY_INDEX:
                raise
            raise _key_taken(campaign.key) from None
        await conn.execute(
            "INSERT INTO campaign_versions (app_id, id, version, definition) VALUES ($1, $2, $3, $4)",
            app_id, campaign.id, campaign.version, blob)
        await conn.execute("SELECT pg_notify($1, $2)", CAMPAIGNS_CHANNEL, app_id)
        saved = _campaign(row)
        if keep is not None:
            await keep(conn, saved)
    return saved


async def get_campaign(pool: asyncpg.Pool, app_id: str, campaign_id: str, version: int = 0) -> pb.Campaign | None:
    if version:
        row = await pool.fetchrow(
            """SELECT v.definition, c.created_at, v.created_at AS updated_at
               FROM campaign_versions v JOIN campaigns c USING (app_id, id)
               WHERE v.app_id = $1 AND v.id = $2 AND v.version = $3""",
            app_id, campaign_id, version)
    else:
        row = await pool.fetchrow("SELECT * FROM campaigns WHERE app_id = $1 AND id = $2", app_id, campaign_id)
    return _campaign(row) if row else None


async def campaign_id_by_key(pool: asyncpg.Pool, app_id: str, key: str) -> str | None:
    """The id of the app's non-archived campaign with this key (at most one: the index)."""
    return await pool.fetchval("SELECT id FROM campaigns WHERE app_id = $1 AND key = $2 AND status <> $3",
                               app_id, key, pb.CAMPAIGN_STATUS_ARCHIVED)


async def list_campaigns(pool: asyncpg.Pool, app_id: str, after: str, limit: int, status: int,
                         key: str = "") -> list[pb.Campaign]:
    rows = await pool.fetch(
        "SELECT * FROM campaigns WHERE app_id = $1 AND id > $2 AND ($4 = 0 OR status = $4) AND ($5 = '' OR key = $5)"
        " ORDER BY id LIMIT $3",
        app_id, after, limit, status, key)
    return [_campaign(r) for r in rows]


async def campaign_names(pool: asyncpg.Pool, app_id: str, ids: list[str]) -> dict[str, str]:
    rows = await pool.fetch("SELECT id, name FROM campaigns WHERE app_id = $1 AND id = any($2::text[])", app_id, ids)
    return {r["id"]: r["name"] for r in rows}


async def active_campaigns(pool: asyncpg.Pool, app_id: str) -> tuple[list[pb.Campaign], dict[str, datetime]]:
    """The app's ACTIVE campaigns, and since when each has been active (where known)."""
    rows = await pool.fetch(
        "SELECT * FROM campaigns WHERE app_id = $1 AND status = $2", app_id, pb.CAMPAIGN_STATUS_ACTIVE)
    return [_campaign(r) for r in rows], {r["id"]: r["active_since"] for r in rows if r["active_since"]}


async def unarchived_campaigns(pool: asyncpg.Pool, app_id: str) -> list[pb.Campaign]:
    rows = await pool.fetch("SELECT * FROM campaigns WHERE app_id = $1 AND status <> $2 ORDER BY id",
                            app_id, pb.CAMPAIGN_STATUS_ARCHIVED)
    return [_campaign(r) for r in rows]


async def get_settings(pool: asyncpg.Pool, app_id: str) -> pb.AppSettings:
    blob = await pool.fetchval("SELECT settings FROM app_settings WHERE app_id = $1", app_id)
    return pb.AppSettings.FromString(blob) if blob else pb.AppSettings(default_time_zone="UTC")


async def put_settings(pool: asyncpg.Pool, app_id: str, settings: pb.AppSettings,
                       keep: Callable[[asyncpg.Connection], Awaitable[None]] | None = None) -> None:
    async with pool.acquire() as conn, conn.transaction():
        # updated_at from the proposed row (its default, now()): Citus allows no function but an
        # immutable one in DO UPDATE SET (docs/citus.md).
        await conn.execute(
            """INSERT INTO app_settings (app_id, settings) VALUES ($1, $2)
               ON CONFLICT (app_id) DO UPDATE SET settings = excluded.settings, updated_at = excluded.updated_at""",
            app_id, settings.SerializeToString())
        await conn.execute("SELECT pg_notify($1, $2)", CAMPAIGNS_CHANNEL, app_id)
        if keep is not None:
            await keep(conn)


async def apply_events(pool: asyncpg.Pool, app_id: str, events: list[common_pb2.Event], span: common_pb2.LogSpan,
                       react: Callable[[list[common_pb2.Event]], Reaction]) -> tuple[int, list[NewPending]]:
    """Applies events once each (by their position in ingestion's log, recorded in the same
    transaction: nudgelib.eventlog.positions) and, with them, the triggered sends they start and
    the pending sends they cancel (`react` decides both for the new events only), so a
    redelivered batch has no second effect and a crash loses nothing."""
    async with pool.acquire() as conn, conn.transaction():
        fresh = await positions.fresh(conn, app_id, span, events)
        if not fresh:
            return 0, []
        reaction = react(fresh)
        added = await _add_pending(conn, app_id, reaction.sends)
        await _cancel_pending(conn, app_id, reaction.cancels)
    return len(fresh), added


async def erase_user(pool: asyncpg.Pool, app_id: str, user_id: str) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("DELETE FROM deliveries WHERE app_id = $1 AND user_id = $2", app_id, user_id)
        await conn.execute("DELETE FROM variant_assignments WHERE app_id = $1 AND user_id = $2", app_id, user_id)
        await conn.execute("DELETE FROM pending_sends WHERE app_id = $1 AND user_id = $2", app_id, user_id)
        # Kept responses of test sends to the user: their content is rendered with the user's
        # attributes. A retry of one after the erasure runs as a new call.
        await replay.erase_user(conn, REQUEST_RESPONSES, app_id, user_id)
        await conn.execute("SELECT pg_notify($1, $2)", ERASED_USERS_CHANNEL, state_key(app_id, user_id))


# ---------------------------------------------------------------- user state and reservation


async def load_state(conn: asyncpg.Connection | asyncpg.Pool, app_id: str, user_id: str) -> UserState:
    return (await load_states(conn, app_id, [user_id]))[user_id]


async def load_states(conn: asyncpg.Connection | asyncpg.Pool, app_id: str,
                      user_ids: list[str]) -> dict[str, UserState]:
    """Several users' deliveries and sticky arms, in one query."""
    rows = await conn.fetch(
        """SELECT 'd' AS kind, user_id, campaign_id, variant_id, tags, counts_toward_app_caps, delivered_at AS at
           FROM deliveries WHERE app_id = $1 AND user_id = any($2::text[])
           UNION ALL
           SELECT 'a', user_id, campaign_id, variant_id, NULL, NULL, assigned_at
           FROM variant_assignments WHERE app_id = $1 AND user_id = any($2::text[])""",
        app_id, user_ids)
    states = {user_id: UserState() for user_id in user_ids}
    for r in rows:
        state = states[r["user_id"]]
        if r["kind"] == "d":
            state.history.append(Delivered(r["campaign_id"], tuple(r["tags"]), r["at"], r["counts_toward_app_caps"]))
        else:
            state.arms[r["campaign_id"]] = r["variant_id"]
    for state in states.values():
        state.history.sort(key=lambda d: d.at)
    return states


@dataclass(frozen=True)
class Reserve(Generic[T]):
    """One pull's reservation: `plan` runs on the user's state read under their lock and
    returns what to write and what the pull answers."""

    app_id: str
    user_id: str
    at: datetime
    plan: Callable[[UserState], tuple[Reservation, T]]
    # A campaign's live arms (variants.live_arms) by id, None for one it does not know: a
    # stored arm is replaced only when it is not among them.
    live: Callable[[str], Collection[str] | None] = lambda _campaign_id: None


# Each user's advisory lock, all in one statement, in the order of the array (a function scan
# over unnest returns its rows in array order, and the locks are taken row by row).
_LOCK_USERS = "SELECT pg_advisory_xact_lock(hashtextextended(k, 0)) FROM unnest($1::text[]) AS k"

# Sticky arms, (app, user, campaign, variant, at), in one statement: a user without an arm for
# the campaign gets this one; a user whose stored arm is gone (not among the campaign's live
# arms, $6-$8 as (app, campaign, arm) rows) has it replaced; a live stored arm stays. Every
# proposed row comes back with the arm stored once the statement is done: a replica that lost
# a race (another committed an arm first; ON CONFLICT waits for it and reads its row) learns
# the winner's and uses it from then on. That read is why a conflict always updates, to the
# same value when the stored arm stays: the dead row it leaves happens only for a gone arm or
# a race, since plans propose arms only for users without a live one. A campaign with no
# live rows given is unknown here and keeps its stored arm. Keys must be unique in the batch
# (`_unique_arms`): one statement cannot update a row twice.
_ARMS = """
    INSERT INTO variant_assignments AS t (app_id, user_id, campaign_id, variant_id, assigned_at)
    SELECT a, u, c, v, at FROM unnest({a}::text[], {u}::text[], {c}::text[], {v}::text[], {at}::timestamptz[])
        AS y(a, u, c, v, at)
    ON CONFLICT (app_id, user_id, campaign_id) DO UPDATE SET (variant_id, assigned_at) = (
        SELECT CASE WHEN gone THEN excluded.variant_id ELSE t.variant_id END,
               CASE WHEN gone THEN excluded.assigned_at ELSE t.assigned_at END
        FROM (SELECT count(*) > 0 AND NOT bool_or(l.v = t.variant_id) AS gone
              FROM unnest({la}::text[], {lc}::text[], {lv}::text[]) AS l(a, c, v)
              WHERE l.a = t.app_id AND l.c = t.campaign_id) AS g)
    RETURNING app_id, user_id, campaign_id, variant_id"""

_RESERVE = """
    WITH d AS (
        INSERT INTO deliveries (app_id, user_id, message_id, campaign_id, variant_id, tags,
                                counts_toward_app_caps, delivered_at)
        SELECT a, u, m, c, v, string_to_array(t, E'\\x1f'), k, at
        FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bool[],
                    $8::timestamptz[]) AS x(a, u, m, c, v, t, k, at)
        -- A pending message offered twice at once (two streams) counts once.
        ON CONFLICT DO NOTHING
        RETURNING 1)""" + _ARMS.format(a="$9", u="$10", c="$11", v="$12", at="$13", la="$14", lc="$15", lv="$16")


def _unique_arms(arms: list[tuple]) -> list[tuple]:
    """The first proposal per (app, user, campaign) (a plan may propose one twice: two pending
    messages of a campaign the user has no arm for), in key order, so that two statements
    waiting for each other's rows take them in one order."""
    first: dict[tuple, tuple] = {}
    for arm in arms:
        first.setdefault(arm[:3], arm)
    return [first[key] for key in sorted(first)]


def _live_columns(live: dict[tuple[str, str], Collection[str]]) -> list[list[str]]:
    """(app, campaign) -> its live arms, as the (app, campaign, arm) columns of _ARMS."""
    return _columns([(app_id, campaign_id, arm) for (app_id, campaign_id), arms in live.items() for arm in arms], 3)


async def reserve_many(pool: asyncpg.Pool, requests: list[Reserve[T]]) -> list[tuple[T, UserState] | Exception]:
    """Runs each request's plan on its user's state read under that user's lock and writes
    every reservation, all in one transaction, so that replicas serving the same users at
    once never exceed a cap. One result per request, in order: the plan's result and the
    user's state with the batch's reservations in it, or the exception its plan raised (that
    request writes nothing; the others go on). A request for a user already planned in this
    batch plans on the state with the earlier one's reservation in it, as if the two had come
    one after the other.

    Deadlock: every transaction that takes more than one of these locks takes them in one
    statement in one global order (the keys sorted here), and holds none of them before;
    a single-user reservation takes one and waits for nothing else while holding it. Two
    transactions each waiting for a lock the other holds would need one of them to wait for
    a key that sorts before a key it holds, which the order rules out. (The locks are on a
    64-bit hash of the key, and the order is the keys': two batches could cross it only if
    each wanted a key whose hash collides with one the other holds; PostgreSQL's deadlock
    detector then ends one, and reservations.py tries its pulls one per transaction.) The
    rows written are the locked users' own (every key of deliveries and variant_assignments
    starts with app and user), so inside the locks no other writer of them is waited for
    but a release or an erasure deleting that user's deliveries, or the releaser recording
    a control arm (`assign_arms`), none of which takes a lock. An arm that replaced a gone
    one is in the state returned; so is the arm another writer committed first."""
    users = list(dict.fromkeys((r.app_id, r.user_id) for r in requests))
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(_LOCK_USERS, sorted(state_key(a, u) for a, u in users))
        apps: dict[str, list[str]] = {}
        for app_id, user_id in users:
            apps.setdefault(app_id, []).append(user_id)
        states: dict[tuple[str, str], UserState] = {}
        # One query per app of the batch: one, nearly always.
        for app_id, user_ids in apps.items():
            for user_id, state in (await load_states(conn, app_id, user_ids)).items():
                states[(app_id, user_id)] = state
        out: list[tuple[T, UserState] | Exception] = []
        rows: list[tuple] = []
        arms: list[tuple] = []
        live: dict[tuple[str, str], Collection[str]] = {}
        for r in requests:
            state = states[(r.app_id, r.user_id)]
            try:
                reservation, result = r.plan(state)
            except Exception as exc:  # noqa: BLE001 - one request's bug must not fail the batch
                out.append(exc)
                continue
            for message_id, campaign_id, variant_id, tags, counts in reservation.deliveries:
                rows.append((r.app_id, r.user_id, message_id, campaign_id, variant_id, "\x1f".join(tags), counts,
                             r.at))
                state.history.append(Delivered(campaign_id, tags, r.at, counts))
            for campaign_id, variant_id in reservation.arms:
                arms.append((r.app_id, r.user_id, campaign_id, variant_id, r.at))
                if (r.app_id, campaign_id) not in live:
                    live[(r.app_id, campaign_id)] = r.live(campaign_id) or ()
                # Proposed only where the user has no live arm: the arm to plan the user's
                # next request of this batch with (the statement below says what was stored).
                if state.arms.get(campaign_id) not in live[(r.app_id, campaign_id)]:
                    state.arms[campaign_id] = variant_id
            out.append((result, state))
        if rows or arms:
            arms = _unique_arms(arms)
            stored = await conn.fetch(_RESERVE, *_columns(rows, 8), *_columns(arms, 5), *_live_columns(live))
            for row in stored:
                states[(row["app_id"], row["user_id"])].arms[row["campaign_id"]] = row["variant_id"]
    return out


def _columns(rows: list[tuple], width: int) -> list[list]:
    """Rows as one list per column, for unnest."""
    return [[row[i] for row in rows] for i in range(width)]


async def assign_arms(conn: asyncpg.Connection, arms: list[tuple[str, str, str, str]], at: datetime) -> None:
    """Records (app, user, campaign, variant) arms where the user has none for that campaign,
    or one the campaign no longer has (sticky: a live arm stays), in one statement. What is
    live is read from the campaigns' stored definitions, all in one query: the releaser holds
    no user lock, and the definitions are what any replica's catalog converges to."""
    if not arms:
        return
    arms = _unique_arms([(*arm, at) for arm in arms])
    keys = list(dict.fromkeys((a[0], a[2]) for a in arms))
    rows = await conn.fetch(
        """SELECT c.app_id, c.id, c.definition FROM campaigns c
           JOIN unnest($1::text[], $2::text[]) AS k(a, id) ON c.app_id = k.a AND c.id = k.id""",
        [k[0] for k in keys], [k[1] for k in keys])
    live = {(r["app_id"], r["id"]): live_arms(pb.Campaign.FromString(r["definition"])) for r in rows}
    await conn.execute(_ARMS.format(a="$1", u="$2", c="$3", v="$4", at="$5", la="$6", lc="$7", lv="$8"),
                       *_columns(arms, 5), *_live_columns(live))


async def release_reservations(pool: asyncpg.Pool, app_id: str, user_id: str, message_ids: list[str]) -> int:
    """Gives back the deliveries reserved for messages never handed out, in one statement, and
    tells every replica to forget the user's cached state: a cached state that still had them
    would call the user capped, which the locked re-plan never gets the chance to correct."""
    async with pool.acquire() as conn, conn.transaction():
        result = await conn.execute(
            "DELETE FROM deliveries WHERE app_id = $1 AND user_id = $2 AND message_id = any($3::text[])",
            app_id, user_id, message_ids)
        released = int(result.split()[-1])
        if released:
            await conn.execute("SELECT pg_notify($1, $2)", STATES_CHANNEL, state_key(app_id, user_id))
    return released


def state_key(app_id: str, user_id: str) -> str:
    """One user of one app as text: the key of their advisory lock, and the payload of the
    notifications that make replicas forget what they cache of them."""
    return f"{app_id}\x1f{user_id}"


def parse_state_key(payload: str) -> tuple[str, str]:
    app_id, _, user_id = payload.partition("\x1f")
    return app_id, user_id


async def campaign_definitions(pool: asyncpg.Pool, app_id: str, campaign_ids: list[str]) -> dict[str, pb.Campaign]:
    """The latest definitions of several campaigns, any status, in one query."""
    rows = await pool.fetch("SELECT * FROM campaigns WHERE app_id = $1 AND id = any($2::text[])",
                            app_id, campaign_ids)
    return {r["id"]: _campaign(r) for r in rows}


# ---------------------------------------------------------------- pending triggered sends


async def _add_pending(conn: asyncpg.Connection, app_id: str, sends: list[NewPending]) -> list[NewPending]:
    """Stores triggered sends, once per (campaign, user, cause); returns those that are new."""
    if not sends:
        return []
    rows = await conn.fetch(
        """INSERT INTO pending_sends (app_id, id, user_id, campaign_id, trigger_index, cause, triggered_at,
                                      due_at, expire_at, event_properties)
           SELECT $1, * FROM unnest($2::text[], $3::text[], $4::text[], $5::int[], $6::text[],
                                    $7::timestamptz[], $8::timestamptz[], $9::timestamptz[], $10::jsonb[])
           ON CONFLICT DO NOTHING RETURNING id""",
        app_id, [s.id for s in sends], [s.user_id for s in sends], [s.campaign_id for s in sends],
        [s.trigger_index for s in sends], [s.cause for s in sends], [s.triggered_at for s in sends],
        [s.due_at for s in sends], [s.expire_at for s in sends], [s.event_properties for s in sends])
    added = {r["id"] for r in rows}
    return [s for s in sends if s.id in added]


async def add_pending(pool: asyncpg.Pool, app_id: str, sends: list[NewPending]) -> list[NewPending]:
    if not sends:
        return []  # most announcements start nothing: no connection taken
    async with pool.acquire() as conn:
        return await _add_pending(conn, app_id, sends)


async def _cancel_pending(conn: asyncpg.Connection, app_id: str, cancels: list[Cancel]) -> int:
    """Cancels each trigger's pending sends for the user triggered at or before its exception event."""
    if not cancels:
        return 0
    result = await conn.execute(
        """UPDATE pending_sends p SET status = 'cancelled', outcome = 'EXCEPTION_EVENT', updated_at = now(),
               cancelled_by_event_id = x.e, cancelled_by_event_name = x.n
           FROM unnest($2::text[], $3::text[], $4::int[], $5::timestamptz[], $6::text[], $7::text[])
               AS x(u, c, t, at, e, n)
           WHERE p.app_id = $1 AND p.status = 'pending' AND p.user_id = x.u AND p.campaign_id = x.c
             AND p.trigger_index = x.t AND p.triggered_at <= x.at""",
        app_id, [c.user_id for c in cancels], [c.campaign_id for c in cancels],
        [c.trigger_index for c in cancels], [c.at for c in cancels],
        [c.event_id for c in cancels], [c.event_name for c in cancels])
    return int(result.split()[-1])


async def pending_for_user(pool: asyncpg.Pool, app_id: str, user_id: str) -> list[asyncpg.Record]:
    return await pool.fetch(
        "SELECT * FROM pending_sends WHERE app_id = $1 AND user_id = $2 ORDER BY triggered_at", app_id, user_id)


def _stored(r: asyncpg.Record) -> StoredSend:
    return StoredSend(r["id"], r["user_id"], r["campaign_id"], r["trigger_index"], r["cause"], r["triggered_at"],
                      r["due_at"], r["expire_at"], r["status"], r["outcome"], r["updated_at"],
                      r["cancelled_by_event_id"], r["cancelled_by_event_name"])


_SEND_COLUMNS = ("id, user_id, campaign_id, trigger_index, cause, triggered_at, due_at, expire_at, status, outcome,"
                 " updated_at, cancelled_by_event_id, cancelled_by_event_name")


async def sends_for_explain(pool: asyncpg.Pool, app_id: str, user_id: str, settled_since: datetime,
                            per_campaign: int) -> list[StoredSend]:
    """The user's pending sends and those settled since `settled_since`, at most
    `per_campaign` of each kind per campaign (newest trigger first): one query for every
    campaign of the Explain."""
    rows = await pool.fetch(
        f"""SELECT {_SEND_COLUMNS} FROM (
                SELECT *, row_number() OVER (PARTITION BY campaign_id, status = 'pending'
                                             ORDER BY triggered_at DESC, id DESC) AS n
                FROM pending_sends
                WHERE app_id = $1 AND user_id = $2 AND (status = 'pending' OR updated_at >= $3)) x
            WHERE n <= $4 ORDER BY triggered_at DESC, id DESC""",
        app_id, user_id, settled_since, per_campaign)
    return [_stored(r) for r in rows]


async def sends_page(pool: asyncpg.Pool, app_id: str, user_id: str, settled_since: datetime,
                     after: tuple[datetime, str] | None, limit: int) -> list[StoredSend]:
    """One page of the user's pending and recently settled sends, newest trigger first,
    after the (triggered_at, id) of the previous page's last."""
    rows = await pool.fetch(
        f"""SELECT {_SEND_COLUMNS} FROM pending_sends
            WHERE app_id = $1 AND user_id = $2 AND (status = 'pending' OR updated_at >= $3)
              AND ($4::timestamptz IS NULL OR (triggered_at, id) < ($4, $5))
            ORDER BY triggered_at DESC, id DESC LIMIT $6""",
        app_id, user_id, settled_since, after[0] if after else None, after[1] if after else "", limit)
    return [_stored(r) for r in rows]


async def next_due(pool: asyncpg.Pool) -> datetime | None:
    return await pool.fetchval("SELECT min(due_at) FROM pending_sends WHERE status = 'pending'")
