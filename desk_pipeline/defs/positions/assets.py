"""Trades, 10-minute position snapshots and end-of-day positions."""

from typing import Any

import dagster as dg
import pandas as pd

from desk_pipeline.defs import catalogue
from desk_pipeline.defs.end_of_day import StoredEods, eod_as_of, restate_stale_days
from desk_pipeline.defs.ingestion import batch_counts, ingest_window, ingestion_metadata
from desk_pipeline.defs.partitions import DeskPartitions
from desk_pipeline.defs.policies import RETRY_TRANSIENT, end_of_day_asset
from desk_pipeline.defs.reporting import report_days, report_restated
from desk_pipeline.defs.resources import (
    CalendarResource,
    HaircutScheduleResource,
    TradeSourceResource,
    WarehouseResource,
)
from desk_pipeline.domain.positions.engine import roll_positions


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


def position_assets(partitions: DeskPartitions) -> list[dg.AssetsDefinition]:
    """The 10-minute trades and intraday_positions, and eod_positions on the business days."""
    ten_minutes: dict[str, Any] = {
        "partitions_def": partitions.intraday,
        "group_name": "positions",
        "kinds": {"pandas", "sql"},
        "backfill_policy": dg.BackfillPolicy.single_run(),
        "retry_policy": RETRY_TRANSIENT,
        "owners": catalogue.OWNERS,
    }
    return [
        dg.asset(
            pool="desk_trades",
            tags={"desk/layer": "ingestion"},
            metadata=catalogue.TRADES,
            **ten_minutes,
        )(trades),
        dg.asset(
            deps=["trades"],
            pool="desk_intraday_positions",
            tags={"desk/layer": "snapshot"},
            metadata=catalogue.INTRADAY_POSITIONS,
            **ten_minutes,
        )(intraday_positions),
        dg.asset(
            group_name="positions",
            deps=["intraday_positions"],
            pool="desk_eod_positions",
            metadata=catalogue.EOD_POSITIONS,
            **end_of_day_asset(partitions.daily),
        )(eod_positions),
    ]


def trades(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    trade_source: TradeSourceResource,
    calendar: CalendarResource,
    haircuts: HaircutScheduleResource,
) -> dg.MaterializeResult:
    """One row per trade version received from the source in the window; bad rows quarantined.

    A late trade (before a stored EOD's as_of) restates every stored day from its own onward,
    EOD, valuation and ranking, before the run ends.
    """
    repo = warehouse.repository()
    start, end = utc_window(context)
    results = ingest_window(trade_source.source(), repo, start, end)
    counts = ingestion_metadata(results)
    stored, restated = restate_stale_days(
        repo, calendar.timezone, calendar.now(), haircuts.schedule(), progress=context.log.info
    )
    if stored is not None:
        report_restated(context, eod_metadata(stored), restated)
    context.log.info("trades %s: %s, restated %s", context.partition_key_range, counts, restated)
    # A source delivers batches (files), not windows: a range run's counts go on its last
    # window, and the others say where to look instead of repeating the totals.
    last = context.partition_keys[-1]
    figures: dict[str, dict[str, Any]] = {
        key: {"ingested_with_window": last} for key in context.partition_keys[:-1]
    }
    figures[last] = {
        "dagster/row_count": counts["accepted"],
        **counts,
        "restated_days": ", ".join(restated),
        "batches": dg.MetadataValue.json(batch_counts(results)),
    }
    report_days(context, figures, context.partition_keys)
    return dg.MaterializeResult()


def intraday_positions(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    """One row per (book, instrument): the position as of the end of the 10-minute window."""
    repo = warehouse.repository()
    ends = window_ends(context)
    opening = repo.opening(utc_window(context)[0])
    snapshots = roll_positions(opening.positions, repo.trades_since(opening.bounds, ends[-1]), ends)
    by_window = dict(tuple(snapshots.groupby("as_of")))
    empty = snapshots.iloc[0:0]
    # Every window is stored, even an empty one: it is the checkpoint the next tick rolls from.
    written = {
        key: repo.replace_intraday(end, by_window.get(end, empty), opening.read_at_us)
        for key, end in zip(context.partition_keys, ends, strict=True)
    }
    report_days(
        context,
        {
            key: {
                "dagster/row_count": rows,
                "books": int(by_window.get(end, empty)["book_id"].nunique()),
            }
            for (key, rows), end in zip(written.items(), ends, strict=True)
        },
        context.partition_keys,
    )
    # Housekeeping: windows this old are no checkpoint anyone rolls from; EODs are kept.
    purged = repo.purge_intraday(ends[-1] - pd.Timedelta(days=warehouse.intraday_retention_days))
    context.log.info(
        "intraday_positions %s: %d rows, %d old windows purged",
        context.partition_key_range,
        sum(written.values()),
        purged,
    )
    context.add_asset_metadata({"windows_purged": purged}, partition_key=context.partition_keys[-1])
    return dg.MaterializeResult()


def eod_positions(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    trade_source: TradeSourceResource,
    calendar: CalendarResource,
    haircuts: HaircutScheduleResource,
) -> dg.MaterializeResult:
    """One row per (book, instrument, business day): the last snapshot of the day (keep-last).

    Ingests the source first (historical days need no 10-minute partitions) and rolls every
    book over the run's days and every stored day late trades made stale, in one pass. Today's
    EOD is the snapshot as of the last closed 10-minute window.
    """
    repo = warehouse.repository()
    start = utc_window(context)[0]
    as_of_end = eod_as_of(context.partition_keys[-1:], calendar.timezone, calendar.now())
    ingestion = ingestion_metadata(
        ingest_window(trade_source.source(), repo, start, as_of_end["as_of"].iloc[-1])
    )
    stored, restated = restate_stale_days(
        repo,
        calendar.timezone,
        calendar.now(),
        haircuts.schedule(),
        also=context.partition_keys,
        progress=context.log.info,
    )
    assert stored is not None  # the run's own days are always computed
    per_day = eod_metadata(stored)
    report_days(context, per_day, context.partition_keys)
    report_restated(context, per_day, restated)
    context.log.info(
        "eod_positions %s: %d rows, %d EODs stored, restated %s, ingestion %s",
        context.partition_key_range,
        len(stored.snapshots),
        len(stored.writes),
        restated or "nothing",
        ingestion,
    )
    # Ingestion happens once per run: its counts go on the run's last day only.
    context.add_asset_metadata(
        {f"run_trades_{k}": v for k, v in ingestion.items()},
        partition_key=context.partition_keys[-1],
    )
    return dg.MaterializeResult()


def eod_metadata(stored: StoredEods) -> dict[str, dict[str, Any]]:
    """Each stored day's own figures: rows, books, EODs written and restated, as_of (UTC)."""
    snapshots = stored.snapshots
    writes = pd.DataFrame(
        [(w.business_date, w.restatement) for w in stored.writes],
        columns=["business_date", "restatement"],
    )
    figures = {}
    for day, rows in snapshots.groupby("business_date", sort=True):
        written = writes[writes["business_date"] == day]
        figures[str(day)] = {
            "dagster/row_count": len(rows),
            "books": int(rows["book_id"].nunique()),
            "open_positions": int((rows["quantity"] != 0).sum()),
            "eods_stored": len(written),
            "restated": int(written["restatement"].sum()),
            "as_of": str(rows["as_of"].iloc[0]),
        }
    return figures
