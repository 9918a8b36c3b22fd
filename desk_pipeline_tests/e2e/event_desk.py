"""The desk the event e2e tests run: N days x M books in a landing folder, and `desk` itself."""

import json
import os
from pathlib import Path

import pandas as pd

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
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("DESK_")},
        "DAGSTER_HOME": str(home),
        "DESK_WAREHOUSE_URL": f"sqlite:///{folder}/warehouse.db",
        "DESK_TRADE_SOURCE": f"landing:{folder / 'landing'}",
        "DESK_START_DATE": "2026-03-01",
    }


def run_desk(env: dict, *args: str) -> dict:
    """Run `desk ... --json`, expect exit 0, return its JSON document."""
    return json.loads(driver.run_desk(env, *args).stdout)
