"""`nudge`: the operator's command line.

    nudge run [--replicas decision=3,delivery=2] [--tls]
                                    start PostgreSQL (embedded unless DATABASE_URL is set),
                                    migrate, start the four services (as many replicas of
                                    each as asked, else NUDGE_REPLICAS) and the edge in
                                    front of them, create the demo app
    nudge migrate                   apply every schema's migrations (DATABASE_URL, or the
                                    embedded PostgreSQL, created if there is none yet)
    nudge reset --yes               delete the embedded data folder (stop `nudge run` first)
    nudge apps create NAME          create an app and its admin, events and client keys
    nudge apps list
    nudge keys list APP
    nudge keys create APP --scope admin|events:write|messages:read|public [--label L]
    nudge keys revoke KEY_ID
    nudge simulate -f FILE|DIR --timeline USER.yaml
                                    replay one user's timeline through the rules, no services
                                    needed: what they would receive, when, and why not
    nudge user-token-keys add APP --file key.pem [--key-id KID]
                                    register a public key (PEM or JWK; ES256 or RS256) that
                                    the app's backend signs user tokens with
    nudge user-token-keys list APP [--all]
    nudge user-token-keys revoke KEY_ID [--app APP]

Over the running services, through the client package (nudgetools.operate; --target or
NUDGE_TARGET, the app's admin key in NUDGE_ADMIN_KEY; --output json|yaml for scripts):
    nudge apply -f FILE|DIR [--dry-run]   upsert segments, campaigns and settings by key
    nudge diff -f FILE|DIR                what apply would change, field by field
    nudge export [--file PATH]            the app's state as files apply takes back unchanged
    nudge campaigns list|show|pause|resume|archive|stats
    nudge segments list|show|estimate|members
    nudge users show|explain|delete
    nudge preview CAMPAIGN    nudge send-test CAMPAIGN --user U

Each command says on stderr which database it uses. Without DATABASE_URL it is the embedded
PostgreSQL in the data folder: NUDGE_DATA_DIR, by default `.nudge` in the Nudge checkout
whichever directory `nudge` runs from (nudgetools.database). Only `run` and `migrate` create
a missing one; the other commands refuse with one line.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg

from nudgelib import accounts, runtime, user_token_keys
from nudgelib.config import ConfigError, LogSettings
from nudgelib.errors import NudgeError
from nudgelib.logs import configure_logging
from nudgelib.user_tokens import BadPublicKey, parse_public_key
from nudgetools import embedded
from nudgetools.database import data_dir, database_url, migrate_all
from nudgetools.local import FolderInUse, claim, run_local
from nudgetools.operate.parser import add_parsers as add_operate_parsers


@contextlib.asynccontextmanager
async def _connected() -> AsyncIterator[asyncpg.Connection]:
    url = await database_url()
    await migrate_all(url)
    conn = await asyncpg.connect(url)
    try:
        yield conn
    finally:
        await conn.close()


async def _find_app(conn: asyncpg.Connection, name_or_id: str) -> str | None:
    """The app's id, or None once the operator has been told there is no such app."""
    app_id = await accounts.find_app(conn, name_or_id)
    if app_id is None:
        print(f"no app {name_or_id!r}", file=sys.stderr)
    return app_id


def print_keys(app_id: str, keys: list[accounts.IssuedKey]) -> None:
    print(f"app {app_id}")
    for key in keys:
        print(f"  {key.label:<8} {','.join(key.scopes):<14} {key.secret}")
    print("Keys are shown once; Nudge stores only their hashes.")


async def apps_create(args: argparse.Namespace) -> int:
    async with _connected() as conn:
        if await accounts.find_app(conn, args.name):
            print(f"an app named {args.name!r} exists already", file=sys.stderr)
            return 1
        app_id, keys = await accounts.create_app(conn, args.name)
    print_keys(app_id, keys)
    return 0


async def apps_list(args: argparse.Namespace) -> int:
    async with _connected() as conn:
        apps = await accounts.list_apps(conn)
    for app in apps:
        print(f"{app.id}  {app.name:<24} active keys: {app.active_keys}  created {app.created_at:%Y-%m-%d %H:%M}")
    return 0


async def keys_list(args: argparse.Namespace) -> int:
    async with _connected() as conn:
        if (app_id := await _find_app(conn, args.app)) is None:
            return 1
        found, after = [], None
        while page := await accounts.list_keys(conn, app_id, after=after, limit=500):
            found += page
            after = (page[-1].created_at, page[-1].id)
    for k in found:
        state = f"revoked {k.revoked_at:%Y-%m-%d %H:%M}" if k.revoked_at else "active"
        print(f"{k.id}  {k.label:<10} {','.join(k.scopes):<14} {state}")
    return 0


async def keys_create(args: argparse.Namespace) -> int:
    label = args.label or args.scope
    if (problem := accounts.label_problem(label)) is not None:
        print(f"--label: {problem}", file=sys.stderr)
        return 2
    async with _connected() as conn:
        if (app_id := await _find_app(conn, args.app)) is None:
            return 1
        key = await accounts.create_key(conn, app_id, label, (accounts.Scope(args.scope),))
    print_keys(app_id, [key])
    return 0


async def keys_revoke(args: argparse.Namespace) -> int:
    # No guard for the app's last admin key here, unlike ApiKeyService: whoever holds the
    # accounts database can always issue another (`nudge keys create`).
    async with _connected() as conn:
        revoked = await accounts.revoke_key(conn, args.key_id)
    if revoked is None or not revoked[1]:
        print(f"no active key {args.key_id!r}", file=sys.stderr)
        return 1
    print(f"revoked {args.key_id}; services stop accepting it within a second")
    return 0


def print_token_key(key: user_token_keys.TokenKey) -> None:
    state = f"revoked {key.revoked_at:%Y-%m-%d %H:%M}" if key.revoked_at else "active"
    print(f"{key.kid}  {key.algorithm}  added {key.created_at:%Y-%m-%d %H:%M}  {state}")


async def token_keys_add(args: argparse.Namespace) -> int:
    try:
        parsed = parse_public_key(args.file.read_text(), args.key_id)
    except (OSError, UnicodeError, BadPublicKey) as exc:
        print(f"{args.file}: {exc}", file=sys.stderr)
        return 1
    async with _connected() as conn:
        if (app_id := await _find_app(conn, args.app)) is None:
            return 1
        try:
            key, created = await user_token_keys.add_key(conn, app_id, parsed)
        except NudgeError as exc:
            print(exc.message, file=sys.stderr)
            return 1
    print_token_key(key)
    if not created:
        print("(registered before: unchanged)")
    return 0


async def token_keys_list(args: argparse.Namespace) -> int:
    async with _connected() as conn:
        if (app_id := await _find_app(conn, args.app)) is None:
            return 1
        for key in await user_token_keys.list_keys(conn, app_id, include_revoked=args.all):
            print_token_key(key)
    return 0


async def token_keys_revoke(args: argparse.Namespace) -> int:
    async with _connected() as conn:
        app_id = None
        if args.app and (app_id := await _find_app(conn, args.app)) is None:
            return 1
        if app_id is None:
            apps = {k.app_id for k in await user_token_keys.revoke_key_candidates(conn, args.key_id)}
            if len(apps) > 1:
                print(f"apps {', '.join(sorted(apps))} each have a key {args.key_id!r}: say which with --app",
                      file=sys.stderr)
                return 1
        revoked = await user_token_keys.revoke_key(conn, args.key_id, app_id)
    if not revoked:
        print(f"no user token key {args.key_id!r}", file=sys.stderr)
        return 1
    print(f"revoked {args.key_id} of {revoked[0].app_id}; services refuse its tokens within a second")
    return 0


def _user_token_keys_parser(sub) -> None:
    tk = sub.add_parser("user-token-keys", help="public keys that sign the user tokens of public API keys")
    group = tk.add_subparsers(dest="user_token_keys_command", required=True)
    add = group.add_parser("add", help="register a public key (PEM or JWK; EC P-256, or RSA of 2048 to 8192 bits)")
    add.add_argument("app", help="app id or name")
    add.add_argument("--file", required=True, type=Path, help="the public key: PEM or a JWK (JSON)")
    add.add_argument("--key-id", default="", help="the `kid` tokens name (default: the JWK's kid, else the "
                                                  "key's RFC 7638 thumbprint)")
    add.set_defaults(func=token_keys_add)
    ls = group.add_parser("list", help="list an app's user token keys")
    ls.add_argument("app", help="app id or name")
    ls.add_argument("--all", action="store_true", help="revoked keys too")
    ls.set_defaults(func=token_keys_list)
    rv = group.add_parser("revoke", help="revoke a user token key by its id")
    rv.add_argument("key_id")
    rv.add_argument("--app", default="", help="app id or name (needed when several apps use the id)")
    rv.set_defaults(func=token_keys_revoke)


async def migrate(args: argparse.Namespace) -> int:
    url = await database_url(create=True)
    await migrate_all(url)
    print("migrations applied")
    return 0


async def reset(args: argparse.Namespace) -> int:
    """Deletes the embedded data folder, once nothing uses it and the operator confirmed."""
    if os.environ.get("DATABASE_URL", "").strip():
        print("nudge reset: DATABASE_URL is set; reset deletes only the embedded data folder "
              "(drop that database's schemas yourself)", file=sys.stderr)
        return 2
    folder = data_dir()
    if not folder.exists():
        print(f"no data folder {folder}: nothing to reset")
        return 0
    try:
        lock = claim(folder)
    except FolderInUse as exc:
        print(f"nudge reset: {exc}; stop it first", file=sys.stderr)
        return 2
    try:
        if (pid := embedded.server_pid(folder)) is not None:
            print(f"nudge reset: PostgreSQL on {folder} is still running (pid {pid}); "
                  "stop the `nudge` command using it first", file=sys.stderr)
            return 2
        if not args.yes:
            print(f"nudge reset: this deletes {folder} (the embedded database and the demo keys); "
                  "`nudge reset --yes` to do it", file=sys.stderr)
            return 1
        shutil.rmtree(folder)
    finally:
        lock.close()
    print(f"deleted {folder}; the next `nudge run` or `nudge migrate` starts an empty database")
    return 0


async def simulate(args: argparse.Namespace) -> int:
    # No database and no service: the rules alone. Imported here, as it loads the services'
    # rule modules, which the other commands do not need.
    from nudgetools import simulate as simulation

    return simulation.main(args.files, args.timeline)


async def run(args: argparse.Namespace) -> int:
    return await run_local(data_dir(), args.replicas, args.tls)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="nudge", description="Operate a Nudge installation.")
    sub = p.add_subparsers(dest="command", required=True)
    rn = sub.add_parser("run", help="start everything locally")
    rn.add_argument("--replicas", metavar="SERVICE=N,...",
                    help="processes per service, e.g. decision=3,delivery=2 (default: NUDGE_REPLICAS, else one each)")
    rn.add_argument("--tls", action="store_true",
                    help="encrypt every connection: a local CA and certificates in the data folder's tls/, "
                         "mutual TLS between the processes, the edge on its TLS port (8443) only")
    rn.set_defaults(func=run)
    sub.add_parser("migrate", help="apply migrations").set_defaults(func=migrate)
    rs = sub.add_parser("reset", help="delete the embedded data folder")
    rs.add_argument("--yes", action="store_true", help="confirm: without it, reset only says what it would delete")
    rs.set_defaults(func=reset)

    apps = sub.add_parser("apps", help="apps (tenants)").add_subparsers(dest="apps_command", required=True)
    create = apps.add_parser("create", help="create an app and its keys")
    create.add_argument("name")
    create.set_defaults(func=apps_create)
    apps.add_parser("list", help="list apps").set_defaults(func=apps_list)

    keys = sub.add_parser("keys", help="API keys").add_subparsers(dest="keys_command", required=True)
    kl = keys.add_parser("list", help="list an app's keys")
    kl.add_argument("app", help="app id or name")
    kl.set_defaults(func=keys_list)
    kc = keys.add_parser("create", help="issue a key")
    kc.add_argument("app", help="app id or name")
    kc.add_argument("--scope", required=True, choices=[s.value for s in accounts.Scope])
    kc.add_argument("--label", default="")
    kc.set_defaults(func=keys_create)
    kr = keys.add_parser("revoke", help="revoke a key by id")
    kr.add_argument("key_id", help="the id shown by `keys list` (the part after nudge_)")
    kr.set_defaults(func=keys_revoke)

    sim = sub.add_parser("simulate", help="replay a user's timeline through campaigns, without services")
    sim.add_argument("-f", dest="files", action="append", required=True, metavar="FILE|DIR",
                     help="campaign, segment and app settings documents (repeatable)")
    sim.add_argument("--timeline", required=True, metavar="USER.yaml", help="the user's scripted timeline")
    sim.set_defaults(func=simulate)
    _user_token_keys_parser(sub)
    add_operate_parsers(sub)
    return p


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    try:
        # Logs (migrations applied…) go to stderr: stdout is the command's answer, for scripts.
        configure_logging("nudge", LogSettings.from_env())
    except ConfigError as exc:
        print(f"nudge: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    try:
        code = runtime.run(args.func(args))
    except KeyboardInterrupt:
        code = 130
    except (OSError, asyncpg.PostgresError, RuntimeError) as exc:
        print(f"nudge: {exc}", file=sys.stderr)
        code = 1
    raise SystemExit(code)


if __name__ == "__main__":
    main()
