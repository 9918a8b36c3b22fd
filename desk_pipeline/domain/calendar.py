"""Business days in the desk's time zone, expressed as UTC instants."""

import datetime as dt

import pandas as pd

from desk_pipeline.domain.errors import InvalidRangeError


def day_bounds(business_date: dt.date | str, timezone: str) -> tuple[pd.Timestamp, pd.Timestamp]:
    """UTC start and end of a business day: [D 00:00, D+1 00:00) in ``timezone``.

    DST days are 23 or 25 hours long; midnight always exists in the zones a desk runs in.
    """
    day = pd.Timestamp(business_date).normalize()
    start = day.tz_localize(timezone)
    end = (day + pd.Timedelta(days=1)).tz_localize(timezone)
    return start.tz_convert("UTC"), end.tz_convert("UTC")


def business_day_of(instant: pd.Timestamp, timezone: str) -> str:
    """The business day (YYYY-MM-DD) ``instant`` (tz-aware) falls on in ``timezone``.

    With the clock's instant, today: the last day of the desk calendar, the daily partitions'
    last key (``end_offset=1``), so today's EOD can be refreshed during the day.
    """
    return str(instant.tz_convert(timezone).strftime("%Y-%m-%d"))


def business_dates(start: dt.date | str, end: dt.date | str) -> list[str]:
    """Every calendar date from ``start`` to ``end`` inclusive, as YYYY-MM-DD strings.

    Raises:
        InvalidRangeError: when ``end`` is before ``start``.
    """
    first, last = pd.Timestamp(start), pd.Timestamp(end)
    if last < first:
        raise InvalidRangeError(
            f"date range {first:%Y-%m-%d}..{last:%Y-%m-%d} is reversed: its start is after its "
            "end; give the earlier day first"
        )
    return [d.strftime("%Y-%m-%d") for d in pd.date_range(first, last, freq="D")]


def calendar_days(
    first: str, last: str, *, start_date: str, today: str, timezone: str
) -> list[str]:
    """The days ``first``..``last`` (YYYY-MM-DD), when all are in the desk calendar.

    The calendar runs from ``start_date`` (DESK_START_DATE) to ``today``, today's date in
    ``timezone`` (DESK_TIMEZONE): the days the desk's daily partitions hold.

    Raises:
        InvalidRangeError: the range is reversed, or some of its days are before
            ``start_date`` or after ``today``; the one-line message says which and the fix
            (set DESK_START_DATE earlier, naming its value; end the range at ``today``).
    """
    dates = business_dates(first, last)
    early = [d for d in dates if d < start_date]
    late = [d for d in dates if d > today]
    problems = [
        *([_before_start(early, start_date)] if early else []),
        *([_after_today(late, today, timezone)] if late else []),
    ]
    if problems:
        raise InvalidRangeError("; ".join(problems))
    return dates


def up_to_today(day: str, *, today: str, timezone: str) -> str:
    """``day`` (YYYY-MM-DD) itself, when it is not after ``today``, today's date in ``timezone``.

    What a read asks of its day: no day after today can have an EOD yet, while a day before
    DESK_START_DATE may have one (stored by a desk whose calendar started earlier).

    Raises:
        InvalidRangeError: ``day`` is after ``today``; the message names today's date.
    """
    if day > today:
        raise InvalidRangeError(_after_today([day], today, timezone))
    return day


def _days(dates: list[str]) -> str:
    """``dates`` (ascending) as the subject of a sentence: "day D is" or "days D1..D2 are"."""
    return f"day {dates[0]} is" if len(dates) == 1 else f"days {dates[0]}..{dates[-1]} are"


def _before_start(dates: list[str], start_date: str) -> str:
    return (
        f"{_days(dates)} before DESK_START_DATE={start_date}, the desk's first business day: "
        f"set DESK_START_DATE to {dates[0]} or earlier"
    )


def _after_today(dates: list[str], today: str, timezone: str) -> str:
    return (
        f"{_days(dates)} after today: the desk's last business day is today, {today} in "
        f"DESK_TIMEZONE={timezone}; pick days up to {today}"
    )
