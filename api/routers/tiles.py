"""Vector tiles (MVT) and TileJSON for every boundary set, with indicator values as properties,
and a layer's tiles as one file (MBTiles or PMTiles) for GIS clients that cannot read TileJSON.

Tiles are cached in-process by (data version, layer, address, measure); the ETag is the same key
hashed, so a client's cached tile is revalidated for free until the next ingest changes it.
"""

from __future__ import annotations

import gzip
import hashlib
import shutil
import tempfile
from pathlib import Path as FilePath
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, Response
from starlette.background import BackgroundTask

from geo_cs import features, tiles
from geo_cs.api import problems
from geo_cs.api.deps import (
    BaselineQuery,
    DenominatorQuery,
    IndicatorQuery,
    MeasureDep,
    MeasureParams,
    PeriodQuery,
    StoreDep,
    ThresholdQuery,
    cached_codes,
    cached_values,
    data_version,
    open_cursor,
    public_base,
)
from geo_cs.attribution import OGL_ATTRIBUTION
from geo_cs.errors import InputError, NotFoundError
from geo_cs.export import pmtiles

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
         "tilejson": f"{base}/tiles/{r.set_id}/tilejson.json",
         # the whole layer as one file for QGIS and GDAL (add partnership=, indicator=…)
         "mbtiles": f"{base}/tiles/{r.set_id}/download.mbtiles",
         "pmtiles": f"{base}/tiles/{r.set_id}/download.pmtiles"}
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


ARCHIVE_MEDIA_TYPES = {"mbtiles": "application/vnd.sqlite3", "pmtiles": "application/vnd.pmtiles"}


@router.get("/{layer}/download.{archive}", summary="A layer's tiles as one MBTiles or PMTiles file",
            responses={200: {"content": {t: {} for t in ARCHIVE_MEDIA_TYPES.values()},
                             "description": "The file, as an attachment"}})
def download(
    layer: LayerId,
    archive: Annotated[Literal["mbtiles", "pmtiles"], Path(
        description="mbtiles (QGIS 3.22 and later, GDAL 2.3 and later) or pmtiles (QGIS 3.32, GDAL "
                    "3.8, web maps with no server).")],
    request: Request, store: StoreDep, m: MeasureDep,
    partnership: Annotated[str | None, Query(
        max_length=64, description="Only the tiles of this partnership's areas.")] = None,
    bbox: Annotated[str | None, Query(
        max_length=200, description="Only the tiles of the areas meeting minx,miny,maxx,maxy (in "
                                    "bbox-crs).")] = None,
    bbox_crs: Annotated[str | None, Query(
        alias="bbox-crs", max_length=100, description="CRS of bbox (default CRS84).")] = None,
    minzoom: Annotated[int | None, Query(
        ge=tiles.MIN_ZOOM, le=tiles.MAX_ZOOM,
        description="The first zoom (default: the layer's, 7 for small areas).")] = None,
    maxzoom: Annotated[int, Query(
        ge=tiles.MIN_ZOOM, le=tiles.MAX_ZOOM,
        description=f"The last zoom (default {pmtiles.DOWNLOAD_MAXZOOM}; clients over-zoom it).")]
        = pmtiles.DOWNLOAD_MAXZOOM,
) -> Response:
    """The layer's vector tiles from ``minzoom`` to ``maxzoom`` as one file that QGIS (Layer ▸
    Add Layer ▸ Add Vector Tile Layer, or drag the .mbtiles in) and GDAL (``ogrinfo x.mbtiles``)
    open as a whole: the same tiles, values and disclosure control as ``/tiles/{layer}/{z}/{x}/
    {y}.mvt`` with the same ``indicator``, ``period``…, limited to a ``partnership``'s areas or
    a ``bbox``. At most 2,000 tiles: a larger request is refused (400) naming ``maxzoom`` and
    the largest that fits."""
    info = _layer(store, layer)
    values = cached_values(request, store, layer, m)
    period = values.check_period(m.period) if values is not None else None
    codes = list(cached_codes(request, store, partnership, layer) or ()) if partnership else None
    box = None
    if bbox is not None:
        try:
            numbers = tuple(float(v) for v in bbox.split(","))
        except ValueError as exc:
            raise InputError(f"bbox={bbox!r}: expected four comma-separated numbers") from exc
        box = features.bbox_to_lonlat(numbers, features.crs_from_param(bbox_crs, "bbox-crs"))
    low = int(info["minzoom"]) if minzoom is None else minzoom
    if low > maxzoom:
        raise InputError(f"minzoom={low}: must not exceed maxzoom={maxzoom}"
                         + ("" if minzoom is not None else f" ({layer} starts at z{low})"))
    version = data_version(request)
    index = request.app.state.values_cache.get_or_make((version, "tile-index", layer),
                                                       lambda: tiles.tile_index(store, layer))
    period_values = None if values is None else request.app.state.values_cache.get_or_make(
        (version, "tile-values", layer, m.period, *m.key()), lambda: tiles.tile_values(values.at(m.period)))
    name = "_".join(str(p) for p in (layer, partnership, m.indicator, period) if p) + f".{archive}"
    description = (f"{values.measure.label}, {period} ({values.unit or 'value'})" if values is not None
                   else f"{info['label']}: boundaries")
    folder = FilePath(tempfile.mkdtemp(prefix="geo-cs-tiles-"))
    try:
        pmtiles.write_download(store, layer, folder / name, archive=archive, minzoom=low, maxzoom=maxzoom,
                               values=period_values, codes=codes, bbox=box, description=description,
                               index=index)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    # the file is removed once sent
    return FileResponse(folder / name, media_type=ARCHIVE_MEDIA_TYPES[archive], filename=name,
                        background=BackgroundTask(shutil.rmtree, folder, True))
