"""Page sizes and page tokens for list RPCs (AIP-158).

A page size of 0 means the default, one larger than the maximum is capped (a negative one is
refused at the door, `request_checks`). A page token is opaque to clients: the parts of the
next page's position (a time, an id, an index), joined and base64url-encoded. Decoding one
this code did not make raises ValueError, which the servicer answers as INVALID_ARGUMENT on
`page_token`.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TypeVar

T = TypeVar("T")

_SEPARATOR = "\x1f"


def page_size(requested: int, default: int = 50, maximum: int = 100) -> int:
    if requested == 0:
        return default
    return min(requested, maximum)


def encode_token(*parts: str) -> str:
    return base64.urlsafe_b64encode(_SEPARATOR.join(parts).encode()).decode()


def decode_token(token: str, parts: int) -> list[str]:
    """The `parts` parts of a token made by `encode_token`; ValueError for anything else."""
    try:
        decoded = base64.urlsafe_b64decode(token.encode()).decode().split(_SEPARATOR)
    except (binascii.Error, UnicodeError, ValueError) as exc:
        raise ValueError("not a page token of this call") from exc
    if len(decoded) != parts or not all(decoded):
        raise ValueError("not a page token of this call")
    return decoded


def created_after(token: str) -> tuple[datetime, str] | None:
    """The position a token of a list in creation order names, (created time, id); None
    without a token; ValueError for a token this code did not make."""
    if not token:
        return None
    created, item_id = decode_token(token, 2)
    return datetime.fromisoformat(created), item_id


def created_page(found: Sequence[T], size: int, position: Callable[[T], tuple[datetime, str]]
                 ) -> tuple[Sequence[T], str]:
    """The page of a list in creation order, read with one row more than `size` (there is
    another page when it came), and the token of the next page ("" on the last)."""
    page = found[:size]
    if len(found) <= size:
        return page, ""
    created, item_id = position(page[-1])
    return page, encode_token(created.isoformat(), item_id)
