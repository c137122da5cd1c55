"""Moved to `nudgetools.protogen`. This name stays only until tests/unit/test_protos.py
imports it from there; then it goes."""

from nudgetools.protogen import generate  # noqa: F401
