"""Run retries, op retry policies and per-partition exclusion, as configured for the instance."""

import threading
import time
import uuid
from typing import ClassVar

import dagster as dg
import pytest
import sqlalchemy as sa
import yaml
from dagster._utils.tags import TagConcurrencyLimitsCounter

from desk_pipeline.adapters.warehouse import PositionRepository, WarehouseError
from desk_pipeline.definitions import build_definitions
from desk_pipeline.defs.resources import (
    CalendarResource,
    HaircutScheduleResource,
    LandingFolderTradeSource,
    WarehouseResource,
    resources_from,
)
from desk_pipeline.defs.runs import default_instance_yaml
from desk_pipeline.defs.settings import DeskSettings
from desk_pipeline_tests.builders import trade, write_landing_file
from desk_pipeline_tests.location import desk_assets, desk_definitions

eod_positions, intraday_positions, trades, collateral_ranking = desk_assets(
    "eod_positions", "intraday_positions", "trades", "collateral_ranking"
)

DESK_ASSETS = (trades, intraday_positions, eod_positions, collateral_ranking)


@pytest.fixture(scope="module")
def configured_instance():
    """An instance with the repository's dagster.yaml (storage left temporary)."""
    with dg.instance_for_test(overrides=yaml.safe_load(default_instance_yaml())) as instance:
        yield instance


def test_run_retries_only_relaunch_crashed_runs_and_leave_asset_failures_to_retry_policies(
    configured_instance,
):
    assert configured_instance.run_retries_enabled
    assert configured_instance.run_retries_max_retries == 2
    assert not configured_instance.run_retries_retry_on_asset_or_op_failure


def test_every_desk_asset_retries_transient_failures_with_exponential_backoff():
    for asset in DESK_ASSETS:
        policy = asset.op.retry_policy
        assert policy is not None, asset.key
        assert (policy.max_retries, policy.backoff) == (3, dg.Backoff.EXPONENTIAL)
        assert 0 < policy.delay <= 5


def test_each_desk_asset_computes_in_its_own_pool_of_one(configured_instance):
    pools = [asset.op.pool for asset in DESK_ASSETS]
    assert None not in pools and len(set(pools)) == len(pools)
    config = configured_instance.get_concurrency_config().pool_config
    assert (config.default_pool_limit, config.pool_granularity.value) == (1, "op")


def test_a_second_run_of_the_same_partition_waits_while_other_partitions_proceed(
    configured_instance,
):
    limits = configured_instance.get_concurrency_config().run_queue_config.tag_concurrency_limits
    running = dg.DagsterRun(job_name="j", run_id="a", tags={"dagster/partition": "2026-03-02"})
    counter = TagConcurrencyLimitsCounter(limits, [running])
    same = dg.DagsterRun(job_name="j", run_id="b", tags={"dagster/partition": "2026-03-02"})
    other = dg.DagsterRun(job_name="j", run_id="c", tags={"dagster/partition": "2026-03-03"})
    assert counter.is_blocked(same)
    assert not counter.is_blocked(other)


class FlakyWarehouseResource(WarehouseResource):
    """The real warehouse, unreachable on the first attempt (a dropped connection)."""

    failures: ClassVar[int] = 0

    def repository(self) -> PositionRepository:
        failures = FlakyWarehouseResource.failures
        if failures:
            FlakyWarehouseResource.failures -= 1
            raise WarehouseError("opening: connection reset") from sa.exc.OperationalError(
                "SELECT 1", {}, Exception("server closed the connection unexpectedly")
            )
        return super().repository()


def test_a_transient_database_error_is_retried_within_the_run(
    sqlite_url, tmp_path, dagster_instance
):
    write_landing_file(tmp_path / "in", "a.csv", [trade("T1", 100, 10.0)])
    FlakyWarehouseResource.failures = 1
    result = dg.materialize(
        [trades],
        partition_key="2026-03-02-09:00",
        resources={
            "warehouse": FlakyWarehouseResource(url=sqlite_url),
            "trade_source": LandingFolderTradeSource(folder=str(tmp_path / "in")),
            "calendar": CalendarResource(),
            "haircuts": HaircutScheduleResource(),
        },
        instance=dagster_instance,
    )
    assert result.success
    retries = [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    assert len(retries) == 1
    metadata = result.asset_materializations_for_node("trades")[0].metadata
    assert metadata["accepted"].value == 1


class BrokenWarehouseResource(WarehouseResource):
    """The real warehouse behind a bug: opening it raises the same error every time."""

    def repository(self) -> PositionRepository:
        raise ValueError("Cannot infer dst time from 2026-10-25 00:00:00")


def test_a_deterministic_error_fails_the_step_at_once_naming_the_asset_and_the_error(
    sqlite_url, tmp_path, dagster_instance
):
    # It was retried three times over 14 s, and the run said only "Exceeded max_retries of 3".
    result = dg.materialize(
        [trades],
        partition_key="2026-03-02-09:00",
        resources={
            "warehouse": BrokenWarehouseResource(url=sqlite_url),
            "trade_source": LandingFolderTradeSource(folder=str(tmp_path / "in")),
            "calendar": CalendarResource(),
            "haircuts": HaircutScheduleResource(),
        },
        instance=dagster_instance,
        raise_on_error=False,
    )
    assert not result.success
    events = result.all_events
    assert not [e for e in events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    (failed,) = [e for e in events if e.event_type_value == "STEP_FAILURE"]
    assert failed.step_failure_data.user_failure_data.description == (
        "trades: ValueError: Cannot infer dst time from 2026-10-25 00:00:00"
    )


TICK_PARTITION = "2026-03-02-09:00"


def flaky_tick_job() -> dg.JobDefinition:
    """The code location's intraday_job, with its executor, on the environment's desk (flaky).

    At module level so that ``dg.reconstructable`` rebuilds it: ``dg.execute_job`` then runs it
    as a run worker does, with the executor the code location gives its jobs.
    """
    settings = DeskSettings.from_env()
    defs = build_definitions(settings)
    resources = resources_from(settings)
    return dg.Definitions(
        assets=defs.assets,
        asset_checks=defs.asset_checks,
        jobs=defs.jobs,
        resources={**resources, "warehouse": FlakyWarehouseResource(url=settings.warehouse_url)},
        executor=defs.executor,
    ).resolve_job_def("intraday_job")


@pytest.fixture
def tick_desk(sqlite_url, tmp_path, monkeypatch):
    """One trade in a landing folder, a SQLite warehouse, and an instance with dagster.yaml."""
    write_landing_file(tmp_path / "in", "a.csv", [trade("T1", 100, 10.0)])
    monkeypatch.setenv("DESK_WAREHOUSE_URL", sqlite_url)
    monkeypatch.setenv("DESK_TRADE_SOURCE", f"landing:{tmp_path / 'in'}")
    FlakyWarehouseResource.failures = 0
    with dg.instance_for_test(overrides=yaml.safe_load(default_instance_yaml())) as instance:
        yield instance


def _messages(instance: dg.DagsterInstance, run_id: str, step: str) -> list[str]:
    return [e.message for e in instance.all_logs(run_id) if e.step_key == step]


def test_the_code_location_runs_every_job_in_its_run_worker_process():
    defs = desk_definitions()
    jobs = [defs.resolve_job_def(name) for name in ("intraday_job", "daily_job")]
    # The automation sensor's EOD refreshes and UI materialisations run the implicit asset job.
    jobs.append(defs.resolve_implicit_global_asset_job_def())
    assert [job.executor_def.name for job in jobs] == ["in_process"] * 3


def test_a_tick_retries_a_transient_failure_with_the_code_locations_executor(tick_desk):
    FlakyWarehouseResource.failures = 1
    result = dg.execute_job(
        dg.reconstructable(flaky_tick_job), tick_desk, tags={"dagster/partition": TICK_PARTITION}
    )
    assert result.success
    events = tick_desk.all_logs(result.run_id)
    assert any((e.message or "").startswith("Executing steps in process") for e in events)
    retried = [
        e.step_key
        for e in events
        if e.dagster_event and e.dagster_event.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY
    ]
    assert retried == ["trades"]
    metadata = result.asset_materializations_for_node("trades")[0].metadata
    assert metadata["accepted"].value == 1


def test_a_tick_waits_while_another_run_holds_its_pool_and_runs_once_freed(tick_desk):
    storage = tick_desk.event_log_storage
    # Another run's step holds the one slot of the trades asset's pool (dagster.yaml's default).
    assert storage.initialize_concurrency_limit_to_default("desk_trades")
    assert storage.get_concurrency_info("desk_trades").slot_count == 1
    assert storage.claim_concurrency_slot("desk_trades", "other-run", "trades").is_claimed
    tag = {"test/tick": uuid.uuid4().hex}
    outcome: dict[str, dg.ExecuteJobResult] = {}

    def tick() -> None:
        outcome["result"] = dg.execute_job(
            dg.reconstructable(flaky_tick_job),
            tick_desk,
            tags={"dagster/partition": TICK_PARTITION, **tag},
        )

    worker = threading.Thread(target=tick)
    worker.start()
    deadline = time.monotonic() + 120
    blocked: list[str] = []
    while not blocked:
        assert time.monotonic() < deadline, "the tick never reported the pool blocking it"
        runs = tick_desk.get_runs(dg.RunsFilter(tags=tag))
        blocked = [
            m
            for m in (_messages(tick_desk, runs[0].run_id, "trades") if runs else [])
            if "blocked by limit for pool desk_trades" in m
        ]
        time.sleep(0.2)
    run_id = runs[0].run_id
    assert not any("Started execution of step" in m for m in _messages(tick_desk, run_id, "trades"))
    storage.free_concurrency_slots_for_run("other-run")
    worker.join(timeout=300)
    assert outcome["result"].success
    messages = _messages(tick_desk, run_id, "trades")
    started = next(i for i, m in enumerate(messages) if "Started execution of step" in m)
    assert started > messages.index(blocked[0])
