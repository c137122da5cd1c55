"""SQL for segmentation's own schema, a module per group of tables:

- profiles: profiles and event counters;
- memberships: stored memberships, and the outbox that announces their changes;
- definitions: segments and their versions, each app's rules version, request-id responses;
- audiences: whole-population statements (audience counts, member pages, recomputing after
  a rules change, dropping counters no rule reads) and what a new counter's past is read up
  to (the positions of ingestion's log applied here).

Every batch is one statement (unnest), never a query per item. The modules return rows and
the plain types of `model`; compiling rules (the Catalog) is for the pure `catalog`.

Locking, so that memberships diff against exactly what was announced before:
- a change to users takes the app's advisory lock shared, then the users' profile rows in
  user id order (the upsert that writes them), so concurrent batches cannot deadlock;
- a change to segment rules takes the app's lock exclusive: no user change of the app runs
  while memberships are recomputed for the new rules.
"""

from __future__ import annotations

from collections.abc import Iterable

SEGMENTS_CHANNEL = "nudge_segments"
USERS_CHANNEL = "nudge_segmentation_users"
OUTBOX_CHANNEL = "nudge_segmentation_outbox"


def int_array(values: Iterable[int] | None) -> str | None:
    """An integer[] parameter as text: unnest cannot take an array of arrays."""
    return None if values is None else "{" + ",".join(str(v) for v in values) + "}"
