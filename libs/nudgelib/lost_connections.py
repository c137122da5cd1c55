"""How asyncpg tells that the server dropped a connection under its user, beyond its
connection errors: a killed or crashed PostgreSQL ends its backends mid-statement, and asyncpg
then says so on the connection's next use. Both the RPC path (db.unreachable: UNAVAILABLE) and
the background loops (loops: back off) count these as the database away, not as bugs."""

from __future__ import annotations

import asyncpg


def connection_lost(exc: BaseException) -> bool:
    """Whether `exc` itself is asyncpg reporting a lost connection."""
    if isinstance(exc, asyncpg.InterfaceError):
        # "the underlying connection is closed", "pool is closing"; not "another operation is
        # in progress" (one connection used by two tasks at once: a bug).
        return "closed" in str(exc) or "closing" in str(exc)
    # A connection dropped while asyncpg was still reading the server's last error may be
    # handed out once more before its close is seen: its next statement finds the protocol
    # still busy. asyncpg's other InternalClientErrors (pool misuse) are bugs.
    return isinstance(exc, asyncpg.exceptions.InternalClientError) and str(exc).startswith("cannot switch to state")
