"""The desk calendar: DESK_START_DATE to today in DESK_TIMEZONE, and the days refused outside it."""

import datetime as dt
import zoneinfo

import dagster as dg
import pandas as pd
import pytest
from dagster._core.test_utils import freeze_time
from hypothesis import given, settings
from hypothesis import strategies as st

from desk_pipeline.defs.partitions import desk_partitions
from desk_pipeline.defs.settings import DeskSettings
from desk_pipeline.domain.calendar import (
    Quotes,
    business_dates,
    business_day_of,
    calendar_days,
    same_business_days,
    up_to_today,
)
from desk_pipeline.domain.errors import InvalidRangeError
from desk_pipeline_tests.sizes import examples

# UTC, zones with DST on either side of it, and the earliest and latest days on Earth.
ZONES = ["UTC", "Europe/London", "America/New_York", "Asia/Tokyo", "Pacific/Kiritimati"]
ZONES += ["Pacific/Pago_Pago"]
BASE = dt.date(2026, 3, 1)
INSTANTS = st.datetimes(
    min_value=dt.datetime(2025, 1, 1),  # noqa: DTZ001
    max_value=dt.datetime(2028, 12, 31),  # noqa: DTZ001
    timezones=st.just(dt.UTC),
)


def days_from(base: dt.date, span: int = 40) -> st.SearchStrategy[str]:
    return st.integers(-span, span).map(lambda n: (base + dt.timedelta(days=n)).isoformat())


def refusal(first: str, last: str, start: str, today: str, zone: str = "UTC") -> str:
    with pytest.raises(InvalidRangeError) as refused:
        calendar_days(first, last, start_date=start, today=today, timezone=zone)
    return str(refused.value)


def test_a_day_before_the_start_names_desk_start_date_and_the_earliest_day_asked():
    assert refusal("2026-02-27", "2026-03-02", start="2026-03-01", today="2026-12-01") == (
        "days 2026-02-27..2026-02-28 are before DESK_START_DATE=2026-03-01, the desk's first "
        "business day: set DESK_START_DATE to 2026-02-27 or earlier"
    )


def test_a_day_after_today_names_today_in_the_desk_time_zone_not_desk_start_date():
    message = refusal("2026-11-30", "2026-12-03", "2026-03-01", "2026-12-01", "Asia/Tokyo")
    assert message == (
        "days 2026-12-02..2026-12-03 are after today: the desk's last business day is today, "
        "2026-12-01 in DESK_TIMEZONE=Asia/Tokyo; pick days up to 2026-12-01"
    )
    assert "DESK_START_DATE" not in message


def test_a_range_over_both_ends_names_both_fixes_on_one_line():
    message = refusal("2026-02-28", "2026-12-02", start="2026-03-01", today="2026-12-01")
    assert message == (
        "day 2026-02-28 is before DESK_START_DATE=2026-03-01, the desk's first business day: set "
        "DESK_START_DATE to 2026-02-28 or earlier; day 2026-12-02 is after today: the desk's "
        "last business day is today, 2026-12-01 in DESK_TIMEZONE=UTC; pick days up to 2026-12-01"
    )


# How the desk's settings quote a calendar from make run's desk.env (DeskSettings._quotes).
FROM_FILE = Quotes(
    "DESK_START_DATE=2026-11-19 (from /p/.desk/desk.env)",
    "DESK_TIMEZONE=UTC (from /p/.desk/desk.env)",
    "set DESK_START_DATE to {day} or earlier in /p/.desk/desk.env",
    ", then backfill {day}..{eve} in one range, up to {start}",
)


def test_a_refusal_says_where_each_setting_came_from_and_where_to_change_it():
    # The README's old example on the demo's warehouse, from a shell without DESK_START_DATE.
    with pytest.raises(InvalidRangeError) as refused:
        calendar_days(
            "2026-01-05",
            "2026-01-09",
            start_date="2026-11-19",
            today="2026-12-01",
            timezone="UTC",
            quotes=FROM_FILE,
        )
    assert str(refused.value) == (
        "days 2026-01-05..2026-01-09 are before DESK_START_DATE=2026-11-19 (from "
        "/p/.desk/desk.env), the desk's first business day: set DESK_START_DATE to 2026-01-05 or "
        "earlier in /p/.desk/desk.env, then backfill 2026-01-05..2026-11-18 in one range, up to "
        "2026-11-19"
    )
    with pytest.raises(InvalidRangeError) as refused:
        up_to_today("2026-12-02", today="2026-12-01", timezone="UTC", quotes=FROM_FILE)
    assert str(refused.value) == (
        "day 2026-12-02 is after today: the desk's last business day is today, 2026-12-01 in "
        "DESK_TIMEZONE=UTC (from /p/.desk/desk.env); pick days up to 2026-12-01"
    )


@given(first=days_from(BASE), span=st.integers(0, 12), start=days_from(BASE))
def test_the_gap_is_named_exactly_when_the_days_end_before_the_eve_of_the_start(first, span, start):
    last = (dt.date.fromisoformat(first) + dt.timedelta(days=span)).isoformat()
    eve = (dt.date.fromisoformat(start) - dt.timedelta(days=1)).isoformat()
    if first >= start:
        assert calendar_days(
            first, last, start_date=start, today="2099-01-01", timezone="UTC", quotes=FROM_FILE
        )
        return
    with pytest.raises(InvalidRangeError) as refused:
        calendar_days(
            first, last, start_date=start, today="2099-01-01", timezone="UTC", quotes=FROM_FILE
        )
    message = str(refused.value)
    assert message.startswith(f"{'day' if min(last, eve) == first else 'days'} {first}")
    assert f"before {FROM_FILE.start_date}," in message
    assert f"set DESK_START_DATE to {first} or earlier in /p/.desk/desk.env" in message
    # A range that reaches the calendar joins the days stored from its start; one that stops
    # short would leave the days between out of every later day's positions.
    gap = f", then backfill {first}..{eve} in one range, up to {start}"
    assert (gap in message) == (last < eve)


def test_a_reversed_range_says_so_whatever_the_calendar():
    assert refusal("2026-03-04", "2026-03-02", start="2027-01-01", today="2026-12-01") == (
        "date range 2026-03-04..2026-03-02 is reversed: its start is after its end; give the "
        "earlier day first"
    )


def test_the_first_and_the_last_day_of_the_calendar_are_in_it():
    days = calendar_days(
        "2026-03-01", "2026-03-03", start_date="2026-03-01", today="2026-03-03", timezone="UTC"
    )
    assert days == ["2026-03-01", "2026-03-02", "2026-03-03"]


@given(
    first=days_from(BASE),
    last=days_from(BASE),
    start=days_from(BASE),
    today=days_from(BASE),
    zone=st.sampled_from(ZONES),
)
def test_a_range_is_its_days_or_refused_with_the_fix_for_each_way_it_leaves_the_calendar(
    first, last, start, today, zone
):
    def check() -> list[str]:
        return calendar_days(first, last, start_date=start, today=today, timezone=zone)

    if first > last:
        with pytest.raises(InvalidRangeError, match="is reversed"):
            check()
        return
    if start <= first and last <= today:
        days = check()
        assert days == business_dates(first, last)
        assert days[0] == first and days[-1] == last and len(days) == len(set(days))
        return
    with pytest.raises(InvalidRangeError) as refused:
        check()
    message = str(refused.value)
    assert "\n" not in message
    assert (f"set DESK_START_DATE to {first} or earlier" in message) == (first < start)
    assert (f"DESK_START_DATE={start}," in message) == (first < start)
    after = f"last business day is today, {today} in DESK_TIMEZONE={zone}"
    assert (after in message) == (last > today)


@given(day=days_from(BASE), today=days_from(BASE), zone=st.sampled_from(ZONES))
def test_a_read_day_is_itself_up_to_today_and_refused_naming_today_after_it(day, today, zone):
    if day <= today:
        assert up_to_today(day, today=today, timezone=zone) == day
        return
    with pytest.raises(InvalidRangeError) as refused:
        up_to_today(day, today=today, timezone=zone)
    assert str(refused.value) == (
        f"day {day} is after today: the desk's last business day is today, {today} in "
        f"DESK_TIMEZONE={zone}; pick days up to {today}"
    )


def test_today_is_the_date_in_the_desk_time_zone():
    # 23:30 UTC on 1 March is already 2 March in Tokyo, still 1 March in New York.
    instant = pd.Timestamp("2026-03-01 23:30", tz="UTC")
    assert business_day_of(instant, "UTC") == "2026-03-01"
    assert business_day_of(instant, "Asia/Tokyo") == "2026-03-02"
    assert business_day_of(instant, "America/New_York") == "2026-03-01"
    assert business_day_of(pd.Timestamp("2026-03-01 10:30", tz="UTC"), "Pacific/Kiritimati") == (
        "2026-03-02"
    )


@settings(max_examples=60, deadline=None)
@given(
    instant=INSTANTS,
    zone=st.sampled_from(ZONES),
    start_shift=st.integers(-40, 5),
    first_shift=st.integers(-45, 5),
    length=st.integers(0, 10),
)
def test_the_calendar_holds_the_days_of_the_daily_partitions_up_to_today(
    instant, zone, start_shift, first_shift, length
):
    # What `desk backfill` accepts is what Dagster can run: the daily partitions (end_offset=1)
    # from DESK_START_DATE, as of the same instant, but none after today (see the next test).
    today = business_day_of(pd.Timestamp(instant), zone)
    base = dt.date.fromisoformat(today)
    start = (base + dt.timedelta(days=start_shift)).isoformat()
    first = (base + dt.timedelta(days=first_shift)).isoformat()
    last = (base + dt.timedelta(days=first_shift + length)).isoformat()
    with freeze_time(instant):
        partitions = set(daily_partitions(start, zone).get_partition_keys())
    wanted = business_dates(first, last)
    if all(day in partitions and day <= today for day in wanted):
        assert calendar_days(first, last, start_date=start, today=today, timezone=zone) == wanted
    else:
        with pytest.raises(InvalidRangeError):
            calendar_days(first, last, start_date=start, today=today, timezone=zone)


def test_a_desk_start_date_of_tomorrow_gives_no_day_to_backfill_though_dagster_lists_it():
    # With end_offset=1 Dagster lists the first partition even when it starts tomorrow; the
    # desk's former check took its keys and backfilled tomorrow's EOD.
    instant = dt.datetime(2026, 12, 1, 12, tzinfo=dt.UTC)
    with freeze_time(instant):
        assert daily_partitions("2026-12-02", "UTC").get_partition_keys() == ["2026-12-02"]
    assert refusal("2026-12-02", "2026-12-02", start="2026-12-02", today="2026-12-01") == (
        "day 2026-12-02 is after today: the desk's last business day is today, 2026-12-01 in "
        "DESK_TIMEZONE=UTC; pick days up to 2026-12-01"
    )


def daily_partitions(start: str, zone: str) -> dg.DailyPartitionsDefinition:
    """The desk's daily partitions for DESK_START_DATE ``start`` in DESK_TIMEZONE ``zone``."""
    desk = DeskSettings(start_date=start, timezone=zone, warehouse_url="sqlite://")
    return desk_partitions(desk).daily


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("UTC", "Etc/UTC", True),  # links: one zone's names
        ("Zulu", "UTC", True),
        ("GB", "Europe/London", True),
        ("US/Eastern", "America/New_York", True),
        ("GMT", "UTC", True),  # two zones, the same offsets at every hour since 1900
        ("Europe/London", "UTC", False),  # summer time
        ("Europe/Berlin", "Europe/Paris", False),  # apart before 1940, alike since 1980
        ("America/Moncton", "America/Halifax", False),  # apart at 1993's autumn change
    ],
)
def test_zone_names_cut_the_same_business_days_when_their_offsets_agree_every_hour(a, b, same):
    assert same_business_days(a, b) is same
    assert same_business_days(b, a) is same


@pytest.mark.parametrize(
    ("first", "last"), [("1950-01-01", "1950-01-02"), ("1969-12-31", "1970-01-02")]
)
def test_a_day_before_1970_is_told_it_cannot_be_held_not_to_move_the_start_before_it(first, last):
    # It said "set DESK_START_DATE to 1950-01-01 or earlier", which the settings then refuse
    # ("before 1970-01-01, where partitions begin").
    with pytest.raises(InvalidRangeError) as refused:
        calendar_days(first, last, start_date="2026-01-01", today="2026-06-30", timezone="UTC")
    assert "no day before 1970-01-01 can be held" in str(refused.value)
    assert "set DESK_START_DATE" not in str(refused.value)


PAIRS = [("UTC", "Etc/UTC"), ("GMT", "UTC"), ("GB", "Europe/London"), ("Europe/London", "UTC")]


@settings(max_examples=examples(200), deadline=None)
@given(
    st.sampled_from(PAIRS),
    st.datetimes(min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2199, 12, 31)),  # noqa: DTZ001
)
def test_zones_said_to_cut_the_same_days_agree_at_every_instant(pair, naive):
    # Reference: zoneinfo's own offset at the drawn instant (UTC), for both names.
    a, b = pair
    instant = naive.replace(tzinfo=dt.UTC)
    offsets = {instant.astimezone(zoneinfo.ZoneInfo(z)).utcoffset() for z in pair}
    if same_business_days(a, b):
        assert len(offsets) == 1, (pair, instant, offsets)
    assert same_business_days(a, b) == same_business_days(b, a)
