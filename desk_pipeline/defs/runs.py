"""Runs the desk starts in-process: their instance, their owner, and repair when the owner died.

`desk backfill` (and `desk consume`) execute runs inside the command's own process. When that
process is killed (OOM, a deploy, SIGKILL), its runs stay STARTED and keep their pool slots;
Dagster's run monitoring only watches runs its launcher started. So every such run carries its
owner (``desk/host``, ``desk/pid``, ``desk/pid_started``) in its tags, and any later desk
command, the daemon's ``orphaned_runs_sensor`` and ``desk doctor --repair`` fail the runs whose
owner is gone and free their slots. Overlapping backfills are refused through claims: a file per
running backfill, held locked (``flock``) by its process, so a dead backfill's claim lapses with
it.
"""

import dataclasses
import hashlib
import json
import logging
import os
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
from dagster._core.storage.event_log.base import EventLogStorage
from dagster._core.storage.event_log.sql_event_log import SqlEventLogStorage
from dagster._utils.concurrency import ConcurrencyKeyInfo
from filelock import FileLock, Timeout

from desk_pipeline.defs.settings import desk_home
from desk_pipeline.domain.calendar import business_dates

log = logging.getLogger(__name__)

HOST_TAG = "desk/host"
PID_TAG = "desk/pid"
PID_STARTED_TAG = "desk/pid_started"
BACKFILL_TAG = "desk/backfill"
# Statuses of a run whose process may still be executing it.
IN_FLIGHT = [
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]
# How often a backfill waiting on a pool slot looks for slots held by dead processes.
WATCH_SECONDS = 10.0
# The files of a desk's instance (desk_pipeline/instance/): settings and storage overlays.
INSTANCE_DIR = Path(__file__).resolve().parents[1] / "instance"
# The desk's instance settings (run queue, retries, tick retention, telemetry off) and its
# embedded storage, the files `make run` concatenates by default: a DAGSTER_HOME without a
# dagster.yaml gets them when a desk command opens it.
INSTANCE_FILES = ("dagster.yaml", "dagster-sqlite.yaml")
POSTGRES_FILES = ("dagster.yaml", "dagster-postgres.yaml")
# Every $DAGSTER_HOME/dagster.yaml a version of the desk wrote (`make run`, `make instance`, a desk
# command): the file's sha256, and the files of desk_pipeline/instance/ it stands for today. A
# desk command replaces a home's dagster.yaml with today's concatenation of those files only when
# the file is one of these, so a file an operator wrote or edited is never overwritten. When a
# file of desk_pipeline/instance/ changes, add the new concatenations and keep the old ones
# (desk_pipeline_tests/unit/test_instance_files.py names what is missing).
DESK_WRITTEN: dict[str, tuple[str, ...]] = {
    # dagster.yaml alone, Dagster's SQLite storage: the default before the storage overlays
    # (f170f22, 2b7c9a1, and 02f3ebf's, the same file until this list existed; `make instance
    # DAGSTER_YAML=dagster.yaml` chooses Dagster's own SQLite classes again).
    "84b99222fb03a4b92b48a8834cffccdd5708e9a61e69445b9a7d8667d8d76ce2": INSTANCE_FILES,
    "962a236a7ac1558e2dd2c1095b64a7a52e8030b6c212b7728b20b666afcdd63e": INSTANCE_FILES,
    "01b394e75768c0a64499139a19ef134a8f65e49f80211218793bf83da26ef06c": INSTANCE_FILES,
    # dagster.yaml + dagster-sqlite.yaml (a366299)
    "b9b48507db340ef78a934153d744ee0e3c2012c4f178b4a93928e4298b952af3": INSTANCE_FILES,
    # dagster.yaml + dagster-postgres.yaml (fd2827d, 02f3ebf, a366299, 8b671a7, 32676de)
    "0ca597de3b0860f30d8f485b4e02cce58d9803342c8234c0ed6d3b2cbd3fd6de": POSTGRES_FILES,
    "84df07ff0521adb7946a59e5df38c5064ae484a6157b54755fccc47376dc0c3e": POSTGRES_FILES,
    "71aa4162e11ba367c708c98b04b349da23409baa73df90fe0b6c879151765006": POSTGRES_FILES,
    "2825fbc7a97a7dbac7c1bb21336ae739908f739af5e4110fc5cdc6c145a42dbd": POSTGRES_FILES,
    "deed9c1fe8db2159331efea035415f30a56ff688c01b7c5e073205d2c6527a08": POSTGRES_FILES,
    # Today's files (dagster.yaml opens with the comment on this rule).
    "9e08a66dd39187eab4923708fc00add69ee49411aac632ae0b9f96aab61f0f73": ("dagster.yaml",),
    "5187ec8ca8732eec934e33982252ed57886e88138c900c2096d3ddb8f42ab406": INSTANCE_FILES,
    "83b66cfce22f346d8b7d40a1ae988f2bb2eaa2cce0cb0c2b900e41a807196b18": POSTGRES_FILES,
}


def process_started(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (clock ticks since boot), telling a reused pid apart.

    None where /proc is missing (not Linux) or the process is gone.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its last ')'.
    return stat.rsplit(")", 1)[1].split()[19]


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return False


def process_tags() -> dict[str, str]:
    """Tags naming this process as the owner of the runs it executes in-process."""
    pid = os.getpid()
    started = process_started(pid)
    return {
        HOST_TAG: socket.gethostname(),
        PID_TAG: str(pid),
        **({PID_STARTED_TAG: started} if started else {}),
    }


def process_alive(pid: int, started: str | None) -> bool:
    """Whether process ``pid`` still runs and is the one that started (not a reused pid)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's live process
    if _zombie(pid):
        return False
    return started is None or process_started(pid) in (None, started)


def _owner_gone(run: dg.DagsterRun, host: str) -> bool:
    tags = run.tags
    if tags.get(HOST_TAG) != host or not tags.get(PID_TAG, "").isdigit():
        return False  # another host's run (or not a desk run): only its own host can tell
    return not process_alive(int(tags[PID_TAG]), tags.get(PID_STARTED_TAG))


@dataclasses.dataclass(frozen=True)
class Repair:
    """One thing a repair did: a run failed because its process is gone, or slots freed."""

    run_id: str
    action: str
    slots_freed: int

    def describe(self) -> str:
        """One line for an operator."""
        return f"run {self.run_id}: {self.action}; freed {self.slots_freed} pool slot(s)"


def _slots_held(
    storage: EventLogStorage, pools: Mapping[str, ConcurrencyKeyInfo]
) -> dict[str, int]:
    held: dict[str, int] = {}
    for info in pools.values():
        for slot in info.claimed_slots:
            held[slot.run_id] = held.get(slot.run_id, 0) + 1
    for run_id in storage.get_concurrency_run_ids():
        held.setdefault(run_id, 0)
    return held


def orphaned_runs(instance: dg.DagsterInstance) -> list[dg.DagsterRun]:
    """In-flight runs of this host whose owning process is gone."""
    host = socket.gethostname()
    runs = instance.get_runs(dg.RunsFilter(statuses=IN_FLIGHT, tags={HOST_TAG: host}))
    return [run for run in runs if _owner_gone(run, host)]


def repair_orphaned_runs(instance: dg.DagsterInstance) -> list[Repair]:
    """Fail every run whose process is gone; free its slots and those of any finished run.

    Safe to run from several processes at once: a run already failed is left alone.
    """
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return []
    repairs: list[Repair] = []
    # Each pool read once per pass: its slots and its waiting steps.
    pools = {key: storage.get_concurrency_info(key) for key in storage.get_concurrency_keys()}
    held = _slots_held(storage, pools)
    for run in orphaned_runs(instance):
        current = instance.get_run_by_id(run.run_id)
        if current is None or current.status not in IN_FLIGHT:
            continue
        owner = f"pid {run.tags[PID_TAG]} on {run.tags[HOST_TAG]}"
        message = (
            f"The process that executed this run ({owner}, "
            f"{run.tags.get('desk/trigger', 'desk')}) is gone (killed or crashed); "
            "marked failed by the desk. Re-run the same command to complete the work."
        )
        instance.report_run_failed(current, message)
        storage.free_concurrency_slots_for_run(run.run_id)
        repairs.append(
            Repair(run.run_id, f"failed: its process ({owner}) is gone", held.get(run.run_id, 0))
        )
    repaired = {r.run_id for r in repairs}
    leaked = [run_id for run_id in held if run_id not in repaired]
    for record in instance.get_run_records(dg.RunsFilter(run_ids=leaked)) if leaked else []:
        run = record.dagster_run
        if run.is_finished:
            storage.free_concurrency_slots_for_run(run.run_id)
            status = run.status.value.lower()
            repairs.append(Repair(run.run_id, f"{status} run still held slots", held[run.run_id]))
    return repairs + _assign_stranded_steps(storage, pools)


def _assign_stranded_steps(
    storage: EventLogStorage, pools: Mapping[str, ConcurrencyKeyInfo]
) -> list[Repair]:
    """Give a pool's free slot to a step left waiting for it unassigned.

    Dagster assigns a waiting step a slot when the step registers and a slot is free, or when
    another step frees one; a slot freed between the two (another process's step finishing as
    this one registers) leaves the step waiting beside a free slot forever. Seen: three
    concurrent first backfills, one run blocked on desk_eod_valuation whose only slot was free.
    ``pools`` may predate this pass's frees: the free-slot test reads the storage again, and
    assigning one step too many is harmless, the slot rows stay the semaphore.
    """
    if not isinstance(storage, SqlEventLogStorage):  # the SQL storages keep the step queue
        return []
    repairs: list[Repair] = []
    for key, info in pools.items():
        waiting = [step for step in info.pending_steps if step.assigned_timestamp is None]
        if waiting and storage.has_unassigned_slots(key):
            storage.assign_pending_steps([key])
            first = min(waiting, key=lambda step: step.enqueued_timestamp)
            action = f"step {first.step_key} waited for a free slot of pool {key}; assigned"
            repairs.append(Repair(first.run_id, action, 0))
    return repairs


def instance_exists() -> bool:
    """Whether the desk's instance folder (desk_instance) holds one already.

    Opening one would create files.
    """
    return any((desk_home() / name).exists() for name in ("dagster.yaml", "history"))


def instance_yaml(*names: str) -> str:
    """The dagster.yaml `make run DAGSTER_YAML="names…"` writes: those files concatenated."""
    return "".join((INSTANCE_DIR / name).read_text(encoding="utf-8") for name in names)


def default_instance_yaml() -> str:
    """The dagster.yaml `make run` writes by default (INSTANCE_FILES)."""
    return instance_yaml(*INSTANCE_FILES)


def update_instance_file(config: Path) -> tuple[str, ...] | None:
    """Write the desk's dagster.yaml at ``config``, or bring a desk-written one up to date.

    A missing file gets :func:`default_instance_yaml`. An existing one is replaced by today's
    concatenation of the files it was written from (``make instance``'s rule: rewrite when they
    differ) only when it is byte for byte a file the desk wrote (:data:`DESK_WRITTEN`), a
    regular file that is not read-only: one an operator wrote, edited, linked (a shared file)
    or made read-only is left alone, and one that cannot be replaced (a file mounted on its own,
    a read-only folder) is used as it is, with a warning. The new file keeps the old one's
    permissions. Returns the names of the files written, else None.

    Raises:
        OSError: a missing file could not be written.
    """
    if not config.exists() and not config.is_symlink():
        _write_whole(config, instance_yaml(*INSTANCE_FILES))
        return INSTANCE_FILES
    if config.is_symlink() or not config.is_file() or not config.stat().st_mode & 0o222:
        return None
    content = config.read_bytes()
    names = DESK_WRITTEN.get(hashlib.sha256(content).hexdigest())
    if names is None or content == instance_yaml(*names).encode("utf-8"):
        return None
    try:
        _write_whole(config, instance_yaml(*names))
    except OSError as err:
        log.warning(
            "%s was written by an earlier version of the desk and cannot be brought up to date "
            "(%s); used as it is (`make instance` rewrites it)",
            config,
            err,
        )
        return None
    log.warning(
        "%s was written by an earlier version of the desk: brought up to date with %s of "
        "desk_pipeline/instance/ (`make instance DAGSTER_YAML=...` chooses other files)",
        config,
        " + ".join(names),
    )
    return names


def _write_whole(config: Path, text: str) -> None:
    """Write ``config`` whole, with an existing file's permissions; a failed write leaves none.

    Replaced whole: a process opening the instance meanwhile reads the old file or the new.
    """
    partial = config.with_name(f".{config.name}.{os.getpid()}.tmp")
    try:
        partial.write_text(text, encoding="utf-8")
        if config.exists():
            shutil.copymode(config, partial)
        partial.replace(config)
    finally:
        partial.unlink(missing_ok=True)


def desk_instance() -> dg.DagsterInstance:
    """The instance in DAGSTER_HOME, else in ./.desk: the folder of the default warehouse.

    Never an ephemeral one: a `desk` command's runs are where the UI (`make run` sets
    DAGSTER_HOME to ./.desk) and the next command look for them, its pools and orphaned-run
    repairs are the instance's, and the warehouse beside it is the one the runs write.

    Created under a file lock: Dagster's SQLite storage creates its tables when the instance is
    first opened, and two processes opening a new DAGSTER_HOME at once raced ("table runs
    already exists"). A home without a dagster.yaml gets the desk's (:func:`default_instance_yaml`)
    first, and one the desk wrote earlier is brought up to date (:func:`update_instance_file`).
    """
    home = desk_home()
    home.mkdir(parents=True, exist_ok=True)
    # The instance files read their folder from DAGSTER_HOME ({env: DAGSTER_HOME}).
    os.environ["DAGSTER_HOME"] = str(home)
    with FileLock(home / ".desk-instance.lock"):
        update_instance_file(home / "dagster.yaml")
        return dg.DagsterInstance.get()


@contextmanager
def watching_orphans(instance: dg.DagsterInstance) -> Iterator[None]:
    """While the block runs, repair dead processes' runs every WATCH_SECONDS.

    A run that waits on a pool slot held by a process killed after this run started would
    otherwise wait forever.
    """
    stop = threading.Event()

    def watch() -> None:
        while not stop.wait(WATCH_SECONDS):
            try:
                for repair in repair_orphaned_runs(instance):
                    log.warning("repaired %s", repair.describe())
            except Exception:  # a watcher that dies must not fail the backfill it watches
                log.exception("repairing orphaned runs failed; will retry")

    watcher = threading.Thread(target=watch, name="desk-orphan-watch", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        stop.set()
        watcher.join()


@contextmanager
def runs_ended_on_stop(instance: dg.DagsterInstance) -> Iterator[None]:
    """Leave no run of this process in flight or holding a pool slot when the block ends.

    Dagster ends a run it interrupts itself (FAILURE), but a stop signal or Ctrl-C between a
    run's creation and its first step (the run set up, the run's handlers not installed yet)
    leaves it NOT_STARTED, in the UI and to the next desk command's repair; and a stop raised
    as a step begins (the command's stop check) ends the run with the step's pool slot still
    claimed. This fails such a run at once, with the reason, and frees the slots of this
    process's finished runs.
    """
    try:
        yield
    finally:
        tags = process_tags()
        mine = {HOST_TAG: tags[HOST_TAG], PID_TAG: tags[PID_TAG]}
        for run in instance.get_runs(dg.RunsFilter(statuses=IN_FLIGHT, tags=mine)):
            instance.report_run_failed(
                run,
                f"The desk process that executed this run ({run.tags.get('desk/trigger', 'desk')}"
                ") was stopped before the run ended; marked failed by the desk. Re-run the same "
                "command to complete the work.",
            )
        storage = instance.event_log_storage
        pools = storage.supports_global_concurrency_limits
        holding = list(storage.get_concurrency_run_ids()) if pools else []
        for run in instance.get_runs(dg.RunsFilter(run_ids=holding, tags=mine)) if holding else []:
            if run.is_finished:
                storage.free_concurrency_slots_for_run(run.run_id)


@dataclasses.dataclass(frozen=True)
class BackfillClaim:
    """A running backfill's days and owner, as written in its claim file."""

    claim_id: str
    first: str
    last: str
    pid: int
    host: str
    started_at: float


def _live_claims(folder: Path) -> list[BackfillClaim]:
    """Claims whose process still holds them; lapsed ones (their process died) are removed."""
    claims = []
    for path in sorted(folder.glob("*.json")):
        lock = FileLock(path.with_suffix(".lock"))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            claims.append(BackfillClaim(**json.loads(path.read_text())))
            continue
        path.unlink(missing_ok=True)
        lock.release()
        path.with_suffix(".lock").unlink(missing_ok=True)
    return claims


def seconds_per_day(instance: dg.DagsterInstance) -> float | None:
    """Mean wall time per business day of this instance's recent successful desk backfills."""
    records = instance.get_run_records(
        dg.RunsFilter(
            statuses=[dg.DagsterRunStatus.SUCCESS], tags={"desk/trigger": "desk backfill"}
        ),
        limit=20,
    )
    spent = days = 0.0
    for record in records:
        tags = record.dagster_run.tags
        if record.start_time is None or record.end_time is None:
            continue
        spent += record.end_time - record.start_time
        days += len(
            business_dates(
                tags["dagster/asset_partition_range_start"],
                tags["dagster/asset_partition_range_end"],
            )
        )
    return spent / days if days else None


def _wait_message(instance: dg.DagsterInstance, holder: BackfillClaim) -> str:
    runs = instance.get_runs(
        dg.RunsFilter(statuses=IN_FLIGHT, tags={BACKFILL_TAG: holder.claim_id}), limit=1
    )
    run = f"run {runs[0].run_id}" if runs else "its first run is starting"
    per_day = seconds_per_day(instance)
    if per_day is None:
        eta = "no estimate yet: no backfill has finished on this instance"
    else:
        elapsed = time.time() - holder.started_at
        left = per_day * len(business_dates(holder.first, holder.last)) - elapsed
        eta = f"about {max(left, 0):.0f} s left, from recent backfills"
    return (
        f"the backfill of {holder.first}..{holder.last} is running ({run}; pid {holder.pid} "
        f"on {holder.host}); waiting for it to finish ({eta})"
    )


@contextmanager
def backfill_claim(
    instance: dg.DagsterInstance,
    first: str,
    last: str,
    on_wait: Callable[[str], None],
) -> Iterator[str]:
    """Claim the instance's backfill slot for days first..last; yields the claim id.

    One backfill at a time per instance, whatever its days: a backfill restates every stored
    day its late trades make stale, before or after its own range, so two at once would
    rewrite each other's days under each other's checks (seen: a first backfill of one day
    failing `every_holding_ranked_once` while another restated that day). The running backfill is
    waited for, after ``on_wait`` is told which run holds the slot and an estimate of when it
    ends; waiters take the slot in no set order. A backfill that dies drops its claim with its
    process, so waiters never wait on the dead.
    """
    folder = desk_home() / "backfills"  # beside the instance (desk_instance)
    folder.mkdir(parents=True, exist_ok=True)
    claim_id = uuid.uuid4().hex
    own = FileLock(folder / f"{claim_id}.lock")
    told: set[str] = set()
    while True:
        with FileLock(folder / ".claims.lock"):
            holder = next(iter(_live_claims(folder)), None)
            if holder is None:
                own.acquire()
                claim = BackfillClaim(
                    claim_id, first, last, os.getpid(), socket.gethostname(), time.time()
                )
                (folder / f"{claim_id}.json").write_text(json.dumps(dataclasses.asdict(claim)))
                break
        if holder.claim_id not in told:
            told.add(holder.claim_id)
            on_wait(_wait_message(instance, holder))
        # Blocks until the holder releases its claim or its process dies.
        with FileLock(folder / f"{holder.claim_id}.lock"):
            pass
        (folder / f"{holder.claim_id}.lock").unlink(missing_ok=True)
    try:
        yield claim_id
    finally:
        (folder / f"{claim_id}.json").unlink(missing_ok=True)
        own.release()
        (folder / f"{claim_id}.lock").unlink(missing_ok=True)


@dg.sensor(
    name="orphaned_runs_sensor",
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Fails runs whose desk process is gone (killed, crashed) and frees their slots.",
)
def orphaned_runs_sensor(context: dg.SensorEvaluationContext) -> dg.SkipReason:
    """The daemon's pass of :func:`repair_orphaned_runs`."""
    repairs = repair_orphaned_runs(context.instance)
    for repair in repairs:
        context.log.warning("repaired %s", repair.describe())
    return dg.SkipReason(
        "; ".join(r.describe() for r in repairs) if repairs else "no orphaned runs"
    )
