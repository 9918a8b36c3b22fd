"""Position snapshots: the intraday snapshot of each 10-minute window, and the opening state.

Owns ``intraday_windows`` and ``intraday_positions``. The opening state also reads the trading
book's late changes and first trades and the daily book positions, through the functions of
trading_book.py and daily_book_position.py that take this store's connection.
"""

import dataclasses

import pandas as pd
import sqlalchemy as sa

from desk_pipeline.adapters import tables as t
from desk_pipeline.adapters.warehouse.bulk import _insert, _read
from desk_pipeline.adapters.warehouse.codec import now_micros, to_micros, with_quantity
from desk_pipeline.adapters.warehouse.daily_book_position import (
    _eod_headers_until,
    _eod_rows_of,
    _latest_eod_as_of,
)
from desk_pipeline.adapters.warehouse.engine import Store
from desk_pipeline.adapters.warehouse.trading_book import _first_trades, _late_changes
from desk_pipeline.domain.positions.restatement import stale_snapshots
from desk_pipeline.domain.schema import (
    POSITION_STATE_COLUMNS,
    POSITION_STATE_DTYPES,
    conform,
    require_columns,
)


class PositionSnapshotStore(Store):
    """Intraday snapshots, written and purged, and the valid stored state to roll forward from."""

    def opening(self, before: pd.Timestamp) -> "Opening":
        """The latest valid stored state at or before ``before``, to roll forward from.

        Prefers the latest non-stale intraday window when it is at least as recent as every
        book's end-of-day; otherwise each book's latest non-stale EOD, and for books without one
        the start of their history. Valid = no late trade arrived after it was computed.
        """
        read_at = now_micros()
        before_us = to_micros(before)
        with self._transaction("opening") as conn:
            changes = _late_changes(conn)
            books = _first_trades(conn)
            headers = _eod_headers_until(conn, before_us)
            headers = headers[~stale_snapshots(headers, changes)]
            latest = headers.sort_values("as_of_us", kind="stable").drop_duplicates(
                "book_id", keep="last"
            )
            windows = _read(
                conn,
                sa.select(t.intraday_windows)
                .where(t.intraday_windows.c.window_end_us <= before_us)
                .order_by(t.intraday_windows.c.window_end_us.desc())
                .limit(6),
            ).assign(book_id=None)
            windows = windows.rename(columns={"window_end_us": "as_of_us"})
            windows = windows[~stale_snapshots(windows, changes, any_book=True)]
            eod_until = latest["as_of_us"].max() if len(latest) else -1
            if len(windows) and windows["as_of_us"].iloc[0] >= eod_until:
                end_us = int(windows["as_of_us"].iloc[0])
                positions = _read(
                    conn,
                    sa.select(t.intraday_positions).where(
                        t.intraday_positions.c.window_end_us == end_us
                    ),
                    raw=True,
                )
                bounds = pd.Series(end_us, index=books.index, dtype="int64")
                return Opening(_state(positions), bounds, read_at)
            positions = _eod_rows_of(conn, list(latest["snapshot_id"]))
        bounds = books.astype("int64").copy()
        bounds.update(latest.set_index("book_id")["as_of_us"].astype("int64"))
        return Opening(_state(positions), bounds.astype("int64"), read_at)

    def replace_intraday(
        self, window_end: pd.Timestamp, positions: pd.DataFrame, read_at_us: int
    ) -> int:
        """Store the snapshot as of ``window_end``, replacing any earlier one of that window.

        ``positions`` are POSITION_STATE_COLUMNS (the engine's); their exact micro-units are
        stored, so the next tick rolls from the very state this one reached.
        """
        require_columns(positions, POSITION_STATE_COLUMNS, where="replace_intraday")
        end_us = to_micros(window_end)
        stored = [c.name for c in t.intraday_positions.columns if c.name != "window_end_us"]
        rows = conform(positions, POSITION_STATE_DTYPES)[stored].assign(window_end_us=end_us)
        with self._transaction(f"replace_intraday {window_end}") as conn:
            conn.execute(
                t.intraday_positions.delete().where(t.intraday_positions.c.window_end_us == end_us)
            )
            conn.execute(
                t.intraday_windows.delete().where(t.intraday_windows.c.window_end_us == end_us)
            )
            _insert(conn, t.intraday_positions, rows)
            conn.execute(
                t.intraday_windows.insert(), {"window_end_us": end_us, "computed_at_us": read_at_us}
            )
        return len(rows)

    def purge_intraday(self, before: pd.Timestamp) -> int:
        """Delete intraday snapshots older than ``before``; EODs are kept."""
        cutoff = to_micros(before)
        with self._transaction("purge_intraday") as conn:
            conn.execute(
                t.intraday_positions.delete().where(t.intraday_positions.c.window_end_us < cutoff)
            )
            result = conn.execute(
                t.intraday_windows.delete().where(t.intraday_windows.c.window_end_us < cutoff)
            )
        return result.rowcount


def _state(positions: pd.DataFrame) -> pd.DataFrame:
    """Stored snapshot rows (intraday or EOD) as the engine rolls from them."""
    return conform(with_quantity(positions), POSITION_STATE_DTYPES)


def _covered_until(conn: sa.Connection) -> int:
    """The latest instant (µs) any stored snapshot covers, intraday window or EOD; -1 if none.

    Trade ingestion asks it (through the repository) to tell a late change from a new trade.
    """
    eod = _latest_eod_as_of(conn)
    latest = conn.execute(sa.select(sa.func.max(t.intraday_windows.c.window_end_us))).scalar()
    return max(eod, -1 if latest is None else int(latest))


@dataclasses.dataclass(frozen=True)
class Opening:
    """A valid stored state to roll forward from.

    Attributes:
        positions: POSITION_STATE_COLUMNS, quantities exact in micro-units.
        bounds: per book_id, the time (µs) from which trades must still be applied.
        read_at_us: when it was read; a later late change invalidates what is computed from it.
    """

    positions: pd.DataFrame
    bounds: pd.Series
    read_at_us: int
