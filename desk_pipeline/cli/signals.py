"""How the commands that run until stopped (relay, consume) stop: on SIGTERM or Ctrl-C, promptly.

A process does not always start with SIGTERM's default action. Dagster maps SIGTERM onto
whatever handles SIGINT after every in-process run (``dagster._utils.interrupts``), and a
background job of a non-interactive shell starts with SIGINT ignored: a parent that ran Dagster
(a test worker, a script) then hands SIGTERM down *ignored*, and `desk consume` ignored it
itself after its first ranking run. So these commands install their own handler for both
signals, whatever they inherited; SIGINT stays ignored where it was (the shell's choice for a
background job), but SIGTERM, the signal systemd and operators stop services with, never is.
"""

import contextlib
import functools
import os
import signal
import sys
from collections.abc import Callable, Iterator
from typing import ParamSpec

import click

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
P = ParamSpec("P")


def exit_code(signum: int) -> int:
    """128 + the signal's number, what a shell reports for a command a signal stopped."""
    return 128 + signum


class Stopped(KeyboardInterrupt):
    """A stop signal arrived; raised where the command was, as Ctrl-C's KeyboardInterrupt is.

    A KeyboardInterrupt, so code that cleans up after Ctrl-C (Dagster's step execution among it)
    does the same for SIGTERM, and ``except Exception`` never swallows it.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def stops_on_signals(what_stays: str) -> Callable[[Callable[P, None]], Callable[P, None]]:
    """Decorate a command that runs until stopped: SIGTERM or SIGINT ends it within seconds.

    The command ends with one line, ``desk: <command> stopped by SIGTERM; <what_stays>``, and
    exits 128 + the signal's number (143 for SIGTERM, 130 for SIGINT; EXIT_CODES).

    Args:
        what_stays: what the operator finds after the stop (e.g. the events the broker did not
            confirm are still in the outbox).
    """

    def decorate(command: Callable[P, None]) -> Callable[P, None]:
        @functools.wraps(command)
        def run(*args: P.args, **kwargs: P.kwargs) -> None:
            with _stop_signals() as received:
                try:
                    command(*args, **kwargs)
                    return
                except Stopped as stop:
                    signum = stop.signum
                except _interrupts():
                    # A signal during an in-process Dagster run: Dagster's own handler took it
                    # and interrupted the run, so only the wake-up pipe knows which it was.
                    signum = received() or signal.SIGINT
            name = click.get_current_context().info_name
            click.echo(
                f"desk: {name} stopped by {signal.Signals(signum).name}; {what_stays}", err=True
            )
            sys.exit(exit_code(signum))

        return run

    return decorate


def _interrupts() -> tuple[type[BaseException], ...]:
    # Only a command that loaded Dagster can be interrupted inside one of its runs.
    dg = sys.modules.get("dagster")
    return (KeyboardInterrupt,) + (() if dg is None else (dg.DagsterExecutionInterruptedError,))


@contextlib.contextmanager
def _stop_signals() -> Iterator[Callable[[], int | None]]:
    """Raise Stopped on SIGTERM (and SIGINT unless ignored); yield "which stop signal came last".

    The signal numbers also go to a wake-up pipe (``signal.set_wakeup_fd``), which Python writes
    whichever Python-level handler is installed at the time, Dagster's included.
    """
    sigint_ignored = signal.getsignal(signal.SIGINT) == signal.SIG_IGN

    def stop(signum: int, _frame: object) -> None:
        if signum == signal.SIGINT and sigint_ignored:
            return
        raise Stopped(signum)

    reader, writer = os.pipe()
    for end in (reader, writer):
        os.set_blocking(end, False)
    previous_fd = signal.set_wakeup_fd(writer, warn_on_full_buffer=False)
    # One function for both: Dagster copies SIGINT's handler onto SIGTERM after each run.
    previous = {signum: signal.signal(signum, stop) for signum in STOP_SIGNALS}

    def received() -> int | None:
        try:
            numbers = os.read(reader, 4096)
        except BlockingIOError:
            return None
        stops = [n for n in numbers if n in STOP_SIGNALS]
        if sigint_ignored:
            stops = [n for n in stops if n != signal.SIGINT]
        return stops[-1] if stops else None

    try:
        yield received
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        signal.set_wakeup_fd(previous_fd)
        os.close(reader)
        os.close(writer)
