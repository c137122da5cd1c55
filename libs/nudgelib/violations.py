"""A bad field of a request, as the pure validation rules report it. Kept apart from
`errors` (which needs grpc for status codes) so that validation stays free of I/O."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FieldViolation:
    field: str  # the path in the request, e.g. `campaign.triggers[0].delay`
    description: str
