"""Property: split_conflicting_duplicates is its rule, row by row, with or without stored versions.

The rule: the first occurrence of a (trade_id, version) wins, stored versions before incoming
rows; a row whose content differs from that first occurrence conflicts; a later row equal to it
is an exact repeat, dropped. The model below applies it one row at a time in plain Python, so
both the batch path and the path for batches without repeated keys are checked against it.
"""

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from desk_pipeline.domain.positions.trades import split_conflicting_duplicates
from desk_pipeline_tests.builders import make_trades, trade

rows = st.lists(
    st.builds(
        lambda tid, version, quantity, price, minutes: trade(
            tid, quantity, price, minutes, version=version
        ),
        st.sampled_from(["T1", "T2", "T3"]),
        st.integers(1, 2),
        st.sampled_from([100.0, 100.000001, 200.0]),
        st.sampled_from([10.0, 10.0 + 1e-13, 11.0]),
        st.sampled_from([0, 5]),
    ),
    max_size=8,
)


def _same(a: dict, b: dict) -> bool:
    return (
        round(a["quantity"] * 1e6) == round(b["quantity"] * 1e6)
        and math.isclose(a["price"], b["price"], rel_tol=1e-12, abs_tol=0)
        and all(a[c] == b[c] for c in ("status", "book_id", "instrument_id", "trade_time"))
    )


@settings(max_examples=300, deadline=None)
@given(stored=rows, incoming=rows)
def test_each_row_is_kept_dropped_or_conflicting_as_its_first_occurrence_decides(stored, incoming):
    if not incoming:
        return
    reference = make_trades(stored) if stored else None
    frame = make_trades(incoming)
    first: dict = {}
    for row in stored:
        first.setdefault((row["trade_id"], row["version"]), row)
    kept, conflicting = [], []
    for i, row in enumerate(incoming):
        key = (row["trade_id"], row["version"])
        if key not in first:
            first[key] = row
            kept.append(i)
        elif not _same(row, first[key]):
            conflicting.append(i)
    got_kept, got_conflicting = split_conflicting_duplicates(frame, reference=reference)
    assert list(got_kept.index) == [frame.index[i] for i in kept]
    assert list(got_conflicting.index) == [frame.index[i] for i in conflicting]
