"""The warehouse adapter against real SQLite and PostgreSQL: ingestion, keep-last, staleness."""

import pandas as pd
import pytest
import sqlalchemy as sa

from desk_pipeline.adapters import tables as t
from desk_pipeline.adapters.warehouse import PositionRepository, micros_of, now_micros, to_micros
from desk_pipeline.domain.positions.engine import roll_positions
from desk_pipeline.domain.precision import from_units
from desk_pipeline.domain.schema import (
    POSITION_STATE_DTYPES,
    QUARANTINE_DTYPES,
    conform,
    empty_frame,
)
from desk_pipeline_tests.builders import T0, make_trades, no_positions, trade

DAY1, DAY2 = "2026-03-02", "2026-03-03"
END1, END2 = pd.Timestamp("2026-03-03", tz="UTC"), pd.Timestamp("2026-03-04", tz="UTC")


def ingest(repo: PositionRepository, source: str, rows: list[dict]):
    trades = make_trades(rows)
    return repo.ingest(source, len(trades), trades, empty_frame(QUARANTINE_DTYPES))


def eod_frame(positions: pd.DataFrame, day: str, as_of: pd.Timestamp) -> pd.DataFrame:
    return positions.assign(business_date=day, as_of=as_of)


@pytest.fixture
def repo(warehouse_url) -> PositionRepository:
    repository = PositionRepository(warehouse_url)
    yield repository
    repository.engine.dispose()


def test_reingesting_the_same_batch_changes_nothing(repo):
    rows = [trade("T1", 100, 10.0), trade("T2", -5, 11.0, 3)]
    first = ingest(repo, "landing:a.csv", rows)
    second = ingest(repo, "landing:a.csv", rows)
    assert (first.new_versions, second.already_ingested) == (2, True)
    assert len(repo.all_trade_versions()) == 2
    assert len(repo.quarantined()) == 0


def test_a_resent_version_with_other_content_is_quarantined_and_the_stored_one_stays(repo):
    ingest(repo, "a", [trade("T1", 100, 10.0)])
    result = ingest(repo, "b", [trade("T1", 999, 10.0), trade("T2", 1, 1.0)])
    assert (result.accepted, result.quarantined) == (1, 1)
    assert list(repo.quarantined()["reason_code"]) == ["conflicting_duplicate"]
    assert repo.all_trade_versions().set_index("trade_id").loc["T1", "quantity"] == 100


def test_an_older_snapshot_never_overwrites_a_newer_one(repo):
    ingest(repo, "a", [trade("T1", 100, 10.0), trade("T2", 50, 12.0, 600)])
    trades = repo.trades_between(T0, END1)
    late = T0 + pd.Timedelta(hours=12)
    early = T0 + pd.Timedelta(hours=1)
    newer = roll_positions(no_positions(), trades, [late]).assign(business_date=DAY1)
    older = roll_positions(no_positions(), trades, [early]).assign(business_date=DAY1)
    assert len(repo.keep_last_eod(newer, now_micros())) == 1
    assert repo.keep_last_eod(older, now_micros()) == []  # finishes later, loses
    header, positions = repo.eod("B1", DAY1)
    assert header["as_of"] == late
    assert positions["quantity"].sum() == 150


def test_a_recomputation_of_the_same_as_of_made_later_replaces_the_stored_eod(repo):
    ingest(repo, "a", [trade("T1", 100, 10.0)])
    snap = roll_positions(no_positions(), repo.trades_between(T0, END1), [END1])
    first = repo.keep_last_eod(snap.assign(business_date=DAY1), now_micros())
    ingest(repo, "b", [trade("T2", 1, 10.0, 5)])
    restated = roll_positions(no_positions(), repo.trades_between(T0, END1), [END1])
    second = repo.keep_last_eod(restated.assign(business_date=DAY1), now_micros())
    assert second[0].restatement and not first[0].restatement
    assert repo.eod("B1", DAY1)[0]["snapshot_id"] == second[0].snapshot_id
    assert len(repo.pending_events()) == 2


def test_recomputing_identical_positions_writes_nothing_and_announces_nothing(repo):
    ingest(repo, "a", [trade("T1", 100, 10.0)])
    snap = roll_positions(no_positions(), repo.trades_between(T0, END1), [END1])
    first = repo.keep_last_eod(snap.assign(business_date=DAY1), now_micros())
    assert repo.keep_last_eod(snap.assign(business_date=DAY1), now_micros()) == []
    assert repo.eod("B1", DAY1)[0]["snapshot_id"] == first[0].snapshot_id
    assert len(repo.pending_events()) == 1


def test_a_late_trade_makes_the_stored_eod_of_its_day_and_later_days_stale(repo):
    ingest(repo, "a", [trade("T1", 100, 10.0)])
    opening = repo.opening(T0)
    snap = roll_positions(opening.positions, repo.trades_since(opening.bounds, END2), [END1, END2])
    snap["business_date"] = snap["as_of"].map({END1: DAY1, END2: DAY2})
    repo.keep_last_eod(snap, opening.read_at_us)
    assert not repo.eod_headers()["stale"].any()
    result = ingest(repo, "b", [trade("LATE", 7, 10.0, 30)])
    assert result.stale_books == ("B1",)
    headers = repo.eod_headers()
    assert headers["stale"].all()
    # A stale EOD is not an opening state: recomputation starts from the book's first trade.
    opening = repo.opening(END2)
    assert opening.positions.empty
    assert repo.late_changes()["trade_ids"].tolist() == ["LATE"]


def test_an_amendment_moving_a_trade_to_another_book_restates_both_books(repo):
    ingest(repo, "a", [trade("T1", 100, 10.0, book="B1"), trade("T2", 1, 1.0, book="B2")])
    opening = repo.opening(T0)
    snap = roll_positions(opening.positions, repo.trades_since(opening.bounds, END1), [END1])
    repo.keep_last_eod(snap.assign(business_date=DAY1), opening.read_at_us)
    result = ingest(repo, "b", [trade("T1", 100, 10.0, book="B2", version=2, status="AMEND")])
    assert sorted(result.stale_books) == ["B1", "B2"]


def test_the_opening_state_uses_the_latest_valid_eod_and_trades_after_it(repo):
    ingest(
        repo, "a", [trade("T1", 100, 10.0), trade("T2", 100, 20.0, at=END1 + pd.Timedelta(hours=1))]
    )
    opening = repo.opening(T0)
    snap = roll_positions(opening.positions, repo.trades_since(opening.bounds, END1), [END1])
    repo.keep_last_eod(snap.assign(business_date=DAY1), opening.read_at_us)
    opening = repo.opening(END1)
    assert opening.positions["quantity"].tolist() == [100]
    later = repo.trades_since(opening.bounds, END2)
    assert later["trade_id"].tolist() == ["T2"]


def test_an_intraday_window_is_replaced_on_rematerialisation_and_used_as_checkpoint(repo):
    ingest(repo, "a", [trade("T1", 100, 10.0)])
    end = T0 + pd.Timedelta(minutes=10)
    snap = roll_positions(no_positions(), repo.trades_between(T0, end), [end])
    repo.replace_intraday(end, snap, now_micros())
    repo.replace_intraday(end, snap, now_micros())
    opening = repo.opening(end)
    assert opening.positions["quantity"].tolist() == [100]
    assert set(opening.bounds) == {int(end.value // 1000)}


def test_a_column_of_times_converts_to_the_micros_of_each_time():
    times = pd.Series(
        pd.to_datetime(["2026-03-02 09:00:00.000001", "1969-12-31 23:59:59.5"], utc=True)
    ).dt.tz_convert("Europe/London")
    expected = [to_micros(ts) for ts in times]
    assert micros_of(times).tolist() == expected
    assert micros_of(times.astype("datetime64[us, Europe/London]")).tolist() == expected


def test_a_bulk_ingest_leaves_postgresql_statistics_for_key_lookups(pg_url):
    # Without statistics PostgreSQL scanned all trade versions to look up a window's ids.
    repo = PositionRepository(pg_url)
    ingest(repo, "a.csv", [trade(f"T{i}", 1, 1.0, i) for i in range(20)])
    with repo.engine.connect() as conn:
        analysed = conn.execute(
            sa.text(
                "SELECT relname, reltuples FROM pg_class WHERE oid IN "
                "('trade_versions'::regclass, 'current_trades'::regclass)"
            )
        ).all()
    repo.engine.dispose()
    assert sorted(analysed) == [("current_trades", 20.0), ("trade_versions", 20.0)]


# Micro-units a float cannot all carry: 4.46e9 (came back a micro-unit low from x * 10**6),
# 8.8e9 + 0.000001 and + 0.000002 (one float), the largest position the engine holds exactly.
HELD = [4_456_946_523_790_561, 8_800_000_000_000_001, -8_800_000_000_000_002, 2**53 - 1, 0]


def test_stored_snapshots_give_the_engine_back_its_exact_micro_units(repo):
    positions = pd.DataFrame(
        {
            "book_id": "BIG",
            "instrument_id": [f"I{i}" for i in range(len(HELD))],
            "quantity": from_units(HELD),
            "quantity_micro_units": HELD,
            "avg_price": 1.0 / 3.0,
            "realized_pnl": -2.0 / 3.0,
        }
    )
    window = pd.Timestamp(f"{DAY1} 12:00", tz="UTC")
    state = conform(positions, POSITION_STATE_DTYPES)

    def opening(before: pd.Timestamp) -> pd.DataFrame:
        read = repo.opening(before).positions
        return read.sort_values("instrument_id", kind="stable").reset_index(drop=True)

    repo.replace_intraday(window, positions, now_micros())
    pd.testing.assert_frame_equal(opening(window), state)
    repo.keep_last_eod(eod_frame(positions, DAY1, END1), now_micros())
    pd.testing.assert_frame_equal(opening(END1), state)
    read = repo.eod_positions([DAY1])
    assert read["quantity_micro_units"].tolist() == HELD
    assert read["quantity"].tolist() == from_units(HELD).tolist()
    with repo.engine.connect() as conn:
        stored = conn.execute(sa.select(t.eod_positions.c.quantity_micro_units)).scalars()
        assert sorted(stored) == sorted(HELD)
