"""The migrated schema keeps the rules that let Citus distribute it by user (docs/citus.md),
read from the catalog of the real database after every migration, against the one
classification in nudgetools.citus:

- every table of every schema is classified (a new table without one fails here);
- every primary key, unique constraint and unique index of a distributed table includes its
  distribution column, which is NOT NULL;
- no reference table has a foreign key to a distributed one, no local table one to either, and
  a foreign key between distributed tables matches on the distribution column;
- no distributed or reference table has a trigger (a NOTIFY from one is refused in Citus's
  prepared transactions);
- the functions distributed statements call, the foreign keys and deploy/citus/distribute.sql
  are what the classification says.

Citus itself is not installable here; these rules are what a live Citus run refused.
"""

from __future__ import annotations

import secrets
from collections import defaultdict
from pathlib import Path

import asyncpg

from nudgelib import accounts
from nudgelib.config import SERVICES
from nudgetools import citus

REPO = Path(__file__).resolve().parents[2]
SCHEMAS = (accounts.SCHEMA, *SERVICES)


async def problems_of(conn: asyncpg.Connection, schemas: tuple[str, ...],
                      tables: dict[str, citus.Placement]) -> list[str]:
    """What the schemas break of the rules above, one line each (empty: nothing)."""
    problems: list[str] = []
    # Partitions follow their parent: a partition's keys and triggers count as the parent's.
    rels = await conn.fetch(
        """SELECT c.oid, format('%s.%s', n.nspname, c.relname) AS name,
                  coalesce((SELECT format('%s.%s', pn.nspname, p.relname)
                            FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent
                            JOIN pg_namespace pn ON pn.oid = p.relnamespace
                            WHERE i.inhrelid = c.oid), '') AS parent
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname = any($1::text[]) AND c.relkind IN ('r', 'p')""", list(schemas))
    owner = {r["oid"]: r["parent"] or r["name"] for r in rels}
    found = {r["name"] for r in rels if not r["parent"]}
    problems += [f"{name}: not classified in nudgetools.citus.TABLES" for name in sorted(found - set(tables))]
    problems += [f"{name}: classified but not in the schema" for name in sorted(set(tables) - found)
                 if name.split(".")[0] in schemas]

    def placement(oid) -> citus.Placement | None:
        return tables.get(owner.get(oid, ""))

    columns = await conn.fetch(
        """SELECT a.attrelid, a.attname, a.attnotnull FROM pg_attribute a
           WHERE a.attrelid = any($1::oid[]) AND a.attnum > 0 AND NOT a.attisdropped""", list(owner))
    by_table: dict[int, dict[str, bool]] = defaultdict(dict)
    for c in columns:
        by_table[c["attrelid"]][c["attname"]] = c["attnotnull"]
    for oid, cols in by_table.items():
        p = placement(oid)
        if p is not None and p.kind == citus.DISTRIBUTED and not cols.get(p.column):
            problems.append(f"{owner[oid]}: distribution column {p.column} missing or nullable")

    # Keys: unique indexes cover primary keys, unique constraints and unique partial indexes;
    # exclusion constraints are read from pg_constraint.
    keys = await conn.fetch(
        """SELECT i.indrelid AS rel, x.relname AS name,
                  ARRAY(SELECT a.attname FROM unnest(i.indkey) k JOIN pg_attribute a
                        ON a.attrelid = i.indrelid AND a.attnum = k) AS cols
           FROM pg_index i JOIN pg_class x ON x.oid = i.indexrelid
           WHERE i.indrelid = any($1::oid[]) AND i.indisunique
           UNION ALL
           SELECT c.conrelid, c.conname, ARRAY(SELECT a.attname FROM unnest(c.conkey) k JOIN pg_attribute a
                                             ON a.attrelid = c.conrelid AND a.attnum = k)
           FROM pg_constraint c WHERE c.conrelid = any($1::oid[]) AND c.contype = 'x'""", list(owner))
    for k in keys:
        p = placement(k["rel"])
        if p is not None and p.kind == citus.DISTRIBUTED and p.column not in k["cols"]:
            problems.append(f"{owner[k['rel']]}: key {k['name']} ({', '.join(k['cols'])}) lacks {p.column}")

    fks = await conn.fetch(
        """SELECT c.conname, c.conrelid, c.confrelid,
                  format('%s.%s', fn.nspname, f.relname) AS referred,
                  ARRAY(SELECT a.attname FROM unnest(c.conkey) WITH ORDINALITY k(n, o) JOIN pg_attribute a
                        ON a.attrelid = c.conrelid AND a.attnum = k.n ORDER BY k.o) AS cols,
                  ARRAY(SELECT a.attname FROM unnest(c.confkey) WITH ORDINALITY k(n, o) JOIN pg_attribute a
                        ON a.attrelid = c.confrelid AND a.attnum = k.n ORDER BY k.o) AS fcols
           FROM pg_constraint c JOIN pg_class f ON f.oid = c.confrelid JOIN pg_namespace fn ON fn.oid = f.relnamespace
           WHERE c.conrelid = any($1::oid[]) AND c.contype = 'f' AND c.conparentid = 0""", list(owner))
    for fk in fks:
        here, there = placement(fk["conrelid"]), tables.get(owner.get(fk["confrelid"], fk["referred"]))
        name = f"{owner[fk['conrelid']]}: foreign key {fk['conname']}"
        if here is None or there is None:
            continue  # reported as unclassified above
        if here.kind == citus.REFERENCE and there.kind == citus.DISTRIBUTED:
            problems.append(f"{name} refers to distributed {fk['referred']}")
        elif here.kind == citus.LOCAL and there.kind != citus.LOCAL:
            problems.append(f"{name}: a local table refers to {there.kind} {fk['referred']}")
        elif here.kind == citus.DISTRIBUTED and there.kind == citus.DISTRIBUTED:
            pairs = list(zip(fk["cols"], fk["fcols"]))
            if (here.column, there.column) not in pairs or here.colocate_with != there.colocate_with:
                problems.append(f"{name} does not match {fk['referred']} on the distribution column")
        elif here.kind == citus.DISTRIBUTED and there.kind == citus.LOCAL:
            problems.append(f"{name}: a distributed table refers to local {fk['referred']}")

    triggers = await conn.fetch(
        "SELECT tgrelid, tgname FROM pg_trigger WHERE tgrelid = any($1::oid[]) AND NOT tgisinternal", list(owner))
    for t in triggers:
        p = placement(t["tgrelid"])
        if p is not None and p.kind != citus.LOCAL:
            problems.append(f"{owner[t['tgrelid']]}: trigger {t['tgname']} on a {p.kind} table")
    return problems


async def test_the_migrated_schema_keeps_the_citus_rules(database_url):
    conn = await asyncpg.connect(database_url)
    try:
        assert await problems_of(conn, SCHEMAS, citus.TABLES) == []
        fks = await conn.fetch(
            """SELECT format('%s.%s', n.nspname, r.relname) AS here, format('%s.%s', fn.nspname, f.relname) AS there
               FROM pg_constraint c JOIN pg_class r ON r.oid = c.conrelid JOIN pg_namespace n ON n.oid = r.relnamespace
               JOIN pg_class f ON f.oid = c.confrelid JOIN pg_namespace fn ON fn.oid = f.relnamespace
               WHERE c.contype = 'f' AND c.conparentid = 0 AND n.nspname = any($1::text[])""", list(SCHEMAS))
        declared: dict[str, set[str]] = defaultdict(set)
        for r in fks:
            declared[r["here"]].add(r["there"])
        assert dict(declared) == citus.FOREIGN_KEYS
        functions = await conn.fetch(
            """SELECT format('%s.%s(%s)', n.nspname, p.proname,
                          (SELECT string_agg(format_type(t, NULL), ', ' ORDER BY o)
                           FROM unnest(p.proargtypes) WITH ORDINALITY a(t, o))) AS f
               FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = any($1::text[])""",
            list(SCHEMAS))
        assert sorted(r["f"] for r in functions) == sorted(citus.FUNCTIONS)
    finally:
        await conn.close()


async def test_a_schema_that_breaks_the_rules_is_reported(database_url):
    """The check above can fail: a scratch schema with a key without the user, an unclassified
    table, a reference table referring to a distributed one, a notifying trigger."""
    schema = f"citus_probe_{secrets.token_hex(4)}"
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(f"""
            CREATE SCHEMA {schema};
            CREATE TABLE {schema}.messages (app_id text NOT NULL, user_id text NOT NULL, message_id text NOT NULL,
                                            PRIMARY KEY (app_id, message_id));
            CREATE UNIQUE INDEX messages_by_id ON {schema}.messages (message_id) WHERE app_id <> '';
            CREATE TABLE {schema}.settings (app_id text, message_id text,
                FOREIGN KEY (app_id, message_id) REFERENCES {schema}.messages (app_id, message_id));
            CREATE TABLE {schema}.stray (id text PRIMARY KEY);
            CREATE FUNCTION {schema}.tell() RETURNS trigger LANGUAGE plpgsql AS
                $$ BEGIN PERFORM pg_notify('x', ''); RETURN NULL; END $$;
            CREATE TRIGGER told AFTER INSERT ON {schema}.settings FOR EACH STATEMENT EXECUTE FUNCTION {schema}.tell();
        """)
        tables = {f"{schema}.messages": citus.Placement(citus.DISTRIBUTED, "probe", "user_id", citus.USER_GROUP),
                  f"{schema}.settings": citus.Placement(citus.REFERENCE, "probe")}
        assert sorted(await problems_of(conn, (schema,), tables)) == sorted([
            f"{schema}.messages: key messages_pkey (app_id, message_id) lacks user_id",
            f"{schema}.messages: key messages_by_id (message_id) lacks user_id",
            f"{schema}.settings: foreign key settings_app_id_message_id_fkey refers to distributed {schema}.messages",
            f"{schema}.settings: trigger told on a reference table",
            f"{schema}.stray: not classified in nudgetools.citus.TABLES",
        ])
    finally:
        await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        await conn.close()


def test_distribute_sql_is_what_the_classification_writes():
    committed = (REPO / "deploy" / "citus" / "distribute.sql").read_text()
    assert committed == citus.distribute_sql(), "run: python -m nudgetools.citus > deploy/citus/distribute.sql"
    # Every classified table is placed once, by the statement its kind calls for.
    for name, p in citus.TABLES.items():
        statement = {citus.DISTRIBUTED: f"create_distributed_table('{name}', '{p.column}'",
                     citus.REFERENCE: f"create_reference_table('{name}')",
                     citus.LOCAL: f"--   {name}\n"}[p.kind]
        assert committed.count(statement) == 1, name
