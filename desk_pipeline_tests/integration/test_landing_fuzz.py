"""Malformed landing files never crash ingestion, never half-land and never touch other data."""

import ast
import csv
import io
import itertools
import json

import pandas as pd
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from desk_pipeline.adapters import tables as t
from desk_pipeline.adapters.trade_sources import LandingFolderSource
from desk_pipeline.adapters.warehouse import PositionRepository, now_micros
from desk_pipeline.domain.positions.engine import roll_positions
from desk_pipeline.domain.schema import QUARANTINE_DTYPES, empty_frame
from desk_pipeline.domain.validation.quarantine import (
    MAX_KEPT_BYTES,
    MAX_RAW_BYTES,
    rejection_fingerprints,
)
from desk_pipeline_tests.builders import T0, make_trades, no_positions, quarantined_from, trade
from desk_pipeline_tests.sizes import examples

COLUMNS = ["trade_id", "version", "status", "book_id", "instrument_id", "quantity", "price"]
COLUMNS += ["trade_time"]
INJECTIONS = [
    "'; DROP TABLE trades; --",
    "'; DROP TABLE trade_versions; --",
    '" OR "1"="1',
    "1; DELETE FROM eod_snapshots",
    '=HYPERLINK("http://x")',
    "${jndi:ldap://example/a}",
    "<script>alert(1)</script>",
    "%s%s%s%n",
    "{0}{1}",
    "../../etc/passwd",
]
ODD = ["", " ", '"', '""', "'", ",", ";", "\n", "\r\n", "\x00", "\ufeff", "é", "\u202e", "🦀"]
ODD += ["NaN", "inf", "-inf", "-0", "1e309", "0x10", "1,000", "null", "None", "TRUE"]
VALID = {
    "trade_id": ["F1", "F2", "F3", "F-4"],
    "version": ["1", "2", "3"],
    "status": ["NEW", "AMEND", "CANCEL", "new"],
    "book_id": ["FB1", "FB2"],
    "instrument_id": ["XS1", "XS2"],
    "quantity": ["100", "-5", "0.5", "1e6"],
    "price": ["10", "99.5", "0.0001"],
    "trade_time": ["2026-03-02T10:00:00", "2026-03-02T10:00:00+01:00", "2026-03-03 23:59:59Z"],
}
SENTINEL_BOOK = "SENTINEL-BOOK-NOT-GENERATED"
# A cut value's marker: "…[truncated, <size> bytes, sha256 <64 hex digits>]" and more.
MARKER_BYTES = 160


def field(column: str) -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(VALID.get(column, ["x"])),
        st.sampled_from(VALID.get(column, ["x"])),
        st.sampled_from(INJECTIONS),
        st.sampled_from(ODD),
        st.text(max_size=12),
        st.integers(65, 70_000).map(lambda n: "X" * n),
    )


@st.composite
def csv_text(draw: st.DrawFn) -> str:
    """A CSV whose header and cells are mostly plausible and sometimes badly wrong."""
    header = draw(
        st.one_of(
            st.permutations(COLUMNS),
            st.lists(st.sampled_from([*COLUMNS, "TRADE_ID", "Price ", "extra", ""]), max_size=10),
            st.lists(st.text(max_size=8), max_size=6),
        )
    )
    width = len(header) + draw(st.sampled_from([0, 0, 0, -1, 1]))  # some rows ragged
    rows = draw(
        st.lists(st.tuples(*[field(c) for c in [*header, "x"][: max(width, 0)]]), max_size=8)
    )
    out = io.StringIO()
    if draw(st.booleans()):
        writer = csv.writer(out, lineterminator=draw(st.sampled_from(["\n", "\r\n"])))
        writer.writerow(header)
        writer.writerows(rows)
    else:  # no quoting at all: separators and quotes inside cells break the structure
        out.write("\n".join(",".join(r) for r in [list(header), *map(list, rows)]))
    return out.getvalue()


@st.composite
def landing_bytes(draw: st.DrawFn) -> bytes:
    """Random bytes, or CSV text in a right, wrong or mixed encoding."""
    if draw(st.integers(0, 5)) == 0:
        return draw(st.binary(max_size=3000))
    text = draw(csv_text())
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "latin-1", "utf-16", "cp1252", "mix"]))
    if encoding == "mix":
        half = len(text) // 2
        return text[:half].encode("utf-8") + text[half:].encode("latin-1", errors="replace")
    return text.encode(encoding, errors="replace")


@pytest.fixture
def warehouse(warehouse_url, tmp_path):
    """A warehouse holding one good trade and its EOD, which no fuzzed file may touch."""
    repo = PositionRepository(warehouse_url)
    sentinel = make_trades([trade("SENTINEL-1", 100, 10.0, book=SENTINEL_BOOK)])
    repo.ingest("landing:sentinel.csv", 1, sentinel, empty_frame(QUARANTINE_DTYPES))
    eod = roll_positions(no_positions(), sentinel, [T0 + pd.Timedelta(hours=15)])
    repo.keep_last_eod(eod.assign(business_date="2026-03-02"), now_micros())
    yield repo
    repo.engine.dispose()


def snapshot_of_other_data(repo: PositionRepository) -> dict:
    eod = repo.eod(SENTINEL_BOOK, "2026-03-02")[1].to_dict("records")
    with repo.engine.connect() as conn:
        return {
            "tables": sorted(sa.inspect(conn).get_table_names()),
            "eod": eod,
            "eod_headers": conn.execute(sa.select(t.eod_snapshots)).all(),
            "outbox": conn.execute(sa.select(sa.func.count()).select_from(t.outbox)).scalar(),
            "sentinel": conn.execute(
                sa.select(t.trade_versions).where(t.trade_versions.c.trade_id == "SENTINEL-1")
            ).all(),
        }


def versions_from(repo: PositionRepository, source: str) -> int:
    with repo.engine.connect() as conn:
        return conn.execute(
            sa.select(sa.func.count())
            .select_from(t.trade_versions)
            .where(t.trade_versions.c.source == source)
        ).scalar()


def test_malformed_landing_files_are_quarantined_whole_or_row_by_row_and_nothing_else_moves(
    warehouse, tmp_path
):
    before = snapshot_of_other_data(warehouse)
    names = (f"f{i:05d}.csv" for i in itertools.count())

    @settings(
        max_examples=int(__import__("os").environ.get("FUZZ_N", "60")),
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(content=landing_bytes())
    def check(content: bytes) -> None:
        path = tmp_path / next(names)
        path.write_bytes(content)
        batch = LandingFolderSource(tmp_path).read_file(path)
        result = warehouse.ingest(batch.source, batch.received, batch.trades, batch.rejected)
        path.unlink()

        assert result.received == result.accepted + result.quarantined
        quarantine = quarantined_from(warehouse, [batch.source])
        # The whole file or nothing: every new version and every rejected row is stored (a
        # rejected row once, however often the file holds it).
        assert versions_from(warehouse, batch.source) == result.new_versions <= result.accepted
        stored = set(quarantine["fingerprint"])
        assert set(rejection_fingerprints(batch.rejected)) <= stored
        assert len(stored) <= result.quarantined
        assert all(quarantine["reason_code"]) and all(quarantine["reason"])
        if batch.trades.empty and batch.received:
            assert result.quarantined == batch.received

    check()
    assert snapshot_of_other_data(warehouse) == before


NAME = st.text(alphabet="abcdeT_I .-1", min_size=1, max_size=6)


@st.composite
def header_with_a_repeat(draw: st.DrawFn) -> tuple[list[str], set[str]]:
    """A header naming some column twice (in any case, with spaces) and the names repeated.

    The name repeated is never blank: blank names are not compared (two blank ones are two
    unnamed columns, a file missing its required columns).
    """
    names = draw(st.lists(st.one_of(st.sampled_from(COLUMNS), NAME), min_size=1, max_size=8))
    if not any(n.strip() for n in names):
        names.append(draw(st.sampled_from(COLUMNS)))
    repeated = draw(st.sampled_from([n for n in names if n.strip()]))
    variant = draw(st.sampled_from([repeated, repeated.upper(), f" {repeated} ", repeated.title()]))
    names.insert(draw(st.integers(0, len(names))), variant)
    normal = [n.strip().lower() for n in names]
    return names, {n for n in normal if n and normal.count(n) > 1}


@settings(max_examples=examples(60), deadline=None)
@given(header_with_a_repeat(), st.lists(st.sampled_from(["T3", "T3b", "1", ""]), max_size=9))
def test_a_header_naming_a_column_twice_quarantines_the_file_whole(tmp_path_factory, drawn, cells):
    names, expected = drawn
    folder = tmp_path_factory.mktemp("landing")
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(names)
    writer.writerow((cells * len(names))[: len(names)] or [""] * len(names))
    (folder / "repeat.csv").write_text(out.getvalue())

    batch = LandingFolderSource(folder).read_file(folder / "repeat.csv")

    assert batch.trades.empty and len(batch.rejected) == 1
    [reason] = batch.rejected["reason"]
    assert batch.rejected["reason_code"].tolist() == ["unreadable_file"]
    assert reason.startswith("column names repeat (case-insensitive): ")
    assert expected <= set(ast.literal_eval(reason.split(": ", 1)[1]))


def test_blank_column_names_are_not_repeats(tmp_path):
    # Hypothesis drew this header for the test above: two blank names are two unnamed
    # columns, and the file is refused for the columns it misses, not for a repeat.
    (tmp_path / "blank.csv").write_text(" , \n,\n")
    batch = LandingFolderSource(tmp_path).read_file(tmp_path / "blank.csv")
    assert batch.rejected["reason_code"].tolist() == ["missing_columns"]


def test_oversize_cells_are_stored_bounded_and_distinct_inputs_stay_distinct(sqlite_url, tmp_path):
    warehouse = PositionRepository(sqlite_url)
    names = (f"big{i:05d}.csv" for i in itertools.count())
    big = st.tuples(st.sampled_from(["T", "é", "🦀", "\x00"]), st.integers(1_100, 20_000))

    @settings(
        max_examples=examples(20),
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(
        rows=st.lists(
            st.fixed_dictionaries(
                {
                    c: st.one_of(st.sampled_from(VALID[c]), big.map(lambda b: b[0] * b[1]))
                    for c in COLUMNS
                }
            ),
            min_size=1,
            max_size=4,
        ),
        wide=st.integers(0, 12),
    )
    def check(rows: list[dict[str, str]], wide: int) -> None:
        # ``wide`` extra columns with 2 KiB names: the row's JSON goes over MAX_RAW_BYTES.
        extra = [f"{i:02d}" + "n" * 2048 for i in range(wide)]
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow([*COLUMNS, *extra])
        writer.writerows([[r[c] for c in COLUMNS] + ["x"] * wide for r in rows])
        path = tmp_path / next(names)
        path.write_text(out.getvalue())
        batch = LandingFolderSource(tmp_path).read_file(path)
        warehouse.ingest(batch.source, batch.received, batch.trades, batch.rejected)
        path.unlink()

        stored = quarantined_from(warehouse, [batch.source])
        for column, limit in [("trade_id", MAX_KEPT_BYTES), ("reason", MAX_KEPT_BYTES)]:
            sizes = stored[column].map(lambda v: len(v.encode("utf-8", "surrogatepass")))
            assert (sizes <= limit + MARKER_BYTES).all(), column
        sizes = stored["raw"].map(lambda v: len(v.encode("utf-8", "surrogatepass")))
        assert (sizes <= MAX_RAW_BYTES + MARKER_BYTES).all()
        for raw in stored["raw"]:
            assert isinstance(json.loads(raw), dict)
        # One fingerprint per distinct rejected input: cutting a value merges no two inputs.
        frame = pd.DataFrame(rows, index=range(1, len(rows) + 1))
        rejected = frame.loc[batch.rejected["row_number"]].assign(
            code=batch.rejected["reason_code"].to_numpy()
        )
        distinct = len(rejected.drop_duplicates())
        assert len(set(rejection_fingerprints(batch.rejected))) == distinct

    check()
    warehouse.engine.dispose()
