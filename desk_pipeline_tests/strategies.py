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


def dates_as_text() -> st.SearchStrategy[str]:
    """Calendar dates from year 1 to 9999, written YYYY-MM-DD."""
    return st.dates().map(lambda d: f"{d.year:04d}-{d.month:02d}-{d.day:02d}")


def any_cell() -> st.SearchStrategy[str]:
    """Anything a file can hold in a cell: numbers, date-times, odd and hostile text."""
    return st.one_of(
        numbers_as_text(),
        times_as_text(),
        st.sampled_from(INJECTIONS + ODD),
        st.text(max_size=12),
        st.integers(60, 200).map(lambda n: "X" * n),
    )


def rows_like(
    plausible: dict[str, list[str]],
    max_size: int = 8,
    kinds: dict[str, st.SearchStrategy[str]] | None = None,
) -> st.SearchStrategy[list[dict[str, str]]]:
    """Rows of ``plausible``'s columns: plausible values with up to three drawn from anywhere.

    Mostly-plausible rows matter: a value only reaches the warehouse and the engine (where a
    year 0026 or a 1e308 used to fail the whole run) when every other field of its row is valid.
    A wild cell of a column named in ``kinds`` is drawn half the time from its kind (times,
    numbers, dates over their whole range), else from :func:`any_cell`.
    """
    kinds = kinds or {}

    @st.composite
    def row(draw: st.DrawFn) -> dict[str, str]:
        cells = {c: draw(st.sampled_from(v)) for c, v in plausible.items()}
        wild = draw(st.lists(st.sampled_from(list(plausible)), max_size=3, unique=True))
        return cells | {c: draw(st.one_of(kinds.get(c, any_cell()), any_cell())) for c in wild}

    return st.lists(row(), min_size=1, max_size=max_size)


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
    """Rows of the landing contract's columns (see :func:`rows_like`)."""
    numbers = numbers_as_text()
    kinds = {"trade_time": times_as_text(), "quantity": numbers, "price": numbers}
    return rows_like(TRADE_CELLS, max_size, kinds | {"version": numbers})


# Reference columns by kind, for :func:`rows_like`.
REFERENCE_KINDS = {
    "maturity_date": dates_as_text(),
    "price_date": dates_as_text(),
    "rate_date": dates_as_text(),
    "price": numbers_as_text(),
    "usd_per_unit": numbers_as_text(),
    "holding_period_days": numbers_as_text(),
}
