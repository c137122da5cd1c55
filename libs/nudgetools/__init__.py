"""Operator and development tooling: the `nudge` CLI, the local runner (`nudge run`), the
services as processes, demo data, embedded PostgreSQL and proto generation.

Nothing here is imported by a service or by `nudgelib`; tests/unit/test_import_graph.py
keeps it so.
"""

import os

# These tools fork only to exec (PostgreSQL's pg_ctl, the services as processes), often while
# gRPC threads run in the same process. gRPC's fork handlers are for children that go on using
# gRPC; run in a child that merely execs they have crashed it (pg_ctl died with SIGSEGV once in
# the outage test). Set before grpc is first imported, as grpc reads it then.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "0")
