"""Strict ISO 8601 and decimal reading agree with a plain per-string reference on any text."""

import datetime as dt
import re
from decimal import Decimal

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from desk_pipeline.domain.parsing import (
    DATE_ONLY,
    MAX_TEXT_LENGTH,
    NOT_ISO,
    OUT_OF_RANGE,
    TOO_PRECISE,
    decimal_places,
    parse_dates,
    parse_instants,
)
from desk_pipeline_tests.sizes import examples

EARLIEST = pd.Timestamp("1970-01-01", tz="UTC")
LATEST = pd.Timestamp("2100-01-01", tz="UTC")
EPOCH = dt.datetime(1970, 1, 1)  # noqa: DTZ001 - naive on purpose: local wall time arithmetic
DATE_TIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?"
    r"(?:([Zz])|([+-])(\d{2})(?::?(\d{2}))?)?",
    re.ASCII,
)
DATE_ALONE = re.compile(r"\d{4}(?:-\d{2}(?:-\d{2})?)?", re.ASCII)


def micros_since_epoch(year: int, *fields: int) -> int:
    """Proleptic Gregorian; year 0 is shifted by one 400-year cycle (146,097 days)."""
    shift = 400 if year == 0 else 0
    local = dt.datetime(year + shift, *fields)  # noqa: DTZ001
    return (local - EPOCH) // dt.timedelta(microseconds=1) - shift * 146_097 * 86_400_000_000


def reference_instant(text: str) -> tuple[int | None, str]:
    """One string, read with Python's re and datetime: (UTC micros or None, problem)."""
    match = DATE_TIME.fullmatch(text) if len(text) <= MAX_TEXT_LENGTH else None
    if match is None:
        alone = len(text) <= MAX_TEXT_LENGTH and DATE_ALONE.fullmatch(text)
        return None, DATE_ONLY if alone else NOT_ISO
    y, mo, d, h, mi, s, frac, _, sign, zh, zm = match.groups()
    frac = frac or ""
    try:
        local = micros_since_epoch(
            int(y), int(mo), int(d), int(h), int(mi), int(s or 0), int((frac + "000000")[:6])
        )
    except ValueError:
        return None, NOT_ISO
    zone_hours, zone_minutes = int(zh or 0), int(zm or 0)
    if zone_hours > 23 or zone_minutes > 59:
        return None, NOT_ISO
    offset = (zone_hours * 60 + zone_minutes) * (-1 if sign == "-" else 1)
    micros = local - offset * 60_000_000
    if not EARLIEST.value // 1000 <= micros < LATEST.value // 1000:
        return None, OUT_OF_RANGE
    if frac[6:].strip("0"):
        return None, TOO_PRECISE
    return micros, ""


@st.composite
def iso_like(draw: st.DrawFn) -> str:
    """Date-times from year 1 to 9999 written every accepted way, and near misses."""
    when = draw(st.datetimes(min_value=dt.datetime(1, 1, 1)))  # noqa: DTZ001
    text = when.strftime("%Y-%m-%d") if when.year >= 1000 else f"{when.year:04d}{when:-%m-%d}"
    text += draw(st.sampled_from("Tt ")) + f"{when:%H:%M}"
    if draw(st.booleans()):
        text += f":{when:%S}"
        if draw(st.booleans()):
            digits = f"{when.microsecond:06d}"[: draw(st.integers(1, 6))]
            digits += draw(st.text("0123456789", max_size=12))
            text += draw(st.sampled_from(".,")) + digits
    hours, minutes = draw(st.integers(0, 25)), draw(st.integers(0, 61))
    text += draw(
        st.sampled_from(
            [
                "",
                "Z",
                "z",
                f"+{hours:02d}",
                f"-{hours:02d}{minutes:02d}",
                f"+{hours:02d}:{minutes:02d}",
            ]
        )
    )
    if draw(st.integers(0, 4)) == 0:  # one character changed, dropped or added
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.text(max_size=1)) + text[at + draw(st.integers(0, 1)) :]
    return text


ANY_TEXT = st.one_of(
    iso_like(),
    st.text(max_size=40),
    st.sampled_from(["now", "today", "2026", "2026-03", "2026-03-02", "20260302", "T", ""]),
    st.text("0123456789-:T.Z+ ", max_size=30),
)


@settings(max_examples=examples(150), deadline=None)
@given(st.lists(ANY_TEXT, max_size=20))
def test_instants_match_a_plain_reference_for_any_text(texts):
    instants, problems = parse_instants(pd.Series(texts, dtype=object), EARLIEST, LATEST)
    expected = [reference_instant(t) for t in texts]
    assert list(problems) == [p for _, p in expected]
    got = [None if pd.isna(v) else v.value // 1000 for v in instants]
    assert got == [m for m, _ in expected]
    assert all(v.value % 1000 == 0 for v in instants.dropna())


def test_the_issues_trade_times_get_their_reasons():
    texts = [
        "0026-03-02T10:00:00Z",
        "1600-01-01T00:00:00",
        "2300-01-01T00:00:00",
        "9999-12-31T23:59:59.999999Z",
        "now",
        "2026",
        "2026-03",
        "2026-03-02",
        "2026-03-02T10:00:00.000000100Z",
        "2026-03-02T10:00:00.123456000Z",
        "2026-03-02 11:00+01",
    ]
    instants, problems = parse_instants(pd.Series(texts), EARLIEST, LATEST)
    assert list(problems) == [OUT_OF_RANGE] * 4 + [NOT_ISO] + [DATE_ONLY] * 3 + [
        TOO_PRECISE,
        "",
        "",
    ]
    assert list(instants.iloc[-2:]) == [
        pd.Timestamp("2026-03-02 10:00:00.123456", tz="UTC"),
        pd.Timestamp("2026-03-02 10:00", tz="UTC"),
    ]


@settings(max_examples=examples(100), deadline=None)
@given(st.lists(st.one_of(st.dates().map(str), st.text(max_size=12)), max_size=20))
def test_dates_match_a_plain_reference(texts):
    earliest, latest = pd.Timestamp("1900-01-01"), pd.Timestamp("2262-01-01")
    dates, problems = parse_dates(pd.Series(texts, dtype=object), earliest, latest)
    for text, date, problem in zip(texts, dates, problems, strict=True):
        try:
            parsed = (
                dt.date.fromisoformat(text)
                if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text, re.ASCII)
                else None
            )
        except ValueError:
            parsed = None
        if parsed is None:
            assert (pd.isna(date), problem) == (True, NOT_ISO)
        elif not earliest.date() <= parsed < latest.date():
            assert (pd.isna(date), problem) == (True, OUT_OF_RANGE)
        else:
            assert (date, problem) == (pd.Timestamp(parsed), "")


def written(value: Decimal, style: str, zeros: int, exponent_zeros: int) -> str:
    if style == "plain":
        text = f"{value:f}"
        return text + ("." if "." not in text and zeros else "") + "0" * zeros
    mantissa, _, exponent = f"{value:e}".partition("e")
    return f"{mantissa}e{exponent[0]}{'0' * exponent_zeros}{exponent[1:]}"


@settings(max_examples=examples(150), deadline=None)
@given(
    st.lists(
        st.tuples(
            st.builds(
                lambda digits, exponent: Decimal(digits).scaleb(exponent),
                st.integers(-(10**20), 10**20),
                st.integers(-40, 40),
            ),
            st.sampled_from(["plain", "exponent"]),
            st.integers(0, 3),
            st.integers(0, 3),
        ),
        max_size=20,
    )
)
def test_decimal_places_match_pythons_decimal(numbers):
    texts = [written(*n) for n in numbers]
    places = decimal_places(pd.Series(texts, dtype=object))
    for text, got in zip(texts, places, strict=True):
        _, digits, exponent = Decimal(text).as_tuple()
        trailing_zeros = len(digits) - len("".join(map(str, digits)).rstrip("0"))
        needed = max(0, -(int(exponent) + trailing_zeros)) if any(digits) else 0
        expected = needed if len(text) <= MAX_TEXT_LENGTH else MAX_TEXT_LENGTH + 1
        assert got == expected, text
