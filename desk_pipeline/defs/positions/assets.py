"""Trades, 10-minute position snapshots and end-of-day positions."""

import dagster as dg
import pandas as pd

from desk_pipeline.defs.ingestion import ingest_window, ingestion_metadata
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
)
def trades(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    trade_source: TradeSourceResource,
) -> dg.MaterializeResult:
    """One row per trade version received from the source in the window; bad rows quarantined."""
    window = context.partition_time_window
    results = ingest_window(trade_source.source(), warehouse.repository(), window.start, window.end)
    counts = ingestion_metadata(results)
    context.log.info("trades %s: %s", context.partition_key_range, counts)
    return dg.MaterializeResult(metadata={"dagster/row_count": counts["accepted"], **counts})


@dg.asset(
    partitions_def=INTRADAY_10MIN,
    group_name="positions",
    deps=[trades],
    kinds={"pandas", "sql"},
    backfill_policy=dg.BackfillPolicy.single_run(),
)
def intraday_positions(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    """One row per (book, instrument): the position as of the end of the 10-minute window."""
    repo = warehouse.repository()
    ends = window_ends(context)
    opening = repo.opening(context.partition_time_window.start)
    snapshots = roll_positions(opening.positions, repo.trades_since(opening.bounds, ends[-1]), ends)
    by_window = dict(tuple(snapshots.groupby("as_of")))
    # Every window is stored, even an empty one: it is the checkpoint the next tick rolls from.
    written = sum(
        repo.replace_intraday(end, by_window.get(end, snapshots.iloc[0:0]), opening.read_at_us)
        for end in ends
    )
    context.log.info("intraday_positions %s: %d rows", context.partition_key_range, written)
    return dg.MaterializeResult(
        metadata={"dagster/row_count": written, "books": int(snapshots["book_id"].nunique())}
    )


@dg.asset(
    partitions_def=DAILY,
    group_name="positions",
    deps=[intraday_positions],
    kinds={"pandas", "sql"},
    backfill_policy=dg.BackfillPolicy.single_run(),
    automation_condition=REFRESH_AFTER_TICK,
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
    window = context.partition_time_window
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
    start = pd.Timestamp(window.start).tz_convert("UTC")
    ingestion = ingestion_metadata(ingest_window(trade_source.source(), repo, start, ends[-1]))
    opening = repo.opening(start)
    rolled = roll_positions(opening.positions, repo.trades_since(opening.bounds, ends[-1]), ends)
    # The first minutes of a day share their as_of with the day before: one snapshot, two days.
    snapshots = rolled.merge(as_of, on="as_of")
    writes = repo.keep_last_eod(snapshots, opening.read_at_us)
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
