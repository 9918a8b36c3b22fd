"""The average-cost engine: the rules of ARCHITECTURE.md, and agreement with the reference."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from desk_pipeline.domain.positions.engine import _present_cells, positions_as_of, roll_positions
from desk_pipeline.domain.positions.trades import effective_trades
from desk_pipeline_tests.builders import T0, make_trades, no_positions, trade
from desk_pipeline_tests.reference import reference_positions
from desk_pipeline_tests.sizes import examples

END = T0 + pd.Timedelta(days=1)


def one(frame: pd.DataFrame, instrument: str = "XS0001", book: str = "B1") -> dict:
    row = frame[(frame["book_id"] == book) & (frame["instrument_id"] == instrument)]
    assert len(row) == 1, frame
    return row.iloc[0].to_dict()


def test_the_seeds_example_reduction_keeps_the_average_price_and_realises_pnl():
    trades = make_trades(
        [
            trade("t1", 100, 180.0, 0),
            trade("t2", -50, 182.0, 1),
            trade("t3", 200, 310.0, 2, instrument="MSFT"),
        ]
    )
    positions = positions_as_of(no_positions(), trades, END)
    aapl = one(positions)
    assert (aapl["quantity"], aapl["avg_price"], aapl["realized_pnl"]) == (50, 180.0, 100.0)
    assert one(positions, "MSFT")["avg_price"] == 310.0


def test_adding_in_the_same_direction_reweights_the_average():
    trades = make_trades([trade("t1", 100, 10.0, 0), trade("t2", 300, 14.0, 1)])
    assert one(positions_as_of(no_positions(), trades, END))["avg_price"] == pytest.approx(13.0)


def test_reducing_a_short_realises_avg_minus_price():
    trades = make_trades([trade("t1", -100, 50.0, 0), trade("t2", 40, 45.0, 1)])
    position = one(positions_as_of(no_positions(), trades, END))
    assert (position["quantity"], position["avg_price"], position["realized_pnl"]) == (
        -60,
        50.0,
        200.0,
    )


def test_going_flat_sets_the_average_to_zero_and_keeps_the_realised_pnl():
    trades = make_trades([trade("t1", 100, 10.0, 0), trade("t2", -100, 12.0, 1)])
    position = one(positions_as_of(no_positions(), trades, END))
    assert (position["quantity"], position["avg_price"], position["realized_pnl"]) == (
        0,
        0.0,
        200.0,
    )


def test_crossing_zero_opens_the_remainder_at_the_trade_price():
    trades = make_trades([trade("t1", 100, 10.0, 0), trade("t2", -150, 12.0, 1)])
    position = one(positions_as_of(no_positions(), trades, END))
    assert (position["quantity"], position["avg_price"], position["realized_pnl"]) == (
        -50,
        12.0,
        200.0,
    )


def test_a_snapshot_excludes_trades_at_or_after_its_as_of():
    trades = make_trades([trade("t1", 100, 10.0, 0), trade("t2", 100, 20.0, 10)])
    position = one(positions_as_of(no_positions(), trades, T0 + pd.Timedelta(minutes=10)))
    assert position["quantity"] == 100


def test_trades_at_the_same_time_apply_in_trade_id_order():
    # Buy 100 @ 10 then sell 100 @ 12 realises 200; the reverse order would realise 0 and flip.
    trades = make_trades([trade("b", -100, 12.0, 0), trade("a", 100, 10.0, 0)])
    position = one(positions_as_of(no_positions(), trades, END))
    assert (position["quantity"], position["realized_pnl"]) == (0, 200.0)


def test_roll_positions_gives_one_snapshot_per_boundary_with_keys_appearing_when_first_traded():
    trades = make_trades([trade("t1", 100, 10.0, 0), trade("t2", 5, 1.0, 30, instrument="XS0002")])
    snapshots = roll_positions(no_positions(), trades, [T0 + pd.Timedelta(minutes=20), END])
    assert snapshots.groupby("as_of").size().tolist() == [1, 2]


def test_an_empty_input_gives_an_empty_frame_with_the_columns():
    result = positions_as_of(no_positions(), make_trades([]), END)
    assert result.empty and list(result.columns) == [
        "book_id",
        "instrument_id",
        "quantity",
        "avg_price",
        "realized_pnl",
        "quantity_micro_units",
    ]


def test_the_engine_does_not_mutate_its_inputs():
    trades = make_trades([trade("t2", -50, 182.0, 1), trade("t1", 100, 180.0, 0)])
    before = trades.copy()
    positions_as_of(no_positions(), trades, END)
    pd.testing.assert_frame_equal(trades, before)


# ---- properties against the reference ---------------------------------------------------------

BOOKS, INSTRUMENTS = ["B1", "B2"], ["I1", "I2", "I3"]


@st.composite
def trade_streams(draw):
    """Random versions: integer quantities so flips and exact closes happen often."""
    n = draw(st.integers(0, 40))
    versions = []
    for i in range(n):
        base = trade(
            f"T{i:03d}",
            draw(st.integers(-5, 5).filter(bool)) * 10,
            draw(st.sampled_from([9.5, 10.0, 10.25, 11.0, 12.5])),
            draw(st.integers(0, 600)),
            book=draw(st.sampled_from(BOOKS)),
            instrument=draw(st.sampled_from(INSTRUMENTS)),
        )
        versions.append(base)
        for v in range(2, 2 + draw(st.integers(0, 2))):
            kind = draw(st.sampled_from(["AMEND", "CANCEL"]))
            amended = dict(base, version=v, status=kind)
            if kind == "AMEND":
                amended["quantity"] = draw(st.integers(-5, 5).filter(bool)) * 10.0
                amended["trade_time"] = T0 + pd.Timedelta(minutes=draw(st.integers(0, 600)))
            versions.append(amended)
    return versions


def as_dict(frame: pd.DataFrame) -> dict:
    return {
        (r.book_id, r.instrument_id): (r.quantity, r.avg_price, r.realized_pnl)
        for r in frame.itertuples()
    }


def ref_dict(versions: list[dict], as_of) -> dict:
    return {
        k: (p.quantity, p.avg_price, p.realized_pnl)
        for k, p in reference_positions(versions, as_of).items()
    }


@settings(max_examples=examples(40), deadline=None)
@given(trade_streams(), st.integers(0, 620))
def test_the_engine_equals_the_per_trade_reference(versions, cut):
    as_of = T0 + pd.Timedelta(minutes=cut)
    result = positions_as_of(no_positions(), effective_trades(make_trades(versions)), as_of)
    assert as_dict(result) == ref_dict(versions, as_of)


@settings(max_examples=examples(15), deadline=None)
@given(trade_streams())
def test_incremental_from_any_split_point_equals_recomputation(versions):
    trades = effective_trades(make_trades(versions))
    end = T0 + pd.Timedelta(minutes=601)
    full = as_dict(positions_as_of(no_positions(), trades, end))
    for split in range(0, 602, 37):
        at = T0 + pd.Timedelta(minutes=split)
        opening = positions_as_of(no_positions(), trades, at)
        later = trades[trades["trade_time"] >= at]
        assert as_dict(positions_as_of(opening, later, end)) == full


@settings(max_examples=examples(15), deadline=None)
@given(trade_streams(), st.lists(st.integers(1, 620), min_size=1, max_size=6, unique=True))
def test_every_boundary_of_a_roll_equals_a_separate_snapshot(versions, cuts):
    trades = effective_trades(make_trades(versions))
    boundaries = sorted(T0 + pd.Timedelta(minutes=c) for c in cuts)
    rolled = roll_positions(no_positions(), trades, boundaries)
    for as_of in boundaries:
        snapshot = rolled[rolled["as_of"] == as_of].drop(columns="as_of")
        assert as_dict(snapshot) == ref_dict(versions, as_of)


def encoded(frame: pd.DataFrame, extra: list[str], in_order: bool) -> pd.DataFrame:
    """Ids as categoricals whose categories also hold unused values, sorted (as the warehouse's
    dictionary) or in reverse."""
    return frame.assign(
        **{
            column: pd.Categorical(
                frame[column], categories=sorted({*frame[column], *extra}, reverse=not in_order)
            )
            for column in ("book_id", "instrument_id")
        }
    )


@settings(max_examples=examples(15), deadline=None)
@given(trade_streams(), st.integers(0, 620), st.booleans())
def test_dictionary_encoded_ids_give_the_reference_snapshots(versions, split, in_order):
    # Categorical ids skip hashing; opening and trades come with different category lists.
    # Sorted categories and no opening rows (split 0) number keys without looking ids up.
    trades = effective_trades(make_trades(versions))
    at = T0 + pd.Timedelta(minutes=split)
    opening = encoded(positions_as_of(no_positions(), trades, at), ["B0", "I0"], in_order)
    later = encoded(trades[trades["trade_time"] >= at], ["B9", "I9", "ZZ"], in_order)
    end = T0 + pd.Timedelta(minutes=601)
    assert as_dict(positions_as_of(opening, later, end)) == ref_dict(versions, end)


def test_a_universe_too_wide_for_a_key_table_gives_the_reference_snapshot():
    # 3,000 books x 3,000 instruments: the (book, instrument) table would be 9M slots for 3,000
    # trades, so keys are numbered by sorting instead; the answer must not change.
    versions = [
        trade(
            f"T{i:05d}", (i % 7 - 3) or 1, 10.0 + i % 5, i % 500, book=f"B{i}", instrument=f"I{i}"
        )
        for i in range(3_000)
    ] + [
        trade(f"U{i:05d}", -1, 11.0, 501, book=f"B{i}", instrument=f"I{i}")
        for i in range(0, 3_000, 3)
    ]
    as_of = T0 + pd.Timedelta(minutes=600)
    result = positions_as_of(no_positions(), effective_trades(make_trades(versions)), as_of)
    assert list(zip(result["book_id"], result["instrument_id"], strict=True)) == sorted(
        ref_dict(versions, as_of)
    )
    assert as_dict(result) == ref_dict(versions, as_of)


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 5).flatmap(lambda n: st.tuples(st.just(n), st.lists(st.integers(0, n)))))
def test_the_present_cells_are_every_snapshot_from_each_keys_birth_on(case):
    n_boundaries, births = case
    born = np.array(births, dtype=float)
    b_index, keys, cells = _present_cells(born, n_boundaries)
    grid = np.zeros((n_boundaries, len(born), 2))
    grid[..., 0] = np.arange(n_boundaries)[:, np.newaxis]
    grid[..., 1] = np.arange(len(born))[np.newaxis, :]
    listed = [tuple(cell) for cell in grid[cells].reshape(-1, 2).astype(int).tolist()]
    expected = [(b, k) for b in range(n_boundaries) for k in range(len(born)) if born[k] <= b]
    assert listed == expected
    assert b_index.tolist() == [b for b, _ in expected]
    assert np.arange(len(born))[keys].tolist() == [k for _, k in expected]
