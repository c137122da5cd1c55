"""Moved: the processes to `nudgetools.cluster`, the schemas to `nudgetools.database`. This
name stays only until the service tests that still import it from here import `nudgetools`;
then it goes."""

from nudgetools.database import migrate_all, service_migrations  # noqa: F401
