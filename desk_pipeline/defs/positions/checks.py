"""Quality rules on trades and end-of-day positions, as asset checks over the warehouse."""

import dagster as dg
import pandas as pd

from desk_pipeline.adapters.warehouse import PositionRepository, from_micros
from desk_pipeline.defs.reporting import SAMPLE, run_days
from desk_pipeline.defs.resources import CalendarResource, WarehouseResource
from desk_pipeline.defs.settings import DeskSettings
from desk_pipeline.domain.calendar import day_bounds
from desk_pipeline.domain.positions.reconciliation import (
    duplicate_eods,
    eod_differences,
    quarantine_rate,
    recompute_eods,
    unreconciled_batches,
)
from desk_pipeline.domain.precision import for_output

EPOCH = pd.Timestamp("1970-01-01", tz="UTC")


# Offending keys listed in check metadata: enough to start an investigation, never a dump.
def check_eods_match_recomputation(
    repo: PositionRepository, days: list[str] | None, timezone: str = "UTC"
) -> dg.AssetCheckResult:
    """The stored, non-stale EODs of the last of ``days`` equal a recomputation from trades.

    Only the run's last day is recomputed, from the latest valid checkpoint before that day
    (the previous EOD) and the day's own trades, so the check costs one day however long the
    run or the stored history. All days, from the first trade, when ``days`` is None. Stale
    EODs are skipped: they are being restated.
    """
    headers = repo.eod_headers()
    if days is not None:
        headers = headers[headers["business_date"].isin(days[-1:])]
    current = headers[~headers["stale"]].assign(as_of=lambda h: from_micros(h["as_of_us"]))
    if current.empty:
        return dg.AssetCheckResult(passed=True, metadata={"eods_checked": 0})
    stored = repo.eod_positions(sorted(current["business_date"].unique()))
    stored = stored[stored["snapshot_id"].isin(current["snapshot_id"])]
    until = current["as_of"].max()
    if days is None:
        recomputed = recompute_eods(repo.trades_between(EPOCH, until), current)
    else:
        checkpoint = repo.opening(day_bounds(days[-1], timezone)[0])
        trades = repo.trades_since(checkpoint.bounds, until)
        recomputed = recompute_eods(trades, current, opening=checkpoint.positions)
    differences = eod_differences(stored, recomputed)
    bad = differences[["book_id", "business_date"]].drop_duplicates()
    return dg.AssetCheckResult(
        passed=bad.empty,
        metadata={
            "eods_checked": len(current),
            "eods_differing": len(bad),
            "rows_differing": len(differences),
            "examples": ", ".join(f"{b} {d}" for b, d in bad.head(SAMPLE).itertuples(index=False)),
        },
    )


def check_one_eod_per_book_day(
    repo: PositionRepository, days: list[str] | None = None
) -> dg.AssetCheckResult:
    """Every stored (book, business_date) of ``days`` (all when None) has exactly one snapshot."""
    owners = repo.eod_owners(days)
    duplicates = duplicate_eods(owners)
    return dg.AssetCheckResult(
        passed=duplicates.empty,
        metadata={
            "book_days": len(owners[["book_id", "business_date"]].drop_duplicates()),
            "book_days_with_several_snapshots": len(duplicates),
            "examples": ", ".join(
                f"{r.book_id} {r.business_date}" for r in duplicates.head(SAMPLE).itertuples()
            ),
        },
    )


def check_quarantine_rate(repo: PositionRepository, threshold: float) -> dg.AssetCheckResult:
    """The share of received rows that were quarantined stays at or under ``threshold``."""
    batches = repo.ingested_batches()
    rate = quarantine_rate(batches)
    return dg.AssetCheckResult(
        passed=rate <= threshold,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "quarantine_rate": for_output(rate),
            "threshold": threshold,
            "received": int(batches["received"].sum()),
            "quarantined": int(batches["quarantined"].sum()),
        },
    )


def check_trades_reconcile_with_source(repo: PositionRepository) -> dg.AssetCheckResult:
    """Per ingested batch, accepted + quarantined = received: no row lost or invented."""
    batches = repo.ingested_batches()
    off = unreconciled_batches(batches)
    return dg.AssetCheckResult(
        passed=off.empty,
        metadata={
            "batches": len(batches),
            "batches_unreconciled": len(off),
            "examples": ", ".join(off["source"].head(SAMPLE)),
        },
    )


@dg.asset_check(
    asset="eod_positions",
    blocking=True,
    description="Stored EODs equal a fresh recomputation from the stored trades.",
)
def eod_matches_recomputation(
    context: dg.AssetCheckExecutionContext,
    warehouse: WarehouseResource,
    calendar: CalendarResource,
) -> dg.AssetCheckResult:
    """Recompute the run's last day from its opening checkpoint; a difference stops the ranking."""
    return check_eods_match_recomputation(
        warehouse.repository(), run_days(context.run.tags), calendar.timezone
    )


@dg.asset_check(
    asset="eod_positions",
    blocking=True,
    description="Exactly one EOD snapshot per (book, business_date) of the run's days.",
)
def one_eod_per_book_day(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
) -> dg.AssetCheckResult:
    """Keep-last leaves one snapshot per book and day; several means a half-replaced EOD."""
    return check_one_eod_per_book_day(warehouse.repository(), run_days(context.run.tags))


@dg.asset_check(
    asset="trades",
    description="Per ingested batch, accepted + quarantined = received.",
)
def trades_reconcile_with_source(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    """Bad input is never lost: every received row is either accepted or quarantined."""
    return check_trades_reconcile_with_source(warehouse.repository())


def quarantine_rate_check(threshold: float) -> dg.AssetChecksDefinition:
    """quarantine_rate_under_threshold at ``threshold`` (DESK_MAX_QUARANTINE_RATE)."""

    @dg.asset_check(
        asset="trades",
        description="Quarantined rows stay under DESK_MAX_QUARANTINE_RATE of received rows.",
    )
    def quarantine_rate_under_threshold(warehouse: WarehouseResource) -> dg.AssetCheckResult:
        """Warn (without stopping the desk) when the source sends too much bad input."""
        return check_quarantine_rate(warehouse.repository(), threshold)

    return quarantine_rate_under_threshold


def position_checks(settings: DeskSettings) -> list[dg.AssetChecksDefinition]:
    """The quality rules on trades and EODs, with the settings' quarantine threshold."""
    return [
        eod_matches_recomputation,
        one_eod_per_book_day,
        quarantine_rate_check(settings.max_quarantine_rate),
        trades_reconcile_with_source,
    ]
