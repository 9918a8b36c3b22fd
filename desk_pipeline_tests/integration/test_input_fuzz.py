"""Any value a file or upstream table holds is ingested or quarantined; none stops a run.

Each field is drawn from the whole space (any text, date-times from year 1 to 9999 with any
sub-second digits and offsets, huge and tiny numbers, NaN and infinities) and goes through the
real sources and the real ingestion into SQLite and PostgreSQL warehouses.
"""

import csv
import itertools
import json
import math
import os
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from desk_pipeline.adapters.sql_source import SqlTableSource
from desk_pipeline.adapters.trade_sources import LandingFolderSource
from desk_pipeline.adapters.warehouse import PositionRepository
from desk_pipeline.defs.ingestion import ingest_window
from desk_pipeline.domain.positions.engine import roll_positions
from desk_pipeline.domain.positions.trades import EARLIEST_TRADE_TIME, LATEST_TRADE_TIME
from desk_pipeline_tests.builders import no_positions, quarantined_from, validated_reference
from desk_pipeline_tests.conftest import pg_schema, schema_url
from desk_pipeline_tests.strategies import REFERENCE_KINDS, TRADE_CELLS, rows_like, trade_rows

EXAMPLES = int(os.environ.get("FUZZ_N", "15"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def strict_json(text: str) -> object:
    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} is not JSON (RFC 8259)")

    return json.loads(text, parse_constant=refuse)


def write_csv(path: Path, rows: list[dict[str, str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


@pytest.fixture
def repo(warehouse_url):
    repository = PositionRepository(warehouse_url)
    yield repository
    repository.engine.dispose()


def assert_the_book_is_finite_and_printable(repo: PositionRepository) -> None:
    """Whatever was accepted, the positions it makes are finite numbers JSON can carry."""
    trades = repo.trades_between(EARLIEST_TRADE_TIME, LATEST_TRADE_TIME)
    positions = roll_positions(no_positions(), trades, [LATEST_TRADE_TIME])
    for column in ("quantity", "avg_price", "realized_pnl"):
        assert positions[column].map(math.isfinite).all(), column
    json.dumps(positions.drop(columns="as_of").to_dict("records"), allow_nan=False)


def plausible(**change: str) -> dict[str, str]:
    return {c: v[0] for c, v in TRADE_CELLS.items()} | change


# The values that failed whole runs before, always tried besides the random ones.
FORMER_FAILURES = [
    plausible(trade_time="0026-03-02T10:00:00Z"),
    plausible(trade_id="F2", quantity="1e308"),
    plausible(trade_id="F3", price="1e308"),
    plausible(trade_id="F-4", trade_time="now"),
    plausible(trade_id="F5", trade_time="2026-03-02T10:00:00.000000100Z"),
]


def test_any_landing_rows_are_ingested_or_quarantined_and_nothing_raises(repo, tmp_path):
    folders = (tmp_path / f"drop{i:04d}" for i in itertools.count())

    @FUZZ
    @given(first=trade_rows(), second=trade_rows())
    @example(first=[plausible(trade_id="OK")], second=FORMER_FAILURES)
    def check(first: list[dict[str, str]], second: list[dict[str, str]]) -> None:
        folder = next(folders)
        folder.mkdir()
        # Names of their own: content drawn again under a name already ingested is not read again.
        write_csv(folder / f"{folder.name}a.csv", first)
        write_csv(folder / f"{folder.name}b.csv", second)

        results = ingest_window(
            LandingFolderSource(folder), repo, EARLIEST_TRADE_TIME, LATEST_TRADE_TIME
        )

        assert sum(r.received for r in results) == len(first) + len(second)
        assert all(r.received == r.accepted + r.quarantined for r in results)
        quarantine = quarantined_from(repo, [r.source for r in results])
        # Nothing lost, nothing invented: a rejected row is stored once however often it came.
        rejected = sum(r.quarantined for r in results)
        assert (len(quarantine) > 0) == (rejected > 0) and len(quarantine) <= rejected
        assert (quarantine["reason_code"] != "").all() and (quarantine["reason"] != "").all()
        assert all(isinstance(strict_json(raw), dict) for raw in quarantine["raw"])
        assert_the_book_is_finite_and_printable(repo)

    check()


REFERENCE_CELLS = {
    "instruments.csv": {
        "instrument_id": ["DE1", "X2"],
        "name": ["Bund"],
        "asset_class": ["government_bond", "equity_other"],
        "issuer_type": ["sovereign", ""],
        "issuer": ["DE"],
        "rating": ["AAA", "Baa2", ""],
        "maturity_date": ["2031-02-15", "", "2117-06-20"],
        "currency": ["EUR", "usd"],
    },
    "books.csv": {"book_id": ["B1", "B2"], "base_currency": ["EUR"], "holding_period_days": ["5"]},
    "prices.csv": {"instrument_id": ["DE1"], "price_date": ["2026-03-04"], "price": ["99.5"]},
    "fx_rates.csv": {
        "currency": ["EUR", "GBP"],
        "rate_date": ["2026-03-04"],
        "usd_per_unit": ["1"],
    },
}


def reference_files() -> st.SearchStrategy[dict[str, list[dict[str, str]]]]:
    return st.fixed_dictionaries(
        {
            name: rows_like(columns, max_size=6, kinds=REFERENCE_KINDS)
            for name, columns in REFERENCE_CELLS.items()
        }
    )


def test_any_reference_rows_are_stored_or_quarantined_and_nothing_raises(repo, tmp_path):
    folders = (tmp_path / f"drop{i:04d}" for i in itertools.count())

    @FUZZ
    @given(files=reference_files())
    def check(files: dict[str, list[dict[str, str]]]) -> None:
        folder = next(folders)
        folder.mkdir()
        for name, rows in files.items():
            write_csv(folder / name, rows)
        source = LandingFolderSource(folder)

        received = validated_reference("landing", source, pd.Timestamp("2026-03-04"))
        written = repo.replace_reference(
            instruments=received.instruments,
            books=received.books,
            prices=received.prices,
            fx_rates=received.fx_rates,
            quarantined=received.quarantine,
        )

        assert received.received == sum(map(len, files.values()))
        assert written["quarantined"] <= len(received.quarantine)
        stored = quarantined_from(repo, list(received.quarantine["source"].unique()))
        assert all(isinstance(strict_json(raw), dict) for raw in stored["raw"])
        reference = repo.reference_as_of(pd.Timestamp("1970-01-01"), pd.Timestamp("2099-12-31"))
        assert reference.prices["price"].map(math.isfinite).all()
        assert reference.fx_rates["usd_per_unit"].map(math.isfinite).all()

    check()


@pytest.fixture
def upstream_url(warehouse_url, tmp_path, request):
    """An upstream booking database of the warehouse's own kind (own file or schema)."""
    if warehouse_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path}/upstream.db"
        return
    with pg_schema(request.getfixturevalue("pg_engine"), prefix="up") as schema:
        yield schema_url(schema)


def upstream_table(url: str, types: dict[str, sa.types.TypeEngine]) -> sa.Table:
    table = sa.Table(
        "trades",
        sa.MetaData(),
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        *[sa.Column(name, type_) for name, type_ in types.items()],
    )
    engine = sa.create_engine(url)
    table.metadata.create_all(engine)
    engine.dispose()
    return table


def ingest_upstream(url: str, table: sa.Table, rows: list[dict], repo: PositionRepository) -> None:
    """Book ``rows`` upstream after the ones already there, ingest, and check the accounts."""
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        start = conn.execute(sa.select(sa.func.coalesce(sa.func.max(table.c.seq), 0))).scalar()
        conn.execute(table.insert(), [{"seq": start + i + 1, **r} for i, r in enumerate(rows)])
    engine.dispose()

    results = ingest_window(SqlTableSource(url), repo, EARLIEST_TRADE_TIME, LATEST_TRADE_TIME)

    assert sum(r.received for r in results) == len(rows)
    assert all(r.received == r.accepted + r.quarantined for r in results)
    quarantine = quarantined_from(repo, [r.source for r in results])
    assert all(isinstance(strict_json(raw), dict) for raw in quarantine["raw"])
    assert_the_book_is_finite_and_printable(repo)


def storable_upstream(text: str, url: str) -> str:
    # PostgreSQL text cannot hold NUL at all: such a row cannot exist upstream.
    return text.replace("\x00", "") if url.startswith("postgresql") else text


def test_any_text_in_an_upstream_table_is_ingested_or_quarantined(repo, upstream_url):
    table = upstream_table(upstream_url, {c: sa.Text() for c in TRADE_CELLS})

    @FUZZ
    @given(rows=trade_rows())
    @example(rows=FORMER_FAILURES)
    def check(rows: list[dict[str, str]]) -> None:
        rows = [{c: storable_upstream(v, upstream_url) for c, v in r.items()} for r in rows]
        ingest_upstream(upstream_url, table, rows, repo)

    check()


TYPED_ROWS = st.lists(
    st.fixed_dictionaries(
        {
            "trade_id": st.sampled_from(["U1", "U2", "U3"]),
            "version": st.one_of(st.none(), st.integers(-5, 2**31 - 1)),
            "status": st.sampled_from(["NEW", "AMEND", "CANCEL", None]),
            "book_id": st.sampled_from(["UB1", "UB2"]),
            "instrument_id": st.sampled_from(["XS1", "XS2"]),
            "quantity": st.one_of(st.floats(), st.sampled_from([100.0, -5.0, 0.1, 1e308])),
            "price": st.one_of(st.floats(), st.sampled_from([10.0, 99.5, 5e-324])),
            "trade_time": st.one_of(
                st.none(),
                st.datetimes(timezones=st.timezones()),
                st.datetimes(min_value=pd.Timestamp("2026-01-01").to_pydatetime()),
            ),
        }
    ),
    min_size=1,
    max_size=6,
)


def test_any_typed_value_in_an_upstream_table_is_ingested_or_quarantined(repo, upstream_url):
    types = {
        "trade_id": sa.String(80),
        "version": sa.Integer(),
        "status": sa.String(10),
        "book_id": sa.String(80),
        "instrument_id": sa.String(80),
        "quantity": sa.Float(),
        "price": sa.Float(),
        "trade_time": sa.DateTime(timezone=True),
    }
    table = upstream_table(upstream_url, types)

    @FUZZ
    @given(rows=TYPED_ROWS)
    def check(rows: list[dict]) -> None:
        ingest_upstream(upstream_url, table, rows, repo)

    check()
