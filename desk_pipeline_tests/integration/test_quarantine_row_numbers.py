"""A quarantined trade row names the row of its own file (or the upstream's sequence number).

A resend that conflicts with a version stored from an earlier file used to be quarantined
under its position among the file's valid rows (0-based), not its row in the file: an operator
looking up row 0 of the file found the header, and row 1 another trade.
"""

import csv
import io
import itertools

import pandas as pd
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from desk_pipeline.adapters.trade_sources import LandingFolderSource
from desk_pipeline.adapters.warehouse import PositionRepository
from desk_pipeline_tests.sizes import examples

COLUMNS = ["trade_id", "version", "status", "book_id", "instrument_id", "quantity", "price"]
COLUMNS += ["trade_time"]


def row(trade_id: str, version: int, quantity: int) -> dict[str, str]:
    """A well-formed trade row: content differs only by quantity, so string equality is equality."""
    return {
        "trade_id": trade_id,
        "version": str(version),
        "status": "NEW" if version == 1 else "AMEND",
        "book_id": "RB1",
        "instrument_id": "XS1",
        "quantity": str(quantity),
        "price": "10",
        "trade_time": "2026-03-02T10:00:00Z",
    }


def land(folder, name: str, rows: list[dict[str, str]]):
    out = io.StringIO()
    writer = csv.DictWriter(out, COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    path = folder / name
    path.write_text(out.getvalue())
    batch = LandingFolderSource(folder).read_file(path)
    path.unlink()
    return batch


def arrivals(repo: PositionRepository, source: str) -> pd.DataFrame:
    """(row_number, trade_id, reason_code) of each quarantined row that arrived in ``source``."""
    query = """
        SELECT a.row_number, q.trade_id, q.reason_code
        FROM quarantine_arrivals a JOIN quarantine q ON q.id = a.quarantine_id
        WHERE a.source = :source ORDER BY a.row_number
    """
    with repo.engine.connect() as conn:
        return pd.read_sql_query(sa.text(query), conn, params={"source": source})


def test_a_resend_conflicting_with_an_earlier_file_names_its_own_row(warehouse_url, tmp_path):
    repo = PositionRepository(warehouse_url)
    first = land(tmp_path, "a.csv", [row("C1", 1, 100), row("C2", 1, 5)])
    repo.ingest(first.source, first.received, first.trades, first.rejected)
    # Rows 1 and 2 are new; row 3 resends C1 version 1 with another quantity.
    second = land(tmp_path, "b.csv", [row("C3", 1, 7), row("C4", 1, 8), row("C1", 1, 999)])
    result = repo.ingest(second.source, second.received, second.trades, second.rejected)

    assert (result.accepted, result.quarantined) == (2, 1)
    assert arrivals(repo, second.source).to_dict("records") == [
        {"row_number": 3, "trade_id": "C1", "reason_code": "conflicting_duplicate"}
    ]
    repo.engine.dispose()


def reference_conflicts(files: list[list[dict[str, str]]]) -> list[set[tuple[int, str]]]:
    """Per file, the (row number, trade id) of each conflicting resend, by the ingest rule.

    A file's first row of a (trade id, version) wins over its later ones; that row then
    conflicts if a version stored from an earlier file has other content. A file that repeats a
    conflicting row exactly is quarantined once, under the first row.
    """
    stored: dict[tuple[str, str], str] = {}
    conflicts = []
    for rows in files:
        in_file: dict[tuple[str, str], tuple[int, str]] = {}
        found: dict[tuple[str, str, str], int] = {}
        for number, r in enumerate(rows, start=1):
            key, content = (r["trade_id"], r["version"]), r["quantity"]
            if in_file.setdefault(key, (number, content))[1] != content:
                found.setdefault((*key, content), number)
        for key, (number, content) in in_file.items():
            if stored.setdefault(key, content) != content:
                found.setdefault((*key, content), number)
        conflicts.append({(number, trade_id) for (trade_id, _, _), number in found.items()})
    return conflicts


@st.composite
def resent_files(draw: st.DrawFn) -> list[list[tuple[int, int, int]]]:
    """2-3 files of (trade number, version, quantity) over few trades, so resends are common."""
    trade = st.tuples(st.integers(0, 3), st.integers(1, 2), st.sampled_from([1, 2]))
    return draw(st.lists(st.lists(trade, min_size=1, max_size=6), min_size=2, max_size=3))


def test_every_quarantined_resend_names_its_own_row_in_its_own_file(sqlite_url, tmp_path):
    """Property: against a plain replay of the files in order, the quarantine holds exactly the
    conflicting resends, each under its 1-based row number in the file it arrived in."""
    repo = PositionRepository(sqlite_url)
    examples_seen = itertools.count()

    @settings(
        max_examples=examples(25),
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(drawn=resent_files())
    def check(drawn: list[list[tuple[int, int, int]]]) -> None:
        n = next(examples_seen)  # trade ids of their own per example: one warehouse for all
        files = [[row(f"E{n}-{t}", v, q) for t, v, q in rows] for rows in drawn]
        for rows, expected in zip(files, reference_conflicts(files), strict=True):
            batch = land(tmp_path, f"e{n}-{len(rows)}-{id(rows)}.csv", rows)
            repo.ingest(batch.source, batch.received, batch.trades, batch.rejected)
            stored = arrivals(repo, batch.source)
            assert set(stored["reason_code"]) <= {"conflicting_duplicate"}
            assert set(zip(stored["row_number"], stored["trade_id"], strict=True)) == expected

    check()
    repo.engine.dispose()
