"""How end-to-end tests run the `desk` command: a real process with the test's environment."""

import os
import signal
import subprocess
import sys
import time
import urllib.error
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

import dagster as dg
import pytest

from desk_pipeline_tests.builders import write_landing_file

DESK = str(Path(sys.executable).parent / "desk")
# How long a `desk` command may take to stop after SIGTERM before a test calls it hung.
STOP_SECONDS = 20.0


def desk_env(home: Path, **desk_vars: str) -> dict[str, str]:
    """This process's environment without DESK_* variables, plus DAGSTER_HOME and ``desk_vars``."""
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("DESK_")},
        "DAGSTER_HOME": str(home),
        **desk_vars,
    }


def backfilled_landing(
    root: Path, trades: list[dict], references: dict[str, str], start: str, end: str
) -> tuple[dict[str, str], Path]:
    """A desk over ``root``/landing, holding ``trades`` and ``references``, backfilled.

    Args:
        references: reference files, name (``prices.csv``...) to text, header included.

    Returns:
        The desk's environment (its Dagster home ``root``/home, DESK_START_DATE 2026-03-01,
        the default warehouse) after `desk backfill --start START --end END`, and the folder.
    """
    folder = root / "landing"
    write_landing_file(folder, "trades.csv", trades)
    for name, text in references.items():
        (folder / name).write_text(text, encoding="utf-8")
    home = root / "home"
    home.mkdir()
    env = desk_env(home, DESK_TRADE_SOURCE=f"landing:{folder}", DESK_START_DATE="2026-03-01")
    run_desk(env, "backfill", "--start", start, "--end", end)
    return env, folder


def run_desk(
    env: dict[str, str],
    *args: str,
    check: bool = True,
    timeout: float = 600,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess:
    """Run ``desk ARGS`` in ``cwd``; with ``check``, a non-zero exit fails the test."""
    result = subprocess.run(
        [DESK, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


@contextmanager
def desk_running(env: dict[str, str], log: Path, *args: str) -> Iterator[subprocess.Popen]:
    """``desk ARGS`` in the background, stderr (and stdout) in ``log``; stopped at the end.

    It starts with SIGINT and SIGTERM ignored, as a background job of a non-interactive shell
    that ran an in-process Dagster run hands them down (Dagster maps SIGTERM onto SIGINT's
    handler): the worst start a desk command gets, whatever this test worker's own state.
    """

    def inherit_ignored_stop_signals() -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)

    with log.open("w") as out:
        process = subprocess.Popen(
            [DESK, *args],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=inherit_ignored_stop_signals,
        )
    try:
        yield process
    finally:
        stop(process, f"desk {args[0]}")


def stop(process: subprocess.Popen, what: str, seconds: float = STOP_SECONDS) -> int:
    """SIGTERM ``process`` unless it has exited; its exit code.

    A process still running ``seconds`` later is killed (SIGKILL), and the test fails saying
    so: it never leaks, and the failure names the hang instead of a TimeoutExpired.
    """
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            pytest.fail(f"{what} ignored SIGTERM for {seconds:.0f} s; killed it (SIGKILL)")
    return process.returncode


def wait_until(what: str, seconds: float, probe: Callable[[], Any]) -> Any:
    """Poll ``probe`` until it returns something truthy; fail naming ``what`` at the deadline.

    A server that is not up yet (refused, reset or timed-out connections) counts as not yet.
    """
    deadline = time.monotonic() + seconds
    last = None
    while time.monotonic() < deadline:
        try:
            last = probe()
            if last:
                return last
        except (urllib.error.URLError, ConnectionError, TimeoutError) as err:
            last = err
        time.sleep(0.5)
    pytest.fail(f"{what} not reached in {seconds}s (last: {last})")


def wait_for_line(log: Path, text: str, seconds: float) -> None:
    """Wait until ``text`` is in ``log``, for ``seconds`` at most (the caller asserts after)."""
    deadline = time.monotonic() + seconds
    while text not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.1)


@contextmanager
def open_instance(home: Path) -> Iterator[dg.DagsterInstance]:
    """The desk instance of ``home``, opened as Dagster's tools open it: with DAGSTER_HOME set
    (the desk's dagster-sqlite.yaml reads its directory from it)."""
    with (
        mock.patch.dict(os.environ, {"DAGSTER_HOME": str(home)}),
        dg.DagsterInstance.from_config(str(home)) as instance,
    ):
        yield instance
