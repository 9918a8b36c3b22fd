"""Runs requested from outside the schedule (a book's snapshot, a day's ranking), via Dagster.

The HTTP API answers a command at once with the ids of the runs it will start and executes them
on one worker thread of its own process, in order, on the instance of DAGSTER_HOME: the runs
appear in the Dagster UI like a `desk backfill`'s, tagged with the request. Why in-process and not
``instance.submit_run``: the desk's instance uses the QueuedRunCoordinator (concurrency limits in
dagster.yaml), so a submitted run waits for a running `dagster-daemon`, and `desk serve` must work
on its own as `desk backfill` does; in-process runs still take the instance's pool slots, and
carry their owner's process tags so a killed server's runs are failed by the next desk command.
"""

import dataclasses
import datetime as dt
import logging
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, NotRequired

import dagster as dg
from typing_extensions import TypedDict

from desk_pipeline.definitions import build_definitions
from desk_pipeline.defs import runs as desk_runs
from desk_pipeline.defs.settings import DeskSettings
from desk_pipeline.domain.errors import InvalidRangeError

log = logging.getLogger(__name__)

REQUEST_TAG = "desk/request"
TRIGGER_TAG = "desk/trigger"
BOOK_TAG = "desk/book"
# The logger through which a command that runs Dagster in-process checks whether to stop.
STOP_CHECK_LOGGER = "desk_stop_check"
# Events Dagster logs outside an op's code: an exception raised while one is logged ends the run.
# Inside the code of an op with a retry policy (the desk's assets have one), Dagster turns an
# interrupt into a retry of the op, so a stop signal there only restarts the op; the op's retry
# event is where the command learns of it and stops the run.
_STOP_CHECK_EVENTS = frozenset({"STEP_START", "STEP_SUCCESS", "STEP_UP_FOR_RETRY"})


class _StopCheck(logging.Handler):
    def __init__(self, stop_check: Callable[[], None]) -> None:
        super().__init__(level=logging.DEBUG)
        self.stop_check = stop_check

    def emit(self, record: logging.LogRecord) -> None:
        meta = getattr(record, "dagster_meta", None) or {}
        event = meta.get("dagster_event")
        if event is not None and event.event_type_value in _STOP_CHECK_EVENTS:
            self.stop_check()


def stop_checked(job: dg.JobDefinition, stop_check: Callable[[], None]) -> dg.JobDefinition:
    """``job`` with the logger STOP_CHECK_LOGGER: ``stop_check`` at each step's start, end, retry.

    ``stop_check`` raises to stop the run (the command's stop point: a stop signal arrived).
    Enable it with ``{"loggers": {STOP_CHECK_LOGGER: {}, ...}}`` in the run config.
    """

    def stop_check_logger(_context: dg.InitLoggerContext) -> logging.Logger:
        logger = logging.Logger(STOP_CHECK_LOGGER, level=logging.DEBUG)
        logger.addHandler(_StopCheck(stop_check))
        return logger

    check = dg.LoggerDefinition(stop_check_logger, description="The command's stop point.")
    return job.with_logger_defs({**job.loggers, STOP_CHECK_LOGGER: check})


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """One run of a job of the code location: job, partition, assets (None: all) and tags."""

    job: str
    partition_key: str
    assets: tuple[str, ...] | None = None
    tags: Mapping[str, str] = dataclasses.field(default_factory=dict)

    def execute(
        self,
        definitions: dg.Definitions,
        instance: dg.DagsterInstance,
        *,
        run_id: str | None = None,
        raise_on_error: bool = True,
        stop_check: Callable[[], None] | None = None,
    ) -> dg.ExecuteInProcessResult:
        """Execute the run in this process on ``instance``, tagged with its owner.

        Args:
            definitions: the code location (:func:`definitions_for`).
            instance: where the run is recorded (the UI's instance).
            run_id: the run's id, chosen beforehand so it can be answered before the run starts.
            raise_on_error: raise the step's error instead of returning a failed result.
            stop_check: the command's stop point, checked at each step (:func:`stop_checked`).
        """
        job = definitions.resolve_job_def(self.job)
        if stop_check is not None:
            job = stop_checked(job, stop_check)
        # Dagster's console log at INFO: a server's or consumer's stderr is its log, and DEBUG
        # wrote every engine event of every run there. Plus the stop check.
        loggers: dict[str, Any] = {"console": {"config": {"log_level": "INFO"}}}
        if stop_check is not None:
            loggers[STOP_CHECK_LOGGER] = {}
        return job.execute_in_process(
            run_config={"loggers": loggers},
            instance=instance,
            partition_key=self.partition_key,
            asset_selection=None if self.assets is None else [dg.AssetKey(a) for a in self.assets],
            run_id=run_id,
            tags={**self.tags, **desk_runs.process_tags()},
            raise_on_error=raise_on_error,
        )


def definitions_for(settings: DeskSettings) -> dg.Definitions:
    """The code location's definitions, resources bound to ``settings``.

    The same definitions as the UI's when ``settings`` are the environment's (`desk serve`);
    another warehouse or source when a caller (a test) builds its own settings.
    """
    return build_definitions(settings)


def snapshot_runs(
    book: str, tags: Mapping[str, str], intraday: dg.TimeWindowPartitionsDefinition
) -> list[RunSpec]:
    """The latest closed 10-minute window's snapshot, then its day's EOD refresh.

    The assets snapshot every book (one window is one partition); ``book`` only names the
    request. The refresh is the daily job for the window's business day (EOD, valuation, marks,
    ranking), as the EOD refresh sensor runs it after a scheduled tick. ``intraday`` is the
    desk's 10-minute partitions (``desk_partitions(settings).intraday``).

    Raises:
        InvalidRangeError: no 10-minute window has closed since DESK_START_DATE.
    """
    window = last_closed_window(intraday)
    start = intraday.time_window_for_partition_key(window).start
    day = start.strftime("%Y-%m-%d")
    tags = {**tags, BOOK_TAG: book}
    return [RunSpec("intraday_job", window, tags=tags), RunSpec("daily_job", day, tags=tags)]


def last_closed_window(intraday: dg.TimeWindowPartitionsDefinition) -> str:
    """The partition key of the 10-minute window that closed last (``intraday``: the desk's).

    Raises:
        InvalidRangeError: none has closed since DESK_START_DATE (one today or in the future: a
            bad date, as a backfill's day after today is); the message names it and the fix.
    """
    window = intraday.get_last_partition_key()
    if window is None:
        raise InvalidRangeError(
            f"no 10-minute window has closed since DESK_START_DATE={intraday.start:%Y-%m-%d} "
            f"(00:00 in DESK_TIMEZONE={intraday.timezone}); set DESK_START_DATE earlier"
        )
    return window


def ranking_run(book: str, business_date: str, tags: Mapping[str, str]) -> RunSpec:
    """collateral_ranking for ``business_date``: it ranks every book of the day in one run."""
    return RunSpec(
        "daily_job", business_date, assets=("collateral_ranking",), tags={**tags, BOOK_TAG: book}
    )


def rank_snapshot(
    settings: DeskSettings,
    definitions: dg.Definitions,
    instance: dg.DagsterInstance,
    book: str,
    business_date: str,
    *,
    stop_check: Callable[[], None],
) -> None:
    """Rank ``business_date`` now, in this process on ``instance`` (seen in the UI).

    What `desk consume` does for each new PositionSnapshotCreated of ``book``: collateral_ranking
    ranks every book of the day in one run, so the day's other events find it fresh. The
    consumer builds ``definitions`` (:func:`definitions_for` of ``settings``) and opens the
    desk's instance once, not per event. ``stop_check`` is its stop point, checked at each step
    of the run.

    Raises:
        InvalidRangeError: the day is outside the desk calendar of ``settings`` (before
            DESK_START_DATE or after today): it has no daily partition to run, as for `desk
            backfill`; the message names the fix. No run is started.
        dagster.DagsterError: the run failed (the consumer retries, then dead-letters).
    """
    settings.calendar_days(business_date, business_date)
    trigger = {TRIGGER_TAG: f"desk consume: PositionSnapshotCreated {book}"}
    with desk_runs.runs_ended_on_stop(instance):
        ranking_run(book, business_date, trigger).execute(
            definitions, instance, stop_check=stop_check
        )


class RunDocument(TypedDict):
    """A run's state: Dagster's status (QUEUED while it waits for an earlier run of its request)."""

    run_id: str
    status: str
    job: str
    partition: str | None
    tags: dict[str, str]
    start_time: str | None
    end_time: str | None
    reason: NotRequired[str]


@dataclasses.dataclass
class _Pending:
    """A run of a request that is not (yet) on the instance."""

    spec: RunSpec
    status: str = "QUEUED"
    reason: str | None = None


@dataclasses.dataclass(frozen=True)
class Accepted:
    """A request's runs, in execution order; ``duplicate`` when it was already in flight."""

    run_ids: list[str]
    duplicate: bool


def _iso(seconds: float | None) -> str | None:
    return None if seconds is None else dt.datetime.fromtimestamp(seconds, dt.UTC).isoformat()


class RunQueue:
    """Runs requests' runs one after another on a worker thread, on one Dagster instance.

    One worker: two requests never compute the same partition at once in this process, and a
    request's runs run in order (a snapshot before its EOD refresh). A request is identified by a
    key; while any of its runs is in flight, submitting the same key returns the same runs.
    """

    def __init__(self, definitions: dg.Definitions, instance: dg.DagsterInstance) -> None:
        self.instance = instance
        self._definitions = definitions
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="desk-runs")
        self._lock = threading.Lock()
        self._requests: dict[str, tuple[list[str], Future[None]]] = {}
        self._pending: dict[str, _Pending] = {}

    def submit(self, key: str, specs: Sequence[RunSpec]) -> Accepted:
        """Queue ``specs`` as request ``key``, tagged with it; or return its runs in flight."""
        with self._lock:
            # Only requests in flight are remembered: an ended one is started anew.
            self._requests = {k: r for k, r in self._requests.items() if not r[1].done()}
            current = self._requests.get(key)
            if current is not None:
                return Accepted(current[0], duplicate=True)
            runs = [
                (str(uuid.uuid4()), dataclasses.replace(s, tags={**s.tags, REQUEST_TAG: key}))
                for s in specs
            ]
            self._pending.update({run_id: _Pending(spec) for run_id, spec in runs})
            future = self._worker.submit(self._execute, runs)
            self._requests[key] = ([run_id for run_id, _ in runs], future)
            return Accepted([run_id for run_id, _ in runs], duplicate=False)

    def _execute(self, runs: list[tuple[str, RunSpec]]) -> None:
        failed: str | None = None
        for run_id, spec in runs:
            if failed is not None:
                self._pending[run_id] = _Pending(spec, "CANCELED", f"run {failed} failed first")
                continue
            try:
                ok = spec.execute(
                    self._definitions, self.instance, run_id=run_id, raise_on_error=False
                ).success
                reason = "the run failed; its events are in the Dagster UI"
            # The worker's top: whatever one run raises must not stop the runs queued after it.
            except Exception as err:
                log.exception("run %s of %s failed to start", run_id, spec.tags.get(REQUEST_TAG))
                ok, reason = False, f"the run could not start: {err}"
            if self.instance.get_run_by_id(run_id) is not None:
                del self._pending[run_id]
            else:
                self._pending[run_id] = _Pending(spec, "FAILURE", reason)
            if not ok:
                failed = run_id

    def status(self, run_id: str) -> RunDocument | None:
        """The state of run ``run_id`` (any run of the instance), or None if unknown."""
        record = self.instance.get_run_record_by_id(run_id)
        if record is not None:
            run = record.dagster_run
            return {
                "run_id": run.run_id,
                "status": run.status.value,
                "job": run.job_name,
                "partition": run.tags.get("dagster/partition"),
                "tags": {k: v for k, v in run.tags.items() if k.startswith("desk/")},
                "start_time": _iso(record.start_time),
                "end_time": _iso(record.end_time),
            }
        pending = self._pending.get(run_id)
        if pending is None:
            return None
        document: RunDocument = {
            "run_id": run_id,
            "status": pending.status,
            "job": pending.spec.job,
            "partition": pending.spec.partition_key,
            "tags": dict(pending.spec.tags),
            "start_time": None,
            "end_time": None,
        }
        if pending.reason:
            document["reason"] = pending.reason
        return document

    def shutdown(self) -> None:
        """Finish the run in progress; requests not started yet are dropped."""
        self._worker.shutdown(wait=True, cancel_futures=True)
