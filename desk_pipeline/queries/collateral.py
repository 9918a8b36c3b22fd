"""The stored collateral ranking of a book-day: `desk ranking` and `desk concentration`.

Every answer says which EOD snapshot its ranking was computed from and whether that is the
book-day's current EOD (:class:`RankedFrom`): a ranking of an older snapshot is still shown,
and said to be one, with the command that ranks the current EOD.
"""

from typing import Any

import pandas as pd
from typing_extensions import TypedDict

from desk_pipeline.adapters.warehouse import PositionRepository
from desk_pipeline.domain.collateral.ranking import issuer_concentration
from desk_pipeline.domain.completeness import MISSING, stored_states
from desk_pipeline.domain.errors import NoEndOfDayError
from desk_pipeline.domain.precision import for_output
from desk_pipeline.queries.books import nothing_stored
from desk_pipeline.queries.values import backfill_command, number, quantity, text


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


class RankedFrom(TypedDict):
    """The EOD snapshot a stored ranking was computed from, beside the book-day's current EOD.

    ``current`` is false when the ranking is of an older snapshot than the EOD stored now (the
    EOD was replaced, by a later snapshot or by a restatement after a late or corrected trade,
    and no ranking ran since: ``domain.completeness``); the answer is then that older ranking,
    and ``incomplete_fix`` the `desk backfill` of the day that ranks the current EOD (null when
    current). ``snapshot_id`` is the snapshot ranked; ``eod_snapshot_id`` and ``eod_as_of`` are
    the current EOD's (the same snapshot when current; a restatement keeps the as-of).
    """

    current: bool
    snapshot_id: str
    eod_as_of: str
    eod_snapshot_id: str
    incomplete_fix: str | None


class RankingDocument(RankedFrom):
    """`desk ranking --json`: the contract's keys and those of :class:`RankedFrom`."""

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


class ConcentrationDocument(RankedFrom):
    """`desk concentration --json`: its keys and those of the ranking read (:class:`RankedFrom`)."""

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
) -> tuple[Any, pd.DataFrame]:
    """The stored ranking of a book-day and its current EOD, judged (:func:`_judged`).

    A stored EOD that holds nothing (every trade cancelled or moved away) ranks nothing: its
    ranking is empty, not missing.

    Returns:
        The EOD as an ``itertuples()`` row of :func:`_judged`, and the ranking rows.

    Raises:
        NoEndOfDayError: no EOD is stored for the book-day, or no ranking though it holds some.
    """
    eods, rows = repo.rankings_beside_eods(business_date, book)
    judged = _judged(eods, rows)
    if judged.empty or judged["state"].iloc[0] == MISSING:
        raise nothing_stored(repo, book, business_date, "collateral ranking")
    return next(judged.itertuples()), rows


def _judged(eods: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame:
    """Each stored EOD with the snapshot its book-day's ranking is of, and that ranking's state.

    Args:
        eods: the EOD headers of one day, as ``rankings_beside_eods`` reads them.
        rows: the ranking rows of those book-days (all rows of a book-day are of one snapshot:
            a ranking run replaces a book-day's rows whole).

    Returns:
        ``eods``' rows and columns, plus ``ranking_snapshot_id`` and ``ranking_as_of`` (null
        when no ranking is stored), ``state`` and ``current``
        (``domain.completeness.stored_states``).
    """
    ranked = rows.groupby("book_id", sort=False)[["snapshot_id", "as_of"]].first()
    ranked.columns = pd.Index(["ranking_snapshot_id", "ranking_as_of"])
    eods = eods.merge(ranked, how="left", left_on="book_id", right_index=True)
    return eods.join(stored_states(eods, "ranking"))


def _ranked_as_of(eod: Any) -> str:
    """The as-of of the snapshot ``eod``'s ranking is of; the EOD's own when it ranks nothing."""
    return (eod.as_of if pd.isna(eod.ranking_as_of) else eod.ranking_as_of).isoformat()


def _ranked_from(eod: Any) -> RankedFrom:
    """:class:`RankedFrom` of one :func:`_judged` ``itertuples()`` row."""
    current = bool(eod.current)
    ranked = eod.snapshot_id if pd.isna(eod.ranking_snapshot_id) else eod.ranking_snapshot_id
    day = str(eod.business_date)
    return {
        "current": current,
        "snapshot_id": str(ranked),
        "eod_as_of": eod.as_of.isoformat(),
        "eod_snapshot_id": str(eod.snapshot_id),
        "incomplete_fix": None if current else backfill_command(day, day),
    }


def ranking_document(repo: PositionRepository, book: str, business_date: str) -> RankingDocument:
    """The `desk ranking --json` document: eligible items by lendable value, then the rest.

    Returns:
        ``{"book_id", "business_date", "as_of", "items": [{"rank", "instrument_id", "quantity",
        "price", "fx_rate", "haircut", "value", "eligible", "reason"}], "current",
        "snapshot_id", "eod_as_of", "eod_snapshot_id", "incomplete_fix"}``; value in the book's
        base currency, rank null for ineligible items; ``as_of`` and ``snapshot_id`` those of
        the snapshot ranked, which ``current`` says is the book-day's current EOD or an older
        one (:class:`RankedFrom`).

    Raises:
        NoEndOfDayError: no ranking is stored for that book and day.
    """
    eod, rows = _stored_ranking(repo, book, business_date)
    return {
        "book_id": book,
        "business_date": business_date,
        "as_of": _ranked_as_of(eod),
        "items": [_ranking_item(r) for r in rows.itertuples()],
        **_ranked_from(eod),
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
        "share", "over_limit"}], "current", "snapshot_id", "eod_as_of", "eod_snapshot_id",
        "incomplete_fix"}``; shares from the stored ranking, issuers from the stored
        instrument reference data; the ranking's snapshot against the current EOD as in
        :func:`ranking_document`.

    Raises:
        NoEndOfDayError: no ranking is stored for that book and day.
    """
    eod, rows = _stored_ranking(repo, book, business_date)
    [document] = _concentrations(repo, business_date, limit, [eod], rows)
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
        --book` prints it (a book whose EOD holds nothing with no issuers; one ranked from an
        older snapshot than its current EOD with ``current`` false); ``unranked_books`` the
        books whose EOD of the day is stored but not ranked yet.

    Raises:
        NoEndOfDayError: no book is ranked on that day (none whose EOD holds something).
    """
    eods, rows = repo.rankings_beside_eods(business_date)
    judged = _judged(eods, rows)
    missing = (judged["state"] == MISSING).to_numpy(dtype=bool)
    unranked = [str(b) for b in judged.loc[missing, "book_id"]]
    if missing.all():
        raise _no_day_ranked(repo, business_date, unranked)
    return {
        "business_date": business_date,
        "limit": limit,
        "books": _concentrations(
            repo, business_date, limit, list(judged.loc[~missing].itertuples()), rows
        ),
        "unranked_books": unranked,
    }


def _concentrations(
    repo: PositionRepository,
    business_date: str,
    limit: float,
    eods: list[Any],
    rows: pd.DataFrame,
) -> list[ConcentrationDocument]:
    """The concentration document of each of ``eods`` (by book id) from its ranking ``rows``.

    ``eods`` are ``itertuples()`` rows of :func:`_judged`.
    """
    day = pd.Timestamp(business_date)
    instruments = repo.reference_as_of(day, day).instruments
    shares = issuer_concentration(rows, instruments, limit)
    by_book = dict(list(shares.groupby("book_id", sort=False)))
    empty = shares.iloc[:0]
    return [
        {
            "book_id": str(eod.book_id),
            "business_date": business_date,
            "as_of": _ranked_as_of(eod),
            "limit": limit,
            "issuers": [_issuer_share(r) for r in by_book.get(eod.book_id, empty).itertuples()],
            **_ranked_from(eod),
        }
        for eod in sorted(eods, key=lambda eod: str(eod.book_id))
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
