"""End-of-day valuation: each EOD position's market value and unrealised P&L at the day's marks."""

import dagster as dg

from desk_pipeline.defs import catalogue
from desk_pipeline.defs.end_of_day import store_valuations
from desk_pipeline.defs.policies import end_of_day_asset, retried_if_transient
from desk_pipeline.defs.reporting import report_days
from desk_pipeline.defs.resources import WarehouseResource
from desk_pipeline.domain.positions.valuation import valuation_summary


def valuation_asset(daily: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    """The eod_valuation asset on the business days, after the EOD and the day's marks."""
    return dg.asset(
        group_name="positions",
        deps=["eod_positions", "instruments", "prices"],
        pool="desk_eod_valuation",
        metadata=catalogue.EOD_VALUATION,
        **end_of_day_asset(daily),
    )(retried_if_transient(eod_valuation))


def eod_valuation(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    """One row per stored EOD position (book, instrument, business day) valued at the day's marks.

    Market value = quantity x price and unrealised P&L = (price - avg_price) x quantity, in the
    instrument's currency and, through the FX rate, in the book's base currency. The marks are
    the collateral ranking's (latest price on or before the day, stale after 5 days); a
    position without one keeps its row with empty values and the reason.
    """
    valuation = store_valuations(warehouse.repository(), context.partition_keys)
    report_days(
        context,
        {
            str(day): {"dagster/row_count": len(rows), **valuation_summary(rows)}
            for day, rows in valuation.groupby("business_date", sort=True)
        },
        context.partition_keys,
    )
    context.log.info("eod_valuation %s: %d rows", context.partition_key_range, len(valuation))
    return dg.MaterializeResult()
