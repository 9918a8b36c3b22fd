"""The desk's PostgreSQL instance in the webserver survives PostgreSQL dropping its connections.

Dagster's webserver calls ``instance.optimize_for_webserver(...)``, which gives each PostgreSQL
storage a pool holding one connection. A connection the server has dropped (a restart, a
failover, an administrator's ``pg_terminate_backend``) stayed in the pool: the next statement
of each storage failed, and launches from the UI left NOT_STARTED runs behind.
"""

from collections.abc import Iterator

import dagster as dg
import pytest
import sqlalchemy as sa
import yaml

from desk_pipeline.defs import runs

pytestmark = pytest.mark.postgres

# dagster-webserver's defaults (--db-statement-timeout, --db-pool-recycle, --db-pool-max-overflow).
STATEMENT_TIMEOUT_MS = 15000
POOL_RECYCLE_S = 3600
MAX_OVERFLOW = 20


@dg.asset
def answer() -> int:
    return 42


@pytest.fixture
def webserver_instance(monkeypatch, tmp_path, dagster_pg_url) -> Iterator[dg.DagsterInstance]:
    """The instance of `make run DAGSTER_YAML="dagster.yaml dagster-postgres.yaml"`, optimised as
    the webserver optimises it."""
    monkeypatch.setenv("DAGSTER_PG_URL", dagster_pg_url)
    overrides = yaml.safe_load(runs.instance_yaml("dagster.yaml", "dagster-postgres.yaml"))
    with dg.instance_for_test(overrides=overrides, temp_dir=str(tmp_path)) as instance:
        instance.optimize_for_webserver(STATEMENT_TIMEOUT_MS, POOL_RECYCLE_S, MAX_OVERFLOW)
        yield instance


def use_every_storage(instance: dg.DagsterInstance) -> str:
    """A run, its events, and the schedule storage's state: each storage's pool used once."""
    result = dg.materialize([answer], instance=instance)
    assert result.success
    instance.all_instigator_state()
    return result.run_id


def drop_connections(pg_engine: sa.Engine, database: str) -> int:
    """What an administrator (or a server restart) does to every session of ``database``."""
    with pg_engine.connect() as conn:
        dropped = conn.execute(
            sa.text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = :db AND pid <> pg_backend_pid()"
            ),
            {"db": database},
        ).scalar_one()
    return int(dropped)


def test_runs_events_and_schedules_after_postgres_dropped_the_webservers_connections(
    webserver_instance, pg_engine, dagster_pg_url
):
    instance = webserver_instance
    first = use_every_storage(instance)
    database = sa.make_url(dagster_pg_url).database
    assert database
    # One pooled connection per storage: run, event log and schedule storage.
    assert drop_connections(pg_engine, database) >= 3

    second = use_every_storage(instance)
    for run_id in (first, second):
        run = instance.get_run_by_id(run_id)
        assert run is not None and run.status == dg.DagsterRunStatus.SUCCESS
        types = {e.dagster_event_type for e in instance.all_logs(run_id)}
        assert dg.DagsterEventType.ASSET_MATERIALIZATION in types
    # Nothing was left behind half-started.
    assert not instance.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.NOT_STARTED]))
    latest = instance.get_latest_materialization_event(dg.AssetKey("answer"))
    assert latest is not None and latest.run_id == second
