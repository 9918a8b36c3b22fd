"""The stale-range rule the sensor, the ingesting assets and `desk backfill` share."""

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from desk_pipeline.domain.positions.restatement import restatement_days, stale_days, stale_snapshots
from desk_pipeline_tests.sizes import examples

DAY_US = 86_400_000_000
BOOKS = ("A", "B", "C")


def day(n: int) -> str:
    return (pd.Timestamp("2026-03-02") + pd.Timedelta(days=n)).strftime("%Y-%m-%d")


def headers_of(rows: list[tuple[str, int, int]]) -> pd.DataFrame:
    """(book, day number, computed_at) -> stored EOD headers; as_of = end of the day."""
    return pd.DataFrame(
        [
            {
                "book_id": b,
                "business_date": day(n),
                "as_of_us": (n + 1) * DAY_US,
                "computed_at_us": c,
            }
            for b, n, c in rows
        ],
        columns=["book_id", "business_date", "as_of_us", "computed_at_us"],
    )


def late_changes_of(rows: list[tuple[str, int, int]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["book_id", "from_time_us", "arrived_at_us"])


def reference_stale_days(headers: pd.DataFrame, changes: pd.DataFrame) -> list[str]:
    """Plain loops over days, books and late changes: the rule as the docstring states it."""
    stale = set()
    for d, rows in headers.groupby("business_date"):
        as_of, latest = rows["as_of_us"].max(), rows["computed_at_us"].max()
        for change in changes.itertuples():
            own = rows[rows["book_id"] == change.book_id]
            computed = own["computed_at_us"].iloc[0] if len(own) else latest
            if change.from_time_us < as_of and change.arrived_at_us > computed:
                stale.add(d)
    return sorted(stale)


headers_strategy = st.lists(
    st.tuples(st.sampled_from(BOOKS), st.integers(0, 6), st.integers(0, 50)),
    max_size=15,
    unique_by=lambda r: (r[0], r[1]),
)
late_changes_strategy = st.lists(
    st.tuples(st.sampled_from(BOOKS), st.integers(0, 8 * DAY_US).map(int), st.integers(0, 60)),
    max_size=4,
)


@settings(max_examples=examples(40), deadline=None)
@given(headers_strategy, late_changes_strategy)
def test_stale_days_and_the_range_equal_the_plain_rule(header_rows, change_rows):
    headers, changes = headers_of(header_rows), late_changes_of(change_rows)
    expected = reference_stale_days(headers, changes)
    assert stale_days(headers, changes) == expected
    stored = sorted(headers["business_date"].unique())
    expected_range = [d for d in stored if expected and d >= expected[0]]
    assert restatement_days(headers, changes) == expected_range


def test_a_late_first_trade_of_a_book_without_an_eod_makes_the_stored_days_stale():
    # BOOK-C never had an EOD: its late trade on day 1 still changes days 1 and 2 of the desk.
    headers = headers_of([("A", 0, 10), ("A", 1, 10), ("A", 2, 10)])
    changes = late_changes_of([("C", DAY_US + 5, 20)])
    assert restatement_days(headers, changes) == [day(1), day(2)]
    # Restated after the late change arrived: nothing stale any more, even without a C header.
    assert restatement_days(headers_of([("A", 1, 30), ("A", 2, 30), ("A", 0, 10)]), changes) == []


def test_a_late_change_covers_only_snapshots_computed_before_it_and_after_its_time():
    headers = headers_of([("A", 0, 10), ("A", 1, 10), ("A", 2, 30), ("B", 1, 10)])
    changes = late_changes_of([("A", DAY_US + 1, 20)])
    assert list(stale_snapshots(headers, changes)) == [False, True, False, False]
    assert restatement_days(headers, changes) == [day(1), day(2)]
