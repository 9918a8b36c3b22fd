"""The stored collateral ranking of a book-day: `desk ranking` and `desk concentration`."""

from typing import Any

import pandas as pd
from typing_extensions import TypedDict

from desk_pipeline.adapters.warehouse import PositionRepository
from desk_pipeline.domain.collateral.ranking import issuer_concentration
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
    stored = repo.eod(book, business_date)
    if stored is not None and not (stored[1]["quantity"] != 0).any():
        return stored[0]["as_of"], rows
    raise nothing_stored(repo, book, business_date, "collateral ranking")


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
    instruments = repo.reference_as_of(pd.Timestamp(business_date), pd.Timestamp(business_date))
    shares = issuer_concentration(rows, instruments.instruments, limit)
    return {
        "book_id": book,
        "business_date": business_date,
        "as_of": as_of.isoformat(),
        "limit": limit,
        "issuers": [_issuer_share(r) for r in shares.itertuples()],
    }


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
    day = pd.Timestamp(business_date)
    books = repo.reference_as_of(day, day).books
    currency = books.loc[books["book_id"] == book, "base_currency"]
    return None if currency.empty else str(currency.iloc[0])
