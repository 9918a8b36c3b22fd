"""One validation framework for received rows: trades and every kind of reference data.

A kind of input (trades, instruments, books, prices, FX rates) declares its rules once, as a
:class:`RuleSet`: one :class:`Column` per received column, each with a kind of cell (an id, free
text, a choice, a number, a whole number, a date, an instant) that reads the column and says, per
row, which of its checks fail and with what reason code. :func:`validate` applies a rule set to a
frame, vectorised (a few passes over each column, no per-row Python), and returns the valid rows
typed and the rejected ones as quarantine rows; nothing is lost.

The rules that hold for every kind, decided here once:

- **Headers**: received column names are read stripped and in lower case (as the landing
  contract reads them); names that then repeat quarantine every row (``repeated_columns``). A
  required column missing quarantines every row (``missing_columns``); extra columns are ignored.
- **Cells**: every cell is read as its text, stripped, a missing cell as ``""``; typed numbers and
  dates (the simulator's, an upstream table's) are taken as they are.
- **Control characters**: no kept text holds a control character (U+0000-U+001F, U+007F) or an
  unpaired surrogate (:data:`CONTROL_CHARACTERS`), ids and free text alike (``bad_<column>``).
  Free text used to allow tabs and line ends (only NUL and surrogates were refused there); the
  stricter rule is the one kept: such text breaks CSV exports, logs and one-line reports, and no
  reference file of the desk needs it.
- **Ids**: not blank, at most MAX_ID_LENGTH characters; a book id also at most
  ``trades.MAX_BOOK_ID_BYTES`` bytes in UTF-8 wherever it arrives (trades and books alike).
- **Precedence**: a row fails with the first failing check, in column order, then in each
  column's check order; every check has its own reason code and reason.
- **Repeats**: a key repeated with other content is quarantined (``conflicting_duplicate``), the
  first row winning; an exact repeat is dropped (reference data) or kept as accepted (trades, so
  that accepted + quarantined = received per file; the warehouse stores it once).

pandera was weighed for this and not taken: its lazy validation reports every failure of every
check, where the quarantine keeps the first per row with the desk's own reason code, so each rule
would still be a custom check plus a pass picking the first failure, and the strict readers
(``parsing``) stay the desk's own. It would add a dependency without removing code.
"""

import dataclasses
import hashlib
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import numpy as np
import pandas as pd

from desk_pipeline.domain import parsing
from desk_pipeline.domain.schema import QUARANTINE_DTYPES, conform, empty_frame, require_columns

# Control characters (NUL above all: PostgreSQL refuses it in text) and lone surrogates (no
# database encodes them; a CSV cannot hold them, another source can): never in kept text.
CONTROL_CHARACTERS = r"[\x00-\x1f\x7f\ud800-\udfff]"
# What no database column can store in text; replaced where quarantine rows keep received text.
UNSTORABLE = r"[\x00\ud800-\udfff]"
_UNSTORABLE = re.compile(UNSTORABLE)
# JSON escapes NUL (\u0000) but writes unpaired surrogates as they are.
_SURROGATES = re.compile(r"[\ud800-\udfff]")
# A source that cannot read a file at all (not UTF-8, not CSV) hands over one row with this single
# column holding the problem; validation turns it into one whole-file quarantine row.
UNREADABLE_COLUMN = "_unreadable_file"
MAX_ID_LENGTH = 64

# Rows failing a check (True = fails), its reason code and its reason.
Check = tuple[pd.Series, str, str]


class Received:
    """Received rows, each column read as text (or numbers) once however many rules read it."""

    def __init__(self, raw: pd.DataFrame) -> None:
        self.raw = raw
        self.index = raw.index
        self._texts: dict[str, pd.Series] = {}

    def text(self, column: str) -> pd.Series:
        """The column as stripped strings ("" where missing); an absent column reads as ""."""
        if column not in self._texts:
            self._texts[column] = text_of(self.raw, column)
        return self._texts[column]

    def numbers(self, column: str) -> pd.Series:
        """The column as float64; NaN where missing, absent or not a number.

        Typed numbers are taken as they are, text is read as a decimal number; booleans are not
        numbers.
        """
        if column not in self.raw.columns:
            return pd.Series(np.nan, index=self.index, dtype="float64")
        values = self.raw[column]
        typed = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
        return pd.to_numeric(values if typed else self.text(column), errors="coerce").astype(
            "float64"
        )


class Kind(Protocol):
    """A kind of cell: reads a received column into typed values and the checks they fail."""

    def read(self, cells: Received, field: str) -> tuple[pd.Series, list[Check]]:
        """``(values, checks)``: values with the rows' index, checks in order of precedence."""
        ...


@dataclasses.dataclass(frozen=True)
class Column:
    """A received column, its kind of cell and whether a file must have it."""

    name: str
    kind: Kind
    required: bool = True


@dataclasses.dataclass(frozen=True)
class RuleSet:
    """The rules of one kind of input, declared once.

    Attributes:
        columns: the columns read, in order of precedence of their checks.
        dtypes: the valid frame's columns and dtypes (each a column's values).
        key: the columns that identify a row; a repeat with other content conflicts.
        keep_exact_repeats: keep an exact repeat among the valid rows (else drop it).
        conflicts: per valid row (in order), whether it repeats an earlier key with other
            content; by default, any difference of the typed values counts.
    """

    columns: tuple[Column, ...]
    dtypes: Mapping[str, str]
    key: tuple[str, ...]
    keep_exact_repeats: bool = False
    conflicts: Callable[[pd.DataFrame], np.ndarray] | None = None

    @property
    def required(self) -> tuple[str, ...]:
        """The columns a file must have."""
        return tuple(c.name for c in self.columns if c.required)


def validate(
    raw: pd.DataFrame, rules: RuleSet, *, source: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split received rows into valid typed rows and quarantine rows, losing none.

    Args:
        raw: rows as received (strings, or typed values from a typed source); the index is the
            1-based row number. Not modified.
        rules: the kind of input's rule set.
        source: where the rows came from, recorded on every quarantine row.

    Returns:
        ``(valid, quarantine)``: ``rules.dtypes`` and QUARANTINE_DTYPES (row_number, reason_code,
        reason, the row as received in JSON). ``len(valid) + len(quarantine) == len(raw)`` unless
        exact repeats are dropped (``rules.keep_exact_repeats`` false), or the input is one
        unreadable-file row (one whole-file quarantine row, row_number 0).
    """
    if UNREADABLE_COLUMN in raw.columns:
        problem = str(raw[UNREADABLE_COLUMN].iloc[0])
        return empty_frame(rules.dtypes), quarantine_whole_source(
            source, "unreadable_file", problem
        )
    received, raw = raw, raw.rename(columns=lambda c: str(c).strip().lower())
    if raw.columns.duplicated().any():
        names = sorted(set(raw.columns[raw.columns.duplicated()]))
        problem = f"column names repeat (case-insensitive): {names}"
        # Kept under the names received, so that no cell is lost from the quarantined rows.
        return empty_frame(rules.dtypes), _conformed(
            quarantine_rows(received, source, "repeated_columns", problem)
        )
    missing = [c for c in rules.required if c not in raw.columns]
    if missing:
        problem = f"missing required columns {missing}; got {list(raw.columns)}"
        return empty_frame(rules.dtypes), _conformed(
            quarantine_rows(raw, source, "missing_columns", problem)
        )

    cells = Received(raw)
    values: dict[str, pd.Series] = {}
    checks: list[Check] = []
    for column in rules.columns:
        values[column.name], column_checks = column.kind.read(cells, column.name)
        checks += column_checks
    code, reason = first_failures(checks, raw.index)
    bad = (code != "").to_numpy()

    valid = conform(pd.DataFrame({c: values[c] for c in rules.dtypes}).loc[~bad], rules.dtypes)
    valid.index = raw.index[~bad]
    repeated: np.ndarray = valid.duplicated(list(rules.key), keep="first").to_numpy()
    if rules.conflicts is not None:
        conflicting = rules.conflicts(valid)
    else:
        conflicting = repeated & ~valid.duplicated(keep="first").to_numpy()
    dropped = conflicting if rules.keep_exact_repeats else repeated
    quarantine = pd.concat(
        [
            quarantine_rows(raw.loc[bad], source, code[bad], reason[bad]),
            quarantine_rows(
                raw.loc[valid.index[conflicting]],
                source,
                "conflicting_duplicate",
                f"the same {' and '.join(rules.key)} appears earlier with different content",
            ),
        ]
    )
    return valid.loc[~dropped].reset_index(drop=True), _conformed(quarantine)


def first_failures(checks: Sequence[Check], index: pd.Index) -> tuple[pd.Series, pd.Series]:
    """Per row, the first failing check's reason code and reason; "" where all pass.

    A check that cannot say (a missing value in its mask) fails the row.
    """
    code = pd.Series("", index=index, dtype="object")
    reason = pd.Series("", index=index, dtype="object")
    for failed, reason_code, message in reversed(checks):
        hit = failed.fillna(True).to_numpy(dtype=bool)
        code = code.mask(hit, reason_code)
        reason = reason.mask(hit, message)
    return code, reason


# --- kinds of cells ------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Id:
    """An identifier: not blank, bounded in characters (and bytes), no control characters.

    Codes ``empty_<f>``, ``<f>_too_long`` (over ``max_chars`` characters, or ``max_bytes`` bytes
    in UTF-8 when given), ``bad_<f>``.
    """

    max_chars: int = MAX_ID_LENGTH
    max_bytes: int | None = None
    why_bytes: str = ""

    def read(self, cells: Received, field: str) -> tuple[pd.Series, list[Check]]:
        """See :meth:`Kind.read`."""
        value = cells.text(field)
        checks = [
            (value == "", f"empty_{field}", f"{field} is empty"),
            (
                value.str.len() > self.max_chars,
                f"{field}_too_long",
                f"{field} is longer than {self.max_chars} characters",
            ),
            _control_check(value, field),
        ]
        if self.max_bytes is not None:
            encoded = value.str.encode("utf-8", errors="surrogatepass")
            # pandas-stubs declares .str.len() for str elements only; pandas measures bytes too.
            size = encoded.str.len()  # type: ignore[misc]
            checks.append(
                (
                    size > self.max_bytes,
                    f"{field}_too_long",
                    f"{field} is longer than {self.max_bytes} bytes in UTF-8{self.why_bytes}",
                )
            )
        return value, checks


@dataclasses.dataclass(frozen=True)
class Text:
    """Free text, optional (blank = None): no control characters (``bad_<f>``)."""

    def read(self, cells: Received, field: str) -> tuple[pd.Series, list[Check]]:
        """See :meth:`Kind.read`."""
        value = cells.text(field)
        return blank_to_none(value), [_control_check(value, field)]


@dataclasses.dataclass(frozen=True)
class Choice:
    """One of a vocabulary, read in ``case`` ("lower", "upper" or "" = as received).

    Args:
        accepts: which (case-folded, non-blank) values are in the vocabulary.
        code: the reason code of any other value.
        reason: its reason.
        blank: what a blank cell means: ``None`` = a missing value (kept as None), ``""`` = not
            allowed (fails like any other value), any other text = that default.
    """

    accepts: Callable[[pd.Series], pd.Series]
    code: str
    reason: str
    case: str = ""
    blank: str | None = ""

    def read(self, cells: Received, field: str) -> tuple[pd.Series, list[Check]]:
        """See :meth:`Kind.read`."""
        value = cells.text(field)
        if self.case == "lower":
            value = value.str.lower()
        elif self.case == "upper":
            value = value.str.upper()
        blank = value == ""
        if self.blank:
            value = value.mask(blank, self.blank)
            blank = value == ""
        failed = ~self.accepts(value).fillna(False).astype(bool)
        if self.blank is None:
            failed &= ~blank
            value = blank_to_none(value)
        return value, [(failed, self.code, self.reason)]


def one_of(choices: Sequence[str]) -> Callable[[pd.Series], pd.Series]:
    """``Choice.accepts`` for a closed list."""
    return lambda values: values.isin(choices)


def currency(field: str) -> Choice:
    """An ISO 4217 code, any case (kept in upper case): ``bad_<f>``."""
    return Choice(
        accepts=lambda values: values.str.fullmatch(r"[A-Z]{3}"),
        code=f"bad_{field}",
        reason=f"{field} must be a three-letter ISO 4217 code",
        case="upper",
    )


@dataclasses.dataclass(frozen=True)
class Number:
    """A finite decimal number, float64.

    Codes ``<f>_not_numeric`` (also blank), ``<f>_not_finite``, then, as declared:
    ``<f>_not_positive``, ``<f>_out_of_range``, ``<f>_too_precise`` and ``zero_<f>``.
    """

    positive: bool = False
    at_most: float | None = None
    between: tuple[float, float] | None = None
    max_abs: float | None = None
    decimals: int | None = None
    nonzero: bool = False

    def read(self, cells: Received, field: str) -> tuple[pd.Series, list[Check]]:
        """See :meth:`Kind.read`."""
        value = cells.numbers(field)
        checks: list[Check] = [
            (value.isna(), f"{field}_not_numeric", f"{field} is not a number"),
            (value.abs() == np.inf, f"{field}_not_finite", f"{field} is not finite"),
        ]
        if self.positive:
            checks.append(
                (value <= 0, f"{field}_not_positive", f"{field} must be greater than zero")
            )
        out_of_range = f"{field}_out_of_range"
        if self.at_most is not None:
            checks.append(
                (value > self.at_most, out_of_range, f"{field} must be at most {self.at_most:g}")
            )
        if self.between is not None:
            low, high = self.between
            checks.append(
                (
                    (value < low) | (value > high),
                    out_of_range,
                    f"{field} must be from {low:g} to {high:g}",
                )
            )
        if self.max_abs is not None:
            checks.append(
                (
                    value.abs() > self.max_abs,
                    out_of_range,
                    f"{field} must be between -{self.max_abs:g} and {self.max_abs:g}",
                )
            )
        if self.decimals is not None:
            places = pd.Series(parsing.decimal_places(cells.text(field)), index=cells.index)
            checks.append(
                (
                    places > self.decimals,
                    f"{field}_too_precise",
                    f"{field} has more than {self.decimals} decimal places (or is written in "
                    f"more than {parsing.MAX_TEXT_LENGTH} characters)",
                )
            )
        if self.nonzero:
            checks.append((value == 0, f"zero_{field}", f"{field} is zero"))
        return value, checks


@dataclasses.dataclass(frozen=True)
class Whole:
    """A whole number in [low, high], blank = ``default``; one reason code for any failure."""

    low: int
    high: int
    default: int
    code: str
    reason: str

    def read(self, cells: Received, field: str) -> tuple[pd.Series, list[Check]]:
        """See :meth:`Kind.read`."""
        value = cells.numbers(field).mask(cells.text(field) == "", float(self.default))
        failed = (
            value.isna()
            | ~((value >= self.low) & (value <= self.high))
            | (value.fillna(0) % 1 != 0)
        )
        return value, [(failed, self.code, self.reason)]


@dataclasses.dataclass(frozen=True)
class Date:
    """An ISO calendar date ``YYYY-MM-DD`` in [earliest, latest), as a naive midnight.

    Typed dates are taken at their date. Codes ``bad_<f>``, ``<f>_out_of_range``; an optional
    date may be blank (NaT).
    """

    earliest: pd.Timestamp
    latest: pd.Timestamp
    optional: bool = False

    def read(self, cells: Received, field: str) -> tuple[pd.Series, list[Check]]:
        """See :meth:`Kind.read`."""
        values = cells.raw[field] if field in cells.raw.columns else None
        if values is not None and pd.api.types.is_datetime64_any_dtype(values):
            values = values.dt.tz_localize(None) if values.dt.tz is not None else values
            text = values.dt.strftime("%Y-%m-%d").where(values.notna(), "")
        else:
            text = cells.text(field)
        value, problem = parsing.parse_dates(text, self.earliest, self.latest)
        if self.optional:
            problem = problem.where(text != "", "")
        blank = "; blank = none" if self.optional else ""
        return value, [
            (
                problem == parsing.NOT_ISO,
                f"bad_{field}",
                f"{field} is not an ISO date (YYYY-MM-DD{blank})",
            ),
            (
                problem == parsing.OUT_OF_RANGE,
                f"{field}_out_of_range",
                f"{field} must be from {self.earliest:%Y-%m-%d} up to, not including, "
                f"{self.latest:%Y-%m-%d}",
            ),
        ]


@dataclasses.dataclass(frozen=True)
class Instant:
    """An ISO 8601 date-time in [earliest, latest), UTC when it has no offset.

    Kept to the microsecond (see ``parsing.parse_instants``). Codes ``bad_<f>``,
    ``<f>_without_time``, ``<f>_out_of_range``, ``<f>_too_precise``.
    """

    earliest: pd.Timestamp
    latest: pd.Timestamp

    def problems(self, field: str) -> dict[str, tuple[str, str]]:
        """Per parsing problem, its ``(reason_code, reason)``."""
        return {
            parsing.NOT_ISO: (
                f"bad_{field}",
                f"{field} is not an ISO 8601 date-time (YYYY-MM-DDThh:mm[:ss[.fraction]]"
                f"[Z|±hh[:mm]], at most {parsing.MAX_TEXT_LENGTH} characters)",
            ),
            parsing.DATE_ONLY: (
                f"{field}_without_time",
                f"{field} has no time of day: a date, a year-month or a year alone is not a "
                f"{field.replace('_', ' ')}",
            ),
            parsing.OUT_OF_RANGE: (
                f"{field}_out_of_range",
                f"{field} must be from {self.earliest.isoformat()} up to, not including, "
                f"{self.latest.isoformat()}",
            ),
            parsing.TOO_PRECISE: (
                f"{field}_too_precise",
                f"{field} has non-zero digits below the microsecond: the desk keeps times to "
                "the microsecond and would otherwise order such rows by id, not by time",
            ),
        }

    def read(self, cells: Received, field: str) -> tuple[pd.Series, list[Check]]:
        """See :meth:`Kind.read`."""
        value, problem = parsing.parse_instants(cells.text(field), self.earliest, self.latest)
        return value, [
            (problem == kind, code, reason) for kind, (code, reason) in self.problems(field).items()
        ]


def _control_check(value: pd.Series, field: str) -> Check:
    return (
        value.str.contains(CONTROL_CHARACTERS, regex=True),
        f"bad_{field}",
        f"{field} contains control characters or unpaired surrogates",
    )


# --- reading cells -------------------------------------------------------------------------------


def text_of(raw: pd.DataFrame, column: str) -> pd.Series:
    """The column as stripped strings ("" where missing); an absent column reads as all-empty."""
    if column not in raw.columns:
        return pd.Series("", index=raw.index, dtype="object")
    values = raw[column].astype("object")
    return values.where(values.notna(), "").astype(str).str.strip()


def blank_to_none(values: pd.Series) -> pd.Series:
    """Text with "" as None (a missing optional value), object dtype."""
    return values.astype("object").where(values != "", None)


# --- quarantine rows -----------------------------------------------------------------------------


def unreadable_rows(problem: str) -> pd.DataFrame:
    """What a source hands over for a file it cannot read: one row naming the problem."""
    return pd.DataFrame({UNREADABLE_COLUMN: [problem]}, index=pd.Index([0]), dtype="object")


def quarantine_rows(
    raw: pd.DataFrame, source: str, reason_code: str | pd.Series, reason: str | pd.Series
) -> pd.DataFrame:
    """Quarantine rows for ``raw``, keeping each row as received (JSON) with its reason.

    ``trade_id`` comes from the raw ``trade_id`` column; rows without one (reference data) get "".
    """
    if raw.empty:
        return empty_frame(QUARANTINE_DTYPES)
    if not raw.columns.is_unique:
        # A JSON object holds a name once: later repeats are kept as "<name>#2", "<name>#3", ...
        seen: dict[str, int] = {}
        names = []
        for column in map(str, raw.columns):
            seen[column] = seen.get(column, 0) + 1
            names.append(column if seen[column] == 1 else f"{column}#{seen[column]}")
        raw = raw.set_axis(names, axis=1)
    records = raw.astype("object").to_dict(orient="records")
    return pd.DataFrame(
        {
            "source": source,
            "row_number": raw.index.to_numpy(dtype="int64"),
            # The id as received, cleaned only so that the quarantine itself can store it.
            "trade_id": text_of(raw, "trade_id").str.replace(CONTROL_CHARACTERS, "?", regex=True),
            "reason_code": reason_code,
            "reason": storable(pd.Series(reason, index=raw.index, dtype="object")),
            "raw": [raw_json(r) for r in records],
        },
        index=raw.index,
    )


def _conformed(quarantine: pd.DataFrame) -> pd.DataFrame:
    return conform(quarantine, QUARANTINE_DTYPES)


def raw_json(record: dict[Any, Any]) -> str:
    """A received row as a valid JSON object (RFC 8259) that any database can store.

    Missing cells and NaN are null, an infinite number is its text (``"inf"``); text keeps
    every character (control characters escaped) except unpaired surrogates (U+FFFD); other
    values are their text.
    """

    def clean(value: Any) -> Any:
        if isinstance(value, str):
            return _SURROGATES.sub("\ufffd", value)
        if value is None or value is pd.NA or value is pd.NaT:
            return None
        if isinstance(value, bool | np.bool_):
            return bool(value)
        if isinstance(value, int | np.integer):
            return int(value)
        if isinstance(value, float | np.floating):
            number = float(value)
            return None if math.isnan(number) else number if math.isfinite(number) else str(number)
        return clean(str(value))

    body = {clean(str(k)): clean(v) for k, v in record.items()}
    return json.dumps(body, ensure_ascii=False, allow_nan=False)


def storable(texts: pd.Series) -> pd.Series:
    """Received text with NUL and unpaired surrogates replaced by U+FFFD (see UNSTORABLE)."""
    return texts.astype(str).str.replace(UNSTORABLE, "\ufffd", regex=True)


def quarantine_whole_source(source: str, reason_code: str, reason: str) -> pd.DataFrame:
    """One quarantine row standing for an input that could not be read at all (row_number 0)."""
    frame = pd.DataFrame(
        {
            "source": [source],
            "row_number": [0],
            "trade_id": [""],
            "reason_code": [reason_code],
            "reason": [_UNSTORABLE.sub("\ufffd", reason)],
            "raw": [""],
        }
    )
    return conform(frame, QUARANTINE_DTYPES)


def rejection_fingerprints(quarantined: pd.DataFrame) -> pd.Series:
    """One SHA-256 hex digest per quarantine row, equal for the same rejected input.

    A rejected input is its reason code and the row as received, wherever it arrived: the same
    bad row in a renamed copy, in a file re-sent with rows appended or rewritten with CRLF line
    ends is one input (the CSV reader has already removed the line ends). A whole-file rejection
    (row_number 0, no row) is its file: the source is part of its fingerprint.

    Args:
        quarantined: QUARANTINE_DTYPES rows.

    Returns:
        str Series aligned with ``quarantined``.
    """
    require_columns(quarantined, QUARANTINE_DTYPES, where="rejection_fingerprints")
    whole_file = quarantined["row_number"].to_numpy() == 0
    identity = quarantined["raw"].astype(str).where(~whole_file, quarantined["source"].astype(str))
    keys = quarantined["reason_code"].astype(str) + "\x1f" + identity
    return keys.map(lambda key: hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest())
