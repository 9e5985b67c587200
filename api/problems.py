"""RFC 7807 problem details for every error, with no stack trace ever sent to a client."""

from __future__ import annotations

import logging
import re

import duckdb
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from geo_cs.errors import GeoCsError, InputError, NotFoundError, StoreError
from geo_cs.maps.compare import compare_error_page, explain_compare_error
from geo_cs.maps.page import explain_error, render_error_page

PROBLEM_JSON = "application/problem+json"
#: The compare page and its downloads (``/maps/compare``, ``.svg``…): no partnership in the path
COMPARE_PATH = re.compile(r"^/maps/compare(\.[a-z]+)?$")
log = logging.getLogger("geo_cs.api")

class QueryTimeout(GeoCsError):
    """A request's database queries ran past the service's time limit."""

    def __init__(self, seconds: float) -> None:
        super().__init__(
            f"the request's queries took longer than the service's limit of {seconds:g} s "
            "(GEO_CS_QUERY_TIMEOUT_S); ask for less: a bbox, a partnership or a smaller limit")


class VersionGone(GeoCsError):
    """A page asked of a data version the service no longer keeps open."""

    def __init__(self, version: int, current: int) -> None:
        super().__init__(
            f"version={version}: this data version is no longer served (an update replaced it; "
            f"the service now serves version {current}); page again from the first page")


_STATUS = {InputError: 400, NotFoundError: 404, StoreError: 503, QueryTimeout: 503, VersionGone: 410}
_TITLES = {400: "Bad request", 401: "Unauthorized", 403: "Forbidden", 404: "Not found",
           405: "Method not allowed", 410: "Gone", 413: "Content too large", 414: "URI too long",
           422: "Invalid parameter", 500: "Internal server error", 503: "Service unavailable"}


class Problem(BaseModel):
    """RFC 7807 problem details, as every error of the service is answered."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    instance: str | None = None
    errors: list[dict[str, str]] | None = None  # per parameter, for a 400 on invalid parameters
    message: str | None = None  # on the map's routes: what a person should do, in words


def _documented(description: str) -> dict:
    return {"description": description, "content": {PROBLEM_JSON: {"schema": Problem.model_json_schema()}}}


#: The error responses any request may get, whatever its route, from the service's limits
#: (api.limits) before any routing: documented on every operation (``FastAPI(responses=…)``).
EVERY_ROUTE: dict[int | str, dict] = {
    414: _documented("The URL (path and query) is longer than the service accepts "
                     "(GEO_CS_MAX_URL_KB, 8 KB by default)"),
    503: _documented("The service is busy: its requests at once hold all the memory it allows "
                     "(GEO_CS_MEMORY_BUDGET_MB; Retry-After says when to try again). Or the "
                     "database is unavailable, or the request's queries ran past the time limit")
    | {"headers": {"Retry-After": {"description": "Seconds to wait before trying again (when busy)",
                                   "schema": {"type": "integer"}}}},
}

#: The error responses every route documents in the OpenAPI definition (routers pass them on).
RESPONSES: dict[int | str, dict] = {
    400: _documented("Invalid parameter: the detail names it and what was expected"),
    404: _documented("Unknown collection, item, layer, indicator, period or partnership: the detail "
                     "lists the valid values"),
    **EVERY_ROUTE,
}


def wants_a_page(request: Request) -> bool:
    """Whether the error goes to a person: a browser (it accepts HTML) asking for a map page.
    GIS clients, scripts and the map's own images get problem+json as before."""
    path = request.url.path
    return (path.startswith("/maps") and not path.endswith(".svg")
            and "text/html" in request.headers.get("accept", ""))


def problem(status: int, detail: str, request: Request, *, title: str | None = None,
            **extra: object) -> Response:
    """The error as problem+json (or, to a person's browser on a map page, as a page).

    ``title`` (default: the status's name) and ``detail`` are plain words for a person;
    ``extra`` fields carry the technical detail (settings, figures) for a program or a log."""
    title = title or _TITLES.get(status, "Error")
    path = request.url.path
    parameters = [str(e["parameter"]) for e in extra.get("errors") or []]  # type: ignore[union-attr]
    compare = COMPARE_PATH.match(path) is not None
    if wants_a_page(request):
        if compare:   # the compare page's own words, beside its picker
            return HTMLResponse(compare_error_page(status, detail, dict(request.query_params)),
                                status_code=status)
        return HTMLResponse(render_error_page(status, title, detail, path, dict(request.query_params),
                                              parameters), status_code=status)
    body = {"type": "about:blank", "title": title, "status": status,
            "detail": detail, "instance": str(path), **extra}
    if path.startswith("/maps"):
        # the map page's own requests (figures, search): a sentence for the person beside the
        # control they used; the detail stays for programs and logs
        body["message"] = (explain_compare_error(status, detail)[1] if compare else
                           explain_error(status, detail, path, dict(request.query_params), parameters)[1])
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON)


def install(app: FastAPI) -> None:
    """Register the problem+json handlers on ``app``."""

    @app.exception_handler(GeoCsError)
    async def geo_cs_error(request: Request, exc: GeoCsError) -> Response:
        status = next((code for kind, code in _STATUS.items() if isinstance(exc, kind)), 500)
        return problem(status, str(exc), request)

    @app.exception_handler(RequestValidationError)
    async def invalid_parameter(request: Request, exc: RequestValidationError) -> Response:
        errors = [{"parameter": ".".join(str(p) for p in e["loc"][1:]) or e["loc"][0],
                   "message": e["msg"]} for e in exc.errors()]
        detail = "; ".join(f"{e['parameter']}: {e['message']}" for e in errors)
        return problem(400, detail, request, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        response = problem(exc.status_code, str(exc.detail), request)
        response.headers.update(exc.headers or {})
        return response

    @app.exception_handler(duckdb.InterruptException)
    async def interrupted(request: Request, exc: duckdb.InterruptException) -> Response:
        # a query interrupted by the watchdog outside a cursor's own sql() (a lazy fetch)
        seconds = request.app.state.settings.query_timeout_s
        return problem(503, str(QueryTimeout(seconds)), request)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s", request.url.path)
        return problem(500, "an unexpected error occurred; it has been logged", request)
