"""The values of every document: the business day asked for, and the values printed.

Numbers, quantities, texts and instants are written the same way in every document.
"""

from typing import Any

import pandas as pd

from desk_pipeline.domain.errors import InvalidRangeError
from desk_pipeline.domain.parsing import OUT_OF_RANGE, parse_dates
from desk_pipeline.domain.positions.trades import BOOK_ID
from desk_pipeline.domain.precision import exact_quantities, for_output
from desk_pipeline.domain.validation.cells import Received, control_check
from desk_pipeline.domain.validation.rules import first_failures

# The dates a command accepts: any the desk could hold, within pandas' nanosecond range.
_DATE_BOUNDS = (pd.Timestamp("1900-01-01"), pd.Timestamp("2200-01-01"))
# A refused value is repeated up to this many characters; a longer one is cut and measured.
ECHOED_CHARACTERS = 40


def business_day(value: str, option: str) -> str:
    """``value``, a calendar date written YYYY-MM-DD (ISO 8601), as that string.

    Nothing else is guessed: ``11/12/2026`` (12 November or 11 December?), ``20261120`` and
    ``Nov 20 2026`` are refused, as is a date that does not exist (``2026-02-30``) and one
    outside the dates the desk holds (1900-01-01 to 2199-12-31).

    Raises:
        InvalidRangeError: ``value`` is not such a date; the message names ``option``.
    """
    dates, problems = parse_dates(pd.Series([value.strip()]), *_DATE_BOUNDS)
    if problems.iloc[0] == OUT_OF_RANGE:
        first, end = _DATE_BOUNDS
        raise InvalidRangeError(
            f"{option} {echoed(value)} is outside the dates the desk holds, "
            f"{first:%Y-%m-%d} to {end - pd.Timedelta(days=1):%Y-%m-%d}"
        )
    if problems.iloc[0]:
        raise InvalidRangeError(
            f"{option} {echoed(value)} is not a calendar date written YYYY-MM-DD, e.g. 2026-03-06"
        )
    return str(dates.iloc[0].strftime("%Y-%m-%d"))


def book_id(value: str, option: str) -> str:
    """``value``, a book id as asked for, if ingest would keep it as one (trades.BOOK_ID).

    A value ingest refuses (blank, too long, a control character such as NUL, which PostgreSQL
    refuses in a query, an invisible format character such as U+200B) is no stored book's id:
    asking for it is a usage error, not a query.

    Raises:
        InvalidRangeError: ingest would refuse ``value``; the message names ``option`` and why.
    """
    # Ingest strips the cell before its checks; a control character at either end is refused
    # all the same here (a lookup uses the value as given, and "\x1f" strips to "empty").
    raw = control_check(pd.Series([value]), "book_id")
    asked = pd.DataFrame({"book_id": [value]})
    _, checks = BOOK_ID.read(Received(asked), "book_id")
    code, reason = first_failures([raw, *checks], asked.index)
    if code.iloc[0]:
        raise InvalidRangeError(f"{option} {echoed(value)} is no book id: {reason.iloc[0]}")
    return value


def backfill_command(first: str, last: str) -> str:
    """The `desk backfill` of days ``first``..``last`` (YYYY-MM-DD), as the documents advise it.

    It brings the stored EODs' valuations and rankings of those days up to date (`desk status`'s
    ``incomplete_fix``, a ranking's of an older snapshot).
    """
    return f"desk backfill --start {first} --end {last}"


def echoed(value: str) -> str:
    """``value`` quoted as a message repeats it: whole, or its start and how long it was."""
    if len(value) <= ECHOED_CHARACTERS:
        return repr(value)
    return f"{value[:ECHOED_CHARACTERS]!r}… ({len(value):,} characters)"


def number(value: Any) -> float | None:
    """A price, rate, average, P&L or value as printed; None for a missing one."""
    # Every price, rate, average, P&L and value printed goes through the one rounding rule.
    return None if pd.isna(value) else for_output(value)


def quantity(value: Any) -> float:
    """A quantity as printed, on the micro-unit grid."""
    # Exact decimals already; back on the micro-unit grid should an older row carry float dust.
    return float(exact_quantities(value))


def text(value: Any) -> str | None:
    """A stored text as printed; None for a missing one."""
    # pandas 3 reads a missing string as NaN; JSON wants null.
    return None if pd.isna(value) else str(value)


def iso_instant(as_of_us: Any) -> str:
    """Microseconds since the epoch (UTC) as an ISO 8601 instant, e.g. an EOD's as-of."""
    return pd.Timestamp(int(as_of_us), unit="us", tz="UTC").isoformat()
