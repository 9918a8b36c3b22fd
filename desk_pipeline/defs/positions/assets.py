"""Trades, 10-minute position snapshots and end-of-day positions."""

from typing import Any

import dagster as dg
import pandas as pd

from desk_pipeline.defs import catalogue
from desk_pipeline.defs.ingestion import batch_counts, ingest_window, ingestion_metadata
from desk_pipeline.defs.partitions import DAILY, INTRADAY_10MIN
from desk_pipeline.defs.resources import CalendarResource, TradeSourceResource, WarehouseResource
from desk_pipeline.domain.calendar import day_bounds
from desk_pipeline.domain.positions import roll_positions

# Today's EOD is refreshed after each tick; these conditions keep it refreshing all day,
# where eager() stalls after one missed window (see ARCHITECTURE.md).
REFRESH_AFTER_TICK = (
    dg.AutomationCondition.in_latest_time_window(lookback_delta=pd.Timedelta(days=2))
    & dg.AutomationCondition.any_deps_updated().since_last_handled()
    & ~dg.AutomationCondition.any_deps_in_progress()
    & ~dg.AutomationCondition.in_progress()
)
# Days per progress step of an EOD backfill (each step is one keep-last transaction).
PROGRESS_DAYS = 31

# A dropped connection, failover or serialisation failure passes on retry; the waits grow
# 2 s, 4 s, 8 s. Writes are idempotent (keep-last, replace-window, batch digests), so a retry
# after a half-seen failure is safe.
RETRY_TRANSIENT = dg.RetryPolicy(max_retries=3, delay=2, backoff=dg.Backoff.EXPONENTIAL)

# What every daily end-of-day asset (EOD, valuation, ranking) shares: daily partitions refreshed
# after each tick, ranges backfilled in one run, transient failures retried.
END_OF_DAY_ASSET: dict[str, Any] = {
    "partitions_def": DAILY,
    "kinds": {"pandas", "sql"},
    "backfill_policy": dg.BackfillPolicy.single_run(),
    "automation_condition": REFRESH_AFTER_TICK,
    "retry_policy": RETRY_TRANSIENT,
    "owners": catalogue.OWNERS,
    "tags": {"desk/layer": "eod"},
}


def utc_window(context: dg.AssetExecutionContext) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The run's partition time window as UTC timestamps (Dagster hands out datetimes)."""
    window = context.partition_time_window
    return pd.Timestamp(window.start).tz_convert("UTC"), pd.Timestamp(window.end).tz_convert("UTC")


def window_ends(context: dg.AssetExecutionContext) -> pd.DatetimeIndex:
    """UTC end of every 10-minute partition in the run, ascending."""
    partitions_def = context.assets_def.partitions_def
    assert isinstance(partitions_def, dg.TimeWindowPartitionsDefinition)
    ends = [partitions_def.time_window_for_partition_key(k).end for k in context.partition_keys]
    return pd.DatetimeIndex([pd.Timestamp(e).tz_convert("UTC") for e in ends])


@dg.asset(
    partitions_def=INTRADAY_10MIN,
    group_name="positions",
    kinds={"pandas", "sql"},
    backfill_policy=dg.BackfillPolicy.single_run(),
    retry_policy=RETRY_TRANSIENT,
    pool="desk_trades",
    owners=catalogue.OWNERS,
    tags={"desk/layer": "ingestion"},
    metadata=catalogue.TRADES,
)
def trades(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    trade_source: TradeSourceResource,
) -> dg.MaterializeResult:
    """One row per trade version received from the source in the window; bad rows quarantined."""
    start, end = utc_window(context)
    results = ingest_window(trade_source.source(), warehouse.repository(), start, end)
    counts = ingestion_metadata(results)
    context.log.info("trades %s: %s", context.partition_key_range, counts)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": counts["accepted"],
            **counts,
            "batches": dg.MetadataValue.json(batch_counts(results)),
        }
    )


@dg.asset(
    partitions_def=INTRADAY_10MIN,
    group_name="positions",
    deps=[trades],
    kinds={"pandas", "sql"},
    backfill_policy=dg.BackfillPolicy.single_run(),
    retry_policy=RETRY_TRANSIENT,
    pool="desk_intraday_positions",
    owners=catalogue.OWNERS,
    tags={"desk/layer": "snapshot"},
    metadata=catalogue.INTRADAY_POSITIONS,
)
def intraday_positions(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    """One row per (book, instrument): the position as of the end of the 10-minute window."""
    repo = warehouse.repository()
    ends = window_ends(context)
    opening = repo.opening(utc_window(context)[0])
    snapshots = roll_positions(opening.positions, repo.trades_since(opening.bounds, ends[-1]), ends)
    by_window = dict(tuple(snapshots.groupby("as_of")))
    # Every window is stored, even an empty one: it is the checkpoint the next tick rolls from.
    written = sum(
        repo.replace_intraday(end, by_window.get(end, snapshots.iloc[0:0]), opening.read_at_us)
        for end in ends
    )
    # Housekeeping: windows this old are no checkpoint anyone rolls from; EODs are kept.
    purged = repo.purge_intraday(ends[-1] - pd.Timedelta(days=warehouse.intraday_retention_days))
    context.log.info(
        "intraday_positions %s: %d rows, %d old windows purged",
        context.partition_key_range,
        written,
        purged,
    )
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": written,
            "books": int(snapshots["book_id"].nunique()),
            "windows_purged": purged,
        }
    )


@dg.asset(
    group_name="positions",
    deps=[intraday_positions],
    pool="desk_eod_positions",
    metadata=catalogue.EOD_POSITIONS,
    **END_OF_DAY_ASSET,
)
def eod_positions(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    trade_source: TradeSourceResource,
    calendar: CalendarResource,
) -> dg.MaterializeResult:
    """One row per (book, instrument, business day): the last snapshot of the day (keep-last).

    Historical days ingest and roll their own trades in one pass, without 10-minute partitions;
    today's EOD is the snapshot as of the last closed 10-minute window.
    """
    repo = warehouse.repository()
    start = utc_window(context)[0]
    now = calendar.now()
    closed = now.floor("10min")
    as_of = pd.DataFrame(
        {
            "business_date": context.partition_keys,
            "as_of": [
                min(day_bounds(d, calendar.timezone)[1], closed) for d in context.partition_keys
            ],
        }
    )
    ends = pd.DatetimeIndex(as_of["as_of"].unique())
    ingestion = ingestion_metadata(ingest_window(trade_source.source(), repo, start, ends[-1]))
    opening = repo.opening(start)
    rolled = roll_positions(opening.positions, repo.trades_since(opening.bounds, ends[-1]), ends)
    # The first minutes of a day share their as_of with the day before: one snapshot, two days.
    snapshots = rolled.merge(as_of, on="as_of")
    writes = []
    # Stored in chunks of days, so a long backfill reports progress in the run's logs.
    for first in range(0, len(as_of), PROGRESS_DAYS):
        days = as_of["business_date"].iloc[first : first + PROGRESS_DAYS]
        chunk = snapshots[snapshots["business_date"].isin(days)]
        writes += repo.keep_last_eod(chunk, opening.read_at_us)
        context.log.info(
            "eod_positions: days %s..%s stored (%d of %d days), %d EODs written so far",
            days.iloc[0],
            days.iloc[-1],
            first + len(days),
            len(as_of),
            len(writes),
        )
    writes += repo.empty_missing_eods(snapshots, as_of, opening.read_at_us)
    context.log.info(
        "eod_positions %s: %d rows, %d EODs stored",
        context.partition_key_range,
        len(snapshots),
        len(writes),
    )
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(snapshots),
            "books": int(snapshots["book_id"].nunique()),
            "eods_stored": len(writes),
            "restated": sum(w.restatement for w in writes),
            "trades_quarantined": ingestion["quarantined"],
            "as_of": str(ends[-1]) if len(ends) else "",
        }
    )
