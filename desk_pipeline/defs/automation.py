"""Jobs, the 10-minute schedule and the sensors that keep the desk current, all on by default.

The outbox relay publishes from ``outbox_relay_sensor`` itself, in a bounded pass that ends
well inside the sensor's time budget (``DAGSTER_SENSOR_GRPC_TIMEOUT_SECONDS``, 60 s by
default): no new batch starts after ``RELAY_PASS_SECONDS``, and a batch waits at most
``RELAY_CONFIRM_SECONDS`` for the broker's confirms (plus the adapter's 5 s connect timeout),
so the worst tick is about 35 s. What a pass leaves behind waits in the outbox, in order, for
the next tick 30 s later. Chosen over a sensor that launches a relay run: Dagster's guide to
sensor timeouts ("Troubleshooting sensor timeouts": break up sensor evaluations, raise the
timeout only as a last resort) recommends doing a bounded chunk of work per tick, and a run
per tick would add a run worker process and up to 2,880 runs a day to the runs page for what is
a sub-second publish in the normal case, plus run-level exclusion to keep one relay at a time.
Sensor ticks of one sensor never overlap, so there is one relay at a time for free; a pass
publishes batches in write order and marks only confirmed events, so per-book order and
at-least-once delivery (consumers dedupe by event id) hold whatever pass a batch lands in.
"""

import time

import dagster as dg

from desk_pipeline.adapters.publisher import Backoff, RelayCursor, relay_once
from desk_pipeline.defs.resources import PublisherResource, WarehouseResource

# By key: the assets are built from the settings (definitions.py); the jobs and the schedule take
# their partitions from them when the code location resolves.
# One job per partitions definition: Dagster refuses mixed partitioning in one job.
intraday_job = dg.define_asset_job(
    "intraday_job",
    selection=dg.AssetSelection.assets("trades", "intraday_positions"),
    description="Ingest one 10-minute window of trades and snapshot every book as of its end.",
)
daily_job = dg.define_asset_job(
    "daily_job",
    # The reference assets are upstream of the ranking: a backfill stores marks before ranking.
    selection=dg.AssetSelection.assets(
        "instruments", "prices", "eod_positions", "eod_valuation", "collateral_ranking"
    ),
    description="Reference data, marks, end-of-day positions, their valuation and the ranking "
    "for business days.",
)

# Each tick materialises the window that just closed (a tick at 10:20:05 runs 10:10-10:20).
intraday_schedule = dg.build_schedule_from_partitioned_job(
    intraday_job, default_status=dg.DefaultScheduleStatus.RUNNING
)

eod_refresh_sensor = dg.AutomationConditionSensorDefinition(
    "eod_refresh_sensor",
    target=dg.AssetSelection.assets(
        "eod_positions", "eod_valuation", "collateral_ranking", "instruments", "prices"
    ),
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Refreshes today's EOD, its valuation and the ranking after each 10-minute "
    "snapshot, and today's reference data and marks hourly.",
)

# Sensor ticks come every 30 s; while the broker is down, wait 30 s, 1 min, 2 min ... 10 min.
RELAY_BACKOFF = Backoff(initial=30.0, factor=2.0, maximum=600.0)
# A tick's time budget (Dagster's sensor timeout is 60 s): no batch starts after 15 s, and a
# batch's confirms may take 15 s more after its 5 s connect; worst case ~35 s plus the SQL.
RELAY_PASS_SECONDS = 15.0
RELAY_CONFIRM_SECONDS = 15.0
RELAY_BATCH = 500


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
    """Relay the outbox to the broker; the cursor shows the backlog in the UI.

    One bounded pass per tick (see the module docstring): a large backlog drains over several
    ticks. While the broker is unreachable the sensor backs off exponentially (state in the
    cursor) instead of waiting on a dead socket every 30 seconds; the events wait in the outbox.
    """
    state = RelayCursor.from_json(context.cursor)
    now = time.time()
    if now < state.retry_at:
        return dg.SkipReason(
            f"broker unreachable ({state.failures} failed attempts); next attempt in "
            f"{state.retry_at - now:.0f}s; backlog {state.backlog}"
        )
    result = relay_once(
        warehouse.repository(),
        publisher.publisher(timeout=RELAY_CONFIRM_SECONDS),
        RELAY_BATCH,
        deadline=time.monotonic() + RELAY_PASS_SECONDS,
    )
    context.update_cursor(state.after(result, now, RELAY_BACKOFF).to_json())
    failure = f": {result.error}" if result.failed else ""
    return dg.SkipReason(
        f"published {result.published}, failed {result.failed}, backlog {result.backlog}, "
        f"parked {result.parked}{failure}"
    )
