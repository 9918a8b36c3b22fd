"""Trades, 10-minute position snapshots and end-of-day positions."""

from typing import Any

import dagster as dg
import pandas as pd

from desk_pipeline.defs import catalogue
from desk_pipeline.defs.end_of_day import close_days, restate_stale_days
from desk_pipeline.defs.ingestion import ingest_window, ingestion_metadata
from desk_pipeline.defs.partitions import DeskPartitions
from desk_pipeline.defs.policies import RETRY_TRANSIENT, end_of_day_asset, retried_if_transient
from desk_pipeline.defs.positions.metadata import eod_metadata, trades_metadata, windows_metadata
from desk_pipeline.defs.positions.windows import store_windows
from desk_pipeline.defs.reporting import report_days, report_restated
from desk_pipeline.defs.resources import (
    CalendarResource,
    HaircutScheduleResource,
    TradeSourceResource,
    WarehouseResource,
)


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
        )(retried_if_transient(trades)),
        dg.asset(
            deps=["trades"],
            pool="desk_intraday_positions",
            tags={"desk/layer": "snapshot"},
            metadata=catalogue.INTRADAY_POSITIONS,
            **ten_minutes,
        )(retried_if_transient(intraday_positions)),
        dg.asset(
            group_name="positions",
            deps=["intraday_positions"],
            pool="desk_eod_positions",
            metadata=catalogue.EOD_POSITIONS,
            **end_of_day_asset(partitions.daily),
        )(retried_if_transient(eod_positions)),
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
    results = ingest_window(trade_source.source(), repo, *utc_window(context))
    stored, restated = restate_stale_days(
        repo, calendar.timezone, calendar.now(), haircuts.schedule(), progress=context.log.info
    )
    report_days(
        context, trades_metadata(context.partition_keys, results, restated), context.partition_keys
    )
    if stored is not None:
        report_restated(context, eod_metadata(stored), restated)
    context.log.info(
        "trades %s: %s, restated %s",
        context.partition_key_range,
        ingestion_metadata(results),
        restated,
    )
    return dg.MaterializeResult()


def intraday_positions(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    """One row per (book, instrument): the position as of the end of the 10-minute window.

    Every window is stored, even an empty one: it is the checkpoint the next tick rolls from.
    Windows older than DESK_INTRADAY_RETENTION_DAYS are purged (EODs are kept).
    """
    ends = window_ends(context)
    stored = store_windows(
        warehouse.repository(), utc_window(context)[0], ends, warehouse.intraday_retention_days
    )
    figures = windows_metadata(context.partition_keys, ends, stored)
    report_days(context, figures, context.partition_keys)
    context.log.info(
        "intraday_positions %s: %d rows, %d old windows purged",
        context.partition_key_range,
        sum(stored.rows.values()),
        stored.purged,
    )
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
    days = context.partition_keys
    closed = close_days(
        warehouse.repository(),
        trade_source.source(),
        days,
        calendar.timezone,
        calendar.now(),
        haircuts.schedule(),
        progress=context.log.info,
    )
    per_day = eod_metadata(closed.stored)
    report_days(context, per_day, days)
    report_restated(context, per_day, closed.restated)
    # Ingestion happens once per run: its counts go on the run's last day only.
    ingestion = {f"run_trades_{k}": v for k, v in ingestion_metadata(closed.ingestion).items()}
    context.add_asset_metadata(ingestion, partition_key=days[-1])
    context.log.info(
        "eod_positions %s: %d EODs stored, restated %s, ingestion %s",
        context.partition_key_range,
        len(closed.stored.writes),
        closed.restated or "nothing",
        ingestion,
    )
    return dg.MaterializeResult()
