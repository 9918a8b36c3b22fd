"""A landing file that cannot have a landing file's shape is refused before pandas reads it.

pandas pays for every column of the header and every field of a first row wider than it (a
1.9 MB trade file with 200,000 extra header columns took 60-70 s and 790 MB each run), so
``shape_problem`` counts the fields of the first two records, as pandas' C parser splits them,
and refuses more than MAX_COLUMNS; a trade file also holds at most MAX_CELLS cells.
"""

import csv
import io

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from desk_pipeline.adapters.trade_sources import (
    MAX_CELLS,
    MAX_COLUMNS,
    LandingFolderSource,
    _parse_csv,
    _widths,
    shape_problem,
)
from desk_pipeline.domain.reference.validation import validate_reference
from desk_pipeline_tests.sizes import examples

HEADER = "trade_id,book_id,instrument_id,quantity,price,trade_time,version,status"
ROW = "T1,B1,I1,1,1.0,2026-03-02T10:00:00,1,NEW"
LIMIT = 5  # a small limit in the property test, so that records cross it often


def test_a_200000_column_header_is_refused_with_its_reason():
    text = HEADER + "".join(f",x{i}" for i in range(200_000)) + "\n" + ROW + "\n"
    assert shape_problem(text) == (
        "the header has more than 256 fields: a landing file has at most 256 columns "
        "(its contract's and any others); remove the extra columns"
    )


def test_a_first_row_wider_than_any_header_is_refused():
    text = HEADER + "\n" + ROW + "," * 60_000 + "\n"
    assert shape_problem(text).startswith("the first row has more than 256 fields")


def test_blank_and_blank_looking_lines_before_the_header_do_not_hide_it():
    # pandas skips lines of spaces and tabs before a record: the header is the wide line.
    wide = ",".join(["c"] * 1_000)
    for before in ["\n", "\r\n", "  \n", "\t \r\n\n"]:
        assert shape_problem(before * 3 + wide + "\n" + ROW + "\n") is not None, before


def test_commas_and_line_ends_inside_quotes_do_not_count():
    quoted = '"' + ",\n" * 5_000 + '"'
    assert _widths(f"a,{quoted},b\n1,2,3\n", 2, MAX_COLUMNS) == [3, 3]
    assert shape_problem(f"{HEADER}\n{ROW.replace('T1', quoted)}\n") is None


def test_a_huge_value_is_left_to_validation():
    # A 30 MB id is one field: its row is quarantined by validation, the file is not refused.
    assert shape_problem(f"{HEADER}\n{'T' * 30_000_000},B1,I1,1,1.0,2026-03-02T10:00:00\n") is None


@pytest.mark.parametrize(("extra", "refused"), [(MAX_COLUMNS - 8, False), (MAX_COLUMNS - 7, True)])
def test_extra_columns_are_allowed_up_to_the_limit(extra, refused):
    names = "".join(f",x{i}" for i in range(extra))
    text = f"{HEADER}{names}\n{ROW}{',' * extra}\n"
    assert (shape_problem(text) is not None) == refused


def test_a_trade_file_over_the_cell_limit_is_refused_to_be_split():
    lines = MAX_CELLS // 8
    assert shape_problem(HEADER + "\n" * lines, MAX_CELLS) is None
    assert shape_problem(HEADER + "\n" * (lines + 1), MAX_CELLS) == (
        "2,500,001 lines of 8 columns, 20,000,008 cells: over the limit of 20,000,000 cells a "
        "file may hold; split it into smaller files"
    )
    assert shape_problem(HEADER + "\n" * (lines + 1)) is None  # reference files: no cell limit


def test_a_reference_file_of_200000_columns_is_quarantined_whole_before_it_is_parsed(tmp_path):
    # Reference files are read from the same folder, every hourly refresh: the same limit holds.
    names = "instrument_id,asset_class,issuer_type,rating,maturity_date,currency"
    wide = names + "".join(f",x{i}" for i in range(200_000))
    (tmp_path / "instruments.csv").write_text(f"{wide}\nDE0001,government_bond\n")
    instruments = LandingFolderSource(tmp_path).instruments()
    received = validate_reference("landing", instruments=instruments)
    assert received.instruments.empty
    (row,) = received.quarantine.itertuples()
    assert (row.row_number, row.reason_code) == (0, "unreadable_file")
    assert row.reason.startswith(f"the header has more than {MAX_COLUMNS} fields")


@st.composite
def written_csv(draw: st.DrawFn) -> tuple[str, list[int]]:
    """CSV text as a writer makes it, with blank lines between records, and each record's width."""
    ending = draw(st.sampled_from(["\n", "\r\n"]))
    # The writer quotes a field holding a character of its line ending only: with "\n" endings a
    # lone "\r" would be written bare, and ends a record for pandas.
    characters = ["a", "é", " ", ",", '"', "\n", *(["\r"] if ending == "\r\n" else [])]
    field = st.text(alphabet=st.sampled_from(characters), max_size=6)
    records = draw(st.lists(st.lists(field, min_size=1, max_size=2 * LIMIT), max_size=4))
    # A record of one field of spaces would be written as a blank-looking line, which readers skip.
    records = [r for r in records if len(r) > 1 or r[0].strip(" ")]
    out = io.StringIO()
    writer = csv.writer(
        out,
        lineterminator=ending,
        quoting=draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL])),
    )
    for record in records:
        out.write(draw(st.sampled_from(["", "", "\n", "  \n", "\t\r\n"])))
        writer.writerow(record)
    return out.getvalue(), [len(r) for r in records]


@settings(max_examples=examples(100), deadline=None)
@given(written=written_csv())
def test_fields_are_counted_per_record_as_written_and_as_pandas_reads_the_header(written):
    text, widths = written
    expected = [min(w, LIMIT + 1) for w in widths[:2]]
    if expected and expected[0] > LIMIT:
        expected = expected[:1]  # counting stops at the first record over the limit
    assert _widths(text, 2, LIMIT) == expected
    if widths:
        header = pd.read_csv(
            io.StringIO(text),
            header=None,
            nrows=1,
            dtype=str,
            keep_default_na=False,
            skipinitialspace=True,
        )
        assert _widths(text, 1, len(text) + 1) == [header.shape[1]]


NAMES = ["a", "b", "c", "d", "e", "f"]
# No comma, quote, space or line end: a plain split on commas is the reference reading.
FIELDS = st.text(alphabet="abcXYZ019.-_", min_size=1, max_size=4)


@settings(max_examples=examples(100), deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=9), min_size=1, max_size=12), st.data())
def test_a_row_is_read_under_the_header_or_ragged_never_shifted_or_lost(widths, data):
    rows = [data.draw(st.lists(FIELDS, min_size=w, max_size=w)) for w in widths]
    text = ",".join(NAMES) + "\n" + "".join(",".join(row) + "\n" for row in rows)

    parsed = _parse_csv(text.encode(), len(text))

    assert parsed.rows is not None, parsed.problem
    numbered = dict(enumerate(rows, start=1))
    if max(widths) <= len(NAMES):
        # pandas reads a short row with its last fields empty; the rules then refuse it.
        assert parsed.ragged.empty
        assert list(parsed.rows.index) == list(numbered)
    else:
        fits = {n: row for n, row in numbered.items() if len(row) == len(NAMES)}
        assert list(parsed.rows.index) == list(fits)
        assert list(parsed.ragged.index) == [n for n in numbered if n not in fits]
        for n, cells in parsed.ragged.iterrows():
            assert [c for c in cells if not pd.isna(c)] == numbered[n]  # kept as received
    for n, cells in parsed.rows.iterrows():
        assert list(cells) == (numbered[n] + [""] * len(NAMES))[: len(NAMES)]
