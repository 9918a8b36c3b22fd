"""The asset checks' functions over a real SQLite warehouse: each passes and each fails."""

import pandas as pd
import pytest
import sqlalchemy as sa

from desk_pipeline.adapters import tables as t
from desk_pipeline.adapters.warehouse import PositionRepository, now_micros
from desk_pipeline.defs.positions.checks import (
    check_eods_match_recomputation,
    check_one_eod_per_book_day,
    check_quarantine_rate,
    check_trades_reconcile_with_source,
    run_days,
)
from desk_pipeline.domain.positions.engine import roll_positions
from desk_pipeline.domain.schema import QUARANTINE_DTYPES, conform, empty_frame
from desk_pipeline_tests.builders import make_trades, no_positions, trade

DAY = "2026-03-02"
END = pd.Timestamp("2026-03-03", tz="UTC")


@pytest.fixture
def repo(sqlite_url) -> PositionRepository:
    repository = PositionRepository(sqlite_url)
    trades = make_trades([trade("T1", 100, 10.0), trade("T2", -40, 12.0, 30)])
    repository.ingest("a.csv", 2, trades, empty_frame(QUARANTINE_DTYPES))
    snap = roll_positions(
        no_positions(), repository.trades_between(END - pd.Timedelta(days=2), END), [END]
    )
    repository.keep_last_eod(snap.assign(business_date=DAY), now_micros())
    yield repository
    repository.engine.dispose()


def no_rejects() -> pd.DataFrame:
    return empty_frame(QUARANTINE_DTYPES)


def rejected(n: int) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "source": "bad.csv",
            "row_number": range(1, n + 1),
            "trade_id": [f"X{i}" for i in range(n)],
            "reason_code": "price_not_positive",
            "reason": "price -1 is not positive",
            "raw": "{}",
        }
    )
    return conform(frame, QUARANTINE_DTYPES)


def test_a_stored_eod_equal_to_its_recomputation_passes(repo):
    result = check_eods_match_recomputation(repo, [DAY])
    assert result.passed and result.metadata["eods_checked"].value == 1


def test_a_tampered_eod_fails_the_recomputation_check(repo):
    with repo.engine.begin() as conn:
        conn.execute(t.eod_positions.update().values(quantity_micro_units=61_000_000))
    result = check_eods_match_recomputation(repo, None)
    assert not result.passed
    assert result.metadata["examples"].value == f"B1 {DAY}"


def test_a_stale_eod_is_left_to_the_restatement_not_failed(repo):
    late = make_trades([trade("LATE", 5, 11.0, 45)])
    repo.ingest("late.csv", 1, late, empty_frame(QUARANTINE_DTYPES))
    result = check_eods_match_recomputation(repo, [DAY])
    assert result.passed and result.metadata["eods_checked"].value == 0


NEXT_DAY = "2026-03-03"


@pytest.fixture
def two_days(repo) -> PositionRepository:
    """``repo`` with a second day: its trade and its EOD, rolled from the first day's EOD."""
    repo.ingest("b.csv", 1, make_trades([trade("T3", 7, 11.0, 24 * 60)]), no_rejects())
    opening = repo.opening(END)
    end = END + pd.Timedelta(days=1)
    snap = roll_positions(opening.positions, repo.trades_since(opening.bounds, end), [end])
    repo.keep_last_eod(snap.assign(business_date=NEXT_DAY), now_micros())
    return repo


def test_the_last_day_is_recomputed_from_its_opening_checkpoint_not_the_first_trade(two_days):
    # Trades before the first day's EOD are not read: the stored EOD stands for them.
    with two_days.engine.begin() as conn:
        conn.execute(
            t.current_trades.update().where(t.current_trades.c.trade_id == "T1").values(price=1.0)
        )
    result = check_eods_match_recomputation(two_days, [DAY, NEXT_DAY])
    assert result.passed and result.metadata["eods_checked"].value == 1
    assert not check_eods_match_recomputation(two_days, None).passed


def test_a_tampered_last_day_fails_the_check_from_its_checkpoint(two_days):
    with two_days.engine.begin() as conn:
        conn.execute(
            t.eod_positions.update()
            .where(t.eod_positions.c.business_date == NEXT_DAY)
            .values(avg_price=12.5)
        )
    result = check_eods_match_recomputation(two_days, [DAY, NEXT_DAY])
    assert not result.passed
    assert result.metadata["examples"].value == f"B1 {NEXT_DAY}"


def test_one_snapshot_per_book_day_passes_and_a_leftover_row_fails(repo):
    assert check_one_eod_per_book_day(repo).passed
    with repo.engine.begin() as conn:
        conn.execute(
            t.eod_positions.insert().values(
                snapshot_id="leftover",
                instrument_id="XS0009",
                book_id="B1",
                business_date=DAY,
                quantity_micro_units=1_000_000,
                avg_price=1.0,
                realized_pnl=0.0,
            )
        )
    result = check_one_eod_per_book_day(repo)
    assert not result.passed
    assert result.metadata["book_days_with_several_snapshots"].value == 1
    # A run checks its own days only: the leftover on DAY is not another day's business.
    assert check_one_eod_per_book_day(repo, ["2026-03-03"]).passed
    assert not check_one_eod_per_book_day(repo, [DAY]).passed


def test_the_quarantine_rate_check_fails_only_over_its_threshold(repo):
    # 2 accepted + 1 quarantined of 3 received after this batch: a third.
    repo.ingest("bad.csv", 1, make_trades([]), rejected(1))
    assert check_quarantine_rate(repo, 0.34).passed
    result = check_quarantine_rate(repo, 0.05)
    assert not result.passed
    assert result.metadata["quarantine_rate"].value == pytest.approx(1 / 3)


def test_the_source_reconciliation_check_fails_when_a_batch_lost_rows(repo):
    assert check_trades_reconcile_with_source(repo).passed
    with repo.engine.begin() as conn:
        conn.execute(
            sa.insert(t.ingested_batches).values(
                source="lossy.csv",
                content_sha256="0" * 64,
                ingested_at_us=now_micros(),
                received=10,
                accepted=7,
                quarantined=2,
            )
        )
    result = check_trades_reconcile_with_source(repo)
    assert not result.passed and result.metadata["examples"].value == "lossy.csv"


def test_the_checked_days_come_from_the_runs_partition_tags():
    tags = {
        "dagster/asset_partition_range_start": "2026-03-30",
        "dagster/asset_partition_range_end": "2026-04-01",
    }
    assert run_days(tags) == ["2026-03-30", "2026-03-31", "2026-04-01"]
    assert run_days({"dagster/partition": DAY}) == [DAY]
    assert run_days({}) is None
