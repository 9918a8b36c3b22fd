"""Collateral ranking: each book's end-of-day holdings by lendable value after haircuts."""

import dagster as dg
import pandas as pd

from desk_pipeline.defs.partitions import DAILY
from desk_pipeline.defs.positions.assets import REFRESH_AFTER_TICK, eod_positions
from desk_pipeline.defs.resources import (
    HaircutScheduleResource,
    TradeSourceResource,
    WarehouseResource,
)
from desk_pipeline.domain.collateral import rank_collateral_days

# Marks older than this are not looked up: an instrument without one is ineligible (no price).
PRICE_LOOKBACK = pd.Timedelta(days=31)


@dg.asset(
    partitions_def=DAILY,
    group_name="collateral",
    deps=[eod_positions],
    kinds={"pandas", "sql"},
    backfill_policy=dg.BackfillPolicy.single_run(),
    automation_condition=REFRESH_AFTER_TICK,
)
def collateral_ranking(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    trade_source: TradeSourceResource,
    haircuts: HaircutScheduleResource,
) -> dg.MaterializeResult:
    """One row per (book, business day, held instrument): rank by lendable value after haircuts.

    Lendable value = quantity x price x fx_rate x (1 - haircut) in the book's base currency;
    ineligible holdings stay in the ranking with their reason and no rank.
    """
    repo = warehouse.repository()
    source = trade_source.source()
    dates = pd.DatetimeIndex(context.partition_keys)
    ranking = rank_collateral_days(
        repo.eod_positions(context.partition_keys),
        source.instruments(),
        source.prices(dates[0] - PRICE_LOOKBACK, dates[-1]),
        source.books(),
        source.fx_rates(dates[0] - PRICE_LOOKBACK, dates[-1]),
        haircuts.schedule(),
    )
    written = repo.replace_rankings(ranking)
    eligible = ranking[ranking["eligible"]]
    context.log.info("collateral_ranking %s: %d items", context.partition_key_range, written)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": written,
            "books": int(ranking["book_id"].nunique()),
            "eligible_items": len(eligible),
            "lendable_value": float(eligible["value"].sum()),
        }
    )
