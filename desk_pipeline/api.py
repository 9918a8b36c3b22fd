"""The HTTP API of `desk serve`: the CLI's documents to read, the seed's two commands to run.

Reads are open (like the CLI's, to whoever reaches the server; bind it accordingly); the two
commands need ``Authorization: Bearer <DESK_API_TOKEN>`` and are refused (503) while the server
has no token. Every error is an RFC 9457 problem (``application/problem+json``) whose ``detail``
is the CLI's message.
"""

import contextlib
import logging
import secrets
from collections.abc import AsyncIterator, Mapping
from http import HTTPStatus
from typing import Annotated, Any, NotRequired

import dagster as dg
from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import TypeAdapter
from starlette.exceptions import HTTPException
from typing_extensions import TypedDict

from desk_pipeline import commands, queries
from desk_pipeline.adapters import health
from desk_pipeline.adapters.warehouse import WarehouseError
from desk_pipeline.defs.partitions import desk_partitions
from desk_pipeline.defs.resources import WarehouseResource
from desk_pipeline.defs.settings import DeskSettings
from desk_pipeline.domain.errors import DeskPipelineError, InvalidRangeError, NoEndOfDayError

log = logging.getLogger(__name__)

PROBLEM = "application/problem+json"
# The largest page of GET /quarantine.
MAX_PAGE = 1000


class Problem(TypedDict):
    """An RFC 9457 problem: ``detail`` says what failed, in the CLI's words."""

    type: str
    title: str
    status: int
    detail: str
    instance: str
    errors: NotRequired[list[dict[str, Any]]]
    checks: NotRequired[list[dict[str, Any]]]


class Check(TypedDict):
    """One of `desk doctor`'s warehouse checks."""

    check: str
    ok: bool
    detail: str


class Health(TypedDict):
    """The server answers and its warehouse is reachable at the latest migration."""

    status: str
    checks: list[Check]


class QuarantinePage(TypedDict):
    """A page of `desk quarantine --json`, oldest first: ``items[i]`` is row ``offset + i``."""

    total: int
    offset: int
    limit: int
    items: list[queries.QuarantinedRow]


class CommandAccepted(TypedDict):
    """A command's runs; poll ``status_url`` (``run_id``, the last run) until it ends."""

    run_id: str
    runs: list[str]
    request: str
    duplicate: bool
    status_url: str


def _problem_response(*statuses: int) -> dict[int | str, dict[str, Any]]:
    schema = TypeAdapter(Problem).json_schema()
    return {
        status: {"description": HTTPStatus(status).phrase, "content": {PROBLEM: {"schema": schema}}}
        for status in statuses
    }


def problem(
    request: Request,
    status: int,
    detail: str,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    """An ``application/problem+json`` response (RFC 9457) for ``request``."""
    body = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
        **extra,
    }
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


# Domain errors by HTTP status; the first match wins, so subclasses come first.
ERROR_STATUS: list[tuple[type[DeskPipelineError], int]] = [
    (NoEndOfDayError, 404),
    (InvalidRangeError, 422),
    (WarehouseError, 503),
    (DeskPipelineError, 400),
]

DayPath = Annotated[
    str, Path(description="Business day, YYYY-MM-DD.", json_schema_extra={"format": "date"})
]
BookPath = Annotated[str, Path(description="Book id.")]


def create_app(
    settings: DeskSettings,
    *,
    token: str | None,
    instance: dg.DagsterInstance,
) -> FastAPI:
    """The API over ``settings``' warehouse, running commands on ``instance``.

    The routers reach what this call was given through ``app.state`` (``settings``, ``token``,
    ``intraday``, ``runs``), by the dependencies below.

    Args:
        settings: the desk's configuration: the warehouse read, the concentration limit, the
            resources of the commands' runs.
        token: DESK_API_TOKEN; None refuses every command with 503.
        instance: the Dagster instance the commands' runs are recorded on (the UI's).
    """
    if not token:
        log.warning("DESK_API_TOKEN is not set: commands are refused (503); reads are served")
    app = FastAPI(
        title="desk_pipeline",
        summary="Positions, end-of-day snapshots and collateral rankings of the desk's books.",
        version="1",
        lifespan=_lifespan,
        responses=_problem_response(500),
        exception_handlers={
            DeskPipelineError: desk_error,
            HTTPException: http_error,
            RequestValidationError: invalid_request,
            Exception: unexpected,
        },
    )
    app.state.settings = settings
    app.state.token = token
    app.state.intraday = desk_partitions(settings).intraday
    app.state.runs = commands.RunQueue(commands.definitions_for(settings), instance)
    for router in (service_routes, book_routes, quarantine_routes, command_routes, run_routes):
        app.include_router(router)
    return app


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    yield
    app.state.runs.shutdown()


async def desk_error(request: Request, err: DeskPipelineError) -> JSONResponse:
    """A domain error as the problem of its ``ERROR_STATUS``."""
    status = next(code for kind, code in ERROR_STATUS if isinstance(err, kind))
    return problem(request, status, str(err))


async def http_error(request: Request, err: HTTPException) -> JSONResponse:
    """An ``HTTPException`` (404, 401, ...) as a problem, its headers kept."""
    return problem(request, err.status_code, str(err.detail), err.headers)


async def invalid_request(request: Request, err: RequestValidationError) -> JSONResponse:
    """A 422 problem whose ``detail`` lists each invalid parameter, ``errors`` FastAPI's list."""
    errors = jsonable_encoder(err.errors(), exclude={"input", "ctx"})
    where = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors())
    return problem(request, 422, where, errors=errors)


async def unexpected(request: Request, err: Exception) -> JSONResponse:
    """A 500 problem; the traceback goes to the server log, never to the client."""
    log.error("%s %s failed", request.method, request.url.path, exc_info=err)
    return problem(request, 500, "internal error; the server log has the traceback")


def desk_settings(request: Request) -> DeskSettings:
    """The settings :func:`create_app` was given."""
    settings: DeskSettings = request.app.state.settings
    return settings


def desk_warehouse(settings: Annotated[DeskSettings, Depends(desk_settings)]) -> WarehouseResource:
    """The settings' warehouse; a route opens its repository only once its inputs are valid."""
    return WarehouseResource(url=settings.warehouse_url)


def run_queue(request: Request) -> commands.RunQueue:
    """The queue the commands' runs go through (stopped with the app)."""
    queue: commands.RunQueue = request.app.state.runs
    return queue


Settings = Annotated[DeskSettings, Depends(desk_settings)]
Warehouse = Annotated[WarehouseResource, Depends(desk_warehouse)]
Runs = Annotated[commands.RunQueue, Depends(run_queue)]
bearer = HTTPBearer(auto_error=False, description="DESK_API_TOKEN")


def authorised(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    """Let a command through with the server's DESK_API_TOKEN: 503 without one, else 401/403."""
    token: str | None = request.app.state.token
    if not token:
        raise HTTPException(
            503, "commands are disabled: set DESK_API_TOKEN and restart `desk serve`"
        )
    if credentials is None:
        raise HTTPException(
            401,
            "a bearer token is required: Authorization: Bearer <DESK_API_TOKEN>",
            {"WWW-Authenticate": "Bearer"},
        )
    if not secrets.compare_digest(credentials.credentials.encode(), token.encode()):
        raise HTTPException(403, "the bearer token is not the server's DESK_API_TOKEN")


service_routes = APIRouter()


@service_routes.get("/health", response_model=Health, responses=_problem_response(503))
def service_health(request: Request, settings: Settings) -> JSONResponse:
    """The server answers and the warehouse is reachable at the latest migration."""
    findings = health.warehouse_findings(settings.warehouse_url)
    checks = [{"check": f.check, "ok": f.ok, "detail": f.detail} for f in findings]
    if all(f.ok for f in findings):
        return JSONResponse({"status": "ok", "checks": checks})
    failed = "; ".join(f.detail for f in findings if not f.ok)
    return problem(request, 503, failed, checks=checks)


@service_routes.get(
    "/status", response_model=queries.StatusDocument, responses=_problem_response(503)
)
def desk_status(warehouse: Warehouse) -> JSONResponse:
    """`desk status --json`: per book, latest EOD, stale days, quarantine and backlog."""
    return JSONResponse(queries.status_document(warehouse.repository()))


book_routes = APIRouter()
BOOK_ERRORS = _problem_response(404, 422, 503)


@book_routes.get("/books", response_model=queries.BooksDocument, responses=_problem_response(503))
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
    date: DayPath,
    warehouse: Warehouse,
    marks: Annotated[
        bool, Query(description="Add each position's valuation, as `--marks`.")
    ] = False,
) -> JSONResponse:
    """`desk positions --json` (with ``marks=true``, `--marks`): the stored EOD."""
    day = queries.business_day(date, "date")
    return JSONResponse(queries.positions_document(warehouse.repository(), book, day, marks=marks))


@book_routes.get(
    "/books/{book}/ranking/{date}", response_model=queries.RankingDocument, responses=BOOK_ERRORS
)
def ranking(book: BookPath, date: DayPath, warehouse: Warehouse) -> JSONResponse:
    """`desk ranking --json`: eligible items by lendable value, then the rest."""
    day = queries.business_day(date, "date")
    return JSONResponse(queries.ranking_document(warehouse.repository(), book, day))


@book_routes.get(
    "/books/{book}/concentration/{date}",
    response_model=queries.ConcentrationDocument,
    responses=BOOK_ERRORS,
)
def concentration(
    book: BookPath, date: DayPath, settings: Settings, warehouse: Warehouse
) -> JSONResponse:
    """`desk concentration --json`: each issuer's share of the book's eligible value."""
    day = queries.business_day(date, "date")
    limit = settings.issuer_concentration_limit
    return JSONResponse(queries.concentration_document(warehouse.repository(), book, day, limit))


quarantine_routes = APIRouter()


@quarantine_routes.get(
    "/quarantine", response_model=QuarantinePage, responses=_problem_response(422, 503)
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


# Commands: 202 with the run ids, behind the bearer token (``authorised`` runs first).
command_routes = APIRouter(
    dependencies=[Depends(authorised)],
    responses=_problem_response(401, 403, 404, 422, 503),
)


@command_routes.post("/books/{book}/snapshots", status_code=202, response_model=CommandAccepted)
def request_snapshot(
    request: Request, book: BookPath, warehouse: Warehouse, runs: Runs
) -> JSONResponse:
    """Snapshot the latest closed 10-minute window, then refresh that day's EOD.

    Two runs, in order: ``intraday_job`` for the window, ``daily_job`` for its day (EOD,
    valuation, marks, ranking); both snapshot every book. ``run_id`` is the last. The same
    request while its runs are in flight answers the same runs (``duplicate``).
    """
    queries.days_document(warehouse.repository(), book)  # 404 for an unknown book
    specs = commands.snapshot_runs(
        book,
        {commands.TRIGGER_TAG: f"desk serve: POST {request.url.path}"},
        request.app.state.intraday,
    )
    key = f"POST /books/{book}/snapshots window {specs[0].partition_key}"
    return accepted(runs, key, specs)


@command_routes.post(
    "/books/{book}/rankings/{date}", status_code=202, response_model=CommandAccepted
)
def request_ranking(
    request: Request, book: BookPath, date: DayPath, warehouse: Warehouse, runs: Runs
) -> JSONResponse:
    """Rank the collateral of a stored day again (every book of that day, one run)."""
    day = queries.business_day(date, "date")
    stored = queries.days_document(warehouse.repository(), book)["days"]
    if day not in [d["business_date"] for d in stored]:
        raise NoEndOfDayError(f"no end-of-day positions for book {book} on {day}")
    trigger = {commands.TRIGGER_TAG: f"desk serve: POST {request.url.path}"}
    spec = commands.ranking_run(book, day, trigger)
    return accepted(runs, f"POST /books/{book}/rankings/{day}", [spec])


def accepted(runs: commands.RunQueue, key: str, specs: list[commands.RunSpec]) -> JSONResponse:
    """202 with the request's runs, submitted under ``key`` (an in-flight duplicate is joined)."""
    submitted = runs.submit(key, specs)
    run_id = submitted.run_ids[-1]
    body: CommandAccepted = {
        "run_id": run_id,
        "runs": submitted.run_ids,
        "request": key,
        "duplicate": submitted.duplicate,
        "status_url": f"/runs/{run_id}",
    }
    return JSONResponse(body, status_code=202, headers={"Location": body["status_url"]})


run_routes = APIRouter()


@run_routes.get(
    "/runs/{run_id}",
    response_model=commands.RunDocument,
    responses=_problem_response(404, 422, 503),
)
def run_status(
    run_id: Annotated[str, Path(description="Dagster run id.")], runs: Runs
) -> JSONResponse:
    """A run's status (Dagster's: QUEUED, STARTED, SUCCESS, FAILURE, CANCELED, ...)."""
    found = runs.status(run_id)
    if found is None:
        raise HTTPException(404, f"no run {run_id} on the Dagster instance")
    return JSONResponse(found)
