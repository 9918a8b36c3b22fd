"""The stored collateral ranking of a book-day: `desk ranking` and `desk concentration`."""

from typing import Any

import pandas as pd
from typing_extensions import TypedDict

from desk_pipeline.adapters.warehouse import PositionRepository
from desk_pipeline.domain.collateral.ranking import issuer_concentration
from desk_pipeline.domain.errors import NoEndOfDayError
from desk_pipeline.domain.precision import for_output
from desk_pipeline.queries.books import nothing_stored
from desk_pipeline.queries.values import number, quantity, text


class RankingItem(TypedDict):
    """One held instrument of a ranking; rank null and a reason when ineligible."""

    rank: int | None
    instrument_id: str
    quantity: float
    price: float | None
    fx_rate: float | None
    haircut: float | None
    value: float | None
    eligible: bool
    reason: str | None


class RankingDocument(TypedDict):
    """`desk ranking --json`."""

    book_id: str
    business_date: str
    as_of: str
    items: list[RankingItem]


class IssuerShare(TypedDict):
    """One issuer's eligible lendable value and share of the book's."""

    issuer: str
    value: float
    share: float | None
    over_limit: bool


class ConcentrationDocument(TypedDict):
    """`desk concentration --json`."""

    book_id: str
    business_date: str
    as_of: str
    limit: float
    issuers: list[IssuerShare]


class ConcentrationDayDocument(TypedDict):
    """`desk concentration --date D --json`: every book's document of one day."""

    business_date: str
    limit: float
    books: list[ConcentrationDocument]
    unranked_books: list[str]


def _stored_ranking(
    repo: PositionRepository, book: str, business_date: str
) -> tuple[pd.Timestamp, pd.DataFrame]:
    """The stored ranking of a book-day and its EOD's as_of (UTC).

    A stored EOD that holds nothing (every trade cancelled or moved away) ranks nothing: its
    ranking is empty, not missing.
    """
    rows = repo.ranking(book, business_date)
    if len(rows):
        return rows["as_of"].iloc[0], rows
    as_of = _empty_eod_as_of(repo, book, business_date)
    if as_of is not None:
        return as_of, rows
    raise nothing_stored(repo, book, business_date, "collateral ranking")


def _empty_eod_as_of(
    repo: PositionRepository, book: str, business_date: str
) -> pd.Timestamp | None:
    """The as_of of the book-day's stored EOD if it holds nothing (and so ranks nothing)."""
    stored = repo.eod(book, business_date)
    if stored is not None and not (stored[1]["quantity"] != 0).any():
        return stored[0]["as_of"]
    return None


def ranking_document(repo: PositionRepository, book: str, business_date: str) -> RankingDocument:
    """The `desk ranking --json` document: eligible items by lendable value, then the rest.

    Returns:
        ``{"book_id", "business_date", "as_of", "items": [{"rank", "instrument_id", "quantity",
        "price", "fx_rate", "haircut", "value", "eligible", "reason"}]}``; value in the book's
        base currency, rank null for ineligible items.

    Raises:
        NoEndOfDayError: no ranking is stored for that book and day.
    """
    as_of, rows = _stored_ranking(repo, book, business_date)
    return {
        "book_id": book,
        "business_date": business_date,
        "as_of": as_of.isoformat(),
        "items": [_ranking_item(r) for r in rows.itertuples()],
    }


def _ranking_item(row: Any) -> RankingItem:
    """One ``itertuples()`` row of a stored ranking as its document item."""
    return {
        "rank": None if pd.isna(row.rank) else int(row.rank),
        "instrument_id": str(row.instrument_id),
        "quantity": quantity(row.quantity),
        "price": number(row.price),
        "fx_rate": number(row.fx_rate),
        "haircut": number(row.haircut),
        "value": number(row.value),
        "eligible": bool(row.eligible),
        "reason": text(row.reason),
    }


def concentration_document(
    repo: PositionRepository, book: str, business_date: str, limit: float
) -> ConcentrationDocument:
    """The `desk concentration --json` document: each issuer's share of eligible value.

    Args:
        repo: the warehouse.
        book: book id.
        business_date: YYYY-MM-DD.
        limit: the largest share one issuer may hold (DESK_ISSUER_CONCENTRATION_LIMIT), 0..1.

    Returns:
        ``{"book_id", "business_date", "as_of", "limit", "issuers": [{"issuer", "value",
        "share", "over_limit"}]}``; shares from the stored ranking, issuers from the stored
        instrument reference data.

    Raises:
        NoEndOfDayError: no ranking is stored for that book and day.
    """
    as_of, rows = _stored_ranking(repo, book, business_date)
    [document] = _concentrations(repo, business_date, limit, {book: as_of}, rows)
    return document


def concentration_day_document(
    repo: PositionRepository, business_date: str, limit: float
) -> ConcentrationDayDocument:
    """The `desk concentration --date D --json` document: every book's issuer shares on a day.

    Args:
        repo: the warehouse.
        business_date: YYYY-MM-DD.
        limit: as for :func:`concentration_document`.

    Returns:
        ``{"business_date", "limit", "books": [<concentration_document of each book>],
        "unranked_books": [book ids]}``: books by id, each document as `desk concentration
        --book` prints it (a book whose EOD holds nothing with no issuers); ``unranked_books``
        the books whose EOD of the day is stored but not ranked yet.

    Raises:
        NoEndOfDayError: no book is ranked on that day (none whose EOD holds something).
    """
    rows = repo.rankings([business_date])
    as_of = {str(b): t for b, t in rows.groupby("book_id", sort=False)["as_of"].first().items()}
    unranked = []
    for book in sorted(set(repo.eod_owners([business_date])["book_id"]) - set(as_of)):
        empty = _empty_eod_as_of(repo, book, business_date)
        if empty is None:
            unranked.append(book)
        else:
            as_of[book] = empty
    if not as_of:
        raise _no_day_ranked(repo, business_date, unranked)
    return {
        "business_date": business_date,
        "limit": limit,
        "books": _concentrations(repo, business_date, limit, as_of, rows),
        "unranked_books": unranked,
    }


def _concentrations(
    repo: PositionRepository,
    business_date: str,
    limit: float,
    as_of: dict[str, pd.Timestamp],
    rows: pd.DataFrame,
) -> list[ConcentrationDocument]:
    """The concentration document of each book of ``as_of`` (by id) from its ranking ``rows``."""
    day = pd.Timestamp(business_date)
    instruments = repo.reference_as_of(day, day).instruments
    shares = issuer_concentration(rows, instruments, limit)
    by_book = dict(list(shares.groupby("book_id", sort=False)))
    return [
        {
            "book_id": book,
            "business_date": business_date,
            "as_of": as_of[book].isoformat(),
            "limit": limit,
            "issuers": [_issuer_share(r) for r in by_book.get(book, shares.iloc[:0]).itertuples()],
        }
        for book in sorted(as_of)
    ]


def _no_day_ranked(
    repo: PositionRepository, business_date: str, unranked: list[str]
) -> NoEndOfDayError:
    """The error for a day on which no book is ranked, saying which days are stored."""
    missing = f"no collateral ranking of any book on {business_date}"
    if unranked:
        return NoEndOfDayError(
            f"{missing}: the day's end-of-day positions are stored, not ranked yet"
        )
    days = repo.eod_headers()["business_date"]
    if days.empty:
        return NoEndOfDayError(f"{missing}: no day is stored")
    first, last = days.min(), days.max()
    if business_date > last:
        return NoEndOfDayError(f"{missing}: the latest stored day is {last}")
    if business_date < first:
        return NoEndOfDayError(f"{missing}: the first stored day is {first}")
    return NoEndOfDayError(f"{missing}: days {first}..{last} are stored, but not this one")


def _issuer_share(row: Any) -> IssuerShare:
    """One ``itertuples()`` row of :func:`issuer_concentration` as its document item."""
    return {
        "issuer": str(row.issuer),
        "value": for_output(float(row.value)),
        "share": number(row.share),
        "over_limit": bool(row.over_limit),
    }


def base_currency(repo: PositionRepository, book: str, business_date: str) -> str | None:
    """``book``'s base currency (the unit of its ranking values) from stored reference data.

    None when the reference data of ``business_date`` does not list the book.
    """
    return base_currencies(repo, business_date).get(book)


def base_currencies(repo: PositionRepository, business_date: str) -> dict[str, str]:
    """Each book's base currency in the stored reference data of ``business_date``."""
    day = pd.Timestamp(business_date)
    books = repo.reference_as_of(day, day).books
    return dict(zip(books["book_id"].astype(str), books["base_currency"].astype(str), strict=True))
