"""Late trades are restated by the invocation that ingests them: EOD, valuation and ranking."""

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from desk_pipeline import queries
from desk_pipeline.adapters.warehouse import PositionRepository
from desk_pipeline_tests.builders import at, trade, write_landing_file, write_reference_files
from desk_pipeline_tests.e2e.driver import desk_env, run_desk
from desk_pipeline_tests.reference import reference_positions

DAYS = [f"2026-03-0{d}" for d in range(2, 7)]
HEADER = "trade_id,book_id,instrument_id,quantity,price,trade_time,version,status\n"


def landing_desk(tmp_path: Path, name: str = "home") -> tuple[dict, Path]:
    """A DAGSTER_HOME and a landing folder with reference data for ISIN-1/ISIN-2 and two books."""
    folder = tmp_path / "landing"
    if not folder.exists():
        write_reference_files(
            folder,
            instruments=[
                "ISIN-1,Bund 2031,government_bond,sovereign,DE,AAA,2031-02-15,EUR",
                "ISIN-2,OAT 2032,government_bond,sovereign,FR,AA,2032-05-25,EUR",
            ],
            prices=["ISIN-1,2026-03-02,10.5", "ISIN-2,2026-03-02,20.0"],
            books=["BOOK-A,EUR,5", "BOOK-B,EUR,5"],
            fx_rates=["EUR,2026-03-02,1.1"],
        )
    home = tmp_path / name
    home.mkdir()
    env = desk_env(home, DESK_TRADE_SOURCE=f"landing:{folder}", DESK_START_DATE="2026-03-01")
    return env, folder


def document(env: dict, command: str, book: str, day: str, *extra: str) -> dict:
    return json.loads(
        run_desk(env, command, "--book", book, "--date", day, *extra, "--json").stdout
    )


@pytest.mark.parametrize(
    "correction",
    [
        "B1,BOOK-B,ISIN-1,40,10,2026-03-05T10:00:00Z,2,AMEND",
        "B1,BOOK-B,ISIN-1,40,10,2026-03-02T10:00:00Z,2,CANCEL",
    ],
    ids=["moved-to-a-later-day", "cancelled"],
)
def test_a_book_whose_positions_vanish_loses_its_ranking_and_valuation(tmp_path, correction):
    env, folder = landing_desk(tmp_path)
    (folder / "b1.csv").write_text(HEADER + "B1,BOOK-B,ISIN-1,40,10,2026-03-02T10:00:00Z,1,NEW\n")
    run_desk(env, "backfill", "--start", DAYS[0], "--end", DAYS[-1])
    assert document(env, "ranking", "BOOK-B", "2026-03-03")["items"][0]["quantity"] == 40.0

    (folder / "b1-v2.csv").write_text(HEADER + correction + "\n")
    # Exit 0: every check green, including every_holding_ranked_once.
    run_desk(env, "backfill", "--start", DAYS[0], "--end", DAYS[-1])
    assert document(env, "ranking", "BOOK-B", "2026-03-03")["items"] == []
    moved = "AMEND" in correction
    # The other days through the functions the CLI prints (one process, not fifteen).
    repo = PositionRepository(f"sqlite:///{env['DAGSTER_HOME']}/warehouse.db")
    for day in DAYS:
        expected = [("ISIN-1", 40.0)] if moved and day >= "2026-03-05" else []
        eod = queries.positions_document(repo, "BOOK-B", day)
        valued = queries.positions_document(repo, "BOOK-B", day, marks=True)
        ranking = queries.ranking_document(repo, "BOOK-B", day)
        assert [(p["instrument_id"], p["quantity"]) for p in eod["positions"]] == expected, day
        assert [(p["instrument_id"], p["quantity"]) for p in valued["positions"]] == expected
        assert [(i["instrument_id"], i["quantity"]) for i in ranking["items"]] == expected, day
        assert ranking["as_of"] == eod["as_of"]
    repo.engine.dispose()


def stored_state(home: Path) -> dict[str, pd.DataFrame]:
    """Every stored day's EOD rows, valuation and ranking, without ids and computation times."""
    repo = PositionRepository(f"sqlite:///{home}/warehouse.db")
    try:
        eod = repo.eod_positions(DAYS).drop(columns=["snapshot_id"])
        valuation = pd.concat(
            [
                repo.valued_eod(book, day)[1].assign(business_date=day)
                for book in ("BOOK-A", "BOOK-B")
                for day in DAYS
                if repo.valued_eod(book, day) is not None
            ],
            ignore_index=True,
        )
        ranking = repo.rankings(DAYS).drop(columns=["snapshot_id"])
    finally:
        repo.engine.dispose()
    order = ["book_id", "business_date", "instrument_id"]
    return {
        name: frame.sort_values(order, kind="stable").reset_index(drop=True)
        for name, frame in (("eod", eod), ("valuation", valuation), ("ranking", ranking))
    }


def test_a_backfill_of_the_latest_day_restates_every_earlier_day_like_a_recomputation(tmp_path):
    env, folder = landing_desk(tmp_path)
    write_landing_file(
        folder,
        "week.csv",
        [
            trade("A1", 100, 10.0, at=at(DAYS[0], "09:00"), book="BOOK-A", instrument="ISIN-1"),
            trade("A2", -30, 11.0, at=at(DAYS[1], "09:00"), book="BOOK-A", instrument="ISIN-1"),
            trade("A3", 50, 19.0, at=at(DAYS[2], "12:00"), book="BOOK-A", instrument="ISIN-2"),
            trade("B1", 40, 10.0, at=at(DAYS[0], "10:00"), book="BOOK-B", instrument="ISIN-1"),
            trade("B2", 10, 21.0, at=at(DAYS[3], "10:00"), book="BOOK-B", instrument="ISIN-2"),
        ],
    )
    run_desk(env, "backfill", "--start", DAYS[0], "--end", DAYS[-1])

    # Backdated trades, an amendment and a cancel arrive with the last day's run only.
    write_landing_file(
        folder,
        "late.csv",
        [
            trade("A0", 20, 9.0, at=at(DAYS[0], "08:00"), book="BOOK-A", instrument="ISIN-1"),
            trade(
                "A2",
                -60,
                11.5,
                at=at(DAYS[1], "09:00"),
                book="BOOK-A",
                instrument="ISIN-1",
                version=2,
                status="AMEND",
            ),
            trade(
                "B1",
                40,
                10.0,
                at=at(DAYS[0], "10:00"),
                book="BOOK-B",
                instrument="ISIN-1",
                version=2,
                status="CANCEL",
            ),
        ],
    )
    run_desk(env, "backfill", "--start", DAYS[-1], "--end", DAYS[-1])
    restated = stored_state(Path(env["DAGSTER_HOME"]))

    # The recomputation: a new warehouse given every trade at once.
    clean_env, _ = landing_desk(tmp_path, "clean")
    run_desk(clean_env, "backfill", "--start", DAYS[0], "--end", DAYS[-1])
    clean = stored_state(Path(clean_env["DAGSTER_HOME"]))
    for name in ("eod", "valuation", "ranking"):
        pd.testing.assert_frame_equal(restated[name], clean[name], obj=name)

    # And the plain per-trade reference agrees with both, day by day.
    repo = PositionRepository(f"sqlite:///{clean_env['DAGSTER_HOME']}/warehouse.db")
    versions = repo.all_trade_versions().to_dict(orient="records")
    repo.engine.dispose()
    for day in DAYS:
        as_of = pd.Timestamp(day, tz="UTC") + pd.Timedelta(days=1)
        expected = {
            key: position.quantity for key, position in reference_positions(versions, as_of).items()
        }
        rows = restated["eod"][restated["eod"]["business_date"] == day]
        keys = zip(rows["book_id"], rows["instrument_id"], strict=True)
        got = dict(zip(keys, rows["quantity"], strict=True))
        assert got == expected, day
    shutil.rmtree(tmp_path / "clean", ignore_errors=True)
