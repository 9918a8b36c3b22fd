"""Reference data and marks: validation of received instrument, book, price and FX rate rows."""

import dataclasses
import hashlib
from collections.abc import Callable

import pandas as pd

from desk_pipeline.domain.collateral.lendable import DEFAULT_HOLDING_PERIOD_DAYS
from desk_pipeline.domain.collateral.ratings import rating_notch
from desk_pipeline.domain.positions.trades import BOOK_ID
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
from desk_pipeline.domain.validation.numbers import Number, Whole
from desk_pipeline.domain.validation.rules import Column, RuleSet, validate
from desk_pipeline.domain.validation.text import Choice, Id, Text, currency, one_of
from desk_pipeline.domain.validation.times import Date

# CRE22.56-22.59: the minimum holding period of repo-style transactions is five business days
# (DEFAULT_HOLDING_PERIOD_DAYS, from the collateral context).
# A holding period is at most a year of business days (and fits the warehouse's integer).
MAX_HOLDING_PERIOD_DAYS = 260
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

# Each kind's columns and rules, declared once (the shared kinds of cell and the control-character
# rule are in domain/validation/). Required columns must be present (a file without one is
# quarantined row by row); optional ones read as blank when absent; any other column is ignored.
INSTRUMENT_RULES = RuleSet(
    columns=(
        Column("instrument_id", Id()),
        Column(
            "asset_class",
            Choice(
                one_of(ASSET_CLASSES),
                "unknown_asset_class",
                f"asset_class must be one of {list(ASSET_CLASSES)}",
                case="lower",
            ),
        ),
        Column(
            "issuer_type",
            Choice(
                one_of(ISSUER_TYPES),
                "unknown_issuer_type",
                f"issuer_type must be one of {list(ISSUER_TYPES)} or blank",
                case="lower",
                blank=None,
            ),
        ),
        Column(
            "rating",
            Choice(
                lambda ratings: rating_notch(ratings.replace("", None)).notna(),
                "unknown_rating",
                "rating is not an S&P/Fitch or Moody's long-term rating (blank = unrated)",
                blank=None,
            ),
            required=False,
        ),
        Column("maturity_date", Date(EARLIEST_MATURITY, LATEST_MATURITY, optional=True), False),
        Column("currency", currency("currency")),
        Column("name", Text(), required=False),
        Column("issuer", Text(), required=False),
    ),
    dtypes=INSTRUMENT_DTYPES,
    key=("instrument_id",),
)
BOOK_RULES = RuleSet(
    columns=(
        Column("book_id", BOOK_ID),
        Column("base_currency", currency("base_currency")),
        Column(
            "holding_period_days",
            Whole(
                1,
                MAX_HOLDING_PERIOD_DAYS,
                DEFAULT_HOLDING_PERIOD_DAYS,
                "bad_holding_period",
                f"holding_period_days must be a whole number of days from 1 to "
                f"{MAX_HOLDING_PERIOD_DAYS} (blank = {DEFAULT_HOLDING_PERIOD_DAYS})",
            ),
            required=False,
        ),
    ),
    dtypes=BOOK_DTYPES,
    key=("book_id",),
)
PRICE_RULES = RuleSet(
    columns=(
        Column("instrument_id", Id()),
        Column("price_date", Date(EARLIEST_MARK_DATE, LATEST_MARK_DATE)),
        Column("price", Number(positive=True, at_most=MAX_PRICE)),
    ),
    dtypes=PRICE_DTYPES,
    key=("instrument_id", "price_date"),
)
FX_RULES = RuleSet(
    columns=(
        Column("currency", currency("currency")),
        Column("rate_date", Date(EARLIEST_MARK_DATE, LATEST_MARK_DATE)),
        Column(
            "usd_per_unit",
            Number(positive=True, between=(MIN_USD_PER_UNIT, MAX_USD_PER_UNIT)),
        ),
    ),
    dtypes=FX_DTYPES,
    key=("currency", "rate_date"),
)


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
    for (name, raw, validate_kind), dtypes in zip(
        inputs, (INSTRUMENT_DTYPES, BOOK_DTYPES, PRICE_DTYPES, FX_DTYPES), strict=True
    ):
        if raw is None or (raw.empty and len(raw.columns) == 0):
            valid.append(empty_frame(dtypes))
            continue
        good, bad = validate_kind(raw, source=source_label(kind, name, raw))
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
            ``name``, ``issuer`` (any text without control characters), ``rating`` (S&P/Fitch or
            Moody's long-term symbol; blank = unrated), ``maturity_date`` (ISO date
            ``YYYY-MM-DD`` in [EARLIEST_MATURITY, LATEST_MATURITY); blank = perpetual or equity).
        source: the file's label (:func:`source_label`), recorded on each quarantine row.

    Returns:
        ``(instruments, quarantine)`` with INSTRUMENT_DTYPES and QUARANTINE_DTYPES. A repeated
        instrument_id keeps its first row; a later row with other content is quarantined as
        ``conflicting_duplicate``, an exact repeat is dropped.
    """
    return validate(raw, INSTRUMENT_RULES, source=source)


def validate_books(raw: pd.DataFrame, *, source: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split received book rows into valid books and quarantine rows, losing none.

    Args:
        raw: one row per book, strings or typed, index = 1-based row number. Required columns
            ``book_id`` (an id as in trades: at most 64 characters and MAX_BOOK_ID_BYTES bytes)
            and ``base_currency`` (ISO 4217); optional ``holding_period_days`` (a whole number
            of business days from 1 to MAX_HOLDING_PERIOD_DAYS; blank =
            ``DEFAULT_HOLDING_PERIOD_DAYS``).
        source: the file's label, recorded on each quarantine row.

    Returns:
        ``(books, quarantine)`` with BOOK_DTYPES and QUARANTINE_DTYPES; duplicates as for
        :func:`validate_instruments`, keyed on book_id.
    """
    return validate(raw, BOOK_RULES, source=source)


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
    return validate(raw, PRICE_RULES, source=source)


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
    return validate(raw, FX_RULES, source=source)
