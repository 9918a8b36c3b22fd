"""The application: settings, token and run queue on ``app.state``, error handlers, the routers."""

import contextlib
import logging
from collections.abc import AsyncIterator

import dagster as dg
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException

from desk_pipeline import commands
from desk_pipeline.api.books import book_routes
from desk_pipeline.api.commands import command_routes
from desk_pipeline.api.problems import (
    desk_error,
    http_error,
    invalid_request,
    problem_responses,
    unexpected,
)
from desk_pipeline.api.quarantine import quarantine_routes
from desk_pipeline.api.runs import run_routes
from desk_pipeline.api.service import service_routes
from desk_pipeline.defs.partitions import desk_partitions
from desk_pipeline.defs.settings import DeskSettings
from desk_pipeline.domain.errors import DeskPipelineError

log = logging.getLogger(__name__)


def create_app(
    settings: DeskSettings,
    *,
    token: str | None,
    instance: dg.DagsterInstance,
) -> FastAPI:
    """The API over ``settings``' warehouse, running commands on ``instance``.

    The routers reach what this call was given through ``app.state`` (``settings``, ``token``,
    ``intraday``, ``runs``), by the dependencies of ``api.dependencies``.

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
        responses=problem_responses(500),
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
