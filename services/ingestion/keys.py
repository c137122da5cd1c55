"""The id an Identify is deduplicated on. (An event's deduplication key is computed in SQL,
see store.py; a user's lane in the log is nudgelib.eventlog.lanes.)

Pure functions, stable across processes and releases (BLAKE2b, not Python's salted hash()),
because every ingestion replica must agree on them.
"""

from __future__ import annotations

import hashlib


def update_id(user_id: str, request_id: str) -> str:
    """The id segmentation deduplicates an Identify on: a retried request (same request_id)
    maps to the same id; the user is part of it so two users' request ids cannot collide."""
    digest = hashlib.blake2b(f"{user_id}\x1f{request_id}".encode(), digest_size=16).hexdigest()
    return f"rq_{digest}"
