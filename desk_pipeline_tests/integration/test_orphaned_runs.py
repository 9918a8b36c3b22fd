"""Runs and backfill claims of desk processes that died: found, failed, freed, never waited on."""

import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import uuid

import dagster as dg
import pytest

from desk_pipeline.defs import runs as desk_runs

POOL = "desk_eod_positions"


@pytest.fixture
def instance(tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    (tmp_path / "dagster.yaml").write_text(desk_runs.default_instance_yaml())
    with dg.DagsterInstance.get() as opened:
        yield opened


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def started_run(instance: dg.DagsterInstance, tags: dict[str, str]) -> str:
    run_id = str(uuid.uuid4())
    instance.add_run(
        dg.DagsterRun(
            job_name="daily_job",
            run_id=run_id,
            tags={"desk/trigger": "desk backfill", **tags},
            status=dg.DagsterRunStatus.STARTED,
        )
    )
    storage = instance.event_log_storage
    storage.initialize_concurrency_limit_to_default(POOL)  # as a run's first step does
    storage.claim_concurrency_slot(POOL, run_id, "eod_positions")
    return run_id


def test_a_run_whose_process_is_gone_is_failed_with_a_reason_and_its_slot_freed(instance):
    host = socket.gethostname()
    orphan = started_run(instance, {desk_runs.HOST_TAG: host, desk_runs.PID_TAG: str(dead_pid())})
    holder = instance.event_log_storage.get_concurrency_info(POOL).claimed_slots
    assert [slot.run_id for slot in holder] == [orphan]

    repairs = desk_runs.repair_orphaned_runs(instance)

    assert [(r.run_id, r.slots_freed) for r in repairs] == [(orphan, 1)]
    assert "its process (pid" in repairs[0].describe()
    run = instance.get_run_by_id(orphan)
    assert run is not None and run.status == dg.DagsterRunStatus.FAILURE
    failure = instance.all_logs(orphan, of_type=dg.DagsterEventType.RUN_FAILURE)[0]
    assert "is gone (killed or crashed)" in failure.message
    assert instance.event_log_storage.get_concurrency_info(POOL).claimed_slots == []
    assert desk_runs.repair_orphaned_runs(instance) == []  # nothing left to do


def test_a_step_left_waiting_beside_a_free_slot_is_given_it(instance):
    # The race seen with three concurrent first backfills: run B registers its step while run A
    # holds the pool's only slot (so B's step is not assigned), and A frees the slot before B's
    # step is in the queue (so A's free assigns nobody). B then waited forever.
    storage = instance.event_log_storage
    live = {desk_runs.HOST_TAG: socket.gethostname(), desk_runs.PID_TAG: str(os.getpid())}
    holder = started_run(instance, live)
    waiter = str(uuid.uuid4())
    storage.free_concurrency_slot_for_step(holder, "eod_positions")
    storage.add_pending_step(POOL, waiter, "eod_positions", should_assign=False)
    assert not storage.claim_concurrency_slot(POOL, waiter, "eod_positions").is_claimed

    repairs = desk_runs.repair_orphaned_runs(instance)

    assert [(r.run_id, r.slots_freed) for r in repairs] == [(waiter, 0)]
    assert "waited for a free slot of pool desk_eod_positions" in repairs[0].describe()
    assert storage.claim_concurrency_slot(POOL, waiter, "eod_positions").is_claimed
    assert desk_runs.repair_orphaned_runs(instance) == []  # a claimed slot is left alone


def test_runs_of_live_processes_and_of_other_hosts_are_left_alone(instance):
    host = socket.gethostname()
    mine = started_run(instance, desk_runs.process_tags())
    elsewhere = started_run(instance, {desk_runs.HOST_TAG: f"not-{host}", desk_runs.PID_TAG: "1"})
    # A reused pid: alive, but not the process that started the run.
    reused = started_run(
        instance,
        {desk_runs.HOST_TAG: host, desk_runs.PID_TAG: str(os.getpid()), "desk/pid_started": "1"},
    )

    repaired = [r.run_id for r in desk_runs.repair_orphaned_runs(instance)]

    assert repaired == [reused]
    for run_id in (mine, elsewhere):
        assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.STARTED


HOLD_CLAIM = textwrap.dedent(
    """
    import sys, time
    import dagster as dg
    from desk_pipeline.defs import runs
    with runs.backfill_claim(dg.DagsterInstance.get(), sys.argv[1], sys.argv[2], print):
        print("claimed", flush=True)
        time.sleep(600)
    """
)


def test_a_second_backfill_waits_for_the_running_one_and_proceeds_when_it_is_killed(instance):
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_CLAIM, "2026-03-02", "2026-03-04"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "claimed"
    told: list[str] = []
    claimed = threading.Event()

    def claim() -> None:
        with desk_runs.backfill_claim(instance, "2026-03-04", "2026-03-05", told.append):
            claimed.set()

    waiter = threading.Thread(target=claim)
    waiter.start()
    while not told:
        assert waiter.is_alive()
        waiter.join(timeout=0.1)
    assert not claimed.is_set()
    assert told[0].startswith("the backfill of 2026-03-02..2026-03-04 is running (")
    assert f"(its first run is starting; pid {holder.pid} on" in told[0]
    assert "waiting for it to finish (no estimate yet" in told[0]

    holder.send_signal(signal.SIGKILL)
    holder.wait()
    waiter.join(timeout=60)
    assert claimed.is_set() and len(told) == 1
