"""Business days and 10-minute windows as UTC instants, in every IANA zone DESK_TIMEZONE accepts.

A day is [first instant of D, first instant of D+1): the first instant of a date is the first at
which the desk's clock reads its midnight or later. Where midnight does not exist (the clock
jumps from 23:59:59 to 01:00) the day starts at the jump; where it happens twice, at the first.
"""

import datetime as dt
import functools
import itertools
import zoneinfo

import dagster as dg
import numpy as np
import pandas as pd
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from desk_pipeline.defs.end_of_day import eod_as_of
from desk_pipeline.defs.partitions import DeskPartitions, desk_partitions
from desk_pipeline.defs.settings import DeskSettings
from desk_pipeline.domain.calendar import day_bounds, last_window_end

ZONES = sorted(zoneinfo.available_timezones())
SECOND = pd.Timedelta(seconds=1)
UTC = "UTC"


def utc(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz=UTC)


# The days an attack found failing (tz_localize of a midnight the clock skips or repeats), each
# with the day before or after it, whose end or start is that midnight.
CLOCK_CHANGES_AT_MIDNIGHT = [
    # Santiago: 2026-09-06 00:00 -04 jumps to 01:00 -03.
    ("America/Santiago", "2026-09-05", "2026-09-05 04:00", "2026-09-06 04:00"),
    ("America/Santiago", "2026-09-06", "2026-09-06 04:00", "2026-09-07 03:00"),
    # Havana: 03-08 00:00 -05 jumps to 01:00 -04; 11-01 01:00 -04 goes back to 00:00 -05.
    ("America/Havana", "2026-03-07", "2026-03-07 05:00", "2026-03-08 05:00"),
    ("America/Havana", "2026-03-08", "2026-03-08 05:00", "2026-03-09 04:00"),
    ("America/Havana", "2026-10-31", "2026-10-31 04:00", "2026-11-01 04:00"),
    ("America/Havana", "2026-11-01", "2026-11-01 04:00", "2026-11-02 05:00"),
    # Cairo: 04-24 00:00 +02 jumps to 01:00 +03.
    ("Africa/Cairo", "2026-04-23", "2026-04-22 22:00", "2026-04-23 22:00"),
    ("Africa/Cairo", "2026-04-24", "2026-04-23 22:00", "2026-04-24 21:00"),
    # Beirut: 03-29 00:00 +02 jumps to 01:00 +03.
    ("Asia/Beirut", "2026-03-28", "2026-03-27 22:00", "2026-03-28 22:00"),
    ("Asia/Beirut", "2026-03-29", "2026-03-28 22:00", "2026-03-29 21:00"),
    # Azores: 03-29 00:00 -01 jumps to 01:00 +00; 10-25 01:00 +00 goes back to 00:00 -01.
    ("Atlantic/Azores", "2026-03-28", "2026-03-28 01:00", "2026-03-29 01:00"),
    ("Atlantic/Azores", "2026-03-29", "2026-03-29 01:00", "2026-03-30 00:00"),
    ("Atlantic/Azores", "2026-10-24", "2026-10-24 00:00", "2026-10-25 00:00"),
    ("Atlantic/Azores", "2026-10-25", "2026-10-25 00:00", "2026-10-26 01:00"),
]
# Dates a clock skipped whole (a zone crossing the date line): empty days, the day before and
# the day after whole and adjacent.
SKIPPED_DATES = [
    # Apia 2011-12-29 24:00 -10 became 2011-12-31 00:00 +14.
    ("Pacific/Apia", "2011-12-29", "2011-12-29 10:00", "2011-12-30 10:00"),
    ("Pacific/Apia", "2011-12-30", "2011-12-30 10:00", "2011-12-30 10:00"),
    ("Pacific/Apia", "2011-12-31", "2011-12-30 10:00", "2011-12-31 10:00"),
    # Kiritimati 1994-12-31 00:00 -10 became 1995-01-01 00:00 +14.
    ("Pacific/Kiritimati", "1994-12-31", "1994-12-31 10:00", "1994-12-31 10:00"),
]


@pytest.mark.parametrize(("zone", "day", "start", "end"), CLOCK_CHANGES_AT_MIDNIGHT)
def test_a_day_whose_midnight_is_skipped_or_repeated_starts_at_its_first_instant(
    zone, day, start, end
):
    assert day_bounds(day, zone) == (utc(start), utc(end))


@pytest.mark.parametrize(("zone", "day", "start", "end"), SKIPPED_DATES)
def test_a_date_the_clock_skipped_is_an_empty_day_between_two_whole_ones(zone, day, start, end):
    assert day_bounds(day, zone) == (utc(start), utc(end))


@pytest.mark.parametrize(("zone", "day", "start", "end"), CLOCK_CHANGES_AT_MIDNIGHT)
def test_the_days_are_the_daily_partitions_and_their_last_window_ends_the_day(
    zone, day, start, end
):
    partitions = partitions_for(zone, day)
    window = partitions.daily.time_window_for_partition_key(day)
    assert (as_utc(window.start), as_utc(window.end)) == (utc(start), utc(end))
    assert windows_of(partitions.intraday, day, zone)[-1][1] == utc(end)


def test_a_days_eod_as_of_is_its_end_or_todays_last_closed_window_where_midnight_repeats():
    # Today's EOD refresh computed the end of 2026-10-24 in Azores (tz_localize of 10-25 00:00,
    # which happens twice): it failed on every tick of the day.
    now = utc("2026-10-24 15:07:30")
    as_of = eod_as_of(["2026-10-23", "2026-10-24"], "Atlantic/Azores", now)
    assert as_of["as_of"].tolist() == [utc("2026-10-24 00:00"), utc("2026-10-24 15:00")]


@pytest.mark.parametrize(
    ("zone", "now", "end"),
    [
        ("UTC", "2026-03-02 10:12:00", "2026-03-02 10:10"),
        ("Europe/London", "2026-03-29 01:00:00", "2026-03-29 01:00"),
        # +05:45 and +12:45: the windows end at :05, :15 ... and :55, :05 ... UTC, not :00, :10.
        ("Asia/Kathmandu", "2026-03-02 10:12:00", "2026-03-02 10:05"),
        ("Pacific/Chatham", "2026-07-02 10:04:59", "2026-07-02 09:55"),
    ],
)
def test_the_last_closed_window_ends_on_the_ten_minute_grid_of_the_desk_clock(zone, now, end):
    assert last_window_end(utc(now), zone) == utc(end)


def reference_first_instant(day: dt.date, zone: str) -> pd.Timestamp:
    """The first second at which the clock in ``zone`` reads ``day`` 00:00 or later, by scanning.

    Every minute from 27 hours before to 27 hours after midnight UTC (offsets stay within
    -12..+14 h, a jump within 24 h), then every second of the minute before the first match.
    """
    midnight = pd.Timestamp(day)
    minutes = pd.date_range(midnight - pd.Timedelta(hours=27), periods=54 * 60 + 1, freq="min")
    first = minutes.tz_localize(UTC)[first_reading(minutes.tz_localize(UTC), zone, midnight)]
    seconds = pd.date_range(first - pd.Timedelta(minutes=1), first, freq="s")
    return seconds[first_reading(seconds, zone, midnight)]


def first_reading(instants: pd.DatetimeIndex, zone: str, midnight: pd.Timestamp) -> int:
    reads = instants.tz_convert(zone).tz_localize(None) >= midnight
    assert reads.any()
    return int(np.argmax(reads))


def offset(instant: pd.Timestamp, zone: str) -> pd.Timedelta:
    return pd.Timedelta(instant.tz_convert(zone).utcoffset())


@functools.cache
def clock_changes_near_midnight(zone: str) -> list[dt.date]:
    """The dates 1970-2100 whose midnight in ``zone`` is skipped or repeated, and their eves."""
    days = pd.date_range("1970-01-02", "2100-12-31", freq="D")
    odd = days.tz_localize(zone, ambiguous="NaT", nonexistent="NaT").isna()
    marked = odd | np.roll(odd, -1)
    return [d.date() for d in days[marked]]


@st.composite
def zone_days(draw: st.DrawFn, since: int = 1970) -> tuple[str, dt.date]:
    """Any zone and a date ``since``-2100, half the time one whose midnight is skipped/repeated."""
    zone = draw(st.sampled_from(ZONES))
    changes = [d for d in clock_changes_near_midnight(zone) if d.year >= since]
    if changes and draw(st.booleans()):
        return zone, draw(st.sampled_from(changes))
    return zone, draw(st.dates(dt.date(since, 1, 1), dt.date(2100, 12, 31)))


# Dagster's 10-minute partitions leave the desk's clock in three zones before 1990: they keep to
# the UTC grid under Africa/Monrovia's -00:44:30 (until 1972) and America/Guyana's -03:45 (until
# 1975), and raise on Asia/Kathmandu's move to +05:45 (1986-01-01). The desk's days are right
# there too (test_every_zone_cuts_the_time_line_into_its_days); Dagster's windows are not.
WINDOWS_SINCE = 1990


@settings(max_examples=300, deadline=None)
@given(zone_days())
@example(("Atlantic/Azores", dt.date(2026, 10, 25)))
@example(("America/Havana", dt.date(2026, 3, 8)))
@example(("Pacific/Apia", dt.date(2011, 12, 30)))
@example(("Antarctica/Casey", dt.date(2009, 10, 18)))  # +08 to +11: a 21-hour day
@example(("Antarctica/Vostok", dt.date(1994, 1, 31)))  # a 31-hour day
def test_every_zone_cuts_the_time_line_into_its_days(zone_day):
    zone, day = zone_day
    start, end = day_bounds(day, zone)
    following = day_bounds(day + dt.timedelta(days=1), zone)
    assert start == reference_first_instant(day, zone)
    assert end == following[0]  # consecutive days tile the line, no gap, no overlap
    assert start <= end
    # 22 to 26 hours, except on a day the zone moved its clock by more than two hours
    # (Antarctic stations, zones crossing the date line).
    jump = abs(offset(end, zone) - offset(start - SECOND, zone))
    assert pd.Timedelta(hours=22) <= end - start <= pd.Timedelta(hours=26) or (
        jump > pd.Timedelta(hours=2)
    )
    # A day starts on its own date, unless the clock skipped the date whole.
    assert start.tz_convert(zone).date() == day or start == end


@settings(max_examples=40, deadline=None)
@given(zone_days(WINDOWS_SINCE), st.integers(0, 24 * 60 * 60 - 1))
@example(("Atlantic/Azores", dt.date(2026, 10, 25)), 3_000)
@example(("Asia/Kathmandu", dt.date(2026, 3, 2)), 36_720)
@example(("Pacific/Apia", dt.date(2011, 12, 31)), 0)
@example(("America/Moncton", dt.date(1993, 10, 30)), 86_399)
@example(("America/Moncton", dt.date(1993, 10, 31)), 1_800)
def test_the_ten_minute_partitions_tile_each_day_and_the_last_closed_one_ends_on_the_grid(
    zone_day, second
):
    zone, day = zone_day
    start, end = day_bounds(day, zone)
    if start == end:  # a date the clock skipped: no time, no window
        return
    windows = windows_of(partitions_for(zone, day).intraday, day, zone)
    assert windows[0][0] == start and windows[-1][1] == end
    assert all(w[1] == n[0] for w, n in itertools.pairwise(windows))
    assert all(pd.Timedelta(0) < e - s <= pd.Timedelta(minutes=10) for s, e in windows)
    # The end of the last closed window is the start of the window ``now`` is in.
    now = min(start + pd.Timedelta(seconds=second), end - SECOND)
    closed = last_window_end(now, zone)
    assert closed == max(s for s, _ in windows if s <= now)


def partitions_for(zone: str, day: str | dt.date) -> DeskPartitions:
    """The desk's partitions in ``zone`` from the day before ``day``."""
    first = (pd.Timestamp(day) - pd.Timedelta(days=1)).strftime("%Y-%m-%d")
    return desk_partitions(DeskSettings(start_date=first, timezone=zone, warehouse_url="sqlite://"))


def windows_of(
    intraday: dg.TimeWindowPartitionsDefinition, day: str | dt.date, zone: str
) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """UTC start and end of each 10-minute partition within ``day``, in order.

    By time, not by key: where the clock goes back across midnight (America/Moncton's 00:01
    transitions until 2006) keys named after the day before run on into the day.
    """
    start, end = day_bounds(day, zone)
    keys = intraday.get_partition_keys_in_time_window(
        dg.TimeWindow(start.to_pydatetime(), end.to_pydatetime())
    )
    spans = [intraday.time_window_for_partition_key(k) for k in keys]
    return [(as_utc(w.start), as_utc(w.end)) for w in spans]


def as_utc(instant: dt.datetime) -> pd.Timestamp:
    return pd.Timestamp(instant).tz_convert(UTC)
