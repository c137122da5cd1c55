"""Operator-chosen keys of campaigns and segments: the one shape both services accept, so a
campaign file names either the same way. Pure."""

from __future__ import annotations

import re

from nudgelib.violations import FieldViolation

MAX_KEY = 64
KEY_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
KEY_RULE = f"must be 1 to {MAX_KEY} characters of a-z, 0-9, '.', '_' or '-', starting with a letter or digit"


def key_problems(key: str, path: str, required: bool = False) -> list[FieldViolation]:
    """The violation of a key at `path`; an empty key is fine unless `required`."""
    if not key:
        return [FieldViolation(path, "is required")] if required else []
    if KEY_RE.match(key) is None:
        return [FieldViolation(path, KEY_RULE)]
    return []
