"""One validation framework: a cell of a shared kind gets one verdict, in trades and reference rows.

The same value in an id column (trade, instrument, price and book rows), a free-text column, a
price (trades and marks) or a date (marks, FX rates and the date of a trade time) is accepted or
refused with the same reason code wherever it arrives, and that verdict is the one a plain,
row-by-row reading of the documented rule gives.
"""

import calendar
import collections
import json
import math
import re
import unicodedata

import pandas as pd
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from desk_pipeline.domain.positions.trades import MAX_BOOK_ID_BYTES, validate_trades
from desk_pipeline.domain.precision import MAX_PRICE
from desk_pipeline.domain.reference.validation import (
    EARLIEST_MARK_DATE,
    LATEST_MARK_DATE,
    validate_books,
    validate_fx,
    validate_instruments,
    validate_prices,
)
from desk_pipeline.domain.validation.rules import repeated_names
from desk_pipeline.domain.validation.text import MAX_ID_LENGTH
from desk_pipeline_tests.sizes import examples
from desk_pipeline_tests.strategies import any_cell, dates_as_text, numbers_as_text

TRADE = {
    "trade_id": "T1",
    "book_id": "B1",
    "instrument_id": "XS1",
    "quantity": "100",
    "price": "99.5",
    "trade_time": "2026-03-02T10:00:00Z",
}
INSTRUMENT = {
    "instrument_id": "DE1",
    "name": "Bund",
    "asset_class": "government_bond",
    "issuer_type": "sovereign",
    "issuer": "DE",
    "rating": "AAA",
    "maturity_date": "2031-02-15",
    "currency": "EUR",
}
BOOK = {"book_id": "B1", "base_currency": "EUR", "holding_period_days": "5"}
PRICE = {"instrument_id": "DE1", "price_date": "2026-03-04", "price": "99.5"}
FX = {"currency": "EUR", "rate_date": "2026-03-04", "usd_per_unit": "1.08"}


def outcome(validate, good: dict[str, str], **cells: str) -> tuple[str, str]:
    """The reason code and reason of one received row (both "" when it is accepted)."""
    frame = pd.DataFrame([good | cells], dtype=object)
    frame.index = pd.RangeIndex(1, 2)
    valid, quarantine = validate(frame, source="s")
    assert len(valid) + len(quarantine) == 1
    if quarantine.empty:
        return "", ""
    return str(quarantine["reason_code"].iloc[0]), str(quarantine["reason"].iloc[0])


def verdict(validate, good: dict[str, str], **cells: str) -> str:
    """The reason code of one received row ("" when it is accepted)."""
    return outcome(validate, good, **cells)[0]


# --- plain references: the documented rules, one Python value at a time -------------------------


def controls(text: str) -> bool:
    """A control character (C0, DEL, C1), a line or paragraph separator or an unpaired surrogate."""
    return any(unicodedata.category(c) in ("Cc", "Cs", "Zl", "Zp") for c in text)


# Default-ignorable characters outside Cf and Cn, by name (DerivedCoreProperties), and U+2800.
BLANK_NAMES = ("VARIATION SELECTOR", "FILLER", "COMBINING GRAPHEME JOINER", "KHMER VOWEL INHERENT")


def formats(text: str) -> list[str]:
    """The characters of ``text`` that do not show as themselves, in order: format (Cf),
    unassigned or private-use (Cn, Co), a space other than U+0020, a default-ignorable one."""
    return [
        c
        for c in text
        if unicodedata.category(c) in ("Cf", "Cn", "Co")
        or (unicodedata.category(c) == "Zs" and c != " ")
        or any(n in unicodedata.name(c, "") for n in BLANK_NAMES)
        or c == "\u2800"
    ]


def unseen(text: str) -> bool:
    """An id would not show as itself: a character of :func:`formats`, or not NFC."""
    return bool(formats(text)) or unicodedata.normalize("NFC", text) != text


def plain_id(value: str, field: str, max_bytes: int | None = None) -> str:
    text = value.strip()
    if text == "":
        return f"empty_{field}"
    if len(text) > MAX_ID_LENGTH:
        return f"{field}_too_long"
    if controls(text) or unseen(text):
        return f"bad_{field}"
    if max_bytes is not None and len(text.encode("utf-8", "surrogatepass")) > max_bytes:
        return f"{field}_too_long"
    return ""


def plain_text(value: str, field: str) -> str:
    return f"bad_{field}" if controls(value.strip()) else ""


DECIMAL = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")
INFINITE = re.compile(r"[+-]?(inf|infinity)", re.IGNORECASE)


def plain_price(value: str) -> str:
    text = value.strip()
    if DECIMAL.fullmatch(text):
        number = float(text)
    elif INFINITE.fullmatch(text):
        number = math.inf
    else:
        return "price_not_numeric"
    if math.isinf(number):
        return "price_not_finite"
    if number <= 0:
        return "price_not_positive"
    return "price_out_of_range" if number > MAX_PRICE else ""


def plain_date(value: str, field: str) -> str:
    text = value.strip()
    if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", text):
        return f"bad_{field}"
    year, month, day = map(int, text.split("-"))
    lengths = [31, 29 if calendar.isleap(year) else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
    if not (1 <= month <= 12 and 1 <= day <= lengths[month - 1]):
        return f"bad_{field}"
    earliest, latest = (d.timetuple()[:3] for d in (EARLIEST_MARK_DATE, LATEST_MARK_DATE))
    return "" if earliest <= (year, month, day) < latest else f"{field}_out_of_range"


# --- strategies ------------------------------------------------------------------------------

HOSTILE = st.sampled_from(
    ["\x00", "\t", "\n", "\r", "\x1f", "\x7f", "\ud800", "\udfff", "\x85", "\u2028", "\u2029"]
)
# Zero-width space and joiner, BOM, soft hyphen, a bidi override and isolate, a tag character;
# no-break and ideographic spaces, a variation selector, a Hangul filler, the combining grapheme
# joiner, a noncharacter, a private-use character, a combining acute (E + it is not NFC).
FORMAT = st.sampled_from(
    [
        *("\u200b", "\u200d", "\ufeff", "\u00ad", "\u202e", "\u2066", "\U000e0041"),
        *("\u00a0", "\u3000", "\ufe0f", "\u3164", "\u034f", "\ufffe", "\ue000", "\u0301", "\u2800"),
    ]
)


def texts() -> st.SearchStrategy[str]:
    """Ids and free text: ordinary, long, wide (emoji), with control or format characters."""
    pieces = st.one_of(
        st.text(max_size=6), HOSTILE, FORMAT, st.just("\N{GRINNING FACE}"), st.just(" ")
    )
    return st.one_of(
        any_cell(),
        st.lists(pieces, max_size=12).map("".join),
        st.integers(25, 70).map(lambda n: "\N{GRINNING FACE}" * n),
        st.integers(60, 70).map(lambda n: "X" * n),
    )


def date_cells() -> st.SearchStrategy[str]:
    """Dates over years 1 to 9999, and date-like text (no blanks: a trade time adds a time)."""
    return st.one_of(
        dates_as_text(),
        st.text("0123456789-", max_size=12),
        st.sampled_from(["2026-02-30", "2024-02-29", "2100-01-01", "1969-12-31", "0026-03-04"]),
    )


# --- properties ------------------------------------------------------------------------------


@settings(max_examples=examples(25), deadline=None)
@given(value=texts())
@example(value="B\t1")
@example(value="\N{GRINNING FACE}" * 33)
def test_an_id_gets_one_verdict_in_trades_instruments_prices_and_books(value):
    instrument = plain_id(value, "instrument_id")
    assert verdict(validate_trades, TRADE, instrument_id=value) == instrument
    assert verdict(validate_instruments, INSTRUMENT, instrument_id=value) == instrument
    assert verdict(validate_prices, PRICE, instrument_id=value) == instrument

    book = plain_id(value, "book_id", max_bytes=MAX_BOOK_ID_BYTES)
    assert verdict(validate_trades, TRADE, book_id=value) == book
    assert verdict(validate_books, BOOK, book_id=value) == book


@settings(max_examples=examples(25), deadline=None)
@given(value=texts())
@example(value="Bund\t2033")
@example(value="line\nbreak")
@example(value="Mehr\u200cdad")
def test_free_text_refuses_the_control_characters_an_id_refuses_and_keeps_format_characters(
    value,
):
    # A zero-width (non-)joiner belongs in some names; only an id must not hide a character.
    assert verdict(validate_instruments, INSTRUMENT, name=value) == plain_text(value, "name")
    assert verdict(validate_instruments, INSTRUMENT, issuer=value) == plain_text(value, "issuer")
    as_id = verdict(validate_instruments, INSTRUMENT, instrument_id=value)
    text = value.strip()
    if text and len(text) <= MAX_ID_LENGTH:
        refused_as_text = plain_text(value, "name") != ""
        assert (as_id == "bad_instrument_id") == (refused_as_text or unseen(text))


@settings(max_examples=examples(25), deadline=None)
@given(value=st.one_of(numbers_as_text(), any_cell()))
@example(value="1e999")
@example(value="Infinity")
@example(value="1000000000")
@example(value="1e-400")
def test_a_price_gets_one_verdict_in_trades_and_marks(value):
    expected = plain_price(value)
    assert verdict(validate_trades, TRADE, price=value) == expected
    assert verdict(validate_prices, PRICE, price=value) == expected


@settings(max_examples=examples(25), deadline=None)
@given(value=date_cells())
@example(value="2099-12-31")
@example(value="1970-01-01")
def test_a_date_gets_one_verdict_in_marks_fx_rates_and_as_the_day_of_a_trade_time(value):
    expected = plain_date(value, "price_date")
    assert verdict(validate_prices, PRICE, price_date=value) == expected
    as_fx = verdict(validate_fx, FX, rate_date=value)
    assert as_fx == expected.replace("price_date", "rate_date")
    as_trade = verdict(validate_trades, TRADE, trade_time=f"{value}T10:00:00Z")
    assert as_trade == expected.replace("price_date", "trade_time")


@settings(max_examples=examples(50), deadline=None)
@given(
    value=st.text(
        # Arbitrary characters, with those that do not show as themselves drawn often enough.
        st.one_of(
            st.characters(codec=None),
            st.characters(categories=["Cf", "Cc", "Cs", "Zs", "Zl", "Zp", "Cn", "Co", "Mn"]),
        ),
        min_size=1,
        max_size=MAX_ID_LENGTH,
    ).filter(str.strip)
)
@example(value="BOOK\u200b1")
@example(value="\x01BOOK\u200b1")
@example(value="BOOK1\U000e0001")
@example(value="BOOK\x851")
@example(value="BOOK\u20281")
@example(value="BOOK\u00a01")
@example(value="BOOK\ufe0f1")
@example(value="E\u0301")
def test_an_id_is_refused_iff_it_holds_a_character_that_does_not_show_as_itself_naming_it(
    value,
):
    code, reason = outcome(validate_instruments, INSTRUMENT, instrument_id=value)
    text = value.strip()
    assert (code == "bad_instrument_id") == (controls(text) or unseen(text))
    if formats(text) and not controls(text):
        assert reason.startswith("instrument_id holds ")
        assert reason.endswith(f" U+{ord(formats(text)[0]):04X}")
    elif unseen(text) and not controls(text):
        assert reason == "instrument_id is not in Unicode normalization form C"


# --- the rules decided once ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("book", "named"),
    [
        ("BOOK\u200b1", "U+200B"),  # shows as BOOK1
        ("\u202e1KOOB", "U+202E"),  # a right-to-left override: shows as BOOK1
        ("BOOK1\ufeff", "U+FEFF"),  # a BOM the strip keeps (it is no white space)
    ],
)
def test_a_book_id_that_shows_as_another_is_quarantined_naming_the_hidden_character(book, named):
    reason = f"book_id holds an invisible format character {named}"
    assert outcome(validate_trades, TRADE, book_id=book) == ("bad_book_id", reason)
    assert outcome(validate_books, BOOK, book_id=book) == ("bad_book_id", reason)


@pytest.mark.parametrize(
    ("book", "reason"),
    [
        ("BOOK\u00a01", "a space other than U+0020 U+00A0"),  # shows as BOOK 1
        ("BOOK\u30001", "a space other than U+0020 U+3000"),
        ("BOOK\ufe0f1", "an invisible character U+FE0F"),  # a variation selector: BOOK1
        ("BOOK\u31641", "an invisible character U+3164"),  # a Hangul filler: BOOK1
        ("BOOK1\u2800", "an invisible character U+2800"),  # blank braille: BOOK1
        ("BOOK\ufffe1", "an unassigned code point or noncharacter U+FFFE"),
        ("BOOK\ue0001", "a private-use character U+E000"),
    ],
)
def test_a_book_id_with_a_blank_or_unassigned_character_is_quarantined_naming_it(book, reason):
    expected = ("bad_book_id", f"book_id holds {reason}")
    assert outcome(validate_trades, TRADE, book_id=book) == expected
    assert outcome(validate_books, BOOK, book_id=book) == expected


def test_a_decomposed_id_is_quarantined_as_not_the_composed_one_it_shows_as():
    # "E" + U+0301 shows as U+00C9: two books on the screen as one.
    expected = ("bad_book_id", "book_id is not in Unicode normalization form C")
    assert outcome(validate_trades, TRADE, book_id="BOOK-E\u0301") == expected
    assert outcome(validate_trades, TRADE, book_id="BOOK-\u00c9") == ("", "")


@pytest.mark.parametrize("value", ["BOOK\u20281", "BOOK\u20291"])
def test_a_line_or_paragraph_separator_is_refused_in_ids_and_free_text_as_nel_is(value):
    # U+2028 is a line end to Python's splitlines, JavaScript and log readers.
    assert verdict(validate_trades, TRADE, book_id=value) == "bad_book_id"
    assert verdict(validate_instruments, INSTRUMENT, name=value) == "bad_name"


@pytest.mark.parametrize(
    ("field", "value"),
    [("name", "Bund\t2033"), ("issuer", "Ac\nme"), ("name", "Bund\x9b2033"), ("name", "A\u2029B")],
)
def test_free_text_with_a_control_character_is_quarantined_like_an_id(field, value):
    assert verdict(validate_instruments, INSTRUMENT, **{field: value}) == f"bad_{field}"


def test_a_book_id_over_the_event_bound_in_bytes_is_refused_in_books_as_in_trades():
    wide = "\N{GRINNING FACE}" * (MAX_BOOK_ID_BYTES // 4 + 1)
    assert verdict(validate_books, BOOK, book_id=wide) == "book_id_too_long"
    assert verdict(validate_trades, TRADE, book_id=wide) == "book_id_too_long"


def test_headers_are_read_case_blind_and_a_repeated_one_quarantines_every_row():
    frame = pd.DataFrame([TRADE], dtype=object).rename(columns={"price": " Price"})
    frame.index = pd.RangeIndex(1, 2)
    trades, quarantine = validate_trades(frame, source="s")
    assert len(trades) == 1 and quarantine.empty

    repeated = frame.assign(PRICE="1")
    trades, quarantine = validate_trades(repeated, source="s")
    assert trades.empty and list(quarantine["reason_code"]) == ["repeated_columns"]
    assert json.loads(quarantine["raw"].iloc[0])[" Price"] == "99.5"
    assert json.loads(quarantine["raw"].iloc[0])["PRICE"] == "1"


@given(st.lists(st.sampled_from(["trade_id", "Trade_ID ", " book_id", "", "  ", "x", "X"])))
def test_repeated_names_are_the_names_counted_twice_case_and_spaces_aside(names):
    counts = collections.Counter(n.strip().lower() for n in names if n.strip())
    assert repeated_names(names) == sorted(n for n, count in counts.items() if count > 1)
