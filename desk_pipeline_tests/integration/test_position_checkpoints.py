"""Rolling day by day through the stored checkpoints equals a recomputation from every trade.

A stored EOD or intraday window is the state the next run rolls from (``opening``). Positions
of billions of units with micro decimals must come back from the warehouse to the micro-unit:
ARCHITECTURE.md's "incremental computation must give exactly the same answer as recomputation
from history", and a position whose trades sum to zero is flat however the days were run.
The stored float quantities of before lost a micro-unit above 2**32 units (about half of the
positions between 2**33 units and 9e9), so a position bought in lots of 1e9 and sold the next
day was left a ghost of -0.000001 that rolled forward.
"""

import shutil
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from desk_pipeline.adapters.warehouse import PositionRepository
from desk_pipeline.defs.end_of_day import store_eods
from desk_pipeline.defs.positions.windows import store_windows
from desk_pipeline.domain.calendar import day_bounds
from desk_pipeline.domain.positions.engine import roll_positions
from desk_pipeline.domain.precision import MAX_ABS_QUANTITY, MAX_EXACT_POSITION, QUANTITY_DECIMALS
from desk_pipeline.domain.schema import QUARANTINE_DTYPES, empty_frame
from desk_pipeline_tests.builders import make_trades, no_positions, trade
from desk_pipeline_tests.reference import reference_positions
from desk_pipeline_tests.sizes import examples

DAYS = ["2026-03-02", "2026-03-03", "2026-03-04"]
KEYS = [("BIG", "I1"), ("BIG", "I2"), ("B2", "I1")]
# Intraday windows stored each day: the first rolls from the previous day's EOD, the second
# from the first.
WINDOWS = ("12:00", "18:00")
NOW = pd.Timestamp("2027-01-01", tz="UTC")  # every day of DAYS is closed
LOT = Decimal(int(MAX_ABS_QUANTITY))

prices = st.decimals("0.01", "1000", places=4).map(float)
remainders = st.decimals(0, LOT, places=QUANTITY_DECIMALS, allow_nan=False)
small = st.decimals(-1000, 1000, places=QUANTITY_DECIMALS, allow_nan=False).filter(bool)


@st.composite
def key_trades(draw: st.DrawFn, key: int) -> list[tuple[int, int, Decimal, float]]:
    """(day, key, quantity, price) of one key: a position opened, then perhaps closed.

    Opened in up to 8 lots of MAX_ABS_QUANTITY and a remainder with micro decimals (up to 9e9
    units: past 2**32 and 2**33, below MAX_EXACT_POSITION), on or before a day from which it is
    closed in full, in part or not at all, in trades of at most MAX_ABS_QUANTITY.
    """
    sign = draw(st.sampled_from([1, -1]))
    opened = [LOT] * draw(st.integers(0, 8)) + [draw(remainders)]
    opened = [sign * q for q in opened if q] + draw(st.lists(small, max_size=2))
    held = sum(opened, Decimal(0))
    share = draw(st.sampled_from([Decimal(0), Decimal(1), Decimal("0.5"), Decimal("0.999999")]))
    rest = -(held * share).quantize(Decimal("0.000001"))
    closing = []
    while rest:
        closing.append(max(min(rest, LOT), -LOT))
        rest -= closing[-1]
    turn = draw(st.integers(0, len(DAYS) - 1))
    return [(draw(st.integers(0, turn)), key, q, draw(prices)) for q in opened] + [
        (draw(st.integers(turn, len(DAYS) - 1)), key, q, draw(prices)) for q in closing
    ]


@st.composite
def desk_trades(draw: st.DrawFn) -> list[tuple[int, int, Decimal, float]]:
    """Trades of every key, in booking order within each day (openings before closings)."""
    drawn = [t for key in range(len(KEYS)) for t in draw(key_trades(key))]
    return sorted(drawn, key=lambda t: t[0])


def trade_frame(drawn: list[tuple[int, int, Decimal, float]]) -> pd.DataFrame:
    """The trades as a CSV parser reads them, 8 minutes apart from 08:00 on their day."""
    booked = [sum(1 for other in drawn[:i] if other[0] == t[0]) for i, t in enumerate(drawn)]
    return make_trades(
        trade(
            f"T{i:03d}",
            float(q),
            px,
            book=KEYS[k][0],
            instrument=KEYS[k][1],
            at=pd.Timestamp(f"{DAYS[day]} 08:00", tz="UTC") + pd.Timedelta(minutes=8 * n),
        )
        for i, ((day, k, q, px), n) in enumerate(zip(drawn, booked, strict=True))
    )


@pytest.fixture(scope="module")
def migrated(tmp_path_factory) -> Path:
    """An empty, migrated SQLite warehouse to copy: each example starts from a fresh one."""
    path = tmp_path_factory.mktemp("template") / "warehouse.db"
    PositionRepository(f"sqlite:///{path}").engine.dispose()
    return path


@pytest.fixture
def fresh_warehouse(migrated, tmp_path_factory) -> Iterator:
    def make() -> PositionRepository:
        path = tmp_path_factory.mktemp("days") / "warehouse.db"
        shutil.copy(migrated, path)
        return PositionRepository(f"sqlite:///{path}")

    yield make


def run_day_by_day(repo: PositionRepository, trades: pd.DataFrame) -> dict[pd.Timestamp, dict]:
    """Ingest each day's trades, store its windows and its EOD, one day after the other.

    Returns every stored checkpoint as of its time: per (book_id, instrument_id), the stored
    (quantity_micro_units, quantity, avg_price, realized_pnl).
    """
    stored = {}
    for day in DAYS:
        start, end = day_bounds(day, "UTC")
        todays = trades[(trades["trade_time"] >= start) & (trades["trade_time"] < end)]
        if len(todays):
            repo.ingest(f"landing:{day}.csv", len(todays), todays, empty_frame(QUARANTINE_DTYPES))
        for hhmm in WINDOWS:
            window_end = pd.Timestamp(f"{day} {hhmm}", tz="UTC")
            ends = pd.DatetimeIndex([window_end])
            store_windows(repo, window_end - pd.Timedelta(minutes=10), ends, 7)
            stored[window_end] = as_dict(repo.opening(window_end).positions)
        store_eods(repo, [day], "UTC", NOW)
        stored[end] = as_dict(repo.eod_positions([day]))
    return stored


def as_dict(positions: pd.DataFrame) -> dict:
    return {
        (r.book_id, r.instrument_id): (
            r.quantity_micro_units,
            r.quantity,
            r.avg_price,
            r.realized_pnl,
        )
        for r in positions.itertuples()
    }


@settings(
    max_examples=examples(40),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(desk_trades())
@example(  # the attack: 4 x 1e9 + 456946523.790561 bought at 1, sold at 2 the next day
    [(0, 0, LOT, 1.0)] * 4
    + [(0, 0, Decimal("456946523.790561"), 1.0)]
    + [(1, 0, -LOT, 2.0)] * 4
    + [(1, 0, Decimal("-456946523.790561"), 2.0)]
)
def test_positions_rolled_day_by_day_from_stored_checkpoints_equal_their_recomputation(
    fresh_warehouse, drawn
):
    trades = trade_frame(drawn)
    stored = run_day_by_day(fresh_warehouse(), trades)

    times = pd.DatetimeIndex(sorted(stored))
    recomputed = roll_positions(no_positions(), trades, times)
    versions = trades.to_dict("records")
    for as_of in times:
        expected = as_dict(recomputed[recomputed["as_of"] == as_of])
        assert stored[as_of] == expected, as_of
        # And the decimal truth: a position closed in decimal is flat (quantity 0, avg 0).
        reference = reference_positions(versions, as_of)
        assert {k: v[0] for k, v in stored[as_of].items()} == {
            k: position.units for k, position in reference.items()
        }
        for k, (units, quantity, avg_price, _) in stored[as_of].items():
            assert quantity == reference[k].quantity
            if units == 0:
                assert avg_price == 0.0


def test_a_position_beyond_the_exact_range_is_stored_and_rolls_on(fresh_warehouse):
    # Past 2**53 micro-units sums round to the float's spacing; the desk keeps every book's EOD.
    repo = fresh_warehouse()
    lots = int(MAX_EXACT_POSITION // float(LOT)) + 1
    trades = make_trades(trade(f"T{i}", float(LOT), 1.0, i, book="BIG") for i in range(lots))
    repo.ingest("landing:big.csv", len(trades), trades, empty_frame(QUARANTINE_DTYPES))
    store_eods(repo, DAYS[:2], "UTC", NOW)
    stored = repo.eod_positions(DAYS[:2])
    assert stored["quantity_micro_units"].tolist() == [lots * int(LOT) * 10**6] * 2
