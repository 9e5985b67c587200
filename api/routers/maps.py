"""The web map for partnership staff: an index of partnerships, one map page each, its gap chart."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from geo_cs.api import problems
from geo_cs.api.deps import (
    CachedMapSources,
    MeasureDep,
    MeasureParams,
    StoreDep,
    cached_embed_page,
    cached_map_figures,
    cached_map_page,
    cached_values,
    data_version,
    public_base,
)
from geo_cs.attribution import OGL_ATTRIBUTION
from geo_cs.compare import (
    MIN_PLACES,
    Comparison,
    check_places,
    compare_values,
    compare_view,
    describe,
    find_places,
    parse_places,
    resolve_places,
)
from geo_cs.custom_areas import PARTNERSHIP_ID_PATTERN
from geo_cs.errors import GeoCsError, InputError, NotFoundError
from geo_cs.export.charts import (
    compare_about,
    compare_chart,
    compare_csv,
    compare_title,
    figure_svg,
    gap_about,
    gap_chart,
    gap_csv,
    gap_title,
)
from geo_cs.export.maps import figure_bytes
from geo_cs.layers import SCHEMES, parse_breaks, store_view
from geo_cs.maps.compare import CompareRequest, explain_compare_error, from_form, render_compare_page
from geo_cs.maps.compare import download_name as compare_download_name
from geo_cs.maps.page import MapRequest, download_name, partnership_map_png, render_help, render_index
from geo_cs.narrative import gives_gap
from geo_cs.partnerships import areas_csv, get_partnerships, load_partnerships, partnership_yaml, rest_label
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


# -- compare places (issue 34): declared before the /{partnership} routes, which would otherwise
# take "compare" for a partnership's id

PlacesQuery = Annotated[str | None, Query(
    max_length=7000, description="Two to four places, separated by commas: partnership ids or custom "
                                 "areas' ids (area-…).")]
CompareGeography = Annotated[str | None, Query(max_length=64, description="Boundary set to compare on; "
                                                                          "default: the first place's map.")]
ComparePeriod = Annotated[str | None, Query(max_length=64, description="The period whose differences are "
                                                                       "given; default the latest.")]


def compare_request(places: PlacesQuery = None, geography: CompareGeography = None,
                    indicator: Annotated[str | None, Query(max_length=128)] = None,
                    denominator: Annotated[str | None, Query(max_length=128)] = None,
                    period: ComparePeriod = None) -> CompareRequest:
    """The comparison an address asks for (the page, its chart, CSV and JSON share it)."""
    return CompareRequest(tuple(parse_places(places)), geography, indicator, denominator, period)


CompareQuery = Annotated[CompareRequest, Depends(compare_request)]


def _comparison(request: Request, store, req: CompareRequest) -> tuple[Comparison, str]:
    """The comparison and the period of its differences: checked, then cached per data version
    under the places and the measure (the period only picks what is shown)."""
    partnerships = find_places(check_places(list(req.places)))

    def make() -> Comparison:
        geography, indicator, denominator = compare_view(store, partnerships, req.geography, req.indicator,
                                                         req.denominator)
        values = cached_values(request, store, geography, MeasureParams(indicator, None, denominator))
        return describe(store, compare_values(values, resolve_places(store, partnerships, geography)))

    key = (data_version(request), "compare", req.places, req.geography, req.indicator, req.denominator)
    comparison = request.app.state.values_cache.get_or_make(key, make)
    return comparison, comparison.check_period(req.period)


def _compare_choices(request: Request, store, ids: list[str]) -> list:
    """The rates every chosen place can be compared on (each place's map choices with a gap)."""
    sources = CachedMapSources(request, store)
    common: list | None = None
    for pid in ids:
        try:
            mine = [c for c in sources.choices(pid) if c.gap]
        except GeoCsError:
            return []
        held = {(c.geography, c.indicator, c.denominator) for c in mine}
        common = mine if common is None else [c for c in common
                                              if (c.geography, c.indicator, c.denominator) in held]
    return common or []


def _compare_headers(comparison: Comparison, extension: str, how: str = "attachment") -> dict:
    return {"Cache-Control": "public, max-age=60",
            "Content-Disposition": f'{how}; filename="{compare_download_name(comparison, extension)}"'}


@router.get("/compare", response_class=HTMLResponse,
            summary="Compare two to four places: one chart, a table side by side, real or within noise")
def compare_page(
    request: Request, store: StoreDep, req: CompareQuery,
    place: Annotated[list[str] | None, Query(description="The picker's ticked places (the form).")] = None,
    custom: Annotated[str | None, Query(max_length=7000,
                                        description="Pasted links or ids (the form).")] = None,
    view: Annotated[str | None, Query(max_length=400, description="geography|indicator|denominator "
                                                                  "(the form).")] = None,
    from_view: Annotated[str | None, Query(max_length=400)] = None,
    was: Annotated[str | None, Query(max_length=7000, description="The places chosen before (the form), "
                                                                   "whose order is kept.")] = None,
) -> Response:
    """The page: a place picker, and for two to four places the chart, its downloads, the rates
    side by side and each pair's difference in words. A submitted picker is sent on to the
    page's own address (``places=…``), which can be shared; a comparison that cannot be made
    is said in words beside the picker."""
    if place is not None or custom is not None or view is not None:
        target = from_form(was, place or [], custom, view, from_view, req)
        return RedirectResponse(target.url(), status_code=303)
    partnerships = sorted(({"id": p.id, "name": p.phase_at(None).name} for p in load_partnerships().values()),
                          key=lambda p: p["name"])
    disclosure = request.app.state.settings.disclosure()
    names: dict[str, str] = {}
    choices: list = []
    try:
        if len(req.places) >= MIN_PLACES:
            check_places(list(req.places))   # too many is said before any unknown one
        found = find_places(list(req.places)) if req.places else []
        names = {p.id: p.phase_at(None).name for p in found}
        choices = _compare_choices(request, store, [p.id for p in found])
        if len(req.places) < 2:   # the map's "Compare with other places" brings one place
            html = render_compare_page(req, partnerships, choices=choices, names=names,
                                       disclosure_note=disclosure.note if disclosure else None)
            return HTMLResponse(html)
        comparison, _ = _comparison(request, store, req)
    except (InputError, NotFoundError) as exc:
        if not problems.wants_a_page(request):
            raise   # a program asked: problem+json, as the route documents (found by the API fuzz)
        status = 404 if isinstance(exc, NotFoundError) else 400
        html = render_compare_page(req, partnerships, choices=choices, names=names,
                                   problem=explain_compare_error(status, str(exc)), detail=str(exc),
                                   disclosure_note=disclosure.note if disclosure else None)
        return HTMLResponse(html, status_code=status)
    html = render_compare_page(req, partnerships, comparison=comparison, choices=choices, names=names)
    return HTMLResponse(html, headers={"Cache-Control": "public, max-age=60"})


@router.get("/compare.json", summary="The figures of a comparison of places, JSON")
def compare_json(request: Request, store: StoreDep, req: CompareQuery) -> JSONResponse:
    """Each place's rate per period with its 95% interval, each pair's difference with its
    interval and verdict (real or within noise), the period's sentences and notes."""
    comparison, period = _comparison(request, store, req)
    body = {**comparison.to_dict(period), "attribution": OGL_ATTRIBUTION,
            "links": {fmt: CompareRequest(req.places, req.geography, req.indicator, req.denominator,
                                          period).url(fmt) for fmt in ("svg", "png", "csv")}}
    return JSONResponse(body, headers={"Cache-Control": "public, max-age=60"})


CompareHighlight = Annotated[str | None, Query(max_length=64, description="A period to mark.")]


@router.get("/compare.svg", summary="A comparison of places as a chart, SVG",
            responses={200: {"content": {"image/svg+xml": {}}}})
def compare_svg(request: Request, store: StoreDep, req: CompareQuery,
                highlight: CompareHighlight = None) -> Response:
    """Each place's rate per period with its 95% interval, words as text, the source line and
    the attribution under it; it scales by its viewBox."""
    comparison, _ = _comparison(request, store, req)
    title = compare_title(comparison)
    svg = figure_svg(compare_chart(comparison, title, highlight, web=True), text=True,
                     title=f"{title}: {', '.join(p.name for p in comparison.places)}")
    return Response(svg, media_type="image/svg+xml", headers=_compare_headers(comparison, "svg", "inline"))


@router.get("/compare.png", summary="A comparison of places as a chart, PNG",
            responses={200: {"content": {"image/png": {}}}})
def compare_png(request: Request, store: StoreDep, req: CompareQuery,
                highlight: CompareHighlight = None) -> Response:
    """The same chart as a PNG for a report or a slide (200 dpi)."""
    comparison, _ = _comparison(request, store, req)
    png = figure_bytes(compare_chart(comparison, highlight=highlight, web=True), "png", dpi=200)
    return Response(png, media_type="image/png", headers=_compare_headers(comparison, "png"))


@router.get("/compare.csv", summary="The figures of a comparison of places, CSV",
            responses={200: {"content": {"text/csv": {}}}})
def compare_csv_route(request: Request, store: StoreDep, req: CompareQuery) -> Response:
    """A row per place and period (count, denominator, rate, 95% interval), then a row per pair
    and period (difference, interval, real or within noise), with the source, the disclosure
    control when applied and the attribution on every row."""
    comparison, period = _comparison(request, store, req)
    text = compare_csv(comparison, compare_about(comparison, period))
    return Response(text, media_type="text/csv; charset=utf-8", headers=_compare_headers(comparison, "csv"))


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


@router.get("/{partnership}/embed", response_class=HTMLResponse,
            summary="A partnership's map to embed in another site's page (an iframe)")
def partnership_embed(req: MapQuery, request: Request, store: StoreDep) -> HTMLResponse:
    """The map, its legend, the answer in words, the source and a link to the full page, for an
    iframe: the same parameters as the map page. Only the service's own pages and the origins
    of ``GEO_CS_FRAME_ANCESTORS`` may frame it (its Content-Security-Policy,
    :mod:`geo_cs.api.headers`)."""
    html = cached_embed_page(request, store, req)
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


@router.get("/{partnership}/area.yaml", summary="A partnership or custom area as a partnership file",
            responses={200: {"content": {"application/yaml": {}}}})
def area_yaml(partnership: PartnershipId, request: Request) -> Response:
    """The definition for ``boundaries/partnerships/`` or the CLI's ``--area-file``."""
    found = get_partnerships([partnership])[0]
    text = partnership_yaml(found, link=f"{public_base(request)}/maps/{partnership}")
    name = re.sub(r"[^A-Za-z0-9]+", "-", found.name).strip("-") or "area"
    return Response(text, media_type="application/yaml; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}.yaml"'})


@router.get("/{partnership}/area.csv", summary="A partnership's or custom area's small areas, CSV",
            responses={200: {"content": {"text/csv": {}}}})
def area_csv(partnership: PartnershipId, store: StoreDep,
             geography: Annotated[str | None, Query(
                 max_length=64,
                 description="Boundary set (default: a custom area's own, else the map's).")] = None,
             ) -> Response:
    """Code, name and geography of each area: for a GIS, or back to ``--area-file``."""
    found = get_partnerships([partnership])[0]
    if geography is None:
        geography = found.member_set if found.kind == "custom" else store_view(store, partnership)[0]
    name = re.sub(r"[^A-Za-z0-9]+", "-", found.name).strip("-") or "area"
    return Response(areas_csv(store, found, geography), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}-{geography}.csv"'})


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


def _chart_words(store, values, table, codes: list[str], partnership: str) -> dict[str, str]:
    """A downloaded chart's own words: where its figures come from (it stands alone in a report)
    and what its worst areas are compared with."""
    about = gap_about(store, values.measure, table, codes, values.disclosure)
    return {"source_line": f"Source: {about['source']}.", "rest_label": rest_label(partnership)}


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
    values, table, title, codes = _gap(partnership, request, store, geography, m)
    words = _chart_words(store, values, table, codes, partnership) if source else {}
    svg = figure_svg(gap_chart(table, title, highlight, web=True, source=source, **words), text=True,
                     title=f"{title}: worst-performing areas against the {rest_label(partnership).lower()}")
    return Response(svg, media_type="image/svg+xml",
                    headers=_gap_headers(partnership, geography, m, "svg", "inline"))


@router.get("/{partnership}/gap.png", summary="The partnership's gap chart (figure 4.7), PNG",
            responses={200: {"content": {"image/png": {}}}})
def gap_png(partnership: PartnershipId, request: Request, store: StoreDep, geography: GapQuery,
            m: MeasureDep, highlight: HighlightQuery = None) -> Response:
    """The same chart as a PNG for a report or a slide (200 dpi)."""
    values, table, title, codes = _gap(partnership, request, store, geography, m)
    png = figure_bytes(gap_chart(table, title, highlight, web=True,
                                 **_chart_words(store, values, table, codes, partnership)), "png", dpi=200)
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
