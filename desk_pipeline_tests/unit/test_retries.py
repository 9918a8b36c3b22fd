"""Which asset failures Dagster retries, and the one line a failed run ends `desk` with.

Dagster's RetryPolicy retries whatever an asset raises; the desk's assets let it retry only what
a retry may cure (a dropped connection, a failover, a locked database) and fail at once, naming
the asset and the error, on anything else.
"""

import sqlite3

import dagster as dg
import psycopg
import pytest
import sqlalchemy as sa
from dagster._core.errors import DagsterMaxRetriesExceededError
from dagster._utils.error import SerializableErrorInfo

from desk_pipeline.adapters.transient import is_transient
from desk_pipeline.adapters.warehouse import WarehouseError
from desk_pipeline.cli.exits import failure
from desk_pipeline.defs.policies import retried_if_transient
from desk_pipeline.domain.errors import InvalidRangeError


def wrapped(orig: BaseException, kind: type[sa.exc.DBAPIError] = sa.exc.OperationalError):
    """``orig`` as SQLAlchemy raises it: its own error, caused by the driver's."""
    try:
        raise kind("SELECT 1", {}, orig) from orig
    except sa.exc.DBAPIError as err:
        return err


def desk_error(cause: BaseException) -> WarehouseError:
    """A warehouse error raised from ``cause``, as the adapters chain driver errors."""
    try:
        raise WarehouseError("eod_positions: write failed") from cause
    except WarehouseError as err:
        return err


TRANSIENT = {
    "connection reset": ConnectionResetError("reset by peer"),
    "timeout": TimeoutError("timed out"),
    "PostgreSQL gone": wrapped(psycopg.OperationalError("server closed the connection")),
    "serialisation failure": wrapped(psycopg.errors.SerializationFailure("could not serialize")),
    "deadlock": wrapped(psycopg.errors.DeadlockDetected("deadlock detected")),
    "closed connection": wrapped(
        psycopg.InterfaceError("the connection is closed"), sa.exc.InterfaceError
    ),
    "SQLite locked": wrapped(sqlite3.OperationalError("database is locked")),
    "SQLite locked, unwrapped": sqlite3.OperationalError("database is locked"),
    "another driver's OperationalError": wrapped(Exception("server closed the connection")),
    "invalidated": sa.exc.DBAPIError(
        "SELECT 1", {}, Exception("gone"), connection_invalidated=True
    ),
    "no pooled connection": sa.exc.TimeoutError("QueuePool limit reached"),
    "a desk error from a dropped connection": desk_error(ConnectionResetError("reset")),
}
DETERMINISTIC = {
    "a bug": ValueError("Cannot infer dst time from 2026-10-25 00:00:00"),
    "a missing key": KeyError("book_id"),
    "a schema behind the code": wrapped(sqlite3.OperationalError("no such column: x")),
    "SQL syntax": wrapped(sqlite3.OperationalError('near "SELEC": syntax error')),
    "an undefined column": wrapped(psycopg.errors.UndefinedColumn("x"), sa.exc.ProgrammingError),
    "an unbindable parameter": wrapped(
        sqlite3.InterfaceError("Error binding"), sa.exc.InterfaceError
    ),
    "a desk error of its own": WarehouseError("eod_positions: the schema is newer"),
    "a desk error from a bug": desk_error(ValueError("bad")),
    "a bad range": InvalidRangeError("reversed"),
}


@pytest.mark.parametrize("err", TRANSIENT.values(), ids=TRANSIENT.keys())
def test_a_failure_a_retry_may_cure_is_transient(err):
    assert is_transient(err)


@pytest.mark.parametrize("err", DETERMINISTIC.values(), ids=DETERMINISTIC.keys())
def test_a_failure_that_repeats_itself_is_not(err):
    assert not is_transient(err)


def raising(err: BaseException):
    def eod_positions() -> dg.MaterializeResult:
        """The asset's own docstring."""
        raise err

    return retried_if_transient(eod_positions)


def test_a_deterministic_error_becomes_a_failure_dagster_does_not_retry_naming_asset_and_error():
    cause = DETERMINISTIC["a bug"]
    with pytest.raises(dg.Failure) as failed:
        raising(cause)()
    assert not failed.value.allow_retries
    assert failed.value.description == (
        "eod_positions: ValueError: Cannot infer dst time from 2026-10-25 00:00:00"
    )
    assert failed.value.__cause__ is cause


@pytest.mark.parametrize(
    "err", [TRANSIENT["PostgreSQL gone"], KeyboardInterrupt(), dg.Failure("own")]
)
def test_a_transient_error_an_interrupt_or_dagsters_own_pass_unchanged(err):
    with pytest.raises(type(err)) as raised:
        raising(err)()
    assert raised.value is err


def test_the_wrapped_body_keeps_its_name_and_docstring_for_dagster():
    body = raising(ValueError())
    assert (body.__name__, body.__doc__) == ("eod_positions", "The asset's own docstring.")


def test_a_run_that_failed_at_once_ends_desk_with_the_asset_and_its_error():
    with pytest.raises(dg.Failure) as failed:
        raising(DETERMINISTIC["a bug"])()
    assert failure(failed.value) == (
        1,
        "a run failed in eod_positions: ValueError: Cannot infer dst time from 2026-10-25 "
        "00:00:00; the run is in the Dagster UI, --verbose shows its log and --debug the "
        "traceback",
    )


def test_a_run_that_failed_after_its_retries_ends_desk_with_the_last_attempts_error():
    cause = SerializableErrorInfo("OperationalError: database is locked\n", [], "OperationalError")
    exceeded = SerializableErrorInfo("Exceeded max_retries of 3\n", [], "RetryRequested", cause)
    err = DagsterMaxRetriesExceededError.from_error_info(exceeded)
    assert failure(err) == (
        1,
        "a run failed: OperationalError: database is locked (Exceeded max_retries of 3); the "
        "run is in the Dagster UI, --verbose shows its log",
    )
