"""How the long-running commands (backfill, tick, relay, consume, serve) stop: SIGTERM, Ctrl-C.

A process does not always start with SIGTERM's default action. Dagster maps SIGTERM onto
whatever handles SIGINT after every in-process run (``dagster._utils.interrupts``), and a
background job of a non-interactive shell starts with SIGINT ignored: a parent that ran Dagster
(a test worker, a script) then hands SIGTERM down *ignored*, and a command that runs Dagster
in-process ignored it itself after its first run. So these commands install their own handler
for both signals, whatever they inherited; SIGINT stays ignored where it was (the shell's choice
for a background job), but SIGTERM, the signal systemd and operators stop services with, never
is. The command's last line says what the stop left, as the command knows it at that moment
(:func:`stop_point`).
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
# Where a command's stop state lives: in its click context, one per invocation.
_WHAT_STAYS = "desk.stop.what_stays"
_RECEIVED = "desk.stop.received"


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
    """Decorate a command that runs long: SIGTERM or SIGINT ends it within seconds.

    The command ends with one line, ``desk: <command> stopped by SIGTERM; <what_stays>``, and
    exits 128 + the signal's number (143 for SIGTERM, 130 for SIGINT; EXIT_CODES).

    Args:
        what_stays: what the operator finds after the stop (e.g. the events the broker did not
            confirm are still in the outbox), until the command says more (:func:`stop_point`).
    """

    def decorate(command: Callable[P, None]) -> Callable[P, None]:
        @functools.wraps(command)
        def run(*args: P.args, **kwargs: P.kwargs) -> None:
            context = click.get_current_context()
            context.meta[_WHAT_STAYS] = what_stays
            with _stop_signals() as received:
                context.meta[_RECEIVED] = received
                try:
                    command(*args, **kwargs)
                    return
                except Stopped as stop:
                    signum = stop.signum
                except _interrupts():
                    # A signal during an in-process Dagster run: Dagster's own handler took it
                    # and interrupted the run, so only the wake-up pipe knows which it was. A
                    # stop point may have read it first and raised Stopped, which Dagster's
                    # interrupt (the same signal, noted too) then replaced as the run ended.
                    signum = received.new() or received.last or signal.SIGINT
            click.echo(
                f"desk: {context.info_name} stopped by {signal.Signals(signum).name}; "
                f"{context.meta[_WHAT_STAYS]}",
                err=True,
            )
            sys.exit(exit_code(signum))

        return run

    return decorate


def stop_point(what_stays: str | None = None) -> None:
    """A point where the command may stop: from here on a stop leaves ``what_stays``.

    Call it after each in-process Dagster run. A stop signal that arrives while a run holds the
    handlers but runs no step (its last step done, its events being written) is only noted by
    Dagster, and forgotten when the run ends: the run succeeds and the command would carry on.
    Here the wake-up pipe still has the signal, and the command stops with its line.

    Args:
        what_stays: what a stop leaves from now on (the line's second half); None keeps it.

    Raises:
        Stopped: a stop signal arrived that no one acted on.
    """
    context = click.get_current_context()
    if what_stays is not None:
        context.meta[_WHAT_STAYS] = what_stays
    signum = context.meta[_RECEIVED].new()
    if signum is not None:
        raise Stopped(signum)


def _interrupts() -> tuple[type[BaseException], ...]:
    # Only a command that loaded Dagster can be interrupted inside one of its runs.
    dg = sys.modules.get("dagster")
    return (KeyboardInterrupt,) + (() if dg is None else (dg.DagsterExecutionInterruptedError,))


class _Received:
    """The stop signals the wake-up pipe reported: those since the last look, and the latest."""

    def __init__(self, reader: int, sigint_ignored: bool) -> None:
        self.reader = reader
        self.sigint_ignored = sigint_ignored
        self.last: int | None = None

    def new(self) -> int | None:
        """The latest stop signal that arrived since the last look, or None."""
        try:
            numbers = os.read(self.reader, 4096)
        except BlockingIOError:
            return None
        stops = [n for n in numbers if n in STOP_SIGNALS]
        if self.sigint_ignored:
            stops = [n for n in stops if n != signal.SIGINT]
        if stops:
            self.last = stops[-1]
        return stops[-1] if stops else None


@contextlib.contextmanager
def _stop_signals() -> Iterator[_Received]:
    """Raise Stopped on SIGTERM (and SIGINT unless ignored); yield the stop signals received.

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
    try:
        yield _Received(reader, sigint_ignored)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        signal.set_wakeup_fd(previous_fd)
        os.close(reader)
        os.close(writer)
