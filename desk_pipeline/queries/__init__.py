"""The desk's read side: every JSON document `desk` prints and the HTTP API serves, built once.

One module per group of documents; the CLI, the API and the console name them as
``queries.<name>``, so the package lists them all here, but for ``queries.doctor``: its checks
of Dagster's runs import Dagster, which the read commands never load.
"""

from desk_pipeline.queries.books import (
    Book,
    BooksDocument,
    DaysDocument,
    Position,
    PositionsDocument,
    StoredDay,
    books_document,
    days_document,
    nothing_stored,
    positions_document,
)
from desk_pipeline.queries.collateral import (
    ConcentrationDayDocument,
    ConcentrationDocument,
    IssuerShare,
    RankedFrom,
    RankingDocument,
    RankingItem,
    base_currencies,
    base_currency,
    concentration_day_document,
    concentration_document,
    ranking_document,
)
from desk_pipeline.queries.status import (
    BookStatus,
    IncompleteEod,
    ParkedEvent,
    QuarantinedRow,
    StatusDocument,
    quarantine_document,
    status_document,
)
from desk_pipeline.queries.values import book_id, business_day

__all__ = [
    "Book",
    "BookStatus",
    "BooksDocument",
    "ConcentrationDayDocument",
    "ConcentrationDocument",
    "DaysDocument",
    "IncompleteEod",
    "IssuerShare",
    "ParkedEvent",
    "Position",
    "PositionsDocument",
    "QuarantinedRow",
    "RankedFrom",
    "RankingDocument",
    "RankingItem",
    "StatusDocument",
    "StoredDay",
    "base_currencies",
    "base_currency",
    "book_id",
    "books_document",
    "business_day",
    "concentration_day_document",
    "concentration_document",
    "days_document",
    "nothing_stored",
    "positions_document",
    "quarantine_document",
    "ranking_document",
    "status_document",
]
