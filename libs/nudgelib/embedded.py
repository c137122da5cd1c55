"""Moved to `nudgetools.embedded`. This name stays only until the service tests that still
use it from here import the new one; then it goes."""

from nudgetools.embedded import ensure_database, start  # noqa: F401
