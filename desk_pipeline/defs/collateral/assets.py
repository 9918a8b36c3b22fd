"""Collateral ranking: each book's end-of-day holdings by lendable value after haircuts."""

import dagster as dg
import pandas as pd

from desk_pipeline.defs import catalogue
from desk_pipeline.defs.collateral.reference import PRICE_LOOKBACK, instruments, prices
from desk_pipeline.defs.positions.assets import END_OF_DAY_ASSET, eod_positions
from desk_pipeline.defs.resources import HaircutScheduleResource, WarehouseResource
from desk_pipeline.domain.collateral import (
    issuer_concentration,
    rank_collateral_days,
)

# The reference assets load with this module's (definitions.py loads this module).
__all__ = ["collateral_ranking", "instruments", "prices"]


@dg.asset(
    group_name="collateral",
    deps=[eod_positions, instruments, prices],
    pool="desk_collateral_ranking",
    metadata=catalogue.COLLATERAL_RANKING,
    **END_OF_DAY_ASSET,
)
def collateral_ranking(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    haircuts: HaircutScheduleResource,
) -> dg.MaterializeResult:
    """One row per (book, business day, held instrument): rank by lendable value after haircuts.

    Lendable value = quantity x price x fx_rate x (1 - haircut) in the book's base currency;
    ineligible holdings stay in the ranking with their reason and no rank. Reference data and
    marks come from the warehouse (the instruments and prices assets), as of each day.
    """
    repo = warehouse.repository()
    dates = pd.DatetimeIndex(context.partition_keys)
    reference = repo.reference_as_of(dates[0] - PRICE_LOOKBACK, dates[-1])
    ranking = rank_collateral_days(
        repo.eod_positions(context.partition_keys),
        reference.instruments,
        reference.prices,
        reference.books,
        reference.fx_rates,
        haircuts.schedule(),
    )
    written = repo.replace_rankings(ranking)
    shares = issuer_concentration(
        ranking, reference.instruments, haircuts.issuer_concentration_limit
    )
    eligible = ranking[ranking["eligible"]]
    context.log.info("collateral_ranking %s: %d items", context.partition_key_range, written)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": written,
            "books": int(ranking["book_id"].nunique()),
            "eligible_items": len(eligible),
            "ineligible_items": len(ranking) - len(eligible),
            "lendable_value": float(eligible["value"].sum()),
            "top_10": dg.MetadataValue.md(top_items_markdown(eligible)),
            "max_issuer_share": float(shares["share"].max()) if len(shares) else 0.0,
            "issuers_over_limit": int(shares["over_limit"].sum()),
        }
    )


def top_items_markdown(eligible: pd.DataFrame, limit: int = 10) -> str:
    """The last day's ``limit`` highest lendable values over all books, as a markdown table."""
    if eligible.empty:
        return "no eligible collateral"
    last = eligible[eligible["business_date"] == eligible["business_date"].max()]
    top = last.sort_values(
        ["value", "book_id", "instrument_id"], ascending=[False, True, True], kind="stable"
    )
    lines = [
        f"{last['business_date'].iloc[0]}",
        "",
        "| book | instrument | rank | haircut | value |",
        "|---|---|---:|---:|---:|",
        *(
            f"| {r.book_id} | {r.instrument_id} | {r.rank} | {r.haircut:.2%} | {r.value:,.2f} |"
            for r in top.head(limit).itertuples()
        ),
    ]
    return "\n".join(lines)
