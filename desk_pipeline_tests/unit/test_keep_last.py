"""keep_last, the rule production applies to every EOD write, agrees with a per-row reference."""

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from desk_pipeline.domain.positions.snapshots import (
    EMPTY_DIGEST,
    DuplicateSnapshotError,
    _empty_eods,
    keep_last,
    snapshot_digests,
)
from desk_pipeline_tests.keep_last_reference import keep_last_rows

BOOKS = ("B1", "B2", "B3")
DATES = ("2026-03-02", "2026-03-03")
HEADER = ["book_id", "business_date", "as_of_us", "computed_at_us", "content_digest"]
DAY_COLUMNS = ["business_date", "as_of_us", "computed_at_us"]


def header(book: str, date: str, as_of: int, computed: int, digest: str) -> dict:
    return dict(zip(HEADER, (book, date, as_of, computed, digest), strict=True))


# Few distinct values, so that ties in as_of, computed_at and content are frequent.
headers = st.builds(
    header,
    st.sampled_from(BOOKS),
    st.sampled_from(DATES),
    st.integers(1, 3),
    st.integers(1, 3),
    st.sampled_from(["a", "b", EMPTY_DIGEST]),
)
unique_headers = st.lists(
    headers, max_size=6, unique_by=lambda h: (h["book_id"], h["business_date"])
)
recomputed_days = st.lists(
    st.builds(
        lambda date, as_of, computed: dict(zip(DAY_COLUMNS, (date, as_of, computed), strict=True)),
        st.sampled_from(DATES),
        st.integers(1, 3),
        st.integers(1, 3),
    ),
    max_size=2,
    unique_by=lambda d: d["business_date"],
)


def frame(rows: list[dict], columns: list[str]) -> pd.DataFrame:
    dtypes = {c: "int64" if c.endswith("_us") else "object" for c in columns}
    return pd.DataFrame(rows, columns=columns).astype(dtypes)


@settings(max_examples=50, deadline=None)
@given(unique_headers, unique_headers, recomputed_days)
def test_keep_last_picks_the_same_winners_as_the_per_row_reference(candidates, stored, days):
    got = keep_last(frame(candidates, HEADER), frame(stored, HEADER), frame(days, DAY_COLUMNS))
    expected = keep_last_rows(candidates, stored, days)
    columns = [*HEADER, "empty", "changed", "restatement"]
    assert got[columns].to_dict(orient="records") == expected


@settings(max_examples=50, deadline=None)
@given(unique_headers, unique_headers, recomputed_days)
def test_empty_eods_are_the_stored_book_days_of_recomputed_days_without_a_candidate(
    candidates, stored, days
):
    got = _empty_eods(frame(candidates, HEADER), frame(stored, HEADER), frame(days, DAY_COLUMNS))
    proposed = {(c["book_id"], c["business_date"]) for c in candidates}
    day_of = {d["business_date"]: d for d in days}
    expected = {
        (s["book_id"], s["business_date"], day["as_of_us"], day["computed_at_us"], EMPTY_DIGEST)
        for s in stored
        if (day := day_of.get(s["business_date"])) is not None
        and (s["book_id"], s["business_date"]) not in proposed
    }
    assert list(got.columns) == HEADER
    assert len(got) == len(expected)
    assert set(got.itertuples(index=False, name=None)) == expected


def test_a_later_as_of_replaces_the_stored_eod_even_with_the_same_rows():
    (won,) = keep_last(
        frame([header("B1", DATES[0], 2, 1, "a")], HEADER),
        frame([header("B1", DATES[0], 1, 5, "a")], HEADER),
        frame([], DAY_COLUMNS),
    ).to_dict(orient="records")
    assert (won["changed"], won["restatement"]) == (True, False)


def test_an_identical_recomputation_only_confirms_the_stored_eod():
    (won,) = keep_last(
        frame([header("B1", DATES[0], 2, 9, "a")], HEADER),
        frame([header("B1", DATES[0], 2, 5, "a")], HEADER),
        frame([], DAY_COLUMNS),
    ).to_dict(orient="records")
    assert (won["changed"], won["computed_at_us"]) == (False, 9)


def test_an_older_snapshot_never_overwrites_a_newer_one():
    decided = keep_last(
        frame([header("B1", DATES[0], 1, 9, "b"), header("B2", DATES[0], 2, 4, "b")], HEADER),
        frame([header("B1", DATES[0], 2, 1, "a"), header("B2", DATES[0], 2, 5, "a")], HEADER),
        frame([], DAY_COLUMNS),
    )
    assert decided.empty


def test_a_stored_book_the_recomputation_no_longer_holds_gets_an_empty_eod():
    decided = keep_last(
        frame([header("B1", DATES[0], 2, 9, "a")], HEADER),
        frame([header("B1", DATES[0], 2, 5, "a"), header("B2", DATES[0], 2, 5, "b")], HEADER),
        frame([dict(zip(DAY_COLUMNS, (DATES[0], 2, 9), strict=True))], DAY_COLUMNS),
    )
    empty = decided[decided["empty"]].to_dict(orient="records")
    assert [(e["book_id"], e["content_digest"], e["changed"], e["restatement"]) for e in empty] == [
        ("B2", EMPTY_DIGEST, True, True)
    ]


def test_two_candidates_of_one_book_day_are_refused():
    twice = frame([header("B1", DATES[0], 1, 1, "a"), header("B1", DATES[0], 2, 1, "b")], HEADER)
    with pytest.raises(DuplicateSnapshotError, match="B1"):
        keep_last(twice, frame([], HEADER), frame([], DAY_COLUMNS))


def test_the_digest_ignores_row_order_and_an_empty_book_day_has_none():
    rows = pd.DataFrame(
        {
            "book_id": ["B1", "B1"],
            "business_date": [DATES[0]] * 2,
            "instrument_id": ["I1", "I2"],
            "quantity": [1.0, 2.0],
            "quantity_micro_units": [1_000_000, 2_000_000],
            "avg_price": [1.0, 1.0],
            "realized_pnl": [0.0, 0.0],
        }
    )
    forward = snapshot_digests(rows)["content_digest"].tolist()
    assert forward == snapshot_digests(rows.iloc[::-1])["content_digest"].tolist()
    assert forward != [EMPTY_DIGEST]
    assert snapshot_digests(rows.iloc[0:0]).empty


def test_the_digest_tells_apart_micro_units_the_float_quantity_cannot():
    rows = pd.DataFrame(
        {
            "book_id": ["B1"],
            "business_date": [DATES[0]],
            "instrument_id": ["I1"],
            "quantity": [8800000000.000002],
            "quantity_micro_units": [8_800_000_000_000_002],
            "avg_price": [1.0],
            "realized_pnl": [0.0],
        }
    )
    next_one = rows.assign(quantity_micro_units=8_800_000_000_000_001)  # the same float
    digests = [snapshot_digests(r)["content_digest"].iloc[0] for r in (rows, next_one)]
    assert digests[0] != digests[1]


def test_the_digest_of_an_eod_is_the_one_of_before_micro_units_were_stored():
    # An EOD stored then and recomputed alike is not restated (nor announced again).
    rows = pd.DataFrame(
        {
            "book_id": ["B1", "B1"],
            "business_date": [DATES[0]] * 2,
            "instrument_id": ["I1", "I2"],
            "quantity": [0.3, -4456946523.790561],
            "quantity_micro_units": [300_000, -4_456_946_523_790_561],
            "avg_price": [1.0, 2.5],
            "realized_pnl": [0.0, 7.0],
        }
    )
    before = pd.util.hash_pandas_object(
        rows[["instrument_id", "quantity", "avg_price", "realized_pnl"]], index=False
    ).sum()
    assert snapshot_digests(rows)["content_digest"].tolist() == [f"{int(before):016x}"]
