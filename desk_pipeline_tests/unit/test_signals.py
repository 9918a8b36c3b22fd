"""The long-running desk commands stop on SIGTERM whatever signal dispositions they inherited."""

import datetime as dt
import os
import re
import signal
import warnings
from collections.abc import Callable, Iterator

import click
import dagster as dg
import pytest
from dagster._utils import interrupts
from hypothesis import given
from hypothesis import strategies as st

from desk_pipeline.cli.runs import backfill_left
from desk_pipeline.cli.signals import stop_point, stops_on_signals
from desk_pipeline.commands.requests import STOP_CHECK_LOGGER, stop_checked


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


def test_a_stop_signal_a_dagster_run_only_noted_stops_the_command_at_its_next_stop_point(
    inherited_ignored, capsys
):
    # Between an in-process run's steps Dagster only notes an interrupt, and forgets it when the
    # run ends: the run succeeds. The stop point finds the signal and says what it leaves now.
    def noted_then_stop_point() -> None:
        with interrupts.capture_interrupts():
            os.kill(os.getpid(), signal.SIGTERM)
            signal.sigtimedwait([], 0)
        stop_point("day 1 complete")
        raise AssertionError("the stop point did not stop the command")

    assert run_until_signalled(noted_then_stop_point, capsys) == (
        143,
        "desk: relay stopped by SIGTERM; day 1 complete",
    )


def test_a_signal_a_stop_point_took_still_names_the_exit_when_dagsters_interrupt_replaces_it(
    inherited_ignored, capsys
):
    # Dagster noted the signal too, and raises it as its own interrupt while the run ends (the
    # resources' teardown): that replaces the Stopped the stop point raised, and the wake-up
    # pipe is empty by then. Seen as 'stopped by SIGINT', exit 130.
    def stop_point_then_dagsters_interrupt() -> None:
        with interrupts.capture_interrupts():
            os.kill(os.getpid(), signal.SIGTERM)
            signal.sigtimedwait([], 0)
            try:
                stop_point()
            finally:
                with interrupts.raise_interrupts_as(dg.DagsterExecutionInterruptedError):
                    pass

    assert run_until_signalled(stop_point_then_dagsters_interrupt, capsys) == (
        143,
        "desk: relay stopped by SIGTERM; events wait",
    )


def test_a_stop_point_without_a_stop_signal_only_changes_what_a_stop_would_leave(
    inherited_ignored, capsys
):
    def stop_point_then_sigterm() -> None:
        stop_point("day 1 complete")
        sigterm_self()

    assert run_until_signalled(stop_point_then_sigterm, capsys) == (
        143,
        "desk: relay stopped by SIGTERM; day 1 complete",
    )


def test_sigterm_inside_an_asset_with_a_retry_policy_stops_the_run_instead_of_retrying_it(
    inherited_ignored, capsys
):
    # Dagster turns an interrupt inside an op with a retry policy into a retry, and the run went
    # on; the stop check runs at the retry and stops it.
    attempts: list[int] = []

    @dg.asset(retry_policy=dg.RetryPolicy(max_retries=2))
    def a() -> None:
        attempts.append(1)
        if len(attempts) == 1:
            sigterm_self()

    def run_with_stop_check() -> None:
        job = dg.Definitions(assets=[a]).resolve_implicit_global_asset_job_def()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            stop_checked(job, stop_point).execute_in_process(
                run_config={"loggers": {STOP_CHECK_LOGGER: {}}}, raise_on_error=True
            )

    assert run_until_signalled(run_with_stop_check, capsys) == (
        143,
        "desk: relay stopped by SIGTERM; events wait",
    )
    assert attempts == [1]


@pytest.mark.parametrize(
    ("done", "line"),
    [
        (
            0,
            "days 2026-03-30..2026-04-02 not complete: "
            "`desk backfill --start 2026-03-30 --end 2026-04-02` completes them",
        ),
        (
            1,
            "day 2026-03-30 complete, days 2026-03-31..2026-04-02 not: "
            "`desk backfill --start 2026-03-31 --end 2026-04-02` completes them",
        ),
        (
            3,
            "days 2026-03-30..2026-04-01 complete, day 2026-04-02 not: "
            "`desk backfill --start 2026-04-02 --end 2026-04-02` completes it",
        ),
        (
            4,
            "days 2026-03-30..2026-04-02 backfilled; events the broker has not confirmed wait "
            "in the outbox (`desk relay --once` publishes them)",
        ),
    ],
)
def test_a_stopped_backfill_names_its_complete_days_and_the_command_for_the_rest(done, line):
    assert backfill_left(["2026-03-30", "2026-03-31", "2026-04-01", "2026-04-02"], done) == line


@given(days=st.integers(1, 400), start=st.dates(max_value=dt.date(9000, 1, 1)), data=st.data())
def test_the_backfill_stop_line_names_the_complete_days_and_a_command_for_exactly_the_rest(
    days, start, data
):
    dates = [(start + dt.timedelta(days=i)).isoformat() for i in range(days)]
    done = data.draw(st.integers(0, days))
    line = backfill_left(dates, done)
    command = re.search(r"`desk backfill --start (\S+) --end (\S+)`", line)
    named = re.findall(r"\d{4}-\d{2}-\d{2}", line.split("`")[0])
    if done == days:
        assert command is None and named == sorted({dates[0], dates[-1]})
        return
    assert command is not None and command.groups() == (dates[done], dates[-1])
    complete = sorted({dates[0], dates[done - 1]}) if done else []
    assert named == complete + sorted({dates[done], dates[-1]})
