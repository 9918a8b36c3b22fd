"""The desk the event e2e tests run: N days x M books in a landing folder, and `desk` itself."""

import contextlib
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from desk_pipeline.adapters.warehouse import PositionRepository
from desk_pipeline_tests.builders import trade, write_landing_file
from desk_pipeline_tests.e2e import driver

DAYS = ["2026-03-02", "2026-03-03", "2026-03-04"]
BOOKS = ["REPO-1", "SECLEND-1"]


def landing_desk(folder: Path) -> dict:
    """N=3 days x M=2 books of trades in a landing folder; a fresh warehouse and Dagster home.

    Returns:
        The environment for `desk` (the caller adds DESK_EVENT_PUBLISHER).
    """
    rows = [
        trade(
            f"{book}-{day}",
            100 * (i + 1),
            1.0 + i / 100,
            book=book,
            instrument=f"DE000{i}",
            at=pd.Timestamp(f"{day} 10:00", tz="UTC"),
        )
        for i, day in enumerate(DAYS)
        for book in BOOKS
    ]
    write_landing_file(folder / "landing", "trades.csv", rows)
    home = folder / "home"
    home.mkdir()
    return driver.desk_env(
        home,
        DESK_WAREHOUSE_URL=f"sqlite:///{folder}/warehouse.db",
        DESK_TRADE_SOURCE=f"landing:{folder / 'landing'}",
        DESK_START_DATE="2026-03-01",
    )


def run_desk(env: dict, *args: str) -> dict:
    """Run `desk ... --json`, expect exit 0, return its JSON document."""
    return json.loads(driver.run_desk(env, *args).stdout)


@contextlib.contextmanager
def relay_running(
    env: dict, log: Path, repo: PositionRepository, drain_seconds: float
) -> Iterator[Path]:
    """`desk relay --max-backoff 2` in the background, its stderr in ``log``; stopped afterwards.

    The relay marks rows only after the broker confirmed them: when the block ends normally it
    is stopped once ``repo``'s outbox is empty, or after ``drain_seconds`` (the caller asserts).
    """
    with log.open("w") as stderr:
        relay = subprocess.Popen(
            [driver.DESK, "relay", "--max-backoff", "2"], env=env, stderr=stderr, text=True
        )
    try:
        yield log
        deadline = time.monotonic() + drain_seconds
        while repo.outbox_backlog() and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        relay.terminate()
        relay.wait(timeout=30)
