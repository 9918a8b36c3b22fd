"""Quality rules on the stored collateral ranking, as asset checks over the warehouse.

The rules themselves are pure functions (``domain.collateral.quality`` and
``domain.collateral.ranking.issuer_concentration``); this module reads the run's days once and
reports.
"""

from collections.abc import Iterator, Mapping
from typing import Any

import dagster as dg
import pandas as pd

from desk_pipeline.adapters.warehouse import PositionRepository
from desk_pipeline.defs.reporting import SAMPLE, run_days
from desk_pipeline.defs.resources import HaircutScheduleResource, WarehouseResource
from desk_pipeline.domain.collateral.holdings import holdings_from_positions
from desk_pipeline.domain.collateral.quality import (
    coverage_gaps,
    haircuts_out_of_range,
    inconsistent_values,
    misranked_book_days,
)
from desk_pipeline.domain.collateral.ranking import issuer_concentration
from desk_pipeline.domain.precision import for_output
from desk_pipeline.domain.schema import INSTRUMENT_DTYPES, empty_frame

EVERY_HOLDING_RANKED_ONCE = dg.AssetCheckSpec(
    "every_holding_ranked_once",
    asset="collateral_ranking",
    # A lost or doubled holding would misstate the book's lendable value.
    blocking=True,
    description="Every held instrument of the stored EOD appears exactly once in the ranking.",
)
RANKING_VALUES_CONSISTENT = dg.AssetCheckSpec(
    "ranking_values_consistent",
    asset="collateral_ranking",
    description="value = quantity x price x fx_rate x (1 - haircut); ranks 1..n by value.",
)
HAIRCUTS_IN_RANGE = dg.AssetCheckSpec(
    "haircuts_in_range",
    asset="collateral_ranking",
    description="Every eligible item's haircut is in [0, 1).",
)
RANKED_AT_CURRENT_MARKS = dg.AssetCheckSpec(
    "ranked_at_current_marks",
    asset="collateral_ranking",
    description=(
        "No day was valued and ranked at a price or FX rate that has changed since (the prices "
        "asset restates such days; a run of prices for any day does)."
    ),
)
ISSUER_CONCENTRATION_UNDER_LIMIT = dg.AssetCheckSpec(
    "issuer_concentration_under_limit",
    asset="collateral_ranking",
    description="No issuer above DESK_ISSUER_CONCENTRATION_LIMIT of a book's eligible value.",
)


def _days(repo: PositionRepository, days: list[str] | None) -> list[str]:
    """The run's days, or every day with a stored EOD when the run names none."""
    if days is not None:
        return days
    return sorted(repo.eod_headers()["business_date"].unique())


def _examples(frame: pd.DataFrame, columns: list[str]) -> str:
    rows = frame.loc[:, columns].head(SAMPLE).itertuples(index=False)
    return ", ".join(" ".join(str(v) for v in row) for row in rows)


def _result(
    spec: dg.AssetCheckSpec,
    passed: bool,
    metadata: Mapping[str, Any],
    severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.ERROR,
) -> dg.AssetCheckResult:
    """The result addressed to ``spec``'s check, as a multi-asset check must yield it."""
    return dg.AssetCheckResult(
        check_name=spec.name,
        asset_key=spec.asset_key,
        passed=passed,
        severity=severity,
        metadata=metadata,
    )


def check_every_holding_ranked_once(
    positions: pd.DataFrame, ranking: pd.DataFrame
) -> dg.AssetCheckResult:
    """Every held instrument of the stored EOD ``positions`` appears exactly once in ``ranking``."""
    holdings = holdings_from_positions(positions)
    gaps = coverage_gaps(holdings, ranking)
    return _result(
        EVERY_HOLDING_RANKED_ONCE,
        passed=gaps.empty,
        metadata={
            "holdings_checked": len(holdings),
            "missing": int((gaps["problem"] == "missing").sum()),
            "duplicated": int((gaps["problem"] == "duplicated").sum()),
            "not_held": int((gaps["problem"] == "not_held").sum()),
            "examples": _examples(gaps, ["book_id", "business_date", "instrument_id", "problem"]),
        },
    )


def check_values_consistent(ranking: pd.DataFrame) -> dg.AssetCheckResult:
    """Values equal quantity x price x fx_rate x (1 - haircut); eligible ranks are 1..n by value."""
    wrong = inconsistent_values(ranking)
    misranked = misranked_book_days(ranking)
    return _result(
        RANKING_VALUES_CONSISTENT,
        passed=wrong.empty and misranked.empty,
        metadata={
            "items_checked": len(ranking),
            "values_inconsistent": len(wrong),
            "book_days_misranked": len(misranked),
            "examples": _examples(wrong, ["book_id", "business_date", "instrument_id"]),
            "misranked_examples": _examples(misranked, ["book_id", "business_date"]),
        },
    )


def check_haircuts_in_range(ranking: pd.DataFrame) -> dg.AssetCheckResult:
    """Every eligible item's haircut is in [0, 1): 1 or more would leave it no value at all."""
    bad = haircuts_out_of_range(ranking)
    return _result(
        HAIRCUTS_IN_RANGE,
        passed=bad.empty,
        metadata={
            "eligible_checked": int(ranking["eligible"].sum()),
            "haircuts_out_of_range": len(bad),
            "examples": _examples(bad, ["book_id", "business_date", "instrument_id", "haircut"]),
        },
    )


def check_issuer_concentration(
    ranking: pd.DataFrame, instruments: pd.DataFrame, limit: float
) -> dg.AssetCheckResult:
    """Warn (without stopping the desk) when an issuer holds more than ``limit`` of a book's value.

    ``limit`` is a share of the book-day's eligible lendable value.
    """
    shares = issuer_concentration(ranking, instruments, limit)
    over = shares[shares["over_limit"]]
    return _result(
        ISSUER_CONCENTRATION_UNDER_LIMIT,
        passed=over.empty,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "limit": limit,
            "max_issuer_share": for_output(shares["share"].max()) if len(shares) else 0.0,
            "issuers_over_limit": len(over),
            "examples": _examples(over, ["book_id", "business_date", "issuer", "share"]),
        },
    )


@dg.multi_asset_check(
    specs=[
        EVERY_HOLDING_RANKED_ONCE,
        RANKING_VALUES_CONSISTENT,
        HAIRCUTS_IN_RANGE,
        ISSUER_CONCENTRATION_UNDER_LIMIT,
        RANKED_AT_CURRENT_MARKS,
    ],
)
def collateral_ranking_checks(
    context: dg.AssetCheckExecutionContext,
    warehouse: WarehouseResource,
    haircuts: HaircutScheduleResource,
) -> Iterator[dg.AssetCheckResult]:
    """The ranking rules over one read of the run's days, rankings and EOD positions.

    One op rather than one per rule so a long backfill reads its rankings (~25k rows a day)
    once, not once per rule; the read takes only the columns the rules use, ids as categoricals
    the two frames share (``rankings_and_eod_rows``). The blocking coverage rule still stops
    downstream assets when it fails.
    """
    repo = warehouse.repository()
    days = _days(repo, run_days(context.run.tags))
    positions, ranking = repo.rankings_and_eod_rows(days)
    # The instrument master is not dated: one day's reference read carries all of it, without
    # the marks of every day of the run.
    instruments = (
        repo.reference_as_of(pd.Timestamp(days[-1]), pd.Timestamp(days[-1])).instruments
        if days
        else empty_frame(INSTRUMENT_DTYPES)
    )
    yield check_every_holding_ranked_once(positions, ranking)
    yield check_values_consistent(ranking)
    yield check_haircuts_in_range(ranking)
    yield check_issuer_concentration(ranking, instruments, haircuts.issuer_concentration_limit)
    yield check_ranked_at_current_marks(repo.days_stale_by_marks()[0], days)


def check_ranked_at_current_marks(stale: list[str], days: list[str]) -> dg.AssetCheckResult:
    """Fail when a day of ``days`` was ranked at a mark that changed since (``stale`` days)."""
    hit = sorted(set(stale) & set(days))
    return _result(
        RANKED_AT_CURRENT_MARKS,
        not hit,
        {
            "stale_days": len(hit),
            "examples": ", ".join(hit[:SAMPLE]),
            "restate": "materialise prices for any day, or `desk backfill` any day" if hit else "",
        },
    )


COLLATERAL_CHECKS = [collateral_ranking_checks]
