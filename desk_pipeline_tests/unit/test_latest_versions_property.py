"""Property: latest_versions is its rule, whatever the order rows come in.

The rule: for each trade_id, the row with the highest version (of rows repeating that version,
the last received), the trade_ids in order. The model below applies it in plain Python. Rows
are drawn in any order and also sorted by (trade_id, version), as a source's day arrives:
that order takes a path without the sort, which must give the same frame.
"""

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from desk_pipeline.domain.positions.trades import latest_versions
from desk_pipeline.domain.schema import TRADE_DTYPES
from desk_pipeline_tests.builders import make_trades, trade

keys = st.lists(
    st.tuples(st.sampled_from(["T1", "T10", "T2", "t1", "É"]), st.integers(1, 3)), max_size=12
)


def _rows(pairs: list[tuple[str, int]]) -> list[dict]:
    # The quantity names the row received, so the model can say which row must win.
    return [trade(tid, i + 1, 1.0, i, version=v) for i, (tid, v) in enumerate(pairs)]


def _model(rows: list[dict]) -> list[dict]:
    latest: dict[str, dict] = {}
    for row in rows:
        held = latest.get(row["trade_id"])
        if held is None or row["version"] >= held["version"]:
            latest[row["trade_id"]] = row
    return [latest[tid] for tid in sorted(latest)]


def _check(rows: list[dict]) -> None:
    frame = make_trades(rows)
    result = latest_versions(frame)
    expected = make_trades(_model(rows))
    pd.testing.assert_frame_equal(result, expected, check_exact=True)
    assert isinstance(result.index, pd.RangeIndex)


@settings(max_examples=300, deadline=None)
@given(pairs=keys, in_key_order=st.booleans())
def test_the_highest_version_of_each_trade_wins_the_last_received_among_equals(pairs, in_key_order):
    rows = _rows(pairs)
    if in_key_order:
        rows.sort(key=lambda r: (r["trade_id"], r["version"]))  # stable: repeats keep their order
    _check(rows)


@settings(max_examples=100, deadline=None)
@given(pairs=keys)
def test_a_frame_with_a_missing_trade_id_gives_what_the_sort_gives(pairs):
    """Missing ids are not ordered by comparison: the sort decides (last, one trade)."""
    frame = make_trades([*_rows(pairs), trade("T9", 99, 1.0, 0)])
    frame.loc[len(frame) - 1, "trade_id"] = np.nan
    for ids in (frame, frame.sort_values(["trade_id", "version"], kind="stable")):
        sort = ids.sort_values(["trade_id", "version"], kind="stable")
        expected = sort.drop_duplicates("trade_id", keep="last").reset_index(drop=True)
        pd.testing.assert_frame_equal(latest_versions(ids), expected, check_exact=True)


def test_an_empty_frame_keeps_its_columns():
    result = latest_versions(make_trades([]))
    assert list(result.columns) == list(TRADE_DTYPES)
    assert result.empty
