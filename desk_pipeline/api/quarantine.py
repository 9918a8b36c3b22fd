"""The quarantine route: `desk quarantine`'s rejected input rows, a page at a time."""

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from typing_extensions import TypedDict

from desk_pipeline import queries
from desk_pipeline.api.dependencies import Warehouse
from desk_pipeline.api.problems import problem_responses

# The largest page of GET /quarantine.
MAX_PAGE = 1000


class QuarantinePage(TypedDict):
    """A page of `desk quarantine --json`, oldest first: ``items[i]`` is row ``offset + i``."""

    total: int
    offset: int
    limit: int
    items: list[queries.QuarantinedRow]


quarantine_routes = APIRouter()


@quarantine_routes.get(
    "/quarantine", response_model=QuarantinePage, responses=problem_responses(422, 503)
)
def quarantine(
    warehouse: Warehouse,
    offset: Annotated[int, Query(ge=0, description="Rows to skip.")] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="Rows per page.")] = 100,
) -> JSONResponse:
    """`desk quarantine --json`, a page at a time: every rejected input row, oldest first."""
    rows = queries.quarantine_document(warehouse.repository())
    page: QuarantinePage = {
        "total": len(rows),
        "offset": offset,
        "limit": limit,
        "items": rows[offset : offset + limit],
    }
    return JSONResponse(page)
