"""The desk's event log storages (defs/event_log.py) on real SQLite files and a real PostgreSQL."""

import multiprocessing
import multiprocessing.synchronize
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
import yaml

from desk_pipeline.defs import runs
from desk_pipeline.defs.event_log import OPEN_SHARDS


@dg.asset
def answer() -> int:
    return 42


def instance_yaml(*names: str) -> dict:
    return yaml.safe_load(runs.instance_yaml(*names))


@pytest.fixture(params=["sqlite", "postgresql"])
def instance(request, tmp_path, monkeypatch) -> Iterator[dg.DagsterInstance]:
    if request.param == "postgresql":
        monkeypatch.setenv("DAGSTER_PG_URL", request.getfixturevalue("dagster_pg_url"))
        overrides = instance_yaml("dagster.yaml", "dagster-postgres.yaml")
    else:
        overrides = instance_yaml("dagster.yaml", "dagster-sqlite.yaml")
    with dg.instance_for_test(overrides=overrides, temp_dir=str(tmp_path)) as instance:
        assert type(instance.event_log_storage).__name__.startswith("Desk")
        yield instance


def messages(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    return [e.message for e in instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT)]


def test_runs_record_their_events_and_materialisations(instance):
    runs = [dg.materialize([answer], instance=instance) for _ in range(3)]
    assert all(r.success for r in runs)
    for run in runs:
        types = {e.dagster_event_type for e in instance.all_logs(run.run_id)}
        assert {dg.DagsterEventType.RUN_SUCCESS, dg.DagsterEventType.ASSET_MATERIALIZATION} <= types
    latest = instance.get_latest_materialization_event(dg.AssetKey("answer"))
    assert latest is not None and latest.run_id == runs[-1].run_id


def test_a_forked_process_writes_through_its_own_connection(instance):
    """A run worker is forked from a process that may have used the storage: neither may use
    the other's connection (a shared socket or file handle interleaves their statements)."""
    run_id = str(uuid.uuid4())
    instance.report_engine_event("parent before fork", run_id=run_id, job_name="desk")
    pid = os.fork()
    if pid == 0:
        try:
            for i in range(20):
                instance.report_engine_event(f"child {i}", run_id=run_id, job_name="desk")
        finally:
            os._exit(0)
    for i in range(20):
        instance.report_engine_event(f"parent {i}", run_id=run_id, job_name="desk")
    assert os.waitpid(pid, 0)[1] == 0
    instance.report_engine_event("parent after fork", run_id=run_id, job_name="desk")
    written = messages(instance, run_id)
    expected = {"parent before fork", "parent after fork"}
    expected |= {f"{who} {i}" for who in ("parent", "child") for i in range(20)}
    assert sorted(written) == sorted(expected)


def test_sqlite_keeps_dagsters_files_and_survives_a_wipe(tmp_path):
    overrides = instance_yaml("dagster.yaml", "dagster-sqlite.yaml")
    with dg.instance_for_test(overrides=overrides, temp_dir=str(tmp_path)) as instance:
        first = dg.materialize([answer], instance=instance)
        # Where Dagster's default SQLite storage keeps them: an instance switching keeps history.
        assert (Path(tmp_path) / "history" / "runs" / f"{first.run_id}.db").exists()
        instance.event_log_storage.wipe()
        assert instance.all_logs(first.run_id) == []
        second = dg.materialize([answer], instance=instance)
        assert second.success and instance.all_logs(second.run_id)


def test_sqlite_keeps_a_bounded_number_of_shards_open(tmp_path):
    overrides = instance_yaml("dagster.yaml", "dagster-sqlite.yaml")
    with dg.instance_for_test(overrides=overrides, temp_dir=str(tmp_path)) as instance:
        run_ids = [str(uuid.uuid4()) for _ in range(20)]
        for run_id in run_ids:
            instance.report_engine_event(f"event of {run_id}", run_id=run_id, job_name="desk")
        assert len(instance.event_log_storage._engines) <= OPEN_SHARDS
        # A shard whose engine was closed is opened again when needed.
        assert messages(instance, run_ids[0]) == [f"event of {run_ids[0]}"]


def _write_and_hold(home: str, run_id: str, done: "multiprocessing.synchronize.Event") -> None:
    """Another process (a run worker): write events, then keep the connection open."""
    with dg.DagsterInstance.from_config(home) as instance:
        for i in range(5):
            instance.report_engine_event(f"event {i}", run_id=run_id, job_name="desk")
            time.sleep(0.1)
        done.wait(30)


def test_the_live_run_log_sees_events_while_the_writer_keeps_its_connection(tmp_path):
    """The UI's run page watches a run's log: it must see events as a worker writes them, not
    when the worker's connection closes (the WAL holds them until a checkpoint)."""
    overrides = instance_yaml("dagster.yaml", "dagster-sqlite.yaml")
    with dg.instance_for_test(overrides=overrides, temp_dir=str(tmp_path)) as instance:
        run_id = str(uuid.uuid4())
        instance.report_engine_event("before", run_id=run_id, job_name="desk")
        seen: list[str] = []
        instance.event_log_storage.watch(run_id, None, lambda event, _: seen.append(event.message))
        context = multiprocessing.get_context("spawn")
        done = context.Event()
        writer = context.Process(target=_write_and_hold, args=(str(tmp_path), run_id, done))
        writer.start()
        try:
            deadline = time.monotonic() + 30
            written = [f"event {i}" for i in range(5)]
            while [m for m in seen if m in written] != written and time.monotonic() < deadline:
                time.sleep(0.1)
            assert writer.is_alive(), "the writer still holds its connection"
            assert [m for m in seen if m in written] == written
        finally:
            done.set()
            writer.join(30)
            instance.event_log_storage.end_watch(run_id, seen.append)
