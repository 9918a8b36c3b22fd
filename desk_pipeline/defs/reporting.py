"""What a run records per partition, so that each day in the UI shows its own figures."""

from collections.abc import Mapping, Sequence
from typing import Any

import dagster as dg
import pandas as pd

# Examples a failing check lists in its metadata.
SAMPLE = 10

# The daily chain a restatement rewrites; a restated day gets a materialisation of each.
END_OF_DAY_KEYS = (
    dg.AssetKey("eod_positions"),
    dg.AssetKey("eod_valuation"),
    dg.AssetKey("collateral_ranking"),
)


def report_days(
    context: dg.AssetExecutionContext,
    figures: Mapping[str, Mapping[str, Any]],
    days: Sequence[str],
) -> None:
    """Attach each of the run's partitions its own figures (``figures[day]``; 0 rows if absent).

    A range run returns one result for all its partitions; metadata added per partition key is
    what keeps a backfill's days from all showing the range's totals.
    """
    for day in days:
        context.add_asset_metadata(
            dict(figures.get(day, {"dagster/row_count": 0})), partition_key=day
        )


def report_restated(
    context: dg.AssetExecutionContext,
    figures: Mapping[str, Mapping[str, Any]],
    restated: Sequence[str],
    *,
    cause: str = "late trades",
    chain: Sequence[dg.AssetKey] = END_OF_DAY_KEYS,
) -> None:
    """Record a materialisation of ``chain`` for each day restated outside the run's own.

    Those days were rewritten by this run (``cause`` made them stale), so the UI shows when
    and by which run, with the EOD's own figures (``figures[day]``, on the chain's first key).
    """
    for day in restated:
        for key in chain:
            metadata = dict(figures.get(day, {})) if key == chain[0] else {}
            context.log_event(
                dg.AssetMaterialization(
                    asset_key=key,
                    partition=day,
                    description=f"restated: {cause} made this day stale",
                    metadata={**metadata, "restated_by_run": context.run.run_id},
                )
            )


def run_days(tags: Mapping[str, str]) -> list[str] | None:
    """Business days a run covered, from its partition tags; None when it names none."""
    start = tags.get("dagster/asset_partition_range_start")
    end = tags.get("dagster/asset_partition_range_end")
    if start and end:
        return [d.strftime("%Y-%m-%d") for d in pd.date_range(start, end, freq="D")]
    single = tags.get("dagster/partition")
    return [single] if single else None
