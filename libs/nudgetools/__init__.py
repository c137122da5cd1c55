"""Operator and development tooling: the `nudge` CLI, the local runner (`nudge run`), the
services as processes, demo data, embedded PostgreSQL and proto generation.

Nothing here is imported by a service or by `nudgelib`; tests/unit/test_import_graph.py
keeps it so.
"""
