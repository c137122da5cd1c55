"""`nudge apply`, `nudge diff` and `nudge export`: campaigns as files against a running app.

Apply is an upsert by key (the services leave it to the client, see the protos): a document
whose key the app has is updated, at the version read (ABORTED if someone saved in between),
else created; a document equal to what the app holds is not sent at all, so applying the
same files twice changes nothing the second time. Documents are sent segments first, each
after the segments it names, then app settings, then campaigns, with segment keys mapped to
the ids the app has (or has just given). Nothing is deleted: an object the files do not name
is left as it is.

Every file is read and checked (nudgetools.files.load_documents: file, line and field) before
any call; then the app is read, every segment key the files name must be in the files or the
app, and only then is anything written."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from google.protobuf.message import Message

from nudge_client import AsyncNudge
from nudgetools.files import Document, DocumentError, Problem, dump_documents, segment_references, with_segment_ids
from nudgetools.operate import output
from nudgetools.operate.changes import UNSET, FieldChange, document_changes, segment_order, show
from nudgetools.operate.state import (Segments, campaign_by_key, campaign_document, read_campaigns, read_segments,
                                      read_settings, segment_document, settings_document)


@dataclass
class Item:
    """One document of the files, beside what the app holds under its key."""

    doc: Document
    current: Document | None
    current_id: str = ""
    current_version: int = 0
    changes: tuple[FieldChange, ...] = ()

    @property
    def action(self) -> str:
        if self.current is None:
            return "create"
        return "update" if self.changes else "unchanged"

    def where(self, path: str = "") -> str:
        o = self.doc.origin
        if o is None:
            return ""
        return f"{o.file}:{o.line_of(path) if path else o.line}"


@dataclass
class Plan:
    items: list[Item]  # in the order they are sent
    segments: Segments


def _item(doc: Document, current: Document | None, current_id: str = "", version: int = 0) -> Item:
    return Item(doc, current, current_id, version, tuple(document_changes(current, doc)))


async def make_plan(client: AsyncNudge, docs: list[Document]) -> Plan:
    """What applying `docs` would do; reads the app, writes nothing. Raises DocumentError
    for a segment key that neither the files nor the app have, or segments naming each
    other in a circle."""
    with output.progress("reading the app's segments", None) as advance:
        segments = await read_segments(client, advance)
    ordered, problems = segment_order(docs)
    in_files = {d.key for d in docs if d.kind == "Segment"}
    for doc in docs:
        for ref in segment_references(doc):
            if ref.key not in in_files and ref.key not in segments.id_of:
                o = doc.origin
                problems.append(Problem(o.file if o else "<document>", o.line_of(ref.field) if o else 0, ref.field,
                                        f"no segment has the key {ref.key!r}, in these files or in the app"))
    if problems:
        raise DocumentError(problems)

    items: list[Item] = []
    for doc in ordered:
        segment_id = segments.id_of.get(doc.key)
        if segment_id is None:
            items.append(_item(doc, None))
        else:
            s = segments.by_id[segment_id]
            items.append(_item(doc, segment_document(s, segments), s.id, s.version))
    for doc in (d for d in docs if d.kind == "AppSettings"):
        items.append(_item(doc, settings_document(await read_settings(client))))
    campaigns = [d for d in docs if d.kind == "Campaign"]
    with output.progress("reading the app's campaigns", len(campaigns)) as advance:
        for doc in campaigns:
            c = await campaign_by_key(client, doc.key)
            items.append(_item(doc, None) if c is None
                         else _item(doc, campaign_document(c, segments), c.id, c.version))
            advance(1)
    return Plan(items, segments)


async def execute(client: AsyncNudge, plan: Plan) -> None:
    """Sends what `plan` says changes, in its order; segments created here get their ids
    before the documents that name them are sent."""
    ids = dict(plan.segments.id_of)
    todo = [i for i in plan.items if i.action != "unchanged"]
    with output.progress("applying", len(todo)) as advance:
        for item in todo:
            for attempt in range(1, RACE_ATTEMPTS + 1):
                try:
                    await _send(client, item, with_segment_ids(item.doc, ids), ids)
                    break
                except grpc.aio.AioRpcError as exc:
                    # Someone else created it (ALREADY_EXISTS) or saved it (ABORTED) since it
                    # was read: read it again and send against what it is now (the protos'
                    # upsert contract).
                    if exc.code() not in RACES or attempt == RACE_ATTEMPTS:
                        raise
                    fresh = await _reread(client, item, plan.segments)
                    item.current, item.current_id, item.current_version, item.changes = (
                        fresh.current, fresh.current_id, fresh.current_version, fresh.changes)
                    if item.action == "unchanged":
                        break
            advance(1)


RACES = (grpc.StatusCode.ALREADY_EXISTS, grpc.StatusCode.ABORTED)
RACE_ATTEMPTS = 3


async def _reread(client: AsyncNudge, item: Item, segments: Segments) -> Item:
    doc = item.doc
    if doc.kind == "Segment":
        try:
            s = (await client.get_segment(key=doc.key)).segment
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.NOT_FOUND:
                raise
            return _item(doc, None)
        segments.add(s)
        return _item(doc, segment_document(s, segments), s.id, s.version)
    c = await campaign_by_key(client, doc.key)
    return _item(doc, None) if c is None else _item(doc, campaign_document(c, segments), c.id, c.version)


async def _send(client: AsyncNudge, item: Item, message: Message, ids: dict[str, str]) -> None:
    doc = item.doc
    if doc.kind == "Segment":
        fields = dict(name=message.name, description=message.description, rule=message.rule, key=doc.key)
        if item.current is None:
            saved = (await client.create_segment(**fields)).segment
        else:
            saved = (await client.update_segment(segment_id=item.current_id, expected_version=item.current_version,
                                                 **fields)).segment
        ids[doc.key] = saved.id
    elif doc.kind == "Campaign":
        if item.current is None:
            await client.create_campaign(campaign=message)
        else:
            message.id = item.current_id
            await client.update_campaign(campaign=message, expected_version=item.current_version)
    else:
        await client.update_app_settings(settings=message)


# --- what is printed ------------------------------------------------------------------------


def _name(item: Item) -> str:
    return f"{item.doc.kind} {item.doc.key}" if item.doc.key else item.doc.kind


def _json_value(value: Any) -> Any:
    return None if value is UNSET else value


def plan_data(plan: Plan) -> dict[str, Any]:
    counts = {a: sum(1 for i in plan.items if i.action == a) for a in ("create", "update", "unchanged")}
    return {
        "documents": [{
            "kind": i.doc.kind, "key": i.doc.key, "file": i.doc.origin.file if i.doc.origin else "",
            "line": i.doc.origin.line if i.doc.origin else 0, "action": i.action,
            "id": i.current_id, "changes": [{"field": c.field, "old": _json_value(c.old), "new": _json_value(c.new)}
                                            for c in i.changes] if i.current is not None else [],
        } for i in plan.items],
        "summary": counts,
    }


def print_plan(plan: Plan) -> None:
    """Each document that would change: `+` created, `~` updated with each field (path,
    old → new, its line in the file); nothing for a document that is unchanged."""
    for item in plan.items:
        if item.action == "create":
            print(f"+ {_name(item)} (new)  {item.where()}")
        elif item.action == "update":
            print(f"~ {_name(item)}  {item.where()}")
            for c in item.changes:
                print(f"    {c.field}: {show(c.old)} → {show(c.new)}  (line {item.doc.origin.line_of(c.field)})"
                      if item.doc.origin else f"    {c.field}: {show(c.old)} → {show(c.new)}")


def _summary(plan: Plan, verbs: tuple[str, str]) -> str:
    n = {a: sum(1 for i in plan.items if i.action == a) for a in ("create", "update", "unchanged")}
    return f"{n['create']} {verbs[0]}, {n['update']} {verbs[1]}, {n['unchanged']} unchanged"


def _load(files: list[str]) -> list[Document]:
    from nudgetools.files import load_documents

    return load_documents(files)


async def diff(client_factory, args: argparse.Namespace) -> int:
    docs = _load(args.files)  # before any connection: a bad file stops here
    async with client_factory() as client:
        plan = await make_plan(client, docs)
    if args.output != "table":
        output.dump(plan_data(plan), args.output)
    else:
        print_plan(plan)
        output.warn(f"diff: {_summary(plan, ('to create', 'to update'))}")
    changed = any(i.action != "unchanged" for i in plan.items)
    return 1 if changed and args.exit_code else 0


async def apply(client_factory, args: argparse.Namespace) -> int:
    docs = _load(args.files)  # before any connection: a bad file stops here
    async with client_factory() as client:
        plan = await make_plan(client, docs)
        if not args.dry_run:
            await execute(client, plan)
    if args.output != "table":
        data = plan_data(plan)
        data["dry_run"] = args.dry_run
        output.dump(data, args.output)
    elif args.dry_run:
        print_plan(plan)
        output.warn(f"apply --dry-run: {_summary(plan, ('to create', 'to update'))}; nothing was changed")
    else:
        for item in plan.items:
            if item.action != "unchanged":
                detail = f" ({len(item.changes)} field{'s' if len(item.changes) != 1 else ''})" \
                    if item.action == "update" else ""
                print(f"{item.action}d {_name(item)}{detail}")
        output.warn(f"apply: {_summary(plan, ('created', 'updated'))}")
    return 0


async def export(client_factory, args: argparse.Namespace) -> int:
    """The app's segments (dependency order), settings and non-archived campaigns as YAML
    that `apply` takes back unchanged. Objects without a key cannot be named in a file (an
    apply could only create a second one), so they are left out with a warning, as are the
    ones that name a segment without a key."""
    async with client_factory() as client:
        with output.progress("exporting segments", None) as advance:
            segments = await read_segments(client, advance)
        with output.progress("exporting campaigns", None) as advance:
            campaigns = await read_campaigns(client, advance)
        settings = await read_settings(client)

    def names_keyless(message: Message, kind: str) -> list[str]:
        doc = Document(kind, "", message)
        return [] if kind == "Segment" and not message.HasField("rule") else [
            r.key for r in segment_references(doc) if segments.keyless(r.key)]

    left_out = 0
    segment_docs = []
    for s in sorted(segments.by_id.values(), key=lambda s: (s.key, s.id)):
        if not s.key:
            output.warn(f"export: segment {s.id} ({s.name!r}) has no key: left out")
            left_out += 1
            continue
        if names_keyless(s, "Segment"):
            output.warn(f"export: segment {s.key} names a segment without a key: left out")
            left_out += 1
            continue
        segment_docs.append(segment_document(s, segments))
    ordered, _ = segment_order(segment_docs)
    campaign_docs = []
    for c in sorted(campaigns, key=lambda c: (c.key, c.id)):
        if not c.key:
            output.warn(f"export: campaign {c.id} ({c.name!r}) has no key: left out")
            left_out += 1
            continue
        keyless = [r for r in (*c.audience.include_segment_ids, *c.audience.exclude_segment_ids,
                               *(t.segment_entered_id for t in c.triggers)) if r and segments.keyless(r)]
        if keyless:
            output.warn(f"export: campaign {c.key} names segment {keyless[0]}, which has no key: left out")
            left_out += 1
            continue
        campaign_docs.append(campaign_document(c, segments))
    docs = [*ordered, settings_document(settings), *campaign_docs]
    text = dump_documents(docs)
    if args.file:
        Path(args.file).write_text(text, encoding="utf-8")
    else:
        print(text, end="")
    output.warn(f"export: {len(ordered)} segments, {len(campaign_docs)} campaigns and the app settings"
                + (f"; {left_out} left out (no key)" if left_out else "")
                + (f", written to {args.file}" if args.file else ""))
    return 0
