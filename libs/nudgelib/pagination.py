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
