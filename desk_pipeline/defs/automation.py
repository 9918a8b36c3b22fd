"""Jobs, the 10-minute schedule and the sensors that keep the desk current, all on by default.

The outbox relay publishes in a run of ``outbox_relay_job``, in the run worker, outside any
sensor's time budget (``DAGSTER_SENSOR_GRPC_TIMEOUT_SECONDS``, 60 s by default): a slow broker,
a large backlog or a confirm wait can no longer time a tick out, and no publish is squeezed into
a share of a tick. ``outbox_relay_sensor`` only looks: every 30 s it requests a run when the
outbox holds publishable events, no relay run is queued or running, and the back-off after
failed relay runs has elapsed. One relay at a time, whatever launched it: the sensor skips while
a relay run is in flight (its ticks never overlap and each sees the runs the previous requested),
and the relay op takes a slot of its own pool, which the desk's dagster.yaml limits to one (as
every pool), so a run launched by hand waits. The skip is the guard that needs no instance
configuration (test and ephemeral instances limit no pool); the pool covers manual launches, and
runs.py's repair frees a slot a dead run leaked. Chosen over a run_key scheme (a key per outbox
state either repeats after a failed run, which Dagster then never runs again, or must carry the
failures anyway) and over a run-queue tag limit (queued runs piling up behind a slow relay).
A pass publishes batches in write order, marks only confirmed events and parks a poison event
with its book's later ones waiting, so per-book order and at-least-once delivery (consumers
dedupe by event id) hold whichever run a batch lands in. The cost: a run (a process under the
default launcher) per burst of events, about one per 10-minute tick, instead of a publish inside
the tick.
"""

import time
from collections.abc import Sequence

import dagster as dg

from desk_pipeline.adapters.relay import Backoff, RelayCursor, RelayResult, relay_once
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

# The relay: the sensor only looks (two run-storage reads, one or two cheap outbox queries); a
# run of outbox_relay_job publishes.
RELAY_JOB = "outbox_relay_job"
# Every relay op takes this pool's one slot (the desk's instance limits pools to 1 by default), so
# a relay launched by hand while the sensor's run publishes waits instead of interleaving a book.
RELAY_POOL = "desk_outbox_relay"
# While relay runs fail (broker down or refusing), wait 30 s, 1 min, 2 min ... 10 min after the
# last failed one before requesting the next.
RELAY_BACKOFF = Backoff(initial=30.0, factor=2.0, maximum=600.0)
# The newest finished relay runs the back-off reads: six failures in a row reach its cap.
RELAY_HISTORY = 8
# A run publishes until the outbox is empty, but starts no batch after RELAY_RUN_SECONDS and
# waits at most RELAY_CONFIRM_SECONDS for a batch's confirms (plus the adapter's 5 s connect):
# worst case ~6 min, inside the run's max runtime, which run monitoring enforces on a run that
# hangs all the same (a hung relay run would otherwise hold off every later one).
RELAY_RUN_SECONDS = 300.0
RELAY_CONFIRM_SECONDS = 60.0
RELAY_MAX_RUNTIME_SECONDS = 600
RELAY_BATCH = 500
# Statuses of a relay run that may still publish (queued included: the daemon's run queue holds
# the sensor's runs before launching them).
RELAY_IN_FLIGHT = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]
RELAY_FINISHED = [
    dg.DagsterRunStatus.SUCCESS,
    dg.DagsterRunStatus.FAILURE,
    dg.DagsterRunStatus.CANCELED,
]


def relay_summary(result: RelayResult) -> str:
    """One line of a relay pass: ``published P, failed F, backlog N, parked K[: error]``."""
    failure = f": {result.error}" if result.failed else ""
    return (
        f"published {result.published}, failed {result.failed}, backlog {result.backlog}, "
        f"parked {result.parked}{failure}"
    )


@dg.op(pool=RELAY_POOL, out=dg.Out(dg.Nothing))
def relay_outbox(
    context: dg.OpExecutionContext,
    warehouse: WarehouseResource,
    publisher: PublisherResource,
) -> dg.Output[None]:
    """Publish the outbox's pending events to the broker in write order (one relay pass).

    Metadata: ``published``, ``failed`` (events left waiting by a failed batch), ``backlog``
    (events still unpublished, parked ones included), ``parked`` (set aside by this pass),
    ``parked_total`` (set aside and not retried yet; ``desk status`` lists their reasons) and
    ``summary``, the four counts in one line, with the broker's error when a batch failed.

    Raises:
        dg.Failure: a batch was not confirmed (broker unreachable, refusing, no queue bound);
            its events wait in the outbox, in order, and the sensor backs off.
    """
    repository = warehouse.repository()
    result = relay_once(
        repository,
        publisher.publisher(timeout=RELAY_CONFIRM_SECONDS),
        RELAY_BATCH,
        deadline=time.monotonic() + RELAY_RUN_SECONDS,
    )
    parked_total = repository.parked_count() if result.backlog else 0
    summary = relay_summary(result)
    metadata: dict[str, dg.RawMetadataValue] = {
        "published": result.published,
        "failed": result.failed,
        "backlog": result.backlog,
        "parked": result.parked,
        "parked_total": parked_total,
        "summary": summary,
    }
    if result.failed:
        raise dg.Failure(description=summary, metadata=metadata)
    if result.parked:
        context.log.warning("relay: %s; `desk status` lists the parked events", summary)
    else:
        context.log.info("relay: %s", summary)
    return dg.Output(None, metadata=metadata)


@dg.job(
    name=RELAY_JOB,
    tags={"dagster/max_runtime": str(RELAY_MAX_RUNTIME_SECONDS)},
    description="Publishes the PositionSnapshotCreated events waiting in the outbox (requested "
    "by outbox_relay_sensor; one relay at a time).",
)
def outbox_relay_job() -> None:
    """One relay pass in the run worker."""
    relay_outbox()


def relay_state(finished: Sequence[dg.RunRecord], backlog: int) -> RelayCursor:
    """The back-off after the finished relay runs ``finished`` (newest first).

    A run that did not succeed counts as one failed attempt at its end; a success clears them.
    """
    state = RelayCursor(backlog=backlog)
    for record in reversed(finished):
        failed = int(record.dagster_run.status != dg.DagsterRunStatus.SUCCESS)
        ended = record.end_time or record.update_timestamp.timestamp()
        state = state.after(RelayResult(0, failed, backlog), ended, RELAY_BACKOFF)
    return state


@dg.sensor(
    job=outbox_relay_job,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Requests a run of outbox_relay_job when PositionSnapshotCreated events wait "
    "in the outbox.",
)
def outbox_relay_sensor(
    context: dg.SensorEvaluationContext, warehouse: WarehouseResource
) -> dg.RunRequest | dg.SkipReason:
    """Request a relay run when the outbox has publishable events; the cursor shows the backlog.

    No run while one is queued or running (ticks of one sensor never overlap, and the run is
    stored within the tick that requests it, so the next tick sees it), nor while the last
    relay runs failed and the back-off (state from the run history, shown in the cursor) has
    not elapsed; the events wait in the outbox. Never touches the broker.
    """
    repository = warehouse.repository()
    backlog = repository.outbox_backlog()
    instance = context.instance
    finished = instance.get_run_records(
        dg.RunsFilter(job_name=RELAY_JOB, statuses=RELAY_FINISHED), limit=RELAY_HISTORY
    )
    state = relay_state(finished, backlog)
    context.update_cursor(state.to_json())
    in_flight = instance.get_runs(
        dg.RunsFilter(job_name=RELAY_JOB, statuses=RELAY_IN_FLIGHT), limit=1
    )
    if in_flight:
        run = in_flight[0]
        return dg.SkipReason(
            f"relay run {run.run_id} is {run.status.value.lower()}; backlog {backlog}"
        )
    now = time.time()
    if now < state.retry_at:
        return dg.SkipReason(
            f"relay run {finished[0].dagster_run.run_id} failed ({state.failures} in a row: "
            f"broker unreachable or refusing); next attempt in {state.retry_at - now:.0f}s; "
            f"backlog {backlog}"
        )
    if not backlog or repository.publishable_events(limit=1).empty:
        parked = repository.parked_count() if backlog else 0
        return dg.SkipReason(f"nothing to publish; backlog {backlog}, parked {parked}")
    return dg.RunRequest()
