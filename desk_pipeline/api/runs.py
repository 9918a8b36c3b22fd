"""The run route: the status of a run a command started, from the Dagster instance."""

from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from desk_pipeline import commands
from desk_pipeline.api.dependencies import Runs
from desk_pipeline.api.problems import problem_responses

run_routes = APIRouter()


@run_routes.get(
    "/runs/{run_id}",
    response_model=commands.RunDocument,
    responses=problem_responses(404, 422, 503),
)
def run_status(
    run_id: Annotated[str, Path(description="Dagster run id.")], runs: Runs
) -> JSONResponse:
    """A run's status (Dagster's: QUEUED, STARTED, SUCCESS, FAILURE, CANCELED, ...)."""
    found = runs.status(run_id)
    if found is None:
        raise HTTPException(404, f"no run {run_id} on the Dagster instance")
    return JSONResponse(found)
