"""The `desk` command: backfill; positions, rankings, concentration, quarantine; events."""

import os
import sys

import click

from desk_pipeline.cli.exits import EXIT_PIPE, failure, usage_error
from desk_pipeline.cli.group import cli
from desk_pipeline.cli.terminal import utf8_arguments, write_any_text

__all__ = ["cli", "main"]


def main() -> None:
    """Entry point: a failure is one line on stderr, `desk: <what failed>; <what to check>`.

    The exit code says which kind of failure (EXIT_CODES); with --debug the error is raised
    instead, traceback and all (a usage error, a date outside the calendar included, stays one
    line, 2). A command given no arguments where it needs some (`desk` alone, or with only -v /
    --debug) is the exception: its whole help goes to stderr, as a usage error (2). No
    character the terminal's encoding lacks fails a command (``write_any_text``), nor one of
    its arguments (``utf8_arguments``).
    """
    write_any_text()
    debug = False
    try:
        with cli.make_context("desk", utf8_arguments(sys.argv[1:])) as ctx:
            debug = ctx.params["debug"]
            cli.invoke(ctx)
    except click.exceptions.Exit as done:  # --help
        sys.exit(done.exit_code)
    except click.exceptions.NoArgsIsHelpError as bare:
        bare.show()
        sys.exit(bare.exit_code)
    except BrokenPipeError:
        # The reader went away (`desk ranking --json | head`): it had all it wanted. stdout is
        # pointed at /dev/null so that the interpreter's own flush at exit cannot fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(EXIT_PIPE)
    except (KeyboardInterrupt, click.exceptions.Abort):
        click.echo("desk: interrupted", err=True)
        sys.exit(130)
    except Exception as err:
        # A usage error is the user's line, not the desk's: no traceback, even with --debug,
        # and its exit code stays the contract's 2.
        if debug and not usage_error(err):
            raise
        code, line = failure(err)
        click.echo(f"desk: {line}", err=True)
        sys.exit(code)
