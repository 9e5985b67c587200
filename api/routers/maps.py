"""The web map for partnership staff: an index of partnerships, one map page each, its gap chart."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import HTMLResponse, Response

from api.deps import (
    LRUCache,
    MeasureParams,
    StoreDep,
    cached_codes,
    cached_outline,
    cached_values,
    data_version,
)
from geo_cs import layers, tiles
from geo_cs.errors import InputError
from geo_cs.export.charts import figure_svg, gap_chart
from geo_cs.layers import SCHEMES
from geo_cs.partnerships import get_partnerships, load_partnerships
from maps.page import MapRequest, choose_view, render_index, render_map_page

router = APIRouter(prefix="/maps", tags=["Web map"])

PartnershipId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_\-]{1,64}$", description="Partnership id.")]


@router.get("/", response_class=HTMLResponse, summary="The partnerships, each linking to its map")
def index() -> HTMLResponse:
    rows = [{"id": p.id, "name": p.phase_at(None).name, "nations": ", ".join(p.nations), "kind": p.kind,
             "confidence": p.confidence} for p in load_partnerships().values()]
    return HTMLResponse(render_index(sorted(rows, key=lambda r: r["name"])))


def _gap(request: Request, store, values: layers.AreaValues, partnership: str, codes: list[str]):
    """The partnership's NI 153 table on the measure (None for scores, ranks and raw counts, or
    where the measure has no values for the partnership's areas)."""
    if not values.measure.is_rate or values.unit != "%" or not values.frame["code"].isin(codes).any():
        return None
    cache: LRUCache = request.app.state.values_cache
    key = (data_version(request), "gap", values.measure, partnership, values.baseline, values.threshold)
    return cache.get_or_make(key, lambda: layers.partnership_gap(
        store, values.measure, partnership, baseline=values.baseline, threshold=values.threshold))


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
    p = get_partnerships([partnership])[0]
    try:
        own = tuple(float(b) for b in breaks.split(",") if b.strip()) if breaks else None
    except ValueError as exc:
        raise InputError(f"breaks={breaks!r}: expected comma-separated numbers") from exc
    req = MapRequest(partnership, geography, indicator, denominator, period,
                     "own" if own and scheme == "quantiles" else scheme, k, own,
                     tuple(b.strip() for b in baseline.split(",")) if baseline else None, threshold)

    def has_areas(set_id: str) -> bool:
        try:
            return bool(cached_codes(request, store, partnership, set_id))
        except Exception:  # no lookup or geometry links this set to the partnership
            return False

    def has_measure(set_id: str, name: str) -> bool:
        """Whether the measure has values for the partnership's areas (IMD is England's only)."""
        known = layers.available_measures(store, set_id)
        if not ((known["measure"] == name) | (known["indicator_id"] == name)).any():
            return False
        values = cached_values(request, store, set_id, MeasureParams(name, None, None, None, 25.0))
        codes = set(cached_codes(request, store, partnership, set_id))
        return bool(values.frame["code"].isin(codes).any())

    req = choose_view(req, has_areas, has_measure)
    m = MeasureParams(req.indicator, req.period, req.denominator,
                      ",".join(req.baseline) if req.baseline else None, req.threshold)
    values = cached_values(request, store, req.geography, m)
    codes = list(cached_codes(request, store, partnership, req.geography))
    outline = cached_outline(request, store, partnership)
    measures = sorted(set(layers.available_measures(store, req.geography)["measure"]))
    sets = tiles.tile_sets(store)
    min_zoom = int(sets.loc[sets["set_id"] == req.geography, "minzoom"].iloc[0])
    html = render_map_page(req, values, codes, outline, _gap(request, store, values, partnership, codes),
                           p.phase_at(None).name, measures, min_zoom)
    return HTMLResponse(html)


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
    codes = list(cached_codes(request, store, partnership, geography))
    table = _gap(request, store, values, partnership, codes)
    if table is None:
        raise InputError(f"{values.measure.name} on {geography} is not a rate: no gap chart")
    title = f"{get_partnerships([partnership])[0].phase_at(None).name}: {values.measure.label}"
    return Response(figure_svg(gap_chart(table, title, highlight)), media_type="image/svg+xml",
                    headers={"Cache-Control": "public, max-age=60"})
