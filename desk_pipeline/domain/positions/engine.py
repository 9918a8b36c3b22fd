"""The average-cost position engine: snapshots of (book, instrument) positions as of given times."""

import math
from collections.abc import Callable, Mapping

import numba
import numpy as np
import pandas as pd
from llvmlite import ir
from numba.core import cgutils, types
from numba.core.base import BaseContext
from numba.core.typing.templates import Signature
from numba.extending import intrinsic

from desk_pipeline.domain.positions.trades import application_order
from desk_pipeline.domain.precision import (
    QUANTITY_SCALE,
    from_units,
    to_units,
)
from desk_pipeline.domain.schema import (
    POSITION_STATE_COLUMNS,
    POSITION_STATE_DTYPES,
    TRADE_COLUMNS,
    empty_frame,
    require_columns,
)

SNAPSHOT_DTYPES = {"as_of": "datetime64[ns, UTC]", **POSITION_STATE_DTYPES}
# Keys are numbered through a dense (book x instrument) table when it is at most this many
# times larger than the input: a table lookup beats sorting the pairs, a huge table does not.
DENSE_KEY_TABLE_FACTOR = 8


# Columns of the engine's state: one row per key, so that one cache line holds a key's state.
QUANTITY, AVG_PRICE, REALIZED, BORN = range(4)
# How many trades ahead the kernel prefetches the state row of: enough to cover a cache miss
# (sparse bench, 632k keys: 8 ahead 19 ms, 16 ahead 13 ms, 32 and 64 ahead 10 ms, none 30 ms).
PREFETCH_AHEAD = 32


@intrinsic
def _prefetch_row(
    typingctx: object, state: types.Array, row: types.Integer
) -> tuple[Signature, Callable[..., ir.Value]]:
    """Ask the CPU to load ``state[row, 0]``'s cache line for writing, without waiting for it.

    LLVM's prefetch, which numba does not expose: a plain load of the row would hold the CPU's
    reorder buffer until it arrives, which is what the prefetch avoids. A hint: no effect on
    results, and no fault on any address.
    """

    def codegen(
        context: BaseContext, builder: ir.IRBuilder, signature: Signature, args: list[ir.Value]
    ) -> ir.Value:
        array_type = signature.args[0]
        array = context.make_array(array_type)(context, builder, args[0])
        column = context.get_constant(types.intp, 0)
        pointer = cgutils.get_item_pointer(context, builder, array_type, array, [args[1], column])
        byte_pointer = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        prefetch = cgutils.get_or_insert_function(
            builder.module,
            ir.FunctionType(ir.VoidType(), [byte_pointer, i32, i32, i32]),
            "llvm.prefetch.p0",
        )
        # (address, write, locality 3: keep in every cache level, data cache)
        builder.call(prefetch, [builder.bitcast(pointer, byte_pointer), i32(1), i32(3), i32(1)])
        return context.get_dummy_value()

    return types.void(state, row), codegen


# error_model="numpy": the re-weighted price is computed even for a trade that closes the
# position (then it divides by zero and is discarded), so that the kernel has no branches.
@numba.njit(cache=True, error_model="numpy")
def _apply_trades(
    codes: np.ndarray,
    quantities: np.ndarray,
    prices: np.ndarray,
    segment_ends: np.ndarray,
    state: np.ndarray,
) -> np.ndarray:
    """Apply time-ordered trades to ``state``, recording its first three columns at segment ends.

    The state after the last segment is ``state`` itself: only earlier segment ends are copied
    into the returned array (shape: segments - 1, keys, 3).

    A sequential scan, because each trade's effect depends on the position it meets; numba makes
    it run at vectorised speed while keeping the exact arithmetic of a per-trade loop. With many
    keys each trade's state row is a cache miss, and the arithmetic waiting on it keeps the CPU
    from reaching the next trades' rows: the row of the trade ``PREFETCH_AHEAD`` places on is
    prefetched, so that the misses overlap.
    Every outcome is computed and the rule's one selected, instead of branching on it: on a
    stream where increases and reductions alternate at random, mispredicted branches cost more
    than the arithmetic. ``state[k, BORN]`` is lowered to the first segment in which key k
    trades, so that a snapshot lists exactly the keys that exist by then.

    Quantities (``quantities`` and ``state[:, QUANTITY]``) are micro-units
    (``precision.to_units``): integer-valued floats, so adding them is exact and a position
    closed in decimal is exactly 0. The average cost is per unit either way (the scale cancels);
    realised P&L converts the closed micro-units back to units.
    """
    n_boundaries = segment_ends.shape[0]
    earlier = np.empty((n_boundaries - 1, state.shape[0], 3))
    last_ahead = codes.shape[0] - PREFETCH_AHEAD
    i = 0
    for b in range(n_boundaries):
        while i < segment_ends[b]:
            if i < last_ahead:
                # numba passes the typing context itself: the call takes the other two.
                _prefetch_row(state, codes[i + PREFETCH_AHEAD])  # type: ignore[call-arg]
            k = codes[i]
            dq = quantities[i]
            px = prices[i]
            held = state[k, QUANTITY]
            avg = state[k, AVG_PRICE]
            state[k, BORN] = min(state[k, BORN], b)
            # Opening or adding in the same direction re-weights the average cost.
            adding = (held == 0.0) | ((held > 0.0) == (dq > 0.0))
            reweighted = (held * avg + dq * px) / (held + dq)
            # Otherwise the trade realises P&L on the closed quantity (in units, signed like
            # the position: a short gains when the price falls), and the average cost is
            # unchanged by a reduction, 0 when flat, the trade price when crossing zero.
            # copysign rather than a +-1 factor: the sparse benchmark (a cache miss per trade)
            # slows down with every operation between the state's load and its store.
            closed = min(abs(dq), abs(held))
            reduced = avg if abs(dq) < abs(held) else (0.0 if abs(dq) == abs(held) else px)
            pnl = (px - avg) * math.copysign(closed / QUANTITY_SCALE, held)
            state[k, REALIZED] += 0.0 if adding else pnl
            state[k, AVG_PRICE] = reweighted if adding else reduced
            state[k, QUANTITY] = held + dq
            i += 1
        if b < n_boundaries - 1:
            earlier[b] = state[:, :BORN]
    return earlier


def _factorize(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes and the distinct values they index; a categorical column's codes are free."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        return values.cat.codes.to_numpy(), np.asarray(values.cat.categories, dtype=object)
    codes, uniques = pd.factorize(values)
    return codes, np.asarray(uniques, dtype=object)


@numba.njit(cache=True)
def _pair_codes(
    book_codes: np.ndarray,
    book_rank: np.ndarray,
    instrument_codes: np.ndarray,
    instrument_rank: np.ndarray,
    n_instruments: int,
    out: np.ndarray,
) -> None:
    """``out[i]`` = the (book, instrument) pair of row i as one int, in (book, instrument) order."""
    for i in range(book_codes.shape[0]):
        out[i] = book_rank[book_codes[i]] * n_instruments + instrument_rank[instrument_codes[i]]


@numba.njit(cache=True)
def _renumber_dense(
    pairs: np.ndarray, n_books: int, n_instruments: int
) -> tuple[np.ndarray, np.ndarray]:
    """Replace each pair by its rank among the distinct pairs, through a (book x instrument) table.

    In place, because a fresh array of a million codes costs more in page faults than the pass.
    The pairs are marked in a table of bytes (a quarter of the ranks' table, so the random
    writes stay in cache), and the ranks and each rank's book and instrument are written in one
    pass over the table, without branches (a rank's entries are overwritten until its pair is
    seen): together about half the time of marking the ranks' table and dividing the pairs.

    Args:
        pairs: int64, ``book * n_instruments + instrument`` per row (``_pair_codes``).
        n_books: how many books the pairs number.
        n_instruments: how many instruments the pairs number.

    Returns:
        ``(books, instruments)``: int64, the book and instrument numbers of the pair now
        numbered n at entry n, ascending by pair.
    """
    seen = np.zeros(n_books * n_instruments, dtype=np.uint8)
    for pair in pairs:
        seen[pair] = 1
    rank = np.empty(seen.shape[0], dtype=np.int32)
    capacity = min(seen.shape[0], pairs.shape[0]) + 1
    books = np.empty(capacity, dtype=np.int64)
    instruments = np.empty(capacity, dtype=np.int64)
    n = 0
    pair = 0
    for book in range(n_books):
        for instrument in range(n_instruments):
            rank[pair] = n
            books[n] = book
            instruments[n] = instrument
            n += seen[pair]
            pair += 1
    for i in range(pairs.shape[0]):
        pairs[i] = rank[pairs[i]]
    return books[:n], instruments[:n]


def _sorted_union(arrays: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
    """The distinct values of ``arrays`` (each without repeats), sorted, and each value's rank.

    Ids usually arrive sorted, so check first. When only one array holds values (no opening
    rows, say) and it is sorted, it is the union itself and its ranks are its positions: nothing
    is hashed, which for a categorical's whole dictionary (10k instruments) was a millisecond.

    Returns:
        ``(names, ranks)``: the sorted union, and per array, each value's position in it (int64).
    """
    filled = [values for values in arrays if len(values)]
    if len(filled) == 1 and pd.Index(filled[0]).is_monotonic_increasing:
        return filled[0], [np.arange(len(values)) for values in arrays]
    names = pd.Index(np.concatenate(arrays), dtype=object).unique()
    union = np.asarray(names if names.is_monotonic_increasing else names.sort_values())
    index = pd.Index(union)
    return union, [index.get_indexer(values) for values in arrays]


def _keys(opening: pd.DataFrame, trades: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Number the (book, instrument) keys of the opening rows and the trades in name order.

    Returns:
        ``(codes, books, instruments)``: the key number of every row (opening rows first), and
        each key's book_id and instrument_id.
    """
    encoded = {}
    for column in ("book_id", "instrument_id"):
        parts = [_factorize(opening[column]), _factorize(trades[column])]
        # A part without rows names nothing (an empty categorical still lists its categories).
        names, ranks = _sorted_union(
            [uniques if len(codes) else uniques[:0] for codes, uniques in parts]
        )
        encoded[column] = (
            names,
            [(codes, rank) for (codes, _), rank in zip(parts, ranks, strict=True)],
        )
    book_names, book_parts = encoded["book_id"]
    instrument_names, instrument_parts = encoded["instrument_id"]
    n_instruments = len(instrument_names)
    pairs = np.empty(len(opening) + len(trades), dtype=np.int64)
    for (books, book_rank), (instruments, instrument_rank), rows in zip(
        book_parts,
        instrument_parts,
        (slice(0, len(opening)), slice(len(opening), None)),
        strict=True,
    ):
        _pair_codes(books, book_rank, instruments, instrument_rank, n_instruments, pairs[rows])
    space = len(book_names) * n_instruments
    if space <= DENSE_KEY_TABLE_FACTOR * len(pairs) + 1024:
        codes = pairs
        book, instrument = _renumber_dense(pairs, len(book_names), n_instruments)
    else:
        distinct, codes = np.unique(pairs, return_inverse=True)
        book, instrument = np.divmod(distinct, n_instruments)
    return codes, book_names[book], instrument_names[instrument]


def _snapshot_frame(
    columns: Mapping[str, np.ndarray | pd.Index], dtypes: Mapping[str, str]
) -> pd.DataFrame:
    """``dtypes``' columns side by side (in that order, with those dtypes), without copies.

    A DataFrame built from a dict copies its columns into blocks, and infers a string dtype for
    the ids only for them to be cast back; for 600k rows that took longer than the scan itself.
    """
    series = [
        pd.Series(columns[name], name=name, dtype=dtype, copy=False)
        for name, dtype in dtypes.items()
    ]
    return pd.concat(series, axis=1)


def roll_positions(
    opening: pd.DataFrame, trades: pd.DataFrame, as_of: list[pd.Timestamp] | pd.DatetimeIndex
) -> pd.DataFrame:
    """Positions as of each time in ``as_of``, from an opening state and the trades after it.

    A snapshot as of T applies every trade with ``trade_time < T`` in (trade_time, trade_id)
    order, on top of ``opening``. The caller passes effective trades (latest versions, cancels
    removed) that all happened at or after the opening state was taken.

    Args:
        opening: POSITION_STATE_COLUMNS, one row per (book_id, instrument_id); may be empty.
            The engine rolls from ``quantity_micro_units`` (exact); ``quantity`` is not read.
        trades: TRADE_COLUMNS, effective trades; quantities signed, prices per unit. Ids may be
            strings or categoricals (categorical codes are used as they are: no hashing).
            Quantities are taken to the micro-unit (``precision.to_units``), which removes
            float dust and is exact for a decimal with at most ``QUANTITY_DECIMALS`` places.
        as_of: UTC timestamps, ascending.

    Returns:
        ``as_of`` plus POSITION_STATE_COLUMNS: for every time, one row per key present in the
        opening state or traded before that time, flat keys included (they carry realised
        P&L), sorted by (as_of, book_id, instrument_id). ``quantity_micro_units`` is the exact
        decimal sum of the key's quantities and ``quantity`` the float nearest to it: a key
        whose quantities sum to zero in decimal is flat, quantity 0 and avg_price 0 (exact
        below ``precision.MAX_EXACT_POSITION`` units; beyond it, to the float's spacing).
    """
    boundaries = _boundaries(as_of)
    snapshots = _roll(opening, trades, boundaries)
    if snapshots is None:
        return empty_frame(SNAPSHOT_DTYPES)
    b_index, positions = snapshots
    return _snapshot_frame({"as_of": boundaries[b_index], **positions}, SNAPSHOT_DTYPES)


def positions_as_of(
    opening: pd.DataFrame, trades: pd.DataFrame, as_of: pd.Timestamp
) -> pd.DataFrame:
    """Positions as of one time: :func:`roll_positions` for a single snapshot, without ``as_of``."""
    snapshots = _roll(opening, trades, _boundaries([as_of]))
    # The positions only: building an as_of column to drop it took 1.5 ms of the sparse
    # benchmark's 35 ms.
    if snapshots is None:
        return empty_frame(POSITION_STATE_DTYPES)
    return _snapshot_frame(snapshots[1], POSITION_STATE_DTYPES)


def _roll(
    opening: pd.DataFrame, trades: pd.DataFrame, boundaries: pd.DatetimeIndex
) -> tuple[np.ndarray, dict[str, np.ndarray]] | None:
    """:func:`roll_positions`' rows as columns, in its order.

    Args:
        opening: as for :func:`roll_positions`.
        trades: as for :func:`roll_positions`.
        boundaries: the snapshot times (``_boundaries``).

    Returns:
        ``(b_index, positions)``: each row's snapshot, as its position in ``boundaries`` (int64),
        and POSITION_STATE_COLUMNS by name (arrays, not yet of POSITION_STATE_DTYPES); None when
        there is no row (no opening row and no trade, or no time).
    """
    require_columns(opening, POSITION_STATE_COLUMNS, where="roll_positions(opening)")
    require_columns(trades, TRADE_COLUMNS, where="roll_positions(trades)")
    if (opening.empty and trades.empty) or boundaries.empty:
        return None

    key_codes, key_books, key_instruments = _keys(opening, trades)
    n_open = len(opening)
    state = _opening_state(opening, key_codes[:n_open], len(key_books), len(boundaries))
    codes, quantities, prices, times = _trades_in_order(trades, key_codes[n_open:])
    segment_ends = np.searchsorted(times, boundaries.tz_localize(None).to_numpy(), side="left")
    earlier = _apply_trades(codes, quantities, prices, segment_ends.astype(np.int64), state)
    last = state[np.newaxis, :, :BORN]
    out = np.concatenate([earlier, last]) if len(earlier) else last

    b_index, keys, cells = _present_cells(state[:, BORN], len(boundaries))
    micro_units = out[(*cells, QUANTITY)]
    return b_index, {
        "book_id": key_books[keys],
        "instrument_id": key_instruments[keys],
        "quantity": from_units(micro_units),
        "quantity_micro_units": micro_units.astype(np.int64),
        "avg_price": out[(*cells, AVG_PRICE)],
        "realized_pnl": out[(*cells, REALIZED)],
    }


def _boundaries(as_of: list[pd.Timestamp] | pd.DatetimeIndex) -> pd.DatetimeIndex:
    """``as_of`` as a UTC DatetimeIndex: the snapshot times, the ends of the trade segments.

    Raises:
        ValueError: the times are not ascending.
    """
    boundaries = pd.DatetimeIndex(as_of).tz_convert("UTC")
    if not boundaries.is_monotonic_increasing:
        raise ValueError(f"roll_positions: as_of must be ascending, got {list(boundaries)}")
    return boundaries


def _opening_state(
    opening: pd.DataFrame, open_codes: np.ndarray, n_keys: int, n_boundaries: int
) -> np.ndarray:
    """The engine's state before the first trade: the opening positions, at their key numbers.

    Args:
        opening: POSITION_STATE_COLUMNS; row i is key ``open_codes[i]``.
        open_codes: int key numbers (``_keys``), one per opening row.
        n_keys: how many keys the opening rows and the trades hold.
        n_boundaries: how many snapshots are taken.

    Returns:
        float64, shape (n_keys, 4), columns QUANTITY (micro-units), AVG_PRICE (per unit),
        REALIZED (P&L) and BORN (the first snapshot holding the key: 0 for an opening key,
        ``n_boundaries`` (none yet) for a key that only trades, lowered by ``_apply_trades``).
    """
    micro_units = opening["quantity_micro_units"].to_numpy(dtype=np.int64)
    state = np.zeros((n_keys, 4))
    state[:, BORN] = n_boundaries
    # The exact micro-units, not the float quantity: above precision.MAX_FLOAT_EXACT_QUANTITY
    # the float cannot tell neighbouring micro-units apart.
    state[open_codes, QUANTITY] = micro_units
    state[open_codes, AVG_PRICE] = opening["avg_price"].to_numpy(dtype=float)
    state[open_codes, REALIZED] = opening["realized_pnl"].to_numpy(dtype=float)
    state[open_codes, BORN] = 0
    return state


def _trades_in_order(
    trades: pd.DataFrame, trade_codes: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The trades as the kernel's arrays, in application order ((trade_time, trade_id)).

    Args:
        trades: TRADE_COLUMNS; row i is key ``trade_codes[i]``.
        trade_codes: int key numbers (``_keys``), one per trade.

    Returns:
        ``(codes, quantities, prices, times)``: key numbers, quantities in micro-units
        (float64, ``precision.to_units``), prices per unit (float64) and trade times
        (datetime64[ns], UTC, ascending), each of length ``len(trades)``; the arrays as they are
        when the trades are already in order (``application_order`` gives None).
    """
    columns = (
        trade_codes,
        to_units(trades["quantity"]),
        trades["price"].to_numpy(dtype=float),
        trades["trade_time"].to_numpy(dtype="datetime64[ns]"),
    )
    order = application_order(trades)
    codes, quantities, prices, times = columns if order is None else (c[order] for c in columns)
    return codes, quantities, prices, times


def _present_cells(
    born: np.ndarray, n_boundaries: int
) -> tuple[np.ndarray, slice | np.ndarray, tuple[int | np.ndarray, slice | np.ndarray]]:
    """Which (snapshot, key) cells the snapshots list: key k from snapshot ``born[k]`` on.

    Args:
        born: float64, one per key: the first snapshot holding the key (``n_boundaries``: none).
        n_boundaries: how many snapshots are taken.

    Returns:
        ``(b_index, keys, cells)``: each listed row's snapshot number (int64), the keys to take
        from the per-key arrays, and the index of the rows' cells in the (snapshot, key) grid,
        in (snapshot, key) order. One snapshot holding every key (the common case) takes the
        per-key arrays as they are: ``keys`` is a whole slice, no index array is built.
    """
    if n_boundaries == 1 and (born == 0).all():
        return np.zeros(len(born), dtype=np.int64), slice(None), (0, slice(None))
    present = born[np.newaxis, :] <= np.arange(n_boundaries)[:, np.newaxis]
    b_index, k_index = np.nonzero(present)
    return b_index, k_index, (b_index, k_index)
