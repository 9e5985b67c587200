"""RFC 7807 problem details for every error, with no stack trace ever sent to a client."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from geo_cs.errors import GeoCsError, InputError, NotFoundError, StoreError

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger("geo_cs.api")

_STATUS = {InputError: 400, NotFoundError: 404, StoreError: 503}
_TITLES = {400: "Bad request", 404: "Not found", 405: "Method not allowed", 422: "Invalid parameter",
           500: "Internal server error", 503: "Service unavailable"}


def problem(status: int, detail: str, request: Request, **extra: object) -> JSONResponse:
    body = {"type": "about:blank", "title": _TITLES.get(status, "Error"), "status": status,
            "detail": detail, "instance": str(request.url.path), **extra}
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON)


def install(app: FastAPI) -> None:
    """Register the problem+json handlers on ``app``."""

    @app.exception_handler(GeoCsError)
    async def geo_cs_error(request: Request, exc: GeoCsError) -> JSONResponse:
        status = next((code for kind, code in _STATUS.items() if isinstance(exc, kind)), 500)
        return problem(status, str(exc), request)

    @app.exception_handler(RequestValidationError)
    async def invalid_parameter(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"parameter": ".".join(str(p) for p in e["loc"][1:]) or e["loc"][0],
                   "message": e["msg"]} for e in exc.errors()]
        detail = "; ".join(f"{e['parameter']}: {e['message']}" for e in errors)
        return problem(400, detail, request, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem(exc.status_code, str(exc.detail), request)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s", request.url.path)
        return problem(500, "an unexpected error occurred; it has been logged", request)
