"""How `desk` ends: its exit codes and the one line that explains a failure."""

import sys

import click

from desk_pipeline.domain.errors import (
    DeskPipelineError,
    InvalidRangeError,
    NoEndOfDayError,
    SettingsError,
)

# What `desk` exits with; `desk --help` and the README list them.
EXIT_CODES = {
    0: "done",
    1: "no answer: nothing stored for that book and day, a check, run or relay failed",
    2: "usage or configuration: a bad option or date, a DESK_* setting, no warehouse there",
    130: "interrupted",
    141: "the output's reader went away (as `| head` does); nothing printed",
    143: "stopped by SIGTERM (kill, systemd); its last line says what the stop left",
}
# 128 + SIGPIPE, what a shell reports for a command a closed pipe stopped.
EXIT_PIPE = 141


def _first_line(text: object) -> str:
    lines = str(text).strip().splitlines()
    return lines[0] if lines else ""


def usage_error(err: Exception) -> bool:
    """A mistake on the command line: a bad option, or a date the desk calendar does not hold.

    Exit 2 and one line, even with --debug: the line is the user's, not the desk's.
    """
    return isinstance(err, click.UsageError | InvalidRangeError)


def failure(err: Exception) -> tuple[int, str]:
    """The exit code (EXIT_CODES) and the one line that explain ``err``."""
    if isinstance(err, SettingsError):  # one line per bad DESK_* variable
        return 2, "\ndesk: ".join(err.lines)
    if isinstance(err, click.UsageError):
        command = err.ctx.command_path if err.ctx else "desk"
        return 2, f"{_first_line(err.format_message())} (see `{command} --help`)"
    if isinstance(err, click.ClickException):
        return err.exit_code, _first_line(err.format_message())
    # Only a command that opened the warehouse can fail with its errors: `desk --help`, a usage
    # error or `desk --version` need not import it (pandas, SQLAlchemy: ~1 s before any output).
    warehouse = sys.modules.get("desk_pipeline.adapters.warehouse")
    unusable = (
        ()
        if warehouse is None
        else (warehouse.NoWarehouseError, warehouse.WarehouseUnreachableError)
    )
    if isinstance(err, (InvalidRangeError, *unusable)):
        # InvalidRangeError: a reversed range, a day before DESK_START_DATE or after today.
        # WarehouseUnreachableError: the connection dropped or was refused mid-command.
        return 2, _first_line(err)
    # Only a command that loaded Dagster can fail with its errors; a read never imports it.
    dg = sys.modules.get("dagster")
    if dg is not None and isinstance(err, dg.DagsterExecutionStepExecutionError):
        return 1, (
            f"run failed in step {err.step_key}: {_first_line(err.user_exception or err)}; "
            "the run is in the Dagster UI, --verbose shows its log and --debug the traceback"
        )
    if dg is not None and isinstance(err, dg.Failure):
        # An asset's error no retry would cure (defs/policies.retried_if_transient): asset, error.
        return 1, (
            f"a run failed in {_first_line(err.description)}; the run is in the Dagster UI, "
            "--verbose shows its log and --debug the traceback"
        )
    if dg is not None and isinstance(err, dg.DagsterError):
        # A run failed after its retries: Dagster's "Exceeded max_retries of 3" is caused by
        # the last attempt's error, which says why.
        attempts = getattr(err, "user_code_process_error_infos", None) or []
        last = attempts[-1] if attempts else None
        why = _first_line(last.message if last else err)
        if last is not None and last.cause is not None:
            why = f"{_first_line(last.cause.message)} ({why})"
        return 1, f"a run failed: {why}; the run is in the Dagster UI, --verbose shows its log"
    if isinstance(err, NoEndOfDayError):
        # The message says what is stored for the book (queries.nothing_stored); the whole
        # list is one command away.
        return 1, f"{_first_line(err)}; `desk books` lists the stored books and days"
    if isinstance(err, DeskPipelineError):
        return 1, _first_line(err)
    return 1, f"{type(err).__name__}: {_first_line(err)} (--debug shows the traceback)"
