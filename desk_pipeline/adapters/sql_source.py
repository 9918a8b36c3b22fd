"""The sql:<url> trade source: an upstream booking system's ``trades`` table, read by sequence."""

import dataclasses
import datetime as dt
import logging
from collections.abc import Iterator
from typing import Any

import pandas as pd
import sqlalchemy as sa

from desk_pipeline.adapters.trade_sources import SourceBatch, TradeSourceError
from desk_pipeline.domain.schema import TRADE_COLUMNS
from desk_pipeline.domain.trades import validate_trades

log = logging.getLogger(__name__)

# The upstream table has the trade columns (the landing contract) plus this sequence number.
SEQ = "seq"
DEFAULT_BATCH_ROWS = 50_000


@dataclasses.dataclass(frozen=True)
class SqlTableSource:
    """Trades from an upstream ``trades`` table, incrementally by its ``seq`` column.

    The table holds the landing CSV columns (``version`` and ``status`` may be absent or NULL)
    plus ``seq``, an integer the upstream assigns in commit order. Each batch is the next rows
    by ``seq`` and carries the highest ``seq`` it holds as its watermark. The warehouse stores
    the batch and advances the watermark in one transaction, so a crash either keeps both or
    neither: a rerun reads the same rows again (idempotent) and no row is ever skipped.

    Caveat for the upstream: a row must not become visible with a ``seq`` below one already
    visible (assign ``seq`` in commit order, e.g. from a single writer or at commit time);
    such a row would sit below the watermark and never be read.
    """

    url: str
    table: str = "trades"
    batch_rows: int = DEFAULT_BATCH_ROWS

    @property
    def watermark_key(self) -> str:
        """Names this source in the warehouse's watermarks, without credentials."""
        safe = sa.engine.make_url(self.url).render_as_string(hide_password=True)
        return f"sql:{safe}#{self.table}"

    def batches_after(self, watermark: int | None) -> Iterator[SourceBatch]:
        """Batches of at most ``batch_rows`` rows with ``seq > watermark`` (None: all), by seq."""
        engine = sa.create_engine(self.url)
        try:
            table = self._reflect(engine)
            while True:
                raw = self._read(engine, table, watermark)
                if raw.empty:
                    return
                high = int(raw.index.max())
                source = f"{self.watermark_key}#seq={int(raw.index.min())}-{high}"
                trades, rejected = validate_trades(raw, source=source)
                log.info("sql source: %s rows after seq %s", len(raw), watermark)
                yield SourceBatch(
                    source, len(raw), trades, rejected, watermark=(self.watermark_key, high)
                )
                watermark = high
        finally:
            engine.dispose()

    def batches(self, start: pd.Timestamp, end: pd.Timestamp) -> Iterator[SourceBatch]:
        """Every row of the table (the window is ignored; prefer ``batches_after``)."""
        return self.batches_after(None)

    def _reflect(self, engine: sa.Engine) -> sa.Table:
        try:
            table = sa.Table(self.table, sa.MetaData(), autoload_with=engine)
        except sa.exc.SQLAlchemyError as err:
            raise TradeSourceError(f"sql source: cannot read table {self.table!r}: {err}") from err
        required = (SEQ, "trade_id", "book_id", "instrument_id", "quantity", "price", "trade_time")
        missing = [c for c in required if c not in table.c]
        if missing:
            raise TradeSourceError(
                f"sql source: table {self.table!r} lacks columns {missing}; "
                f"expected the landing CSV columns plus {SEQ!r}"
            )
        return table

    def _read(self, engine: sa.Engine, table: sa.Table, watermark: int | None) -> pd.DataFrame:
        """The next rows after ``watermark`` as strings (the CSV contract), indexed by seq."""
        columns = [table.c[c] for c in TRADE_COLUMNS if c in table.c]
        query = sa.select(table.c[SEQ], *columns).order_by(table.c[SEQ]).limit(self.batch_rows)
        if watermark is not None:
            query = query.where(table.c[SEQ] > watermark)
        try:
            with engine.connect() as conn:
                result = conn.execute(query)
                rows = pd.DataFrame(result.all(), columns=list(result.keys()), dtype=object)
        except sa.exc.SQLAlchemyError as err:
            raise TradeSourceError(f"sql source: reading {self.table!r} failed: {err}") from err
        index = pd.Index(rows.pop(SEQ).astype("int64"), name=None)
        # Typed upstream values become the strings a CSV would hold, so one validation applies.
        text = rows.map(_as_text)
        text.index = index
        return text

    def instruments(self) -> pd.DataFrame:
        """No reference data comes from a booking system's trades table (as a missing file)."""
        return pd.DataFrame()

    def books(self) -> pd.DataFrame:
        """No books: the ranking uses its documented defaults."""
        return pd.DataFrame()

    def prices(self, start_date: pd.Timestamp, end_date: pd.Timestamp) -> pd.DataFrame:
        """No marks."""
        return pd.DataFrame()

    def fx_rates(self, start_date: pd.Timestamp, end_date: pd.Timestamp) -> pd.DataFrame:
        """No FX rates."""
        return pd.DataFrame()


def _as_text(value: Any) -> str | None:
    """One upstream cell as CSV text; NULL stays missing, times become ISO 8601."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, float):
        return repr(value)
    return str(value)
