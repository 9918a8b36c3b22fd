"""Warehouse migrations on real SQLite and PostgreSQL: a warehouse an older desk stored keeps its
rows when a newer desk migrates it on connect, and a downgrade gives them back."""

from collections.abc import Iterator

import pandas as pd
import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext

from desk_pipeline.adapters import tables
from desk_pipeline.adapters.warehouse import PositionRepository
from desk_pipeline.adapters.warehouse.engine import MIGRATIONS
from desk_pipeline.domain.precision import to_units
from desk_pipeline.domain.schema import QUARANTINE_DTYPES, empty_frame
from desk_pipeline_tests.builders import T0, make_trades, trade


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

    assert repo.applied == ["0007", "0008", "0009", "0010", "0011"]
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


# (trade_id, version, status, book_id, instrument_id, quantity, price, trade_time_us) as a 0007
# desk stored them: T2's first version names a book and an instrument no current row names.
T0_US = T0.value // 1000
VERSIONS = [
    ("T1", 1, "NEW", "B2", "XS2", 100.0, 10.0, T0_US),
    ("T2", 1, "NEW", "B-old", "XS-old", 5.0, 11.0, T0_US + 60_000_000),
    ("T2", 2, "AMEND", "B1", "XS1", -5.0, 11.5, T0_US + 120_000_000),
    ("T3", 1, "CANCEL", "B1", "XS2", 7.0, 12.0, T0_US + 180_000_000),
]
CURRENT = [VERSIONS[0], VERSIONS[2], VERSIONS[3]]
CURRENT_COLUMNS = (
    "trade_id, version, status, book_id, instrument_id, quantity, price, trade_time_us"
)


def params(row: tuple) -> dict:
    return dict(zip(["t", "v", "s", "b", "i", "q", "p", "us"], row, strict=True))


def test_current_trades_stored_with_ids_take_keys_and_give_them_back(engine, warehouse_url):
    migrate(engine, "0007")
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                f"INSERT INTO trade_versions ({CURRENT_COLUMNS}, source, ingested_at_us) "
                "VALUES (:t, :v, :s, :b, :i, :q, :p, :us, 'landing:a.csv', 1)"
            ),
            [params(row) for row in VERSIONS],
        )
        conn.execute(
            sa.text(
                f"INSERT INTO current_trades ({CURRENT_COLUMNS}) "
                "VALUES (:t, :v, :s, :b, :i, :q, :p, :us)"
            ),
            [params(row) for row in CURRENT],
        )

    repo = PositionRepository(warehouse_url)  # a newer desk migrates on connect
    assert repo.applied == ["0008", "0009", "0010", "0011"]
    # Every id trade_versions stores has a key, in id order; current_trades names the keys.
    assert rows(engine, "SELECT book_key, book_id FROM book_keys ORDER BY book_key") == [
        (1, "B-old"),
        (2, "B1"),
        (3, "B2"),
    ]
    assert rows(engine, "SELECT * FROM instrument_keys ORDER BY instrument_key") == [
        (1, "XS-old"),
        (2, "XS1"),
        (3, "XS2"),
    ]
    assert rows(
        engine,
        "SELECT trade_id, version, book_key, instrument_key FROM current_trades ORDER BY trade_id",
    ) == [("T1", 1, 3, 3), ("T2", 2, 2, 2), ("T3", 1, 2, 3)]
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), tables.metadata) == []
    read = repo.trades_between(T0 - pd.Timedelta(days=1), T0 + pd.Timedelta(days=1))
    assert read.astype({"book_id": object, "instrument_id": object}).sort_values("trade_id")[
        ["trade_id", "version", "book_id", "instrument_id", "quantity", "price"]
    ].to_numpy().tolist() == [
        ["T1", 1, "B2", "XS2", 100.0, 10.0],
        ["T2", 2, "B1", "XS1", -5.0, 11.5],
    ]
    # New ids take the keys after the stored ones; known ids keep theirs.
    repo.ingest(
        "landing:b.csv",
        2,
        make_trades([trade("T4", 1, 1.0, book="B0"), trade("T5", 1, 1.0, book="B2")]),
        empty_frame(QUARANTINE_DTYPES),
    )
    repo.engine.dispose()
    assert rows(engine, "SELECT book_key, book_id FROM book_keys WHERE book_key > 3") == [(4, "B0")]
    assert rows(engine, "SELECT * FROM instrument_keys WHERE instrument_key > 3") == [(4, "XS0001")]

    migrate(engine, "0007", down=True)
    assert rows(engine, f"SELECT {CURRENT_COLUMNS} FROM current_trades ORDER BY trade_id") == [
        *CURRENT,
        ("T4", 1, "NEW", "B0", "XS0001", 1.0, 1.0, T0_US),
        ("T5", 1, "NEW", "B2", "XS0001", 1.0, 1.0, T0_US),
    ]
    with engine.connect() as conn:
        names = sa.inspect(conn).get_table_names()
    assert "book_keys" not in names and "instrument_keys" not in names


# Float quantities as a 0009 desk stored them, and the micro-units each becomes: 4.46e9 came back
# a micro-unit low from x * 10**6 rounded; dust and -0 from before quantities were exact; a float
# above 2**33 units that two micro-units share (its rounded product, as precision.to_units takes).
STORED_FLOATS = [
    ("I1", 4456946523.790561, 4_456_946_523_790_561),
    ("I2", 0.1 + 0.2, 300_000),
    ("I3", 5.551115123125783e-17, 0),
    ("I4", -0.0, 0),
    ("I5", -1_000_000_000.000001, -1_000_000_000_000_001),
    ("I6", 8800000000.000002, 8_800_000_000_000_002),
]
EOD_AS_OF_US = END_US = T0_US + 86_400_000_000
WINDOW_US = T0_US + 3_600_000_000


def test_stored_float_quantities_become_the_micro_units_they_stand_for_and_come_back(
    engine, warehouse_url
):
    migrate(engine, "0009")
    floats = [{"i": i, "q": q} for i, q, _ in STORED_FLOATS]
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO eod_snapshots (book_id, business_date, snapshot_id, as_of_us, "
                "computed_at_us, position_count, content_digest) "
                f"VALUES ('BIG', '2026-03-02', 's1', {EOD_AS_OF_US}, 1, 6, '0')"
            )
        )
        conn.execute(
            sa.text(
                "INSERT INTO eod_positions (snapshot_id, instrument_id, book_id, business_date, "
                "quantity, avg_price, realized_pnl) VALUES ('s1', :i, 'BIG', '2026-03-02', :q, "
                "1.0, 0.0)"
            ),
            floats,
        )
        conn.execute(sa.text(f"INSERT INTO intraday_windows VALUES ({WINDOW_US}, 1)"))
        conn.execute(
            sa.text(
                "INSERT INTO intraday_positions (window_end_us, book_id, instrument_id, quantity, "
                f"avg_price, realized_pnl) VALUES ({WINDOW_US}, 'BIG', :i, :q, 1.0, 0.0)"
            ),
            floats,
        )

    repo = PositionRepository(warehouse_url)  # a newer desk migrates on connect
    assert repo.applied == ["0010", "0011"]
    expected = [(i, units) for i, _, units in STORED_FLOATS]
    assert expected == [(i, int(to_units(q))) for i, q, _ in STORED_FLOATS]
    for table in ("eod_positions", "intraday_positions"):
        query = f"SELECT instrument_id, quantity_micro_units FROM {table} ORDER BY instrument_id"
        assert rows(engine, query) == expected, table
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), tables.metadata) == []
    for before in (pd.Timestamp(WINDOW_US * 1000, tz="UTC"), pd.Timestamp(END_US * 1000, tz="UTC")):
        opening = repo.opening(before).positions.sort_values("instrument_id")
        assert opening["quantity_micro_units"].tolist() == [units for _, units in expected]
    repo.engine.dispose()

    migrate(engine, "0009", down=True)
    for table in ("eod_positions", "intraday_positions"):
        query = f"SELECT instrument_id, quantity FROM {table} ORDER BY instrument_id"
        assert rows(engine, query) == [(i, units / 1_000_000) for i, units in expected], table
