"""One business day through the real Dagster assets: two 10-minute windows, then EOD and ranking."""

import dagster as dg
import pandas as pd
import pytest

from desk_pipeline_tests.location import desk_assets, desk_resources
from desk_pipeline_tests.reference import reference_positions

eod_positions, intraday_positions, trades, collateral_ranking = desk_assets(
    "eod_positions", "intraday_positions", "trades", "collateral_ranking"
)

DAY = "2026-03-02"


def versions(repo) -> list[dict]:
    return repo.all_trade_versions().to_dict(orient="records")


def stored_intraday(repo, end: pd.Timestamp) -> dict:
    opening = repo.opening(end)
    return {
        (r.book_id, r.instrument_id): (r.quantity, r.avg_price, r.realized_pnl)
        for r in opening.positions.itertuples()
    }


def as_tuples(reference: dict) -> dict:
    return {k: (p.quantity, p.avg_price, p.realized_pnl) for k, p in reference.items()}


@pytest.fixture
def resources(sqlite_url) -> dict:
    return desk_resources(warehouse_url=sqlite_url)


def test_a_day_materialises_windows_then_eod_then_ranking(resources, dagster_instance):
    repo = resources["warehouse"].repository()
    for key in ("2026-03-02-10:00", "2026-03-02-10:10"):
        result = dg.materialize(
            [trades, intraday_positions],
            partition_key=key,
            resources=resources,
            instance=dagster_instance,
        )
        assert result.success
    window_end = pd.Timestamp("2026-03-02 10:20", tz="UTC")
    assert stored_intraday(repo, window_end) == as_tuples(
        reference_positions(versions(repo), window_end)
    )

    result = dg.materialize(
        [eod_positions, collateral_ranking],
        partition_key=DAY,
        resources=resources,
        instance=dagster_instance,
    )
    assert result.success
    day_end = pd.Timestamp("2026-03-03", tz="UTC")
    expected = as_tuples(reference_positions(versions(repo), day_end))
    books = {book for book, _ in expected}
    assert len(books) > 3
    for book in books:
        header, rows = repo.eod(book, DAY)
        assert header["as_of"] == day_end
        got = {
            (book, r.instrument_id): (r.quantity, r.avg_price, r.realized_pnl)
            for r in rows.itertuples()
        }
        assert got == {k: v for k, v in expected.items() if k[0] == book}
        ranking = repo.ranking(book, DAY)
        held = {i for (b, i), v in expected.items() if b == book and v[0] != 0}
        assert set(ranking["instrument_id"]) == held and ranking["instrument_id"].is_unique
        eligible = ranking[ranking["eligible"]]
        assert list(eligible["rank"]) == list(range(1, len(eligible) + 1))
        assert eligible["value"].is_monotonic_decreasing
    records = dagster_instance.get_latest_materialization_event(dg.AssetKey("eod_positions"))
    assert records.asset_materialization.metadata["dagster/row_count"].value == sum(
        1 for _ in expected
    )
