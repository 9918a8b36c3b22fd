"""Issue 12's inputs through `desk backfill`: no row stops the desk, no time is reordered."""

import json
import os
import subprocess

import pytest

from desk_pipeline_tests.e2e.driver import run_desk

HEADER = "trade_id,book_id,instrument_id,quantity,price,trade_time\n"
DAY = "2026-03-02"


@pytest.fixture(scope="module")
def desk(tmp_path_factory) -> tuple[dict, subprocess.CompletedProcess, dict[str, str]]:
    """Both inputs of the issue in one landing folder, backfilled once.

    Returns:
        The environment, the backfill's process, and the quarantine's reason code per trade_id.
    """
    root = tmp_path_factory.mktemp("input_defence")
    folder, home = root / "landing", root / "home"
    folder.mkdir()
    home.mkdir()
    # Section 3: a year-0026 trade beside a good one, and a good BOOK-B trade in another file.
    (folder / "a.csv").write_text(
        HEADER
        + "T1,BOOK-A,ISIN-1,100,10,2026-03-02T09:00:00Z\n"
        + "T2,BOOK-A,ISIN-1,50,12,0026-03-02T10:00:00Z\n"
    )
    (folder / "b.csv").write_text(HEADER + "B1,BOOK-B,ISIN-2,40,20,2026-03-02T11:00:00Z\n")
    # Section 4: two trades 800 ns apart, whose order decides the book (own book here).
    (folder / "p.csv").write_text(
        HEADER
        + "P0,BOOK-P,ISIN-1,100,10,2026-03-02T09:00:00Z\n"
        + "P-B,BOOK-P,ISIN-1,-100,12,2026-03-02T10:00:00.000000100Z\n"
        + "P-A,BOOK-P,ISIN-1,100,11,2026-03-02T10:00:00.000000900Z\n"
    )
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("DESK_")},
        "DAGSTER_HOME": str(home),
        "DESK_TRADE_SOURCE": f"landing:{folder}",
        "DESK_START_DATE": "2026-03-01",
    }
    backfill = run_desk(env, "backfill", "--start", DAY, "--end", DAY, check=False)
    shown = run_desk(env, "quarantine", "--json", check=False)
    assert shown.returncode == 0, shown.stderr
    return env, backfill, {q["trade_id"]: q["reason_code"] for q in json.loads(shown.stdout)}


def eod(env: dict, book: str) -> dict[str, tuple[float, float, float]]:
    shown = run_desk(env, "positions", "--book", book, "--date", DAY, "--json", check=False)
    assert shown.returncode == 0, shown.stderr
    return {
        p["instrument_id"]: (p["quantity"], p["avg_price"], p["realized_pnl"])
        for p in json.loads(shown.stdout)["positions"]
    }


def test_a_year_0026_trade_is_quarantined_and_every_book_still_gets_its_eod(desk):
    env, backfill, reasons = desk
    assert backfill.returncode == 0, backfill.stderr
    assert reasons["T2"] == "trade_time_out_of_range"
    assert eod(env, "BOOK-A") == {"ISIN-1": (100, 10, 0)}
    assert eod(env, "BOOK-B") == {"ISIN-2": (40, 20, 0)}


def test_trade_times_finer_than_a_microsecond_are_quarantined_not_reordered(desk):
    env, backfill, reasons = desk
    assert backfill.returncode == 0, backfill.stderr
    assert (reasons["P-B"], reasons["P-A"]) == ("trade_time_too_precise",) * 2
    assert set(reasons) == {"T2", "P-B", "P-A"}
    assert eod(env, "BOOK-P") == {"ISIN-1": (100, 10, 0)}
