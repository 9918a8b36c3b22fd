"""`desk relay` and `desk consume` stop on SIGTERM whatever signal dispositions they inherited."""

import os
import signal
import warnings
from collections.abc import Callable, Iterator

import click
import dagster as dg
import pytest

from desk_pipeline.cli.signals import stops_on_signals


@pytest.fixture
def inherited_ignored() -> Iterator[None]:
    """SIGINT and SIGTERM ignored, as a background job of a shell that ran Dagster gets them."""
    before = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
    yield
    for signum, handler in before.items():
        signal.signal(signum, handler)


def run_until_signalled(body: Callable[[], None], capsys) -> tuple[int, str]:
    @click.command("relay")
    @stops_on_signals("events wait")
    def command() -> None:
        body()

    with pytest.raises(SystemExit) as stopped:
        command.main([], prog_name="relay", standalone_mode=False)
    code = stopped.value.code
    assert isinstance(code, int)
    return code, capsys.readouterr().err.strip().splitlines()[-1]


def sigterm_self() -> None:
    os.kill(os.getpid(), signal.SIGTERM)
    signal.sigtimedwait([], 0)  # a checkpoint: the handler runs before the next bytecode
    raise AssertionError("SIGTERM did not stop the command")


def one_dagster_run(then: Callable[[], None] = lambda: None) -> None:
    @dg.asset
    def a() -> None:
        then()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dg.materialize([a], raise_on_error=True)


def test_sigterm_stops_a_command_that_inherited_it_ignored(inherited_ignored, capsys):
    assert run_until_signalled(sigterm_self, capsys) == (
        143,
        "desk: relay stopped by SIGTERM; events wait",
    )


def test_sigterm_still_stops_it_after_an_in_process_dagster_run(inherited_ignored, capsys):
    # Dagster copies SIGINT's handler onto SIGTERM after a run; SIGINT is ignored here.
    def rank_then_wait() -> None:
        one_dagster_run()
        sigterm_self()

    assert run_until_signalled(rank_then_wait, capsys)[0] == 143


def test_sigterm_during_an_in_process_dagster_run_stops_it_as_sigterm(inherited_ignored, capsys):
    # Dagster's handler takes the signal and interrupts the run; the exit still says SIGTERM.
    assert run_until_signalled(lambda: one_dagster_run(then=sigterm_self), capsys) == (
        143,
        "desk: relay stopped by SIGTERM; events wait",
    )


def test_ctrl_c_stops_it_with_130_unless_sigint_was_ignored(capsys):
    def interrupt_self() -> None:
        os.kill(os.getpid(), signal.SIGINT)
        signal.sigtimedwait([], 0)
        raise AssertionError("SIGINT did not stop the command")

    assert run_until_signalled(interrupt_self, capsys) == (
        130,
        "desk: relay stopped by SIGINT; events wait",
    )


def test_the_command_leaves_the_signal_handlers_as_it_found_them(inherited_ignored, capsys):
    run_until_signalled(sigterm_self, capsys)
    assert signal.getsignal(signal.SIGTERM) == signal.getsignal(signal.SIGINT) == signal.SIG_IGN
