"""The command routes: the seed's snapshot and ranking requests, as runs through Dagster."""

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from typing_extensions import TypedDict

from desk_pipeline import commands, queries
from desk_pipeline.api.dependencies import BookPath, CalendarDay, Runs, Warehouse, authorised
from desk_pipeline.api.problems import problem_responses


class CommandAccepted(TypedDict):
    """A command's runs; poll ``status_url`` (``run_id``, the last run) until it ends."""

    run_id: str
    runs: list[str]
    request: str
    duplicate: bool
    status_url: str


# Commands: 202 with the run ids, behind the bearer token (``authorised`` runs first).
command_routes = APIRouter(
    dependencies=[Depends(authorised)],
    responses=problem_responses(401, 403, 404, 422, 503),
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
    request: Request, book: BookPath, day: CalendarDay, warehouse: Warehouse, runs: Runs
) -> JSONResponse:
    """Rank the collateral of a stored day again (every book of that day, one run)."""
    repository = warehouse.repository()
    stored = queries.days_document(repository, book)["days"]
    if day not in [d["business_date"] for d in stored]:
        raise queries.nothing_stored(repository, book, day)
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
