"""RFC 9457 problems: the error document of every route, and the handlers that render errors."""

import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any, NotRequired

from fastapi import Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import TypeAdapter
from starlette.exceptions import HTTPException
from typing_extensions import TypedDict

from desk_pipeline.adapters.warehouse import WarehouseError
from desk_pipeline.domain.errors import DeskPipelineError, InvalidRangeError, NoEndOfDayError

log = logging.getLogger(__name__)

PROBLEM = "application/problem+json"


class Problem(TypedDict):
    """An RFC 9457 problem: ``detail`` says what failed, in the CLI's words."""

    type: str
    title: str
    status: int
    detail: str
    instance: str
    errors: NotRequired[list[dict[str, Any]]]
    checks: NotRequired[list[dict[str, Any]]]


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` documenting a ``Problem`` body for each of ``statuses``."""
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
