"""Which lane of a log a user's items go to.

One reader at a time takes a lane, in position order, which is what keeps each user's items in
order across replicas. Stable across processes and releases (crc32, not Python's salted
hash()), because every replica must agree; and part of the stored data (items carry their
lane), so a constant rather than a setting: replicas with different values would split one
user over two lanes. 16 lanes allow up to 16 reader loops per consumer in parallel.
"""

from __future__ import annotations

import zlib

LANES = 16


def lane_of(app_id: str, user_id: str) -> int:
    return zlib.crc32(f"{app_id}\x1f{user_id}".encode()) % LANES
