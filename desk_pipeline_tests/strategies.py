"""Hypothesis strategies drawing received cells from the whole space a file or table can hold."""

import datetime as dt

from hypothesis import strategies as st

INJECTIONS = [
    "'; DROP TABLE trades; --",
    '" OR "1"="1',
    '=HYPERLINK("http://x")',
    "${jndi:ldap://example/a}",
    "%s%s%s%n",
]
ODD = ["", " ", "NaN", "nan", "inf", "-inf", "Infinity", "-0", "1e309", "1e308", "-1e308"]
ODD += ["5e-324", "1e-400", "0x10", "1,000", "1_000", "null", "None", "TRUE", "now", "today"]
ODD += ["2026", "2026-03", "2026-03-02", "\u202e", "🦀", "é", "١٢٣"]


def numbers_as_text() -> st.SearchStrategy[str]:
    """Huge, tiny, negative, non-finite and ordinary numbers, written as a file would."""
    return st.one_of(
        st.floats(allow_nan=True, allow_infinity=True).map(repr),
        st.tuples(st.floats(min_value=-1e10, max_value=1e10), st.integers(0, 9)).map(
            lambda x: f"{x[0]:.{x[1]}f}"
        ),
        st.integers(min_value=-(10**30), max_value=10**30).map(str),
        st.decimals(allow_nan=True, allow_infinity=True).map(str),
        st.sampled_from(["100", "-5", "0.5", "0.1", "1e6", "10", "99.5", "0.0001", "1000000000"]),
    )


@st.composite
def times_as_text(draw: st.DrawFn) -> str:
    """Date-times from year 1 to 9999, any sub-second digits, any offset, in ISO-like forms."""
    when = draw(st.datetimes(min_value=dt.datetime(1, 1, 1)))  # noqa: DTZ001
    date = f"{when.year:04d}-{when.month:02d}-{when.day:02d}"
    clock = f"{when.hour:02d}:{when.minute:02d}"
    if draw(st.booleans()):
        clock += f":{when.second:02d}"
        if draw(st.booleans()):
            clock += "." + f"{when.microsecond:06d}" + draw(st.text("0123456789", max_size=9))
    hours, minutes = draw(st.integers(0, 25)), draw(st.integers(0, 59))
    zone = draw(
        st.sampled_from(["", "Z", f"+{hours:02d}:{minutes:02d}", f"-{hours:02d}{minutes:02d}"])
    )
    return date + draw(st.sampled_from(["T", " ", "t"])) + clock + zone


def any_cell(plausible: list[str]) -> st.SearchStrategy[str]:
    """A cell: mostly plausible for its column, else anything a file can hold."""
    return st.one_of(
        st.sampled_from(plausible),
        st.sampled_from(plausible),
        numbers_as_text(),
        times_as_text(),
        st.sampled_from(INJECTIONS + ODD),
        st.text(max_size=12),
        st.integers(60, 200).map(lambda n: "X" * n),
    )


TRADE_CELLS = {
    "trade_id": ["F1", "F2", "F3", "F-4"],
    "version": ["1", "2", "3", ""],
    "status": ["NEW", "AMEND", "CANCEL", "new", ""],
    "book_id": ["FB1", "FB2"],
    "instrument_id": ["XS1", "XS2"],
    "quantity": ["100", "-5", "0.5", "1e6"],
    "price": ["10", "99.5", "0.0001"],
    "trade_time": ["2026-03-02T10:00:00", "2026-03-02T10:00:00+01:00", "2026-03-03 23:59:59Z"],
}


def trade_rows(max_size: int = 8) -> st.SearchStrategy[list[dict[str, str]]]:
    """Rows of the landing contract's columns, each cell drawn by :func:`any_cell`."""
    row = st.fixed_dictionaries({c: any_cell(v) for c, v in TRADE_CELLS.items()})
    return st.lists(row, min_size=1, max_size=max_size)
