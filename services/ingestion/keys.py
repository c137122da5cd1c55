"""How users and requests are keyed: the outbox lane of a user and the id an Identify is
deduplicated on. (An event's deduplication key is computed in SQL, see store.py.)

Pure functions, stable across processes and releases (crc32 and BLAKE2b, not Python's
salted hash()), because every ingestion replica must agree on them.
"""

from __future__ import annotations

import hashlib
import zlib

# Users are spread over this many outbox lanes; one dispatch loop at a time drains a lane,
# in id order, which is what keeps each user's events in order across replicas. It is part of
# the stored data (rows carry their lane), so it is a constant rather than a setting: replicas
# with different values would split one user over two lanes. 16 lanes allow up to 16 loops
# per consumer to forward in parallel.
LANES = 16


def lane_of(app_id: str, user_id: str) -> int:
    return zlib.crc32(f"{app_id}\x1f{user_id}".encode()) % LANES


def update_id(user_id: str, request_id: str) -> str:
    """The id segmentation deduplicates an Identify on: a retried request (same request_id)
    maps to the same id; the user is part of it so two users' request ids cannot collide."""
    digest = hashlib.blake2b(f"{user_id}\x1f{request_id}".encode(), digest_size=16).hexdigest()
    return f"rq_{digest}"
