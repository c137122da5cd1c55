"""Vega-Lite specs to SVG with vl-convert (its own bundled engine: no browser, no network).
A rendering takes tens of milliseconds, so it runs in a worker thread, off the event loop."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import vl_convert


async def svg(spec: dict[str, Any]) -> str:
    return await asyncio.to_thread(vl_convert.vegalite_to_svg, json.dumps(spec))
