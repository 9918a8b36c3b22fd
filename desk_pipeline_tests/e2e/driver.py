"""How end-to-end tests run the `desk` command: a real process with the test's environment."""

import os
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

DESK = str(Path(sys.executable).parent / "desk")


def desk_env(home: Path, **desk_vars: str) -> dict[str, str]:
    """This process's environment without DESK_* variables, plus DAGSTER_HOME and ``desk_vars``."""
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("DESK_")},
        "DAGSTER_HOME": str(home),
        **desk_vars,
    }


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
