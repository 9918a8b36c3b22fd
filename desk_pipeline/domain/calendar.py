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


def business_dates(start: dt.date | str, end: dt.date | str) -> list[str]:
    """Every calendar date from ``start`` to ``end`` inclusive, as YYYY-MM-DD strings.

    Raises:
        InvalidRangeError: when ``end`` is before ``start``.
    """
    first, last = pd.Timestamp(start), pd.Timestamp(end)
    if last < first:
        raise InvalidRangeError(f"date range {first:%Y-%m-%d}..{last:%Y-%m-%d} is reversed")
    return [d.strftime("%Y-%m-%d") for d in pd.date_range(first, last, freq="D")]
