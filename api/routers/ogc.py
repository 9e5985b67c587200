"""OGC API - Features, Part 1 (core, GeoJSON), Part 2 (CRS by reference) and Part 3 (queryables,
CQL2 text filters) with ``sortby``.

Thin: parse the query, call :mod:`geo_cs.features` and :mod:`geo_cs.filters`, format links and
headers.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import replace
from functools import cache
from typing import Annotated, Literal
from urllib.parse import urlencode

import anyio
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.types import Receive, Scope, Send

from geo_cs import features, filters, styles
from geo_cs.api import problems
from geo_cs.api.deps import (
    MeasureDep,
    MeasureParams,
    StoreDep,
    cached_codes,
    cached_collections,
    cached_outline,
    cached_selection,
    cached_values,
    checked_collection,
    data_version,
    open_cursor,
    parsed_on_loop,
    pin_version,
    public_base,
)
from geo_cs.attribution import OGL_ATTRIBUTION
from geo_cs.custom_areas import PARTNERSHIP_ID_PATTERN
from geo_cs.errors import GeoCsError, InputError
from geo_cs.export import gis
from geo_cs.features import (
    CRS84,
    DEFAULT_LIMIT,
    MAX_LIMIT,
    PARTNERSHIPS,
    STORAGE_CRS,
    SUPPORTED_CRS,
    ItemQuery,
)


async def known_parameters_only(request: Request) -> None:
    """OGC API - Features Part 1 (/req/core/query-param-unknown): a query parameter the API does
    not define is a 400 naming it and the ones it accepts — never silently ignored, which would
    answer ``code=`` with every feature.

    The parameters of items (``indicator=``, ``partnership=``, ``filter=``, ``filter-lang=``,
    ``sortby=``…) are accepted on every route of the API, not only on items: QGIS repeats its
    connection URL's query string on each request it makes (landing page, API definition,
    collection, items) and GDAL a layer URL's, so refusing one of them anywhere makes the layer
    invalid ("Bad Request" and nothing more in QGIS). Only items read them: there a malformed
    filter is a 400 naming ``filter`` (:class:`FilterParams`); elsewhere they change nothing.
    """
    known = _known_parameters()
    # (async: a look at the query string, on the event loop rather than a thread-pool hop)
    route = request.scope.get("route")
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        raise InputError(
            f"unknown query parameter{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; "
            f"this {'route' if route is not None else 'API'} accepts: {', '.join(sorted(known))}")


ITEMS_PATH = "/collections/{collectionId}/items"


@cache
def _known_parameters() -> frozenset[str]:
    names = {"f"}
    for route in router.routes:
        names.update(_query_names(route.dependant))
    return frozenset(names)


def _query_names(dependant) -> list[str]:
    names = [p.alias for p in dependant.query_params]
    for sub in dependant.dependencies:
        names += _query_names(sub)
    return names


router = APIRouter(tags=["OGC API - Features"], responses=problems.RESPONSES,
                   dependencies=[Depends(known_parameters_only)])

GEOJSON = "application/geo+json"
CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
    # Part 3: queryables, and filter in CQL2 text on items
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/features-filter",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-cql2",
    "http://www.opengis.net/spec/cql2/1.0/conf/advanced-comparison-operators",
    "http://www.opengis.net/spec/cql2/1.0/conf/case-insensitive-comparison",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions-plus",
    "http://www.opengis.net/spec/cql2/1.0/conf/spatial-functions",
    # sortby=+prop,-prop (the sorting class of OGC API - Records, which Features Part 5 takes up)
    "http://www.opengis.net/spec/ogcapi-records-1/1.0/conf/sorting",
]
SCHEMA_JSON = "application/schema+json"
QUERYABLES_REL = "http://www.opengis.net/def/rel/ogc/1.0/queryables"


_base = public_base


@router.get("/", summary="Landing page")
def landing(request: Request) -> dict:
    base = _base(request)
    return {
        "title": "geo-cs",
        "description": "Worklessness indicators for small areas and employment partnerships in "
                       "Great Britain. " + OGL_ATTRIBUTION,
        "attribution": OGL_ATTRIBUTION,
        "links": [
            {"href": f"{base}/", "rel": "self", "type": "application/json", "title": "This document"},
            {"href": f"{base}/api", "rel": "service-desc",
             "type": "application/vnd.oai.openapi+json;version=3.0", "title": "The API definition"},
            {"href": f"{base}/docs", "rel": "service-doc", "type": "text/html", "title": "API documentation"},
            {"href": f"{base}/conformance", "rel": "conformance", "type": "application/json",
             "title": "Conformance classes"},
            {"href": f"{base}/collections", "rel": "data", "type": "application/json",
             "title": "Collections"},
            {"href": f"{base}/tiles", "rel": "tiles", "type": "application/json", "title": "Vector tiles"},
            {"href": f"{base}/maps/", "rel": "alternate", "type": "text/html", "title": "Web map"},
        ],
    }


@router.get("/conformance", summary="Conformance classes")
def conformance() -> dict:
    return {"conformsTo": CONFORMANCE}


@router.get("/api", summary="The OpenAPI definition", include_in_schema=False)
def api_definition(request: Request) -> JSONResponse:
    return JSONResponse(request.app.openapi(), media_type="application/vnd.oai.openapi+json;version=3.0")


#: Where a collection's description points for the words it uses (the map's help page).
HELP_PATH = "/maps/help"


def _collection_json(c: features.Collection, base: str,
                     bbox: tuple[float, float, float, float] | Literal["all"] | None = "all",
                     selected: str | None = None, style_query: dict[str, str] | None = None) -> dict:
    """A collection as OGC API - Features describes it, with its licence and the page that
    describes its measure (links ``license``, ``describedby``: QGIS 3.22 reads the licence
    link's title into the layer's metadata, the description into its abstract, and GDAL shows
    the description), its periods (``extent.temporal``, each with its words in ``periods``)
    and, for a map collection, its styles.

    ``bbox``: the lon/lat extent of what the request selects (``"all"``: the whole set; None:
    nothing, so no spatial extent); ``selected`` says what selected it."""
    href = f"{base}/collections/{c.id}"
    measure = {"indicator": c.indicator, **({"denominator": c.denominator} if c.denominator else {})}
    tiles_query = f"?{urlencode(measure)}" if c.kind == "measure" else ""
    extent: dict = {}
    box = c.bbox if bbox == "all" else bbox
    if box is not None:
        extent["spatial"] = {"bbox": [list(box)], "crs": CRS84}
    if c.periods:
        extent["temporal"] = {
            "interval": [[f"{c.periods[0].start.isoformat()}T00:00:00Z",
                          f"{c.periods[-1].end.isoformat()}T23:59:59Z"]],
            "trs": features.GREGORIAN,
            # OGC allows more members: each period's id (period=) and words, first and last day
            "periods": [{"id": p.id, "label": p.label, "start": p.start.isoformat(),
                         "end": p.end.isoformat()} for p in c.periods],
        }
    links = [{"href": href, "rel": "self", "type": "application/json", "title": "This collection"}]
    if c.ogl:
        links.append({"href": features.OGL_URL, "rel": "license", "type": "text/html",
                      "title": features.OGL_NAME})
    links.append({"href": f"{base}{HELP_PATH}#{'worst' if c.cohort else 'data'}", "rel": "describedby",
                  "type": "text/html", "title": "What the measures and their words mean, and where each "
                                                "comes from (the web map's help page)"})
    links.append({"href": f"{href}/items", "rel": "items", "type": GEOJSON, "title": "Items"})
    if c.kind in ("geography", "measure"):
        links += [
            {"href": f"{href}/items?f=csv", "rel": "items", "type": "text/csv", "title": "Items as CSV"},
            *_queryables_links(href),
            {"href": f"{base}/tiles/{c.geography}/tilejson.json{tiles_query}", "rel": "tiles",
             "type": "application/json", "title": "Vector tiles (TileJSON)"},
        ]
    # files a GIS opens directly, in British National Grid or lon/lat (docs/gis-downloads.md),
    # holding what this document describes; not offered where the download would be refused
    # as too large (a whole national set without partnership=)
    selection = {k: v for k, v in (style_query or {}).items() if k == "partnership"}
    if selection or c.count <= gis.MAX_FEATURES:
        links += gis.download_links(href, selection)
    if c.kind == "measure":
        links += [{"href": f"{href}/styles", "rel": styles.STYLES_REL, "type": "application/json",
                   "title": "Styles: the web map's classes (QML, SLD, MapLibre)"},
                  *styles.style_links(base, c.id, style_query)]
    out = {
        "id": c.id, "title": c.title, "description": c.description, "itemType": "feature",
        # every feature is a MultiPolygon: said here, and so in GDAL's and QGIS's layer type
        "geometryType": features.GEOMETRY_TYPE,
        "extent": extent,
        "crs": list(SUPPORTED_CRS), "storageCrs": STORAGE_CRS,
        "attribution": OGL_ATTRIBUTION,
        "links": links,
    }
    if selected:
        out["extentOf"] = selected
    return out


def _queryables_links(href: str) -> list[dict]:
    # the Part 3 relation, and "queryables", the drafts' one that GDAL 3.6 looks for
    return [{"href": f"{href}/queryables", "rel": rel, "type": SCHEMA_JSON,
             "title": "Queryables: the properties filter and sortby may name"}
            for rel in (QUERYABLES_REL, "queryables")]


@router.get("/collections", summary="Collections: boundary sets and analysis layers")
def collections(request: Request, store: StoreDep,
                partnership: Annotated[str | None, Query(pattern=PARTNERSHIP_ID_PATTERN,
                                                         include_in_schema=False)] = None,
                ) -> dict:
    """Every collection; with ``partnership=`` (a connection URL's, which GDAL and QGIS repeat
    here) each extent is that of the partnership's areas (none where it has none; an unknown
    partnership changes nothing here: the items name the known ones)."""
    from geo_cs.partnerships import load_partnerships

    base = _base(request)
    listed = cached_collections(request, store).values()
    if partnership is not None and partnership in load_partnerships():
        out = []
        for c in listed:
            box: tuple | Literal["all"] | None = "all"
            if c.kind != "analysis":
                try:
                    box = _partnership_extent(request, store, c.geography, partnership)
                except InputError:   # the partnership has no areas in this set: items refuse it too
                    box = None
            out.append(_collection_json(c, base, box, None if box == "all" else f"partnership={partnership}",
                                        {"partnership": partnership}))
    else:
        out = [_collection_json(c, base) for c in listed]
    return {
        "links": [{"href": f"{base}/collections", "rel": "self", "type": "application/json"},
                  {"href": features.OGL_URL, "rel": "license", "type": "text/html",
                   "title": features.OGL_NAME}],
        "collections": out,
        "crs": list(SUPPORTED_CRS),
    }


def _partnership_extent(request: Request, store, set_id: str, partnership: str):
    """The lon/lat extent of a partnership's areas in ``set_id`` (None: none with boundaries),
    cached per data version."""
    codes = cached_codes(request, store, partnership, set_id)
    return request.app.state.values_cache.get_or_make(
        (data_version(request), "extent", set_id, partnership),
        lambda: features.selection_extent(store, ItemQuery(set_id, codes=codes))[0])


CollectionId = Annotated[str, Path(alias="collectionId",
                                   description="A boundary set (lsoa2011…), a map or 'partnerships'.",
                                   pattern=r"^[A-Za-z0-9_\-]+$")]  # any length: map ids hold measure names


def moved_collection(request: Request, store, collection_id: str) -> RedirectResponse | None:
    """A permanent redirect (308: same method, same query) from a collection's former id to
    its id now (issue 30: one id pattern per measure), or None for an id in use or unknown.
    Existing links and QGIS projects keep working: QGIS 3.22 and GDAL follow it."""
    collections = cached_collections(request, store)
    if collection_id in collections:
        return None
    new = features.former_ids(collections).get(collection_id)
    if new is None:
        return None
    rest = request.url.path.partition(f"/collections/{collection_id}")[2]
    query = f"?{request.url.query}" if request.url.query else ""
    return RedirectResponse(f"{_base(request)}/collections/{new}{rest}{query}", status_code=308)


class ItemParams:
    """The query parameters of /items, parsed into types (checked by :class:`ItemQuery`)."""

    def __init__(
        self,
        limit: Annotated[int, Query(
            ge=1, le=MAX_LIMIT,
            description=f"Items per page (default {DEFAULT_LIMIT}, maximum {MAX_LIMIT}).")] = DEFAULT_LIMIT,
        offset: Annotated[int, Query(ge=0, le=10_000_000, description="Items to skip.")] = 0,
        bbox: Annotated[str | None, Query(description="minx,miny,maxx,maxy in bbox-crs.",
                                          max_length=200)] = None,
        bbox_crs: Annotated[str | None, Query(alias="bbox-crs", max_length=100,
                                              description="CRS of bbox (default CRS84).")] = None,
        crs: Annotated[str | None, Query(max_length=100, description="Output CRS (default CRS84).")] = None,
        properties: Annotated[str | None, Query(max_length=500,
                                                description="Comma-separated properties to return.")] = None,
        partnership: Annotated[str | None, Query(pattern=PARTNERSHIP_ID_PATTERN,
                                                 description="Only the areas of this partnership.")] = None,
        f: Annotated[Literal["json", "geojson", "csv"], Query(description="Output format.")] = "json",
        datetime: Annotated[str | None, Query(
            max_length=100, description="RFC 3339 date, date-time or interval (2016-06-01, "
                                        "2014-01-01/..): the period of the indicator it meets.")] = None,
    ) -> None:
        self.limit, self.offset, self.partnership, self.f = limit, offset, partnership, f
        self.datetime = datetime
        self.crs = features.crs_from_param(crs, "crs")
        self.bbox_crs = features.crs_from_param(bbox_crs, "bbox-crs")
        self.bbox = None
        if bbox:
            try:
                numbers = tuple(float(v) for v in bbox.split(","))
            except ValueError as exc:
                raise InputError(f"bbox={bbox!r}: expected four comma-separated numbers") from exc
            self.bbox = features.bbox_to_lonlat(numbers, self.bbox_crs)
        self.properties = tuple(p.strip() for p in properties.split(",") if p.strip()) if properties else None
        self.raw = {"bbox": bbox, "bbox-crs": bbox_crs, "crs": crs, "properties": properties,
                    "partnership": partnership, "datetime": datetime}


def _measure_of(c: features.Collection, m: MeasureParams) -> MeasureParams:
    """A measure collection's own indicator and denominator (a request cannot change them)."""
    if c.kind != "measure":
        return m
    if m.indicator is not None or m.denominator is not None:
        raise InputError(f"collection {c.id} is {c.indicator}"
                         f"{' over ' + c.denominator if c.denominator else ''}: it takes no "
                         f"indicator= or denominator= (use collection {c.geography} for others)")
    return MeasureParams(c.indicator, m.period, c.denominator,
                         ",".join(m.baseline) if m.baseline else None, m.threshold)


def _item_query(request: Request, store, collection_id: str, p: ItemParams, m: MeasureParams,
                **overrides) -> ItemQuery:
    c = checked_collection(request, store, collection_id)
    collection_id = c.geography
    m = _measure_of(c, m)
    values = cached_values(request, store, collection_id, m)
    if p.datetime is not None:
        if values is None:
            raise InputError("datetime needs an indicator: boundaries have no time of their own")
        if m.period is not None:
            raise InputError("give period= or datetime=, not both")
        period = features.period_for_datetime(store, values.period_ids, p.datetime)
    else:
        period = values.check_period(m.period) if values is not None else None
    args = {
        "limit": p.limit, "offset": p.offset, "bbox": p.bbox, "crs": p.crs,
        "codes": cached_codes(request, store, p.partnership, collection_id),
        "properties": p.properties,
        **_period_values(request, collection_id, m, values, period),
        "indicator": m.indicator, "period": period, **overrides,
    }
    return ItemQuery(collection_id, **args)


def _period_values(request: Request, set_id: str, m: MeasureParams, values, period: str | None) -> dict:
    """A period's values for items, and where each code is in them, cached per data version."""
    if values is None:
        return {"values": None}
    frame, positions = request.app.state.values_cache.get_or_make(
        (data_version(request), "item-values", set_id, period, *m.key()),
        lambda: (frame := values.at(period), features.value_positions(frame)))
    return {"values": frame, "value_positions": positions}


def _paged(request: Request, store, q: ItemQuery) -> ItemQuery:
    """``q`` with its page picked from its selection: cached without a bbox, else searched."""
    if q.bbox is not None:
        return features.with_page_of(q, features.selection_codes(store, q.set_id, q.codes, q.bbox))
    return features.with_page_of(q, cached_selection(request, store, q.set_id, q.codes))


@router.get("/collections/{collectionId}/queryables", summary="Queryables: what filter and sortby may name",
            responses={200: {"content": {SCHEMA_JSON: {}}}})
def queryables(collection_id: CollectionId, request: Request, store: StoreDep,
               m: MeasureDep) -> JSONResponse:
    """A JSON Schema of the properties of the collection's items that ``filter`` and
    ``sortby`` may name, with their types (OGC API - Features Part 3). A boundary set's
    items carry a measure's properties (``value``…) only with ``indicator=``: so do its
    queryables; a survey measure's add ``half_width`` and ``reliability``."""
    moved = moved_collection(request, store, collection_id)
    if moved is not None:
        return moved
    c = checked_collection(request, store, collection_id)
    href = f"{_base(request)}/collections/{collection_id}/queryables"
    if c.kind == "analysis":
        qs: dict[str, filters.Queryable] = {}
    else:
        m = _measure_of(c, m)
        values = None
        if m.indicator is not None:
            # an unknown indicator is a 404 here too; a survey measure has queryables of its own
            values = cached_values(request, store, c.geography, m)
        qs = features.item_queryables(m.indicator is not None,
                                      survey=values is not None and values.measure.kind == "survey")
    return JSONResponse(filters.queryables_schema(qs, href, c.title),
                        media_type=_schema_media_type(request.headers.get("accept", "")),
                        headers={"Vary": "Accept"})


def _schema_media_type(accept: str) -> str:
    """application/schema+json, as Part 3 says, unless the client asks for application/json
    and not for it (GDAL 3.6 asks for application/json only, and refuses anything else)."""
    asked = {part.split(";")[0].strip().lower() for part in accept.split(",")}
    if "application/json" in asked and not asked & {SCHEMA_JSON, "*/*", "application/*"}:
        return "application/json"
    return SCHEMA_JSON


class FilterParams:
    """``filter`` (CQL2 text), ``filter-lang``, ``filter-crs`` and ``sortby`` of items.

    ``filter`` given more than once selects what every one of them selects (:func:`geo_cs.
    filters.all_of`): GDAL sends the filter it makes of a ``-where`` and then its layer URL's
    own, which it adds again to each ``next`` link it follows. ``filter-lang`` applies to every
    filter of the request: given twice, it must say the same."""

    def __init__(
        self,
        request: Request,
        filter: Annotated[str | None, Query(
            max_length=filters.MAX_FILTER_CHARS,
            description="A CQL2 text filter over the queryables (/collections/{collectionId}/"
                        "queryables), e.g. value > 20 AND name LIKE 'Glas%', code IN ('S01010206'), "
                        "S_INTERSECTS(geometry, BBOX(-4.3,55.8,-4.2,55.9)). Given more than once: "
                        "the features every one selects.")] = None,
        # an enum with a default (not "or null"): GDAL reads schema.enum to see cql-text offered
        filter_lang: Annotated[Literal["cql2-text", "cql-text"], Query(
            alias="filter-lang",
            description="cql2-text: CQL2, where string comparisons and LIKE respect case (CASEI "
                        "ignores it). cql-text, the draft's name that GDAL's OAPIF driver (up to "
                        "3.6) sends with a -where, is read as GDAL means it: string comparisons "
                        "(=, <>, <, IN…) and ILIKE ignore ASCII case, LIKE respects it.")] = "cql2-text",
        filter_crs: Annotated[str | None, Query(
            alias="filter-crs", max_length=100,
            description="CRS of the filter's geometries (default CRS84).")] = None,
        sortby: Annotated[str | None, Query(
            max_length=500, description="Comma-separated queryables, - for descending: -value,name. "
                                        "Ties are ordered by code.")] = None,
    ) -> None:
        texts = request.query_params.getlist("filter")
        if len(texts) > 1:
            filter = filters.all_of(texts)
        langs = sorted(set(request.query_params.getlist("filter-lang")))
        if len(langs) > 1:
            raise InputError(f"filter-lang given as {' and '.join(langs)}: give one (it applies "
                             "to every filter)")
        self.text, self.lang, self.crs_param, self.sortby = filter, filter_lang, filter_crs, sortby
        self.crs = features.crs_from_param(filter_crs, "filter-crs")
        if filter is None and filter_crs is not None:
            raise InputError("filter-crs needs a filter")
        self.raw = {"filter": filter, "filter-lang": filter_lang if filter is not None else None,
                    "filter-crs": filter_crs, "sortby": sortby}

    def apply(self, q: ItemQuery) -> ItemQuery:
        """``q`` with the filter and sort keys, checked against its queryables."""
        if self.text is None and self.sortby is None:
            return q
        qs = features.item_queryables(q.values is not None, survey=q.survey)
        where = (filters.parse_filter(self.text, qs, self.lang, features.spatial_for(self.crs))
                 if self.text is not None else None)
        sort = filters.parse_sortby(self.sortby, qs) if self.sortby is not None else None
        return replace(q, where=where, sort=sort)


ItemParamsDep = Annotated[ItemParams, Depends(parsed_on_loop(ItemParams))]
FilterParamsDep = Annotated[FilterParams, Depends(parsed_on_loop(FilterParams))]


@router.get("/collections/{collectionId}", summary="One collection",
            responses={308: {"description": "A former id of the collection: the same request on its id now"}})
def collection(collection_id: CollectionId, request: Request, store: StoreDep) -> JSONResponse:
    """The collection. With the items' ``partnership=``, ``bbox=`` or ``filter=`` (QGIS
    repeats its connection URL's query on this request, GDAL a layer URL's), its spatial extent
    is that of what they select — QGIS's and GDAL's layer extent, so "Zoom to layer" goes to
    the partnership, not to Great Britain — and its style links carry the partnership.

    A selection the items would refuse (a malformed filter or bbox, a partnership with no areas
    in the set) is not refused here: the items name what is wrong, while a refused collection
    would show only "Bad Request" in QGIS. The extent is then the whole collection's."""
    moved = moved_collection(request, store, collection_id)
    if moved is not None:
        return moved
    c = checked_collection(request, store, collection_id)
    base = _base(request)
    asked = request.query_params
    given = {name: asked[name] for name in ("partnership", "bbox", "filter") if name in asked}
    if not given or c.kind == "analysis":
        return JSONResponse(_collection_json(c, base))
    try:
        # the items' own parsing and checks: the extent of exactly what they would serve
        p, m, fp = _selection_params(request)
        if list(given) == ["partnership"]:
            box = _partnership_extent(request, store, c.geography, asked["partnership"])
        else:
            q = fp.apply(_item_query(request, store, collection_id, p, m))
            box = features.selection_extent(store, q)[0]
    except (GeoCsError, ValueError):
        return JSONResponse(_collection_json(c, base))
    selected = " and ".join(f"{name}={value}" for name, value in given.items())
    style_query = {"partnership": p.partnership} if p.partnership else None
    return JSONResponse(_collection_json(c, base, box, selected, style_query))


def _selection_params(request: Request) -> tuple[ItemParams, MeasureParams, FilterParams]:
    """The items' parameters of a request to another route (the collection), parsed as the
    items parse them; InputError or ValueError where they would refuse one."""
    asked = request.query_params
    threshold = float(asked.get("threshold", 25.0))
    if not 0 <= threshold <= 100:
        raise InputError(f"threshold={threshold:g}: expected 0-100")
    lang = asked.get("filter-lang", "cql2-text")
    if lang not in ("cql2-text", "cql-text"):
        raise InputError(f"filter-lang={lang!r}: expected cql2-text or cql-text")
    p = ItemParams(bbox=asked.get("bbox"), bbox_crs=asked.get("bbox-crs"),
                   partnership=asked.get("partnership"), datetime=asked.get("datetime"))
    m = MeasureParams(asked.get("indicator"), asked.get("period"), asked.get("denominator"),
                      asked.get("baseline"), threshold)
    fp = FilterParams(request, filter=asked.get("filter"), filter_lang=lang,  # type: ignore[arg-type]
                      filter_crs=asked.get("filter-crs"))
    return p, m, fp


#: A page of up to this many items is sent in one piece; a larger one (a download of a
#: partnership's areas, a GIS client's big pages) in parts (:class:`PageResponse`). Either is
#: built whole first, on the request's one thread-pool hop.
ONE_PIECE_ITEMS = 1000

log = logging.getLogger("geo_cs.api")


class PageResponse(Response):
    """A page already built, sent in parts, each of which its client must take in time.

    Contract: the body is ``parts`` joined, announced by its Content-Length (a gzipped one goes
    chunked). Each part must be taken within ``send_timeout`` seconds (GEO_CS_SEND_TIMEOUT_S,
    like nginx's ``send_timeout``: between two writes, not for the whole download, so a slow
    reader gets it all). A client that takes nothing for that long is cut off: nothing more is
    sent and the response is left incomplete — fewer bytes than announced, or a chunked stream
    without its last chunk — so the client knows it was cut (curl: "transfer closed with
    outstanding read data remaining"); the server closes the connection once what was written
    has gone, and the parts not sent are freed. Nothing of the database is held while it is
    sent: the page was built, and its cursor closed, before the response started, so a stalled
    client keeps no data version open.
    """

    def __init__(self, parts: list[bytes], media_type: str, headers: dict[str, str],
                 send_timeout: float) -> None:
        length = sum(len(part) for part in parts)
        super().__init__(b"", media_type=media_type, headers={**headers, "Content-Length": str(length)})
        self.parts = parts
        self.send_timeout = send_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        parts, self.parts = self.parts, []
        sent = 0

        async def taken(message: dict) -> bool:
            try:
                with anyio.fail_after(self.send_timeout):
                    await send(message)
                return True
            except TimeoutError:
                log.warning("%s: its client took nothing for %g s (GEO_CS_SEND_TIMEOUT_S); its "
                            "response is cut after %s of %s bytes", scope.get("path"),
                            self.send_timeout, f"{sent:,}", f"{int(self.headers['content-length']):,}")
                return False

        if not await taken({"type": "http.response.start", "status": self.status_code,
                            "headers": self.raw_headers}):
            return
        for i in range(len(parts)):
            # the list lets go of each part as it goes: the page's memory falls as it is sent
            part, parts[i] = parts[i], b""
            if not await taken({"type": "http.response.body", "body": part, "more_body": True}):
                return   # incomplete on purpose: the server closes the connection
            sent += len(part)
        await taken({"type": "http.response.body", "body": b"", "more_body": False})


@router.get(ITEMS_PATH, summary="Items (features) of a collection",
            responses={200: {"content": {GEOJSON: {}, "text/csv": {}}},
                       410: problems.RESPONSES[404] | {
                           "description": "A page of a data version no longer kept (version=)"}})
async def items(
    _pin: Annotated[None, Depends(pin_version)],   # first: before any cursor is taken
    collection_id: CollectionId, request: Request,
    p: ItemParamsDep, m: MeasureDep, fp: FilterParamsDep,
) -> Response:
    # Async with parameters parsed on the loop, the page made on one hop of the thread pool:
    # under load each hop waits behind the worker's other requests (see parsed_on_loop).
    return await run_in_threadpool(_items, request, collection_id, p, m, fp)


def _items(request: Request, collection_id: str, p: ItemParams, m: MeasureParams,
           fp: FilterParams) -> Response:
    store = open_cursor(request)
    try:
        if collection_id == PARTNERSHIPS:
            if fp.text is not None or fp.sortby is not None:
                raise InputError(f"collection {PARTNERSHIPS} takes no filter or sortby (it has no "
                                 "queryables); filter the areas of a boundary set with partnership=")
            return _partnership_items(request, store, p)
        moved = moved_collection(request, store, collection_id)
        if moved is not None:
            return moved
        c = checked_collection(request, store, collection_id)
        q = fp.apply(_item_query(request, store, collection_id, p, m))
        if not q.searched:
            q = _paged(request, store, q)
        name = features.download_name(collection_id, q, "csv" if p.f == "csv" else "geojson",
                                      p.partnership, measure_in_id=c.kind == "measure")
        headers = {"Content-Crs": f"<{q.crs}>"}
        if p.f == "csv":
            return _body(request, q.limit, features.iter_csv(store, q), "text/csv",
                         {**headers, "Content-Disposition": f'attachment; filename="{name}"'})
        matched = features.count_items(store, q)
        # every link names the data version: the next page is the next of the same data, even
        # if an update lands between two requests
        params = {k: v for k, v in {**p.raw, **m.query(), **fp.raw}.items() if v}
        params["version"] = str(data_version(request))
        links = features.page_links(f"{_base(request)}/collections/{collection_id}/items", params, q,
                                    matched, GEOJSON)
        extra = {"attribution": OGL_ATTRIBUTION}
        if p.f == "geojson":   # asked for as a file; f=json (GIS clients, the map's own link) is not
            headers["Content-Disposition"] = f'attachment; filename="{name}"'
        return _body(request, q.limit, features.feature_collection(store, q, links, extra, matched),
                     GEOJSON, headers)
    finally:
        store.close()


def _body(request: Request, limit: int, chunks: Iterable[str], media_type: str,
          headers: dict[str, str]) -> Response:
    """The response of a page whose text is ``chunks``, made here, on the request's thread-pool
    hop and cursor: its database work ends before anything is sent, under the query limit, and
    a slow or stalled client then holds no cursor (:class:`PageResponse`). Up to
    :data:`ONE_PIECE_ITEMS` items in one piece, a larger page in parts."""
    if limit <= ONE_PIECE_ITEMS:
        return Response("".join(chunks), media_type=media_type, headers=headers)
    return PageResponse([chunk.encode() for chunk in chunks], media_type, headers,
                        request.app.state.settings.send_timeout_s)


@router.get("/collections/{collectionId}/items/{code}", summary="One item by its code")
def item(
    collection_id: CollectionId, code: Annotated[str, Path(max_length=64)], request: Request,
    store: StoreDep, p: ItemParamsDep, m: MeasureDep,
):
    if collection_id == PARTNERSHIPS:
        outline = cached_outline(request, store, code, p.crs)
        return JSONResponse(outline, media_type=GEOJSON, headers={"Content-Crs": f"<{p.crs}>"})
    moved = moved_collection(request, store, collection_id)
    if moved is not None:
        return moved
    q = _item_query(request, store, collection_id, p, m, offset=0, bbox=None)
    return Response(features.get_feature(store, q, code), media_type=GEOJSON,
                    headers={"Content-Crs": f"<{q.crs}>"})


def _partnership_items(request: Request, store, p: ItemParams) -> Response:
    from geo_cs.partnerships import load_partnerships

    q = features.PartnershipQuery(p.limit, p.offset, p.bbox, p.properties)
    ids = sorted(load_partnerships())
    # outlines are cached per data version: bounds come from the lon/lat ones, whatever the crs
    bounds = {pid: cached_outline(request, store, pid)["bbox"] for pid in ids}
    matched = q.matching(bounds)
    feats = [q.select(cached_outline(request, store, pid, p.crs)) for pid in q.page(matched)]
    if p.f == "csv":
        return Response(features.properties_csv(feats, q.properties or features.PARTNERSHIP_PROPERTIES),
                        media_type="text/csv",
                        headers={"Content-Disposition": f'attachment; filename="{PARTNERSHIPS}.csv"'})
    params = {k: v for k, v in p.raw.items() if v}
    links = features.page_links(f"{_base(request)}/collections/{PARTNERSHIPS}/items", params, q,
                                len(matched), GEOJSON)
    body = {"type": "FeatureCollection", "numberMatched": len(matched), "numberReturned": len(feats),
            "links": links, "attribution": OGL_ATTRIBUTION, "features": feats}
    return JSONResponse(body, media_type=GEOJSON, headers={"Content-Crs": f"<{p.crs}>"})
