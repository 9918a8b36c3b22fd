"""The desk the event e2e tests run: N days x M books in a landing folder, and `desk` itself."""

import contextlib
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from desk_pipeline.adapters.warehouse import PositionRepository
from desk_pipeline_tests.builders import trade, with_micro_units, write_landing_file
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


def pending_events(env: dict, count: int) -> PositionRepository:
    """A fresh warehouse at ``env``'s DESK_WAREHOUSE_URL with ``count`` EODs whose events wait.

    Each EOD is one day of one new book, so its event waits in the outbox for the relay.
    """
    repo = PositionRepository(env["DESK_WAREHOUSE_URL"])
    for _ in range(count):
        eod = {
            "book_id": f"B-{uuid.uuid4().hex[:4]}",
            "instrument_id": "DE0001",
            "quantity": 1.0,
            "avg_price": 1.0,
            "realized_pnl": 0.0,
            "business_date": DAYS[0],
            "as_of": pd.Timestamp(DAYS[1], tz="UTC"),
        }
        repo.keep_last_eod(with_micro_units(pd.DataFrame([eod])), 1)
    return repo


def run_desk(env: dict, *args: str) -> dict:
    """Run `desk ... --json`, expect exit 0, return its JSON document."""
    return json.loads(driver.run_desk(env, *args).stdout)


@contextlib.contextmanager
def relay_running(
    env: dict, log: Path, repo: PositionRepository, drain_seconds: float
) -> Iterator[Path]:
    """`desk relay --max-backoff 2` in the background, its stderr in ``log``; stopped afterwards.

    The relay marks rows only after the broker confirmed them: when the block ends normally it
    is stopped (SIGTERM) once ``repo``'s outbox is empty, or after ``drain_seconds`` (the caller
    asserts), and must end as an operator's stop ends it: exit 143 and its one last line.
    """
    with driver.desk_running(env, log, "relay", "--max-backoff", "2") as relay:
        yield log
        deadline = time.monotonic() + drain_seconds
        while repo.outbox_backlog() and time.monotonic() < deadline:
            time.sleep(0.1)
        code = driver.stop(relay, "desk relay")
    assert (code, last_line(log)) == (143, RELAY_STOPPED), log.read_text()[-3000:]


RELAY_STOPPED = (
    "desk: relay stopped by SIGTERM; events the broker has not confirmed wait in the outbox"
)


def last_line(log: Path) -> str:
    """The last line a `desk` command wrote to ``log``."""
    lines = log.read_text().strip().splitlines()
    return lines[-1] if lines else ""
