"""The shipped Dagster instance files: the PostgreSQL one on the real server, both in step."""

import dagster as dg
import pytest
import sqlalchemy as sa
import yaml
from dagster._core.definitions.run_request import InstigatorType

from desk_pipeline.defs import runs
from desk_pipeline.defs.resources import (
    CalendarResource,
    HaircutScheduleResource,
    LandingFolderTradeSource,
    WarehouseResource,
)
from desk_pipeline_tests.builders import trade, write_landing_file
from desk_pipeline_tests.location import desk_assets

[eod_positions] = desk_assets("eod_positions")


def instance_yaml(*names: str) -> dict:
    """The instance `make run DAGSTER_YAML="…"` writes: the files concatenated, then parsed."""
    return yaml.safe_load(runs.instance_yaml(*names))


STORAGE_KEYS = {"storage", "run_storage", "event_log_storage", "schedule_storage"}


@pytest.mark.parametrize("overlay", ["dagster-sqlite.yaml", "dagster-postgres.yaml"])
def test_each_storage_file_is_an_overlay_that_keeps_every_default_setting(overlay):
    default = instance_yaml("dagster.yaml")
    combined = instance_yaml("dagster.yaml", overlay)
    assert not STORAGE_KEYS & set(default), "dagster.yaml holds the settings, not the storage"
    assert {k: v for k, v in combined.items() if k not in STORAGE_KEYS} == default
    assert {"event_log_storage"} <= set(combined) - set(default) <= STORAGE_KEYS


def test_the_default_instance_queues_runs_retries_monitors_and_sends_no_telemetry(tmp_path):
    overrides = instance_yaml("dagster.yaml", "dagster-sqlite.yaml")
    assert overrides["telemetry"] == {"enabled": False}
    with dg.instance_for_test(overrides=overrides, temp_dir=str(tmp_path)) as instance:
        assert type(instance.run_storage).__name__ == "SqliteRunStorage"
        assert type(instance.event_log_storage).__name__ == "DeskSqliteEventLogStorage"
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        # The queue daemon reads the limit from the concurrency config, not the coordinator.
        queue = instance.get_concurrency_config().run_queue_config
        assert queue.max_concurrent_runs == overrides["concurrency"]["runs"]["max_concurrent_runs"]
        assert 1 <= queue.max_concurrent_runs <= 16
        assert instance.run_retries_enabled and instance.run_retries_max_retries >= 1
        assert instance.run_monitoring_enabled
        retention = instance.get_tick_retention_settings(InstigatorType.SCHEDULE)
        assert max(retention.values()) > 0, "schedule ticks (144 a day) must be purged"


@pytest.mark.postgres
def test_an_eod_materialisation_is_recorded_in_the_postgres_instance(
    monkeypatch, tmp_path, dagster_pg_url, sqlite_url
):
    monkeypatch.setenv("DAGSTER_PG_URL", dagster_pg_url)
    landing = tmp_path / "landing"
    write_landing_file(landing, "day.csv", [trade("T-1", 100, 10.0), trade("T-2", -40, 11.0, 30)])
    overrides = instance_yaml("dagster.yaml", "dagster-postgres.yaml")
    with dg.instance_for_test(overrides=overrides) as instance:
        assert type(instance.run_storage).__name__ == "DeskPostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "DeskPostgresEventLogStorage"
        assert type(instance.schedule_storage).__name__ == "DeskPostgresScheduleStorage"
        result = dg.materialize(
            [eod_positions],
            partition_key="2026-03-02",
            instance=instance,
            resources={
                "warehouse": WarehouseResource(url=sqlite_url),
                "trade_source": LandingFolderTradeSource(folder=str(landing)),
                "calendar": CalendarResource(),
                "haircuts": HaircutScheduleResource(),
            },
        )
        assert result.success
        event = instance.get_latest_materialization_event(dg.AssetKey("eod_positions"))
        assert event is not None and event.asset_materialization.partition == "2026-03-02"
        assert event.asset_materialization.metadata["dagster/row_count"].value == 1
    # The run is in the PostgreSQL database, not in a file under the temporary DAGSTER_HOME.
    engine = sa.create_engine(dagster_pg_url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.connect() as conn:
        runs = conn.execute(sa.text("select run_id, status from runs")).all()
    engine.dispose()
    assert [(r.run_id, r.status) for r in runs] == [(result.run_id, "SUCCESS")]
