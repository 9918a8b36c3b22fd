"""Quality rules on the stored collateral ranking, as asset checks over the warehouse.

The rules themselves are pure functions (``domain.collateral_quality`` and
``domain.collateral.issuer_concentration``); this module reads the run's days and reports.
"""

import dagster as dg
import pandas as pd

from desk_pipeline.adapters.warehouse import PositionRepository
from desk_pipeline.defs.collateral.assets import collateral_ranking
from desk_pipeline.defs.positions.checks import SAMPLE, run_days
from desk_pipeline.defs.resources import HaircutScheduleResource, WarehouseResource
from desk_pipeline.domain.collateral import holdings_from_positions, issuer_concentration
from desk_pipeline.domain.collateral_quality import (
    coverage_gaps,
    haircuts_out_of_range,
    inconsistent_values,
    misranked_book_days,
)


def _days(repo: PositionRepository, days: list[str] | None) -> list[str]:
    """The run's days, or every day with a stored EOD when the run names none."""
    if days is not None:
        return days
    return sorted(repo.eod_headers()["business_date"].unique())


def _examples(frame: pd.DataFrame, columns: list[str]) -> str:
    rows = frame.loc[:, columns].head(SAMPLE).itertuples(index=False)
    return ", ".join(" ".join(str(v) for v in row) for row in rows)


def check_every_holding_ranked_once(
    repo: PositionRepository, days: list[str] | None
) -> dg.AssetCheckResult:
    """Every held instrument of the stored EOD appears exactly once in the stored ranking."""
    covered = _days(repo, days)
    holdings = holdings_from_positions(repo.eod_positions(covered))
    gaps = coverage_gaps(holdings, repo.rankings(covered))
    return dg.AssetCheckResult(
        passed=gaps.empty,
        metadata={
            "holdings_checked": len(holdings),
            "missing": int((gaps["problem"] == "missing").sum()),
            "duplicated": int((gaps["problem"] == "duplicated").sum()),
            "not_held": int((gaps["problem"] == "not_held").sum()),
            "examples": _examples(gaps, ["book_id", "business_date", "instrument_id", "problem"]),
        },
    )


def check_values_consistent(
    repo: PositionRepository, days: list[str] | None
) -> dg.AssetCheckResult:
    """Values equal quantity x price x fx_rate x (1 - haircut); eligible ranks are 1..n by value."""
    ranking = repo.rankings(_days(repo, days))
    wrong = inconsistent_values(ranking)
    misranked = misranked_book_days(ranking)
    return dg.AssetCheckResult(
        passed=wrong.empty and misranked.empty,
        metadata={
            "items_checked": len(ranking),
            "values_inconsistent": len(wrong),
            "book_days_misranked": len(misranked),
            "examples": _examples(wrong, ["book_id", "business_date", "instrument_id"]),
            "misranked_examples": _examples(misranked, ["book_id", "business_date"]),
        },
    )


def check_haircuts_in_range(
    repo: PositionRepository, days: list[str] | None
) -> dg.AssetCheckResult:
    """Every eligible item's haircut is in [0, 1)."""
    ranking = repo.rankings(_days(repo, days))
    bad = haircuts_out_of_range(ranking)
    return dg.AssetCheckResult(
        passed=bad.empty,
        metadata={
            "eligible_checked": int(ranking["eligible"].sum()),
            "haircuts_out_of_range": len(bad),
            "examples": _examples(bad, ["book_id", "business_date", "instrument_id", "haircut"]),
        },
    )


def check_issuer_concentration(
    repo: PositionRepository, days: list[str] | None, limit: float
) -> dg.AssetCheckResult:
    """Warn when an issuer holds more than ``limit`` of a book's eligible lendable value."""
    covered = _days(repo, days)
    if not covered:
        return dg.AssetCheckResult(passed=True, metadata={"limit": limit, "issuers_over_limit": 0})
    reference = repo.reference_as_of(pd.Timestamp(covered[0]), pd.Timestamp(covered[-1]))
    shares = issuer_concentration(repo.rankings(covered), reference.instruments, limit)
    over = shares[shares["over_limit"]]
    return dg.AssetCheckResult(
        passed=over.empty,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "limit": limit,
            "max_issuer_share": float(shares["share"].max()) if len(shares) else 0.0,
            "issuers_over_limit": len(over),
            "examples": _examples(over, ["book_id", "business_date", "issuer", "share"]),
        },
    )


@dg.asset_check(
    asset=collateral_ranking,
    blocking=True,
    description="Every held instrument of the stored EOD appears exactly once in the ranking.",
)
def every_holding_ranked_once(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
) -> dg.AssetCheckResult:
    """A lost or doubled holding would misstate the book's lendable value."""
    return check_every_holding_ranked_once(warehouse.repository(), run_days(context.run.tags))


@dg.asset_check(
    asset=collateral_ranking,
    description="value = quantity x price x fx_rate x (1 - haircut); ranks 1..n by value.",
)
def ranking_values_consistent(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
) -> dg.AssetCheckResult:
    """Recompute each value from its own row and re-derive the order."""
    return check_values_consistent(warehouse.repository(), run_days(context.run.tags))


@dg.asset_check(
    asset=collateral_ranking,
    description="Every eligible item's haircut is in [0, 1).",
)
def haircuts_in_range(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
) -> dg.AssetCheckResult:
    """A haircut of 1 or more would give eligible collateral no value at all."""
    return check_haircuts_in_range(warehouse.repository(), run_days(context.run.tags))


@dg.asset_check(
    asset=collateral_ranking,
    description="No issuer above DESK_ISSUER_CONCENTRATION_LIMIT of a book's eligible value.",
)
def issuer_concentration_under_limit(
    context: dg.AssetCheckExecutionContext,
    warehouse: WarehouseResource,
    haircuts: HaircutScheduleResource,
) -> dg.AssetCheckResult:
    """Warn (without stopping the desk) when a book leans on one issuer."""
    return check_issuer_concentration(
        warehouse.repository(), run_days(context.run.tags), haircuts.issuer_concentration_limit
    )


COLLATERAL_CHECKS = [
    every_holding_ranked_once,
    ranking_values_consistent,
    haircuts_in_range,
    issuer_concentration_under_limit,
]
