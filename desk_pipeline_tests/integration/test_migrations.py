"""Warehouse migrations on real SQLite and PostgreSQL: a warehouse an older desk stored keeps its
rows when a newer desk migrates it on connect, and a downgrade gives them back."""

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext

from desk_pipeline.adapters import tables
from desk_pipeline.adapters.warehouse import PositionRepository
from desk_pipeline.adapters.warehouse.engine import MIGRATIONS


@pytest.fixture
def engine(warehouse_url) -> Iterator[sa.Engine]:
    engine = sa.create_engine(warehouse_url)
    yield engine
    engine.dispose()


def migrate(engine: sa.Engine, revision: str, *, down: bool = False) -> None:
    """Upgrade (or downgrade) the warehouse to ``revision``, as an older or newer desk would."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        (command.downgrade if down else command.upgrade)(config, revision)


def rows(engine: sa.Engine, query: str) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(query))]


def test_late_changes_stored_as_stale_marks_survive_the_rename_both_ways(engine, warehouse_url):
    migrate(engine, "0006")
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO stale_marks (book_id, from_time_us, marked_at_us, trade_ids) "
                "VALUES ('B1', 10, 20, 'T1'), ('B2', 30, 40, 'T2,T3')"
            )
        )

    repo = PositionRepository(warehouse_url)  # a newer desk migrates on connect
    repo.engine.dispose()

    assert repo.applied == ["0007"]
    assert repo.late_changes().sort_values("id").to_dict("records") == [
        {"id": 1, "book_id": "B1", "from_time_us": 10, "arrived_at_us": 20, "trade_ids": "T1"},
        {"id": 2, "book_id": "B2", "from_time_us": 30, "arrived_at_us": 40, "trade_ids": "T2,T3"},
    ]
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), tables.metadata) == []
    with engine.begin() as conn:  # the identity carries on after the stored rows
        conn.execute(
            tables.late_changes.insert(),
            {"book_id": "B3", "from_time_us": 50, "arrived_at_us": 60, "trade_ids": "T4"},
        )
    assert rows(engine, "SELECT id FROM late_changes WHERE book_id = 'B3'") == [(3,)]

    migrate(engine, "0006", down=True)
    assert rows(engine, "SELECT id, marked_at_us FROM stale_marks ORDER BY id") == [
        (1, 20),
        (2, 40),
        (3, 60),
    ]


def test_no_name_on_postgresql_still_says_stale_marks(pg_url):
    # PostgreSQL named the primary key and the identity sequence after the table in 0001.
    repo = PositionRepository(pg_url)
    names = rows(
        repo.engine,
        "SELECT relname FROM pg_class WHERE relnamespace = current_schema()::regnamespace "
        "AND (relname LIKE '%late_changes%' OR relname LIKE '%stale_marks%') ORDER BY relname",
    )
    repo.engine.dispose()
    assert names == [
        ("ix_late_changes_book",),
        ("late_changes",),
        ("late_changes_id_seq",),
        ("late_changes_pkey",),
    ]
