"""Trade sources: where trades, reference data and marks come from (simulator, landing folder)."""

import csv
import dataclasses
import hashlib
import io
import logging
import os
import re
import stat
import time
import warnings
from collections.abc import Iterator, Set
from pathlib import Path
from typing import Protocol, runtime_checkable

import pandas as pd

from desk_pipeline.adapters.simulator import DeskSimulator
from desk_pipeline.domain.errors import DeskPipelineError
from desk_pipeline.domain.positions.trades import validate_trades
from desk_pipeline.domain.schema import QUARANTINE_DTYPES, TRADE_DTYPES, empty_frame
from desk_pipeline.domain.validation.quarantine import (
    quarantine_rows,
    quarantine_whole_source,
    unreadable_rows,
)
from desk_pipeline.domain.validation.rules import repeated_names, repeated_names_problem

log = logging.getLogger(__name__)

REFERENCE_FILES = ("instruments.csv", "prices.csv", "books.csv", "fx_rates.csv")
# Every landing batch's source starts so: ``landing:<name>#<content digest or why refused>``.
SOURCE_PREFIX = "landing:"
# A landing file larger than this is refused whole rather than read into memory.
MAX_FILE_BYTES = 512 * 1024 * 1024
# Python's csv refuses a field over 131,072 characters by default, which pandas reads: a file's
# ragged rows, split by csv (_split_records), stopped the run instead. A field is bounded by the
# file, and the rules quarantine an oversize cell with its reason.
csv.field_size_limit(MAX_FILE_BYTES)
# A landing file has its contract's columns (8 for trades) and may add others, which are ignored.
# pandas pays for every column, and for every field of a first row wider than the header, however
# few the rows (a 1.9 MB trade file with 200,000 header columns took 60-70 s and 790 MB each
# run): a file with a record wider than this is refused whole before it is parsed.
MAX_COLUMNS = 256
# Lines times columns a trade file may hold. Reading and validating cost per cell, most for bad
# rows (1 million rows of 8 empty cells, each quarantined: 18 CPU s, 1 GB), and a run that runs
# out of memory records nothing, so it would fail again every tick: a larger file is refused
# whole, to be split (2.5 million rows of the 8 contract columns).
MAX_CELLS = 20_000_000
# A field of a record as pandas' C parser reads one (quote '"', doubled inside quotes, spaces
# before it skipped): a quoted field runs over commas and line ends to its closing quote, and
# from there (or from its start, unquoted) to the next comma or line end.
_FIELD = re.compile(r' *(?:"[^"]*(?:""[^"]*)*"?)?[^,\r\n]*')
# pandas skips lines that are blank or of spaces and tabs only before a record: a record starts
# on the line of the first other character.
_SPACES = re.compile(r"[ \t\r\n]*")
# A file whose last line has no newline yet is read once it has not changed for this long:
# a writer at work appends more often; a file left that way is complete after all.
SETTLE_SECONDS = 0.25


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

        Either way ``domain.reference.validation.validate_instruments`` checks the rows before
        they are stored; the same holds for books, prices and FX rates.
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


class IngestedSources(Protocol):
    """Port: the batches a warehouse has ingested, by source name."""

    def ingested_sources(self, prefix: str) -> set[str]:
        """The source of every ingested batch whose source starts with ``prefix``."""
        ...


@runtime_checkable
class FileTradeSource(TradeSource, Protocol):
    """Port: a source of files, each read whole (landing:<folder>), named by their content."""

    def new_batches(self, ingested: IngestedSources) -> Iterator[SourceBatch]:
        """Batches of the files whose source (name and content) ``ingested`` does not hold."""
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
class Landed:
    """What reading one landing entry gave: its bytes, or why it was refused, or nothing yet.

    ``data`` is the complete content; ``refused`` is ``(label, reason)`` for an entry refused
    whole without being parsed; both None when the file is still being written.
    """

    data: bytes | None = None
    refused: tuple[str, str] | None = None


@dataclasses.dataclass(frozen=True)
class LandingFolderSource:
    """CSV files dropped in a folder, read like a landing zone (the contract of ARCHITECTURE.md).

    Every regular file whose name ends in ``.csv`` (any case, surrounding spaces ignored) is a
    trade file, except the reference files. Names starting with a dot, and names that do not
    end in ``.csv`` (``x.csv.part``, ``x.tmp``), are a writer's files in progress and are not
    read. A file is read only when complete: its last line ends with a newline, or it has not
    changed for ``settle_seconds`` (an empty one too); and it must not change while it is read.
    Anything else is refused whole with its reason, never opened when that could block or
    leak: a FIFO, a folder, a device, a link that leads out of the folder or nowhere, a file the
    desk may not read, a name that is not UTF-8, a file over MAX_FILE_BYTES (its size is read
    from the disk first). Files are ingested whole, whatever window asks. A file is named by its
    content (``landing:<name>#<SHA-256 prefix>``): one whose source is already ingested costs a
    read and a hash in :meth:`new_batches`, never a parse. One that cannot have the shape of a
    trade file (``shape_problem``: too many columns, or more than MAX_CELLS cells) is
    quarantined whole before it is parsed, and so skipped in turn by the next runs.
    """

    folder: Path
    settle_seconds: float = SETTLE_SECONDS

    def batches(self, start: pd.Timestamp, end: pd.Timestamp) -> Iterator[SourceBatch]:
        """One batch per trade file, in file-name order; files still being written wait."""
        return self._batches(frozenset())

    def new_batches(self, ingested: IngestedSources) -> Iterator[SourceBatch]:
        """One batch per trade file whose source ``ingested`` does not hold yet, by file name."""
        return self._batches(ingested.ingested_sources(SOURCE_PREFIX))

    def _batches(self, ingested: Set[str]) -> Iterator[SourceBatch]:
        for name in self._names():
            if name.strip().lower() in REFERENCE_FILES or not _is_trade_file(name):
                continue
            batch = self._batch(name, ingested)
            if batch is not None:
                yield batch

    def read_file(self, path: Path) -> SourceBatch:
        """Validate one trade file; an unreadable or refused file becomes one quarantine row.

        Raises:
            TradeSourceError: the file is still being written.
        """
        batch = self._batch(path.name)
        if batch is None:
            raise TradeSourceError(f"landing file {path.name} is still being written")
        return batch

    def _names(self) -> list[str]:
        if not self.folder.is_dir():
            raise TradeSourceError(f"landing folder {self.folder} does not exist")
        # Sorted by bytes: a name that is not UTF-8 (surrogate-escaped) still has its place.
        return sorted(os.listdir(self.folder), key=os.fsencode)

    def _batch(self, name: str, ingested: Set[str] = frozenset()) -> SourceBatch | None:
        """The batch of one entry; None while it is being written, or if ``ingested`` holds it."""
        landed = _read_landed(self.folder, name, self.settle_seconds)
        if landed.refused is not None:
            label, problem = landed.refused
            source = f"{SOURCE_PREFIX}{label}"
            if source in ingested:
                return None
            log.warning("landing entry %s refused whole: %s", label, problem)
            rejected = quarantine_whole_source(source, "refused_file", problem)
            return SourceBatch(source, 1, empty_frame(TRADE_DTYPES), rejected)
        if landed.data is None:
            log.info("landing file %s is still being written; left for the next run", name)
            return None
        data = landed.data
        source = f"{SOURCE_PREFIX}{name}#{hashlib.sha256(data).hexdigest()[:16]}"
        if source in ingested:
            log.debug("landing file %s: already ingested as %s", name, source)
            return None
        parsed = _parse_csv(data, len(data), MAX_CELLS)
        if parsed.rows is None:
            log.warning("landing file %s quarantined whole: %s", name, parsed.problem)
            rejected = quarantine_whole_source(source, "unreadable_file", parsed.problem)
            return SourceBatch(source, 1, empty_frame(TRADE_DTYPES), rejected)
        trades, rejected = validate_trades(parsed.rows, source=source)
        if not parsed.ragged.empty:
            log.warning("landing file %s: %d row(s) ragged", name, len(parsed.ragged))
            rejected = pd.concat([rejected, _ragged_quarantine(parsed.ragged, source)])
        return SourceBatch(source, len(parsed.rows) + len(parsed.ragged), trades, rejected)

    def _reference(self, name: str) -> pd.DataFrame:
        """A reference file's rows as received (strings, index = 1-based row number).

        The domain validates them (``domain.reference.validation``), quarantining bad rows; an
        unreadable or refused file becomes ``unreadable_rows`` and a missing file, or one still
        being written, no rows at all (the stored rows stay).
        """
        landed_as = [n for n in self._names() if n.strip().lower() == name]
        if not landed_as:
            return pd.DataFrame()
        landed = _read_landed(self.folder, landed_as[0], self.settle_seconds)
        if landed.refused is not None:
            log.warning("landing file %s refused whole: %s", *landed.refused)
            return unreadable_rows(landed.refused[1])
        if landed.data is None:
            log.info("landing file %s is still being written; left for the next run", name)
            return pd.DataFrame()
        parsed = _parse_csv(landed.data, len(landed.data))
        if parsed.rows is None or not parsed.ragged.empty:
            # Reference rows replace stored ones by key: a file with a row that cannot be
            # placed is refused whole, and the stored rows stay.
            problem = parsed.problem or _ragged_reason(parsed.ragged).iloc[0]
            log.warning("landing file %s quarantined whole: %s", name, problem)
            return unreadable_rows(problem)
        return parsed.rows

    def instruments(self) -> pd.DataFrame:
        """instruments.csv as received (see ``reference.validation.validate_instruments``)."""
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


def _ragged_reason(ragged: pd.DataFrame) -> pd.Series:
    """Why each ragged row is quarantined: its field count against the header's."""
    header = [c for c in ragged.columns if not str(c).startswith("(extra ")]
    count = ragged.notna().sum(axis=1)
    return count.map(
        lambda n: f"{n} fields where the header has {len(header)}: its values cannot be placed"
    ).rename(None)


def _ragged_quarantine(ragged: pd.DataFrame, source: str) -> pd.DataFrame:
    """Quarantine rows (``wrong_field_count``) for the ragged rows of ``source``."""
    return quarantine_rows(ragged, source, "wrong_field_count", _ragged_reason(ragged))


def _is_trade_file(name: str) -> bool:
    return name.strip().lower().endswith(".csv") and not name.startswith(".")


def _label(name: str) -> str:
    r"""``name`` as storable, printable text: bytes that are not UTF-8 shown as ``\xNN``."""
    return os.fsencode(name).decode("utf-8", "backslashreplace")


KINDS = {
    stat.S_IFDIR: "a folder",
    stat.S_IFIFO: "a FIFO (named pipe)",
    stat.S_IFSOCK: "a socket",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
}


def _read_landed(folder: Path, name: str, settle_seconds: float) -> Landed:
    """Read one entry of the landing folder safely (see LandingFolderSource for the rules)."""
    label = _label(name)
    if label != name:
        return Landed(
            refused=(f"{label}#name", "the file name is not UTF-8; rename the file in UTF-8")
        )
    path = folder / name
    try:
        status = os.lstat(path)
        if stat.S_ISLNK(status.st_mode):
            inside = Path(os.path.realpath(folder, strict=True))
            try:
                target = Path(os.path.realpath(path, strict=True))
            except OSError as err:  # dangling, or a loop of links
                reason = f"a symbolic link that leads nowhere ({err.strerror})"
                return Landed(refused=(f"{label}#link", f"{reason}; land the file itself"))
            if target.parent != inside:
                return Landed(
                    refused=(
                        f"{label}#link",
                        "a symbolic link out of the landing folder, never followed; land the "
                        "file itself",
                    )
                )
            path, status = target, os.stat(target)
        kind = KINDS.get(stat.S_IFMT(status.st_mode), "not a regular file")
        if not stat.S_ISREG(status.st_mode):
            return Landed(refused=(f"{label}#type", f"{kind}, not a file; remove it"))
        if status.st_size > MAX_FILE_BYTES:
            # Refused on its size on disk: it is never read into memory.
            reason = f"{status.st_size} bytes, over the {MAX_FILE_BYTES} byte limit; split it"
            return Landed(refused=(f"{label}#size", reason))
        # O_NONBLOCK: should the entry have become a FIFO since lstat, opening it cannot hang.
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except PermissionError:
        return Landed(refused=(f"{label}#access", "the desk may not read it; grant read access"))
    except OSError as err:
        return Landed(refused=(f"{label}#access", f"cannot be opened ({err.strerror})"))
    with os.fdopen(fd, "rb") as file:
        before = os.fstat(file.fileno())
        if not stat.S_ISREG(before.st_mode):
            return Landed(refused=(f"{label}#type", "not a regular file; remove it"))
        data = file.read()
        after = os.fstat(file.fileno())
    if (before.st_size, before.st_mtime_ns) != (after.st_size, after.st_mtime_ns):
        return Landed()  # changed while read
    if data.endswith(b"\n"):
        return Landed(data=data)
    # The last line is cut, or nothing is written yet (a writer's open() makes an empty file
    # before its first write): a writer may still be at it. Complete once it holds still.
    age = time.time() - after.st_mtime_ns / 1e9
    if age < settle_seconds:
        time.sleep(settle_seconds - age)
        now = os.stat(path)
        if (now.st_size, now.st_mtime_ns) != (after.st_size, after.st_mtime_ns):
            return Landed()
    return Landed(data=data)


@dataclasses.dataclass(frozen=True)
class ParsedCsv:
    """A CSV file's rows as strings under its header, indexed by 1-based row number.

    ``ragged`` holds the rows whose field count is not the header's, indexed the same way: the
    header's names over their first fields, ``(extra N)`` over any more; never in ``rows``, as
    their cells cannot be placed. ``problem`` is why the file is refused whole (then no rows).
    """

    rows: pd.DataFrame | None
    ragged: pd.DataFrame
    problem: str = ""


def _refused(problem: str) -> ParsedCsv:
    return ParsedCsv(None, pd.DataFrame(), problem)


def _parse_csv(data: bytes, size: int, max_cells: int | None = None) -> ParsedCsv:
    """The rows of a CSV file (:class:`ParsedCsv`), or the reason it is refused whole.

    A file that cannot have the shape of a landing file (:func:`shape_problem`) is refused before
    pandas reads it; ``max_cells`` bounds its lines times columns too. When pandas cannot split
    a row into the header's fields (one more or fewer, a quote left open), the file is split
    again record by record (:func:`_split_records`): its other rows are read, that one is ragged.
    """
    if size > MAX_FILE_BYTES:
        return _refused(f"file is {size} bytes, over the {MAX_FILE_BYTES} byte limit")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        return _refused(f"not UTF-8: {err}")
    if not text.strip():
        return _refused("file is empty")
    problem = shape_problem(text, max_cells)
    if problem is not None:
        return _refused(problem)
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
        # pandas renames a repeated name ("trade_id" twice reads as "trade_id", "trade_id.1"),
        # so repeats are found in the header as written: its first row read as data.
        header = pd.read_csv(
            io.StringIO(text),
            header=None,
            nrows=1,
            dtype=str,
            keep_default_na=False,
            skipinitialspace=True,
            index_col=False,
        )
    except (pd.errors.ParserError, pd.errors.ParserWarning) as err:
        return _split_records(text, err)
    except ValueError as err:
        return _refused(f"not a readable CSV file: {err}")
    # The names pandas gave are compared too: a blank one named like a written one.
    raw.columns = [str(c).strip().lower() for c in raw.columns]
    repeated = {*repeated_names(header.iloc[0]), *repeated_names(raw.columns)}
    if repeated:
        return _refused(repeated_names_problem(sorted(repeated)))
    raw.index = pd.RangeIndex(1, len(raw) + 1)
    return ParsedCsv(raw, pd.DataFrame())


def _split_records(text: str, err: Exception) -> ParsedCsv:
    """The file read record by record (Python's csv), as pandas would have read it.

    Blank lines skipped, spaces after a delimiter dropped, rows numbered from 1 after the header.

    Only for a file pandas refused (``err``): a row it cannot split stopped the whole file, and
    one trailing comma then held back every trade in it.
    """
    try:
        records = [r for r in csv.reader(io.StringIO(text), skipinitialspace=True) if r]
    except csv.Error as unsplit:
        return _refused(f"not a readable CSV file: {err}; {unsplit}")
    if not records:
        return _refused(f"not a readable CSV file: {err}")
    # A blank name as pandas names it.
    header = [name.strip().lower() or f"unnamed: {i}" for i, name in enumerate(records[0])]
    repeated = repeated_names(records[0])
    if repeated:
        return _refused(repeated_names_problem(repeated))
    numbered = list(enumerate(records[1:], start=1))
    fitting = [(n, r) for n, r in numbered if len(r) == len(header)]
    ragged = [(n, r) for n, r in numbered if len(r) != len(header)]
    if not ragged:  # pandas refused the file for another reason, which the records do not show
        return _refused(f"not a readable CSV file: {err}")
    rows = pd.DataFrame(
        [r for _, r in fitting], index=[n for n, _ in fitting], columns=header, dtype=str
    )
    width = max(len(header), *(len(r) for _, r in ragged))
    names = header + [f"(extra {i})" for i in range(1, width - len(header) + 1)]
    cut = pd.DataFrame(
        [r + [None] * (width - len(r)) for _, r in ragged],
        index=[n for n, _ in ragged],
        columns=names,
    )
    return ParsedCsv(rows, cut)


def shape_problem(text: str, max_cells: int | None = None) -> str | None:
    """Why ``text`` cannot be a landing CSV file, judged before any parse; None if it can be.

    Its header and first row (blank lines skipped, as pandas does) hold at most MAX_COLUMNS
    fields each; with ``max_cells``, its lines times its header's columns are at most that.
    A later row of another width is left to pandas, which refuses the file at once. Costs one
    scan of the first two records (at most MAX_COLUMNS + 1 fields each) and a count of lines.
    """
    widths = _widths(text, records=2, limit=MAX_COLUMNS)
    for row, width in enumerate(widths):
        if width > MAX_COLUMNS:
            what = "the header has more than" if row == 0 else "the first row has more than"
            return (
                f"{what} {MAX_COLUMNS} fields: a landing file has at most {MAX_COLUMNS} columns "
                "(its contract's and any others); remove the extra columns"
            )
    if max_cells is None or not widths:
        return None
    lines = max(text.count("\n"), text.count("\r"))
    if lines * widths[0] > max_cells:
        return (
            f"{lines:,} lines of {widths[0]} columns, {lines * widths[0]:,} cells: over the "
            f"limit of {max_cells:,} cells a file may hold; split it into smaller files"
        )
    return None


def _widths(text: str, records: int, limit: int) -> list[int]:
    """Fields in each of the first ``records`` records of ``text``, counted up to ``limit + 1``."""
    widths: list[int] = []
    at, end = 0, len(text)
    while len(widths) < records:
        spaces = _SPACES.match(text, at)
        assert spaces is not None  # the pattern matches nothing at worst
        first = spaces.end()
        if first == end:
            break
        at = max(at, text.rfind("\n", at, first) + 1, text.rfind("\r", at, first) + 1)
        fields = 0
        while fields <= limit:
            field = _FIELD.match(text, at)
            assert field is not None  # every part of the pattern is optional
            at, fields = field.end(), fields + 1
            if at >= end or text[at] != ",":
                break
            at += 1
        widths.append(fields)
        if fields > limit:
            break
    return widths


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
