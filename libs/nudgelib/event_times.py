"""How far ahead of the receiving clock an event may be dated, the same wherever a time an
event carries is accepted: ingestion's events, and the interactions delivery turns into
events (one delivery took that ingestion would refuse later could only vanish there).

No bound for the past beyond protobuf's Timestamp range (the request door's): a producer may
send what happened long ago, e.g. a backfill."""

from __future__ import annotations

from datetime import timedelta

# Producers' clocks drift; events stamped further ahead than this are refused.
MAX_FUTURE_SKEW = timedelta(minutes=5)
FUTURE_RULE = f"is more than {int(MAX_FUTURE_SKEW.total_seconds() // 60)} minutes in the future"
