"""Vector tiles (MVT) and TileJSON for every boundary set, with indicator values as properties.

Tiles are cached in-process by (data version, layer, address, measure); the ETag is the same key
hashed, so a client's cached tile is revalidated for free until the next ingest changes it.
"""

from __future__ import annotations

import gzip
import hashlib
from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from api import problems
from api.deps import (
    BaselineQuery,
    DenominatorQuery,
    IndicatorQuery,
    MeasureDep,
    MeasureParams,
    PeriodQuery,
    StoreDep,
    ThresholdQuery,
    cached_values,
    data_version,
    open_cursor,
    public_base,
)
from geo_cs import tiles
from geo_cs.attribution import OGL_ATTRIBUTION
from geo_cs.errors import NotFoundError

router = APIRouter(prefix="/tiles", tags=["Vector tiles"], responses=problems.RESPONSES)

MVT = "application/vnd.mapbox-vector-tile"
#: Browsers and GIS clients revalidate after a minute; the ETag makes that a 304 until new data.
CACHE_CONTROL = "public, max-age=60"

LayerId = Annotated[str, Path(description="A boundary set with geometry, e.g. lsoa2011.",
                              pattern=r"^[A-Za-z0-9_\-]{1,64}$")]


def _layer(store, layer: str) -> dict:
    sets = tiles.tile_sets(store)
    row = sets[sets["set_id"] == layer]
    if row.empty:
        raise NotFoundError(f"tile layer {layer!r} not found; valid: {', '.join(sets['set_id']) or 'none'}")
    return row.iloc[0].to_dict()


@router.get("", summary="Tile layers")
def tile_layers(request: Request, store: StoreDep) -> dict:
    base = public_base(request)
    return {"layers": [
        {"id": r.set_id, "title": r.label, "areas": int(r.areas),
         "tilejson": f"{base}/tiles/{r.set_id}/tilejson.json"}
        for r in tiles.tile_sets(store).itertuples()
    ]}


FIELDS_BASE = {"code": "String", "name": "String"}
FIELDS_VALUES = tiles.VALUE_FIELDS


@router.get("/{layer}/tilejson.json", summary="TileJSON 3.0 of a layer")
def tilejson(layer: LayerId, request: Request, store: StoreDep,
             m: MeasureDep) -> dict:
    info = _layer(store, layer)
    values = cached_values(request, store, layer, m)
    query = m.query()
    if values is not None:
        query["period"] = values.check_period(m.period)
    from urllib.parse import urlencode

    suffix = f"?{urlencode(query)}" if query else ""
    base = public_base(request)
    bounds = [info["west"], info["south"], info["east"], info["north"]]
    fields = {**FIELDS_BASE, **(FIELDS_VALUES if values is not None else {})}
    body = {
        "tilejson": "3.0.0", "name": info["label"], "scheme": "xyz",
        "tiles": [f"{base}/tiles/{layer}/{{z}}/{{x}}/{{y}}.mvt{suffix}"],
        "minzoom": int(info["minzoom"]), "maxzoom": tiles.MAX_ZOOM, "bounds": bounds,
        "center": [(bounds[0] + bounds[2]) / 2, (bounds[1] + bounds[3]) / 2, 8],
        "attribution": OGL_ATTRIBUTION,
        "vector_layers": [{"id": layer, "fields": fields, "minzoom": int(info["minzoom"]),
                           "maxzoom": tiles.MAX_ZOOM, "description": info["label"]}],
    }
    if values is not None:
        body["description"] = f"{values.measure.label}, {query['period']} ({values.unit or 'value'})"
    return body


@router.get("/{layer}/{z}/{x}/{y}.mvt", summary="One vector tile",
            responses={200: {"content": {MVT: {}}}, 204: {"description": "No area in this tile"},
                       304: {"description": "Not modified (If-None-Match)"}})
async def tile(
    layer: LayerId,
    z: Annotated[int, Path(ge=tiles.MIN_ZOOM, le=tiles.MAX_ZOOM)],
    x: Annotated[int, Path(ge=0, le=2**tiles.MAX_ZOOM - 1)],
    y: Annotated[int, Path(ge=0, le=2**tiles.MAX_ZOOM - 1)],
    request: Request,
    indicator: IndicatorQuery = None, period: PeriodQuery = None, denominator: DenominatorQuery = None,
    baseline: BaselineQuery = None, threshold: ThresholdQuery = 25.0,
) -> Response:
    # Async, with no dependencies: a cached tile is answered on the event loop without a thread
    # hop or a database cursor; only a miss renders, on the thread pool.
    tiles.check_tile(z, x, y)
    m = MeasureParams(indicator, period, denominator, baseline, threshold)
    key = (data_version(request), layer, z, x, y, m.period, *m.key())
    etag = '"' + hashlib.blake2b(repr(key).encode(), digest_size=12).hexdigest() + '"'
    headers = {"ETag": etag, "Cache-Control": CACHE_CONTROL, "Vary": "Accept-Encoding"}
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    cached = request.app.state.tile_cache.get(key)
    if cached is None:
        cached = await run_in_threadpool(_render, request, layer, z, x, y, m, key)
    raw, compressed = cached
    if not raw:
        return Response(status_code=204, headers=headers)
    if "gzip" in request.headers.get("accept-encoding", ""):
        return Response(compressed, media_type=MVT, headers={**headers, "Content-Encoding": "gzip"})
    return Response(raw, media_type=MVT, headers=headers)


def _render(request: Request, layer: str, z: int, x: int, y: int, m: MeasureParams,
            key: tuple) -> tuple[bytes, bytes]:
    """Render a tile on a cursor of its own and cache it (plain and gzipped)."""
    tiles.check_tile(z, x, y)
    store = open_cursor(request)
    try:
        # 404 for an unknown layer, remembered per data version (tiles come by hundreds)
        request.app.state.values_cache.get_or_make((key[0], "tile-layer", layer),
                                                   lambda: _layer(store, layer))
        values = cached_values(request, store, layer, m)
        period_values = None
        if values is not None:
            period_values = request.app.state.values_cache.get_or_make(
                (key[0], "tile-values", layer, m.period, *m.key()),
                lambda: tiles.tile_values(values.at(m.period)))
        # where the layer's areas are and whether its tiles are prepared, once per data version
        index = request.app.state.values_cache.get_or_make((key[0], "tile-index", layer),
                                                           lambda: tiles.tile_index(store, layer))
        raw = tiles.render_tile(store, layer, z, x, y, period_values, index=index)
    finally:
        store.close()
    cached = (raw, gzip.compress(raw, compresslevel=6) if raw else b"")
    request.app.state.tile_cache.put(key, cached)
    return cached
