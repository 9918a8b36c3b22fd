"""Collateral ranking: each book's end-of-day holdings by lendable value after haircuts."""

from typing import Any

import dagster as dg
import pandas as pd

from desk_pipeline.defs import catalogue
from desk_pipeline.defs.end_of_day import rank_days
from desk_pipeline.defs.policies import end_of_day_asset, retried_if_transient
from desk_pipeline.defs.reporting import report_days
from desk_pipeline.defs.resources import HaircutScheduleResource, WarehouseResource
from desk_pipeline.domain.precision import for_output


def collateral_assets(daily: dg.PartitionsDefinition) -> list[dg.AssetsDefinition]:
    """The collateral_ranking asset on the business days."""
    return [
        dg.asset(
            group_name="collateral",
            # By key: the positions and reference folders are wired by definitions.py.
            deps=["eod_positions", "instruments", "prices"],
            pool="desk_collateral_ranking",
            metadata=catalogue.COLLATERAL_RANKING,
            **end_of_day_asset(daily),
        )(retried_if_transient(collateral_ranking))
    ]


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
    days = context.partition_keys
    ranked = rank_days(
        warehouse.repository(), days, haircuts.schedule(), haircuts.issuer_concentration_limit
    )
    # Split by day once: filtering the whole range for each day grows with days squared.
    eligible = dict(list(ranked.eligible.groupby("business_date", sort=False)))
    shares = dict(list(ranked.shares.groupby("business_date", sort=False)))
    figures = {
        str(day): ranking_metadata(
            rows,
            eligible.get(day, ranked.eligible.iloc[:0]),
            shares.get(day, ranked.shares.iloc[:0]),
        )
        for day, rows in ranked.ranking.groupby("business_date", sort=True)
    }
    report_days(context, figures, days)
    context.log.info(
        "collateral_ranking %s: %d items", context.partition_key_range, len(ranked.ranking)
    )
    return dg.MaterializeResult()


def ranking_metadata(
    ranking: pd.DataFrame, eligible: pd.DataFrame, shares: pd.DataFrame
) -> dict[str, Any]:
    """One day's figures: items, lendable value per currency, top 10, issuer concentration.

    Args:
        ranking: the day's ranking rows.
        eligible: the day's ``lendable_by_currency`` rows.
        shares: the day's ``issuer_concentration`` rows.
    """
    totals = eligible.groupby("currency", sort=True)["value"].sum()
    return {
        "dagster/row_count": len(ranking),
        "books": int(ranking["book_id"].nunique()),
        "eligible_items": len(eligible),
        "ineligible_items": len(ranking) - len(eligible),
        **{f"lendable_value_{ccy}": for_output(total) for ccy, total in totals.items()},
        "top_10": dg.MetadataValue.md(top_items_markdown(eligible)),
        "max_issuer_share": for_output(shares["share"].max()) if len(shares) else 0.0,
        "issuers_over_limit": int(shares["over_limit"].sum()),
    }


def top_items_markdown(eligible: pd.DataFrame, limit: int = 10) -> str:
    """A day's ``limit`` highest lendable values per currency, as a markdown table.

    Args:
        eligible: one day's ``lendable_by_currency`` rows (ordered by currency, then value).
        limit: rows shown per currency.
    """
    if eligible.empty:
        return "no eligible collateral"
    top = eligible.groupby("currency", sort=True).head(limit)
    lines = [
        f"{eligible['business_date'].iloc[0]}: top {limit} lendable values per currency",
        "",
        "| currency | book | instrument | rank | haircut | value |",
        "|---|---|---|---:|---:|---:|",
        *(
            f"| {r.currency} | {r.book_id} | {r.instrument_id} | {r.rank} | {r.haircut:.2%} "
            f"| {r.value:,.2f} {r.currency} |"
            for r in top.itertuples()
        ),
    ]
    return "\n".join(lines)
