"""Styles (OGC API - Styles, core): the web map's classes for every map collection as a QGIS
style (QML), an SLD 1.0 style and a MapLibre style for the vector tiles, and a QGIS project of a
partnership's layers.

Thin: parse the request, get the measure's values from the service's caches (those the map page
and the tiles use, so the classes are the page's), call :mod:`geo_cs.styles`, format.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response

from geo_cs import styles, tiles
from geo_cs.api import problems
from geo_cs.api.deps import (
    CachedMapSources,
    DenominatorQuery,
    IndicatorQuery,
    MeasureParams,
    PeriodQuery,
    StoreDep,
    cached_codes,
    cached_collections,
    cached_outline,
    cached_values,
    checked_collection,
    public_base,
)
from geo_cs.api.routers.ogc import moved_collection
from geo_cs.custom_areas import PARTNERSHIP_ID_PATTERN
from geo_cs.errors import GeoCsError, NotFoundError
from geo_cs.features import PARTNERSHIPS
from geo_cs.partnerships import get_partnerships, load_partnerships

router = APIRouter(tags=["Styles"], responses=problems.RESPONSES)

CollectionId = Annotated[str, Path(alias="collectionId", pattern=r"^[A-Za-z0-9_\-]+$",
                                   description="A map collection (or a boundary set, with indicator=).")]
StyleId = Annotated[str, Path(alias="styleId", max_length=64,
                              description=f"The style: {styles.STYLE_ID} (the web map's classes).")]
PartnershipQuery = Annotated[str | None, Query(
    max_length=64, description="The classes of this partnership's map (its own areas' values).")]
FormatQuery = Annotated[str | None, Query(
    max_length=16, description="qml, sld or mapbox (also sld10, mbgl); default by the Accept header, "
                               "else sld.")]
PartnershipId = Annotated[str, Path(pattern=PARTNERSHIP_ID_PATTERN,
                                      description="Partnership id, or a custom area's (area-…).")]


def _styled(request: Request, store, collection_id: str, indicator: str | None, denominator: str | None,
            partnership: str | None, period: str | None):
    """(collection, measure, values, classes, period) of a style request, from the caches."""
    c = checked_collection(request, store, collection_id)
    chosen = styles.collection_measure(c, indicator, denominator)
    values = cached_values(request, store, chosen.set_id,
                           MeasureParams(chosen.indicator, period, chosen.denominator))
    period = values.check_period(period)
    codes, name = None, None
    if partnership is not None:
        name = get_partnerships([partnership])[0].phase_at(None).name
        codes = cached_codes(request, store, partnership, chosen.set_id)
    classes = styles.classes_of(values, codes, partnership=partnership, partnership_name=name,
                                period=period, collection=c.id)
    return c, chosen, values, classes, period


def _measure_query(c, chosen: styles.StyledMeasure, partnership: str | None = None,
                   period: str | None = None) -> dict[str, str]:
    """What a link must carry to ask for the same measure: a boundary set's indicator and
    denominator (a map collection's are its own), the partnership and the period."""
    query = {}
    if c.kind != "measure":
        query |= {"indicator": chosen.indicator, "denominator": chosen.denominator}
    query |= {"partnership": partnership, "period": period}
    return {k: v for k, v in query.items() if v}


def _tile_query(chosen: styles.StyledMeasure, period: str) -> str:
    """The query of the tiles (and their TileJSON) of the measure in ``period``."""
    return urlencode({k: v for k, v in {"indicator": chosen.indicator, "denominator": chosen.denominator,
                                        "period": period}.items() if v})


@router.get("/styles", summary="Every map collection's style, and the partnerships' QGIS projects")
def all_styles(request: Request, store: StoreDep) -> dict:
    base = public_base(request)
    listed = []
    for c in cached_collections(request, store).values():
        if c.kind != "measure":
            continue   # a boundary set is styled with indicator=; the outlines have no classes
        listed.append({
            "id": c.id, "title": f"{c.title}: the web map's classes",
            "links": [{"href": f"{base}/collections/{c.id}/styles", "rel": styles.STYLES_REL,
                       "type": "application/json", "title": "The collection's styles"},
                      *styles.style_links(base, c.id)],
        })
    projects = [{"id": p.id, "title": f"{p.phase_at(None).name}: QGIS project of its map",
                 "links": [{"href": f"{base}/styles/projects/{p.id}.qgs", "rel": "alternate",
                            "type": styles.QGS_TYPE, "title": "QGIS project (.qgs)"}]}
                for p in load_partnerships().values()]
    return {"styles": listed, "projects": projects,
            "links": [{"href": f"{base}/styles", "rel": "self", "type": "application/json"}]}


@router.get("/collections/{collectionId}/styles", summary="A collection's styles (OGC API - Styles)")
def collection_styles(
    collection_id: CollectionId, request: Request, store: StoreDep,
    indicator: IndicatorQuery = None, denominator: DenominatorQuery = None,
    partnership: PartnershipQuery = None, period: PeriodQuery = None,
) -> dict:
    """The style list of a collection: the web map's classes (``web-map``) with a link per
    format. A boundary set has styles only with ``indicator=``; the partnerships' outlines
    have none."""
    if (moved := moved_collection(request, store, collection_id)) is not None:
        return moved   # a former id (issue 30)
    base = public_base(request)
    href = f"{base}/collections/{collection_id}/styles"
    c = checked_collection(request, store, collection_id)
    links = [{"href": href, "rel": "self", "type": "application/json"},
             {"href": f"{base}/collections/{collection_id}", "rel": "collection", "type": "application/json"}]
    if c.id == PARTNERSHIPS or (c.kind == "geography" and indicator is None and denominator is None):
        return {"styles": [], "links": links,
                "description": "No styles: the partnerships' outlines have no classes" if c.id == PARTNERSHIPS
                else f"{c.id} is a boundary set: ask for its styles with indicator= (and denominator=)"}
    c, chosen, _, classes, _ = _styled(request, store, collection_id, indicator, denominator,
                                       partnership, period)
    # the period only when asked for: the classes are the same in every period
    query = _measure_query(c, chosen, partnership, period)
    return {"styles": [{"id": styles.STYLE_ID, "title": f"The web map's classes: {classes.title}",
                        "links": styles.style_links(base, c.id, query)}],
            "default": styles.STYLE_ID, "links": links}


@router.get("/collections/{collectionId}/styles/{styleId}", summary="A collection's style in one format",
            responses={200: {"content": {media_type: {} for media_type in styles.FORMATS.values()}}})
def collection_style(
    collection_id: CollectionId, style_id: StyleId, request: Request, store: StoreDep,
    f: FormatQuery = None, indicator: IndicatorQuery = None, denominator: DenominatorQuery = None,
    partnership: PartnershipQuery = None, period: PeriodQuery = None,
) -> Response:
    """The web map's classes as ``f`` (or by ``Accept``): ``qml`` (QGIS: graduated on
    ``value``), ``sld`` (SLD 1.0 rules) or ``mapbox`` (a MapLibre style of the vector tiles,
    whose source is the TileJSON of the same measure, period and areas)."""
    if (moved := moved_collection(request, store, collection_id)) is not None:
        return moved   # a former id (issue 30)
    fmt = styles.style_format(f, request.headers.get("accept"))
    if style_id != styles.STYLE_ID:
        raise NotFoundError(f"styleId {style_id!r} not found; valid: {styles.STYLE_ID}")
    c, chosen, _, classes, period = _styled(request, store, collection_id, indicator, denominator,
                                            partnership, period)
    name = c.id + (f"-{partnership}" if partnership else "")
    headers = {"Vary": "Accept", "Cache-Control": "public, max-age=60"}
    if fmt == "qml":
        return Response(styles.qml(classes), media_type=styles.QML_TYPE,
                        headers={**headers, "Content-Disposition": f'inline; filename="{name}.qml"'})
    if fmt == "sld":
        return Response(styles.sld(classes, c.id), media_type=styles.SLD_TYPE,
                        headers={**headers, "Content-Disposition": f'inline; filename="{name}.sld"'})
    base = public_base(request)
    tilejson = f"{base}/tiles/{chosen.set_id}/tilejson.json?{_tile_query(chosen, period)}"
    outline = f"{base}/collections/{PARTNERSHIPS}/items/{partnership}" if partnership else None
    title = c.title + (f" — {classes.partnership_name}" if partnership else "")
    style = styles.maplibre_style(classes, tilejson, name=title, outline_url=outline)
    return Response(styles.json_text(style), media_type=styles.MAPLIBRE_TYPE, headers=headers)


@router.get("/styles/projects/{partnership}.qgs", summary="A QGIS project of a partnership's map",
            responses={200: {"content": {styles.QGS_TYPE: {}}}})
def partnership_project(
    partnership: PartnershipId, request: Request, store: StoreDep,
    geography: Annotated[str | None, Query(max_length=64, description="Boundary set of the map.")] = None,
    indicator: IndicatorQuery = None, denominator: DenominatorQuery = None, period: PeriodQuery = None,
) -> Response:
    """A ``.qgs`` that opens the partnership's map in QGIS as the web map draws it (the same
    view as ``/maps/{partnership}`` with the same parameters): its areas from the features API
    with the QML style, the vector tiles, its outline; British National Grid, zoomed to it."""
    sources = CachedMapSources(request, store)
    set_id, measure, den = sources.view_of(partnership, geography, indicator, denominator)
    collections = cached_collections(request, store)
    # the map collection of this view if there is one (QGIS's list shows it by name), else the
    # boundary set with the measure in the connection URL
    collection_id = next((c.id for c in collections.values() if c.kind == "measure" and c.geography == set_id
                          and c.indicator == measure and c.denominator == den), set_id)
    if collection_id == set_id:
        c, chosen, _, classes, period_id = _styled(request, store, set_id, measure, den, partnership, period)
    else:
        c, chosen, _, classes, period_id = _styled(request, store, collection_id, None, None,
                                                   partnership, period)
    base = public_base(request)
    query = _measure_query(c, chosen, partnership, period)
    sets = tiles.tile_sets(store)
    row = sets[sets["set_id"] == set_id]
    if row.empty:
        raise NotFoundError(f"no {set_id} boundaries to map; sets with boundaries: "
                            f"{', '.join(sets['set_id'])}")
    # the tile URL is a value inside QGIS's own key=value&… source: its = and & escaped
    tiles_url = quote(f"{base}/tiles/{set_id}/{{z}}/{{x}}/{{y}}.mvt?{_tile_query(chosen, period_id)}",
                      safe=":/{}?,")
    try:
        bbox = cached_outline(request, store, partnership).get("bbox")
    except GeoCsError:
        bbox = None
    project = styles.ProjectLayers(
        title=styles.project_title(classes), base=base, collection=c.id, query=query,
        tiles_url=tiles_url, min_zoom=int(row["minzoom"].iloc[0]), max_zoom=tiles.MAX_ZOOM,
        outline_url=f"{base}/collections/{PARTNERSHIPS}/items/{partnership}",
        bbox=tuple(bbox) if bbox else None)
    return Response(styles.qgis_project(classes, project), media_type=styles.QGS_TYPE,
                    headers={"Content-Disposition": f'attachment; filename="{partnership}-{c.id}.qgs"',
                             "Cache-Control": "public, max-age=60"})
