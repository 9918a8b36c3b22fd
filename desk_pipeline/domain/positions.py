"""The average-cost position engine: snapshots of (book, instrument) positions as of given times."""

from collections.abc import Sequence

import numba
import numpy as np
import pandas as pd

from desk_pipeline.domain.schema import (
    POSITION_COLUMNS,
    POSITION_DTYPES,
    TRADE_COLUMNS,
    conform,
    empty_frame,
    require_columns,
)
from desk_pipeline.domain.trades import order_trades

SNAPSHOT_DTYPES = {"as_of": "datetime64[ns, UTC]", **POSITION_DTYPES}


@numba.njit(cache=True)
def _apply_trades(
    codes: np.ndarray,
    quantities: np.ndarray,
    prices: np.ndarray,
    segment_ends: np.ndarray,
    quantity: np.ndarray,
    avg_price: np.ndarray,
    realized: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Apply time-ordered trades to the state arrays, recording the state at each segment end.

    A sequential scan, because each trade's effect depends on the position it meets; numba makes
    it run at vectorised speed while keeping the exact arithmetic of a per-trade reference.
    """
    n_boundaries = segment_ends.shape[0]
    n_keys = quantity.shape[0]
    out_q = np.empty((n_boundaries, n_keys))
    out_a = np.empty((n_boundaries, n_keys))
    out_r = np.empty((n_boundaries, n_keys))
    i = 0
    for b in range(n_boundaries):
        while i < segment_ends[b]:
            k = codes[i]
            dq = quantities[i]
            px = prices[i]
            held = quantity[k]
            if held == 0.0 or (held > 0.0) == (dq > 0.0):
                # Opening or adding in the same direction re-weights the average cost.
                new = held + dq
                avg_price[k] = (held * avg_price[k] + dq * px) / new
                quantity[k] = new
            else:
                closed = min(abs(dq), abs(held))
                direction = 1.0 if held > 0.0 else -1.0
                realized[k] += (px - avg_price[k]) * closed * direction
                if abs(dq) < abs(held):
                    quantity[k] = held + dq  # a reduction leaves the average cost unchanged
                elif abs(dq) == abs(held):
                    quantity[k] = 0.0
                    avg_price[k] = 0.0
                else:
                    quantity[k] = held + dq  # crossing zero opens the remainder at the price
                    avg_price[k] = px
            i += 1
        out_q[b] = quantity
        out_a[b] = avg_price
        out_r[b] = realized
    return out_q, out_a, out_r


def roll_positions(
    opening: pd.DataFrame, trades: pd.DataFrame, as_of: Sequence[pd.Timestamp] | pd.DatetimeIndex
) -> pd.DataFrame:
    """Positions as of each time in ``as_of``, from an opening state and the trades after it.

    A snapshot as of T applies every trade with ``trade_time < T`` in (trade_time, trade_id)
    order, on top of ``opening``. The caller passes effective trades (latest versions, cancels
    removed) that all happened at or after the opening state was taken.

    Args:
        opening: POSITION_COLUMNS, one row per (book_id, instrument_id); may be empty.
        trades: TRADE_COLUMNS, effective trades; quantities signed, prices per unit.
        as_of: UTC timestamps, ascending.

    Returns:
        ``as_of`` plus POSITION_COLUMNS: for every time, one row per key present in the opening
        state or traded before that time, flat keys included (they carry realised P&L), sorted by
        (as_of, book_id, instrument_id).
    """
    require_columns(opening, POSITION_COLUMNS, where="roll_positions(opening)")
    require_columns(trades, TRADE_COLUMNS, where="roll_positions(trades)")
    boundaries = pd.DatetimeIndex(as_of).tz_convert("UTC")
    if not boundaries.is_monotonic_increasing:
        raise ValueError(f"roll_positions: as_of must be ascending, got {list(boundaries)}")
    ordered = order_trades(trades)
    books = pd.concat([opening["book_id"], ordered["book_id"]], ignore_index=True)
    instruments = pd.concat([opening["instrument_id"], ordered["instrument_id"]], ignore_index=True)
    if books.empty or boundaries.empty:
        return empty_frame(SNAPSHOT_DTYPES)

    # Sorted factorisation gives keys in (book_id, instrument_id) order, so output needs no sort.
    book_codes, book_names = pd.factorize(books, sort=True)
    instrument_codes, instrument_names = pd.factorize(instruments, sort=True)
    pair = book_codes.astype(np.int64) * len(instrument_names) + instrument_codes
    key_codes, key_pairs = pd.factorize(pair, sort=True)
    n_open = len(opening)
    n_keys = len(key_pairs)

    quantity = np.zeros(n_keys)
    avg_price = np.zeros(n_keys)
    realized = np.zeros(n_keys)
    open_codes = key_codes[:n_open]
    quantity[open_codes] = opening["quantity"].to_numpy(dtype=float)
    avg_price[open_codes] = opening["avg_price"].to_numpy(dtype=float)
    realized[open_codes] = opening["realized_pnl"].to_numpy(dtype=float)

    trade_codes = key_codes[n_open:].astype(np.int64)
    times = ordered["trade_time"].dt.tz_convert("UTC").to_numpy(dtype="datetime64[ns]")
    segment_ends = np.searchsorted(times, boundaries.tz_localize(None).to_numpy(), side="left")
    out_q, out_a, out_r = _apply_trades(
        trade_codes,
        ordered["quantity"].to_numpy(dtype=float),
        ordered["price"].to_numpy(dtype=float),
        segment_ends.astype(np.int64),
        quantity,
        avg_price,
        realized,
    )

    # A key exists in snapshot b once it is in the opening state or was first traded before it.
    first_trade = np.full(n_keys, len(times), dtype=np.int64)
    np.minimum.at(first_trade, trade_codes, np.arange(len(trade_codes)))
    first_trade[open_codes] = -1
    present = first_trade[np.newaxis, :] < segment_ends[:, np.newaxis]
    b_index, k_index = np.nonzero(present)
    pairs = key_pairs[k_index]
    frame = pd.DataFrame(
        {
            "as_of": boundaries[b_index],
            "book_id": np.asarray(book_names)[pairs // len(instrument_names)],
            "instrument_id": np.asarray(instrument_names)[pairs % len(instrument_names)],
            "quantity": out_q[b_index, k_index],
            "avg_price": out_a[b_index, k_index],
            "realized_pnl": out_r[b_index, k_index],
        }
    )
    return conform(frame, SNAPSHOT_DTYPES)


def positions_as_of(
    opening: pd.DataFrame, trades: pd.DataFrame, as_of: pd.Timestamp
) -> pd.DataFrame:
    """Positions as of one time: :func:`roll_positions` for a single snapshot, without ``as_of``."""
    snapshot = roll_positions(opening, trades, [as_of])
    return conform(snapshot, POSITION_DTYPES)
