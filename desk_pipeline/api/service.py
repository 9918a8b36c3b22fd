"""The service routes: the server's health and `desk status`."""

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from typing_extensions import TypedDict

from desk_pipeline import queries
from desk_pipeline.adapters import health
from desk_pipeline.api.dependencies import Settings, Warehouse
from desk_pipeline.api.problems import problem, problem_responses


class Check(TypedDict):
    """One of `desk doctor`'s warehouse checks."""

    check: str
    ok: bool
    detail: str


class Health(TypedDict):
    """The server answers and its warehouse is reachable at the latest migration."""

    status: str
    checks: list[Check]


service_routes = APIRouter()


@service_routes.get("/health", response_model=Health, responses=problem_responses(503))
def service_health(request: Request, settings: Settings) -> JSONResponse:
    """The server answers and the warehouse is reachable at the latest migration."""
    findings = health.warehouse_findings(settings.warehouse_url)
    checks = [{"check": f.check, "ok": f.ok, "detail": f.detail} for f in findings]
    if all(f.ok for f in findings):
        return JSONResponse({"status": "ok", "checks": checks})
    failed = "; ".join(f.detail for f in findings if not f.ok)
    return problem(request, 503, failed, checks=checks)


@service_routes.get(
    "/status", response_model=queries.StatusDocument, responses=problem_responses(503)
)
def desk_status(warehouse: Warehouse) -> JSONResponse:
    """`desk status --json`: per book, latest EOD, stale and incomplete days, quarantine, backlog.

    Incomplete days have a stored EOD whose valuation or ranking is missing or was computed
    from an older snapshot; ``incomplete_fix`` is the `desk backfill` that completes them.
    """
    return JSONResponse(queries.status_document(warehouse.repository()))
