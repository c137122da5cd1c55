"""Moved to `nudgetools.demo`. This name stays only until the tests that still import it from
here (decision's unit tests, tests/service) import `nudgetools`; then it goes."""

from nudgetools.demo import seed, signup_segment, welcome_campaign  # noqa: F401
