"""Trade sources: where trades, reference data and marks come from (simulator, landing folder)."""

import dataclasses
import hashlib
import io
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol, runtime_checkable

import pandas as pd

from desk_pipeline.adapters.simulator import DeskSimulator
from desk_pipeline.domain.errors import DeskPipelineError
from desk_pipeline.domain.reference import unreadable_rows
from desk_pipeline.domain.schema import QUARANTINE_DTYPES, TRADE_DTYPES, empty_frame
from desk_pipeline.domain.trades import quarantine_whole_source, validate_trades

log = logging.getLogger(__name__)

REFERENCE_FILES = ("instruments.csv", "prices.csv", "books.csv", "fx_rates.csv")
# A landing file larger than this is refused whole rather than read into memory.
MAX_FILE_BYTES = 512 * 1024 * 1024


class TradeSourceError(DeskPipelineError):
    """A trade source is misconfigured or unreachable."""


@dataclasses.dataclass(frozen=True)
class SourceBatch:
    """One unit of ingestion: validated trades and the rows rejected, from one named source.

    ``received == len(trades) + len(rejected)`` except for a whole-file rejection (one row).
    ``watermark`` is ``(source key, last sequence number)`` for an incremental source: the
    warehouse advances it in the transaction that stores the batch.
    """

    source: str
    received: int
    trades: pd.DataFrame
    rejected: pd.DataFrame
    watermark: tuple[str, int] | None = None


class TradeSource(Protocol):
    """Port: anything the desk can ingest trades, reference data and marks from."""

    def batches(self, start: pd.Timestamp, end: pd.Timestamp) -> Iterator[SourceBatch]:
        """Batches holding the trades available for [start, end) that may not be ingested yet."""
        ...

    def instruments(self) -> pd.DataFrame:
        """Instrument reference data: INSTRUMENT_DTYPES columns, typed or as received strings.

        Either way ``domain.reference.validate_instruments`` checks the rows before they are
        stored; the same holds for books, prices and FX rates.
        """
        ...

    def books(self) -> pd.DataFrame:
        """Book reference data (BOOK_DTYPES columns, typed or as received)."""
        ...

    def prices(self, start_date: pd.Timestamp, end_date: pd.Timestamp) -> pd.DataFrame:
        """Marks with price_date in [start_date, end_date], or more (PRICE_DTYPES columns)."""
        ...

    def fx_rates(self, start_date: pd.Timestamp, end_date: pd.Timestamp) -> pd.DataFrame:
        """FX rates with rate_date in [start_date, end_date], or more (FX_DTYPES columns)."""
        ...


@runtime_checkable
class IncrementalTradeSource(TradeSource, Protocol):
    """Port: a source read by sequence number (sql:<url>) rather than by time window."""

    watermark_key: str

    def batches_after(self, watermark: int | None) -> Iterator[SourceBatch]:
        """Batches of the rows with a sequence number above ``watermark`` (None: all rows)."""
        ...


@dataclasses.dataclass(frozen=True)
class SimulatorSource:
    """The deterministic demo desk: the same window always yields the same trades."""

    simulator: DeskSimulator = dataclasses.field(default_factory=DeskSimulator)

    def batches(self, start: pd.Timestamp, end: pd.Timestamp) -> Iterator[SourceBatch]:
        """One batch per UTC day overlapping [start, end), so long ranges stream."""
        day = start.tz_convert("UTC").normalize()
        while day < end:
            lo, hi = max(day, start), min(day + pd.Timedelta(days=1), end)
            trades = self.simulator.trades(lo, hi)
            source = f"simulator:{lo.isoformat()}/{hi.isoformat()}"
            yield SourceBatch(source, len(trades), trades, empty_frame(QUARANTINE_DTYPES))
            day += pd.Timedelta(days=1)

    def instruments(self) -> pd.DataFrame:
        """The simulator's instrument universe."""
        return self.simulator.instruments()

    def books(self) -> pd.DataFrame:
        """The simulator's books."""
        return self.simulator.books()

    def prices(self, start_date: pd.Timestamp, end_date: pd.Timestamp) -> pd.DataFrame:
        """The simulator's daily marks."""
        return self.simulator.prices(start_date, end_date)

    def fx_rates(self, start_date: pd.Timestamp, end_date: pd.Timestamp) -> pd.DataFrame:
        """The simulator's daily FX rates."""
        return self.simulator.fx_rates(start_date, end_date)


@dataclasses.dataclass(frozen=True)
class LandingFolderSource:
    """CSV files dropped in a folder (the landing contract of ARCHITECTURE.md).

    Every ``*.csv`` except the reference files is a trade file. Files are ingested whole,
    whatever window asks: the warehouse skips a file whose content it has already ingested.
    """

    folder: Path

    def batches(self, start: pd.Timestamp, end: pd.Timestamp) -> Iterator[SourceBatch]:
        """One batch per trade file, in file-name order."""
        if not self.folder.is_dir():
            raise TradeSourceError(f"landing folder {self.folder} does not exist")
        for path in sorted(self.folder.glob("*.csv")):
            if path.name not in REFERENCE_FILES:
                yield self.read_file(path)

    def read_file(self, path: Path) -> SourceBatch:
        """Validate one trade file; an unreadable file becomes one quarantine row."""
        source = f"landing:{path.name}"
        data = path.read_bytes()
        digest = hashlib.sha256(data).hexdigest()[:16]
        source = f"{source}#{digest}"
        raw, problem = _parse_csv(data, len(data))
        if raw is None:
            log.warning("landing file %s quarantined whole: %s", path.name, problem)
            rejected = quarantine_whole_source(source, "unreadable_file", problem)
            return SourceBatch(source, 1, empty_frame(TRADE_DTYPES), rejected)
        trades, rejected = validate_trades(raw, source=source)
        return SourceBatch(source, len(raw), trades, rejected)

    def _reference(self, name: str) -> pd.DataFrame:
        """A reference file's rows as received (strings, index = 1-based row number).

        The domain validates them (``domain.reference``), quarantining bad rows; an unreadable
        file becomes ``unreadable_rows`` and a missing file no rows at all.
        """
        path = self.folder / name
        if not path.exists():
            return pd.DataFrame()
        data = path.read_bytes()
        raw, problem = _parse_csv(data, len(data))
        if raw is None:
            log.warning("landing file %s quarantined whole: %s", name, problem)
            return unreadable_rows(problem)
        return raw

    def instruments(self) -> pd.DataFrame:
        """instruments.csv as received (see ``domain.reference.validate_instruments``)."""
        return self._reference("instruments.csv")

    def books(self) -> pd.DataFrame:
        """books.csv as received; no file = no books (the ranking then uses its defaults)."""
        return self._reference("books.csv")

    def prices(self, start_date: pd.Timestamp, end_date: pd.Timestamp) -> pd.DataFrame:
        """prices.csv as received, whole whatever the dates: the warehouse keys marks by date."""
        return self._reference("prices.csv")

    def fx_rates(self, start_date: pd.Timestamp, end_date: pd.Timestamp) -> pd.DataFrame:
        """fx_rates.csv as received, whole whatever the dates."""
        return self._reference("fx_rates.csv")


def _parse_csv(data: bytes, size: int) -> tuple[pd.DataFrame | None, str]:
    """Rows of a CSV file as strings indexed by 1-based row number, or None and the reason."""
    if size > MAX_FILE_BYTES:
        return None, f"file is {size} bytes, over the {MAX_FILE_BYTES} byte limit"
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        return None, f"not UTF-8: {err}"
    if not text.strip():
        return None, "file is empty"
    try:
        with warnings.catch_warnings():
            # A row with more fields than the header would shift every column (pandas makes
            # the extras an index): refuse the file rather than misread it.
            warnings.simplefilter("error", pd.errors.ParserWarning)
            raw = pd.read_csv(
                io.StringIO(text),
                dtype=str,
                keep_default_na=False,
                skipinitialspace=True,
                index_col=False,
            )
    except (pd.errors.ParserError, pd.errors.ParserWarning, ValueError) as err:
        return None, f"not a readable CSV file: {err}"
    raw.columns = [str(c).strip().lower() for c in raw.columns]
    if raw.columns.duplicated().any():
        repeated = sorted(set(raw.columns[raw.columns.duplicated()]))
        return None, f"column names repeat (case-insensitive): {repeated}"
    raw.index = pd.RangeIndex(1, len(raw) + 1)
    return raw, ""


def trade_source_from(spec: str) -> TradeSource:
    """Build the source named by DESK_TRADE_SOURCE: simulator, landing:<folder> or sql:<url>."""
    kind, _, argument = spec.partition(":")
    if kind == "simulator":
        return SimulatorSource()
    if kind == "landing" and argument:
        return LandingFolderSource(Path(argument).expanduser())
    if kind == "sql" and argument:
        # Imported here: sql_source builds on this module's SourceBatch and errors.
        from desk_pipeline.adapters.sql_source import SqlTableSource

        return SqlTableSource(argument)
    raise TradeSourceError(
        f"DESK_TRADE_SOURCE={spec!r} is not understood; use 'simulator', 'landing:<folder>' "
        "or 'sql:<url>'"
    )
