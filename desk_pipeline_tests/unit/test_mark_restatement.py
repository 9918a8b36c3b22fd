"""Which days a changed or newly filled mark makes stale, against a plain reference."""

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from desk_pipeline.domain.marks import PRICE_LOOKBACK, days_using_marks
from desk_pipeline_tests.sizes import examples

FIRST = pd.Timestamp("2026-03-02")
KEYS = ("DE1", "FR1", "EUR")


def date(n: int) -> pd.Timestamp:
    return FIRST + pd.Timedelta(days=n)


def marks_of(rows: list[tuple[str, int]]) -> pd.DataFrame:
    return pd.DataFrame(
        {"key": [k for k, _ in rows], "mark_date": [date(n) for _, n in rows]},
        columns=["key", "mark_date"],
    ).astype({"key": object, "mark_date": "datetime64[ns]"})


def reference_days(changed: set[tuple[str, int]], marks: set[tuple[str, int]], days: set[int]):
    """Plain loops: each day reads, per key, its latest mark no older than the lookback."""
    lookback = PRICE_LOOKBACK.days
    hit = set()
    for d in days:
        for key in KEYS:
            read = [n for k, n in marks | changed if k == key and d - lookback <= n <= d]
            if read and (key, max(read)) in changed:
                hit.add(date(d).strftime("%Y-%m-%d"))
    return sorted(hit)


def test_a_corrected_mark_restates_its_day_and_the_days_that_carried_it():
    marks = marks_of([("DE1", 0), ("DE1", 2), ("FR1", 0)])
    days = pd.Series([date(n).strftime("%Y-%m-%d") for n in range(5)])
    assert days_using_marks(marks_of([("DE1", 0)]), marks, days) == ["2026-03-02", "2026-03-03"]
    assert days_using_marks(marks_of([("DE1", 2)]), marks, days) == [
        "2026-03-04",
        "2026-03-05",
        "2026-03-06",
    ]


def test_a_mark_is_carried_no_longer_than_the_lookback():
    days = pd.Series([date(n).strftime("%Y-%m-%d") for n in (0, 31, 32, 40)])
    changed = marks_of([("DE1", 0)])
    assert days_using_marks(changed, changed, days) == ["2026-03-02", "2026-04-02"]


def test_nothing_changed_or_nothing_stored_restates_nothing():
    marks = marks_of([("DE1", 0)])
    assert days_using_marks(marks_of([]), marks, pd.Series(["2026-03-02"])) == []
    assert days_using_marks(marks, marks, pd.Series([], dtype=object)) == []


mark = st.tuples(st.sampled_from(KEYS), st.integers(0, 80))


@settings(max_examples=examples(300), deadline=None)
@given(
    changed=st.sets(mark, max_size=5),
    others=st.sets(mark, max_size=12),
    days=st.sets(st.integers(0, 90), max_size=20),
)
def test_days_using_marks_matches_the_plain_rule(changed, others, days):
    stored = pd.Series([date(n).strftime("%Y-%m-%d") for n in sorted(days)], dtype=object)
    found = days_using_marks(marks_of(sorted(changed)), marks_of(sorted(others | changed)), stored)
    assert found == reference_days(changed, others, days)
