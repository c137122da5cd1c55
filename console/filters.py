"""Jinja filters: how times, enum values and rates read on a page."""

from __future__ import annotations

from typing import Any

from jinja2 import Environment


def enum_name(value: str, prefix: str = "") -> str:
    """`CAMPAIGN_STATUS_ACTIVE` → `active`."""
    text = str(value)
    if prefix and text.startswith(prefix):
        text = text[len(prefix):]
    return text.replace("_", " ").lower()


def stamp(message: Any, name: str) -> str:
    if not message.HasField(name):
        return ""
    return getattr(message, name).ToDatetime().strftime("%Y-%m-%d %H:%M UTC")


def pct(value: float) -> str:
    return f"{value:.1%}"


def signed_pct(value: float) -> str:
    return f"{value:+.1%}"


def install(env: Environment) -> None:
    env.filters.update(enum_name=enum_name, pct=pct, signed_pct=signed_pct)
    env.globals.update(stamp=stamp)
