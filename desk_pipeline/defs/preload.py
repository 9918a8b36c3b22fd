"""Loads the position engine's compiled kernels; imported by the run launcher's forkserver only.

numba loads a kernel from its on-disk cache at the kernel's first call in each process, once per
argument types: about 170 ms of every run worker's first tick or EOD, since each worker is a
fresh fork of the forkserver. Calling the engine here, on tiny frames with the id
representations it is handed (the warehouse's categorical trades, with 8- and 16-bit codes, and
opening positions with string ids), loads them once in the forkserver, and every worker forked
from it inherits them. Listed in ``launcher.DEFAULT_CODE``; nothing else imports it.

Trades in order and trades the engine must reorder (at desk scale trades share a millisecond)
are two argument types of the kernel: the prices of trades in order are pandas' read-only view,
those of reordered trades a writable copy. Both are loaded; on a cold disk cache (a new install,
a new checkout, a change to the engine) both are compiled here, about 5 s each, not in a run.
"""

import numpy as np
import pandas as pd

from desk_pipeline.domain.positions.engine import roll_positions
from desk_pipeline.domain.schema import POSITION_STATE_DTYPES, TRADE_DTYPES, conform, empty_frame

# Enough instruments for 16-bit categorical codes (pandas picks the smallest width).
_WIDE = 200


def _trades(instruments: int) -> pd.DataFrame:
    """Two trades per instrument in one book, ids as categoricals over ``instruments`` ids."""
    ids = [f"I{i:04d}" for i in range(instruments)] * 2
    frame = pd.DataFrame(
        {
            "trade_id": [f"T{i:05d}" for i in range(len(ids))],
            "version": 1,
            "status": "NEW",
            "book_id": "B",
            "instrument_id": ids,
            "quantity": np.where(np.arange(len(ids)) < instruments, 2.0, -1.0),
            "price": 1.0,
            "trade_time": pd.Timestamp("2026-01-02", tz="UTC")
            + pd.to_timedelta(np.arange(len(ids)), unit="s"),
        }
    )
    frame = conform(frame, TRADE_DTYPES)
    return frame.astype({"book_id": "category", "instrument_id": "category"})


def warm_up() -> None:
    """Run the engine once per id representation and trade order (results discarded)."""
    as_of = [pd.Timestamp("2026-01-03", tz="UTC")]
    for instruments in (2, _WIDE):
        trades = _trades(instruments)
        rolled = roll_positions(empty_frame(POSITION_STATE_DTYPES), trades, as_of)
        opening = conform(rolled, POSITION_STATE_DTYPES)
        roll_positions(opening, trades, as_of)
        roll_positions(opening, conform(trades, TRADE_DTYPES), as_of)
        roll_positions(opening, trades.iloc[::-1], as_of)  # reordered by the engine


warm_up()
