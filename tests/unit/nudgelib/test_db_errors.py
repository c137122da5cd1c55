"""Which database failures a caller hears as UNAVAILABLE (retry) or INVALID_ARGUMENT, not INTERNAL."""

from __future__ import annotations

import asyncpg

from nudgelib.db import bad_value, unreachable


def test_a_lost_or_restarting_database_is_unreachable():
    for exc in (ConnectionRefusedError(), FileNotFoundError(), TimeoutError(),
                asyncpg.CannotConnectNowError("starting up"), asyncpg.AdminShutdownError("shutdown"),
                asyncpg.exceptions.ConnectionDoesNotExistError("closed in the middle of operation"),
                asyncpg.TooManyConnectionsError("too many"), asyncpg.InterfaceError("connection is closed"),
                asyncpg.InterfaceError("pool is closing"),
                # A connection the killed server dropped while its last error was being read.
                asyncpg.exceptions.InternalClientError("cannot switch to state 15; another operation (2) is in progress")):
        assert unreachable(exc), exc


def test_what_caused_an_error_counts_and_bugs_do_not():
    try:
        try:
            raise ConnectionResetError()
        except ConnectionResetError as inner:
            raise RuntimeError("wrapped") from inner
    except RuntimeError as outer:
        assert unreachable(outer)
    for exc in (ValueError(), KeyError("x"), asyncpg.UniqueViolationError("dup"),
                asyncpg.InterfaceError("cannot perform operation: another operation is in progress"),
                asyncpg.exceptions.InternalClientError("ConnectionHolder.release() called on a free connection holder")):
        assert not unreachable(exc), exc


def test_a_value_the_database_refuses_is_bad_input():
    assert bad_value(asyncpg.DataError("invalid input for query argument $1"))
    assert bad_value(asyncpg.exceptions.NumericValueOutOfRangeError("out of range"))
    assert not bad_value(asyncpg.UniqueViolationError("dup"))
