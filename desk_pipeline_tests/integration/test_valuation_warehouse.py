"""EOD valuations in the warehouse, on SQLite and PostgreSQL: stored per snapshot, read joined."""

import math

import pandas as pd
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from desk_pipeline.adapters import tables
from desk_pipeline.adapters.warehouse import PositionRepository, now_micros
from desk_pipeline.domain.positions.valuation import value_positions
from desk_pipeline.domain.schema import BOOK_DTYPES, FX_DTYPES, PRICE_DTYPES, conform
from desk_pipeline_tests.builders import with_micro_units

DAY = "2026-03-04"
AS_OF = pd.Timestamp("2026-03-05", tz="UTC")


@pytest.fixture
def repo(warehouse_url) -> PositionRepository:
    repository = PositionRepository(warehouse_url)
    yield repository
    repository.engine.dispose()


def store_eod(repo: PositionRepository, rows: list[tuple], as_of: pd.Timestamp = AS_OF) -> None:
    frame = pd.DataFrame(rows, columns=["book_id", "instrument_id", "quantity", "avg_price"])
    frame = frame.astype({"quantity": "float64", "avg_price": "float64"})
    eod = frame.assign(realized_pnl=0.0, business_date=DAY, as_of=as_of)
    assert repo.keep_last_eod(with_micro_units(eod), now_micros())


def valuation(repo: PositionRepository) -> pd.DataFrame:
    instruments = pd.DataFrame(
        {"instrument_id": ["BUND", "UST", "FLAT"], "currency": ["EUR", "USD", "EUR"]}
    )
    prices = conform(
        pd.DataFrame(
            {
                "instrument_id": ["BUND", "UST", "FLAT"],
                "price_date": pd.to_datetime([DAY, "2026-02-26", DAY]),
                "price": [0.98, 0.995, 1.0],
            }
        ),
        PRICE_DTYPES,
    )
    books = conform(
        pd.DataFrame({"book_id": ["B1"], "base_currency": ["EUR"], "holding_period_days": [5]}),
        BOOK_DTYPES,
    )
    fx = conform(
        pd.DataFrame(
            {"currency": ["EUR"], "rate_date": pd.to_datetime([DAY]), "usd_per_unit": [1.08]}
        ),
        FX_DTYPES,
    )
    return value_positions(repo.eod_positions([DAY]), instruments, prices, books, fx)


def test_a_stored_valuation_reads_back_with_its_eod_rows_nulls_and_reasons(repo):
    # BUND long 1,000 @ 0.974, mark 0.98: 980 EUR, +6 EUR. UST 400 @ 0.99, stale mark 0.995:
    # 398 USD = 368.5185 EUR, +2 USD = 1.8519 EUR. GHOST: no instrument, no mark. FLAT: 0.
    held = [("B1", "BUND", 1_000, 0.974), ("B1", "UST", 400, 0.99), ("B1", "GHOST", 10, 5.0)]
    store_eod(repo, [*held, ("B1", "FLAT", 0, 0.0)])

    assert repo.replace_valuations([DAY], valuation(repo)) == 4
    header, rows = repo.valued_eod("B1", DAY)

    assert header["as_of"] == AS_OF
    rows = rows.set_index("instrument_id")
    assert rows["valued"].all()
    assert rows.loc["BUND", ["market_value", "unrealized_pnl"]].tolist() == pytest.approx([980, 6])
    ust = rows.loc["UST"]
    assert (ust["currency"], ust["base_currency"], ust["stale_price"]) == ("USD", "EUR", True)
    assert ust["price_date"] == pd.Timestamp("2026-02-26")
    assert [ust["market_value_base"], ust["unrealized_pnl_base"]] == pytest.approx(
        [398 / 1.08, 2 / 1.08]
    )
    assert ust["reason"].startswith("stale_price: last price on 2026-02-26")
    ghost = rows.loc["GHOST"]
    assert ghost["currency"] is None and ghost["reason"].startswith("unknown_instrument")
    assert math.isnan(ghost["price"]) and math.isnan(ghost["market_value"])
    assert pd.isna(ghost["price_date"])
    assert rows.loc["FLAT", ["market_value", "unrealized_pnl"]].tolist() == [0.0, 0.0]
    assert rows.loc["FLAT", "reason"] is None and rows.loc["BUND", "reason"] is None


def test_a_newer_eod_is_shown_unvalued_until_its_own_valuation_is_stored(repo):
    store_eod(repo, [("B1", "BUND", 1_000, 0.974)])
    repo.replace_valuations([DAY], valuation(repo))

    store_eod(repo, [("B1", "BUND", 2_000, 0.974)], as_of=AS_OF + pd.Timedelta(minutes=10))
    _, rows = repo.valued_eod("B1", DAY)
    assert rows["valued"].tolist() == [False]
    assert math.isnan(rows["market_value"].iloc[0]) and not rows["stale_price"].iloc[0]

    repo.replace_valuations([DAY], valuation(repo))
    _, rows = repo.valued_eod("B1", DAY)
    assert rows["valued"].tolist() == [True]
    assert rows["market_value"].tolist() == pytest.approx([1_960.0])


def test_replacing_a_day_removes_valuations_of_books_no_longer_in_it(repo):
    store_eod(repo, [("B1", "BUND", 1_000, 0.974), ("B2", "BUND", 5, 1.0)])
    repo.replace_valuations([DAY], valuation(repo))

    repo.replace_valuations([DAY], valuation(repo).query("book_id == 'B1'"))

    assert repo.valued_eod("B2", DAY)[1]["valued"].tolist() == [False]
    assert repo.valued_eod("B1", DAY)[1]["valued"].tolist() == [True]
    assert repo.valued_eod("B1", "2026-03-05") is None


def test_a_valuation_of_a_superseded_snapshot_never_replaces_the_current_ones(repo):
    # Two runs at once: run 1 values the EOD it read; run 2 restates the day (a newer
    # snapshot) and stores its valuation first. Run 1's late write must not put the old
    # snapshot's figures back, nor remove run 2's.
    store_eod(repo, [("B1", "BUND", 1_000, 0.974)])
    stale = valuation(repo)
    store_eod(repo, [("B1", "BUND", 2_000, 0.974)], as_of=AS_OF + pd.Timedelta(minutes=10))
    assert repo.replace_valuations([DAY], valuation(repo)) == 1

    assert repo.replace_valuations([DAY], stale) == 0

    _, rows = repo.valued_eod("B1", DAY)
    assert rows["valued"].tolist() == [True]
    assert rows["market_value"].tolist() == pytest.approx([1_960.0])


def test_the_migrations_build_exactly_the_tables_the_code_declares(repo):
    with repo.engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), tables.metadata)
    assert differences == []
