"""Where each of Nudge's tables goes on Citus, and the SQL that puts it there.

One place for the plan (docs/citus.md): every table of every schema is classified here as

- **distributed** by a column (`user_id` for whatever belongs to a user, co-located, so a
  user's rows of every service sit on one shard group and join there),
- **reference** (small, read everywhere, written by operators: copied to every node), or
- **local** (a plain table on the coordinator: the three logs themselves — ingestion's event
  store, segmentation's announcements, delivery's interaction events — with their cursors,
  holds and dead letters, each consumer's positions, migration records, and the
  triggered-send queue whose claim across users needs FOR UPDATE SKIP LOCKED).

`tests/service/test_citus_keys.py` reads the migrated schema and fails if a table is not
classified here, if a distributed table has a primary or unique key without its column, if a
reference table has a foreign key to a distributed one, or if `deploy/citus/distribute.sql`
is not what `distribute_sql()` writes. `python -m nudgetools.citus > deploy/citus/distribute.sql`
writes it again after a change here.

Imported by no service; plain data and text, no I/O.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

DISTRIBUTED, REFERENCE, LOCAL = "distributed", "reference", "local"

# The distribution column of everything a user owns.
USER = "user_id"
# The table whose colocation group every user table joins (created first).
USER_GROUP = "segmentation.profiles"


@dataclass(frozen=True)
class Placement:
    kind: str  # DISTRIBUTED, REFERENCE or LOCAL
    why: str
    column: str = ""  # the distribution column (distributed only)
    # The colocation group: USER_GROUP for user tables, "none" for a table distributed on its own.
    colocate_with: str = ""


def _user(why: str) -> Placement:
    return Placement(DISTRIBUTED, why, USER, USER_GROUP)


def _reference(why: str) -> Placement:
    return Placement(REFERENCE, why)


def _local(why: str) -> Placement:
    return Placement(LOCAL, why)


_LOG_CURSORS = "a consumer's read position per lane: tiny, written by the log's readers on the coordinator"
_LOG_HOLDS = "an app held back on one lane after a failure: tiny, the log's readers' own"
_DEAD_LETTERS = "items set aside for an operator: rare, with a serial id, read by operators"
_LOG_POSITIONS = ("the last applied position per (source, app, lane): one row per lane and app, written in each "
                  "applied batch's transaction; a reference table would make every batch a write to every node")
_MIGRATIONS = "which migrations ran: the migration runner's, on the coordinator"
# Why the logs stay whole on the coordinator (docs/citus.md, "The logs stay on the coordinator").
_LOG = ("a log (nudgelib.eventlog): its readers must never pass an item that is still being committed, which "
        "a writer's gate guarantees only when the item commits with the coordinator's own transaction; and "
        "its readers' per-lane reads (LATERAL over the cursors) run as written on a local table")
_LOG_TRACES = ("the trace context of each transaction that wrote to the log, by transaction id (tracing on "
               "only): one row per batch, read by the log's readers on the coordinator, kept a day")

# Every table of every schema, by schema-qualified name. Partitions follow their parent.
TABLES: dict[str, Placement] = {
    # accounts: identity, read by every service (keys cached in memory), written by operators.
    "accounts.apps": _reference("apps: a handful of rows, read with every key"),
    "accounts.api_keys": _reference("API keys, hashed: loaded whole by every replica"),
    "accounts.user_token_keys": _reference("public halves of user-token keys: a few per app"),
    "accounts.schema_migrations": _local(_MIGRATIONS),
    # ingestion
    "ingestion.events": _local("the event store, which is ingestion's log: " + _LOG + "; partitioned by day, "
                               "partitions dropped after the retention window"),
    "ingestion.event_keys": _local("dedupe keys, md5(app, event id), written in one statement with the events "
                                   "(a data-modifying CTE): kept with them"),
    "ingestion.log_cursors": _local(_LOG_CURSORS),
    "ingestion.log_holds": _local(_LOG_HOLDS),
    "ingestion.dead_letters": _local(_DEAD_LETTERS),
    "ingestion.log_traces": _local(_LOG_TRACES),
    "ingestion.schema_migrations": _local(_MIGRATIONS),
    # segmentation
    "segmentation.profiles": Placement(DISTRIBUTED, "profiles: the first table of the user group", USER, "none"),
    "segmentation.memberships": _user("stored memberships, joined to profiles on the user"),
    "segmentation.event_totals": _user("per-user counters"),
    "segmentation.event_days": _user("per-user counters by day"),
    "segmentation.outbox": _local("announcements to decision, written with the user's change: " + _LOG),
    "segmentation.segments": _reference("segment rules: read with every evaluation, written by operators"),
    "segmentation.segment_versions": _reference("past segment rules"),
    "segmentation.catalogs": _reference("each app's rules version: read with every user read"),
    "segmentation.segment_requests": _reference("request-id responses of segment RPCs, written with the "
                                                "segments they change"),
    "segmentation.log_cursors": _local(_LOG_CURSORS),
    "segmentation.log_holds": _local(_LOG_HOLDS),
    "segmentation.log_positions": _local(_LOG_POSITIONS),
    "segmentation.dead_letters": _local(_DEAD_LETTERS),
    "segmentation.log_traces": _local(_LOG_TRACES),
    "segmentation.schema_migrations": _local(_MIGRATIONS),
    # decision
    "decision.campaigns": _reference("campaigns: cached by every replica, written by operators"),
    "decision.campaign_versions": _reference("past campaign definitions"),
    "decision.app_settings": _reference("caps and defaults per app"),
    "decision.request_responses": _reference("request-id responses of campaign RPCs, written with the "
                                             "campaigns they change"),
    "decision.deliveries": _user("what each user was handed: the caps' history"),
    "decision.variant_assignments": _user("sticky arms per user"),
    "decision.pending_sends": _local("triggered sends waiting: the releaser claims due ones across users with "
                                     "FOR UPDATE SKIP LOCKED, which Citus runs only on one shard or a local "
                                     "table; a queue, kept whole on the coordinator"),
    "decision.log_positions": _local(_LOG_POSITIONS),
    "decision.schema_migrations": _local(_MIGRATIONS),
    # delivery
    "delivery.messages": _user("the inbox and every message handed out"),
    "delivery.interactions": _user("impressions, clicks, answers: keyed by the message's user"),
    "delivery.conversions": _user("conversions: keyed by the message's user"),
    "delivery.event_outbox": _local("interaction events to ingestion, written with the interaction: " + _LOG),
    "delivery.log_cursors": _local(_LOG_CURSORS),
    "delivery.log_holds": _local(_LOG_HOLDS),
    "delivery.dead_letters": _local(_DEAD_LETTERS),
    "delivery.log_traces": _local(_LOG_TRACES),
    "delivery.schema_migrations": _local(_MIGRATIONS),
}

# The schemas' functions (the logs' item framing), created on every worker too, so that a
# statement Citus routes there may call them; today only the logs' readers do, on the coordinator.
FUNCTIONS: tuple[str, ...] = (
    "ingestion.pb_item_header(integer)",
    "segmentation.pb_item_header(integer)",
    "delivery.pb_item_header(integer)",
)


def of_kind(kind: str) -> list[str]:
    return [name for name, p in TABLES.items() if p.kind == kind]


def creation_order(names: list[str], references: dict[str, set[str]]) -> list[str]:
    """The names with every table after those it has foreign keys to (`references`: table ->
    tables it refers to), else in the order given."""
    done: list[str] = []

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in done or name in path:
            return
        for other in sorted(references.get(name, ())):
            if other in names:
                visit(other, (*path, name))
        done.append(name)

    for name in names:
        visit(name, ())
    return done


# Foreign keys between classified tables (referring -> referred), for the order of creation;
# the schema test checks this against the catalog.
FOREIGN_KEYS: dict[str, set[str]] = {
    "accounts.api_keys": {"accounts.apps"},
    "accounts.user_token_keys": {"accounts.apps"},
    "delivery.interactions": {"delivery.messages"},
    "delivery.conversions": {"delivery.messages"},
}


def distribute_sql() -> str:
    """deploy/citus/distribute.sql: run once on the coordinator of a migrated database."""
    lines = [
        "-- Distributes a migrated Nudge database on Citus (docs/citus.md). Generated from",
        "-- libs/nudgetools/citus.py by `python -m nudgetools.citus`; tests/service/test_citus_keys.py",
        "-- checks that this file is what it writes. Run once on the coordinator, after `nudge migrate`",
        "-- against it and before the services start; each statement moves a table's rows into shards.",
        "",
        "-- asyncpg reads type information on each new connection; Citus's filter that hides shards",
        "-- from pg_class made that take seconds. The services never look at shards.",
        "DO $$ BEGIN",
        "    EXECUTE format('ALTER DATABASE %I SET citus.override_table_visibility = off', current_database());",
        "END $$;",
        "",
        "-- Functions the distributed statements call, created on every worker.",
    ]
    lines += [f"SELECT create_distributed_function('{f}');" for f in FUNCTIONS]
    lines += ["", "-- Reference tables: a copy on every node (referred tables first)."]
    lines += [f"SELECT create_reference_table('{t}');" for t in creation_order(of_kind(REFERENCE), FOREIGN_KEYS)]
    lines += ["", f"-- Distributed by {USER}, co-located with {USER_GROUP}: a user's rows of every service",
              "-- on one shard group (referred tables first)."]
    # A table is created after the one it is co-located with, and after those it refers to.
    after = {name: FOREIGN_KEYS.get(name, set()) | ({p.colocate_with} if "." in p.colocate_with else set())
             for name, p in TABLES.items()}
    for name in creation_order(of_kind(DISTRIBUTED), after):
        p = TABLES[name]
        lines.append(f"SELECT create_distributed_table('{name}', '{p.column}', colocate_with => '{p.colocate_with}');")
    lines += ["", "-- Local: plain tables of the coordinator, left as they are."]
    lines += [f"--   {name}" for name in of_kind(LOCAL)]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(distribute_sql())
