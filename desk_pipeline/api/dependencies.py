"""What the routes are given: path parameters, settings, warehouse, run queue, the token check."""

import secrets
from typing import Annotated

from fastapi import Depends, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException

from desk_pipeline import commands, queries
from desk_pipeline.defs.resources import WarehouseResource
from desk_pipeline.defs.settings import DeskSettings

DayPath = Annotated[
    str, Path(description="Business day, YYYY-MM-DD.", json_schema_extra={"format": "date"})
]
BookId = Annotated[str, Path(description="Book id.")]


def desk_settings(request: Request) -> DeskSettings:
    """The settings :func:`create_app` was given."""
    settings: DeskSettings = request.app.state.settings
    return settings


def desk_warehouse(settings: Annotated[DeskSettings, Depends(desk_settings)]) -> WarehouseResource:
    """The settings' warehouse; a route opens its repository only once its inputs are valid.

    Opened in the server's DESK_TIMEZONE: a warehouse cut in another answers 503 with the line
    `desk` prints.
    """
    return WarehouseResource(url=settings.warehouse_url, timezone=settings.timezone)


def run_queue(request: Request) -> commands.RunQueue:
    """The queue the commands' runs go through (stopped with the app)."""
    queue: commands.RunQueue = request.app.state.runs
    return queue


Settings = Annotated[DeskSettings, Depends(desk_settings)]


def stored_day(date: DayPath, settings: Settings) -> str:
    """A read's day: YYYY-MM-DD and not after today in DESK_TIMEZONE, else a 422 problem.

    As `desk positions --date`: a past day with nothing stored is a 404, not a 422.
    """
    return settings.stored_day(queries.business_day(date, "date"))


def calendar_day(date: DayPath, settings: Settings) -> str:
    """A run's day: YYYY-MM-DD, from DESK_START_DATE to today, else a 422 problem.

    As `desk backfill`: a day outside the calendar has no daily partition to run.
    """
    day = queries.business_day(date, "date")
    return settings.calendar_days(day, day)[0]


def book_path(book: BookId) -> str:
    """A book id as asked for; one ingest would refuse is a 422 problem (queries.book_id).

    No stored book has such an id, and PostgreSQL refuses a NUL in a query (a 503 before).
    """
    return queries.book_id(book, "book")


BookPath = Annotated[str, Depends(book_path)]
StoredDay = Annotated[str, Depends(stored_day)]
CalendarDay = Annotated[str, Depends(calendar_day)]
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
