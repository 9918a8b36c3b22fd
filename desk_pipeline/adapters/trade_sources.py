"""Trade sources: where trades, reference data and marks come from (simulator, landing folder)."""

import dataclasses
import hashlib
import io
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import pandas as pd

from desk_pipeline.adapters.simulator import DeskSimulator
from desk_pipeline.domain.errors import DeskPipelineError
from desk_pipeline.domain.schema import (
    BOOK_DTYPES,
    FX_DTYPES,
    INSTRUMENT_DTYPES,
    PRICE_DTYPES,
    QUARANTINE_DTYPES,
    TRADE_DTYPES,
    empty_frame,
)
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
    """

    source: str
    received: int
    trades: pd.DataFrame
    rejected: pd.DataFrame


class TradeSource(Protocol):
    """Port: anything the desk can ingest trades, reference data and marks from."""

    def batches(self, start: pd.Timestamp, end: pd.Timestamp) -> Iterator[SourceBatch]:
        """Batches holding the trades available for [start, end) that may not be ingested yet."""
        ...

    def instruments(self) -> pd.DataFrame:
        """Instrument reference data (INSTRUMENT_DTYPES)."""
        ...

    def books(self) -> pd.DataFrame:
        """Book reference data (BOOK_DTYPES)."""
        ...

    def prices(self, start_date: pd.Timestamp, end_date: pd.Timestamp) -> pd.DataFrame:
        """Marks with price_date in [start_date, end_date] (PRICE_DTYPES)."""
        ...

    def fx_rates(self, start_date: pd.Timestamp, end_date: pd.Timestamp) -> pd.DataFrame:
        """FX rates with rate_date in [start_date, end_date] (FX_DTYPES)."""
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

    def _reference(
        self, name: str, dtypes: dict[str, str], dates: tuple[str, ...] = ()
    ) -> pd.DataFrame:
        path = self.folder / name
        if not path.exists():
            return empty_frame(dtypes)
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        missing = [c for c in dtypes if c not in frame.columns]
        if missing:
            raise TradeSourceError(f"{path}: missing columns {missing}")
        frame = frame.loc[:, list(dtypes)].replace("", None)
        for column, dtype in dtypes.items():
            if dtype.startswith("datetime"):
                frame[column] = pd.to_datetime(frame[column], errors="coerce")
            elif dtype in ("float64", "int64"):
                frame[column] = pd.to_numeric(frame[column], errors="coerce")
        frame = frame.astype({c: d for c, d in dtypes.items() if d != "int64"})
        return frame.reset_index(drop=True)

    def instruments(self) -> pd.DataFrame:
        """instruments.csv, or no instruments."""
        return self._reference("instruments.csv", dict(INSTRUMENT_DTYPES))

    def books(self) -> pd.DataFrame:
        """books.csv, or no books (the ranking then uses its documented defaults)."""
        books = self._reference("books.csv", dict(BOOK_DTYPES))
        return books.astype({"holding_period_days": "int64"})

    def prices(self, start_date: pd.Timestamp, end_date: pd.Timestamp) -> pd.DataFrame:
        """prices.csv rows up to ``end_date`` (older marks are kept: a stale mark is reported)."""
        prices = self._reference("prices.csv", dict(PRICE_DTYPES))
        return prices[prices["price_date"] <= end_date].reset_index(drop=True)

    def fx_rates(self, start_date: pd.Timestamp, end_date: pd.Timestamp) -> pd.DataFrame:
        """fx_rates.csv rows up to ``end_date``."""
        rates = self._reference("fx_rates.csv", dict(FX_DTYPES))
        return rates[rates["rate_date"] <= end_date].reset_index(drop=True)


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
        raw = pd.read_csv(
            io.StringIO(text), dtype=str, keep_default_na=False, skipinitialspace=True
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as err:
        return None, f"not a readable CSV file: {err}"
    raw.columns = [str(c).strip().lower() for c in raw.columns]
    raw.index = pd.RangeIndex(1, len(raw) + 1)
    return raw, ""


def trade_source_from(spec: str) -> TradeSource:
    """Build the source named by DESK_TRADE_SOURCE: ``simulator`` or ``landing:<folder>``."""
    kind, _, argument = spec.partition(":")
    if kind == "simulator":
        return SimulatorSource()
    if kind == "landing" and argument:
        return LandingFolderSource(Path(argument).expanduser())
    raise TradeSourceError(
        f"DESK_TRADE_SOURCE={spec!r} is not understood; use 'simulator', 'landing:<folder>' "
        "or 'sql:<url>'"
    )
