"""Jobs, the 10-minute schedule and the sensors that keep the desk current, all on by default."""

import dagster as dg

from desk_pipeline.adapters.publisher import relay_once
from desk_pipeline.defs.collateral.assets import collateral_ranking
from desk_pipeline.defs.positions.assets import eod_positions, intraday_positions, trades
from desk_pipeline.defs.resources import PublisherResource, WarehouseResource

# One job per partitions definition: Dagster refuses mixed partitioning in one job.
intraday_job = dg.define_asset_job(
    "intraday_job",
    selection=dg.AssetSelection.assets(trades, intraday_positions),
    description="Ingest one 10-minute window of trades and snapshot every book as of its end.",
)
daily_job = dg.define_asset_job(
    "daily_job",
    selection=dg.AssetSelection.assets(eod_positions, collateral_ranking),
    description="End-of-day positions and collateral ranking for business days.",
)

# Each tick materialises the window that just closed (a tick at 10:20:05 runs 10:10-10:20).
intraday_schedule = dg.build_schedule_from_partitioned_job(
    intraday_job, default_status=dg.DefaultScheduleStatus.RUNNING
)

eod_refresh_sensor = dg.AutomationConditionSensorDefinition(
    "eod_refresh_sensor",
    target=dg.AssetSelection.assets(eod_positions, collateral_ranking),
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Refreshes today's EOD and ranking after each 10-minute snapshot.",
)


@dg.sensor(
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Publishes PositionSnapshotCreated events waiting in the outbox.",
)
def outbox_relay_sensor(
    context: dg.SensorEvaluationContext,
    warehouse: WarehouseResource,
    publisher: PublisherResource,
) -> dg.SkipReason:
    """Relay the outbox to the broker; the cursor shows the backlog in the UI."""
    result = relay_once(warehouse.repository(), publisher.publisher())
    context.update_cursor(f"backlog={result.backlog}")
    return dg.SkipReason(
        f"published {result.published}, failed {result.failed}, backlog {result.backlog}"
    )
