"""The event loop every Nudge process runs on.

uvloop by default: the services spend much of their time in socket callbacks (gRPC's
completion queue, asyncpg's protocol), and uvloop's libuv loop runs those with less
overhead than asyncio's pure-Python one (about 10% less CPU per context lookup in
segmentation). `NUDGE_EVENT_LOOP=asyncio` runs the standard loop instead, for debugging
or platforms uvloop does not support.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine
from typing import Any, TypeVar

from nudgelib.config import event_loop_from_env

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T], event_loop: str | None = None) -> T:
    """asyncio.run on `event_loop`, by default the one NUDGE_EVENT_LOOP names."""
    if (event_loop or event_loop_from_env(os.environ)) == "uvloop":
        import uvloop

        return uvloop.run(main)
    return asyncio.run(main)
