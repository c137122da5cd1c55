"""The app's segments, campaigns and settings as the services hold them, read through the
client, and turned into documents (segment ids mapped back to keys)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import grpc
from google.protobuf.message import Message

from nudge_client import AsyncNudge
from nudge_client.protos import decision
from nudgetools.files import Document, from_message

PAGE = 100


@dataclass
class Segments:
    """Every segment of the app, and its key <-> id maps. A segment without a key is shown
    as `(segment ID: no key)` where a document would name it, so a diff can say so."""

    by_id: dict[str, Message] = field(default_factory=dict)
    id_of: dict[str, str] = field(default_factory=dict)   # key -> id
    key_of: dict[str, str] = field(default_factory=dict)  # id -> key, or the placeholder

    def add(self, segment: Message) -> None:
        self.by_id[segment.id] = segment
        if segment.key:
            self.id_of[segment.key] = segment.id
            self.key_of[segment.id] = segment.key
        else:
            self.key_of[segment.id] = no_key(segment.id)

    def keyless(self, segment_id: str) -> bool:
        return self.key_of.get(segment_id, "") == no_key(segment_id)


def no_key(segment_id: str) -> str:
    return f"(segment {segment_id}: no key)"


async def read_segments(client: AsyncNudge, advance: Callable[[int], None] = lambda n: None) -> Segments:
    out = Segments()
    token = ""
    while True:
        page = await client.list_segments(page_size=PAGE, page_token=token)
        for s in page.segments:
            out.add(s)
        advance(len(page.segments))
        token = page.next_page_token
        if not token:
            return out


async def read_campaigns(client: AsyncNudge, advance: Callable[[int], None] = lambda n: None) -> list[Message]:
    """Every campaign that is not archived (an archived one is over, and has given up its key)."""
    out = []
    token = ""
    while True:
        page = await client.list_campaigns(page_size=PAGE, page_token=token)
        out += [c for c in page.campaigns if c.status != decision.CAMPAIGN_STATUS_ARCHIVED]
        advance(len(page.campaigns))
        token = page.next_page_token
        if not token:
            return out


async def campaign_by_key(client: AsyncNudge, key: str) -> Message | None:
    """The non-archived campaign with this key, or None (the upsert's Get: NOT_FOUND → create)."""
    try:
        return (await client.get_campaign(key=key)).campaign
    except grpc.aio.AioRpcError as exc:
        if exc.code() == grpc.StatusCode.NOT_FOUND:
            return None
        raise


async def read_settings(client: AsyncNudge) -> Message:
    return (await client.get_app_settings()).settings


def segment_document(segment: Message, segments: Segments) -> Document:
    return from_message("Segment", segment, segment.key, segments.key_of)


def campaign_document(campaign: Message, segments: Segments) -> Document:
    # Ids of deleted segments cannot be left in a campaign (segmentation refuses the delete),
    # but one the map does not know still reads as itself rather than failing the command.
    key_of = {**{i: i for i in _referenced(campaign)}, **segments.key_of}
    return from_message("Campaign", campaign, campaign.key, key_of)


def settings_document(settings: Message) -> Document:
    return from_message("AppSettings", settings)


def _referenced(campaign: Message) -> list[str]:
    a = campaign.audience
    return [*a.include_segment_ids, *a.exclude_segment_ids,
            *(t.segment_entered_id for t in campaign.triggers if t.segment_entered_id)]
