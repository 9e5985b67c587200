"""Mapbox vector tiles of any boundary set, built in DuckDB spatial.

Boundaries are kept once more for tiling: in Web Mercator (EPSG:3857), simplified per *zoom band*
at boundary ingest (:func:`tile_geometries`), so a z5 tile of every small area in Great
Britain is drawn from coarse rings and a z14 tile from the published ones. A tile is the band's
geometries overlapping the tile envelope, clipped where they cross its edge, moved to tile units
and encoded as MVT, with the indicator values of the requested period as properties
(:func:`render_tile`).

Servers keep a :class:`TileIndex` per layer, and draw every tile in memory, with no query: a
layer as its boundary ingest leaves it (and the demo's) from the band geometries the index
holds, clipped per tile by GEOS (``clip_by_rect``) and encoded by :mod:`geo_cs.mvt`; a layer
whose tiles are *prepared* (:func:`prepare_tiles`, ``geo-cs tiles prepare``: every band's areas
cut once to every tile of its zooms, ``tile_pieces``, and their geometry encoded,
``tile_features``) from that encoded geometry. Both give the same tile, and so does the
database (``ST_AsMVT``, for a caller without an index): clipped in SQL, or read from the
pieces. Measured against PostGIS given the same input, ``bench/bench_tiles.py``.

Simplification keeps neighbours touching. A set's areas are one *coverage* (polygons that tile
the ground, each shared edge held once): GEOS's coverage cleaner first snaps the published rings
where neighbours disagree by a hair and gives each overlap to one of them, then each band is
simplified with ``shapely.coverage_simplify`` (Visvalingam-Whyatt on the shared edges, so both
sides of an edge lose the same vertices) until no vertex would turn a triangle larger than a
screen pixel squared at the band's most detailed zoom. Simplifying each polygon on its own (as
before) left slivers between neighbours: 11% of Manchester's LSOA area at z8, 1.3% at z10, as
holes in the tiles' union; now 0.007% and 0.002%, cells of the tile's grid where rounding to it
bends a ring (``tests/test_tiles_gis.py``). An area the cleaner would empty or halve (not part
of a coverage: an overlap, not a neighbour) keeps its own rings, simplified on its own. Every
boundary ingest of a set simplifies all its areas again, those already stored too, so a set
loaded district by district is tiled the same as one loaded at once.

Example
-------
>>> from geo_cs.tiles import tile_bounds, zoom_band
>>> zoom_band(5).tolerance_m > zoom_band(12).tolerance_m
True
>>> [round(v) for v in tile_bounds(0, 0, 0)]
[-20037508, -20037508, 20037508, 20037508]
"""

from __future__ import annotations

import math
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyproj
import shapely

from geo_cs.errors import InputError, NotFoundError
from geo_cs.mvt import (
    DRAWN,
    TOO_COMPLEX,
    WKB_PADDING,
    EncodedTiles,
    LayerWriter,
    encode_prepared,
    encode_wkb,
    has_encoded,
    wkb_buffer,
    wkb_views,
)
from geo_cs.progress import Progress, SilentProgress
from geo_cs.store import Store

#: Half the Web Mercator world width, in metres.
WORLD_HALF = 20037508.342789244
#: Tile coordinates: 4,096 units a side (the MVT default) with a 64-unit buffer so that strokes
#: of areas just outside a tile are not cut at its edge.
EXTENT = 4096
BUFFER = 64
MIN_ZOOM = 0
#: Beyond z14 small areas gain nothing but tile count; clients over-zoom z14 tiles.
MAX_ZOOM = 14


@dataclass(frozen=True)
class ZoomBand:
    """Zooms ``min_zoom``..``max_zoom`` share one copy of the geometries, simplified to ``tolerance_m``."""

    band: int
    min_zoom: int
    max_zoom: int
    #: Areas smaller than this many screen pixels (at ``max_zoom``) are left out of the band.
    min_area_px: float = 0.0

    @property
    def pixel_m(self) -> float:
        """The side of a 256-pixel screen pixel at the band's most detailed zoom, in metres."""
        return 2 * WORLD_HALF / 256 / 2**self.max_zoom

    @property
    def tolerance_m(self) -> float:
        """The band's simplification tolerance: a screen pixel at its most detailed zoom (0: the
        published rings). Coverage simplification removes a vertex while the triangle it makes
        with its neighbours is smaller than this squared; an area simplified on its own
        (Douglas-Peucker) moves by at most half of it. Both move edges by about a tenth of a
        pixel on average (measured on the demo's LSOAs)."""
        return 0.0 if self.max_zoom >= MAX_ZOOM else self.pixel_m


#: At z0-6 nine in ten LSOAs are smaller than a pixel: drawn, they are dust that would make a
#: tile of England several megabytes. Like tippecanoe, that band leaves out areas under a pixel
#: (the rural ones stay); small-area layers declare minzoom 7 in TileJSON and on the web map.
SMALL_AREA_MIN_ZOOM = 7
#: Names are a third of a tile's bytes; below z9 a tooltip names an area by its code.
NAME_MIN_ZOOM = 9


ZOOM_BANDS = (
    ZoomBand(0, 0, 6, min_area_px=1.0),
    ZoomBand(1, 7, 8),
    ZoomBand(2, 9, 10),
    ZoomBand(3, 11, 12),
    ZoomBand(4, 13, MAX_ZOOM),
)


def zoom_band(z: int) -> ZoomBand:
    """The band whose geometries serve zoom ``z``."""
    for band in ZOOM_BANDS:
        if band.min_zoom <= z <= band.max_zoom:
            return band
    raise InputError(f"zoom {z} is outside {MIN_ZOOM}-{MAX_ZOOM}")


def check_tile(z: int, x: int, y: int) -> None:
    """Refuse tile addresses that do not exist (zoom range, x and y in 0..2^z-1)."""
    if not MIN_ZOOM <= z <= MAX_ZOOM:
        raise InputError(f"zoom z={z}: expected {MIN_ZOOM}-{MAX_ZOOM}")
    n = 2**z
    if not (0 <= x < n and 0 <= y < n):
        raise InputError(f"tile {z}/{x}/{y}: at zoom {z} x and y run 0-{n - 1}")


def tile_bounds(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    """The Web Mercator bounds (xmin, ymin, xmax, ymax) of tile z/x/y (XYZ scheme, y down)."""
    size = 2 * WORLD_HALF / 2**z
    xmin = -WORLD_HALF + x * size
    ymax = WORLD_HALF - y * size
    return xmin, ymax - size, xmin + size, ymax


def lonlat_to_tile(lon: float, lat: float, z: int) -> tuple[int, int]:
    """The XYZ tile holding a lon/lat point at zoom ``z`` (for benchmarks and tests)."""
    n = 2**z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return min(max(x, 0), n - 1), min(max(y, 0), n - 1)


# -- geometries per zoom band (written at boundary ingest) ------------------------------------

_INSERT_TILE_GEOMS = """
INSERT INTO tile_geoms
SELECT $set_id, code, band, name, ST_GeomFromWKB(wkb), area_m2, xmin, ymin, xmax, ymax
FROM geo_cs_new_tile_geoms
-- neighbouring areas next to each other on disk: a tile's rows fall in few row groups
ORDER BY band, hilbert
"""

_TO_MERCATOR = pyproj.Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True)


def tile_geometries(codes: np.ndarray, names: np.ndarray, lonlat: np.ndarray) -> pa.Table:
    """Per-band Web Mercator geometries of lon/lat polygons, as rows for ``tile_geoms``.

    ``lonlat`` should be every area of the set (a boundary ingest passes those already stored
    too): they are simplified as one coverage, so neighbours keep their shared edges at every
    band (see the module's docstring). The result does not depend on the areas' order (they
    are taken by code: the cleaner's and the simplifier's choices between equals follow it).
    """
    order = np.argsort(np.asarray(codes, dtype=str), kind="stable")
    codes, names, lonlat = np.asarray(codes)[order], np.asarray(names)[order], np.asarray(lonlat)[order]
    merc = shapely.transform(lonlat, lambda xy: np.column_stack(_TO_MERCATOR.transform(xy[:, 0], xy[:, 1])))
    coverage, alone = _coverage(merc)
    members = np.flatnonzero(~alone)

    def simplify(chain: tuple[ZoomBand, ...]) -> list[np.ndarray]:
        # each band of a chain simplified from the one before (the first from the coverage): the
        # later passes read a fraction of the vertices, and Visvalingam-Whyatt removes the least
        # important vertices first anyway, so a coarse band comes out much as if simplified from
        # the published rings
        previous, out = coverage[members], []
        for band in chain:
            geoms = merc.copy()
            if band.tolerance_m > 0:
                previous = shapely.coverage_simplify(previous, band.tolerance_m)
                # an area not part of the coverage, simplified on its own (Douglas-Peucker)
                geoms[alone] = _simplify_alone(merc[alone], band.tolerance_m / 2)
                geoms[members] = previous
                geoms = _without_specks(geoms, band.tolerance_m**2)
            else:
                geoms[members] = previous
            out.append(_tile_ready(geoms))
        return out

    # two chains on two threads (GEOS lets go of the GIL): the published rings and z11-12, which
    # read the most vertices, beside z9-10 then z7-8 then z0-6 (measured: a third off the wall
    # time of the demo's LSOAs on two cores)
    detailed, coarse = ZOOM_BANDS[:2:-1], ZOOM_BANDS[2::-1]
    with ThreadPoolExecutor(max_workers=2) as pool:
        fine, rough = pool.map(simplify, (detailed, coarse))
    simplified = [*reversed(rough), *reversed(fine)]
    parts = []
    full_area = shapely.area(merc)
    for band, geoms in zip(ZOOM_BANDS, simplified, strict=True):
        keep = ~shapely.is_empty(geoms) & (full_area >= band.min_area_px * band.pixel_m**2)
        bounds = shapely.bounds(geoms[keep])
        centre_x = (bounds[:, 0] + bounds[:, 2]) / 2
        centre_y = (bounds[:, 1] + bounds[:, 3]) / 2
        parts.append(pa.table({
            "code": pa.array(codes[keep], pa.string()),
            "band": pa.array(np.full(keep.sum(), band.band), pa.int8()),
            "name": pa.array(names[keep] if band.min_zoom >= NAME_MIN_ZOOM else [None] * int(keep.sum()),
                             pa.string(), from_pandas=True),
            "wkb": pa.array(shapely.to_wkb(geoms[keep]).tolist(), pa.binary()),
            "area_m2": full_area[keep],
            "xmin": bounds[:, 0], "ymin": bounds[:, 1], "xmax": bounds[:, 2], "ymax": bounds[:, 3],
            "hilbert": _hilbert(centre_x, centre_y),
        }))
    return pa.concat_tables(parts)


_STORED_NEIGHBOURS = """
SELECT code, name, ST_AsWKB(geom_4326) AS wkb FROM areas
WHERE set_id = $set_id AND geom_4326 IS NOT NULL AND code NOT IN (SELECT unnest($codes::VARCHAR[]))
ORDER BY code
"""


def set_tile_geometries(store: Store, set_id: str, codes: np.ndarray, names: np.ndarray,
                        lonlat: np.ndarray) -> pa.Table:
    """:func:`tile_geometries` of the areas an ingest writes (``codes``, ``names``, lon/lat
    polygons) together with the set's areas already stored that it does not replace: the set
    is simplified as one coverage, so an area ingested now and its stored neighbour keep their
    shared edge. The rows cover both (``write_tile_geometries`` replaces both)."""
    stored = store.sql(_STORED_NEIGHBOURS, {"set_id": set_id, "codes": codes.tolist()}).fetchall()
    if stored:
        codes = np.concatenate([codes, np.array([r[0] for r in stored], dtype=object)])
        names = np.concatenate([names, np.array([r[1] for r in stored], dtype=object)])
        lonlat = np.concatenate([lonlat, shapely.from_wkb([bytes(r[2]) for r in stored])])
    return tile_geometries(codes, names, lonlat)


#: An area the coverage cleaner leaves less than this share of (or none) is not a neighbour but
#: an overlap (another edition of an area, a duplicate): it keeps its own rings.
_COVERAGE_MIN_SHARE = 0.5
#: Gaps between neighbours narrower than a screen pixel at the most detailed zoom (Web Mercator
#: metres: about 6 m on the ground in England) are closed by the cleaner: no screen shows them,
#: but simplified they would open into slivers (measured: 0.25% of Manchester's area at z8 from
#: gaps of a metre or two in the published LSOA boundaries). The sea, an estuary or an area
#: missing from the set is far wider and stays open.
_GAP_WIDTH_M = 2 * WORLD_HALF / 256 / 2**MAX_ZOOM


def _coverage(merc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The areas as a clean coverage (shared edges identical, no overlaps, no hairline gaps),
    and the mask of areas left out of it. GEOS's cleaner snaps vertices within a hair of each
    other, gives each overlap to one neighbour and each hairline gap to the neighbour it shares
    most edge with (measured: 1,526 overlapping pairs among the demo's
    9,941 LSOAs, 1 km² in all; a few seconds of cleaning)."""
    polygonal = np.isin(shapely.get_type_id(merc), (3, 6)) & ~shapely.is_empty(merc)
    alone = ~polygonal
    if not polygonal.any():
        return merc, alone
    members = merc[polygonal]
    # no check first: every published set of the demo has hairline gaps or overlaps, and the
    # check costs a quarter of a cleaning
    cleaned = shapely.coverage_clean(members, gap_width=_GAP_WIDTH_M)
    kept = (np.isin(shapely.get_type_id(cleaned), (3, 6)) & ~shapely.is_empty(cleaned)
            & (shapely.area(cleaned) >= _COVERAGE_MIN_SHARE * shapely.area(members)))
    out = merc.copy()
    at = np.flatnonzero(polygonal)
    out[at[kept]] = cleaned[kept]
    alone[at[~kept]] = True
    if not kept.all():
        # the areas left out change the coverage: clean what is left again (rare)
        rest = np.flatnonzero(~alone)
        out[rest] = shapely.coverage_clean(merc[rest], gap_width=_GAP_WIDTH_M)
    return out, alone


def _simplify_alone(geoms: np.ndarray, tolerance_m: float) -> np.ndarray:
    """Douglas-Peucker per polygon (ten times faster than the topology-preserving variant): the
    few rings it makes invalid are repaired, and areas it collapses are simplified again
    keeping their rings."""
    if not len(geoms):
        return geoms
    simple = shapely.simplify(geoms, tolerance_m, preserve_topology=False)
    broken = ~shapely.is_valid(simple)
    simple[broken] = shapely.make_valid(simple[broken])
    collapsed = shapely.is_empty(simple) | (shapely.area(simple) == 0)
    simple[collapsed] = shapely.simplify(geoms[collapsed], tolerance_m, preserve_topology=True)
    return simple


def _without_specks(geoms: np.ndarray, min_area_m2: float) -> np.ndarray:
    """Areas without their islands smaller than ``min_area_m2`` (a pixel squared): parts that
    touch no other area, each area's largest part always kept. Coverage simplification never
    removes a ring (the least it keeps is a triangle), so the islands of a coastal
    constituency would be a third of its z6 vertices (measured on the demo's constituencies:
    18,186 of 50,922). A small part next to a neighbour stays: leaving it out would be a hole."""
    parts, owner = shapely.get_parts(geoms, return_index=True)
    if len(parts) == len(geoms):
        return geoms
    area = shapely.area(parts)
    largest = pd.Series(area).groupby(owner).transform("max").to_numpy()
    keep = (area >= min_area_m2) | (area == largest)
    if not keep.all():
        # in a clean coverage neighbours share their edges' vertices: a part touches another
        # area where one of its vertices is another area's too (a tenth of the time of an
        # intersection test against whole areas)
        coords, part = shapely.get_coordinates(parts, return_index=True)
        points = pd.DataFrame({"x": coords[:, 0], "y": coords[:, 1], "area": owner[part]}).drop_duplicates()
        areas_at = points.groupby(["x", "y"])["area"].transform("size").to_numpy()
        # each vertex of more than one area marks the part (of each of them) it comes from
        keep[np.unique(part[points.index.to_numpy()[areas_at > 1]])] = True
    speckled = np.unique(owner[~keep])
    if not len(speckled):
        return geoms
    out = geoms.copy()
    chosen = np.isin(owner, speckled) & keep
    rebuilt = shapely.multipolygons(parts[chosen], indices=np.searchsorted(speckled, owner[chosen]))
    single = shapely.get_num_geometries(rebuilt) == 1
    rebuilt[single] = shapely.get_geometry(rebuilt[single], 0)
    out[speckled] = rebuilt
    return out


def _tile_ready(geoms: np.ndarray) -> np.ndarray:
    """Valid polygons with exteriors clockwise (holes anticlockwise) with y up: flipped to the
    tile's y down, exteriors have the positive surveyor's area MVT requires, so areas inside a
    tile need only an affine transform (see _TILE_SQL)."""
    geoms = geoms.copy()
    broken = ~shapely.is_valid(geoms)
    if broken.any():
        # coverage simplification of a clean coverage gives valid rings; this is a safety net
        geoms[broken] = shapely.make_valid(geoms[broken])
        kinds = shapely.get_type_id(geoms[broken])
        for i in np.flatnonzero(broken)[kinds == 7]:
            geoms[i] = shapely.union_all([p for p in shapely.get_parts(geoms[i])
                                          if shapely.get_type_id(p) in (3, 6)])
    return shapely.orient_polygons(geoms, exterior_cw=True)


def _hilbert(x: np.ndarray, y: np.ndarray, order: int = 16) -> np.ndarray:
    """Hilbert-curve index of Web Mercator points on a 2^order grid (for on-disk locality)."""
    n = 2**order
    xi = np.clip(((x + WORLD_HALF) / (2 * WORLD_HALF) * n).astype(np.int64), 0, n - 1)
    yi = np.clip(((y + WORLD_HALF) / (2 * WORLD_HALF) * n).astype(np.int64), 0, n - 1)
    d = np.zeros_like(xi)
    s = n // 2
    while s > 0:
        rx = (xi & s) > 0
        ry = (yi & s) > 0
        d += s * s * ((3 * rx) ^ ry)
        # rotate the quadrant
        flip = ~ry
        swap_x = np.where(flip & rx, s - 1 - xi, xi)
        swap_y = np.where(flip & rx, s - 1 - yi, yi)
        xi, yi = np.where(flip, swap_y, swap_x), np.where(flip, swap_x, swap_y)
        s //= 2
    return d


def write_tile_geometries(store: Store, set_id: str, rows: pa.Table) -> int:
    """Replace the tile geometries of the codes in ``rows`` (inside the ingest's transaction,
    so tiles never show half an ingest); return rows written."""
    store.con.register("geo_cs_new_tile_geoms", rows)
    try:
        store.sql(
            "DELETE FROM tile_geoms WHERE set_id = ? AND code IN (SELECT code FROM geo_cs_new_tile_geoms)",
            [set_id],
        )
        # prepared tiles of the set are out of date: served clipped on the fly until prepared again
        store.sql("DELETE FROM tile_pieces WHERE set_id = ?", [set_id])
        store.sql("DELETE FROM tile_features WHERE set_id = ?", [set_id])
        return int(store.sql(_INSERT_TILE_GEOMS, {"set_id": set_id}).fetchone()[0])
    finally:
        store.con.unregister("geo_cs_new_tile_geoms")


# -- rendering --------------------------------------------------------------------------------

#: The properties a tile carries for each area, with their TileJSON / PMTiles field types; values
#: come from :mod:`geo_cs.layers`. ``suppressed`` is present (true) only on areas whose value
#: disclosure control withheld, so a map can say "withheld" rather than "no data".
VALUE_FIELDS = {"value": "Number", "value_low": "Number", "value_high": "Number", "worst": "Boolean",
                "estimated_share": "Number", "suppressed": "Boolean"}
VALUE_PROPERTIES = tuple(VALUE_FIELDS)
_FLAGS = ("worst", "suppressed")

#: No tile may exceed this many bytes (before gzip); a denser one leaves out its smallest areas.
#: Tippecanoe's default limit is 500 KB of *compressed* tile, and these tiles gzip to about half.
#: (It was 500 KB uncompressed while values below z9 had one decimal: with every value to
#: :data:`VALUE_DIGITS` decimals, London's z8 and z9 tiles of every LSOA in England and Wales
#: are 624 and 511 KB and would have left out their smallest areas, a hole in the map.)
MAX_TILE_BYTES = 1_000_000
#: Every number a tile carries is rounded to this many decimals at every zoom, as the items of
#: the OGC API give it (``geo_cs.features``): an area's value is the same in a z8 tile, a z14
#: tile and its feature. (Rounding to 1 decimal below z9 and 2 above, as before, made dense
#: low-zoom tiles a third smaller, Greater Manchester's z8 tile 155 KB against 239 KB, but gave
#: an area another value, and so perhaps another class, at another zoom.)
VALUE_DIGITS = 4

# A tile is an affine transform of the band's geometries to tile units (ST_AsMVT rounds them),
# the areas crossing the tile's buffered edge clipped first (GEOS overlay keeps the winding fixed
# at ingest: exteriors clockwise, which the transform's y flip makes MVT's positive area).
# ST_AsMVTGeom, which does the same and validates, costs ~100 µs an area in DuckDB spatial: ten
# times the rest of a tile; tests compare the windings with it.
_TILE_SQL = """
WITH t AS MATERIALIZED (
    -- materialised: the geometry is computed once, not again in the filter below
    SELECT CASE WHEN g.xmin >= $xmin - $buffer AND g.xmax <= $xmax + $buffer
                 AND g.ymin >= $ymin - $buffer AND g.ymax <= $ymax + $buffer
                THEN ST_Affine(g.geom, 4096 / ($xmax - $xmin), 0, 0, -4096 / ($ymax - $ymin),
                               -$xmin * 4096 / ($xmax - $xmin), $ymax * 4096 / ($ymax - $ymin))
                ELSE ST_Affine(ST_Intersection(g.geom, ST_MakeEnvelope($xmin - $buffer, $ymin - $buffer,
                                                                       $xmax + $buffer, $ymax + $buffer)),
                               4096 / ($xmax - $xmin), 0, 0, -4096 / ($ymax - $ymin),
                               -$xmin * 4096 / ($xmax - $xmin), $ymax * 4096 / ($ymax - $ymin))
           END AS geom,
           g.code, g.name{value_columns}
    FROM tile_geoms g{value_join}
    WHERE g.set_id = $set_id AND g.band = $band AND g.area_m2 >= $min_area
      -- areas in the buffer round the tile count too: their strokes show at its edge
      AND g.xmax >= $xmin - $buffer AND g.xmin <= $xmax + $buffer
      AND g.ymax >= $ymin - $buffer AND g.ymin <= $ymax + $buffer
)
SELECT ST_AsMVT(t, $layer, 4096, 'geom'), count(*) FROM t
WHERE geom IS NOT NULL AND NOT ST_IsEmpty(geom)
"""

# The codes in a tile: the period's values are cut down to them and passed as a parameter, so a
# tile joins a dozen rows, not the 34,753 of every LSOA (a registered table cost 7-10 ms a tile).
_TILE_CODES = """
SELECT code FROM tile_geoms
WHERE set_id = $set_id AND band = $band AND area_m2 >= $min_area
  AND xmax >= $xmin - $buffer AND xmin <= $xmax + $buffer
  AND ymax >= $ymin - $buffer AND ymin <= $ymax + $buffer
"""

# The only two shapes of the tile query; neither contains anything from a request.
_TILE_WITHOUT_VALUES = _TILE_SQL.format(value_columns="", value_join="")
# The tile's values come as one list per property, unnested side by side: DuckDB converts lists
# of numbers several times faster than a list of structs (measured: 13 against 16.5 ms a tile,
# and half the time on dense tiles). They come rounded (TileValues): round() in SQL cost 1.6 ms of
# a 4.6 ms prepared tile.
_VALUE_COLUMNS = ", v.value, v.value_low, v.value_high, v.worst, v.estimated_share, v.suppressed"
# typed, so a tile whose values are all NULL (suppressed areas) binds like any other
_VALUE_JOIN = (
    " LEFT JOIN (SELECT unnest($v_code::VARCHAR[]) AS code, "
    "unnest($v_value::DOUBLE[]) AS value, unnest($v_value_low::DOUBLE[]) AS value_low, "
    "unnest($v_value_high::DOUBLE[]) AS value_high, unnest($v_worst::BOOLEAN[]) AS worst, "
    "unnest($v_estimated_share::DOUBLE[]) AS estimated_share, "
    "unnest($v_suppressed::BOOLEAN[]) AS suppressed) v ON v.code = g.code"
)
_TILE_WITH_VALUES = _TILE_SQL.format(value_columns=_VALUE_COLUMNS, value_join=_VALUE_JOIN)

_AREA_QUANTILE = """
SELECT quantile_cont(area_m2, $share) FROM tile_geoms
WHERE set_id = $set_id AND band = $band AND area_m2 >= $min_area
  AND xmax >= $xmin - $buffer AND xmin <= $xmax + $buffer
  AND ymax >= $ymin - $buffer AND ymin <= $ymax + $buffer
"""


# Prepared tiles (:func:`prepare_tiles`): the tile's pieces are read as they are, no clip or transform.
_PIECES_SQL = """
SELECT ST_AsMVT(t, $layer, 4096, 'geom'), count(*) FROM (
    SELECT g.geom, g.code, g.name{value_columns}
    FROM tile_pieces g{value_join}
    WHERE g.set_id = $set_id AND g.z = $z AND g.x = $x AND g.y = $y AND g.area_m2 >= $min_area
) t
"""
_PIECES_CODES = """
SELECT code FROM tile_pieces
WHERE set_id = $set_id AND z = $z AND x = $x AND y = $y AND area_m2 >= $min_area
"""
_PIECES_WITHOUT_VALUES = _PIECES_SQL.format(value_columns="", value_join="")
_PIECES_WITH_VALUES = _PIECES_SQL.format(value_columns=_VALUE_COLUMNS, value_join=_VALUE_JOIN)
# A tile of a few hundred areas finds each one's values by its position in the code list: no
# join to plan (1 ms of a 5 ms tile); a denser tile joins, the search growing with its square.
_PIECES_WITH_FEW_VALUES = _PIECES_SQL.replace("FROM tile_pieces g", """FROM (
        SELECT *, list_position($v_code::VARCHAR[], code) AS i FROM tile_pieces
    ) g""").format(
    value_columns=", list_extract($v_value::DOUBLE[], g.i) AS value, "
                  "list_extract($v_value_low::DOUBLE[], g.i) AS value_low, "
                  "list_extract($v_value_high::DOUBLE[], g.i) AS value_high, "
                  "list_extract($v_worst::BOOLEAN[], g.i) AS worst, "
                  "list_extract($v_estimated_share::DOUBLE[], g.i) AS estimated_share, "
                  "list_extract($v_suppressed::BOOLEAN[], g.i) AS suppressed",
    value_join="")
FEW_VALUES = 200
_PIECES_AREA_QUANTILE = """
SELECT quantile_cont(area_m2, $share) FROM tile_pieces
WHERE set_id = $set_id AND z = $z AND x = $x AND y = $y AND area_m2 >= $min_area
"""


class TileValues:
    """A period's values, rounded and ready to be picked by the codes of a tile.

    Built once per period and kept by servers (:func:`tile_values`): a tile's dozen rows are then
    a dictionary lookup per code and a numpy ``take`` per property, not a search of the 34,753
    rows of every LSOA. Numbers are rounded here, once, exactly as the OGC API items round them
    (Python's ``round`` to :data:`VALUE_DIGITS` decimals); a number that is not finite is left
    out, as the items give null.
    """

    def __init__(self, values: pd.DataFrame) -> None:
        self.codes = values["code"].to_numpy(dtype=object)
        self.row_of = {code: i for i, code in enumerate(self.codes)}
        self.columns = {name: values[name].to_numpy(dtype=object, na_value=None) if name in _FLAGS
                        else rounded_like_items(values[name].to_numpy(dtype=float, na_value=np.nan))
                        for name in VALUE_PROPERTIES}
        self._by_layer: dict[int, tuple] = {}

    def __len__(self) -> int:
        return len(self.codes)

    def for_codes(self, layer_codes: np.ndarray,
                  code_ids: np.ndarray) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """The values of the areas ``layer_codes[code_ids]`` as :mod:`geo_cs.mvt` encodes them:
        numbers rounded (NaN: none), and the flags as 1 (true), 0 (false) or -1 (left out;
        ``suppressed`` is sent only where true). Per layer the whole layer is looked up once
        and kept."""
        key = id(layer_codes)
        found = self._by_layer.get(key)
        if found is None or found[0] is not layer_codes:
            rows = pd.Index(self.codes).get_indexer(layer_codes) if len(self.codes) else \
                np.full(len(layer_codes), -1)
            absent = rows < 0
            rows = np.where(absent, 0, rows)
            numbers, flags = {}, {}
            for name, column in self.columns.items():
                if name in _FLAGS:
                    picked = column[rows] if len(column) else np.full(len(rows), None, dtype=object)
                    out = np.array([-1 if v is None or v != v else int(bool(v)) for v in picked.tolist()],
                                   dtype=np.int8)
                    if name == "suppressed":
                        out[out == 0] = -1
                    out[absent] = -1
                    flags[name] = out
                else:
                    picked = column[rows] if len(column) else np.full(len(rows), np.nan)
                    picked[absent] = np.nan
                    numbers[name] = picked
            found = (layer_codes, numbers, flags)
            self._by_layer[key] = found
        _, numbers, flags = found
        return ({k: v[code_ids] for k, v in numbers.items()}, {k: v[code_ids] for k, v in flags.items()})

    def params(self, codes: list[str]) -> dict[str, list] | None:
        """The query parameters of the values of ``codes`` (None when none has one)."""
        rows = [self.row_of[c] for c in codes if c in self.row_of]
        if not rows:
            return None
        out: dict[str, list] = {"v_code": self.codes[rows].tolist()}
        for name, column in self.columns.items():
            picked = column[rows]
            if name in _FLAGS:
                flags = [None if v is None or v != v else bool(v) for v in picked.tolist()]
                # ``suppressed`` is sent only where true: MVT leaves a NULL property out
                kept = [v or None for v in flags] if name == "suppressed" else flags
            else:
                # NaN reaches SQL as NULL: MVT then leaves the property out of the feature
                kept = [None if v != v else v for v in picked.tolist()]
            # a property no area has goes as an empty list (NULL for every area, as unnest pads
            # and list_extract reads past the end): nothing to bind
            out[f"v_{name}"] = kept if any(v is not None for v in kept) else []
        return out


def rounded_like_items(numbers: np.ndarray) -> np.ndarray:
    """``numbers`` as the OGC API items give them: Python's ``round(v, VALUE_DIGITS)`` (the
    decimal nearest the exact double), NaN for a missing or non-finite one.

    numpy's ``round`` scales, rounds and divides: the same result, except where the scaled
    number sits within its own rounding error of a half, where it may pick the other side.
    Those few are rounded by Python (35,000 values: 1 ms, against 18 ms all by Python).

    >>> rounded_like_items(np.array([2.35235, 2.00005, float("inf")])).tolist()
    [2.3523, 2.0, nan]
    """
    numbers = np.asarray(numbers, dtype=float)
    out = np.where(np.isfinite(numbers), numbers, np.nan)
    scale = 10.0**VALUE_DIGITS
    with np.errstate(invalid="ignore", over="ignore"):
        scaled = out * scale
        out = np.rint(scaled) / scale
        near_half = np.abs(np.abs(scaled - np.trunc(scaled)) - 0.5) <= 1e-9 * np.maximum(1.0, np.abs(scaled))
    for i in np.flatnonzero(near_half | ~np.isfinite(scaled) & np.isfinite(numbers)):
        out[i] = round(float(numbers[i]), VALUE_DIGITS)
    return out


class _Band:
    """One zoom band's areas in memory: envelopes in an R-tree, areas, and geometry as WKB in one
    buffer (Web Mercator, as ``tile_geoms`` holds them). Rows are in code order."""

    def __init__(self, code_ids: np.ndarray, codes: np.ndarray, areas: np.ndarray, bounds: np.ndarray,
                 wkb: np.ndarray | None, starts: np.ndarray | None, ends: np.ndarray | None) -> None:
        self.code_ids, self.codes, self.areas, self.bounds = code_ids, codes, areas, bounds
        self.tree = shapely.STRtree(shapely.box(bounds[:, 0], bounds[:, 1], bounds[:, 2], bounds[:, 3]))
        self.wkb, self.starts, self.ends = wkb, starts, ends
        self.views = wkb_views(wkb) if wkb is not None else None

    def rows(self, square: tuple[float, float, float, float]) -> np.ndarray:
        """The rows whose envelope meets ``square`` (in code order)."""
        return np.sort(self.tree.query(shapely.box(*square)))


_INDEX_ROWS = """
SELECT band, code, name, area_m2, xmin, ymin, xmax, ymax{wkb} FROM tile_geoms WHERE set_id = $set_id
ORDER BY band, code
"""


class TileIndex:
    """Where a set's areas are, per zoom band, and whether its tiles are prepared: kept by
    servers per data version, so that a tile's codes (for its values) come from an R-tree in
    memory instead of a query (a millisecond of a few-millisecond tile).

    The codes are those whose envelope meets the tile's buffered square: every area the tile
    draws, and perhaps a few it does not (their values are then passed and unused).

    A set whose tiles are not prepared (``geo-cs tiles prepare``: any set after its boundary
    ingest, and the demo's) is tiled from memory too: the index then also holds the bands'
    geometries, as WKB in one buffer per band (about the size of ``tile_geoms``: 33 MB for the
    published rings of every LSOA in England and Wales), and :meth:`render` draws a tile with
    no query: the R-tree's areas, those crossing the tile's buffered square cut to it by GEOS
    (``clip_by_rect``), moved to tile units, cut to its grid and encoded by :mod:`geo_cs.mvt`.
    """

    def __init__(self, store: Store, set_id: str) -> None:
        self.set_id = set_id
        self.prepared = is_prepared(store, set_id)
        # prepared tiles with their geometry encoded are written without a query (geo_cs.mvt)
        encoded = self.prepared and has_encoded(store, set_id)
        self._lock = threading.Lock()
        self._with_geometry = False
        self.bands: dict[int, _Band] = {}
        self._load(store, with_geometry=not encoded)
        self.encoded: EncodedTiles | None = None
        if encoded:
            self.encoded = EncodedTiles(store, set_id, self.set_codes, self._names_by_band)
            self.nbytes += self.encoded.nbytes
        # the pre-encoded codes and names of the tiles drawn here (the encoded tiles' own, if any)
        self._writer = self.encoded or LayerWriter(set_id, self.set_codes, self._names_by_band)

    def _load(self, store: Store, with_geometry: bool) -> None:
        table = store.sql(_INDEX_ROWS.format(wkb=", ST_AsWKB(geom) AS wkb" if with_geometry else ""),
                          {"set_id": self.set_id}).arrow()
        if hasattr(table, "read_all"):
            table = table.read_all()
        band_of = table["band"].to_numpy()
        codes_all = table["code"].to_numpy(zero_copy_only=False).astype(object)
        #: the set's codes, sorted: a feature's code id is its position (as :func:`set_codes`)
        self.set_codes = np.unique(codes_all) if len(codes_all) else np.array([], dtype=object)
        code_ids = np.searchsorted(self.set_codes, codes_all).astype(np.int64)
        areas = table["area_m2"].to_numpy().astype(np.float64)
        bounds = np.column_stack([table[c].to_numpy().astype(np.float64)
                                  for c in ("xmin", "ymin", "xmax", "ymax")])
        names = table["name"].to_numpy(zero_copy_only=False)
        wkb = starts = ends = None
        if with_geometry:
            wkb, starts, ends = wkb_buffer(table["wkb"])
        bands, names_by_band = {}, {}
        for band in np.unique(band_of):
            at = np.flatnonzero(band_of == band)
            bands[int(band)] = _Band(code_ids[at], codes_all[at], areas[at], bounds[at], wkb,
                                     None if starts is None else starts[at],
                                     None if ends is None else ends[at])
            named = at[pd.notna(names[at])]
            if len(named):
                column = np.full(len(self.set_codes), None, dtype=object)
                column[code_ids[named]] = names[named]
                names_by_band[int(band)] = column
        self.bands, self._names_by_band = bands, names_by_band
        self._with_geometry = with_geometry
        # codes, boxes and tree nodes, roughly; and the geometry
        self.nbytes = len(code_ids) * 120 + (0 if wkb is None else wkb.nbytes + 16 * len(code_ids))

    def codes(self, z: int, x: int, y: int) -> list[str]:
        """Codes of the areas whose envelope meets tile z/x/y with its buffer."""
        found = self.bands.get(zoom_band(z).band)
        if found is None:
            return []
        return found.codes[found.rows(_buffered_square(z, x, y))].tolist()

    def render(self, store: Store, z: int, x: int, y: int, values: TileValues | None = None,
               max_bytes: int = MAX_TILE_BYTES, report: dict | None = None) -> bytes:
        """Tile z/x/y clipped from the band's geometries in memory (see the class): the same tile
        as :func:`render_tile` gives from the database, clipped on the fly or prepared, to the
        unit of the tile's grid. Rings that collapse to the grid are left out (the database's
        tiles keep them, empty), and so is an area with nothing left; the budget leaves out
        the smallest areas as the database's tiles do. ``store`` is read only the first time a
        prepared set is drawn this way (its geometries are loaded then)."""
        if not self._with_geometry:
            with self._lock:
                if not self._with_geometry:
                    extra = self.encoded.nbytes if self.encoded is not None else 0
                    self._load(store, with_geometry=True)
                    self.nbytes += extra
        band = zoom_band(z).band
        found = self.bands.get(band)
        square = _buffered_square(z, x, y)
        rows = found.rows(square) if found is not None else np.zeros(0, dtype=np.int64)
        if not len(rows):
            if report is not None:
                report.update(renders=0, min_area=0.0)
            return b""
        xmin, _, xmax, ymax = tile_bounds(z, x, y)
        scale = EXTENT / (xmax - xmin)
        # every area moved to tile units and cut to the buffered square there (exactly, where
        # one Sutherland-Hodgman pass is: see encode_wkb), then encoded; the others cut by GEOS
        geometry, g_start, g_end, status = encode_wkb(
            found.wkb, found.starts[rows], found.ends[rows], xmin, ymax, scale, found.views,
            clip=(-BUFFER, EXTENT + BUFFER))
        drawn = status == DRAWN
        # (rows, encoded geometry, each row's start and end in it)
        parts = [(rows[drawn], geometry, g_start[drawn], g_end[drawn])]
        complex_ = status == TOO_COMPLEX
        if complex_.any():
            crossing = rows[complex_]
            blobs = [found.wkb[s:e].tobytes() for s, e in zip(found.starts[crossing].tolist(),
                                                                 found.ends[crossing].tolist(), strict=True)]
            cut = _polygonal_parts(shapely.clip_by_rect(shapely.from_wkb(blobs), *square))
            kept = cut != None  # noqa: E711 (elementwise on an object array)
            if kept.any():
                pieces = shapely.to_wkb(cut[kept], byte_order=1, output_dimension=2)
                lengths = np.fromiter((len(b) for b in pieces), dtype=np.int64, count=len(pieces))
                ends = np.cumsum(lengths)
                buffer = np.frombuffer(b"".join(pieces) + bytes(WKB_PADDING), dtype=np.uint8)
                encoded = encode_wkb(buffer, ends - lengths, ends, xmin, ymax, scale)
                parts.append((crossing[kept], *encoded[:3]))
        if len(parts) == 1:
            rows, geometry, g_start, g_end = parts[0]
        else:
            # one buffer, the areas in code order (as the R-tree's rows)
            shift = np.cumsum([0, *(len(part[1]) for part in parts[:-1])])
            rows = np.concatenate([part[0] for part in parts])
            order = np.argsort(rows, kind="stable")
            rows = rows[order]
            geometry = np.concatenate([part[1] for part in parts])
            g_start = np.concatenate([part[2] + k for part, k in zip(parts, shift, strict=True)])[order]
            g_end = np.concatenate([part[3] + k for part, k in zip(parts, shift, strict=True)])[order]
        return self._writer.write(found.code_ids[rows], found.areas[rows], band, g_start, g_end, geometry,
                                  values, max_bytes, report)


def _buffered_square(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    """Tile z/x/y's square with its buffer, in Web Mercator."""
    xmin, ymin, xmax, ymax = tile_bounds(z, x, y)
    buffer = (xmax - xmin) * BUFFER / EXTENT
    return xmin - buffer, ymin - buffer, xmax + buffer, ymax + buffer


def _polygonal_parts(cut: np.ndarray) -> np.ndarray:
    """Clipped geometries with only their polygons (None where none is left)."""
    empty = shapely.is_empty(cut)
    kinds = shapely.get_type_id(cut)
    # an area touching the square only along its edge or at a corner leaves a line or a point;
    # a collection (rare; an empty one is what a square that misses the area leaves) keeps its
    # polygons
    for k in np.flatnonzero((kinds == 7) & ~empty):
        parts = [p for p in shapely.get_parts(cut[k]) if shapely.get_type_id(p) in (3, 6)]
        cut[k] = shapely.union_all(parts) if parts else None
        kinds[k] = shapely.get_type_id(cut[k])
    cut[((kinds != 3) & (kinds != 6)) | empty] = None
    return cut


def tile_index(store: Store, set_id: str) -> TileIndex:
    """The :class:`TileIndex` of ``set_id`` (for servers and exports rendering many tiles)."""
    return TileIndex(store, set_id)


def tile_values(values: pd.DataFrame) -> TileValues:
    """A period's values (one row per code with :data:`VALUE_PROPERTIES`) for :func:`render_tile`."""
    # a frame without ``suppressed`` (no disclosure control) withholds nothing
    return TileValues(values.reindex(columns=["code", *VALUE_PROPERTIES]))


def render_tile(
    store: Store, set_id: str, z: int, x: int, y: int, values: pd.DataFrame | TileValues | None = None,
    max_bytes: int = MAX_TILE_BYTES, prepared: bool | None = None, index: TileIndex | None = None,
    report: dict | None = None,
) -> bytes:
    """Encode tile z/x/y of ``set_id`` as an MVT; empty bytes when no area touches it.

    ``values``: one row per code with :data:`VALUE_PROPERTIES` (the period's values, best as
    :func:`tile_values`), or None for boundaries only. The MVT layer is named after
    the set. A tile over ``max_bytes`` is encoded again without its smallest areas until it fits
    (only dense tiles below z9 need it). ``prepared``: whether the set's tiles are prepared
    (:func:`prepare_tiles`): their pieces are then read as they are, else the band's geometries
    are clipped and transformed on the fly; both give the same tile. ``index``: the set's
    :func:`tile_index`, which servers keep: it tells ``prepared`` (when not given) and the
    tile's codes without a query; without it both are looked up. With an index no query runs:
    a prepared set's tiles are written from their encoded geometry (``geo-cs tiles prepare``,
    :mod:`geo_cs.mvt`), and any other's (or any set's with ``prepared=False``) are clipped from
    the geometries the index holds (:meth:`TileIndex.render`). Without an index, the database
    clips (``prepared=False``) or reads the pieces. ``report``: a dict given is filled with
    ``renders`` (1, or more when the budget left areas out; 0 for a tile drawn in memory with
    nothing in it) and ``min_area`` (the smallest area kept, m²; 0: all).
    """
    check_tile(z, x, y)
    if prepared is None:
        prepared = index.prepared if index is not None else is_prepared(store, set_id)
    params: dict = {"layer": set_id, "set_id": set_id, "min_area": 0.0}
    if prepared:
        selection: tuple[str, ...] = ("set_id", "z", "x", "y", "min_area")
        params |= {"z": z, "x": x, "y": y}
        sql, sql_with_values = _PIECES_WITHOUT_VALUES, _PIECES_WITH_VALUES
        codes_sql, quantile_sql = _PIECES_CODES, _PIECES_AREA_QUANTILE
    else:
        selection = ("set_id", "band", "min_area", "xmin", "ymin", "xmax", "ymax", "buffer")
        xmin, ymin, xmax, ymax = tile_bounds(z, x, y)
        params |= {"band": zoom_band(z).band, "xmin": xmin, "ymin": ymin, "xmax": xmax, "ymax": ymax,
                   "buffer": (xmax - xmin) * BUFFER / EXTENT}
        sql, sql_with_values = _TILE_WITHOUT_VALUES, _TILE_WITH_VALUES
        codes_sql, quantile_sql = _TILE_CODES, _AREA_QUANTILE
    if index is not None and (not prepared or index.encoded is not None):
        picker = None if values is None else values if isinstance(values, TileValues) else tile_values(values)
        if prepared:
            # geometry encoded at preparation: the tile is written in memory, no query (geo_cs.mvt)
            return index.encoded.render(store, z, x, y, zoom_band(z).band, picker, max_bytes, report)
        # not prepared: clipped from the geometries the index holds, no query either
        return index.render(store, z, x, y, picker, max_bytes, report)
    present = index.codes(z, x, y) if index is not None else None
    if present == []:
        return b""  # no area comes near the tile: nothing to ask the database
    if values is not None:
        picker = values if isinstance(values, TileValues) else tile_values(values)
        if present is None:
            present = [row[0] for row in store.sql(codes_sql, {k: params[k] for k in selection}).fetchall()]
        picked = picker.params(present)
        if picked:
            few = prepared and len(picked["v_code"]) <= FEW_VALUES
            sql = _PIECES_WITH_FEW_VALUES if few else sql_with_values
            params |= picked
    row = store.sql(sql, params).fetchone()
    tile = bytes(row[0]) if row and row[1] else b""
    renders = 1
    while len(tile) > max_bytes:
        # keep the share of areas (largest first) that should fit, with a margin
        # the share is rounded up to a twentieth: DuckDB encodes features in no fixed order, so
        # the first length varies by a few bytes, and the same tile must come out the same
        share = min(0.95, math.ceil(20 * (1 - 0.9 * max_bytes / len(tile))) / 20)
        quantile = {k: params[k] for k in selection} | {"share": share}
        params["min_area"] = float(store.sql(quantile_sql, quantile).fetchone()[0])
        row = store.sql(sql, params).fetchone()
        tile = bytes(row[0]) if row and row[1] else b""
        renders += 1
    if report is not None:
        report.update(renders=renders, min_area=float(params["min_area"]))
    # an aggregate over no rows still encodes an empty layer: no features means no tile
    return tile


# -- prepared tiles ---------------------------------------------------------------------------

def is_prepared(store: Store, set_id: str) -> bool:
    """Whether ``set_id`` has prepared tiles (:func:`prepare_tiles`) in this database."""
    return store.holds_rows("tile_pieces", set_id)


@dataclass(frozen=True)
class PreparedTiles:
    """What :func:`prepare_tiles` wrote for one set."""

    set_id: str
    pieces: int
    tiles: int
    zooms: tuple[int, int]
    pieces_by_zoom: dict[int, int]

    def to_dict(self) -> dict:
        return {"set_id": self.set_id, "pieces": self.pieces, "tiles": self.tiles,
                "zooms": list(self.zooms), "pieces_by_zoom": self.pieces_by_zoom}

    def lines(self) -> list[str]:
        return [f"prepared tiles of {self.set_id}: {self.pieces:,} pieces in {self.tiles:,} tiles, "
                f"z{self.zooms[0]}-z{self.zooms[1]}"]


_BAND_GEOMETRIES = """
SELECT code, name, area_m2, ST_AsWKB(geom) AS wkb, xmin, ymin, xmax, ymax
FROM tile_geoms WHERE set_id = $set_id AND band = $band
"""

_INSERT_PIECES = """
INSERT INTO tile_pieces
SELECT $set_id, z, x, y, code, name, area_m2, ST_GeomFromWKB(wkb) FROM geo_cs_new_pieces
"""

def tile_ranges(bounds: np.ndarray, z: int) -> tuple[np.ndarray, ...]:
    """For Web Mercator envelopes, the tiles of zoom ``z`` each meets, buffer included:
    (row of the envelope, x, y) per pair, in (x, y) order."""
    n = 2**z
    size = 2 * WORLD_HALF / n
    buffer = size * BUFFER / EXTENT
    x0 = np.clip(np.floor((bounds[:, 0] - buffer + WORLD_HALF) / size), 0, n - 1).astype(np.int64)
    x1 = np.clip(np.floor((bounds[:, 2] + buffer + WORLD_HALF) / size), 0, n - 1).astype(np.int64)
    y0 = np.clip(np.floor((WORLD_HALF - bounds[:, 3] - buffer) / size), 0, n - 1).astype(np.int64)
    y1 = np.clip(np.floor((WORLD_HALF - bounds[:, 1] + buffer) / size), 0, n - 1).astype(np.int64)
    width = x1 - x0 + 1
    counts = width * (y1 - y0 + 1)
    row = np.repeat(np.arange(len(bounds)), counts)
    k = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    tx = x0[row] + k % width[row]
    ty = y0[row] + k // width[row]
    order = np.lexsort((ty, tx))
    return row[order], tx[order], ty[order]


def _polygonal(cut: np.ndarray) -> np.ndarray:
    """Clipped pieces with what is not polygonal dropped (None) and MVT's winding set."""
    cut = _polygonal_parts(cut)
    # exteriors anticlockwise in tile units (y down) have MVT's positive surveyor's area; a
    # clip keeps no particular winding, so it is set again
    keep = cut != None  # noqa: E711 (elementwise on an object array)
    cut[keep] = shapely.orient_polygons(cut[keep], exterior_cw=False)
    return cut


def _cut_to_tile(moved: np.ndarray) -> np.ndarray:
    """Geometries in tile units cut to the tile's buffered square (None where nothing is left)."""
    return _polygonal(shapely.clip_by_rect(moved, -BUFFER, -BUFFER, EXTENT + BUFFER, EXTENT + BUFFER))


def cut_pieces(geoms: np.ndarray, z: int, tx: np.ndarray, ty: np.ndarray) -> np.ndarray:
    """``geoms[k]`` (Web Mercator) moved to the units of tile z/tx[k]/ty[k] and cut to its buffered
    square; None where nothing polygonal is left. Exteriors come out with the positive
    (surveyor's) area MVT requires."""
    size = 2 * WORLD_HALF / 2**z
    scale = EXTENT / size
    counts = shapely.get_num_coordinates(geoms)
    left = np.repeat(-WORLD_HALF + tx * size, counts)
    top = np.repeat(WORLD_HALF - ty * size, counts)
    # the y flip turns the stored clockwise exteriors anticlockwise: positive area, y down
    moved = shapely.transform(geoms, lambda c: np.column_stack(((c[:, 0] - left) * scale,
                                                                 (top - c[:, 1]) * scale)))
    return _cut_to_tile(moved)


def child_pieces(row: np.ndarray, tx: np.ndarray, ty: np.ndarray,
                 pieces: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The pieces of the next zoom, cut from those of this one (in their tile units): a child's
    buffered square lies inside its parent's, so each level clips pieces a quarter of the size
    of the last instead of whole areas again. Returns (row, x, y, pieces) in (x, y) order."""
    half, margin = EXTENT // 2, BUFFER // 2   # a child's square and buffer in its parent's units
    bounds = shapely.bounds(pieces)
    out_row, out_x, out_y, out_pieces = [], [], [], []
    for dx in (0, 1):
        for dy in (0, 1):
            meets = np.flatnonzero(
                (bounds[:, 0] <= dx * half + half + margin) & (bounds[:, 2] >= dx * half - margin)
                & (bounds[:, 1] <= dy * half + half + margin) & (bounds[:, 3] >= dy * half - margin))
            if not len(meets):
                continue
            offset = np.array([dx * half, dy * half], dtype=float)
            moved = shapely.transform(pieces[meets], lambda c, offset=offset: (c - offset) * 2)
            cut = _cut_to_tile(moved)
            keep = cut != None  # noqa: E711 (elementwise on an object array)
            out_row.append(row[meets][keep])
            out_x.append(2 * tx[meets][keep] + dx)
            out_y.append(2 * ty[meets][keep] + dy)
            out_pieces.append(cut[keep])
    if not out_row:
        return row[:0], tx[:0], ty[:0], pieces[:0]
    row, tx, ty, pieces = (np.concatenate(a) for a in (out_row, out_x, out_y, out_pieces))
    order = np.lexsort((ty, tx))
    return row[order], tx[order], ty[order], pieces[order]


#: Each band is cut first at this many zooms above its own, then descended tile by tile: the
#: whole rings of a district are copied a few times rather than once per z13 tile.
_DESCENT = 3


def prepare_tiles(store: Store, set_id: str, progress: Progress | None = None) -> PreparedTiles:
    """Cut the set's band geometries to every tile of every zoom and store them in tile units
    (``tile_pieces``), so that serving a tile reads it rather than clipping: one transaction;
    the set's earlier pieces are replaced. Run again after a boundary ingest of the set.

    Halton's 79 LSOAs from the demo bundle:

    >>> from geo_cs import Store
    >>> from geo_cs.config import boundaries_dir
    >>> from geo_cs.ingest import ingest_boundaries
    >>> store = Store.open(":memory:")
    >>> halton = boundaries_dir() / "demo" / "boundaries" / "lsoa2011" / "E06000006.json"
    >>> _ = ingest_boundaries(store, [halton])
    >>> prepared = prepare_tiles(store, "lsoa2011")
    >>> prepared.zooms, prepared.pieces_by_zoom[14] > prepared.pieces_by_zoom[10] > 0
    ((0, 14), True)
    >>> store.close()
    """
    progress = progress or SilentProgress()
    if not store.sql("SELECT count(*) FROM tile_geoms WHERE set_id = ?", [set_id]).fetchone()[0]:
        raise NotFoundError(f"no tile geometries of {set_id}: ingest its boundaries first")
    by_zoom: dict[int, int] = {}
    tiles_total = 0
    with store.transaction():
        ingest_id = store.start_ingest("tiles", [set_id])
        store.sql("DELETE FROM tile_pieces WHERE set_id = ?", [set_id])
        for band in progress.track(ZOOM_BANDS, len(ZOOM_BANDS), f"preparing tiles of {set_id}"):
            frame = store.sql(_BAND_GEOMETRIES, {"set_id": set_id, "band": band.band}).df()
            if frame.empty:
                continue
            geoms = shapely.from_wkb([bytes(w) for w in frame["wkb"]])
            first = max(MIN_ZOOM, band.min_zoom - _DESCENT)
            row, tx, ty = tile_ranges(frame[["xmin", "ymin", "xmax", "ymax"]].to_numpy(), first)
            pieces = cut_pieces(geoms[row], first, tx, ty)
            keep = pieces != None  # noqa: E711 (elementwise on an object array)
            row, tx, ty, pieces = row[keep], tx[keep], ty[keep], pieces[keep]
            for z in range(first, band.max_zoom + 1):
                if z > first:
                    row, tx, ty, pieces = child_pieces(row, tx, ty, pieces)
                if z < band.min_zoom:
                    continue
                _write_pieces(store, set_id, frame, z, row, tx, ty, pieces)
                by_zoom[z] = len(row)
                tiles_total += len(np.unique(tx * 2**z + ty))
        encode_prepared(store, set_id, sorted(by_zoom))
        report = PreparedTiles(set_id, sum(by_zoom.values()), tiles_total, (MIN_ZOOM, MAX_ZOOM), by_zoom)
        store.finish_ingest(ingest_id, report.to_dict())
    return report


def _write_pieces(store: Store, set_id: str, frame: pd.DataFrame, z: int, row: np.ndarray, tx: np.ndarray,
                  ty: np.ndarray, pieces: np.ndarray) -> None:
    for batch in np.array_split(np.arange(len(row)), max(1, len(row) // 100_000)):
        table = pa.table({
            "z": pa.array(np.full(len(batch), z), pa.int8()),
            "x": pa.array(tx[batch], pa.int32()), "y": pa.array(ty[batch], pa.int32()),
            "code": pa.array(frame["code"].to_numpy()[row[batch]], pa.string()),
            "name": pa.array(frame["name"].to_numpy()[row[batch]], pa.string(), from_pandas=True),
            "area_m2": frame["area_m2"].to_numpy()[row[batch]],
            "wkb": pa.array(shapely.to_wkb(pieces[batch]).tolist(), pa.binary()),
        })
        store.con.register("geo_cs_new_pieces", table)
        try:
            store.sql(_INSERT_PIECES, {"set_id": set_id})
        finally:
            store.con.unregister("geo_cs_new_pieces")


def tile_sets(store: Store) -> pd.DataFrame:
    """Boundary sets that can be tiled: lon/lat bounds, area counts and the zoom worth starting at."""
    return store.sql(
        """
        WITH low AS (SELECT set_id, count(*) AS n FROM tile_geoms WHERE band = 0 GROUP BY set_id)
        SELECT a.set_id, any_value(s.label) AS label, count(*) AS areas,
               min(a.xmin) AS west, min(a.ymin) AS south, max(a.xmax) AS east, max(a.ymax) AS north,
               -- most areas under a pixel at z6: a small-area layer, worth drawing from z7
               CASE WHEN coalesce(any_value(low.n), 0) < count(*) / 2 THEN $small ELSE $min END AS minzoom
        FROM areas a JOIN geography_sets s USING (set_id) LEFT JOIN low USING (set_id)
        WHERE a.xmin IS NOT NULL
          AND a.set_id IN (SELECT DISTINCT set_id FROM tile_geoms)
        GROUP BY a.set_id ORDER BY a.set_id
        """, {"small": SMALL_AREA_MIN_ZOOM, "min": MIN_ZOOM}
    ).df()
