"""Reference data and marks: validation of received instrument, book, price and FX rate rows."""

import dataclasses
import hashlib
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from desk_pipeline.domain import parsing
from desk_pipeline.domain.haircuts import rating_notch
from desk_pipeline.domain.precision import MAX_PRICE
from desk_pipeline.domain.schema import (
    ASSET_CLASSES,
    BOOK_DTYPES,
    FX_DTYPES,
    INSTRUMENT_DTYPES,
    ISSUER_TYPES,
    PRICE_DTYPES,
    QUARANTINE_DTYPES,
    conform,
    empty_frame,
)
from desk_pipeline.domain.trades import (
    CONTROL_CHARACTERS,
    UNSTORABLE,
    quarantine_rows,
    quarantine_whole_source,
)

# A source that cannot read a reference file at all (not UTF-8, not CSV) hands over one row with
# this single column holding the problem; validation turns it into one whole-file quarantine row.
UNREADABLE_COLUMN = "_unreadable_file"
# CRE22.56-22.59: the minimum holding period of repo-style transactions is five business days.
DEFAULT_HOLDING_PERIOD_DAYS = 5
# A holding period is at most a year of business days (and fits the warehouse's integer).
MAX_HOLDING_PERIOD_DAYS = 260
MAX_ID_LENGTH = 64
# Marks and FX rates are dated like trades: [EARLIEST_MARK_DATE, LATEST_MARK_DATE).
EARLIEST_MARK_DATE = pd.Timestamp("1970-01-01")
LATEST_MARK_DATE = pd.Timestamp("2100-01-01")
# Maturities reach further (century bonds) but stay inside pandas' nanosecond dates; a perpetual
# instrument has a blank maturity_date, not a far-future placeholder such as 9999-12-31.
EARLIEST_MATURITY = pd.Timestamp("1900-01-01")
LATEST_MATURITY = pd.Timestamp("2262-01-01")
# USD value of one unit of a currency: [MIN_USD_PER_UNIT, MAX_USD_PER_UNIT]. Cross rates are
# ratios of two of them, so the bounds keep every conversion finite.
MIN_USD_PER_UNIT = 1e-9
MAX_USD_PER_UNIT = 1e9

# Received columns: required ones must be present (a file without one is quarantined row by row),
# optional ones (see each validate_* docstring) read as blank when absent; any other is ignored.
INSTRUMENT_REQUIRED = ("instrument_id", "asset_class", "issuer_type", "currency")
BOOK_REQUIRED = ("book_id", "base_currency")
PRICE_REQUIRED = ("instrument_id", "price_date", "price")
FX_REQUIRED = ("currency", "rate_date", "usd_per_unit")

_Check = tuple[pd.Series, str, str]


@dataclasses.dataclass(frozen=True)
class ValidatedReference:
    """Reference rows split into valid typed frames and quarantine rows.

    Attributes:
        instruments: INSTRUMENT_DTYPES.
        books: BOOK_DTYPES.
        prices: PRICE_DTYPES.
        fx_rates: FX_DTYPES.
        quarantine: QUARANTINE_DTYPES, every rejected row of every input.
        received: rows received over all inputs; ``received == accepted + len(quarantine)``
            where accepted counts valid rows before exact repeats are dropped.
    """

    instruments: pd.DataFrame
    books: pd.DataFrame
    prices: pd.DataFrame
    fx_rates: pd.DataFrame
    quarantine: pd.DataFrame
    received: int


def unreadable_rows(problem: str) -> pd.DataFrame:
    """What a source hands over for a reference file it cannot read: one row naming the problem."""
    return pd.DataFrame({UNREADABLE_COLUMN: [problem]}, index=pd.Index([0]), dtype="object")


def source_label(kind: str, name: str, raw: pd.DataFrame) -> str:
    """``<kind>:<name>#<digest>``: names a received file by its content, like landing trades.

    Quarantine rows carry this label, so the same content quarantined again is recognised.
    """
    hashed = pd.util.hash_pandas_object(raw, index=True).to_numpy()
    columns = "\x1f".join(str(c) for c in raw.columns).encode()
    digest = hashlib.sha256(columns + hashed.tobytes()).hexdigest()[:16]
    return f"{kind}:{name}#{digest}"


def validate_reference(
    kind: str,
    *,
    instruments: pd.DataFrame | None = None,
    books: pd.DataFrame | None = None,
    prices: pd.DataFrame | None = None,
    fx_rates: pd.DataFrame | None = None,
) -> ValidatedReference:
    """Validate whichever reference inputs are given, labelling quarantine rows by file.

    Args:
        kind: the source kind (``landing``, ``simulator``) that prefixes each quarantine source.
        instruments: received instrument rows (see :func:`validate_instruments`), or None.
        books: received book rows, or None.
        prices: received price rows, or None.
        fx_rates: received FX rate rows, or None.

    Returns:
        The valid frames (empty for inputs not given) and every quarantine row.
    """
    inputs: list[tuple[str, pd.DataFrame | None, Callable[..., tuple[pd.DataFrame, pd.DataFrame]]]]
    inputs = [
        ("instruments.csv", instruments, validate_instruments),
        ("books.csv", books, validate_books),
        ("prices.csv", prices, validate_prices),
        ("fx_rates.csv", fx_rates, validate_fx),
    ]
    valid: list[pd.DataFrame] = []
    rejected: list[pd.DataFrame] = []
    received = 0
    for (name, raw, validate), dtypes in zip(
        inputs, (INSTRUMENT_DTYPES, BOOK_DTYPES, PRICE_DTYPES, FX_DTYPES), strict=True
    ):
        if raw is None or (raw.empty and len(raw.columns) == 0):
            valid.append(empty_frame(dtypes))
            continue
        good, bad = validate(raw, source=source_label(kind, name, raw))
        valid.append(good)
        rejected.append(bad)
        received += len(raw)
    quarantine = pd.concat([empty_frame(QUARANTINE_DTYPES), *rejected], ignore_index=True)
    instruments_ok, books_ok, prices_ok, fx_ok = valid
    return ValidatedReference(
        instruments=instruments_ok,
        books=books_ok,
        prices=prices_ok,
        fx_rates=fx_ok,
        quarantine=conform(quarantine, QUARANTINE_DTYPES),
        received=received,
    )


def validate_instruments(raw: pd.DataFrame, *, source: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split received instrument rows into valid instruments and quarantine rows, losing none.

    Args:
        raw: one row per instrument, cells as strings (a landing file) or already typed (the
            simulator); the index is the 1-based row number. Required columns ``instrument_id``,
            ``asset_class`` (one of ``schema.ASSET_CLASSES``, any case), ``issuer_type`` (one of
            ``schema.ISSUER_TYPES`` or blank), ``currency`` (ISO 4217, three letters); optional
            ``name``, ``issuer`` (any text without NUL), ``rating`` (S&P/Fitch or Moody's
            long-term symbol; blank = unrated), ``maturity_date`` (ISO date ``YYYY-MM-DD`` in
            [EARLIEST_MATURITY, LATEST_MATURITY); blank = perpetual or equity).
        source: the file's label (:func:`source_label`), recorded on each quarantine row.

    Returns:
        ``(instruments, quarantine)`` with INSTRUMENT_DTYPES and QUARANTINE_DTYPES. A repeated
        instrument_id keeps its first row; a later row with other content is quarantined as
        ``conflicting_duplicate``, an exact repeat is dropped.
    """

    def checks(cells: dict[str, pd.Series]) -> list[_Check]:
        asset_class = cells["asset_class"]
        issuer_type = cells["issuer_type"]
        rating = cells["rating"]
        return [
            *_id_checks(cells["instrument_id"], "instrument_id"),
            (
                ~asset_class.isin(ASSET_CLASSES),
                "unknown_asset_class",
                f"asset_class must be one of {list(ASSET_CLASSES)}",
            ),
            (
                (issuer_type != "") & ~issuer_type.isin(ISSUER_TYPES),
                "unknown_issuer_type",
                f"issuer_type must be one of {list(ISSUER_TYPES)} or blank",
            ),
            (
                (rating != "") & rating_notch(rating.replace("", None)).isna(),
                "unknown_rating",
                "rating is not an S&P/Fitch or Moody's long-term rating (blank = unrated)",
            ),
            *_date_checks(
                cells["maturity_date_problem"],
                "maturity_date",
                EARLIEST_MATURITY,
                LATEST_MATURITY,
                "; blank = none",
            ),
            _currency_check(cells["currency"], "currency"),
            *_free_text_checks(cells["name"], "name"),
            *_free_text_checks(cells["issuer"], "issuer"),
        ]

    def cells_of(raw: pd.DataFrame) -> dict[str, pd.Series]:
        maturity, problem = _dates(raw, "maturity_date", EARLIEST_MATURITY, LATEST_MATURITY)
        blank = _text(raw, "maturity_date") == ""
        return {
            "instrument_id": _text(raw, "instrument_id"),
            "name": _text(raw, "name"),
            "asset_class": _text(raw, "asset_class").str.lower(),
            "issuer_type": _text(raw, "issuer_type").str.lower(),
            "issuer": _text(raw, "issuer"),
            "rating": _text(raw, "rating"),
            "maturity_date": maturity,
            "maturity_date_problem": problem.where(~blank, ""),
            "currency": _text(raw, "currency").str.upper(),
        }

    def typed(cells: dict[str, pd.Series]) -> pd.DataFrame:
        frame = pd.DataFrame({c: cells[c] for c in INSTRUMENT_DTYPES})
        for column in ("name", "issuer", "rating", "issuer_type"):
            frame[column] = _blank_to_none(frame[column])
        return frame

    return _validate(
        raw,
        source,
        INSTRUMENT_REQUIRED,
        cells_of,
        checks,
        typed,
        ("instrument_id",),
        INSTRUMENT_DTYPES,
    )


def validate_books(raw: pd.DataFrame, *, source: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split received book rows into valid books and quarantine rows, losing none.

    Args:
        raw: one row per book, strings or typed, index = 1-based row number. Required columns
            ``book_id`` and ``base_currency`` (ISO 4217); optional ``holding_period_days`` (a
            whole number of business days from 1 to MAX_HOLDING_PERIOD_DAYS; blank =
            ``DEFAULT_HOLDING_PERIOD_DAYS``).
        source: the file's label, recorded on each quarantine row.

    Returns:
        ``(books, quarantine)`` with BOOK_DTYPES and QUARANTINE_DTYPES; duplicates as for
        :func:`validate_instruments`, keyed on book_id.
    """

    def cells_of(raw: pd.DataFrame) -> dict[str, pd.Series]:
        period = _numbers(raw, "holding_period_days")
        blank = _text(raw, "holding_period_days") == ""
        return {
            "book_id": _text(raw, "book_id"),
            "base_currency": _text(raw, "base_currency").str.upper(),
            "holding_period_days": period.mask(blank, float(DEFAULT_HOLDING_PERIOD_DAYS)),
        }

    def checks(cells: dict[str, pd.Series]) -> list[_Check]:
        period = cells["holding_period_days"]
        return [
            *_id_checks(cells["book_id"], "book_id"),
            _currency_check(cells["base_currency"], "base_currency"),
            (
                period.isna()
                | ~((period >= 1) & (period <= MAX_HOLDING_PERIOD_DAYS))
                | (period.fillna(0) % 1 != 0),
                "bad_holding_period",
                f"holding_period_days must be a whole number of days from 1 to "
                f"{MAX_HOLDING_PERIOD_DAYS} (blank = {DEFAULT_HOLDING_PERIOD_DAYS})",
            ),
        ]

    def typed(cells: dict[str, pd.Series]) -> pd.DataFrame:
        return pd.DataFrame({c: cells[c] for c in BOOK_DTYPES})

    return _validate(raw, source, BOOK_REQUIRED, cells_of, checks, typed, ("book_id",), BOOK_DTYPES)


def validate_prices(raw: pd.DataFrame, *, source: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split received marks into valid prices and quarantine rows, losing none.

    Args:
        raw: one row per (instrument, day), strings or typed, index = 1-based row number.
            Required columns ``instrument_id``, ``price_date`` (ISO date ``YYYY-MM-DD`` in
            [EARLIEST_MARK_DATE, LATEST_MARK_DATE)), ``price`` (value per unit of quantity in
            the instrument's currency, in (0, MAX_PRICE]).
        source: the file's label, recorded on each quarantine row.

    Returns:
        ``(prices, quarantine)`` with PRICE_DTYPES and QUARANTINE_DTYPES; duplicates as for
        :func:`validate_instruments`, keyed on (instrument_id, price_date).
    """

    def cells_of(raw: pd.DataFrame) -> dict[str, pd.Series]:
        date, problem = _dates(raw, "price_date", EARLIEST_MARK_DATE, LATEST_MARK_DATE)
        return {
            "instrument_id": _text(raw, "instrument_id"),
            "price_date": date,
            "price_date_problem": problem,
            "price": _numbers(raw, "price"),
        }

    def checks(cells: dict[str, pd.Series]) -> list[_Check]:
        return [
            *_id_checks(cells["instrument_id"], "instrument_id"),
            *_date_checks(
                cells["price_date_problem"], "price_date", EARLIEST_MARK_DATE, LATEST_MARK_DATE
            ),
            *_positive_checks(cells["price"], "price"),
            (
                cells["price"] > MAX_PRICE,
                "price_out_of_range",
                f"price must be at most {MAX_PRICE:g}",
            ),
        ]

    def typed(cells: dict[str, pd.Series]) -> pd.DataFrame:
        return pd.DataFrame({c: cells[c] for c in PRICE_DTYPES})

    key = ("instrument_id", "price_date")
    return _validate(raw, source, PRICE_REQUIRED, cells_of, checks, typed, key, PRICE_DTYPES)


def validate_fx(raw: pd.DataFrame, *, source: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split received FX rates into valid rates and quarantine rows, losing none.

    Args:
        raw: one row per (currency, day), strings or typed, index = 1-based row number.
            Required columns ``currency`` (ISO 4217), ``rate_date`` (ISO date ``YYYY-MM-DD`` in
            [EARLIEST_MARK_DATE, LATEST_MARK_DATE)), ``usd_per_unit`` (the USD value of one
            unit of the currency, in [MIN_USD_PER_UNIT, MAX_USD_PER_UNIT]).
        source: the file's label, recorded on each quarantine row.

    Returns:
        ``(fx_rates, quarantine)`` with FX_DTYPES and QUARANTINE_DTYPES; duplicates as for
        :func:`validate_instruments`, keyed on (currency, rate_date).
    """

    def cells_of(raw: pd.DataFrame) -> dict[str, pd.Series]:
        date, problem = _dates(raw, "rate_date", EARLIEST_MARK_DATE, LATEST_MARK_DATE)
        return {
            "currency": _text(raw, "currency").str.upper(),
            "rate_date": date,
            "rate_date_problem": problem,
            "usd_per_unit": _numbers(raw, "usd_per_unit"),
        }

    def checks(cells: dict[str, pd.Series]) -> list[_Check]:
        rate = cells["usd_per_unit"]
        return [
            _currency_check(cells["currency"], "currency"),
            *_date_checks(
                cells["rate_date_problem"], "rate_date", EARLIEST_MARK_DATE, LATEST_MARK_DATE
            ),
            *_positive_checks(rate, "usd_per_unit"),
            (
                (rate < MIN_USD_PER_UNIT) | (rate > MAX_USD_PER_UNIT),
                "usd_per_unit_out_of_range",
                f"usd_per_unit must be from {MIN_USD_PER_UNIT:g} to {MAX_USD_PER_UNIT:g}",
            ),
        ]

    def typed(cells: dict[str, pd.Series]) -> pd.DataFrame:
        return pd.DataFrame({c: cells[c] for c in FX_DTYPES})

    key = ("currency", "rate_date")
    return _validate(raw, source, FX_REQUIRED, cells_of, checks, typed, key, FX_DTYPES)


def _validate(
    raw: pd.DataFrame,
    source: str,
    required: Sequence[str],
    cells_of: Callable[[pd.DataFrame], dict[str, pd.Series]],
    checks_of: Callable[[dict[str, pd.Series]], list[_Check]],
    typed_of: Callable[[dict[str, pd.Series]], pd.DataFrame],
    key: Sequence[str],
    dtypes: Mapping[str, str],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The shared validation pass: whole-file problems, per-row checks, then duplicate keys."""
    out_dtypes = dict(dtypes)
    if UNREADABLE_COLUMN in raw.columns:
        problem = str(raw[UNREADABLE_COLUMN].iloc[0])
        return empty_frame(out_dtypes), quarantine_whole_source(source, "unreadable_file", problem)
    raw = raw.rename(columns=lambda c: str(c).strip().lower())
    missing = [c for c in required if c not in raw.columns]
    if missing:
        problem = f"missing required columns {missing}; got {list(raw.columns)}"
        return empty_frame(out_dtypes), quarantine_rows(raw, source, "missing_columns", problem)

    cells = cells_of(raw)
    code = pd.Series("", index=raw.index, dtype="object")
    reason = pd.Series("", index=raw.index, dtype="object")
    # Reversed so that the first failing check of a row decides its reason.
    for failed, reason_code, message in reversed(checks_of(cells)):
        hit = failed.fillna(True).to_numpy(dtype=bool)
        code = code.mask(hit, reason_code)
        reason = reason.mask(hit, message)
    bad = (code != "").to_numpy()

    valid = conform(typed_of(cells).loc[~bad], out_dtypes)
    valid.index = raw.index[~bad]
    repeated = valid.duplicated(list(key), keep="first").to_numpy()
    exact = valid.duplicated(keep="first").to_numpy()
    conflicting = repeated & ~exact
    conflict_index = valid.index[conflicting]
    quarantine = pd.concat(
        [
            quarantine_rows(raw.loc[bad], source, code[bad], reason[bad]),
            quarantine_rows(
                raw.loc[conflict_index],
                source,
                "conflicting_duplicate",
                f"the same {' and '.join(key)} appears earlier with different content",
            ),
        ]
    )
    kept = valid.loc[~repeated].reset_index(drop=True)
    return kept, conform(quarantine, QUARANTINE_DTYPES)


def _id_checks(values: pd.Series, field: str) -> list[_Check]:
    return [
        (values == "", f"empty_{field}", f"{field} is empty"),
        (
            values.str.len() > MAX_ID_LENGTH,
            f"{field}_too_long",
            f"{field} is longer than {MAX_ID_LENGTH} characters",
        ),
        (
            values.str.contains(CONTROL_CHARACTERS, regex=True),
            f"bad_{field}",
            f"{field} contains control characters or unpaired surrogates",
        ),
    ]


def _free_text_checks(values: pd.Series, field: str) -> list[_Check]:
    return [
        (
            values.str.contains(UNSTORABLE, regex=True),
            f"bad_{field}",
            f"{field} contains NUL or unpaired surrogates",
        )
    ]


def _date_checks(
    problems: pd.Series, field: str, earliest: pd.Timestamp, latest: pd.Timestamp, blank: str = ""
) -> list[_Check]:
    return [
        (
            problems == parsing.NOT_ISO,
            f"bad_{field}",
            f"{field} is not an ISO date (YYYY-MM-DD{blank})",
        ),
        (
            problems == parsing.OUT_OF_RANGE,
            f"{field}_out_of_range",
            f"{field} must be from {earliest:%Y-%m-%d} up to, not including, {latest:%Y-%m-%d}",
        ),
    ]


def _currency_check(values: pd.Series, field: str) -> _Check:
    return (
        ~values.str.fullmatch(r"[A-Z]{3}").fillna(False).astype(bool),
        f"bad_{field}",
        f"{field} must be a three-letter ISO 4217 code",
    )


def _positive_checks(values: pd.Series, field: str) -> list[_Check]:
    return [
        (values.isna(), f"{field}_not_numeric", f"{field} is not a number"),
        (~np.isfinite(values.fillna(1.0)), f"{field}_not_finite", f"{field} is not finite"),
        (~(values.fillna(1.0) > 0), f"{field}_not_positive", f"{field} must be greater than zero"),
    ]


def _is_text(values: pd.Series) -> bool:
    return not (
        pd.api.types.is_numeric_dtype(values) or pd.api.types.is_datetime64_any_dtype(values)
    )


def _text(raw: pd.DataFrame, column: str) -> pd.Series:
    """The column as stripped strings ("" where missing or absent), object dtype."""
    if column not in raw.columns:
        return pd.Series("", index=raw.index, dtype="object")
    values = raw[column].astype("object")
    texts = ["" if pd.isna(v) else str(v).strip() for v in values.to_numpy()]
    return pd.Series(texts, index=raw.index, dtype="object")


def _numbers(raw: pd.DataFrame, column: str) -> pd.Series:
    """The column as float64; NaN where missing, absent or not a number."""
    if column not in raw.columns:
        return pd.Series(np.nan, index=raw.index, dtype="float64")
    values = raw[column]
    if _is_text(values):
        values = _text(raw, column).replace("", None)
    return pd.to_numeric(values, errors="coerce").astype("float64")


def _dates(
    raw: pd.DataFrame, column: str, earliest: pd.Timestamp, latest: pd.Timestamp
) -> tuple[pd.Series, pd.Series]:
    """The column as naive midnight dates (NaT where blank or refused), and each row's problem.

    Problems are those of ``parsing.parse_dates`` (a blank or absent cell is NOT_ISO; callers of
    an optional column ignore it there): text must be ``YYYY-MM-DD``, typed dates and times (the
    simulator's) are taken at their date; either must lie in [earliest, latest).
    """
    if column not in raw.columns:
        missing = pd.Series(pd.NaT, index=raw.index, dtype="datetime64[ns]")
        return missing, pd.Series(parsing.NOT_ISO, index=raw.index, dtype="object")
    values = raw[column]
    if pd.api.types.is_datetime64_any_dtype(values):
        values = values.dt.tz_localize(None) if values.dt.tz is not None else values
        text = values.dt.strftime("%Y-%m-%d").where(values.notna(), "")
    else:
        text = _text(raw, column)
    return parsing.parse_dates(text, earliest, latest)


def _blank_to_none(values: pd.Series) -> pd.Series:
    return pd.Series(
        [None if v == "" else v for v in values.to_numpy(dtype=object)],
        index=values.index,
        dtype="object",
    )
