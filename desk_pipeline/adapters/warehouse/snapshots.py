"""Position snapshots as stored: intraday windows, end-of-day reads, stale marks, the opening state.

End-of-day writes (the keep-last rule and their events) are in eod.py.
"""

import dataclasses
from collections.abc import Sequence
from typing import Any

import pandas as pd
import sqlalchemy as sa

from desk_pipeline.adapters import tables as t
from desk_pipeline.adapters.warehouse.bulk import _chunks, _insert, _read, _read_empty
from desk_pipeline.adapters.warehouse.codec import from_micros, now_micros, to_micros
from desk_pipeline.adapters.warehouse.engine import Store
from desk_pipeline.domain.positions.restatement import stale_snapshots
from desk_pipeline.domain.schema import POSITION_DTYPES, conform


class SnapshotStore(Store):
    """Intraday snapshots (written and purged), stored end-of-day snapshots and stale marks."""

    def opening(self, before: pd.Timestamp) -> "Opening":
        """The latest valid stored state at or before ``before``, to roll forward from.

        Prefers the latest non-stale intraday window when it is at least as recent as every
        book's end-of-day; otherwise each book's latest non-stale EOD, and for books without one
        the start of their history. Valid = no late trade arrived after it was computed.
        """
        read_at = now_micros()
        before_us = to_micros(before)
        with self._transaction("opening") as conn:
            marks = _read(conn, sa.select(t.stale_marks))
            books = _read(conn, sa.select(t.trading_books)).set_index("book_id")["first_trade_us"]
            headers = _read(
                conn, sa.select(t.eod_snapshots).where(t.eod_snapshots.c.as_of_us <= before_us)
            )
            headers = headers[~stale_snapshots(headers, marks)]
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
            windows = windows[~stale_snapshots(windows, marks, any_book=True)]
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
                return Opening(conform(positions, POSITION_DTYPES), bounds, read_at)
            positions = self._eod_rows(conn, list(latest["snapshot_id"]))
        bounds = books.astype("int64").copy()
        bounds.update(latest.set_index("book_id")["as_of_us"].astype("int64"))
        return Opening(conform(positions, POSITION_DTYPES), bounds.astype("int64"), read_at)

    def replace_intraday(
        self, window_end: pd.Timestamp, positions: pd.DataFrame, read_at_us: int
    ) -> int:
        """Store the snapshot as of ``window_end``, replacing any earlier one of that window."""
        end_us = to_micros(window_end)
        rows = conform(positions, POSITION_DTYPES).assign(window_end_us=end_us)
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

    def eod(self, book_id: str, business_date: str) -> tuple[dict[str, Any], pd.DataFrame] | None:
        """The stored end-of-day of one book and day: header and every position row, or None.

        One statement joins header and rows, so a reader never sees a mix of two snapshots.
        """
        e, p = t.eod_snapshots, t.eod_positions
        found = self._one_eod(
            "eod", book_id, business_date, [], e.outerjoin(p, p.c.snapshot_id == e.c.snapshot_id)
        )
        if found is None:
            return None
        header, held = found
        return header, conform(held, POSITION_DTYPES)

    def _one_eod(
        self,
        label: str,
        book_id: str,
        business_date: str,
        columns: list[sa.ColumnElement[Any]],
        source: sa.FromClause,
    ) -> tuple[dict[str, Any], pd.DataFrame] | None:
        """Header and position rows (plus ``columns`` from ``source``) of one stored EOD."""
        e, p = t.eod_snapshots, t.eod_positions
        query = (
            sa.select(
                e.c.snapshot_id,
                e.c.as_of_us,
                p.c.instrument_id,
                p.c.quantity,
                p.c.avg_price,
                p.c.realized_pnl,
                *columns,
            )
            .select_from(source)
            .where(e.c.book_id == book_id, e.c.business_date == business_date)
            .order_by(p.c.instrument_id)
        )
        with self._transaction(label) as conn:
            rows = _read(conn, query)
        if rows.empty:
            return None
        header = {
            "book_id": book_id,
            "business_date": business_date,
            "snapshot_id": rows["snapshot_id"].iloc[0],
            "as_of": from_micros(int(rows["as_of_us"].iloc[0])),
        }
        return header, rows.dropna(subset=["instrument_id"]).assign(book_id=book_id)

    def latest_eods(self) -> pd.DataFrame:
        """Every book's latest stored EOD: book_id, business_date, snapshot_id, as_of, positions.

        One statement, so a reader never mixes two snapshots of a book: DISTINCT ON (book_id)
        on PostgreSQL, ROW_NUMBER() over each book's days on SQLite. Rows are sorted by
        (book_id, instrument_id); flat positions are included (they carry realised P&L).
        """
        e, p = t.eod_snapshots, t.eod_positions
        if self.engine.dialect.name == "postgresql":
            latest = (
                sa.select(e.c.snapshot_id)
                .distinct(e.c.book_id)
                .order_by(e.c.book_id, e.c.business_date.desc())
            )
        else:
            ranked = sa.select(
                e.c.snapshot_id,
                sa.func.row_number()
                .over(partition_by=e.c.book_id, order_by=e.c.business_date.desc())
                .label("n"),
            ).subquery()
            latest = sa.select(ranked.c.snapshot_id).where(ranked.c.n == 1)
        return self._eod_position_rows(
            "latest_eods", p.c.snapshot_id.in_(latest), order_by=(p.c.book_id, p.c.instrument_id)
        )

    def eod_positions(self, business_dates: Sequence[str]) -> pd.DataFrame:
        """Stored EOD rows of the given days: business_date, snapshot_id, as_of and positions."""
        p = t.eod_positions
        return self._eod_position_rows("eod_positions", p.c.business_date.in_(list(business_dates)))

    def _eod_position_rows(
        self,
        operation: str,
        where: sa.ColumnElement[bool],
        order_by: Sequence[sa.ColumnElement[Any]] = (),
    ) -> pd.DataFrame:
        """EOD position rows matching ``where``, each with its header's ``as_of``."""
        e, p = t.eod_snapshots, t.eod_positions
        query = (
            sa.select(
                p.c.book_id,
                p.c.business_date,
                p.c.snapshot_id,
                e.c.as_of_us,
                p.c.instrument_id,
                p.c.quantity,
                p.c.avg_price,
                p.c.realized_pnl,
            )
            .select_from(p.join(e, e.c.snapshot_id == p.c.snapshot_id))
            .where(where)
            .order_by(*order_by)
        )
        with self._transaction(operation) as conn:
            rows = _read(conn, query, raw=True)
        return rows.assign(as_of=from_micros(rows["as_of_us"].to_numpy())).drop(columns="as_of_us")

    def eod_headers(self) -> pd.DataFrame:
        """Every stored EOD header, with ``stale`` and the trades that made it stale."""
        with self._transaction("eod_headers") as conn:
            headers = _read(conn, sa.select(t.eod_snapshots))
            marks = _read(conn, sa.select(t.stale_marks))
        return headers.assign(stale=stale_snapshots(headers, marks))

    def stale_marks(self) -> pd.DataFrame:
        """Every stale mark: book, earliest affected time, when and why (trade ids)."""
        with self._transaction("stale_marks") as conn:
            return _read(conn, sa.select(t.stale_marks))

    def eod_owners(self, business_dates: Sequence[str] | None = None) -> pd.DataFrame:
        """Every distinct (book_id, business_date, snapshot_id) of stored EOD headers and rows.

        Only of ``business_dates`` when given (an index serves them), else of every day.
        """
        e, p = t.eod_snapshots, t.eod_positions
        headers = sa.select(e.c.book_id, e.c.business_date, e.c.snapshot_id)
        rows = sa.select(p.c.book_id, p.c.business_date, p.c.snapshot_id).distinct()
        if business_dates is not None:
            headers = headers.where(e.c.business_date.in_(list(business_dates)))
            rows = rows.where(p.c.business_date.in_(list(business_dates)))
        query = sa.union(headers, rows)
        with self._transaction("eod_owners") as conn:
            result = conn.execute(query)
            return pd.DataFrame(result.all(), columns=["book_id", "business_date", "snapshot_id"])

    def _eod_rows(self, conn: sa.Connection, snapshot_ids: list[str]) -> pd.DataFrame:
        frames = [
            _read(
                conn,
                sa.select(t.eod_positions).where(t.eod_positions.c.snapshot_id.in_(chunk)),
                raw=True,
            )
            for chunk in _chunks(snapshot_ids)
        ]
        return pd.concat(frames) if frames else _read_empty(t.eod_positions)


@dataclasses.dataclass(frozen=True)
class Opening:
    """A valid stored state to roll forward from.

    Attributes:
        positions: POSITION_COLUMNS.
        bounds: per book_id, the time (µs) from which trades must still be applied.
        read_at_us: when it was read; a later stale mark invalidates what is computed from it.
    """

    positions: pd.DataFrame
    bounds: pd.Series
    read_at_us: int
