"""The web map for partnership staff: an index of partnerships, one map page each, its gap chart."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import HTMLResponse, Response

from api import problems
from api.deps import (
    CachedMapSources,
    MeasureParams,
    StoreDep,
    cached_map_page,
    cached_values,
)
from geo_cs.errors import InputError
from geo_cs.export.charts import figure_svg, gap_chart
from geo_cs.layers import SCHEMES, parse_breaks
from geo_cs.partnerships import get_partnerships, load_partnerships
from maps.page import MapRequest, render_index

router = APIRouter(prefix="/maps", tags=["Web map"], responses=problems.RESPONSES)

PartnershipId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_\-]{1,64}$", description="Partnership id.")]


@router.get("/", response_class=HTMLResponse, summary="The partnerships, each linking to its map")
def index() -> HTMLResponse:
    rows = [{"id": p.id, "name": p.phase_at(None).name, "nations": ", ".join(p.nations), "kind": p.kind,
             "confidence": p.confidence} for p in load_partnerships().values()]
    return HTMLResponse(render_index(sorted(rows, key=lambda r: r["name"])))


@router.get("/{partnership}", response_class=HTMLResponse, summary="A partnership's map")
def partnership_map(
    partnership: PartnershipId, request: Request, store: StoreDep,
    geography: Annotated[str | None, Query(max_length=64, description="Boundary set of the map.")] = None,
    indicator: Annotated[str | None, Query(max_length=128)] = None,
    denominator: Annotated[str | None, Query(max_length=128)] = None,
    period: Annotated[str | None, Query(max_length=64)] = None,
    scheme: Annotated[str, Query(description=f"One of {', '.join(SCHEMES)}.")] = "quantiles",
    k: Annotated[int, Query(ge=2, le=9)] = 5,
    breaks: Annotated[str | None, Query(max_length=200,
                                        description="Own class breaks, e.g. 10,20,30.")] = None,
    baseline: Annotated[str | None, Query(max_length=200)] = None,
    threshold: Annotated[float, Query(ge=0, le=100)] = 25.0,
) -> HTMLResponse:
    own = parse_breaks(breaks)
    req = MapRequest(partnership, geography, indicator, denominator, period,
                     "own" if own and scheme == "quantiles" else scheme, k, own,
                     tuple(b.strip() for b in baseline.split(",")) if baseline else None, threshold)
    return HTMLResponse(cached_map_page(request, store, req))


@router.get("/{partnership}/gap.svg", summary="The partnership's gap chart (figure 4.7), SVG",
            responses={200: {"content": {"image/svg+xml": {}}}})
def gap_svg(
    partnership: PartnershipId, request: Request, store: StoreDep,
    geography: Annotated[str, Query(max_length=64)],
    m: Annotated[MeasureParams, Depends()],
    highlight: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    get_partnerships([partnership])
    values = cached_values(request, store, geography, m)
    if values is None:
        raise InputError("indicator is required for the gap chart")
    if not values.measure.is_rate or values.unit != "%":
        raise InputError(f"{values.measure.name} on {geography} is not a rate: no gap chart")
    table = CachedMapSources(request, store).gap(values, partnership)
    title = f"{get_partnerships([partnership])[0].phase_at(None).name}: {values.measure.label}"
    return Response(figure_svg(gap_chart(table, title, highlight)), media_type="image/svg+xml",
                    headers={"Cache-Control": "public, max-age=60"})
