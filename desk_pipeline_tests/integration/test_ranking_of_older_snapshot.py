"""A ranking read of a book-day says whether it was computed from the day's current EOD snapshot.

The simulator desk is computed for one day through the daily assets on SQLite and PostgreSQL;
then a late trade restates one book's EOD through a real `eod_positions` run and nothing after
it (a backfill stopped between eod_positions and collateral_ranking). `desk ranking`,
`desk concentration` (one book and the whole day) and their API routes still answer with the
ranking of the replaced snapshot, and say so: `current` false, the snapshot ranked beside the
current EOD's, the backfill that ranks it, and two lines under the text table. The fresh case
(before, and after the named backfill's valuation and ranking) says current and prints no line.
`desk positions --marks` joins the valuation to the current snapshot: it refuses, never shows the
replaced snapshot's values.
"""

import json
import sys
from pathlib import Path

import dagster as dg
import pytest
from fastapi.testclient import TestClient

from desk_pipeline import queries
from desk_pipeline.adapters.warehouse import PositionRepository
from desk_pipeline.api import create_app
from desk_pipeline.cli import main
from desk_pipeline.domain.schema import QUARANTINE_DTYPES, empty_frame
from desk_pipeline_tests.builders import at, make_trades, trade
from desk_pipeline_tests.location import desk_assets, desk_resources, desk_settings

DAY = "2026-03-02"
AS_OF = "2026-03-03T00:00:00+00:00"
FIX = f"desk backfill --start {DAY} --end {DAY}"
# Simulator books: RESTATED's EOD is replaced by a late trade; OTHER keeps its ranking current.
RESTATED, OTHER = "MATCHED-GBP-01", "REPO-EUR-01"
ALL = ["instruments", "prices", "eod_positions", "eod_valuation", "collateral_ranking"]
NOTE = [
    "Ranked from an older snapshot (as of 2026-03-03 00:00 UTC); current EOD as of 2026-03-03 "
    "00:00 UTC.",
    f"The EOD changed since: `{FIX}` completes it.",
]
DAY_NOTE = [
    f"Ranked from an older snapshot than their current EOD: {RESTATED}.",
    f"Their EODs changed since: `{FIX}` completes it.",
]


def materialized(url: str, instance: dg.DagsterInstance, names: list[str]) -> None:
    """``names`` of the simulator desk on ``url`` for DAY, in one run."""
    result = dg.materialize(
        desk_assets(*names, warehouse_url=url),
        resources=desk_resources(warehouse_url=url),
        instance=instance,
        partition_key=DAY,
    )
    assert result.success


def desk(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    """The `desk` entry point in this process: exit code, stdout, stderr."""
    capsys.readouterr()  # what the test's own runs logged is not the command's
    monkeypatch.setattr(sys, "argv", ["desk", *args])
    try:
        main()
        code = 0
    except SystemExit as exited:
        code = int(exited.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def answer(monkeypatch, capsys, *args: str) -> str:
    code, out, err = desk(monkeypatch, capsys, *args)
    assert (code, err) == (0, ""), err
    return out


def ranked_from(current: bool, snapshot: str, eod_snapshot: str) -> dict:
    """The keys every ranking and concentration answer adds (queries.RankedFrom)."""
    return {
        "current": current,
        "snapshot_id": snapshot,
        "eod_as_of": AS_OF,
        "eod_snapshot_id": eod_snapshot,
        "incomplete_fix": None if current else FIX,
    }


def restated(repo: PositionRepository, url: str, instance: dg.DagsterInstance) -> str:
    """A late trade of RESTATED on DAY, then an `eod_positions` run alone; the new snapshot id."""
    before, held = repo.eod(RESTATED, DAY)
    instrument = held.loc[held["quantity"] != 0, "instrument_id"].iloc[0]
    late = trade("LATE-1", 7, 1.0, book=RESTATED, instrument=instrument, at=at(DAY, "10:00"))
    repo.ingest("landing:late.csv", 1, make_trades([late]), empty_frame(QUARANTINE_DTYPES))
    materialized(url, instance, ["eod_positions"])
    after, _ = repo.eod(RESTATED, DAY)
    # A restatement keeps the day's as-of: only the snapshot tells the two EODs apart.
    assert after["as_of"] == before["as_of"]
    assert after["snapshot_id"] != before["snapshot_id"]
    return str(after["snapshot_id"])


@pytest.fixture
def cli_env(monkeypatch, warehouse_url: str, tmp_path: Path) -> None:
    for name, value in {
        "DESK_WAREHOUSE_URL": warehouse_url,
        "DESK_TIMEZONE": "UTC",
        "DESK_START_DATE": "2026-01-01",
        "DAGSTER_HOME": str(tmp_path),
    }.items():
        monkeypatch.setenv(name, value)


def test_ranking_reads_say_when_they_are_of_an_older_snapshot_than_the_current_eod(
    warehouse_url, dagster_instance, cli_env, monkeypatch, capsys
):
    materialized(warehouse_url, dagster_instance, ALL)
    repo = PositionRepository(warehouse_url)
    ranked = str(repo.eod(RESTATED, DAY)[0]["snapshot_id"])
    other = str(repo.eod(OTHER, DAY)[0]["snapshot_id"])
    settings = desk_settings(warehouse_url=warehouse_url)
    client = TestClient(create_app(settings, token=None, instance=dagster_instance))
    limit = settings.issuer_concentration_limit

    def ranking_json(book: str) -> dict:
        text = answer(monkeypatch, capsys, "ranking", "--book", book, "--date", DAY, "--json")
        document = json.loads(text)
        assert client.get(f"/books/{book}/ranking/{DAY}").json() == document
        assert document == queries.ranking_document(repo, book, DAY)
        return document

    def concentration_json(book: str) -> dict:
        args = ["concentration", "--book", book, "--date", DAY, "--json"]
        document = json.loads(answer(monkeypatch, capsys, *args))
        assert client.get(f"/books/{book}/concentration/{DAY}").json() == document
        assert document == queries.concentration_document(repo, book, DAY, limit)
        return document

    def text(*args: str) -> list[str]:
        return answer(monkeypatch, capsys, *args, "--date", DAY).splitlines()

    # Fresh: every answer is of the current EOD, and the text says nothing of it.
    fresh = ranking_json(RESTATED)
    assert list(fresh)[:4] == ["book_id", "business_date", "as_of", "items"]  # the contract's
    assert {k: fresh[k] for k in list(fresh)[4:]} == ranked_from(True, ranked, ranked)
    assert fresh["as_of"] == AS_OF and fresh["items"]
    shares = concentration_json(RESTATED)
    assert {k: shares[k] for k in list(shares)[5:]} == ranked_from(True, ranked, ranked)
    for args in (["ranking", "--book", RESTATED], ["concentration", "--book", RESTATED]):
        assert not [line for line in text(*args) if "older snapshot" in line or FIX in line]
    assert not [line for line in text("concentration") if "older snapshot" in line]

    new = restated(repo, warehouse_url, dagster_instance)

    # The ranking of the replaced snapshot is still the answer, said to be one, on every read.
    older = ranking_json(RESTATED)
    assert (older["as_of"], older["items"]) == (AS_OF, fresh["items"])
    assert {k: older[k] for k in list(older)[4:]} == ranked_from(False, ranked, new)
    lines = text("ranking", "--book", RESTATED)
    under = lines.index(NOTE[0])
    assert lines[under : under + 2] == NOTE
    assert lines[under + 2].startswith("Lendable value ")  # right under the ranked table

    older_shares = concentration_json(RESTATED)
    assert older_shares["issuers"] == shares["issuers"]
    assert {k: older_shares[k] for k in list(older_shares)[5:]} == ranked_from(False, ranked, new)
    assert text("concentration", "--book", RESTATED)[-3:-1] == NOTE

    day = json.loads(answer(monkeypatch, capsys, "concentration", "--date", DAY, "--json"))
    by_book = {b["book_id"]: b for b in day["books"]}
    assert by_book[RESTATED] == older_shares
    assert by_book[OTHER]["current"] and by_book[OTHER]["eod_snapshot_id"] == other
    assert [b for b, d in by_book.items() if not d["current"]] == [RESTATED]
    assert text("concentration")[-2:] == DAY_NOTE
    # An unaffected book of the same day: current, no line.
    assert ranking_json(OTHER)["current"] is True
    assert not [line for line in text("ranking", "--book", OTHER) if "older snapshot" in line]

    # `desk status` judges the day with the same rule and advises the same command.
    status = queries.status_document(repo)
    assert [(i["book_id"], i["ranking"]) for i in status["incomplete_eods"]] == [
        (RESTATED, "older_snapshot")
    ]
    assert status["incomplete_fix"] == FIX

    # The valuation is read joined to the current snapshot: refused, never the replaced one's.
    code, out, err = desk(
        monkeypatch, capsys, "positions", "--book", RESTATED, "--date", DAY, "--marks"
    )
    assert (code, out) == (1, "")
    assert err == (
        f"desk: the end-of-day positions of book {RESTATED} on {DAY} (snapshot {new}) are not "
        f"valued yet; run `{FIX}` or materialise eod_valuation; `desk books` lists the stored "
        "books and days\n"
    )
    assert client.get(f"/books/{RESTATED}/eod/{DAY}?marks=true").status_code == 404

    # What the named backfill runs after the EOD, the valuation and the ranking, makes it current.
    materialized(warehouse_url, dagster_instance, ["eod_valuation", "collateral_ranking"])
    again = ranking_json(RESTATED)
    assert {k: again[k] for k in list(again)[4:]} == ranked_from(True, new, new)
    assert not [line for line in text("ranking", "--book", RESTATED) if "older snapshot" in line]
    assert concentration_json(RESTATED)["current"] is True
    assert not [line for line in text("concentration") if "older snapshot" in line]
    answer(monkeypatch, capsys, "positions", "--book", RESTATED, "--date", DAY, "--marks")
    client.close()
    repo.engine.dispose()
