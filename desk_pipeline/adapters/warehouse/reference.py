"""Reference data and marks: instruments, books, prices and FX rates.

Owns ``instruments``, ``books``, ``prices`` and ``fx_rates``; rejected rows go to the quarantine
through ``quarantine._store_quarantine`` in the same transaction.
"""

import dataclasses
import logging
from typing import Any

import pandas as pd
import sqlalchemy as sa

from desk_pipeline.adapters import tables as t
from desk_pipeline.adapters.warehouse.bulk import _bulk_upsert, _read
from desk_pipeline.adapters.warehouse.codec import _nulls_as_none, now_micros
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
            Rows written per table name, and ``quarantined``: rejected inputs not seen before.
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
            for table, frame, keys in inputs:
                if frame is None:
                    written[table.name] = 0
                    continue
                rows = _reference_rows(frame, keys)
                _bulk_upsert(conn, table, rows, keys=keys)
                written[table.name] = len(rows)
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
