"""rankings_and_eod_rows on SQLite and PostgreSQL: the rows of rankings() and eod_positions().

The ranking checks read through it; it must return every row the two full reads return, with
the same values, only fewer columns, ids as categoricals and no order.
"""

import pandas as pd
import pytest
import sqlalchemy as sa

from desk_pipeline.adapters import tables as t
from desk_pipeline.adapters.warehouse import PositionRepository, now_micros
from desk_pipeline_tests.builders import with_micro_units

DAYS = ["2026-03-02", "2026-03-03"]
IDS = ["book_id", "instrument_id", "business_date"]


@pytest.fixture
def repo(warehouse_url) -> PositionRepository:
    """Two days of EODs for two books, each day ranked; one eligible, one not, one unpriced."""
    repository = PositionRepository(warehouse_url)
    for n, day in enumerate(DAYS):
        as_of = pd.Timestamp(day, tz="UTC") + pd.Timedelta(days=1)
        eod = pd.DataFrame(
            {
                "book_id": ["B1", "B1", "B1", "B2"],
                "instrument_id": ["DE01", "US02", "FLAT", "DE01"],
                "quantity": [100.0 + n, -5.0, 0.0, 7.5],
                "avg_price": 1.0,
                "realized_pnl": 0.0,
                "business_date": day,
                "as_of": as_of,
            }
        )
        writes = repository.keep_last_eod(with_micro_units(eod), now_micros())
        snapshot = {w.book_id: w.snapshot_id for w in writes}
        ranking = pd.DataFrame(
            {
                "book_id": ["B1", "B1", "B2"],
                "business_date": day,
                "instrument_id": ["DE01", "US02", "DE01"],
                "snapshot_id": [snapshot["B1"], snapshot["B1"], snapshot["B2"]],
                "as_of": as_of,
                "rank": pd.array([1, None, None], dtype="Int64"),
                "quantity": [100.0 + n, -5.0, 7.5],
                "price": [1.5, 2.0, None],
                "fx_rate": [1.0, 0.9, 1.0],
                "haircut": [0.02, 0.04, None],
                "value": [147.0 * (1 + n / 100), -8.64, None],
                "eligible": [True, False, False],
                "reason": [None, "short_position: -5", "no_price: DE01"],
            }
        )
        repository.replace_rankings([day], ranking)
    yield repository
    repository.engine.dispose()


def as_read(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """``frame``'s ``columns``, ids as plain strings, in key order: reads compared as rows."""
    ids = [c for c in IDS if c in columns]
    plain = frame.loc[:, columns].astype(dict.fromkeys(ids, object))
    return plain.sort_values(IDS, kind="stable").reset_index(drop=True)


def test_the_checks_read_the_rows_and_values_of_the_full_reads(repo):
    positions, ranking = repo.rankings_and_eod_rows(DAYS)
    full = repo.rankings(DAYS)
    assert len(ranking) == len(full) == 6
    pd.testing.assert_frame_equal(
        as_read(ranking, list(ranking.columns)),
        as_read(full, list(ranking.columns)),
        check_exact=True,
        check_dtype=False,
    )
    assert ranking["rank"].dtype == "Int64" and ranking["eligible"].dtype == bool
    stored = repo.eod_positions(DAYS)
    assert len(positions) == len(stored) == 8
    pd.testing.assert_frame_equal(
        as_read(positions, list(positions.columns)),
        as_read(stored, list(positions.columns)).astype({"snapshot_id": object}),
        check_exact=True,
        check_dtype=False,
    )


def test_ids_are_categoricals_both_frames_share_in_id_order(repo):
    positions, ranking = repo.rankings_and_eod_rows(DAYS)
    for column in IDS:
        assert isinstance(positions[column].dtype, pd.CategoricalDtype)
        assert positions[column].cat.categories.equals(ranking[column].cat.categories)
    # FLAT is held (a flat row) but not ranked: the categories are the ids of either frame.
    assert list(positions["instrument_id"].cat.categories) == ["DE01", "FLAT", "US02"]
    assert list(positions["business_date"].cat.categories) == DAYS


def test_only_the_given_days_are_read_and_rows_without_a_header_are_not(repo):
    with repo.engine.begin() as conn:
        conn.execute(
            sa.insert(t.eod_positions).values(
                snapshot_id="no-header",
                instrument_id="ORPHAN",
                book_id="B1",
                business_date=DAYS[0],
                quantity_micro_units=1_000_000,
                avg_price=1.0,
                realized_pnl=0.0,
            )
        )
    positions, ranking = repo.rankings_and_eod_rows(DAYS[1:])
    assert set(positions["business_date"]) == set(ranking["business_date"]) == {DAYS[1]}
    positions, _ = repo.rankings_and_eod_rows(DAYS)
    assert "ORPHAN" not in set(positions["instrument_id"]) and len(positions) == 8


def test_no_day_reads_two_empty_frames_with_the_columns(repo):
    positions, ranking = repo.rankings_and_eod_rows([])
    assert positions.empty and ranking.empty
    assert list(positions.columns) == [
        "business_date",
        "snapshot_id",
        "as_of",
        "book_id",
        "instrument_id",
        "quantity",
    ]
    assert {"book_id", "instrument_id", "rank", "value", "eligible"} <= set(ranking.columns)
