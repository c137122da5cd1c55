"""Page sizes for list RPCs (AIP-158): 0 means the default, larger than the maximum is capped."""

from __future__ import annotations


def page_size(requested: int, default: int = 50, maximum: int = 100) -> int:
    if requested == 0:
        return default
    return min(requested, maximum)
