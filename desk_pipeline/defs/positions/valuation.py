"""End-of-day valuation: each EOD position's market value and unrealised P&L at the day's marks."""

import dagster as dg
import pandas as pd

from desk_pipeline.defs import catalogue
from desk_pipeline.defs.collateral import reference
from desk_pipeline.defs.positions.assets import END_OF_DAY_ASSET, eod_positions
from desk_pipeline.defs.resources import WarehouseResource
from desk_pipeline.domain.valuation import valuation_summary, value_positions


@dg.asset(
    group_name="positions",
    deps=[eod_positions, reference.instruments, reference.prices],
    pool="desk_eod_valuation",
    metadata=catalogue.EOD_VALUATION,
    **END_OF_DAY_ASSET,
)
def eod_valuation(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    """One row per stored EOD position (book, instrument, business day) valued at the day's marks.

    Market value = quantity x price and unrealised P&L = (price - avg_price) x quantity, in the
    instrument's currency and, through the FX rate, in the book's base currency. The marks are
    the collateral ranking's (latest price on or before the day, stale after 5 days); a
    position without one keeps its row with empty values and the reason.
    """
    repo = warehouse.repository()
    dates = pd.DatetimeIndex(context.partition_keys)
    marks = repo.reference_as_of(dates[0] - reference.PRICE_LOOKBACK, dates[-1])
    valuation = value_positions(
        repo.eod_positions(context.partition_keys),
        marks.instruments,
        marks.prices,
        marks.books,
        marks.fx_rates,
    )
    written = repo.replace_valuations(context.partition_keys, valuation)
    summary = valuation_summary(valuation)
    context.log.info("eod_valuation %s: %d rows, %s", context.partition_key_range, written, summary)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": written,
            "books": int(valuation["book_id"].nunique()),
            "business_date": str(valuation["business_date"].max()) if written else "",
            **summary,
        }
    )
