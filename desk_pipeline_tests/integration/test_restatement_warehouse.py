"""Restatement at the warehouse, on SQLite and PostgreSQL: emptied books, unchanged restatements."""

import json

import pandas as pd
import pytest

from desk_pipeline.adapters.warehouse import PositionRepository, now_micros
from desk_pipeline.domain.positions.engine import roll_positions
from desk_pipeline.domain.schema import QUARANTINE_DTYPES, empty_frame
from desk_pipeline_tests.builders import T0, make_trades, trade

DAY = "2026-03-02"
END = pd.Timestamp("2026-03-03", tz="UTC")
DAYS = pd.DataFrame({"business_date": [DAY], "as_of": [END]})


def ingest(repo: PositionRepository, source: str, rows: list[dict]) -> None:
    trades = make_trades(rows)
    repo.ingest(source, len(trades), trades, empty_frame(QUARANTINE_DTYPES))


def recompute(repo: PositionRepository) -> tuple[pd.DataFrame, int]:
    opening = repo.opening(T0)
    snap = roll_positions(opening.positions, repo.trades_since(opening.bounds, END), [END])
    return snap.assign(business_date=DAY), opening.read_at_us


@pytest.fixture
def repo(warehouse_url) -> PositionRepository:
    repository = PositionRepository(warehouse_url)
    yield repository
    repository.engine.dispose()


@pytest.mark.postgres
def test_a_book_whose_only_trade_is_cancelled_gets_an_empty_restated_eod(repo):
    ingest(repo, "a", [trade("T1", 100, 10.0, book="B1"), trade("T2", 5, 1.0, book="B2")])
    snap, read_at = recompute(repo)
    repo.keep_last_eod(snap, read_at)
    ingest(repo, "b", [trade("T2", 5, 1.0, book="B2", version=2, status="CANCEL")])
    assert repo.eod_headers().set_index("book_id")["stale"].to_dict() == {"B1": False, "B2": True}
    snap, read_at = recompute(repo)
    assert set(snap["book_id"]) == {"B1"}  # B2 holds nothing: only the recomputed days show it
    repo.keep_last_eod(snap, read_at)
    (write,) = repo.keep_last_eod(snap, read_at, recomputed=DAYS)
    assert (write.book_id, write.restatement, write.position_count) == ("B2", True, 0)
    assert repo.eod("B2", DAY)[1].empty
    assert not repo.eod_headers()["stale"].any()
    event = json.loads(repo.pending_events()["payload"].iloc[-1])
    assert (event["book_id"], event["restatement"], event["position_count"]) == ("B2", True, 0)
    # Emptying again changes nothing and announces nothing.
    assert repo.keep_last_eod(snap, now_micros(), recomputed=DAYS) == []


@pytest.mark.postgres
def test_an_older_computation_never_empties_a_newer_eod(repo):
    ingest(repo, "a", [trade("T1", 100, 10.0)])
    stale_read = now_micros()
    snap, read_at = recompute(repo)
    repo.keep_last_eod(snap, read_at)
    assert repo.keep_last_eod(snap.iloc[0:0], stale_read, recomputed=DAYS) == []
    assert repo.eod("B1", DAY)[1]["quantity"].tolist() == [100]


@pytest.mark.postgres
def test_an_identical_restatement_clears_the_staleness_without_an_event(repo):
    ingest(repo, "a", [trade("T1", 100, 10.0)])
    snap, read_at = recompute(repo)
    repo.keep_last_eod(snap, read_at)
    ingest(repo, "b", [trade("T1", 100, 10.0, version=2, status="AMEND")])
    assert repo.eod_headers()["stale"].all()
    events = len(repo.pending_events())
    snap, read_at = recompute(repo)
    assert repo.keep_last_eod(snap, read_at) == []
    assert not repo.eod_headers()["stale"].any()
    assert len(repo.pending_events()) == events
