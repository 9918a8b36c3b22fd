"""The books and their stored end-of-day positions: `desk books` and `desk positions`."""

import difflib
from typing import Any, NotRequired

import pandas as pd
from typing_extensions import TypedDict

from desk_pipeline.adapters.warehouse import PositionRepository
from desk_pipeline.domain.errors import NoEndOfDayError
from desk_pipeline.domain.precision import exact_quantities, for_output
from desk_pipeline.queries.stale import stale_headers
from desk_pipeline.queries.values import backfill_command, iso_instant, number, quantity, text


class Position(TypedDict):
    """One position of a stored EOD; the valuation fields only with ``marks``."""

    instrument_id: str
    quantity: float
    avg_price: float
    realized_pnl: float
    price: NotRequired[float | None]
    price_date: NotRequired[str | None]
    stale_price: NotRequired[bool]
    currency: NotRequired[str | None]
    fx_rate: NotRequired[float | None]
    base_currency: NotRequired[str | None]
    market_value: NotRequired[float | None]
    market_value_base: NotRequired[float | None]
    unrealized_pnl: NotRequired[float | None]
    unrealized_pnl_base: NotRequired[float | None]
    reason: NotRequired[str | None]


class PositionsDocument(TypedDict):
    """`desk positions --json`."""

    book_id: str
    business_date: str
    as_of: str
    positions: list[Position]


class Book(TypedDict):
    """A book with stored EODs: how many days, the first and the latest."""

    book_id: str
    days: int
    first_eod: str
    latest_eod: str


class BooksDocument(TypedDict):
    """Every book with a stored EOD, by book id."""

    books: list[Book]


class StoredDay(TypedDict):
    """One stored EOD of a book: its day, the snapshot's as-of and whether it awaits restatement."""

    business_date: str
    as_of: str
    stale: bool


class DaysDocument(TypedDict):
    """A book's stored EOD days, oldest first."""

    book_id: str
    days: list[StoredDay]


def nothing_stored(
    repo: PositionRepository, book: str, business_date: str, what: str = "end-of-day positions"
) -> NoEndOfDayError:
    """The error for a book-day with no ``what`` stored, saying what is stored for the book.

    ``what`` is "end-of-day positions" or "collateral ranking". An unknown book is told apart
    from a day outside (or missing from) the book's stored days, and gets the stored book id it
    was most likely meant to be (ids are case-sensitive).
    Reads every EOD header: only a failed read calls it.
    """
    headers = repo.eod_headers()
    days = headers.loc[headers["book_id"] == book, "business_date"]
    missing = f"no {what} for book {book} on {business_date}"
    if days.empty:
        books = sorted(headers["book_id"].unique())
        by_case = {b.casefold(): b for b in books}
        close = difflib.get_close_matches(book.casefold(), list(by_case), n=1)
        hint = f" (did you mean {by_case[close[0]]}?)" if close else ""
        return NoEndOfDayError(f"{missing}: no day of book {book} is stored{hint}")
    first, last = days.min(), days.max()
    if (days == business_date).any():
        where = "the day's end-of-day positions are stored, not ranked yet"
    elif business_date > last:
        where = f"its latest stored day is {last}"
    elif business_date < first:
        where = f"its first stored day is {first}"
    else:
        where = f"its days {first}..{last} are stored, but not this one"
    return NoEndOfDayError(f"{missing}: {where}")


def positions_document(
    repo: PositionRepository, book: str, business_date: str, *, marks: bool = False
) -> PositionsDocument:
    """The `desk positions --json` document: the stored EOD of ``book`` on ``business_date``.

    Returns:
        ``{"book_id", "business_date", "as_of", "positions": [{"instrument_id", "quantity",
        "avg_price", "realized_pnl"}]}``, flat positions omitted; with ``marks`` each position
        also carries its valuation (:func:`_position`).

    Raises:
        NoEndOfDayError: no EOD is stored for that book and day, or (``marks``) it is not valued.
    """
    stored = repo.valued_eod(book, business_date) if marks else repo.eod(book, business_date)
    if stored is None:
        raise nothing_stored(repo, book, business_date)
    header, rows = stored
    rows = rows[exact_quantities(rows["quantity"]) != 0]
    if marks and not rows["valued"].all():
        raise NoEndOfDayError(
            f"the end-of-day positions of book {book} on {business_date} (snapshot "
            f"{header['snapshot_id']}) are not valued yet; run "
            f"`{backfill_command(business_date, business_date)}` or materialise eod_valuation"
        )
    return {
        "book_id": book,
        "business_date": business_date,
        "as_of": header["as_of"].isoformat(),
        "positions": [_position(r, marks=marks) for r in rows.itertuples()],
    }


def _position(row: Any, *, marks: bool) -> Position:
    """One stored EOD row; with ``marks`` also its valuation, null where no mark or rate exists.

    ``row`` is an ``itertuples()`` row of the stored EOD (valued with ``marks``).
    """
    position: Position = {
        "instrument_id": str(row.instrument_id),
        "quantity": quantity(row.quantity),
        "avg_price": for_output(row.avg_price),
        "realized_pnl": for_output(row.realized_pnl),
    }
    if marks:
        # Key by key, in the document's order: the TypedDict checks each value's type.
        position["price"] = number(row.price)
        position["price_date"] = (
            None if pd.isna(row.price_date) else row.price_date.strftime("%Y-%m-%d")
        )
        position["stale_price"] = bool(row.stale_price)
        position["currency"] = text(row.currency)
        position["fx_rate"] = number(row.fx_rate)
        position["base_currency"] = text(row.base_currency)
        position["market_value"] = number(row.market_value)
        position["market_value_base"] = number(row.market_value_base)
        position["unrealized_pnl"] = number(row.unrealized_pnl)
        position["unrealized_pnl_base"] = number(row.unrealized_pnl_base)
        position["reason"] = text(row.reason)
    return position


def books_document(repo: PositionRepository) -> BooksDocument:
    """Every book with at least one stored EOD, by book id."""
    days = repo.eod_headers().groupby("book_id")["business_date"]
    return {
        "books": [
            {"book_id": book, "days": int(n), "first_eod": first, "latest_eod": latest}
            for book, n, first, latest in zip(
                days.size().index, days.size(), days.min(), days.max(), strict=True
            )
        ]
    }


def days_document(repo: PositionRepository, book: str) -> DaysDocument:
    """The stored EOD days of ``book``, oldest first, each with its as-of and staleness.

    Raises:
        NoEndOfDayError: no EOD of ``book`` is stored on any day.
    """
    headers = stale_headers(repo)
    own = headers[headers["book_id"] == book].sort_values("business_date", kind="stable")
    if own.empty:
        raise NoEndOfDayError(f"no end-of-day positions for book {book} on any day")
    return {
        "book_id": book,
        "days": [
            {
                "business_date": str(r.business_date),
                "as_of": iso_instant(r.as_of_us),
                "stale": bool(r.stale),
            }
            for r in own.itertuples()
        ],
    }
