"""A stable bucket per user: the same user, salt and modulo give the same number on every
replica and in every release (random-bucket segments, variant assignment).

The number is persisted in effect (a user's segment or variant follows from it), so the
formula must never change: sha256 of "salt:user_id", its first 8 bytes as a big-endian
unsigned number, modulo N. Segmentation's SQL compiler computes the same in PostgreSQL.
"""

from __future__ import annotations

import hashlib


def bucket(salt: str, user_id: str, modulo: int) -> int:
    """A number in [0, modulo) for the user under this salt; modulo must be positive."""
    if modulo <= 0:
        raise ValueError(f"modulo must be positive, not {modulo}")
    digest = hashlib.sha256(f"{salt}:{user_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % modulo
