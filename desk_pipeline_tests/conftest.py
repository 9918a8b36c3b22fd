"""Fixtures: Dagster instance, warehouses on SQLite and the real PostgreSQL, a Kafka broker."""

import contextlib
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg
import pytest
import sqlalchemy as sa

from desk_pipeline_tests.builders import unique_books

if TYPE_CHECKING:
    from desk_pipeline_tests.kafka_broker import Tansu

PG_ADMIN_URL = os.environ.get(
    "DESK_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
IN_CI = os.environ.get("CI", "").lower() == "true"
CHROMIUM = Path("/usr/bin/chromium")


def service_missing(what: str, err: Exception) -> None:
    """A missing service fails in CI and skips locally, naming what is missing."""
    message = f"{what} is not reachable ({err}); set DESK_TEST_PG_URL or start the service"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def pg_engine() -> Iterator[sa.Engine]:
    engine = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    deadline = time.monotonic() + 30
    while True:
        try:
            with engine.connect() as conn:
                conn.execute(sa.text("select 1"))
            break
        except sa.exc.OperationalError as err:
            if time.monotonic() > deadline:
                service_missing("PostgreSQL", err)
            time.sleep(0.5)
    yield engine
    engine.dispose()


def schema_url(schema: str) -> str:
    """PG_ADMIN_URL with ``schema`` as the search path: where unqualified tables go."""
    return f"{PG_ADMIN_URL}?options=-csearch_path%3D{schema}"


@contextlib.contextmanager
def pg_schema(engine: sa.Engine, prefix: str = "t") -> Iterator[str]:
    """A new PostgreSQL schema ``<prefix>_<8 hex>``, dropped with all it holds afterwards."""
    schema = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with engine.connect() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    try:
        yield schema
    finally:
        with engine.connect() as conn:
            conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))


@pytest.fixture
def pg_url(pg_engine: sa.Engine) -> Iterator[str]:
    """A warehouse URL on its own PostgreSQL schema, dropped afterwards."""
    with pg_schema(pg_engine) as schema:
        yield schema_url(schema)


@pytest.fixture
def dagster_pg_url(pg_engine: sa.Engine) -> Iterator[str]:
    """A DAGSTER_PG_URL on a database of its own, dropped afterwards."""
    database = f"dagster_test_{uuid.uuid4().hex[:8]}"
    with pg_engine.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {database}"))
    url = pg_engine.url.set(drivername="postgresql", database=database)
    yield url.render_as_string(hide_password=False)
    with pg_engine.connect() as conn:
        # FORCE: the instance's pooled connections may outlive the test by a moment.
        conn.execute(sa.text(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)"))


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path}/warehouse.db"


@pytest.fixture(params=["sqlite", "postgresql"])
def warehouse_url(request) -> str:
    """The same test against both warehouses the product supports."""
    return request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Debian's Chromium for Playwright: `make chromium` installs it (.ci/run does), no test."""
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing: run `make chromium`"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return CHROMIUM


@pytest.fixture
def dagster_instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as instance:
        yield instance


@pytest.fixture
def books() -> list[str]:
    """Three book ids of the test's own: tests sharing a broker keep apart by book."""
    return unique_books("REPO", "SECLEND", "TRIPARTY")


@pytest.fixture(scope="module")
def tansu() -> Iterator["Tansu"]:
    """A Kafka-protocol broker (Tansu) per test module: its tests keep apart by topic and book."""
    # Imported here: kafka_broker imports this module, and only Kafka tests need confluent_kafka.
    from desk_pipeline_tests.kafka_broker import running_tansu

    with running_tansu() as broker:
        yield broker
