"""The sql:<url> trade source: an upstream booking system's ``trades`` table, read by sequence."""

import dataclasses
import datetime as dt
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa

from desk_pipeline.adapters.configuration import connect_args
from desk_pipeline.adapters.trade_sources import SourceBatch, TradeSourceError
from desk_pipeline.domain.positions.trades import validate_trades
from desk_pipeline.domain.schema import TRADE_COLUMNS

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
    such a row would sit below the watermark and never be read. A row whose ``seq`` is NULL is
    not sequenced yet and is not read (each read logs how many wait so).

    Every value is read as the text a CSV file would hold (PostgreSQL casts it to text, in
    UTC for times), so no value can make the driver raise: an infinite timestamp, a NaN, a
    BLOB or invalid UTF-8 in a SQLite column, or text in a typed SQLite column is validated
    and quarantined like any landing row, and only an unreachable or misshapen table stops a
    run.
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
        engine = _engine(self.url)
        try:
            table = self._reflect(engine)
            self._warn_unsequenced(engine, table)
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
        # PostgreSQL tells "trade_id" from "Trade_ID"; the landing contract (and its validator)
        # does not, and reads only the first: a table with both is ambiguous, as such a CSV file.
        names = pd.Index([str(c.name).strip().lower() for c in table.columns])
        read = names.isin([SEQ, *TRADE_COLUMNS])
        repeated = sorted(set(names[names.duplicated() & read]))
        if repeated:
            raise TradeSourceError(
                f"sql source: table {self.table!r} has columns named alike (case-insensitive): "
                f"{repeated}; keep one of each"
            )
        if not isinstance(table.c[SEQ].type, sa.Integer):
            raise TradeSourceError(
                f"sql source: column {SEQ!r} of {self.table!r} is {table.c[SEQ].type}; "
                "expected an integer sequence number"
            )
        return table

    def _warn_unsequenced(self, engine: sa.Engine, table: sa.Table) -> None:
        query = sa.select(sa.func.count()).select_from(table).where(table.c[SEQ].is_(None))
        try:
            with engine.connect() as conn:
                waiting = conn.execute(query).scalar()
        except sa.exc.SQLAlchemyError as err:
            raise TradeSourceError(f"sql source: reading {self.table!r} failed: {err}") from err
        if waiting:
            log.warning("sql source: %s rows of %s have no %s yet", waiting, self.table, SEQ)

    def _read(self, engine: sa.Engine, table: sa.Table, watermark: int | None) -> pd.DataFrame:
        """The next rows after ``watermark`` as strings (the CSV contract), indexed by seq."""
        postgres = engine.dialect.name == "postgresql"
        columns = [
            # PostgreSQL types every value it sends (psycopg refuses an infinite timestamp):
            # cast there. Elsewhere take the stored value without the column type's processing
            # (SQLAlchemy's SQLite DATETIME raises on text it cannot parse).
            (
                sa.cast(table.c[c], sa.Text) if postgres else sa.type_coerce(table.c[c], sa.String)
            ).label(c)
            for c in TRADE_COLUMNS
            if c in table.c
        ]
        query = (
            sa.select(table.c[SEQ], *columns)
            .where(table.c[SEQ].is_not(None))
            .order_by(table.c[SEQ])
            .limit(self.batch_rows)
        )
        if watermark is not None:
            query = query.where(table.c[SEQ] > watermark)
        try:
            with engine.connect() as conn:
                if postgres:
                    # Times cast to text carry the session's zone: make it UTC, for this read only.
                    conn.execute(sa.text("SET LOCAL TIME ZONE 'UTC'"))
                result = conn.execute(query)
                rows = pd.DataFrame(result.all(), columns=list(result.keys()), dtype=object)
        except sa.exc.SQLAlchemyError as err:
            raise TradeSourceError(f"sql source: reading {self.table!r} failed: {err}") from err
        sequence = pd.to_numeric(rows.pop(SEQ), errors="coerce")
        if sequence.isna().any() or (sequence % 1 != 0).any():
            # Only SQLite lets an INTEGER column hold text: the upstream broke its own key.
            raise TradeSourceError(
                f"sql source: {self.table!r} has a {SEQ} that is not an integer; "
                f"first values read: {list(sequence.head(5))}"
            )
        # Typed upstream values become the strings a CSV would hold, so one validation applies.
        text = rows.map(_as_text)
        text.index = pd.Index(sequence.astype("int64"), name=None)
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


def _engine(url: str) -> sa.Engine:
    """An engine on the upstream; SQLite text that is not UTF-8 reads with U+FFFD, not an error.

    Raises:
        TradeSourceError: a SQLite upstream file that does not exist (connecting would create
            an empty one, whose missing table then failed the run).
    """
    path = url.removeprefix("sqlite:///")
    if url.startswith("sqlite:///") and path and not Path(path).exists():
        raise TradeSourceError(f"sql source: no database file at {path}")
    engine = sa.create_engine(url, connect_args=connect_args(url))
    if engine.dialect.name == "sqlite":

        @sa.event.listens_for(engine, "connect")
        def _lenient_text(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.text_factory = lambda data: data.decode("utf-8", "replace")

    return engine


def _as_text(value: Any) -> str | None:
    """One upstream cell as CSV text; NULL stays missing, times become ISO 8601."""
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, float):
        return repr(value)
    return str(value)
