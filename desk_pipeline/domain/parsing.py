"""Strict, vectorised reading of received text: ISO 8601 instants and dates, decimal places.

A received file can hold any text. pandas' parsers are lenient where the desk must not be
(``now`` parses as the wall clock, ``2026`` as New Year's midnight) and their result type depends
on the data (one year-0026 time makes the column microsecond-resolution, and the cast to the
desk's nanoseconds then raises for the whole batch). These functions read each text as a row of
character codes in one integer matrix, with no per-row regular expression (those cost seconds
per million rows), and say per row what is wrong instead of raising.
"""

from collections.abc import Sequence

import numpy as np
import pandas as pd

# Longer texts are not read as a time or a decimal number: it bounds the matrix.
MAX_TEXT_LENGTH = 64

# What is wrong with a text, per row ("" when nothing is). A row reports the first that applies.
NOT_ISO = "not_iso"  # not the accepted ISO 8601 form, or not a calendar date/time
DATE_ONLY = "date_only"  # a date, a year-month or a year without a time of day
OUT_OF_RANGE = "out_of_range"  # a real date/time outside the window the caller accepts
TOO_PRECISE = "too_precise"  # non-zero digits below the microsecond

_US_PER_MINUTE = 60_000_000
# A fraction starts in this column (YYYY-MM-DDThh:mm:ss.f…); from its seventh digit on, digits
# are below the microsecond.
_FRACTION = 20
_MICRO_DIGITS = 6
# Exponents are read up to this many digits; a longer one is as good as infinite here.
_EXPONENT_DIGITS = 6


def parse_instants(
    text: pd.Series, earliest: pd.Timestamp, latest: pd.Timestamp
) -> tuple[pd.Series, pd.Series]:
    """Read ISO 8601 date-times as UTC instants, saying per row what is wrong.

    The accepted form: ``YYYY-MM-DD``, ``T`` (or ``t`` or a space), ``hh:mm``, optionally
    ``:ss`` and a fraction (``.`` or ``,`` then digits), optionally a zone: ``Z``, ``±hh``,
    ``±hhmm`` or ``±hh:mm`` (up to 23:59). A time without a zone is UTC. At most
    MAX_TEXT_LENGTH characters.

    Args:
        text: one string per row, stripped.
        earliest: the first instant accepted (tz-aware).
        latest: the first instant no longer accepted (tz-aware); both within pandas'
            nanosecond range (1677-09-22 to 2262-04-11).

    Returns:
        ``(instants, problems)``: ``datetime64[ns, UTC]`` with NaT where a problem applies, and
        per row "" or one of NOT_ISO, DATE_ONLY, OUT_OF_RANGE, TOO_PRECISE (in that order of
        precedence), both with ``text``'s index.
    """
    codes, lengths = _matrix(text)
    digit = (codes >= ord("0")) & (codes <= ord("9"))
    value = codes.astype(np.int64) - ord("0")
    date_shape, year, month, day = _date_fields(codes, digit, value, lengths)
    time_shape, hour, minute, has_second, second = _clock_fields(codes, digit, value, lengths)
    has_fraction, fraction_end, micro, below_micro = _fraction(
        codes, digit, value, lengths, has_second
    )
    zone_start = np.where(has_fraction, fraction_end, np.where(has_second, 19, 16))
    zone_shape, offset_minutes, zone_fields_ok = _zone(codes, lengths, zone_start)

    calendar = date_shape & _real_date(year, month, day)
    clock = (hour <= 23) & (minute <= 59) & (second <= 59) & zone_fields_ok
    valid = calendar & time_shape & clock & zone_shape
    days = _days_from_civil(np.where(valid, year, 1970), np.where(valid, month, 1), day * valid)
    minutes = ((days * 24 + hour) * 60 + minute) - offset_minutes
    micros = np.where(valid, minutes * _US_PER_MINUTE + second * 1_000_000 + micro, 0)
    inside = (micros >= _micros(earliest)) & (micros < _micros(latest))
    date_alone = _date_alone(codes, digit, lengths)
    problems = _instant_problems(valid, inside, below_micro, date_alone)
    return (
        pd.Series(_utc_instants(micros, problems == ""), index=text.index),
        pd.Series(problems, index=text.index, dtype="object"),
    )


def _clock_fields(
    codes: np.ndarray, digit: np.ndarray, value: np.ndarray, lengths: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The time of day written after ``YYYY-MM-DD``: ``[Tt ]hh:mm`` and an optional ``:ss``.

    Args:
        codes: (rows, width) uint32 character codes (see ``_matrix``).
        digit: bool, same shape: where ``codes`` is an ASCII digit.
        value: int64, same shape: each code minus ``ord("0")``.
        lengths: int64 per row, the text's length in characters.

    Returns:
        Per row: ``time_shape`` (bool: separator, ``hh:mm`` digits and colon in place), ``hour``
        and ``minute`` (int64, not range-checked), ``has_second`` (bool: ``:ss`` follows) and
        ``second`` (int64, 0 without one).
    """
    time_shape = (
        (lengths >= 16)
        & _is(codes[:, 10], "Tt ")
        & digit[:, [11, 12, 14, 15]].all(axis=1)
        & (codes[:, 13] == ord(":"))
    )
    hour, minute = _number(value, [11, 12]), _number(value, [14, 15])
    has_second = (lengths >= 19) & (codes[:, 16] == ord(":")) & digit[:, [17, 18]].all(axis=1)
    second = np.where(has_second, _number(value, [17, 18]), 0)
    return time_shape, hour, minute, has_second, second


def _fraction(
    codes: np.ndarray,
    digit: np.ndarray,
    value: np.ndarray,
    lengths: np.ndarray,
    has_second: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The fraction of a second after ``:ss`` (``.`` or ``,`` then digits), to the microsecond.

    Args:
        codes: (rows, width) uint32 character codes (see ``_matrix``).
        digit: bool, same shape: where ``codes`` is an ASCII digit.
        value: int64, same shape: each code minus ``ord("0")``.
        lengths: int64 per row, the text's length in characters.
        has_second: bool per row, where ``:ss`` is written (a fraction needs it).

    Returns:
        Per row: ``has_fraction`` (bool), ``fraction_end`` (int64, the column after its last
        digit; meaningless without a fraction), ``micro`` (int64 microseconds, its first six
        digits, 0 without one) and ``below_micro`` (bool: a non-zero digit after the sixth).
    """
    has_fraction = has_second & (lengths >= 21) & _is(codes[:, 19], ".,") & digit[:, _FRACTION]
    # The matrix has a padding column after the longest text, so every fraction ends inside it.
    fraction_end = _FRACTION + np.argmax(~digit[:, _FRACTION:], axis=1)
    micro = np.zeros(len(codes), dtype=np.int64)
    for k in range(_MICRO_DIGITS):
        column = _FRACTION + k
        micro = micro * 10 + np.where(has_fraction & (column < fraction_end), value[:, column], 0)
    columns = np.arange(codes.shape[1])
    below_micro = (
        (columns >= _FRACTION + _MICRO_DIGITS)
        & (columns < fraction_end[:, None])
        & (codes >= ord("1"))
        & (codes <= ord("9"))
    ).any(axis=1) & has_fraction
    return has_fraction, fraction_end, micro, below_micro


def _instant_problems(
    valid: np.ndarray, inside: np.ndarray, below_micro: np.ndarray, date_alone: np.ndarray
) -> np.ndarray:
    """Per row, "" or the problem of highest precedence (NOT_ISO/DATE_ONLY first, TOO_PRECISE last).

    Args:
        valid: bool, the text is a real date-time of the accepted form.
        inside: bool, its instant is within the accepted window (meaningful where valid).
        below_micro: bool, its fraction has non-zero digits below the microsecond.
        date_alone: bool, the text is a year, a year-month or a date and nothing else.

    Returns:
        object array of str.
    """
    problems = np.full(len(valid), "", dtype=object)
    problems[valid & inside & below_micro] = TOO_PRECISE
    problems[valid & ~inside] = OUT_OF_RANGE
    problems[~valid] = NOT_ISO
    problems[~valid & date_alone] = DATE_ONLY
    return problems


def _utc_instants(micros: np.ndarray, ok: np.ndarray) -> pd.DatetimeIndex:
    """``datetime64[ns, UTC]`` from int64 microseconds since the epoch, NaT where not ``ok``."""
    nanos = np.where(ok, micros, 0) * 1000
    return pd.DatetimeIndex(
        np.where(ok, nanos, np.iinfo(np.int64).min).view("datetime64[ns]")
    ).tz_localize("UTC")


def parse_dates(
    text: pd.Series, earliest: pd.Timestamp, latest: pd.Timestamp
) -> tuple[pd.Series, pd.Series]:
    """Read ISO 8601 calendar dates (``YYYY-MM-DD``), saying per row what is wrong.

    Args:
        text: one string per row, stripped.
        earliest: the first date accepted (naive midnight).
        latest: the first date no longer accepted (naive midnight); both within pandas'
            nanosecond range.

    Returns:
        ``(dates, problems)``: naive ``datetime64[ns]`` midnights with NaT where a problem
        applies, and per row "", NOT_ISO or OUT_OF_RANGE, both with ``text``'s index.
    """
    codes, lengths = _matrix(text)
    digit = (codes >= ord("0")) & (codes <= ord("9"))
    value = codes.astype(np.int64) - ord("0")
    date_shape, year, month, day = _date_fields(codes, digit, value, lengths)
    valid = date_shape & (lengths == 10) & _real_date(year, month, day)
    days = _days_from_civil(np.where(valid, year, 1970), np.where(valid, month, 1), day * valid)
    first, last = (_micros(pd.Timestamp(d).tz_localize("UTC")) for d in (earliest, latest))
    micros = days * 86_400_000_000
    inside = (micros >= first) & (micros < last)
    problems = np.full(len(text), "", dtype=object)
    problems[valid & ~inside] = OUT_OF_RANGE
    problems[~valid] = NOT_ISO
    ok = problems == ""
    nanos = np.where(ok, np.where(ok, micros, 0) * 1000, np.iinfo(np.int64).min)
    return (
        pd.Series(nanos.view("datetime64[ns]"), index=text.index),
        pd.Series(problems, index=text.index, dtype="object"),
    )


def decimal_places(text: pd.Series) -> np.ndarray:
    """Per decimal number written in ``text``, how many digits after the point it needs.

    ``0.10`` needs 1, ``1.5e-3`` needs 4, ``12e3`` and ``7`` need 0: trailing zeros of the
    fraction and the exponent count, as in ``decimal.Decimal(t).normalize()``. Only meaningful
    for texts that are decimal numbers (``[+-]digits[.digits][e[+-]digits]``); the result for any
    other text is unspecified, and a text longer than MAX_TEXT_LENGTH reads as needing
    MAX_TEXT_LENGTH + 1 places.

    Returns:
        int64 array aligned with ``text``.
    """
    codes, lengths = _matrix(text)
    n, width = codes.shape
    rows, columns = np.arange(n), np.arange(width)
    inside = columns < lengths[:, None]
    exponent_at = _first(_is(codes, "eE") & inside, lengths)
    point_at = _first((codes == ord(".")) & (columns < exponent_at[:, None]), exponent_at)
    significant = (columns < exponent_at[:, None]) & (codes >= ord("1")) & (codes <= ord("9"))
    last = width - 1 - np.argmax(significant[:, ::-1], axis=1)
    # The last non-zero digit's place: 1 for tenths, 0 for units, -1 for tens, ...
    place = np.where(last > point_at, last - point_at, last - point_at + 1)
    sign_at = np.minimum(exponent_at + 1, width - 1)
    negative = codes[rows, sign_at] == ord("-")
    after_sign = exponent_at + 1 + _is(codes[rows, sign_at], "+-")
    # Leading zeros of the exponent say nothing: read from its first non-zero digit.
    nonzero = (columns >= after_sign[:, None]) & (codes >= ord("1")) & (codes <= ord("9"))
    first_digit = _first(nonzero & inside, lengths)
    exponent_digits = lengths - first_digit
    exponent = np.zeros(n, dtype=np.int64)
    for k in range(_EXPONENT_DIGITS):
        column = np.minimum(first_digit + k, width - 1)
        digit_value = codes[rows, column].astype(np.int64) - ord("0")
        exponent = np.where(k < exponent_digits, exponent * 10 + digit_value, exponent)
    # An exponent with more digits than were read is beyond any quantity the desk accepts.
    exponent = np.where(exponent_digits > _EXPONENT_DIGITS, 10**_EXPONENT_DIGITS, exponent)
    exponent = np.where(exponent_at < lengths, np.where(negative, -exponent, exponent), 0)
    places = np.where(significant.any(axis=1), np.maximum(place - exponent, 0), 0)
    return np.where(lengths > MAX_TEXT_LENGTH, MAX_TEXT_LENGTH + 1, places)


def _matrix(text: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Each text as a row of character codes padded with zeros, and its length.

    A text longer than MAX_TEXT_LENGTH becomes an empty row (its length is still reported).
    The matrix has at least one zero column after the longest text and at least 32 columns,
    so fixed positions of the date-time form can be read without bounds checks.
    """
    values = text.to_numpy(dtype=object)
    lengths = np.fromiter((len(v) for v in values), dtype=np.int64, count=len(values))
    fitting = np.where(lengths <= MAX_TEXT_LENGTH, values, "")
    width = max(int(lengths[lengths <= MAX_TEXT_LENGTH].max(initial=0)) + 1, 32)
    codes = fitting.astype(f"U{width}").view(np.uint32).reshape(len(values), width)
    return codes, lengths


def _is(codes: np.ndarray, characters: str) -> np.ndarray:
    return np.isin(codes, [ord(c) for c in characters])


def _number(value: np.ndarray, columns: Sequence[int]) -> np.ndarray:
    """The decimal number written in ``columns`` (digits assumed checked by the caller)."""
    number = np.zeros(len(value), dtype=np.int64)
    for column in columns:
        number = number * 10 + np.clip(value[:, column], 0, 9)
    return number


def _first(hit: np.ndarray, otherwise: np.ndarray) -> np.ndarray:
    """Per row, the first column where ``hit`` holds; ``otherwise`` where none does."""
    return np.where(hit.any(axis=1), np.argmax(hit, axis=1), otherwise)


def _date_fields(
    codes: np.ndarray, digit: np.ndarray, value: np.ndarray, lengths: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Whether each row starts with ``YYYY-MM-DD``, and its year, month and day."""
    shape = (
        (lengths >= 10)
        & digit[:, [0, 1, 2, 3, 5, 6, 8, 9]].all(axis=1)
        & (codes[:, 4] == ord("-"))
        & (codes[:, 7] == ord("-"))
    )
    year = _number(value, [0, 1, 2, 3])
    return shape, year, _number(value, [5, 6]), _number(value, [8, 9])


def _date_alone(codes: np.ndarray, digit: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Rows that are a year, a year-month or a date and nothing else."""
    year = digit[:, :4].all(axis=1)
    dash = codes[:, 4] == ord("-")
    year_month = year & dash & digit[:, [5, 6]].all(axis=1)
    return (
        ((lengths == 4) & year)
        | ((lengths == 7) & year_month)
        | ((lengths == 10) & year_month & (codes[:, 7] == ord("-")) & digit[:, [8, 9]].all(axis=1))
    )


def _zone(
    codes: np.ndarray, lengths: np.ndarray, start: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The zone written from ``start`` to the end: shape ok, offset in minutes, fields in range."""
    rows, width = np.arange(len(codes)), codes.shape[1]

    def at(k: int) -> np.ndarray:
        return codes[rows, np.minimum(start + k, width - 1)].astype(np.int64)

    def digits(*ks: int) -> np.ndarray:
        return np.logical_and.reduce([(at(k) >= ord("0")) & (at(k) <= ord("9")) for k in ks])

    rest = lengths - start
    signed = _is(at(0), "+-") & digits(1, 2)
    hours_only = signed & (rest == 3)
    compact = signed & (rest == 5) & digits(3, 4)
    extended = signed & (rest == 6) & (at(3) == ord(":")) & digits(4, 5)
    shape = (rest == 0) | ((rest == 1) & _is(at(0), "Zz")) | hours_only | compact | extended
    hours = np.where(signed, (at(1) - ord("0")) * 10 + at(2) - ord("0"), 0)
    minutes = np.where(
        compact,
        (at(3) - ord("0")) * 10 + at(4) - ord("0"),
        np.where(extended, (at(4) - ord("0")) * 10 + at(5) - ord("0"), 0),
    )
    sign = np.where(at(0) == ord("-"), -1, 1)
    return shape, sign * (hours * 60 + minutes), (hours <= 23) & (minutes <= 59)


def _real_date(year: np.ndarray, month: np.ndarray, day: np.ndarray) -> np.ndarray:
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    lengths = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])
    month_length = lengths[np.clip(month, 1, 12) - 1] + ((month == 2) & leap)
    return (month >= 1) & (month <= 12) & (day >= 1) & (day <= month_length)


def _days_from_civil(year: np.ndarray, month: np.ndarray, day: np.ndarray) -> np.ndarray:
    """Days since 1970-01-01 of proleptic Gregorian dates (H. Hinnant's days_from_civil)."""
    year = year - (month <= 2)
    era = year // 400
    year_of_era = year - era * 400
    day_of_year = (153 * (month + np.where(month > 2, -3, 9)) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return era * 146_097 + day_of_era - 719_468


def _micros(instant: pd.Timestamp) -> int:
    return int(pd.Timestamp(instant).tz_convert("UTC").value // 1000)
