"""`desk backfill` over a landing folder, checked per book and day against the reference."""

import json

import pandas as pd
import pytest

from desk_pipeline_tests.builders import DEFECTS, at, defective_rows, trade, write_landing_file
from desk_pipeline_tests.e2e.driver import desk_env, run_desk
from desk_pipeline_tests.reference import reference_positions

DAYS = ["2026-03-02", "2026-03-03", "2026-03-04"]


def desk_trades() -> list[dict]:
    """Three books over three days: adds, reductions, closes, flips, amendments and cancels."""
    d1, d2, d3 = DAYS
    return [
        trade("R-1", 1_000_000, 0.995, book="REPO-1", instrument="DE0001", at=at(d1, "08:00")),
        trade("R-2", -400_000, 0.997, book="REPO-1", instrument="DE0001", at=at(d1, "09:30")),
        trade("R-3", 250_000, 1.010, book="REPO-1", instrument="FR0002", at=at(d1, "10:00")),
        trade(
            "R-3",
            300_000,
            1.012,
            book="REPO-1",
            instrument="FR0002",
            at=at(d1, "10:00"),
            version=2,
            status="AMEND",
        ),
        trade(
            "R-4", -600_000, 0.990, book="REPO-1", instrument="DE0001", at=at(d2, "11:00")
        ),  # close
        trade("R-5", -300_000, 1.020, book="REPO-1", instrument="FR0002", at=at(d2, "12:00")),
        trade("R-6", 200_000, 1.000, book="REPO-1", instrument="DE0001", at=at(d3, "08:15")),
        trade("S-1", 5_000, 101.0, book="SECLEND-1", instrument="US0003", at=at(d1, "14:00")),
        trade(
            "S-2", -8_000, 103.5, book="SECLEND-1", instrument="US0003", at=at(d2, "14:00")
        ),  # flip
        trade("S-3", 1_000, 99.0, book="SECLEND-1", instrument="US0003", at=at(d3, "09:00")),
        trade("S-4", 700, 50.0, book="SECLEND-1", instrument="GB0004", at=at(d2, "15:00")),
        trade(
            "S-4",
            700,
            50.0,
            book="SECLEND-1",
            instrument="GB0004",
            at=at(d2, "15:00"),
            version=2,
            status="CANCEL",
        ),
        trade("M-1", 10, 7.5, book="MATCHED-1", instrument="JP0005", at=at(d1, "23:59")),
        trade("M-2", 10, 8.5, book="MATCHED-1", instrument="JP0005", at=at(d2, "00:00")),
        trade("M-3", -5, 9.0, book="MATCHED-1", instrument="JP0005", at=at(d3, "23:50")),
    ]


def bad_rows() -> list[dict]:
    """One row per defect, each named after the reason code it must get."""
    good = trade("X", 1, 1.0, book="REPO-1", instrument="DE0001", at=at(DAYS[0], "12:00"))
    return defective_rows(good)


@pytest.fixture
def landing_env(tmp_path) -> dict:
    folder = tmp_path / "landing"
    rows = desk_trades()
    write_landing_file(folder, "day1.csv", rows[:4] + bad_rows() + rows[7:8] + rows[12:13])
    write_landing_file(folder, "day2_3.csv", rows[4:7] + rows[8:12] + rows[13:])
    (folder / "garbage.csv").write_bytes(b"\xff\xfe\x00\x01 not a csv \x80\x81")
    home = tmp_path / "home"
    home.mkdir()
    return desk_env(home, DESK_TRADE_SOURCE=f"landing:{folder}", DESK_START_DATE="2026-03-01")


def stored_positions(env: dict) -> dict:
    found = {}
    for day in DAYS:
        for book in ("REPO-1", "SECLEND-1", "MATCHED-1"):
            doc = json.loads(
                run_desk(env, "positions", "--book", book, "--date", day, "--json").stdout
            )
            assert (doc["book_id"], doc["business_date"]) == (book, day)
            found[book, day] = doc
    return found


def test_backfill_over_a_landing_folder_matches_the_reference_and_is_idempotent(landing_env):
    run_desk(landing_env, "backfill", "--start", DAYS[0], "--end", DAYS[-1])
    first = stored_positions(landing_env)
    for (book, day), doc in first.items():
        as_of = pd.Timestamp(day, tz="UTC") + pd.Timedelta(days=1)
        assert pd.Timestamp(doc["as_of"]) == as_of
        expected = {
            inst: p
            for (b, inst), p in reference_positions(desk_trades(), as_of).items()
            if b == book and p.quantity != 0
        }
        got = {p["instrument_id"]: p for p in doc["positions"]}
        assert got.keys() == expected.keys(), (book, day)
        for inst, ref in expected.items():
            assert got[inst]["quantity"] == pytest.approx(ref.quantity)
            assert got[inst]["avg_price"] == pytest.approx(ref.avg_price, rel=1e-12)
            assert got[inst]["realized_pnl"] == pytest.approx(ref.realized_pnl, rel=1e-12, abs=1e-9)

    # The flat DE0001 position of day 2 is omitted but its realised P&L carries into day 3.
    assert "DE0001" not in {p["instrument_id"] for p in first["REPO-1", DAYS[1]]["positions"]}

    quarantine = json.loads(run_desk(landing_env, "quarantine", "--json").stdout)
    second = run_desk(landing_env, "backfill", "--start", DAYS[0], "--end", DAYS[-1], "--json")
    assert json.loads(second.stdout)["events_published"] == 0
    assert stored_positions(landing_env) == first
    assert json.loads(run_desk(landing_env, "quarantine", "--json").stdout) == quarantine


def test_bad_rows_are_quarantined_with_reasons_while_good_rows_of_the_same_file_count(landing_env):
    run_desk(landing_env, "backfill", "--start", DAYS[0], "--end", DAYS[0])
    quarantine = json.loads(run_desk(landing_env, "quarantine", "--json").stdout)
    by_id = {q["trade_id"]: q for q in quarantine if q["trade_id"]}
    assert {k: v["reason_code"] for k, v in by_id.items()} == {code: code for code in DEFECTS}
    assert all(q["source"].startswith("landing:day1.csv") and q["reason"] for q in by_id.values())
    unreadable = [q for q in quarantine if q["source"].startswith("landing:garbage.csv")]
    assert len(unreadable) == 1 and "UTF-8" in unreadable[0]["reason"]
    doc = json.loads(
        run_desk(landing_env, "positions", "--book", "REPO-1", "--date", DAYS[0], "--json").stdout
    )
    assert {p["instrument_id"] for p in doc["positions"]} == {"DE0001", "FR0002"}


def test_user_errors_print_one_line_and_exit_non_zero(landing_env):
    # An empty warehouse: the book is what is missing (a read never creates the warehouse).
    run_desk(landing_env, "migrate")
    missing = run_desk(
        landing_env, "positions", "--book", "NOPE", "--date", DAYS[0], "--json", check=False
    )
    assert missing.returncode == 1 and missing.stdout == ""
    assert missing.stderr.strip().count("\n") == 0 and "NOPE" in missing.stderr
    bad_date = run_desk(
        landing_env, "backfill", "--start", "2026-13-45", "--end", DAYS[0], check=False
    )
    assert bad_date.returncode != 0 and "Traceback" not in bad_date.stderr
    reversed_range = run_desk(
        landing_env, "backfill", "--start", DAYS[2], "--end", DAYS[0], check=False
    )
    # A bad date (EXIT_CODES 2), not a failure (1).
    assert reversed_range.returncode == 2 and reversed_range.stdout == ""
    assert reversed_range.stderr.strip() == (
        f"desk: date range {DAYS[2]}..{DAYS[0]} is reversed: its start is after its end; give "
        "the earlier day first"
    )
