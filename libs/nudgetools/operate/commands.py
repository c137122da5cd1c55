"""`nudge campaigns …`, `nudge segments …`, `nudge users …`, `nudge preview`, `nudge send-test`:
one call (or a few pages) each through the client, a table for people or the response as
JSON/YAML (`--output`) for scripts. A campaign or segment is named by its key or its id."""

from __future__ import annotations

import argparse
import json
import re
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import grpc
from google.protobuf import json_format, struct_pb2
from google.protobuf.message import Message

from nudge_client import AsyncNudge
from nudge_client.protos import common, decision
from nudgetools.operate import output
from nudgetools.operate.state import read_segments

_KEY = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


class CommandError(Exception):
    """A refusal the command explains in one line (exit status 1)."""


def _ts(message: Message, name: str) -> str:
    if not message.HasField(name):
        return ""
    return getattr(message, name).ToDatetime().strftime("%Y-%m-%d %H:%M:%SZ")


def _enum(value: int, enum: Any, prefix: str) -> str:
    return enum.Name(value).removeprefix(prefix).lower()


async def _lookup(get, by_key: dict[str, str], by_id: dict[str, str]) -> Any:
    """By key first (what files and people use), then by id; NOT_FOUND for neither."""
    if _KEY.match(next(iter(by_key.values()))):
        try:
            return await get(**by_key)
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.NOT_FOUND:
                raise
    return await get(**by_id)


async def _found(what: str, ref: str, call) -> Any:
    try:
        return await call
    except grpc.aio.AioRpcError as exc:
        if exc.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT):
            raise CommandError(f"no {what} {ref!r} in this app (neither a key nor an id)") from None
        raise


async def campaign(client: AsyncNudge, ref: str) -> Message:
    """The non-archived campaign with key `ref`, else the campaign with id `ref`."""
    got = await _found("campaign", ref, _lookup(client.get_campaign, {"key": ref}, {"campaign_id": ref}))
    return got.campaign


async def segment(client: AsyncNudge, ref: str) -> Message:
    got = await _found("segment", ref, _lookup(client.get_segment, {"key": ref}, {"segment_id": ref}))
    return got.segment


def _status(c: Message) -> str:
    return _enum(c.status, decision.CampaignStatus, "CAMPAIGN_STATUS_")


# --- campaigns ---------------------------------------------------------------------------------


async def campaigns_list(client: AsyncNudge, args: argparse.Namespace) -> int:
    status = decision.CampaignStatus.Value(f"CAMPAIGN_STATUS_{args.status.upper()}") if args.status else 0
    found, token = [], ""
    while True:
        page = await client.list_campaigns(page_size=100, page_token=token, status=status)
        found += page.campaigns
        if not (token := page.next_page_token):
            break
    if args.output != "table":
        output.dump([output.plain(c) for c in found], args.output)
        return 0
    output.table(None, ["key", "id", "name", "status", "mode", "priority", "version", "updated"], [
        (c.key, c.id, c.name, _status(c), _enum(c.delivery_mode, decision.DeliveryMode, "DELIVERY_MODE_"),
         c.priority, c.version, _ts(c, "update_time")) for c in found])
    return 0


async def campaigns_show(client: AsyncNudge, args: argparse.Namespace) -> int:
    c = await campaign(client, args.campaign)
    if args.output != "table":
        output.dump(output.plain(c), args.output)
        return 0
    segments = await read_segments(client)
    names = lambda ids: ", ".join(segments.key_of.get(i, i) for i in ids) or "everyone"  # noqa: E731
    rows = [("key", c.key), ("id", c.id), ("name", c.name), ("status", _status(c)), ("version", c.version),
            ("mode", _enum(c.delivery_mode, decision.DeliveryMode, "DELIVERY_MODE_")), ("priority", c.priority),
            ("tags", ", ".join(c.tags)), ("audience", names(c.audience.include_segment_ids)),
            ("excluded", names(c.audience.exclude_segment_ids) if c.audience.exclude_segment_ids else ""),
            ("triggers", "; ".join(t.event_name or f"enters {segments.key_of.get(t.segment_entered_id, t.segment_entered_id)}"
                                   for t in c.triggers)),
            ("variants", ", ".join(f"{v.id} ({v.weight})" if v.weight else v.id for v in c.variants)
             + (f", control ({c.control_weight})" if c.control_weight else "")),
            ("created", _ts(c, "create_time")), ("updated", _ts(c, "update_time"))]
    output.table(None, ["field", "value"], [r for r in rows if r[1] not in ("", None)])
    return 0


async def campaigns_set_status(client: AsyncNudge, args: argparse.Namespace, status: int) -> int:
    c = await campaign(client, args.campaign)
    saved = (await client.set_campaign_status(campaign_id=c.id, status=status)).campaign
    if args.output != "table":
        output.dump(output.plain(saved), args.output)
    else:
        print(f"campaign {saved.key or saved.id} ({saved.name}) is {_status(saved)}")
    return 0


async def _stats_range(client: AsyncNudge, args: argparse.Namespace) -> dict[str, str]:
    if args.days:
        if args.days < 1 or args.start:
            raise CommandError("--days N is at least 1, and not with --from")
        if args.to:
            end = date.fromisoformat(args.to)
        else:  # today where the stats' days are: the app's time zone
            zone = (await client.get_app_settings()).settings.default_time_zone or "UTC"
            end = datetime.now(ZoneInfo(zone)).date()
        return {"start_date": (end - timedelta(days=args.days - 1)).isoformat(), "end_date": end.isoformat()}
    if args.start or args.to:
        if not (args.start and args.to):
            raise CommandError("--from and --to go together (or --days N)")
        return {"start_date": args.start, "end_date": args.to}
    return {}


def _variant(v: Message) -> str:
    return "control" if v.control else v.variant_id


async def campaigns_stats(client: AsyncNudge, args: argparse.Namespace) -> int:
    c = await campaign(client, args.campaign)
    stats = await client.get_campaign_stats(campaign_id=c.id, **(await _stats_range(client, args)))
    if args.output != "table":
        output.dump(output.plain(stats), args.output)
        return 0
    output.table(f"{c.name} ({c.key or c.id})", [
        "variant", "sent", "delivered", "impressions", "clicks", "dismissals", "conversions", "conv. rate",
        "uplift", "expired", "dropped", "waiting"], [
        (_variant(v), v.sent, v.delivered, v.impressions, sum(v.clicks_by_button.values()), v.dismissals,
         v.conversions, f"{v.conversion_rate:.1%}", f"{v.uplift:+.1%}" if not v.control and c.control_weight else "",
         v.expired, v.dropped, v.waiting) for v in stats.variants])
    if stats.days:
        output.table(f"by day ({stats.time_zone})", ["date", "variant", "sent", "delivered", "impressions", "clicks",
                                                     "conversions"], [
            (d.date, _variant(v), v.sent, v.delivered, v.impressions, sum(v.clicks_by_button.values()), v.conversions)
            for d in stats.days for v in d.variants])
    return 0


# --- segments ----------------------------------------------------------------------------------


async def segments_list(client: AsyncNudge, args: argparse.Namespace) -> int:
    with output.progress("listing segments", None) as advance:
        segments = await read_segments(client, advance)
    found = list(segments.by_id.values())
    if args.output != "table":
        output.dump([output.plain(s) for s in found], args.output)
        return 0
    output.table(None, ["key", "id", "name", "version", "updated"],
                 [(s.key, s.id, s.name, s.version, _ts(s, "update_time")) for s in found])
    return 0


async def segments_show(client: AsyncNudge, args: argparse.Namespace) -> int:
    s = await segment(client, args.segment)
    if args.output != "table":
        output.dump(output.plain(s), args.output)
        return 0
    output.table(None, ["field", "value"], [
        ("key", s.key), ("id", s.id), ("name", s.name), ("description", s.description), ("version", s.version),
        ("rule", json.dumps(output.plain(s.rule))), ("updated", _ts(s, "update_time"))])
    return 0


async def segments_estimate(client: AsyncNudge, args: argparse.Namespace) -> int:
    s = await segment(client, args.segment)
    got = await client.estimate_audience(segment_id=s.id)
    if args.output != "table":
        output.dump({"segment_id": s.id, "key": s.key, **output.plain(got)}, args.output)
        return 0
    share = got.user_count / got.total_user_count if got.total_user_count else 0
    print(f"{s.name} ({s.key or s.id}): {got.user_count} of {got.total_user_count} users ({share:.1%})")
    return 0


async def segments_members(client: AsyncNudge, args: argparse.Namespace) -> int:
    s = await segment(client, args.segment)
    total = (await client.estimate_audience(segment_id=s.id)).user_count
    members: list[str] = []
    token = ""
    with output.progress(f"members of {s.key or s.id}", min(total, args.limit) if args.limit else total) as advance:
        while True:
            page = await client.list_segment_members(segment_id=s.id, page_size=1000, page_token=token)
            members += page.user_ids
            advance(len(page.user_ids))
            token = page.next_page_token
            if not token or (args.limit and len(members) >= args.limit):
                break
    if args.limit:
        members = members[:args.limit]
    if args.output != "table":
        output.dump(members, args.output)
    else:
        for m in members:
            print(m)
    return 0


# --- users -------------------------------------------------------------------------------------


def _attribute(value: Message) -> Any:
    return json_format.MessageToDict(value).popitem()[1] if value.ListFields() else None


async def users_show(client: AsyncNudge, args: argparse.Namespace) -> int:
    try:
        profile = (await client.get_user_profile(user_id=args.user)).profile
    except grpc.aio.AioRpcError as exc:
        if exc.code() == grpc.StatusCode.NOT_FOUND:
            raise CommandError(f"no user {args.user!r} in this app") from None
        raise
    if args.output != "table":
        output.dump(output.plain(profile), args.output)
        return 0
    segments = await read_segments(client)
    rows = [("user", profile.user_id), ("time zone", profile.time_zone), ("locale", profile.locale),
            ("first seen", _ts(profile, "first_seen_time")), ("last seen", _ts(profile, "last_seen_time")),
            ("platforms", ", ".join(_enum(p, common.Platform, "PLATFORM_") for p in profile.platforms)),
            ("app version", profile.app_version),
            ("segments", ", ".join(segments.key_of.get(i, i) for i in profile.segment_ids))]
    rows += [(f"attributes.{k}", json.dumps(_attribute(v))) for k, v in sorted(profile.attributes.items())]
    output.table(None, ["field", "value"], rows)
    return 0


async def users_explain(client: AsyncNudge, args: argparse.Namespace) -> int:
    context = decision.RequestContext(screen=args.screen or "")
    if args.platform:
        context.platform = common.Platform.Value(f"PLATFORM_{args.platform.upper()}")
    got = await client.explain_decision(user_id=args.user, context=context)
    if args.output != "table":
        output.dump(output.plain(got), args.output)
        return 0
    output.table(f"why {args.user} gets what", ["campaign", "verdict", "reason", "detail"], [
        (e.campaign_name or e.campaign_id, _enum(e.verdict, decision.Verdict, "VERDICT_"), e.reason, e.detail)
        for e in got.campaigns])
    pending = [(e.campaign_name, p) for e in got.campaigns for p in e.pending_sends]
    if pending:
        output.table("triggered sends", ["campaign", "state", "detail"], [
            (name, _enum(p.state, decision.PendingSendState, "PENDING_SEND_STATE_"), p.detail)
            for name, p in pending])
    return 0


async def users_delete(client: AsyncNudge, args: argparse.Namespace) -> int:
    if not args.yes:
        raise CommandError(f"this erases {args.user!r} from every service (profile, events, messages, history); "
                           "add --yes to do it")
    got = await client.delete_user(user_id=args.user)
    print(f"user {args.user} erased" + ("" if got.completed else " (still under way in some services: run it again)"))
    return 0 if got.completed else 1


# --- preview and test sends ----------------------------------------------------------------------


def _struct(text: str | None) -> struct_pb2.Struct | None:
    if not text:
        return None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CommandError(f"--event: not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise CommandError("--event: a JSON object of the event's properties, e.g. '{\"cart_value\": 150}'")
    s = struct_pb2.Struct()
    s.update(data)
    return s


def _attributes(pairs: list[str]) -> dict[str, common.AttributeValue]:
    out = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep or not name:
            raise CommandError(f"--attr {pair!r}: NAME=VALUE (the value as JSON, else a string)")
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text
        out[name] = _attribute_value(value)
    return out


def _attribute_value(value: Any) -> common.AttributeValue:
    if isinstance(value, bool):
        return common.AttributeValue(bool_value=value)
    if isinstance(value, int):
        return common.AttributeValue(int_value=value)
    if isinstance(value, float):
        return common.AttributeValue(double_value=value)
    if isinstance(value, list):
        return common.AttributeValue(string_list_value=common.StringList(values=[str(v) for v in value]))
    return common.AttributeValue(string_value=str(value))


def print_content(content: Message) -> None:
    rows = [("layout", _enum(content.layout, common.Layout, "LAYOUT_")), ("title", content.title),
            ("body", content.body), ("image", content.image_url)]
    rows += [(f"buttons[{i}]", f"{b.text} [{b.id}] → {b.target or _enum(b.action, common.ButtonActionType, 'BUTTON_ACTION_TYPE_')}")
             for i, b in enumerate(content.buttons)]
    rows += [(f"questions[{i}]", q.text) for i, q in enumerate(content.questions)]
    rows += [(f"slides[{i}]", f"{s.title} {s.body}".strip()) for i, s in enumerate(content.slides)]
    output.table(None, ["field", "value"], [r for r in rows if r[1]])


async def preview(client: AsyncNudge, args: argparse.Namespace) -> int:
    c = await campaign(client, args.campaign)
    request = decision.PreviewMessageRequest(campaign_id=c.id, variant_id=args.variant or "", locale=args.locale or "",
                                             user_id=args.user or "")
    for name, value in _attributes(args.attr or []).items():
        request.attributes[name].CopyFrom(value)
    if (props := _struct(args.event)) is not None:
        request.event_properties.CopyFrom(props)
    got = await client.preview_message(request)
    if args.output != "table":
        output.dump(output.plain(got), args.output)
    else:
        print(f"{c.name} ({c.key or c.id}) v{got.campaign_version}, variant {got.variant_id}, locale {got.locale}"
              + (f", for {args.user}" if args.user else ""))
        print_content(got.content)
        for e in got.errors:
            output.warn(f"template error: {e.field}: {e.message}")
    return 1 if got.errors else 0


async def send_test(client: AsyncNudge, args: argparse.Namespace) -> int:
    c = await campaign(client, args.campaign)
    request = decision.SendTestMessageRequest(campaign_id=c.id, user_id=args.user, variant_id=args.variant or "",
                                              locale=args.locale or "")
    if (props := _struct(args.event)) is not None:
        request.event_properties.CopyFrom(props)
    got = await client.send_test_message(request)
    if args.output != "table":
        output.dump(output.plain(got), args.output)
        return 0
    print(f"test message {got.message_id} for {args.user}: {c.name} ({c.key or c.id}), variant {got.variant_id}, "
          f"locale {got.locale}; it waits for the user's next pull or stream until {_ts(got, 'expire_time')}")
    print_content(got.content)
    return 0
