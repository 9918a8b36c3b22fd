"""Issue 12, kind 2: a full close in fractional trades is flat through `desk`, on both warehouses.

In binary floats 0.1 + 0.2 - 0.3 is 5.55e-17: the position stayed in the EOD with an average of
99.99999999999999 and realised 3.000000000000004, and it was ranked. Quantities are micro-units
now (domain/precision.py), so the close is exact, in the backfill that recomputes the day and in
the next day's, which rolls from the stored snapshot.
"""

import json
import os
from pathlib import Path

import pandas as pd
import pytest

from desk_pipeline.adapters.warehouse import PositionRepository
from desk_pipeline_tests.e2e import driver

BOOK = "BOOK-A"
DAY_1, DAY_2 = "2026-03-02", "2026-03-03"

# The issue's input, as delivered.
ISSUE_INPUT = """\
trade_id,book_id,instrument_id,quantity,price,trade_time
T1,BOOK-A,ISIN-1,0.1,100,2026-03-02T09:00:00Z
T2,BOOK-A,ISIN-1,0.2,100,2026-03-02T10:00:00Z
T3,BOOK-A,ISIN-1,-0.3,110,2026-03-02T11:00:00Z
T4,BOOK-A,ISIN-2,10,50,2026-03-02T11:00:00Z
"""
# The next day reopens ISIN-1 and closes it again in fractions (0.7 - 0.4 - 0.3 is -5.55e-17 in
# floats), rolled from the stored EOD of DAY_1: realised 3 + (125 - 120) x 0.4 + (130 - 120) x 0.3.
NEXT_DAY = """\
trade_id,book_id,instrument_id,quantity,price,trade_time
T5,BOOK-A,ISIN-1,0.7,120,2026-03-03T09:00:00Z
T6,BOOK-A,ISIN-1,-0.4,125,2026-03-03T10:00:00Z
T7,BOOK-A,ISIN-1,-0.3,130,2026-03-03T11:00:00Z
"""


def run_desk(env: dict, *args: str) -> str:
    return driver.run_desk(env, *args).stdout


def document(env: dict, command: str, day: str) -> dict:
    return json.loads(run_desk(env, command, "--book", BOOK, "--date", day, "--json"))


def stored_rows(url: str, day: str) -> dict:
    _, rows = PositionRepository(url).eod(BOOK, day)
    return {r.instrument_id: (r.quantity, r.avg_price, r.realized_pnl) for r in rows.itertuples()}


@pytest.fixture
def landing(tmp_path, warehouse_url) -> tuple[dict, Path]:
    folder = tmp_path / "landing"
    folder.mkdir()
    (folder / "day1.csv").write_text(ISSUE_INPUT, encoding="utf-8")
    home = tmp_path / "home"
    home.mkdir()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("DESK_")},
        "DAGSTER_HOME": str(home),
        "DESK_TRADE_SOURCE": f"landing:{folder}",
        "DESK_WAREHOUSE_URL": warehouse_url,
        "DESK_START_DATE": "2026-03-01",
    }
    return env, folder


def test_a_close_in_fractional_trades_is_flat_in_the_eod_the_ranking_and_the_next_day(
    landing, warehouse_url
):
    env, folder = landing
    run_desk(env, "backfill", "--start", DAY_1, "--end", DAY_1)

    positions = document(env, "positions", DAY_1)
    assert positions["positions"] == [
        {"instrument_id": "ISIN-2", "quantity": 10.0, "avg_price": 50.0, "realized_pnl": 0.0}
    ]
    # The flat row stays stored for its realised P&L: exactly 0, 0 and 3.0.
    assert stored_rows(warehouse_url, DAY_1) == {
        "ISIN-1": (0.0, 0.0, 3.0),
        "ISIN-2": (10.0, 50.0, 0.0),
    }
    ranking = document(env, "ranking", DAY_1)
    assert [(i["instrument_id"], i["quantity"]) for i in ranking["items"]] == [("ISIN-2", 10.0)]

    # The next day opens from the stored EOD of DAY_1 (the incremental path).
    (folder / "day2.csv").write_text(NEXT_DAY, encoding="utf-8")
    run_desk(env, "backfill", "--start", DAY_2, "--end", DAY_2)
    assert stored_rows(warehouse_url, DAY_2) == {
        "ISIN-1": (0.0, 0.0, 8.0),
        "ISIN-2": (10.0, 50.0, 0.0),
    }
    assert [p["instrument_id"] for p in document(env, "positions", DAY_2)["positions"]] == [
        "ISIN-2"
    ]
    ranked = document(env, "ranking", DAY_2)["items"]
    assert [i["instrument_id"] for i in ranked] == ["ISIN-2"]

    # A recomputation of both days from the first trade gives the same stored rows.
    before = {day: stored_rows(warehouse_url, day) for day in (DAY_1, DAY_2)}
    run_desk(env, "backfill", "--start", DAY_1, "--end", DAY_2)
    assert {day: stored_rows(warehouse_url, day) for day in (DAY_1, DAY_2)} == before
    header, _ = PositionRepository(warehouse_url).eod(BOOK, DAY_2)
    assert pd.Timestamp(header["as_of"]) == pd.Timestamp("2026-03-04", tz="UTC")
