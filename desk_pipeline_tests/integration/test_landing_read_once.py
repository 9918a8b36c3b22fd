"""Each landing file is parsed once: a run reads a file already ingested no further than its hash.

Every run (each 10-minute tick, each backfill) used to parse and validate every file of the folder
before the warehouse found it already ingested: 1.9 CPU s a tick for one 240k-row file, growing
with the folder's history, and 60-70 s a tick for a 1.9 MB file of 200,000 header columns. Now a
file whose source (name and content digest) is ingested is skipped before its parse, and a file
that cannot have a trade file's shape is quarantined whole before it is parsed, so it is skipped
in turn. The parse is counted through a spy on ``trade_sources._parse_csv``.
"""

import csv
import io
import itertools

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from desk_pipeline.adapters import trade_sources
from desk_pipeline.adapters.trade_sources import MAX_COLUMNS, LandingFolderSource
from desk_pipeline.adapters.warehouse import PositionRepository
from desk_pipeline.defs.ingestion import ingest_window
from desk_pipeline_tests.builders import quarantined_from, trade, write_landing_file
from desk_pipeline_tests.sizes import examples

START, END = pd.Timestamp("2026-03-02", tz="UTC"), pd.Timestamp("2026-03-03", tz="UTC")
COLUMNS = ["trade_id", "book_id", "instrument_id", "quantity", "price", "trade_time"]
GOOD = ["G1", "BOOK-G", "ISIN-G", "10", "99.5", "2026-03-02T10:00:00Z"]
HEADER_TOO_WIDE = (
    f"the header has more than {MAX_COLUMNS} fields: a landing file has at most {MAX_COLUMNS} "
    "columns (its contract's and any others); remove the extra columns"
)
ROW_TOO_WIDE = HEADER_TOO_WIDE.replace("the header", "the first row")
# Any text but a bare carriage return, which the writer leaves unquoted and a reader takes for
# the end of a row: the rows' widths are then as written.
CELL = st.one_of(
    st.sampled_from(GOOD),
    st.text(st.characters(exclude_characters="\r"), max_size=8),
    st.integers(1, 200_000).map(lambda n: "X" * n),  # a long line
)


@pytest.fixture
def parses(monkeypatch) -> list[str]:
    """The first bytes of every file the landing source parses, in order."""
    seen: list[str] = []
    parse = trade_sources._parse_csv

    def spy(data: bytes, *args, **kwargs):
        seen.append(data[:40].decode("utf-8", "replace"))
        return parse(data, *args, **kwargs)

    monkeypatch.setattr(trade_sources, "_parse_csv", spy)
    return seen


@pytest.fixture
def repo(warehouse_url) -> PositionRepository:
    repository = PositionRepository(warehouse_url)
    yield repository
    repository.engine.dispose()


def ingest(folder, repo: PositionRepository) -> list[tuple[str, int, int, int]]:
    """One run's ingestion, as the trades asset does it: (file, received, accepted, quarantined)."""
    results = ingest_window(LandingFolderSource(folder, settle_seconds=0), repo, START, END)
    return [(r.source.split("#")[0], r.received, r.accepted, r.quarantined) for r in results]


def test_a_file_with_200000_header_columns_is_quarantined_whole_and_never_parsed_again(
    repo, tmp_path, parses
):
    folder = tmp_path / "landing"
    folder.mkdir()
    header = COLUMNS + [f"x{i}" for i in range(200_000)]
    (folder / "wide.csv").write_text(",".join(header) + "\n" + ",".join(GOOD) + "\n")

    assert ingest(folder, repo) == [("landing:wide.csv", 1, 0, 1)]
    (row,) = quarantined_from(repo, [s for s in repo.ingested_batches()["source"]]).itertuples()
    assert (row.reason_code, row.row_number) == ("unreadable_file", 0)
    assert row.reason == HEADER_TOO_WIDE
    assert len(parses) == 1

    batches = repo.ingested_batches()
    assert ingest(folder, repo) == [] and ingest(folder, repo) == []
    assert len(parses) == 1
    pd.testing.assert_frame_equal(repo.ingested_batches(), batches)


def test_an_ingested_file_is_not_parsed_again_and_new_content_under_its_name_is(
    repo, tmp_path, parses
):
    folder = tmp_path / "landing"
    write_landing_file(folder, "a.csv", [trade("A1", 1, 10.0), dict(trade("A2", 1, 1), price="")])
    write_landing_file(folder, "b.csv", [trade("B1", 2, 10.0)])

    assert ingest(folder, repo) == [("landing:a.csv", 2, 1, 1), ("landing:b.csv", 1, 1, 0)]
    assert len(parses) == 2
    assert ingest(folder, repo) == []
    assert len(parses) == 2

    # Rewritten in place: other content under the same name is another batch, read once.
    write_landing_file(folder, "a.csv", [trade("A1", 1, 10.0), trade("A3", 3, 10.0)])
    assert ingest(folder, repo) == [("landing:a.csv", 2, 2, 0)]
    assert ingest(folder, repo) == []
    assert len(parses) == 3
    assert sorted(repo.all_trade_versions()["trade_id"]) == ["A1", "A3", "B1"]


@st.composite
def landing_file(draw: st.DrawFn) -> tuple[bytes, str | None]:
    """A file of any shape (wide or ragged CSV, long lines, junk) and the reason it must get."""
    extra = draw(
        st.one_of(
            st.integers(0, 12),
            st.sampled_from([MAX_COLUMNS - 7, MAX_COLUMNS - 6, MAX_COLUMNS - 5]),
            st.integers(0, 5_000),
        )
    )
    header = [*COLUMNS, *(f"x{i}" for i in range(extra))]
    rows = []
    for _ in range(draw(st.integers(0, 3))):
        # A row as wide as the header, or ragged: narrower, a little or very much wider.
        fields = len(header) + draw(st.sampled_from([0, 0, 0, -3, 1, 400, 20_000]))
        cells = [draw(CELL) for _ in range(min(len(COLUMNS), fields))]
        rows.append(cells + [""] * (fields - len(cells)))
    out = io.StringIO()
    out.write(draw(st.sampled_from(["", "", "\n\n", " \t\n"])))
    writer = csv.writer(out, lineterminator=draw(st.sampled_from(["\n", "\r\n"])))
    writer.writerows([header, *rows])
    data = out.getvalue().encode()
    reason = None
    if len(header) > MAX_COLUMNS:
        reason = HEADER_TOO_WIDE
    elif rows and len(rows[0]) > MAX_COLUMNS:
        reason = ROW_TOO_WIDE
    junk = draw(st.sampled_from(["none", "none", "replace", "append"]))
    if junk == "replace":
        return draw(st.binary(max_size=3_000)), None
    if junk == "append":  # not UTF-8 is found first
        return data + draw(st.binary(min_size=1, max_size=300)), None
    return data, reason


@pytest.mark.parametrize("warehouse_url", ["sqlite"], indirect=True)
def test_every_file_is_ingested_or_quarantined_with_a_reason_and_never_parsed_again(
    repo, tmp_path, parses
):
    folders = (tmp_path / f"f{i:04d}" for i in itertools.count())

    @settings(
        max_examples=examples(40),
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(drawn=landing_file())
    def check(drawn: tuple[bytes, str | None]) -> None:
        data, reason = drawn
        folder = next(folders)
        folder.mkdir()
        (folder / f"{folder.name}.csv").write_bytes(data)
        parsed = len(parses)

        ((_, received, accepted, quarantined),) = ingest(folder, repo)
        assert received == accepted + quarantined
        assert len(parses) == parsed + 1
        file = f"landing:{folder.name}.csv#"
        stored = quarantined_from(
            repo, [s for s in repo.ingested_batches()["source"] if s.startswith(file)]
        )
        assert (quarantined > 0) == (len(stored) > 0)
        assert (stored["reason"].str.len() > 0).all()
        if reason is not None:
            assert (received, stored["reason"].tolist()) == (1, [reason])

        assert ingest(folder, repo) == []
        assert len(parses) == parsed + 1

    check()
