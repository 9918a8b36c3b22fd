"""The eod_valuation asset on the simulator desk: stored rows and the figures Dagster plots."""

import dagster as dg
import pandas as pd
import pytest

from desk_pipeline.adapters.simulator import DeskSimulator
from desk_pipeline_tests.location import desk_assets, desk_resources

eod_positions, instruments, prices, eod_valuation = desk_assets(
    "eod_positions", "instruments", "prices", "eod_valuation"
)

DAY = "2026-03-04"


def test_a_day_of_the_simulator_desk_is_valued_and_its_totals_are_reported(
    sqlite_url, dagster_instance
):
    resources = desk_resources(warehouse_url=sqlite_url)
    result = dg.materialize(
        [instruments, prices, eod_positions, eod_valuation],
        partition_key=DAY,
        resources=resources,
        instance=dagster_instance,
    )
    assert result.success

    repo = resources["warehouse"].repository()
    stored = [repo.valued_eod(book, DAY) for book in DeskSimulator().books()["book_id"]]
    rows = pd.concat([r for _, r in filter(None, stored)], ignore_index=True)
    assert len(rows) > 0 and rows["valued"].all()
    held = rows[rows["quantity"] != 0]
    # The simulator marks every instrument it trades, every day.
    assert held["price"].notna().all() and held["reason"].isna().all()
    pd.testing.assert_series_equal(
        held["market_value"], held["quantity"] * held["price"], check_names=False
    )

    (event,) = result.asset_materializations_for_node("eod_valuation")
    shown = {k: v.value for k, v in event.metadata.items()}
    assert event.partition == DAY
    assert shown["dagster/row_count"] == len(rows)
    assert shown["positions_without_mark"] == 0
    for currency, own in rows.groupby("base_currency"):
        assert shown[f"market_value_{currency}"] == pytest.approx(own["market_value_base"].sum())
        assert shown[f"unrealized_pnl_{currency}"] == pytest.approx(
            own["unrealized_pnl_base"].sum()
        )
