"""The sql:<url> trade source against a real upstream table on PostgreSQL and SQLite."""

import dagster as dg
import pandas as pd
import pytest
import sqlalchemy as sa

from desk_pipeline.adapters.sql_source import SqlTableSource
from desk_pipeline.adapters.trade_sources import TradeSourceError, trade_source_from
from desk_pipeline.adapters.warehouse import PositionRepository
from desk_pipeline.defs.ingestion import ingest_window
from desk_pipeline.defs.resources import (
    CalendarResource,
    HaircutScheduleResource,
    SqlTradeSource,
    WarehouseResource,
)
from desk_pipeline_tests.conftest import pg_schema, schema_url
from desk_pipeline_tests.location import desk_assets

[trades_asset] = desk_assets("trades")

T0 = pd.Timestamp("2026-03-02 09:00", tz="UTC")
END = pd.Timestamp("2026-03-03", tz="UTC")

upstream_meta = sa.MetaData()
upstream_trades = sa.Table(
    "trades",
    upstream_meta,
    sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("trade_id", sa.String(80)),
    sa.Column("version", sa.Integer),
    sa.Column("status", sa.String(10)),
    sa.Column("book_id", sa.String(80)),
    sa.Column("instrument_id", sa.String(80)),
    sa.Column("quantity", sa.Float),
    sa.Column("price", sa.Float),
    sa.Column("trade_time", sa.DateTime(timezone=True)),
    sa.Column("counterparty", sa.String(40)),  # an extra upstream column, ignored
)


@pytest.fixture(params=["sqlite", "postgresql"])
def upstream_url(request, tmp_path):
    """An upstream booking database with its own trades table (own PostgreSQL schema)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/upstream.db"
        engine = sa.create_engine(url)
        upstream_meta.create_all(engine)
        engine.dispose()
        yield url
        return
    with pg_schema(request.getfixturevalue("pg_engine"), prefix="up") as schema:
        url = schema_url(schema)
        engine = sa.create_engine(url)
        upstream_meta.create_all(engine)
        engine.dispose()
        yield url


@pytest.fixture
def repo(sqlite_url):
    repository = PositionRepository(sqlite_url)
    yield repository
    repository.engine.dispose()


def book(url: str, *rows: dict) -> None:
    """The upstream system books rows (seq assigned by the caller, in commit order)."""
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(upstream_trades.insert(), list(rows))
    engine.dispose()


def row(seq: int, trade_id: str, quantity: float, **extra) -> dict:
    base = {
        "seq": seq,
        "trade_id": trade_id,
        "version": 1,
        "status": "NEW",
        "book_id": "B1",
        "instrument_id": "XS1",
        "quantity": quantity,
        "price": 10.0,
        "trade_time": (T0 + pd.Timedelta(minutes=seq)).to_pydatetime(),
        "counterparty": "ACME",
    }
    return base | extra


def test_rows_are_read_incrementally_by_watermark_and_validated_like_csv_rows(upstream_url, repo):
    source = trade_source_from(f"sql:{upstream_url}")
    book(upstream_url, row(1, "T1", 100), row(2, "T2", 0), row(3, "T3", -5, status=None))
    first = ingest_window(source, repo, T0, END)
    assert [(r.received, r.accepted, r.quarantined) for r in first] == [(3, 2, 1)]
    assert list(repo.quarantined()["reason_code"]) == ["zero_quantity"]
    assert list(repo.quarantined()["row_number"]) == [2]  # the upstream seq
    assert repo.watermark(source.watermark_key) == 3

    book(upstream_url, row(4, "T1", 150, version=2, status="AMEND"), row(5, "T4", 1))
    second = ingest_window(source, repo, T0, END)
    assert [(r.received, r.accepted, r.quarantined) for r in second] == [(2, 2, 0)]
    assert repo.watermark(source.watermark_key) == 5
    assert ingest_window(source, repo, T0, END) == []

    stored = repo.trades_between(T0, END).set_index("trade_id")
    assert stored.loc["T1", "quantity"] == 150 and stored.loc["T1", "version"] == 2
    assert stored.loc["T3", "status"] == "NEW"  # NULL status takes the contract's default
    assert stored.loc["T4", "trade_time"] == T0 + pd.Timedelta(minutes=5)


class CrashAfter(PositionRepository):
    """A warehouse whose process dies before storing its n-th batch (a run worker crash)."""

    def __init__(self, url: str, batches: int) -> None:
        super().__init__(url)
        self.left = batches

    def ingest(self, *args, **kwargs):
        if self.left == 0:
            raise KeyboardInterrupt("run worker killed")
        self.left -= 1
        return super().ingest(*args, **kwargs)


def test_a_crash_between_batches_skips_no_row_and_the_rerun_continues_from_the_watermark(
    upstream_url, sqlite_url
):
    book(upstream_url, *[row(seq, f"T{seq}", seq) for seq in range(1, 8)])
    source = SqlTableSource(upstream_url, batch_rows=3)
    crashing = CrashAfter(sqlite_url, batches=1)
    with pytest.raises(KeyboardInterrupt):
        ingest_window(source, crashing, T0, END)
    crashing.engine.dispose()
    repo = PositionRepository(sqlite_url)
    try:
        assert repo.watermark(source.watermark_key) == 3
        assert sorted(repo.all_trade_versions()["trade_id"]) == ["T1", "T2", "T3"]
        rerun = ingest_window(source, repo, T0, END)
        assert [r.received for r in rerun] == [3, 1]
        stored = repo.all_trade_versions()
        assert sorted(stored["trade_id"]) == [f"T{i}" for i in range(1, 8)]
        assert repo.watermark(source.watermark_key) == 7
    finally:
        repo.engine.dispose()


def test_the_watermark_key_names_the_upstream_without_its_password():
    source = trade_source_from("sql:postgresql+psycopg://desk:s3cret@db.example:5432/booking")
    assert isinstance(source, SqlTableSource)
    assert "s3cret" not in source.watermark_key and "db.example" in source.watermark_key


def test_an_upstream_without_the_sequence_column_is_refused_with_a_clear_error(tmp_path, repo):
    url = f"sqlite:///{tmp_path}/bad_upstream.db"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE trades (trade_id TEXT, quantity REAL)"))
    engine.dispose()
    with pytest.raises(TradeSourceError, match=r"lacks columns \['seq', 'book_id'"):
        ingest_window(trade_source_from(f"sql:{url}"), repo, T0, END)


def test_a_sqlite_upstream_that_does_not_exist_is_refused_and_not_created(tmp_path, repo):
    # Connecting created an empty file, and the run then failed on its missing table.
    missing = tmp_path / "no_such_upstream.db"
    with pytest.raises(TradeSourceError, match=f"^sql source: no database file at {missing}$"):
        ingest_window(trade_source_from(f"sql:sqlite:///{missing}"), repo, T0, END)
    assert not missing.exists()


def test_an_upstream_with_a_column_named_twice_apart_from_case_is_refused(pg_engine, repo):
    # PostgreSQL keeps "trade_id" and "TRADE_ID" apart; the contract reads names in any case.
    columns = 'seq BIGINT, trade_id TEXT, "TRADE_ID" TEXT, book_id TEXT, instrument_id TEXT'
    with pg_schema(pg_engine, prefix="up") as schema:
        with pg_engine.connect() as conn:
            conn.execute(
                sa.text(
                    f"CREATE TABLE {schema}.trades ({columns}, quantity TEXT, price TEXT, "
                    "trade_time TEXT)"
                )
            )
            conn.execute(
                sa.text(
                    f"INSERT INTO {schema}.trades VALUES (1, 'T3', 'T3b', 'B', 'I', '1', '1', '')"
                )
            )
        with pytest.raises(
            TradeSourceError, match=r"named alike \(case-insensitive\): \['trade_id'\]"
        ):
            ingest_window(trade_source_from(f"sql:{schema_url(schema)}"), repo, T0, END)


def test_the_trades_asset_ingests_from_an_sql_source_once_per_row(
    tmp_path, sqlite_url, dagster_instance
):
    upstream = f"sqlite:///{tmp_path}/booking.db"
    engine = sa.create_engine(upstream)
    upstream_meta.create_all(engine)
    engine.dispose()
    book(upstream, row(1, "T1", 100), row(2, "T2", -40))
    resources = {
        "warehouse": WarehouseResource(url=sqlite_url),
        "trade_source": SqlTradeSource(url=upstream),
        "calendar": CalendarResource(),
        "haircuts": HaircutScheduleResource(),
    }
    counts = []
    for key in ("2026-03-02-09:00", "2026-03-02-09:10"):
        result = dg.materialize(
            [trades_asset], partition_key=key, resources=resources, instance=dagster_instance
        )
        metadata = result.asset_materializations_for_node("trades")[0].metadata
        counts.append((metadata["received"].value, metadata["accepted"].value))
    assert counts == [(2, 2), (0, 0)]  # the second tick finds nothing above the watermark


# Values each upstream can hold that its driver, SQLAlchemy or pandas used to raise on; the
# sql is the upstream's own dialect, so the values reach the source exactly as stored.
HOSTILE = {
    "postgresql": [
        ("T-INF", "trade_time", "'infinity'", "bad_trade_time"),
        ("T-NINF", "trade_time", "'-infinity'", "bad_trade_time"),
        ("T-BC", "trade_time", "'0026-03-02 10:00:00+00 BC'", "bad_trade_time"),
        ("T-0026", "trade_time", "'0026-03-02 10:00:00+00'", "trade_time_out_of_range"),
        ("T-NAN", "quantity", "'NaN'", "quantity_not_numeric"),
        ("T-HUGE", "quantity", "1e308", "quantity_out_of_range"),
        ("T-PINF", "price", "'Infinity'", "price_not_finite"),
    ],
    "sqlite": [
        ("T-NOW", "trade_time", "'now'", "bad_trade_time"),
        ("T-0026", "trade_time", "'0026-03-02 10:00:00'", "trade_time_out_of_range"),
        ("T-DATE", "trade_time", "'2026-03-02'", "trade_time_without_time"),
        ("T-TEXT", "quantity", "'lots'", "quantity_not_numeric"),
        ("T-BLOB", "price", "X'FF00'", "price_not_numeric"),
        ("T-UTF8", "book_id", "CAST(X'4241FF' AS TEXT)", None),  # read as 'BA\ufffd'
        ("T-VER", "version", "'v2'", "bad_version"),
    ],
}


def test_values_the_upstream_driver_cannot_convert_are_quarantined_not_raised(upstream_url, repo):
    dialect = "postgresql" if upstream_url.startswith("postgresql") else "sqlite"
    rows = HOSTILE[dialect]
    book(upstream_url, row(1, "T-OK", 100))
    engine = sa.create_engine(upstream_url)
    with engine.begin() as conn:
        for seq, (trade_id, column, sql, _) in enumerate(rows, start=2):
            conn.execute(upstream_trades.insert(), [row(seq, trade_id, 5)])
            conn.execute(sa.text(f"UPDATE trades SET {column} = {sql} WHERE seq = {seq}"))
        # A busy upstream's sequence passes 2**31; its quarantine rows keep it.
        conn.execute(upstream_trades.insert(), [row(1, "T-BIG", 0) | {"seq": 2**40}])
    engine.dispose()

    results = ingest_window(trade_source_from(f"sql:{upstream_url}"), repo, T0, END)

    assert sum(r.received for r in results) == len(rows) + 2
    assert all(r.received == r.accepted + r.quarantined for r in results)
    quarantine = repo.quarantined().set_index("trade_id")
    expected = {tid: code for tid, _, _, code in rows if code} | {"T-BIG": "zero_quantity"}
    assert quarantine["reason_code"].to_dict() == expected
    assert quarantine.loc["T-BIG", "row_number"] == 2**40
    accepted = set(repo.all_trade_versions()["trade_id"])
    assert accepted == {"T-OK"} | {tid for tid, _, _, code in rows if code is None}
    if dialect == "sqlite":
        stored = repo.all_trade_versions().set_index("trade_id")
        assert stored.loc["T-UTF8", "book_id"] == "BA\ufffd"


def test_a_row_without_a_sequence_number_waits_and_the_others_are_read(tmp_path, repo, caplog):
    url = f"sqlite:///{tmp_path}/waiting.db"
    engine = sa.create_engine(url)
    loose = sa.Table(
        "trades",
        sa.MetaData(),
        sa.Column("seq", sa.BigInteger, nullable=True),
        *[sa.Column(c.name, c.type) for c in upstream_trades.columns if c.name != "seq"],
    )
    loose.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(loose.insert(), [row(1, "T1", 100), row(2, "T-LATER", 5) | {"seq": None}])
    engine.dispose()

    results = ingest_window(trade_source_from(f"sql:{url}"), repo, T0, END)

    assert [(r.received, r.accepted) for r in results] == [(1, 1)]
    assert "1 rows of trades have no seq yet" in caplog.text


def test_a_later_resend_with_other_content_is_quarantined_under_its_own_seq(upstream_url, repo):
    source = trade_source_from(f"sql:{upstream_url}")
    book(upstream_url, row(1, "T1", 100), row(2, "T2", 5))
    ingest_window(source, repo, T0, END)
    # A later batch: seq 7 resends T1 version 1 with another quantity.
    book(upstream_url, row(6, "T6", 1), row(7, "T1", 999))
    [second] = ingest_window(source, repo, T0, END)

    assert (second.accepted, second.quarantined) == (1, 1)
    quarantined = repo.quarantined()
    assert list(zip(quarantined["row_number"], quarantined["reason_code"], strict=True)) == [
        (7, "conflicting_duplicate")
    ]
