"""A range run records each day's own figures; a 10-minute tick restates the days it makes stale."""

from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from desk_pipeline_tests.builders import at, trade, write_landing_file, write_reference_files
from desk_pipeline_tests.location import desk_assets, desk_resources

(
    eod_positions,
    intraday_positions,
    trades,
    collateral_ranking,
    instruments,
    prices,
    eod_valuation,
) = desk_assets(
    "eod_positions",
    "intraday_positions",
    "trades",
    "collateral_ranking",
    "instruments",
    "prices",
    "eod_valuation",
)

DAYS = ["2026-03-02", "2026-03-03", "2026-03-04"]
DAILY_CHAIN = [instruments, prices, eod_positions, eod_valuation, collateral_ranking]


@pytest.fixture
def landing(tmp_path: Path) -> Path:
    folder = tmp_path / "landing"
    write_reference_files(
        folder,
        instruments=[
            "DE01,Bund 2031,government_bond,sovereign,DE,AAA,2031-02-15,EUR",
            "US01,UST 2031,government_bond,sovereign,US,AA+,2031-02-15,USD",
        ],
        prices=["DE01,2026-03-02,100.0", "US01,2026-03-02,50.0"],
        books=["EUR-BOOK,EUR,5", "USD-BOOK,USD,5"],
        fx_rates=["EUR,2026-03-02,1.1", "USD,2026-03-02,1.0"],
    )
    write_landing_file(
        folder,
        "week.csv",
        [
            trade("E1", 10, 100.0, at=at(DAYS[0], "09:00"), book="EUR-BOOK", instrument="DE01"),
            trade("U1", 20, 50.0, at=at(DAYS[1], "09:00"), book="USD-BOOK", instrument="US01"),
            trade("U2", 30, 50.0, at=at(DAYS[2], "09:00"), book="USD-BOOK", instrument="DE01"),
        ],
    )
    return folder


@pytest.fixture
def resources(sqlite_url: str, landing: Path) -> dict:
    return desk_resources(warehouse_url=sqlite_url, trade_source=f"landing:{landing}")


def range_run(resources: dict, instance: dg.DagsterInstance, first: str, last: str) -> None:
    result = dg.materialize(
        DAILY_CHAIN,
        resources=resources,
        instance=instance,
        tags={
            "dagster/asset_partition_range_start": first,
            "dagster/asset_partition_range_end": last,
        },
    )
    assert result.success


def materializations(instance: dg.DagsterInstance, key: str) -> dict[str, dict]:
    """The latest materialisation's metadata of each partition of ``key``."""
    records = instance.fetch_materializations(dg.AssetKey(key), limit=1000).records
    latest: dict[str, dict] = {}
    for record in sorted(records, key=lambda r: r.storage_id):
        event = record.asset_materialization
        latest[event.partition] = {k: v.value for k, v in event.metadata.items()}
    return latest


def test_each_day_of_a_range_run_shows_its_own_figures_with_currencies(resources, dagster_instance):
    range_run(resources, dagster_instance, DAYS[0], DAYS[-1])

    eod = materializations(dagster_instance, "eod_positions")
    # One EUR row on day 1; the USD book joins on day 2 and adds a second instrument on day 3.
    assert [eod[d]["dagster/row_count"] for d in DAYS] == [1, 2, 3]
    assert [eod[d]["books"] for d in DAYS] == [1, 2, 2]
    assert [eod[d]["as_of"] for d in DAYS] == [
        str(pd.Timestamp(d, tz="UTC") + pd.Timedelta(days=1)) for d in DAYS
    ]
    # The run ingested once: its counts sit on its last day only.
    assert "run_trades_received" in eod[DAYS[-1]]
    assert "run_trades_received" not in eod[DAYS[0]]

    ranking = materializations(dagster_instance, "collateral_ranking")
    assert [ranking[d]["dagster/row_count"] for d in DAYS] == [1, 2, 3]
    # Values of EUR and USD books are totalled apart, never added together.
    assert "lendable_value_USD" not in ranking[DAYS[0]]
    day3 = ranking[DAYS[2]]
    repo = resources["warehouse"].repository()
    for book, ccy in (("EUR-BOOK", "EUR"), ("USD-BOOK", "USD")):
        stored = repo.ranking(book, DAYS[2])
        assert day3[f"lendable_value_{ccy}"] == pytest.approx(stored["value"].sum())
        assert day3[f"lendable_value_{ccy}"] > 0
    assert "| EUR | EUR-BOOK | DE01 | 1 |" in day3["top_10"]
    assert " USD |" in day3["top_10"].splitlines()[-1]

    valuation = materializations(dagster_instance, "eod_valuation")
    assert [valuation[d]["dagster/row_count"] for d in DAYS] == [1, 2, 3]
    assert valuation[DAYS[0]]["market_value_EUR"] == pytest.approx(1000.0)
    assert "market_value_USD" not in valuation[DAYS[0]]


def test_a_late_trade_ingested_by_a_tick_restates_eod_valuation_and_ranking(
    resources, dagster_instance, landing
):
    range_run(resources, dagster_instance, DAYS[0], DAYS[1])
    repo = resources["warehouse"].repository()
    assert list(repo.ranking("EUR-BOOK", DAYS[1])["quantity"]) == [10.0]

    # A backdated trade lands during day 3; the 10-minute tick that ingests it restates.
    write_landing_file(
        landing,
        "late.csv",
        [trade("E0", 5, 100.0, at=at(DAYS[0], "08:00"), book="EUR-BOOK", instrument="DE01")],
    )
    result = dg.materialize(
        [trades, intraday_positions],
        partition_key=f"{DAYS[2]}-10:00",
        resources=resources,
        instance=dagster_instance,
    )
    assert result.success
    for day in DAYS[:2]:
        _, rows = repo.eod("EUR-BOOK", day)
        assert list(rows["quantity"]) == [15.0], day
        assert list(repo.ranking("EUR-BOOK", day)["quantity"]) == [15.0], day
        valued = repo.valued_eod("EUR-BOOK", day)[1]
        assert list(valued["market_value"]) == [1500.0], day
    (own,) = [
        m
        for m in result.asset_materializations_for_node("trades")
        if m.asset_key.path == ["trades"]
    ]
    assert own.metadata["restated_days"].value == ", ".join(DAYS[:2])
    for key in ("eod_positions", "eod_valuation", "collateral_ranking"):
        shown = materializations(dagster_instance, key)
        assert all(shown[d]["restated_by_run"] == result.run_id for d in DAYS[:2]), key
