"""The 10-minute tick end to end: the schedule's run and the EOD refresh, launched as Dagster does.

Each desk under test is a code tree (this checkout, or another one such as an export of the
commit before a change), with its own ``DAGSTER_HOME`` holding the project's instance files
(``desk_pipeline/instance/``, as ``make instance`` writes them), its own warehouse, the demo desk's
last days backfilled with ``desk backfill``, and its own code server (``dagster api grpc`` on
the module ``desk_pipeline.definitions``, the server ``dagster dev`` starts for workspace.yaml).

- A tick is the run the 10-minute schedule creates: the schedule evaluated by the code server
  for the window's end, the run created from the code location's job snapshot and execution
  plan (``dagster._scheduler.scheduler``).
- The EOD refresh is the run the automation sensor creates after a tick: today's
  eod_positions, eod_valuation and collateral_ranking (their checks ride along) on the implicit
  asset job (``dagster._core.execution.submit_asset_runs``).

Both are launched with the instance's run launcher (``instance.launch_run``), as the queue
daemon launches them once the queue admits them (its dequeuing, which polls every few seconds,
is left out). With Dagster's DefaultRunLauncher the code server spawns the run worker; with the
desk's PreloadedRunLauncher (desk_pipeline/defs/launcher.py) the launching process (here, this
one) forks it from its multiprocessing forkserver. Either way the worker executes the steps with
the job's executor. Wall time runs from the launch to RUN_SUCCESS. CPU is that of the code
server's process tree plus the launching process's multiprocessing helpers' trees (the
forkserver, with every worker it forked and reaped, and the resource tracker), each read once
its run workers are reaped; a forkserver started by a launch counts whole, its preload
included (the warm-up's first launch). Processes nobody in those trees waits for are not
counted: a multiprocess executor's forkserver and the steps forked from it (the spawn default's
step processes are counted). The launch call itself is in ``launcher_cpu_s`` (this process).
"""

import asyncio
import dataclasses
import logging
import os
import resource
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import dagster as dg

# The scheduler's module and the daemon's import each other: the daemon's must load first.
import dagster._daemon
import pandas as pd
import sqlalchemy as sa
from dagster._core.definitions.selector import JobSubsetSelector
from dagster._core.definitions.timestamp import TimestampWithTimezone
from dagster._core.execution.submit_asset_runs import _create_asset_run
from dagster._core.storage.tags import (
    AUTO_MATERIALIZE_TAG,
    AUTOMATION_CONDITION_TAG,
    PARTITION_NAME_TAG,
)
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load_target import ModuleTarget
from dagster._scheduler.scheduler import _create_scheduler_run

log = logging.getLogger(__name__)

CODE_LOCATION = "desk_pipeline"
EOD_REFRESH = ("eod_positions", "eod_valuation", "collateral_ranking")
# The instance files `make instance` concatenates, per storage (DAGSTER_YAML in the Makefile);
# a tree from before dagster-sqlite.yaml existed has dagster.yaml alone for SQLite.
INSTANCE_FILES = {
    "sqlite": ("dagster.yaml", "dagster-sqlite.yaml"),
    "postgresql": ("dagster.yaml", "dagster-postgres.yaml"),
}
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
RUN_TIMEOUT_S = 900.0


# ---- processes (/proc) -----------------------------------------------------------------------


def _stat(pid: int) -> list[str]:
    """Fields of /proc/<pid>/stat after the command name (field 3 is index 0)."""
    # The command name may hold spaces and parentheses: split after its last ')'.
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def tree_cpu_s(pid: int) -> float:
    """CPU seconds of ``pid`` and of every child it has reaped (user + system)."""
    fields = _stat(pid)
    # utime, stime, cutime, cstime are fields 14-17 of proc(5).
    return sum(int(fields[i]) for i in range(11, 15)) / CLOCK_TICKS


def children(pid: int) -> list[int]:
    """Live child processes of ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int(_stat(int(entry.name))[1]) == pid:
                    found.append(int(entry.name))
            except (OSError, IndexError):
                continue  # gone meanwhile
    return found


def command_line(pid: int) -> str:
    """The process's command line, spaces between arguments ('' once it is gone)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def wait_for_reaped_workers(server_pid: int, deadline_s: float = 60.0) -> None:
    """Wait until the code server has reaped its run workers: their CPU is then in its own.

    Any child but the server's multiprocessing resource tracker (which lives as long as the
    server) is a run worker, running or exited and not yet reaped (a zombie).
    """
    deadline = time.monotonic() + deadline_s
    while any("resource_tracker" not in command_line(p) for p in children(server_pid)):
        if time.monotonic() > deadline:
            raise TimeoutError(f"code server {server_pid} kept its run worker {deadline_s} s")
        time.sleep(0.05)


def launcher_helpers() -> list[int]:
    """This process's multiprocessing helpers: a run launcher's forkserver, the resource tracker."""
    return [pid for pid in children(os.getpid()) if "multiprocessing" in command_line(pid)]


def wait_for_exit(pid: int, deadline_s: float = 90.0) -> None:
    """Wait until process ``pid`` has exited (a zombie counts as exited)."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        try:
            if _stat(pid)[0] == "Z":
                return
        except OSError:
            return
        time.sleep(0.1)
    raise TimeoutError(f"process {pid} still running after {deadline_s} s")


@contextmanager
def environment(env: Mapping[str, str]) -> Iterator[None]:
    """``os.environ`` replaced by ``env`` in the block (processes started in it inherit it)."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _reaped_cpu_s(pid: int) -> float:
    """CPU seconds of ``pid``'s tree once it has reaped its run workers."""
    wait_for_reaped_workers(pid)
    return tree_cpu_s(pid)


# ---- desks under test ------------------------------------------------------------------------


@contextmanager
def pg_database(admin_url: str) -> Iterator[str]:
    """A new PostgreSQL database (its name), dropped afterwards."""
    name = f"bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    try:
        yield name
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE {name} WITH (FORCE)"))
        admin.dispose()


@dataclasses.dataclass
class Desk:
    """One desk under test: its code tree, instance and code server."""

    label: str
    tree: Path
    env: dict[str, str]
    instance: dg.DagsterInstance
    context: WorkspaceProcessContext
    server_pid: int


def _desk_env(tree: Path, home: Path, warehouse: str, start: str, pg_url: str | None) -> dict:
    """The environment of a desk's processes: inherited, minus any other desk's settings.

    Bytecode is written and read as on a deployed desk: with PYTHONDONTWRITEBYTECODE (set by
    some shells and CI runners) every run worker compiled the tree's modules again.
    """
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DESK_", "DAGSTER_")) and k != "PYTHONDONTWRITEBYTECODE"
    }
    env.update(
        PYTHONPATH=str(tree),
        DAGSTER_HOME=str(home),
        DESK_WAREHOUSE_URL=warehouse,
        DESK_START_DATE=start,
        DESK_TIMEZONE="UTC",
        DESK_TRADE_SOURCE="simulator",
        DESK_EVENT_PUBLISHER="log",
    )
    if pg_url:
        env["DAGSTER_PG_URL"] = pg_url
    return env


def _backfill(tree: Path, env: Mapping[str, str], start: str, end: str) -> None:
    """``desk backfill`` of the tree, as `make run` loads the demo desk."""
    command = [sys.executable, "-c", "from desk_pipeline.cli import main; main()"]
    command += ["backfill", "--start", start, "--end", end]
    done = subprocess.run(command, cwd=tree, env=dict(env), capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"desk backfill in {tree} failed:\n{done.stderr[-4000:]}")


@contextmanager
def open_desk(
    label: str, tree: Path, database: str, workdir: Path, days: int, pg_admin_url: str
) -> Iterator[Desk]:
    """A desk on ``tree`` with ``days`` calendar days before today backfilled, its server up."""
    today = pd.Timestamp.now(tz="UTC").normalize()
    start = (today - pd.Timedelta(days=days)).strftime("%Y-%m-%d")
    end = (today - pd.Timedelta(days=1)).strftime("%Y-%m-%d")
    home = workdir / f"home-{label}-{database}-{uuid.uuid4().hex[:6]}"
    home.mkdir(parents=True)
    with ExitStack() as stack:
        if database == "postgresql":
            server = sa.make_url(pg_admin_url)
            storage = stack.enter_context(pg_database(pg_admin_url))
            warehouse_db = stack.enter_context(pg_database(pg_admin_url))
            warehouse = server.set(database=warehouse_db).render_as_string(hide_password=False)
            pg_url = server.set(drivername="postgresql", database=storage).render_as_string(
                hide_password=False
            )
        else:
            warehouse, pg_url = f"sqlite:///{home / 'warehouse.db'}", None
        instance_dir = tree / "desk_pipeline" / "instance"
        (home / "dagster.yaml").write_text(
            "".join(
                (instance_dir / name).read_text()
                for name in INSTANCE_FILES[database]
                if (instance_dir / name).exists()
            )
        )
        env = _desk_env(tree, home, warehouse, start, pg_url)
        _backfill(tree, env, start, end)
        with environment(env):
            instance = stack.enter_context(dg.DagsterInstance.from_config(str(home)))
            before = set(children(os.getpid()))
            # Closing the context only asks the server to stop: its home and databases go
            # once it has exited (callbacks run last-in, first-out).
            started: set[int] = set()
            stack.callback(lambda: [wait_for_exit(pid) for pid in started])
            target = ModuleTarget(
                module_name="desk_pipeline.definitions",
                attribute=None,
                working_directory=str(tree),
                location_name=CODE_LOCATION,
            )
            context = stack.enter_context(WorkspaceProcessContext(instance, target))
            started.update(set(children(os.getpid())) - before)
            (server_pid,) = started
        error = context.create_request_context().get_code_location_error(CODE_LOCATION)
        if error:
            raise RuntimeError(f"code location of {tree} failed to load: {error}")
        yield Desk(label, tree, env, instance, context, server_pid)


# ---- runs ------------------------------------------------------------------------------------


def _launch(desk: Desk, run: dg.DagsterRun, workspace: Any) -> dict[str, Any]:
    """Launch ``run``, wait for it to finish; wall time, CPU and the load next to them.

    Raises:
        RuntimeError: the run did not succeed (its error messages attached).
    """
    instance = desk.instance
    helpers_before = {pid: _reaped_cpu_s(pid) for pid in launcher_helpers()}
    wait_for_reaped_workers(desk.server_pid)
    cpu_before = tree_cpu_s(desk.server_pid)
    own_before = resource.getrusage(resource.RUSAGE_SELF)
    launched_at = time.time()
    # The launcher hands the run worker the instance's settings, read from the environment
    # (DAGSTER_PG_URL): each desk's own.
    with environment(desk.env):
        instance.launch_run(run.run_id, workspace)
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while True:
        record = instance.get_run_record_by_id(run.run_id)
        assert record is not None
        if record.dagster_run.is_finished:
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"run {run.run_id} of {desk.label} still running")
        # Polling costs this process CPU the run competes for: a coarse poll, and the wall
        # time from the run's own end time.
        time.sleep(0.5)
    load = os.getloadavg()
    wait_for_reaped_workers(desk.server_pid)
    # A helper started by this launch (the forkserver at its first launch) counts whole.
    helpers_cpu = sum(_reaped_cpu_s(p) - helpers_before.get(p, 0.0) for p in launcher_helpers())
    own = resource.getrusage(resource.RUSAGE_SELF)
    status = record.dagster_run.status
    if status != dg.DagsterRunStatus.SUCCESS:
        errors = [
            e.message
            for e in instance.all_logs(run.run_id)
            if e.is_dagster_event and e.dagster_event and e.dagster_event.is_failure
        ]
        raise RuntimeError(f"run {run.run_id} of {desk.label}: {status.value}: {errors}")
    steps = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_SUCCESS)
    assert record.start_time is not None and record.end_time is not None
    return {
        "run_id": run.run_id,
        "partition": run.tags.get(PARTITION_NAME_TAG),
        "status": status.value,
        "steps": len(steps),
        "wall_s": record.end_time - launched_at,
        "startup_s": record.start_time - launched_at,
        "worker_s": record.end_time - record.start_time,
        "cpu_s": tree_cpu_s(desk.server_pid) - cpu_before + helpers_cpu,
        "forkserver_cpu_s": helpers_cpu,
        "launcher_cpu_s": own.ru_utime + own.ru_stime - own_before.ru_utime - own_before.ru_stime,
        "load_1m": load[0],
    }


def launch_tick(desk: Desk, window_end: pd.Timestamp) -> dict[str, Any]:
    """The schedule's tick at ``window_end``: the run it creates, launched; see :func:`_launch`."""
    workspace = desk.context.create_request_context()
    location = workspace.get_code_location(CODE_LOCATION)
    (repository,) = location.get_repositories().values()
    (schedule,) = [s for s in repository.get_schedules() if s.job_name == "intraday_job"]
    data = location.get_schedule_execution_data(
        instance=desk.instance,
        repository_handle=repository.handle,
        schedule_name=schedule.name,
        scheduled_execution_time=TimestampWithTimezone(window_end.timestamp(), "UTC"),
        log_key=None,
    )
    (request,) = data.run_requests or []
    remote_job = location.get_job(
        JobSubsetSelector(
            location_name=location.name,
            repository_name=repository.name,
            job_name=schedule.job_name,
            op_selection=schedule.op_selection,
            asset_selection=request.asset_selection,
            asset_check_selection=request.asset_check_keys,
        )
    )
    run = _create_scheduler_run(
        desk.instance, window_end.to_pydatetime(), location, schedule, remote_job, request
    )
    return _launch(desk, run, workspace)


def launch_eod_refresh(desk: Desk, day: str) -> dict[str, Any]:
    """The automation sensor's EOD refresh of ``day``, launched; see :func:`_launch`."""
    workspace = desk.context.create_request_context()
    request = dg.RunRequest(
        asset_selection=[dg.AssetKey(key) for key in EOD_REFRESH],
        partition_key=day,
        tags={
            PARTITION_NAME_TAG: day,
            AUTO_MATERIALIZE_TAG: "true",
            AUTOMATION_CONDITION_TAG: "true",
        },
    )
    run = asyncio.run(
        _create_asset_run(None, request, 0, desk.instance, {}, desk.context, workspace, None, log)
    )
    return _launch(desk, run, workspace)


# ---- the section -----------------------------------------------------------------------------


def summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians of the runs' figures (wall, startup, worker, CPU, load), and the runs."""
    figures = (
        "wall_s",
        "startup_s",
        "worker_s",
        "cpu_s",
        "forkserver_cpu_s",
        "launcher_cpu_s",
        "load_1m",
    )
    return {
        **{f"{f}_median": statistics.median(r[f] for r in runs) for f in figures},
        "runs": runs,
    }


def _day_of(window_end: pd.Timestamp) -> str:
    """The business day (UTC) of the 10-minute window ending at ``window_end``."""
    return (window_end - pd.Timedelta(minutes=10)).strftime("%Y-%m-%d")


def measure(
    trees: Mapping[str, Path],
    database: str,
    days: int,
    repeats: int,
    workdir: Path,
    pg_admin_url: str,
) -> dict[str, Any]:
    """Ticks and EOD refreshes of every tree on ``database``, interleaved.

    Each desk first ticks and refreshes once unmeasured (``warm_up``): numba compiles a kernel
    per argument type it has not cached yet (the backfill's arrays are not all the tick's),
    which a desk does once after a deploy, not every 10 minutes. Then each repeat ticks the
    next window on every desk, then refreshes each desk's EOD of that window's day; the order
    of the desks alternates between repeats, so that they share the machine's load. The first
    label of ``trees`` is the one the others are compared with: ``speedup[label]`` is the
    other's median divided by the first's.
    """
    labels = list(trees)
    ticks: dict[str, list[dict[str, Any]]] = {label: [] for label in labels}
    refreshes: dict[str, list[dict[str, Any]]] = {label: [] for label in labels}
    warm_up: dict[str, list[dict[str, Any]]] = {label: [] for label in labels}
    with ExitStack() as stack:
        desks = [
            stack.enter_context(open_desk(label, tree, database, workdir, days, pg_admin_url))
            for label, tree in trees.items()
        ]
        last_end = pd.Timestamp.now(tz="UTC").floor("10min")
        warm_end = last_end - pd.Timedelta(minutes=10 * repeats)
        for desk in desks:
            warm_up[desk.label].append(launch_tick(desk, warm_end))
            warm_up[desk.label].append(launch_eod_refresh(desk, _day_of(warm_end)))
        for k in range(repeats):
            window_end = last_end - pd.Timedelta(minutes=10 * (repeats - 1 - k))
            order = desks if k % 2 == 0 else desks[::-1]
            for desk in order:
                ticks[desk.label].append(launch_tick(desk, window_end))
            for desk in order:
                refreshes[desk.label].append(launch_eod_refresh(desk, _day_of(window_end)))
    per_desk = {
        label: {
            "tree": str(trees[label]),
            "tick": summary(ticks[label]),
            "eod_refresh": summary(refreshes[label]),
            "warm_up": warm_up[label],
        }
        for label in labels
    }
    first = per_desk[labels[0]]
    return {
        "desks": per_desk,
        "speedup": {
            label: {
                f"{run}_{figure}": per_desk[label][run][f"{figure}_s_median"]
                / first[run][f"{figure}_s_median"]
                for run in ("tick", "eod_refresh")
                for figure in ("wall", "cpu")
            }
            for label in labels[1:]
        },
    }
