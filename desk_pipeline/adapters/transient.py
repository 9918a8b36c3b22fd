"""Which failures of the outside world a retry may cure, and which it would only repeat."""

import sqlite3

import psycopg
import sqlalchemy as sa

# A dropped or refused connection, a timeout (SQLAlchemy's: no pooled connection came free).
_PASSING = (ConnectionError, TimeoutError, sa.exc.TimeoutError)
# SQLite's OperationalError also says "no such column" and "syntax error"; only these pass.
_SQLITE_PASSING = ("database is locked", "database table is locked", "busy")


def is_transient(err: BaseException) -> bool:
    """Whether ``err``, or an error it was raised from, may pass on a retry.

    Transient: a connection dropped, refused or timed out, a PostgreSQL failover, serialisation
    failure or deadlock (psycopg's OperationalError), a locked SQLite database. Anything else
    (a bug, bad data, a schema the code does not match) fails the same way every time.
    """
    seen: set[int] = set()
    cause: BaseException | None = err
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if _passes(cause):
            return True
        cause = cause.__cause__ or cause.__context__
    return False


def _passes(err: BaseException) -> bool:
    if isinstance(err, _PASSING):
        return True
    if isinstance(err, sa.exc.DBAPIError) and err.connection_invalidated:
        return True
    # The driver's own error, whether SQLAlchemy wrapped it or the bulk paths met it directly.
    driver = err.orig if isinstance(err, sa.exc.DBAPIError) else err
    if isinstance(driver, sqlite3.OperationalError):
        return any(words in str(driver) for words in _SQLITE_PASSING)
    # DB-API's OperationalError is the database's trouble, not the statement's (a disconnect,
    # a failover, a deadlock); psycopg's InterfaceError a closed connection (sqlite3's is a
    # parameter it cannot bind).
    return isinstance(err, sa.exc.OperationalError) or isinstance(
        driver, psycopg.OperationalError | psycopg.InterfaceError
    )
