"""Reference data and marks: instruments, books, prices and FX rates.

Owns ``instruments``, ``books``, ``prices``, ``fx_rates`` and ``mark_changes``; rejected rows go
to the quarantine through ``quarantine._store_quarantine`` in the same transaction.
"""

import dataclasses
import logging
from typing import Any

import pandas as pd
import sqlalchemy as sa

from desk_pipeline.adapters import tables as t
from desk_pipeline.adapters.warehouse.bulk import _bulk_upsert, _chunks, _insert, _read
from desk_pipeline.adapters.warehouse.codec import _nulls_as_none, from_micros, now_micros
from desk_pipeline.adapters.warehouse.daily_book_position import _latest_eod_as_of
from desk_pipeline.adapters.warehouse.engine import Store, _serialised
from desk_pipeline.adapters.warehouse.quarantine import _store_quarantine
from desk_pipeline.domain.schema import (
    BOOK_DTYPES,
    FX_DTYPES,
    INSTRUMENT_DTYPES,
    PRICE_DTYPES,
    conform,
    empty_frame,
)

log = logging.getLogger(__name__)

# The dated marks: table, kind in mark_changes, key column, date column, value column.
_MARKS = (
    (t.prices, "price", "instrument_id", "price_date", "price"),
    (t.fx_rates, "fx", "currency", "rate_date", "usd_per_unit"),
)


class ReferenceStore(Store):
    """Reference rows replaced by key, with their quarantine, and read back by date range."""

    def replace_reference(
        self,
        *,
        instruments: pd.DataFrame | None = None,
        books: pd.DataFrame | None = None,
        prices: pd.DataFrame | None = None,
        fx_rates: pd.DataFrame | None = None,
        quarantined: pd.DataFrame | None = None,
    ) -> dict[str, int]:
        """Store validated reference rows and their quarantine in one transaction; idempotent.

        Each row replaces the stored row with the same key (instrument_id; book_id; instrument_id
        and price_date; currency and rate_date). Stored rows the input does not mention are kept,
        so a quarantined or missing row never erases good data. A rejected row already in the
        quarantine only gains an arrival (see :meth:`quarantined`).

        Args:
            instruments: INSTRUMENT_DTYPES, or None to leave instruments alone.
            books: BOOK_DTYPES, or None.
            prices: PRICE_DTYPES, or None.
            fx_rates: FX_DTYPES, or None.
            quarantined: QUARANTINE_DTYPES rows rejected by validation, or None.

        Returns:
            Rows written per table name, ``quarantined``: rejected inputs not seen before, and
            ``mark_changes``: the changed or late marks recorded.
        """
        inputs = (
            (t.instruments, instruments, ["instrument_id"]),
            (t.books, books, ["book_id"]),
            (t.prices, prices, ["instrument_id", "price_date"]),
            (t.fx_rates, fx_rates, ["currency", "rate_date"]),
        )
        written: dict[str, int] = {}
        stamp = now_micros()
        with self._transaction("replace_reference") as conn:
            _serialised(conn, "reference")
            changed = []
            for table, frame, keys in inputs:
                if frame is None:
                    written[table.name] = 0
                    continue
                rows = _reference_rows(frame, keys)
                written[table.name] = len(rows)
                if table.name in ("prices", "fx_rates"):
                    changes = _changed_marks(conn, table, rows)
                    changed.append(changes)
                    # A mark equal to the stored one is left as it is: a day's partition hands
                    # over PRICE_LOOKBACK of marks, most already stored by the days before it.
                    rows = rows.loc[changes.index]
                _bulk_upsert(conn, table, rows, keys=keys)
            written["mark_changes"] = _record_mark_changes(conn, changed, stamp)
            written["quarantined"] = _store_quarantine(conn, quarantined, stamp)
        log.info("replace_reference: %s", written)
        return written

    def reference_as_of(self, start_date: pd.Timestamp, end_date: pd.Timestamp) -> "ReferenceData":
        """Stored instruments and books, with the marks and FX rates dated in [start, end]."""
        first, last = (pd.Timestamp(d).strftime("%Y-%m-%d") for d in (start_date, end_date))
        p, f = t.prices, t.fx_rates
        # Raw reads: every column is text or a number, typed by _dated and conform below.
        with self._transaction("reference_as_of") as conn:
            instruments = _read(
                conn, sa.select(t.instruments).order_by(t.instruments.c.instrument_id), raw=True
            )
            books = _read(conn, sa.select(t.books).order_by(t.books.c.book_id), raw=True)
            prices = _read(
                conn,
                sa.select(p)
                .where(p.c.price_date.between(first, last))
                .order_by(p.c.instrument_id, p.c.price_date),
                raw=True,
            )
            fx_rates = _read(
                conn,
                sa.select(f)
                .where(f.c.rate_date.between(first, last))
                .order_by(f.c.currency, f.c.rate_date),
                raw=True,
            )
        return ReferenceData(
            instruments=_dated(instruments, "maturity_date", INSTRUMENT_DTYPES),
            books=conform(books, BOOK_DTYPES) if len(books) else empty_frame(BOOK_DTYPES),
            prices=_dated(prices, "price_date", PRICE_DTYPES),
            fx_rates=_dated(fx_rates, "rate_date", FX_DTYPES),
        )

    def open_mark_changes(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The mark changes no restatement has covered yet, and every stored mark of their keys.

        Returns:
            ``changes``: ``id``, ``kind`` (``price`` or ``fx``), ``key`` (instrument_id or
            currency), ``mark_date`` (datetime64) and ``arrived_at`` (UTC). ``marks``: ``kind``,
            ``key`` and ``mark_date`` of every stored price and FX rate of those keys.
        """
        c = t.mark_changes
        with self._transaction("open_mark_changes") as conn:
            changes = _read(conn, sa.select(c).where(c.c.restated_at_us.is_(None)), raw=True)
            marks = [
                _read(
                    conn,
                    sa.select(
                        sa.literal(kind).label("kind"),
                        table.c[key].label("key"),
                        table.c[date].label("mark_date"),
                    ).where(table.c[key].in_(keys)),
                    raw=True,
                )
                for table, kind, key, date, _ in _MARKS
                for keys in _chunks(sorted(set(changes.loc[changes["kind"] == kind, "key"])))
            ]
        changes = pd.DataFrame(
            {
                "id": changes["id"].astype("int64"),
                "kind": changes["kind"].astype(object),
                "key": changes["key"].astype(object),
                "mark_date": pd.to_datetime(changes["mark_date"]),
                "arrived_at": from_micros(changes["arrived_at_us"].astype("int64").to_numpy()),
            }
        )
        none = pd.DataFrame({"kind": [], "key": [], "mark_date": []}, dtype=object)
        stored = pd.concat([none, *marks], ignore_index=True)
        return changes, stored.assign(mark_date=pd.to_datetime(stored["mark_date"]))

    def confirm_mark_changes(self, ids: list[int]) -> None:
        """Mark these changes restated: the days that read them were valued and ranked again."""
        c = t.mark_changes
        stamp = now_micros()
        with self._transaction("confirm_mark_changes") as conn:
            for chunk in _chunks(ids):
                conn.execute(c.update().where(c.c.id.in_(chunk)).values(restated_at_us=stamp))


def _changed_marks(conn: sa.Connection, table: sa.Table, rows: pd.DataFrame) -> pd.DataFrame:
    """The marks of ``rows`` (to be stored in ``table``) that are new or differ from the stored.

    Read before the upsert, in its transaction. Returns ``kind``, ``key`` and ``mark_date``,
    indexed by the changed rows' labels in ``rows``.
    """
    _, kind, key, date, value = next(m for m in _MARKS if m[0] is table)
    if rows.empty:
        return pd.DataFrame(columns=["kind", "key", "mark_date"])
    first, last = rows[date].min(), rows[date].max()
    stored = _read(
        conn,
        sa.select(table.c[key], table.c[date], table.c[value].label("stored")).where(
            table.c[date].between(first, last)
        ),
        raw=True,
    )
    both = rows[[key, date, value]].merge(stored, on=[key, date], how="left")
    # Exact comparison: a value stored is read back bit for bit, so only a real change differs.
    changed = both[both["stored"].isna() | (both["stored"] != both[value])]
    return pd.DataFrame(
        {"kind": kind, "key": changed[key].to_numpy(), "mark_date": changed[date].to_numpy()},
        index=rows.index[changed.index],
    )


def _record_mark_changes(conn: sa.Connection, changed: list[pd.DataFrame], stamp: int) -> int:
    """Record the changed marks no later than the latest stored EOD; returns how many.

    A mark dated after every stored EOD has no valuation or ranking to make stale yet (a
    backfill's marks before its EODs exist), so it is not recorded.
    """
    latest = _latest_eod_as_of(conn)
    if not changed or latest < 0:
        return 0
    # as_of is the end of the latest EOD's day (UTC micros): a day later covers any time zone.
    until = (pd.Timestamp(latest, unit="us") + pd.Timedelta(days=1)).strftime("%Y-%m-%d")
    marks = pd.concat(changed, ignore_index=True)
    marks = marks[marks["mark_date"] <= until]
    _insert(conn, t.mark_changes, marks.assign(arrived_at_us=stamp))
    return len(marks)


@dataclasses.dataclass(frozen=True)
class ReferenceData:
    """Stored reference data and marks, typed with the schema's dtypes.

    Attributes:
        instruments: INSTRUMENT_DTYPES.
        books: BOOK_DTYPES.
        prices: PRICE_DTYPES.
        fx_rates: FX_DTYPES.
    """

    instruments: pd.DataFrame
    books: pd.DataFrame
    prices: pd.DataFrame
    fx_rates: pd.DataFrame


def _reference_rows(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Rows for a reference table: dates as YYYY-MM-DD, missing values as NULL, one per key."""
    rows = frame.drop_duplicates(keys, keep="last")
    dates = {
        str(name): values.dt.strftime("%Y-%m-%d")
        for name, values in rows.items()
        if pd.api.types.is_datetime64_any_dtype(values)
    }
    return _nulls_as_none(rows.assign(**dates))


def _dated(rows: pd.DataFrame, column: str, dtypes: Any) -> pd.DataFrame:
    """Stored reference rows typed with ``dtypes``, the YYYY-MM-DD ``column`` as dates."""
    if rows.empty:
        return empty_frame(dtypes)
    typed = conform(rows.assign(**{column: pd.to_datetime(rows[column])}), dtypes)
    # NULL text reads back as NaN under pandas 3; the domain's frames use None.
    text = [c for c, dtype in dtypes.items() if dtype == "object"]
    typed[text] = typed[text].astype(object).where(typed[text].notna(), None)
    return typed
