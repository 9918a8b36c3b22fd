"""Run retries, op retry policies and per-partition exclusion, as configured for the instance."""

from pathlib import Path
from typing import ClassVar

import dagster as dg
import pytest
import sqlalchemy as sa
import yaml
from dagster._utils.tags import TagConcurrencyLimitsCounter

from desk_pipeline.adapters.warehouse import PositionRepository, WarehouseError
from desk_pipeline.defs.collateral.assets import collateral_ranking
from desk_pipeline.defs.positions.assets import eod_positions, intraday_positions, trades
from desk_pipeline.defs.resources import (
    CalendarResource,
    HaircutScheduleResource,
    TradeSourceResource,
    WarehouseResource,
)
from desk_pipeline_tests.builders import trade, write_landing_file

DAGSTER_YAML = Path(__file__).resolve().parents[2] / "desk_pipeline" / "instance" / "dagster.yaml"
DESK_ASSETS = (trades, intraday_positions, eod_positions, collateral_ranking)


@pytest.fixture(scope="module")
def configured_instance():
    """An instance with the repository's dagster.yaml (storage left temporary)."""
    with dg.instance_for_test(overrides=yaml.safe_load(DAGSTER_YAML.read_text())) as instance:
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
            "trade_source": TradeSourceResource(spec=f"landing:{tmp_path / 'in'}"),
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
