"""The book routes: a book's stored days, EOD positions, ranking and issuer concentration."""

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from desk_pipeline import queries
from desk_pipeline.api.dependencies import BookPath, Settings, StoredDay, Warehouse
from desk_pipeline.api.problems import problem_responses

book_routes = APIRouter()
BOOK_ERRORS = problem_responses(404, 422, 503)


@book_routes.get("/books", response_model=queries.BooksDocument, responses=problem_responses(503))
def books(warehouse: Warehouse) -> JSONResponse:
    """Every book with a stored EOD: its number of days, first and latest."""
    return JSONResponse(queries.books_document(warehouse.repository()))


@book_routes.get("/books/{book}/days", response_model=queries.DaysDocument, responses=BOOK_ERRORS)
def days(book: BookPath, warehouse: Warehouse) -> JSONResponse:
    """The book's stored EOD days, oldest first; 404 for a book without any."""
    return JSONResponse(queries.days_document(warehouse.repository(), book))


@book_routes.get(
    "/books/{book}/eod/{date}", response_model=queries.PositionsDocument, responses=BOOK_ERRORS
)
def eod(
    book: BookPath,
    day: StoredDay,
    warehouse: Warehouse,
    marks: Annotated[
        bool, Query(description="Add each position's valuation, as `--marks`.")
    ] = False,
) -> JSONResponse:
    """`desk positions --json` (with ``marks=true``, `--marks`): the stored EOD."""
    return JSONResponse(queries.positions_document(warehouse.repository(), book, day, marks=marks))


@book_routes.get(
    "/books/{book}/ranking/{date}", response_model=queries.RankingDocument, responses=BOOK_ERRORS
)
def ranking(book: BookPath, day: StoredDay, warehouse: Warehouse) -> JSONResponse:
    """`desk ranking --json`: eligible items by lendable value, then the rest."""
    return JSONResponse(queries.ranking_document(warehouse.repository(), book, day))


@book_routes.get(
    "/books/{book}/concentration/{date}",
    response_model=queries.ConcentrationDocument,
    responses=BOOK_ERRORS,
)
def concentration(
    book: BookPath, day: StoredDay, settings: Settings, warehouse: Warehouse
) -> JSONResponse:
    """`desk concentration --json`: each issuer's share of the book's eligible value."""
    limit = settings.issuer_concentration_limit
    return JSONResponse(queries.concentration_document(warehouse.repository(), book, day, limit))
