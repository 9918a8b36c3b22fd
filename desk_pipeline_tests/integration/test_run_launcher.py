"""PreloadedRunLauncher: runs launched through an instance with dagster.yaml's run launcher.

A run succeeds in a worker forked from the forkserver; the UI's terminate cancels a running
run; a worker killed under a run is found by run monitoring's health check and fails the run.
"""

import logging
import os
import signal
import time
from collections.abc import Iterator

import dagster as dg
import pytest
import yaml
from dagster._core.launcher import WorkerStatus
from dagster._daemon.monitoring.run_monitoring import monitor_started_run

from desk_pipeline.defs.launcher import WORKER_PID_TAG, PreloadedRunLauncher, _import_problem
from desk_pipeline.defs.runs import default_instance_yaml, process_alive

TIMEOUT_S = 120.0


@dg.op
def answer() -> int:
    """A step that succeeds at once."""
    return 42


@dg.job(executor_def=dg.in_process_executor)
def quick_job() -> None:
    """One quick step."""
    answer()


# As the desk's assets (defs/policies.py RETRY_TRANSIENT): Dagster turns an interrupt inside a
# step with a retry policy into a retry, so a terminate that only interrupts never ends the run.
@dg.op(retry_policy=dg.RetryPolicy(max_retries=3, delay=0.1))
def wait_long() -> None:
    """A step that runs until it is stopped, retried like the desk's assets."""
    time.sleep(TIMEOUT_S)


@dg.job(executor_def=dg.in_process_executor)
def long_job() -> None:
    """One step that outlasts the test."""
    wait_long()


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    """A temporary instance with the repository's dagster.yaml, its run launcher included."""
    with dg.instance_for_test(overrides=yaml.safe_load(default_instance_yaml())) as instance:
        assert isinstance(instance.run_launcher, PreloadedRunLauncher)
        yield instance


def _launch(instance: dg.DagsterInstance, job: dg.JobDefinition) -> str:
    origin = dg.reconstructable(job).get_python_origin()
    run = instance.create_run_for_job(job_def=job, job_code_origin=origin)
    # The launcher needs no workspace: it executes the run's job_code_origin.
    instance.launch_run(run.run_id, workspace=None)  # type: ignore[arg-type]
    return run.run_id


def _wait_for(instance: dg.DagsterInstance, run_id: str, status: dg.DagsterRunStatus) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        run = instance.get_run_by_id(run_id)
        assert run is not None
        if run.status == status:
            return
        assert not run.is_finished, f"run ended {run.status}, expected {status}"
        assert time.monotonic() < deadline, f"run still {run.status}, expected {status}"
        time.sleep(0.2)


def _wait_for_step_start(instance: dg.DagsterInstance, run_id: str) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while not instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_START):
        assert time.monotonic() < deadline, "the step never started"
        time.sleep(0.2)


def test_a_launched_run_succeeds_in_a_forked_worker_named_in_its_tags(instance):
    run_id = _launch(instance, quick_job)
    _wait_for(instance, run_id, dg.DagsterRunStatus.SUCCESS)
    run = instance.get_run_by_id(run_id)
    assert run is not None
    assert int(run.tags[WORKER_PID_TAG]) != os.getpid()
    assert instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_SUCCESS)


def test_terminate_cancels_a_running_run_whose_step_has_a_retry_policy(instance):
    run_id = _launch(instance, long_job)
    _wait_for_step_start(instance, run_id)
    pid = int(instance.get_run_by_id(run_id).tags[WORKER_PID_TAG])  # type: ignore[union-attr]
    assert instance.run_launcher.terminate(run_id)
    _wait_for(instance, run_id, dg.DagsterRunStatus.CANCELED)
    assert not process_alive(pid, None)
    assert not instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_RESTARTED)


def test_a_killed_worker_fails_its_run_through_the_health_check(instance):
    run_id = _launch(instance, long_job)
    _wait_for_step_start(instance, run_id)
    run = instance.get_run_by_id(run_id)
    assert run is not None and run.status == dg.DagsterRunStatus.STARTED
    pid = int(run.tags[WORKER_PID_TAG])
    assert instance.run_launcher.check_run_worker_health(run).status == WorkerStatus.RUNNING
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + TIMEOUT_S
    while process_alive(pid, None):
        assert time.monotonic() < deadline, "the killed worker was never reaped"
        time.sleep(0.1)
    record = instance.get_run_record_by_id(run_id)
    assert record is not None
    monitor_started_run(instance, None, record, logging.getLogger(__name__))  # type: ignore[arg-type]
    _wait_for(instance, run_id, dg.DagsterRunStatus.FAILURE)


def test_code_that_does_not_import_is_named_with_its_file_and_error(tmp_path, monkeypatch):
    # What a run shows when the forkserver's preload dies on the desk's code (e.g. a syntax
    # error saved while `make run` is up), instead of the forkserver's bare EOFError.
    (tmp_path / "broken_desk_module.py").write_text("def broken(:\n    pass\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    problem = _import_problem(["json", "broken_desk_module"])
    assert problem is not None
    assert "broken_desk_module.py" in problem
    assert problem.endswith("SyntaxError: invalid syntax")
    assert _import_problem(["json"]) is None
