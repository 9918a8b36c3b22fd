"""Business days in the desk's time zone, expressed as UTC instants."""

import dataclasses
import datetime as dt
import functools
import zoneinfo

import pandas as pd

from desk_pipeline.domain.errors import InvalidRangeError

# The grid of the 10-minute partitions on the desk's clock (cron */10 in DESK_TIMEZONE).
WINDOW = pd.Timedelta(minutes=10)
# The first day the desk can hold: its partitions begin at the Unix epoch (DESK_START_DATE too).
EARLIEST_DAY = "1970-01-01"


def day_bounds(business_date: dt.date | str, timezone: str) -> tuple[pd.Timestamp, pd.Timestamp]:
    """UTC start and end of a business day: [first instant of D, first instant of D+1).

    The first instant of a date is the first at which the clock in ``timezone`` reads that
    date's midnight or later. Usually that is midnight itself (DST days last 23 or 25 hours);
    where the clock jumps over midnight (America/Havana, Atlantic/Azores, Africa/Cairo ...) the
    day starts at the jump, and where it reads midnight twice, at the first. A date the clock
    skips altogether (Pacific/Apia 2011-12-30) is an empty day.
    """
    day = pd.Timestamp(business_date).date()
    zone = zoneinfo.ZoneInfo(timezone)
    return _first_instant(day, zone), _first_instant(day + dt.timedelta(days=1), zone)


def last_window_end(now: pd.Timestamp, timezone: str) -> pd.Timestamp:
    """The end of the last 10-minute window closed at ``now`` (UTC): HH:M0 on the desk's clock.

    Not ``now.floor("10min")``: in a zone whose offset is not a whole number of 10 minutes
    (Asia/Kathmandu, Australia/Eucla, Pacific/Chatham) the windows end at :05, :15 ... UTC.
    """
    wall = now.tz_convert(timezone).tz_localize(None)
    return now - (wall - wall.floor(WINDOW))


def _first_instant(day: dt.date, zone: zoneinfo.ZoneInfo) -> pd.Timestamp:
    """The first instant at which the clock in ``zone`` reads ``day`` 00:00 or later, UTC."""
    midnight = dt.datetime.combine(day, dt.time())
    # fold=0 (PEP 495): the earlier of two midnights; a midnight in a gap with the offset before
    # the jump, which lands at or after the jump.
    after = midnight.replace(tzinfo=zone).astimezone(dt.UTC)
    if after.astimezone(zone).replace(tzinfo=None) == midnight:
        return pd.Timestamp(after)
    # Midnight is in a gap: with the offset after the jump it lands before the jump. The jump
    # (a whole second in the tz database) is the first second from which the clock reads
    # midnight or later.
    before = midnight.replace(tzinfo=zone, fold=1).astimezone(dt.UTC)
    low, high = int(before.timestamp()), int(after.timestamp())
    while high - low > 1:
        middle = (low + high) // 2
        if dt.datetime.fromtimestamp(middle, zone).replace(tzinfo=None) >= midnight:
            high = middle
        else:
            low = middle
    return pd.Timestamp(high, unit="s", tz="UTC")


# The instants two zone names are compared at: every hour the desk can hold a date in.
_HOURS = (pd.Timestamp("1900-01-01", tz="UTC"), pd.Timestamp("2200-01-01", tz="UTC"))


@functools.cache
def same_business_days(a: str, b: str) -> bool:
    """Whether IANA zones ``a`` and ``b`` cut the same business days.

    They do when they have the same UTC offset at every hour from 1900 to 2199 (the dates the
    desk holds): one zone's names (``UTC``, ``Etc/UTC``, ``Zulu``; ``GB``, ``Europe/London``),
    or zones whose rules agree over that span (``GMT`` and ``UTC``). A warehouse recorded in
    one accepts a process configured with the other. Costs ~0.5 s when the names differ.
    """
    if a == b:
        return True
    hours = pd.date_range(*_HOURS, freq="h", inclusive="left")
    clock = hours.tz_localize(None).asi8
    return bool(
        (
            (hours.tz_convert(a).tz_localize(None).asi8 - clock)
            == (hours.tz_convert(b).tz_localize(None).asi8 - clock)
        ).all()
    )


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


@dataclasses.dataclass(frozen=True)
class Quotes:
    """How a refusal names the calendar's settings, each value with where it came from.

    ``start_date`` and ``timezone`` as the message shows them, e.g. ``DESK_START_DATE=2026-11-19
    (from /srv/desk/.desk/desk.env)``; ``earlier``, the fix for days from ``{day}`` on: where
    and how to set DESK_START_DATE earlier; ``gap``, what else to do when they end before it.
    """

    start_date: str
    timezone: str
    earlier: str = "set DESK_START_DATE to {day} or earlier"
    # Said when the days refused end before the eve of the start, so a backfill of them alone
    # would leave the days between out: with {day}, {eve} (the start's eve) and {start}.
    gap: str = ""

    @classmethod
    def plain(cls, start_date: str, timezone: str) -> "Quotes":
        """The settings' values alone, origin unsaid."""
        return cls(f"DESK_START_DATE={start_date}", f"DESK_TIMEZONE={timezone}")


def calendar_days(
    first: str,
    last: str,
    *,
    start_date: str,
    today: str,
    timezone: str,
    quotes: Quotes | None = None,
) -> list[str]:
    """The days ``first``..``last`` (YYYY-MM-DD), when all are in the desk calendar.

    The calendar runs from ``start_date`` (DESK_START_DATE) to ``today``, today's date in
    ``timezone`` (DESK_TIMEZONE): the days the desk's daily partitions hold. ``quotes`` say
    where the settings' values came from (default: the values alone).

    Raises:
        InvalidRangeError: the range is reversed, or some of its days are before
            ``start_date`` or after ``today``; the one-line message says which and the fix
            (set DESK_START_DATE earlier, naming its value; end the range at ``today``).
    """
    quotes = quotes or Quotes.plain(start_date, timezone)
    dates = business_dates(first, last)
    early = [d for d in dates if d < start_date]
    late = [d for d in dates if d > today]
    problems = [
        *([_before_start(early, start_date, quotes)] if early else []),
        *([_after_today(late, today, quotes)] if late else []),
    ]
    if problems:
        raise InvalidRangeError("; ".join(problems))
    return dates


def up_to_today(day: str, *, today: str, timezone: str, quotes: Quotes | None = None) -> str:
    """``day`` (YYYY-MM-DD) itself, when it is not after ``today``, today's date in ``timezone``.

    What a read asks of its day: no day after today can have an EOD yet, while a day before
    DESK_START_DATE may have one (stored by a desk whose calendar started earlier).

    Raises:
        InvalidRangeError: ``day`` is after ``today``; the message names today's date.
    """
    if day > today:
        raise InvalidRangeError(_after_today([day], today, quotes or Quotes.plain("", timezone)))
    return day


def _days(dates: list[str]) -> str:
    """``dates`` (ascending) as the subject of a sentence: "day D is" or "days D1..D2 are"."""
    return f"day {dates[0]} is" if len(dates) == 1 else f"days {dates[0]}..{dates[-1]} are"


def _before_start(dates: list[str], start_date: str, quotes: Quotes) -> str:
    if dates[0] < EARLIEST_DAY:
        # No DESK_START_DATE reaches it: setting one as the usual fix says would be refused.
        return (
            f"{_days(dates)} before {quotes.start_date}, the desk's first business day, and "
            f"no day before {EARLIEST_DAY} can be held (the desk's partitions begin there): "
            f"start the range on {EARLIEST_DAY} or later"
        )
    fix = quotes.earlier.format(day=dates[0])
    eve = (pd.Timestamp(start_date) - pd.Timedelta(days=1)).strftime("%Y-%m-%d")
    if dates[-1] < eve:
        fix += quotes.gap.format(day=dates[0], eve=eve, start=start_date)
    return f"{_days(dates)} before {quotes.start_date}, the desk's first business day: {fix}"


def _after_today(dates: list[str], today: str, quotes: Quotes) -> str:
    return (
        f"{_days(dates)} after today: the desk's last business day is today, {today} in "
        f"{quotes.timezone}; pick days up to {today}"
    )
