"""The subcommands over the running services, added to `nudge` by nudgetools.cli: each gets
--target and --timeout, the ones that print data --output; each runs with one admin client
(NUDGE_ADMIN_KEY) and turns a failed call into one line naming the RPC's status and fields."""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Awaitable, Callable

import grpc

from nudge_client import field_violations
from nudge_client.protos import decision
from nudgetools.operate import commands, files, output
from nudgetools.operate.target import TargetError, client

Handler = Callable[..., Awaitable[int]]


def _common(output_formats: bool = True) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--target", default=None, metavar="ADDRESS",
                   help="HOST:PORT of an edge routing every service, or ingestion=HOST:PORT,segmentation=…,"
                        "decision=…,delivery=… (default: $NUDGE_TARGET, else make run's 127.0.0.1:50051-50054)")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds per call, retries included (default 10)")
    if output_formats:
        p.add_argument("--output", "-o", choices=output.FORMATS, default="table",
                       help="table for people (default), json or yaml for scripts")
    return p


def _report(command: str, exc: grpc.aio.AioRpcError) -> None:
    print(f"nudge {command}: {exc.code().name}: {exc.details()}", file=sys.stderr)
    for name, description in field_violations(exc).items():
        print(f"  {name}: {description}", file=sys.stderr)


def _runs(command: str, handler: Handler, *, with_client: bool = True) -> Callable[[argparse.Namespace], Awaitable[int]]:
    """`handler(client, args)` (or `handler(factory, args)` for the file commands, which read
    their files before connecting), with every expected failure as one line on stderr:
    exit 2 for bad files or options, 1 for a failed call."""

    async def run(args: argparse.Namespace) -> int:
        def factory():
            return client(args.target, args.timeout)

        try:
            if not with_client:
                return await handler(factory, args)
            async with factory() as c:
                return await handler(c, args)
        except TargetError as exc:
            print(f"nudge {command}: {exc}", file=sys.stderr)
            return 2
        except files.DocumentError as exc:
            print(f"nudge {command}: bad input:\n{exc}", file=sys.stderr)
            return 2
        except ValueError as exc:  # an option the client or a parser refused: --timeout 0, a bad date
            print(f"nudge {command}: {exc}", file=sys.stderr)
            return 2
        except commands.CommandError as exc:
            print(f"nudge {command}: {exc}", file=sys.stderr)
            return 1
        except grpc.aio.AioRpcError as exc:
            _report(command, exc)
            return 1

    return run


def add_parsers(sub) -> None:
    common, quiet = _common(), _common(output_formats=False)

    def files_option(p: argparse.ArgumentParser) -> None:
        p.add_argument("-f", dest="files", action="append", required=True, metavar="FILE|DIR",
                       help="segment, campaign and app settings documents (repeatable; a folder: its *.yaml, *.yml)")

    ap = sub.add_parser("apply", parents=[common], help="create or update segments, campaigns and settings from files")
    files_option(ap)
    ap.add_argument("--dry-run", action="store_true", help="say what would change, change nothing")
    ap.set_defaults(func=_runs("apply", files.apply, with_client=False))
    df = sub.add_parser("diff", parents=[common], help="what `apply` would change, field by field")
    files_option(df)
    df.add_argument("--exit-code", action="store_true", help="exit 1 when something would change (as git diff)")
    df.set_defaults(func=_runs("diff", files.diff, with_client=False))
    ex = sub.add_parser("export", parents=[quiet], help="the app's segments, campaigns and settings as YAML")
    ex.add_argument("--file", default="", metavar="PATH", help="write to PATH instead of stdout")
    ex.set_defaults(func=_runs("export", files.export, with_client=False))

    cp = sub.add_parser("campaigns", help="the app's campaigns").add_subparsers(dest="campaigns_command", required=True)
    ls = cp.add_parser("list", parents=[common], help="list campaigns")
    ls.add_argument("--status", choices=["draft", "active", "paused", "archived"])
    ls.set_defaults(func=_runs("campaigns list", commands.campaigns_list))
    for name, status, text in (("pause", decision.CAMPAIGN_STATUS_PAUSED, "stop delivering (resume restarts it)"),
                               ("resume", decision.CAMPAIGN_STATUS_ACTIVE, "deliver again"),
                               ("archive", decision.CAMPAIGN_STATUS_ARCHIVED, "end it for good (frees its key)")):
        p = cp.add_parser(name, parents=[common], help=text)
        p.add_argument("campaign", help="key or id")
        p.set_defaults(func=_runs(f"campaigns {name}", functools.partial(_with_status, status=status)))
    sh = cp.add_parser("show", parents=[common], help="one campaign")
    sh.add_argument("campaign", help="key or id")
    sh.set_defaults(func=_runs("campaigns show", commands.campaigns_show))
    st = cp.add_parser("stats", parents=[common], help="results per variant, and per day over a range")
    st.add_argument("campaign", help="key or id")
    st.add_argument("--days", type=int, default=0, help="the last N days (in the app's time zone), one row per day")
    st.add_argument("--from", dest="start", default="", metavar="YYYY-MM-DD", help="first day (with --to)")
    st.add_argument("--to", default="", metavar="YYYY-MM-DD", help="last day, included")
    st.set_defaults(func=_runs("campaigns stats", commands.campaigns_stats))

    sg = sub.add_parser("segments", help="the app's segments").add_subparsers(dest="segments_command", required=True)
    sg.add_parser("list", parents=[common], help="list segments").set_defaults(
        func=_runs("segments list", commands.segments_list))
    for name, handler, text in (("show", commands.segments_show, "one segment"),
                                ("estimate", commands.segments_estimate, "how many users are in it"),
                                ("members", commands.segments_members, "its members' user ids")):
        p = sg.add_parser(name, parents=[common], help=text)
        p.add_argument("segment", help="key or id")
        if name == "members":
            p.add_argument("--limit", type=int, default=0, help="at most N (default: all)")
        p.set_defaults(func=_runs(f"segments {name}", handler))

    us = sub.add_parser("users", help="one user").add_subparsers(dest="users_command", required=True)
    p = us.add_parser("show", parents=[common], help="the user's profile and segments")
    p.add_argument("user")
    p.set_defaults(func=_runs("users show", commands.users_show))
    p = us.add_parser("explain", parents=[common], help="why each campaign is or is not shown to the user")
    p.add_argument("user")
    p.add_argument("--screen", default="")
    p.add_argument("--platform", choices=["ios", "android", "web"])
    p.set_defaults(func=_runs("users explain", commands.users_explain))
    p = us.add_parser("delete", parents=[quiet], help="erase the user from every service")
    p.add_argument("user")
    p.add_argument("--yes", action="store_true", help="confirm")
    p.set_defaults(func=_runs("users delete", commands.users_delete))

    def content_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("campaign", help="key or id")
        p.add_argument("--variant", default="", help="variant id (default: the first)")
        p.add_argument("--locale", default="", help="locale asked for (picked as a pull picks it)")
        p.add_argument("--event", default="", metavar="JSON", help="the trigger event's properties, a JSON object")

    pv = sub.add_parser("preview", parents=[common], help="render a campaign's message, as delivery would")
    content_options(pv)
    pv.add_argument("--user", default="", help="render with this user's profile")
    pv.add_argument("--attr", action="append", metavar="NAME=VALUE", help="an attribute over the user's (repeatable)")
    pv.set_defaults(func=_runs("preview", commands.preview))
    tst = sub.add_parser("send-test", parents=[common], help="deliver a campaign's message to one user now, "
                                                             "as a test (no cap, no statistic)")
    content_options(tst)
    tst.add_argument("--user", required=True, help="who gets it")
    tst.set_defaults(func=_runs("send-test", commands.send_test))


async def _with_status(c, args: argparse.Namespace, status: int) -> int:
    return await commands.campaigns_set_status(c, args, status)


__all__ = ["add_parsers"]
