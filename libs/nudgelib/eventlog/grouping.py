"""How the items read from a log become as few consumer calls as possible without reordering
a lane.

Items arrive in position order within each lane. Order matters only within a lane (a user's
items are all in one lane); a call carries one app and one kind (e.g. events or profile
updates). Each item joins the earliest call of its app and kind that comes no earlier than the
call holding the previous item of its lane, so calls sent one after another in list order
replay every lane in order, while a single-app event stream becomes a single call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


class Row(Protocol):
    def __getitem__(self, key: str): ...


@dataclass
class Call:
    app_id: str
    kind: str
    rows: list = field(default_factory=list)


def group(rows: list[Row]) -> list[Call]:
    calls: list[Call] = []
    # Lane -> index of the call holding that lane's latest row so far.
    floor: dict[int, int] = {}
    for row in rows:
        key = (row["app_id"], row["kind"])
        start = floor.get(row["lane"], 0)
        index = next((i for i in range(start, len(calls)) if (calls[i].app_id, calls[i].kind) == key), None)
        if index is None:
            calls.append(Call(*key))
            index = len(calls) - 1
        calls[index].rows.append(row)
        floor[row["lane"]] = index
    return calls
