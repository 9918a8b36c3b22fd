"""`desk backfill` and `desk tick`: the desk's own runs, executed in the command's process.

A backfill cuts its business days into single-run range backfills of at most
BACKFILL_CHUNK_DAYS, under a claim that refuses an overlapping backfill, while a watcher fails
runs of dead desk processes that hold the pool slots it waits for; then it relays the events its
runs wrote. Each run's tags name this process (defs/runs.py), so a later command can fail the
run if the process is killed.
"""

import dataclasses
import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

import dagster as dg

from desk_pipeline.adapters.publisher import publisher_from
from desk_pipeline.adapters.relay import relay_once
from desk_pipeline.adapters.warehouse import PositionRepository
from desk_pipeline.commands.requests import (
    STOP_CHECK_LOGGER,
    TRIGGER_TAG,
    definitions_for,
    last_closed_window,
    stop_checked,
)
from desk_pipeline.defs import runs as desk_runs
from desk_pipeline.defs.partitions import desk_partitions
from desk_pipeline.defs.settings import DeskSettings
from desk_pipeline.progress import RunProgress

# Days per Dagster run in a backfill: bounds memory and gives the progress bar steps.
BACKFILL_CHUNK_DAYS = 31


def backfill_chunks(dates: list[str]) -> list[list[str]]:
    """The business days of a backfill cut into runs of at most BACKFILL_CHUNK_DAYS."""
    return [dates[i : i + BACKFILL_CHUNK_DAYS] for i in range(0, len(dates), BACKFILL_CHUNK_DAYS)]


def run_range(
    job: Any,
    instance: dg.DagsterInstance,
    days: list[str],
    *,
    trigger: str,
    tags: dict[str, str] | None = None,
    run_config: Mapping[str, Any] | None = None,
) -> str:
    """One single-run range backfill of ``job`` over ``days``, in-process; returns the run id.

    The run's tags name this process, so a later command can fail the run if it is killed.
    ``run_config`` chooses the run's loggers (`desk backfill` shows a progress bar instead).
    """
    result = job.execute_in_process(
        run_config=run_config,
        instance=instance,
        tags={
            "dagster/asset_partition_range_start": days[0],
            "dagster/asset_partition_range_end": days[-1],
            TRIGGER_TAG: trigger,
            **desk_runs.process_tags(),
            **(tags or {}),
        },
        raise_on_error=True,
    )
    return result.run_id


@dataclasses.dataclass(frozen=True)
class BackfillResult:
    """What a backfill did: its business days, its run ids in order, then the relay's counts."""

    days: list[str]
    runs: list[str]
    events_published: int
    events_pending: int


def backfill(
    settings: DeskSettings,
    dates: list[str],
    *,
    warehouse: Callable[[], PositionRepository],
    on_wait: Callable[[str], None],
    log_level: str | None,
    on_days_done: Callable[[int], None],
    stop_check: Callable[[], None],
) -> BackfillResult:
    """Bring the warehouse up to date for business days ``dates``, then relay events.

    Days made stale by late trades, before or after the range, are restated by the runs
    themselves (defs/end_of_day.py), whichever run ingests the late trade.

    Args:
        settings: the desk's settings; the runs use the definitions bound to them.
        dates: the business days, consecutive, all in the calendar of ``settings``
            (``settings.calendar_days``: checked before anything is opened or repaired).
        warehouse: opens the warehouse, migrated; called before the first run (an unusable
            warehouse fails before any run starts) and again for the relay.
        on_wait: told, one line at a time, why the backfill waits for an overlapping one.
        log_level: Dagster's run log on stderr at that level, or None for the progress bar only.
        on_days_done: told after each run how many of ``dates``, from the first, are complete.
        stop_check: the command's stop point, checked at each step of the runs (it raises to
            stop them: :func:`desk_pipeline.commands.requests.stop_checked`).

    Raises:
        dagster.DagsterError: a run failed (it is in the Dagster UI).
    """
    defs = definitions_for(settings)
    warehouse()  # connects and migrates: an unusable warehouse fails here, before any run
    instance = desk_runs.desk_instance()
    progress = RunProgress(
        stop_checked(defs.resolve_job_def("daily_job"), stop_check),
        backfill_chunks(dates),
        log_level=log_level,
    )
    with (
        desk_runs.backfill_claim(instance, dates[0], dates[-1], on_wait=on_wait) as claim,
        desk_runs.watching_orphans(instance),
        desk_runs.runs_ended_on_stop(instance),
        progress.shown(),
    ):
        tags = {desk_runs.BACKFILL_TAG: claim}
        runs: list[str] = []
        for chunk in progress.each_chunk():
            runs.append(
                run_range(
                    progress.job,
                    instance,
                    list(chunk),
                    trigger="desk backfill",
                    tags=tags,
                    run_config=progress.run_config,
                )
            )
            on_days_done(dates.index(chunk[-1]) + 1)
    relay = relay_once(warehouse(), publisher_from(settings.event_publisher))
    return BackfillResult(dates, runs, relay.published, relay.backlog)


@dataclasses.dataclass(frozen=True)
class TickResult:
    """A tick's 10-minute window (partition key), its end and the run that snapshotted it.

    ``as_of`` is the window's end in DESK_TIMEZONE: the snapshot holds every trade before it.
    """

    window: str
    as_of: dt.datetime
    run_id: str


def tick(
    settings: DeskSettings,
    *,
    warehouse: Callable[[], PositionRepository],
    log_level: str | None,
    stop_check: Callable[[], None],
) -> TickResult:
    """Run intraday_job in-process for the 10-minute window that just closed, as the schedule does.

    Args:
        settings: the desk's settings; the run uses the definitions bound to them.
        warehouse: opens the warehouse, migrated; called before the run, so an unusable
            warehouse fails first.
        log_level: Dagster's run log on stderr at that level, or None for none.
        stop_check: the command's stop point, checked at each step of the run.

    Raises:
        InvalidRangeError: no window has closed since DESK_START_DATE.
        dagster.DagsterError: the run failed (it is in the Dagster UI).
    """
    intraday = desk_partitions(settings).intraday
    window = last_closed_window(intraday)
    defs = definitions_for(settings)
    warehouse()
    instance = desk_runs.desk_instance()
    with desk_runs.runs_ended_on_stop(instance):
        run = stop_checked(defs.resolve_job_def("intraday_job"), stop_check).execute_in_process(
            instance=instance,
            partition_key=window,
            tags={TRIGGER_TAG: "desk tick", **desk_runs.process_tags()},
            # Dagster's console log only on request, as for `desk backfill`.
            run_config={
                "loggers": {
                    "console": {"config": {"log_level": log_level or "CRITICAL"}},
                    STOP_CHECK_LOGGER: {},
                }
            },
            raise_on_error=True,
        )
    return TickResult(window, intraday.time_window_for_partition_key(window).end, run.run_id)
