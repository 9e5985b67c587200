"""The web map for partnership staff: an index of partnerships, one map page each, its gap chart."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from geo_cs.api import problems
from geo_cs.api.deps import (
    CachedMapSources,
    MeasureDep,
    StoreDep,
    cached_map_figures,
    cached_map_page,
    cached_values,
)
from geo_cs.custom_areas import PARTNERSHIP_ID_PATTERN
from geo_cs.errors import InputError
from geo_cs.export.charts import figure_svg, gap_about, gap_chart, gap_csv, gap_title
from geo_cs.export.maps import figure_bytes
from geo_cs.layers import SCHEMES, parse_breaks
from geo_cs.maps.page import MapRequest, download_name, partnership_map_png, render_help, render_index
from geo_cs.narrative import gives_gap
from geo_cs.partnerships import get_partnerships, load_partnerships
from geo_cs.places import holds_postcodes, search_areas, search_note

router = APIRouter(prefix="/maps", tags=["Web map"], responses=problems.RESPONSES)

PartnershipId = Annotated[str, Path(pattern=PARTNERSHIP_ID_PATTERN,
                                      description="Partnership id, or a custom area's (area-…).")]


@router.get("/", response_class=HTMLResponse, summary="The partnerships, each linking to its map")
def index() -> HTMLResponse:
    rows = [{"id": p.id, "name": p.phase_at(None).name, "nations": ", ".join(p.nations), "kind": p.kind,
             "confidence": p.confidence} for p in load_partnerships().values()]
    return HTMLResponse(render_index(sorted(rows, key=lambda r: r["name"])))


@router.get("/help", response_class=HTMLResponse,
            summary="What the map's words mean, and each measure's definition and source")
def help_page(store: StoreDep) -> HTMLResponse:
    """The help page every map page links to (``helpUrl`` in its config)."""
    return HTMLResponse(render_help(store), headers={"Cache-Control": "public, max-age=60"})


def map_request(
    partnership: PartnershipId,
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
) -> MapRequest:
    """The map a page's address asks for (the page, its figures and its PNG share it)."""
    own = parse_breaks(breaks)
    return MapRequest(partnership, geography, indicator, denominator, period,
                      "own" if own and scheme == "quantiles" else scheme, k, own,
                      tuple(b.strip() for b in baseline.split(",") if b.strip()) if baseline else None,
                      round(threshold, 1))


MapQuery = Annotated[MapRequest, Depends(map_request)]


@router.get("/{partnership}", response_class=HTMLResponse, summary="A partnership's map")
def partnership_map(req: MapQuery, request: Request, store: StoreDep) -> HTMLResponse:
    html = cached_map_page(request, store, req)
    # miss: drawn for this request; hit: from the cache (a default view is drawn ahead of its
    # first visitor, api.deps.MapWarmer)
    drawn = getattr(request.state, "geo_cs_map_drawn", False)
    return HTMLResponse(html, headers={"X-Cache": "miss" if drawn else "hit"})


@router.get("/{partnership}/figures.json", summary="A map's figures for another baseline or threshold")
def map_figures(req: MapQuery, request: Request, store: StoreDep) -> JSONResponse:
    """The periods with their figures, tiles and downloads, the answer in words and the areas
    (what the page's baseline and threshold controls redraw, without reloading the page)."""
    return JSONResponse(cached_map_figures(request, store, req))


@router.get("/{partnership}/map.png", summary="The map as shown, as a PNG for a report",
            responses={200: {"content": {"image/png": {}}}})
def map_png(req: MapQuery, store: StoreDep, request: Request) -> Response:
    req = CachedMapSources(request, store).view(req)      # the file is named for the view drawn
    png = partnership_map_png(store, req, disclosure=request.app.state.settings.disclosure())
    name = download_name(req, "png")
    return Response(png, media_type="image/png",
                    headers={"Content-Disposition": f'attachment; filename="{name}"',
                             "Cache-Control": "public, max-age=60"})


@router.get("/{partnership}/search", summary="Find areas, wards and districts by name or code")
def search(
    partnership: PartnershipId, store: StoreDep,
    q: Annotated[str, Query(min_length=1, max_length=100, description="A name or a code.")],
) -> JSONResponse:
    get_partnerships([partnership])
    found = search_areas(store, q)
    results = found.drop(columns="match_rank").astype(object).where(found.notna(), None)
    return JSONResponse({"query": q, "results": results.to_dict("records"),
                         "note": search_note(q, found, holds_postcodes(store))})


def _gap(partnership: str, request: Request, store, geography: str, m) -> tuple:
    """The gap table of a map and what its downloads need: (values, table, title, codes). A map
    whose measure gives no gap (a published rate, a score, a rank) is refused in words."""
    name = get_partnerships([partnership])[0].phase_at(None).name
    values = cached_values(request, store, geography, m)
    if values is None:
        raise InputError("indicator is required for the gap chart")
    sources = CachedMapSources(request, store)
    codes = sources.codes(partnership, geography)
    if not gives_gap(values, codes):
        # a published rate, score or rank: no worst-performing areas, so no gap to chart
        raise InputError(f"{values.measure.name} on {geography} is not a count over a population: "
                         "no worst-performing areas and no gap chart")
    return values, sources.gap(values, partnership), gap_title(name, values.measure.label), codes


def _gap_headers(partnership: str, geography: str, m, extension: str, how: str = "attachment") -> dict:
    """A gap download's headers: cached a minute, named as the page names it (with the
    settings that change its figures)."""
    req = MapRequest(partnership, geography, m.indicator, m.denominator, baseline=m.baseline,
                     threshold=m.threshold)
    return {"Cache-Control": "public, max-age=60",
            "Content-Disposition": f'{how}; filename="{download_name(req, extension, what="gap")}"'}


GapQuery = Annotated[str, Query(max_length=64, description="Boundary set of the map.")]
HighlightQuery = Annotated[str | None, Query(max_length=64, description="A period to mark.")]
SourceQuery = Annotated[bool, Query(description="The source line under the chart (false for a page "
                                                "that carries it itself, as the map's panel does).")]


@router.get("/{partnership}/gap.svg", summary="The partnership's gap chart (figure 4.7), SVG",
            responses={200: {"content": {"image/svg+xml": {}}}})
def gap_svg(partnership: PartnershipId, request: Request, store: StoreDep, geography: GapQuery,
            m: MeasureDep, highlight: HighlightQuery = None, source: SourceQuery = True) -> Response:
    """The chart drawn for the map's panel: legible at its width, words as text, scaling by its
    viewBox; with no worst-performing areas, a chart that says so."""
    _, table, title, _ = _gap(partnership, request, store, geography, m)
    svg = figure_svg(gap_chart(table, title, highlight, web=True, source=source), text=True,
                     title=f"{title}: worst-performing areas against the rest of the partnership")
    return Response(svg, media_type="image/svg+xml",
                    headers=_gap_headers(partnership, geography, m, "svg", "inline"))


@router.get("/{partnership}/gap.png", summary="The partnership's gap chart (figure 4.7), PNG",
            responses={200: {"content": {"image/png": {}}}})
def gap_png(partnership: PartnershipId, request: Request, store: StoreDep, geography: GapQuery,
            m: MeasureDep, highlight: HighlightQuery = None) -> Response:
    """The same chart as a PNG for a report or a slide (200 dpi)."""
    _, table, title, _ = _gap(partnership, request, store, geography, m)
    png = figure_bytes(gap_chart(table, title, highlight, web=True), "png", dpi=200)
    return Response(png, media_type="image/png", headers=_gap_headers(partnership, geography, m, "png"))


@router.get("/{partnership}/gap.csv", summary="The figures of the partnership's gap chart, CSV",
            responses={200: {"content": {"text/csv": {}}}})
def gap_csv_route(partnership: PartnershipId, request: Request, store: StoreDep, geography: GapQuery,
                  m: MeasureDep) -> Response:
    """The chart's figures: each period's rates, gap and 95% intervals, with the source,
    threshold, baseline and attribution on every row."""
    values, table, _, codes = _gap(partnership, request, store, geography, m)
    text = gap_csv(table, gap_about(store, values.measure, table, codes, values.disclosure))
    return Response(text, media_type="text/csv; charset=utf-8",
                    headers=_gap_headers(partnership, geography, m, "csv"))
