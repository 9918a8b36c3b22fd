"""Property: a batch's advancing versions and the books and times they touch are their rule.

The rule: a trade advances to its latest version in the batch (the highest; of repeats, the last
received) when that is newer than its latest stored version, if any; it touches the new
version's book and time and, when it replaces one, the replaced version's. The model applies it
in plain Python; batches are drawn with and without stored versions (a new day's trades have
none, which takes a path without the join).
"""

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from desk_pipeline.adapters.warehouse.trade_batches import _advancing, _touched
from desk_pipeline.domain.schema import TRADE_DTYPES, empty_frame
from desk_pipeline_tests.builders import make_trades, trade

versions = st.lists(
    st.builds(
        lambda tid, version, book, minutes, quantity: trade(
            tid, quantity, 1.0, minutes, book=book, version=version
        ),
        st.sampled_from(["T1", "T2", "T3"]),
        st.integers(1, 3),
        st.sampled_from(["B1", "B2"]),
        st.integers(0, 5),
        st.integers(1, 4),
    ),
    max_size=8,
)


def _latest(rows: list[dict]) -> dict[str, dict]:
    latest: dict[str, dict] = {}
    for row in rows:
        if row["trade_id"] not in latest or row["version"] >= latest[row["trade_id"]]["version"]:
            latest[row["trade_id"]] = row
    return latest


def _us(row: dict) -> int:
    return row["trade_time"].value // 1000


def _model(new: list[dict], stored: list[dict]) -> tuple[list[tuple], list[tuple]]:
    """(trade_id, version, book, time, quantity, old_version, old_book, old_us) per advancing
    trade, and the touched (book, time, trade_id)."""
    advancing, touched = [], []
    before = _latest(stored)
    for tid, row in sorted(_latest(new).items()):
        old = before.get(tid)
        if old is not None and row["version"] <= old["version"]:
            continue
        advancing.append(
            (tid, row["version"], row["book_id"], _us(row), row["quantity"])
            + ((old["version"], old["book_id"], _us(old)) if old else (None, None, None))
        )
        touched.append((row["book_id"], _us(row), tid))
        if old:
            touched.append((old["book_id"], _us(old), tid))
    return advancing, sorted(touched)


@settings(max_examples=300, deadline=None)
@given(new=versions.filter(bool), stored=versions)
def test_advancing_versions_and_what_they_touch_follow_the_rule(new, stored):
    result = _advancing(
        make_trades(new), make_trades(stored) if stored else empty_frame(TRADE_DTYPES)
    )
    advancing = [
        (r.trade_id, r.version, r.book_id, r.trade_time_us, r.quantity)
        + (
            (None, None, None)
            if pd.isna(r.old_version)
            else (int(r.old_version), r.old_book, int(r.old_us))
        )
        for r in result.sort_values("trade_id").itertuples()
    ]
    touched = sorted(
        (b, int(t), tid)
        for b, t, tid in _touched(result)[["book_id", "time_us", "trade_id"]].itertuples(
            index=False
        )
    )
    assert (advancing, touched) == _model(new, stored)
    assert _touched(result)["time_us"].dtype == "int64"
