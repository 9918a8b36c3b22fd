"""The desk's run launcher: run workers forked from a forkserver that has imported the code once.

Dagster's DefaultRunLauncher asks the code server to start each run worker with multiprocessing
"spawn": a new interpreter imports Dagster, pandas, numba, SQLAlchemy and the desk's
definitions again for every run, about 1.2 s of a 10-minute tick's 1.8 s on this machine.
:class:`PreloadedRunLauncher` forks each run worker from a multiprocessing forkserver whose
preload has imported those modules once; the worker executes the run as ``dagster api
execute_run`` does (the run's ``job_code_origin`` reconstructed, the definitions built anew, so
the DESK_* variables are read for every run).
"""

import hashlib
import logging
import multiprocessing
import multiprocessing.forkserver
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from importlib.util import find_spec
from pathlib import Path
from typing import Any, Self

import dagster as dg
from dagster._cli.api import _execute_run_command_body
from dagster._core.instance.ref import InstanceRef
from dagster._core.launcher import (
    CheckRunHealthResult,
    LaunchRunContext,
    RunLauncher,
    WorkerStatus,
)
from dagster._serdes import (
    ConfigurableClass,
    ConfigurableClassData,
    deserialize_value,
    serialize_value,
)
from dagster._utils.interrupts import capture_interrupts

from desk_pipeline.defs.runs import process_alive, process_started

log = logging.getLogger(__name__)

# The run worker's process, as the launcher recorded it once forked. Not the ``desk/pid`` tags
# of runs.py: those name a process executing runs in-process for a `desk` command, and run
# re-executions copy a run's tags, so a queued retry would carry its dead predecessor's owner.
WORKER_HOST_TAG = "desk/worker_host"
WORKER_PID_TAG = "desk/worker_pid"
WORKER_STARTED_TAG = "desk/worker_started"
# Imported once by the forkserver: most of a spawned run worker's start-up.
# The PostgreSQL driver and dialect too: a PostgreSQL desk's worker imported them at its first
# query, about 0.3 s of every run.
DEFAULT_PRELOAD = (
    "dagster",
    "pandas",
    "numba",
    "sqlalchemy",
    "dagster._cli.api",
    "dagster_postgres",
    "psycopg",
    "sqlalchemy.dialects.postgresql.psycopg",
)
# How long terminate waits for the killed worker to be gone before recording the cancel.
KILL_WAIT_S = 5.0
# How long the diagnosis of a forkserver that could not start may take to import the code.
IMPORT_CHECK_TIMEOUT_S = 120.0
DEFAULT_CODE = (
    "desk_pipeline.definitions",
    "desk_pipeline.defs.launcher",
    "desk_pipeline.defs.event_log",
    "desk_pipeline.defs.event_log_postgres",
    "desk_pipeline.defs.preload",
)


def _run_worker(instance_ref: str, run_id: str, environ: Mapping[str, str]) -> None:
    """Execute run ``run_id`` in this (forked) process, as ``dagster api execute_run`` does.

    The environment is the launcher's at launch time, not the forkserver's at its start.
    SIGTERM and SIGINT interrupt the current step as Dagster does (a step with a retry policy is
    retried); :meth:`PreloadedRunLauncher.terminate` kills the worker instead.
    """
    os.environ.clear()
    os.environ.update(environ)
    with (
        capture_interrupts(),
        dg.DagsterInstance.from_ref(deserialize_value(instance_ref, InstanceRef)) as instance,
    ):
        # Failures are in the run's event log; the exit code is not read by anyone.
        _execute_run_command_body(
            run_id, instance, lambda _event: None, set_exit_code_on_failure=False
        )


def _source_fingerprint(modules: Sequence[str]) -> str:
    """A digest of the paths and modification times of the ``.py`` files of ``modules``' packages.

    The top-level package of each module is looked up without importing it (``find_spec``);
    one that cannot be found contributes nothing.
    """
    digest = hashlib.sha256()
    for package in sorted({module.split(".")[0] for module in modules}):
        spec = find_spec(package)
        if spec is None:
            continue
        roots = list(spec.submodule_search_locations or []) or [spec.origin or ""]
        for root in roots:
            for path in sorted(Path(root).rglob("*.py")) if Path(root).is_dir() else []:
                digest.update(f"{path}:{path.stat().st_mtime_ns}\n".encode())
    return digest.hexdigest()


class PreloadedRunLauncher(RunLauncher, ConfigurableClass):
    """Launches each run in a worker forked from a forkserver with Dagster and the code preloaded.

    Configured in desk_pipeline/instance/dagster.yaml (``run_launcher``), so the daemon's
    queued-run coordinator of `dagster dev` launches with it, as does any process holding the
    instance (the webserver when it launches directly, the tick-e2e benchmark). The forkserver
    is a child of the launching process (the daemon), started at its first launch; each worker
    is a child of the forkserver, which reaps it.

    - **Termination** (the UI's terminate, from any process on the worker's host): the run is
      marked CANCELING, its worker is killed, RUN_CANCELED is recorded and the run's pool slots
      are freed (see :meth:`terminate` for why not SIGTERM). The worker's pid and kernel start
      time are in the run's tags (``desk/worker_*``), so a reused pid is never signalled.
    - **Run monitoring**: ``check_run_worker_health`` reports FAILED for a STARTED run whose
      worker is gone (killed, OOM); the daemon's monitoring fails the run and run retries
      (dagster.yaml) launch it again. A worker on another host is reported RUNNING: only its
      host can tell.
    - **Code changes**: the forkserver holds the modules as they were when it started. Before
      each launch, the launcher compares a fingerprint of the code packages' sources
      (``code_modules``' top-level packages, paths and modification times; a few ms) with the
      forkserver's and restarts the forkserver when they differ, so a reload in the UI (which
      restarts the code server, not the daemon) and an edit are picked up by the next run.
      Changes to the preloaded libraries (``preload_modules``: a pip upgrade) need the daemon
      restarted, as they do for the daemon itself.

    Traded away against Dagster's default: the run worker runs in the launching process's
    Python environment (the code location's ``executable_path`` is not used; `dagster dev`
    runs both in one virtualenv) and on its host; runs are not resumed (no
    ``supports_resume_run``: a dead worker fails the run and run retries re-execute it from the
    failure); the forkserver and its preload are global to the launching process (Python keeps
    one forkserver per process), and its memory (~250 MB) stays resident in the daemon's tree;
    a code change costs one preload (~1.3 s) at the next launch.
    """

    def __init__(
        self,
        preload_modules: Sequence[str] = DEFAULT_PRELOAD,
        code_modules: Sequence[str] = DEFAULT_CODE,
        inst_data: ConfigurableClassData | None = None,
    ) -> None:
        self._inst_data = inst_data
        self._preload = [*preload_modules, *code_modules]
        self._code_modules = list(code_modules)
        self._context = multiprocessing.get_context("forkserver")
        self._fingerprint: str | None = None
        self._lock = threading.Lock()
        super().__init__()

    @property
    def inst_data(self) -> ConfigurableClassData | None:
        """The configuration this launcher was built from (ConfigurableClass)."""
        return self._inst_data

    @classmethod
    def config_type(cls) -> dict[str, Any]:
        """``preload_modules`` (libraries) and ``code_modules`` (watched for changes)."""
        return {
            "preload_modules": dg.Field(
                [str], is_required=False, default_value=list(DEFAULT_PRELOAD)
            ),
            "code_modules": dg.Field([str], is_required=False, default_value=list(DEFAULT_CODE)),
        }

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData, config_value: Mapping[str, Any]
    ) -> Self:
        """The launcher for the instance's ``run_launcher.config``."""
        return cls(inst_data=inst_data, **config_value)

    def _forkserver_ready(self) -> None:
        """Start the forkserver, or restart it when the code changed since it started."""
        fingerprint = _source_fingerprint(self._code_modules)
        server = multiprocessing.forkserver._forkserver  # noqa: SLF001 - the process's one forkserver
        if self._fingerprint not in (None, fingerprint):
            log.info("desk code changed: restarting the run workers' forkserver")
            # Workers already forked keep running (reparented); the new server preloads anew.
            server._stop()  # type: ignore[attr-defined]  # noqa: SLF001 - no public restart
        self._fingerprint = fingerprint
        self._context.set_forkserver_preload(self._preload)
        server.ensure_running()

    def launch_run(self, context: LaunchRunContext) -> None:
        """Fork the run's worker and record its pid in the run's tags."""
        run = context.dagster_run
        with self._lock:
            self._forkserver_ready()
            worker = self._context.Process(
                target=_run_worker,
                args=(serialize_value(self._instance.get_ref()), run.run_id, dict(os.environ)),
                name=f"dagster-run-{run.run_id}",
                daemon=False,
            )
            try:
                worker.start()
            except (EOFError, OSError) as err:
                # The forkserver died before forking: its preload could not import the code.
                # Dagster shows this message on the run; the cause is otherwise only in the
                # daemon's stderr.
                raise RunWorkerStartError(
                    f"the run worker could not be started ({type(err).__name__}): "
                    f"{_import_problem(self._code_modules) or 'see the daemon log'}"
                ) from err
        assert worker.pid is not None
        started = process_started(worker.pid)
        self._instance.add_run_tags(
            run.run_id,
            {
                WORKER_HOST_TAG: socket.gethostname(),
                WORKER_PID_TAG: str(worker.pid),
                **({WORKER_STARTED_TAG: started} if started else {}),
            },
        )
        # The forkserver reaps the worker; this thread only closes the launcher's handle on it.
        threading.Thread(target=_close_when_done, args=(worker,), daemon=True).start()

    def _worker(self, run: dg.DagsterRun) -> tuple[int, str | None] | None:
        """The run's worker (pid, start time) when it was launched on this host, else None."""
        tags = run.tags
        if tags.get(WORKER_HOST_TAG) != socket.gethostname():
            return None
        pid = tags.get(WORKER_PID_TAG, "")
        return (int(pid), tags.get(WORKER_STARTED_TAG)) if pid.isdigit() else None

    def terminate(self, run_id: str) -> bool:
        """Mark the run CANCELING, kill its worker, record RUN_CANCELED and free its pool slots.

        SIGKILL, not SIGTERM: the steps run in the worker (in-process executor), and Dagster turns
        an interrupt inside a step with a retry policy (every desk asset has RETRY_TRANSIENT) into
        a step retry, so an interrupted run carried on to SUCCESS. Each warehouse write is one
        idempotent transaction (the SIGKILL trials of e2e/test_reliability.py), so a hard stop
        loses nothing; a later run recomputes what this one did not store.

        Returns:
            False when there is no live worker on this host to stop.
        """
        run = self._instance.get_run_by_id(run_id)
        if run is None or run.is_finished:
            return False
        worker = self._worker(run)
        if worker is None or not process_alive(*worker):
            self._instance.report_engine_event(
                "No live run worker on this host to send the termination to.", run, cls=type(self)
            )
            return False
        self._instance.report_run_canceling(run)
        os.kill(worker[0], signal.SIGKILL)
        deadline = time.monotonic() + KILL_WAIT_S
        while process_alive(*worker) and time.monotonic() < deadline:
            time.sleep(0.05)
        self._instance.report_run_canceled(
            run, message=f"Run terminated: its worker (pid {worker[0]}) was stopped."
        )
        if self._instance.event_log_storage.supports_global_concurrency_limits:
            self._instance.event_log_storage.free_concurrency_slots_for_run(run_id)
        return True

    @property
    def supports_check_run_worker_health(self) -> bool:
        """Run monitoring may ask :meth:`check_run_worker_health`."""
        return True

    def check_run_worker_health(self, run: dg.DagsterRun) -> CheckRunHealthResult:
        """RUNNING while the worker's process lives (or is on another host), FAILED once gone."""
        worker = self._worker(run)
        if worker is None:
            return CheckRunHealthResult(WorkerStatus.RUNNING, "worker not on this host")
        if process_alive(*worker):
            return CheckRunHealthResult(WorkerStatus.RUNNING, run_worker_id=str(worker[0]))
        return CheckRunHealthResult(
            WorkerStatus.FAILED,
            f"run worker (pid {worker[0]}) exited without finishing the run",
            run_worker_id=str(worker[0]),
        )


class RunWorkerStartError(Exception):
    """The forkserver could not fork a run worker (most often: the desk's code does not import)."""


def _import_problem(modules: Sequence[str]) -> str | None:
    """Where and why importing ``modules`` fails in a fresh interpreter; None when it succeeds."""
    done = subprocess.run(
        [sys.executable, "-c", "import " + ", ".join(modules)],
        capture_output=True,
        text=True,
        timeout=IMPORT_CHECK_TIMEOUT_S,
        check=False,
    )
    if done.returncode == 0:
        return None
    lines = [line.strip() for line in done.stderr.splitlines() if line.strip()]
    where = [line for line in lines if line.startswith("File ")]
    return "; ".join([*where[-1:], *lines[-1:]])


def _close_when_done(worker: Any) -> None:
    worker.join()
    worker.close()
