"""Archives of the vector tiles: PMTiles v3 for maps on any static host with no Python running,
and MBTiles for GIS clients that open a tileset as one file (QGIS 3.22's vector tile layer, GDAL's
MBTiles driver; neither reads TileJSON, and PMTiles only from QGIS 3.32 and GDAL 3.8).

The tiles are the same as the service's (:func:`geo_cs.tiles.render_tile`), rendered for every
tile that an area touches between two zooms, gzipped, and written in tile-id order (a clustered
archive) with metadata: ``vector_layers`` with their fields, bounds, centre and the OGL
attribution. Rendering runs on a thread pool with one DuckDB cursor per thread.

Example
-------
Halton's 79 LSOAs from the demo bundle, all of them and ten of them:

>>> import tempfile
>>> from pathlib import Path
>>> from geo_cs import Store
>>> from geo_cs.config import boundaries_dir
>>> from geo_cs.ingest import ingest_boundaries
>>> store = Store.open(":memory:")
>>> _ = ingest_boundaries(store, [boundaries_dir() / "demo" / "boundaries" / "lsoa2011" / "E06000006.json"])
>>> folder = tempfile.TemporaryDirectory()
>>> report = write_pmtiles(store, "lsoa2011", Path(folder.name) / "halton.pmtiles", minzoom=4, maxzoom=12)
>>> report.tiles_written, report.tiles_per_zoom[4], report.tiles_per_zoom[12]
(33, 1, 10)
>>> some = [code for (code,) in store.sql("SELECT code FROM areas ORDER BY code LIMIT 10").fetchall()]
>>> report = write_mbtiles(store, "lsoa2011", Path(folder.name) / "some.mbtiles", codes=some, maxzoom=12)
>>> report.tiles_written
16
>>> store.close(); folder.cleanup()
"""

from __future__ import annotations

import gzip
import json
import math
import os
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd
from pmtiles.tile import Compression, TileType, zxy_to_tileid
from pmtiles.writer import Writer

from geo_cs.attribution import OGL_ATTRIBUTION
from geo_cs.disclosure import DisclosureControl
from geo_cs.errors import InputError
from geo_cs.progress import Progress, SilentProgress
from geo_cs.store import Store
from geo_cs.tiles import (
    MAX_ZOOM,
    MIN_ZOOM,
    VALUE_FIELDS,
    TileIndex,
    TileValues,
    render_tile,
    tile_index,
    tile_values,
)

#: A lon/lat box: west, south, east, north.
Bbox = tuple[float, float, float, float]
#: The archives written: PMTiles (static sites; GDAL >= 3.8, QGIS >= 3.32) and MBTiles (QGIS
#: 3.22's vector tile layer and GDAL's MBTiles driver open it as one file).
ARCHIVES = ("pmtiles", "mbtiles")


def _tile_range(west: float, south: float, east: float, north: float, z: int) -> tuple[int, int, int, int]:
    n = 2**z

    def x_of(lon: float) -> int:
        return min(n - 1, max(0, int((lon + 180) / 360 * n)))

    def y_of(lat: float) -> int:
        lat = max(min(lat, 85.0511), -85.0511)
        return min(n - 1, max(0, int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)))

    return x_of(west), y_of(north), x_of(east), y_of(south)


_AREA_BOXES = """
SELECT xmin, ymin, xmax, ymax FROM areas
WHERE set_id = $set_id AND xmin IS NOT NULL
  AND ($codes IS NULL OR list_contains($codes, code))
  AND ($west IS NULL OR (xmax >= $west AND xmin <= $east AND ymax >= $south AND ymin <= $north))
"""


def _area_boxes(store: Store, set_id: str, codes: list[str] | None, bbox: Bbox | None) -> list[Bbox]:
    """The lon/lat boxes of the areas chosen (all, ``codes``, those meeting ``bbox``), each cut
    to ``bbox``."""
    west, south, east, north = bbox if bbox is not None else (None,) * 4
    boxes = store.sql(_AREA_BOXES, {"set_id": set_id, "codes": codes, "west": west, "south": south,
                                    "east": east, "north": north}).fetchall()
    if bbox is not None:
        boxes = [(max(w, west), max(s, south), min(e, east), min(n, north)) for w, s, e, n in boxes]
    if not boxes:
        where = (" in the bbox" if bbox is not None else " among the codes asked for" if codes is not None
                 else "")
        raise InputError(f"no {set_id} areas with boundaries{where} to tile")
    return boxes


def _addresses(boxes: list[Bbox], z: int) -> set[tuple[int, int, int]]:
    found: set[tuple[int, int, int]] = set()
    for west, south, east, north in boxes:
        x0, y0, x1, y1 = _tile_range(west, south, east, north, z)
        found.update((z, x, y) for x in range(x0, x1 + 1) for y in range(y0, y1 + 1))
    return found


def tile_addresses(store: Store, set_id: str, minzoom: int, maxzoom: int,
                   codes: list[str] | None = None, bbox: Bbox | None = None) -> list[tuple[int, int, int]]:
    """Every tile (z, x, y) touched by an area's bounding box, in tile-id order; ``codes`` or a
    lon/lat ``bbox`` limit it to some areas (and to the part of them inside the bbox)."""
    boxes = _area_boxes(store, set_id, codes, bbox)
    found: set[tuple[int, int, int]] = set()
    for z in range(minzoom, maxzoom + 1):
        found |= _addresses(boxes, z)
    return sorted(found, key=lambda t: zxy_to_tileid(*t))


def plan_download(store: Store, set_id: str, *, minzoom: int, maxzoom: int, max_tiles: int,
                  codes: list[str] | None = None, bbox: Bbox | None = None) -> list[tuple[int, int, int]]:
    """The tiles of an archive (as :func:`tile_addresses`), refused with an :class:`InputError`
    naming ``maxzoom`` (or ``bbox``/``partnership``) when there are more than ``max_tiles``: the
    message says the largest ``maxzoom`` that fits. Counting stops at the first zoom over."""
    _check_zooms(minzoom, maxzoom)
    boxes = _area_boxes(store, set_id, codes, bbox)
    found: set[tuple[int, int, int]] = set()
    for z in range(minzoom, maxzoom + 1):
        found |= _addresses(boxes, z)
        if len(found) > max_tiles:
            narrower = ("a smaller bbox" if bbox is not None else "a smaller partnership"
                        if codes is not None else "a partnership or a bbox")
            if z == minzoom:
                raise InputError(f"{'bbox' if bbox is not None else 'partnership'}: the areas asked for "
                                 f"need more than {max_tiles:,} tiles at z{minzoom} alone, more than a "
                                 f"download may hold; ask for {narrower}")
            raise InputError(f"maxzoom={maxzoom}: the areas asked for need more than {max_tiles:,} tiles "
                             f"from z{minzoom} to z{z}, more than a download may hold; ask for "
                             f"maxzoom={z - 1} or less, or {narrower}")
    return sorted(found, key=lambda t: zxy_to_tileid(*t))


#: The most tiles a download of the service (``/tiles/{layer}/download.mbtiles``) may hold: a
#: partnership's LSOAs from z7 to z14 are about 1,000 (Greater Manchester: 1,025, 15 s to render
#: on two busy cores; z7-z12, the default, 92 tiles in 3 s).
DOWNLOAD_MAX_TILES = 2_000
#: A download's deepest zoom unless asked: z12 draws every LSOA's published shape simplified
#: by under 40 m, and a client over-zooms it.
DOWNLOAD_MAXZOOM = 12


def write_download(
    store: Store, set_id: str, path: str | Path, *, archive: str, minzoom: int,
    maxzoom: int = DOWNLOAD_MAXZOOM, values: pd.DataFrame | TileValues | None = None,
    codes: list[str] | None = None, bbox: Bbox | None = None, description: str = "",
    index: TileIndex | None = None, max_tiles: int = DOWNLOAD_MAX_TILES,
) -> PMTilesReport:
    """A layer's tiles as a file to download (the service's ``download.mbtiles`` and
    ``download.pmtiles``): the tiles between ``minzoom`` and ``maxzoom`` of the areas chosen
    (``codes``: a partnership's; ``bbox``: those meeting a lon/lat box), with ``values`` as the
    service's tiles carry them (disclosure control applied by whoever made them). Refused with
    an :class:`InputError` naming ``maxzoom``, ``partnership`` or ``bbox`` over ``max_tiles``
    (:func:`plan_download`). Renders on two threads and leaves the shared database's settings
    alone."""
    addresses = plan_download(store, set_id, minzoom=minzoom, maxzoom=maxzoom, max_tiles=max_tiles,
                              codes=codes, bbox=bbox)
    return write_archive(store, set_id, path, addresses, archive=archive, values=values, codes=codes,
                         bbox=bbox, description=description, threads=2, index=index, own_database=False)


def _check_zooms(minzoom: int, maxzoom: int) -> None:
    if not MIN_ZOOM <= minzoom <= maxzoom <= MAX_ZOOM:
        raise InputError(f"zooms {minzoom}-{maxzoom}: expected {MIN_ZOOM} <= minzoom <= maxzoom <= "
                         f"{MAX_ZOOM}")


@dataclass
class PMTilesReport:
    """What an archive holds (PMTiles or MBTiles)."""

    path: str
    layer: str
    minzoom: int
    maxzoom: int
    tiles_rendered: int = 0
    tiles_written: int = 0
    bytes: int = 0
    tiles_per_zoom: dict[int, int] = field(default_factory=dict)

    def lines(self) -> list[str]:
        per_zoom = ", ".join(f"z{z} {n:,}" for z, n in sorted(self.tiles_per_zoom.items()))
        return [f"{self.path}: {self.tiles_written:,} tiles of {self.layer}, z{self.minzoom}-{self.maxzoom}, "
                f"{self.bytes / 1e6:.1f} MB ({self.tiles_rendered - self.tiles_written:,} empty left out)",
                f"  per zoom: {per_zoom}"]

    def to_dict(self) -> dict:
        return asdict(self)


class _MBTiles:
    """An MBTiles 1.3 file being written (SQLite): tiles in TMS rows, metadata as text rows,
    ``json`` holding ``vector_layers`` (the fields GDAL and QGIS list) and ``tilestats`` (the
    geometry type GDAL gives the layer)."""

    def __init__(self, out: Path) -> None:
        self.con = sqlite3.connect(out)
        self.con.executescript(
            "PRAGMA application_id = 0x4d504258;"   # 'MPBX', the MBTiles magic number
            "CREATE TABLE metadata (name TEXT, value TEXT);"
            "CREATE TABLE tiles (zoom_level INTEGER, tile_column INTEGER, tile_row INTEGER, tile_data BLOB);"
            "CREATE UNIQUE INDEX tile_index ON tiles (zoom_level, tile_column, tile_row);")

    def write_tile(self, z: int, x: int, y: int, data: bytes) -> None:
        self.con.execute("INSERT INTO tiles VALUES (?, ?, ?, ?)", (z, x, 2**z - 1 - y, data))

    def finalize(self, metadata: dict[str, str]) -> None:
        self.con.executemany("INSERT INTO metadata VALUES (?, ?)", list(metadata.items()))
        self.con.commit()
        self.con.close()

    def close(self) -> None:
        self.con.close()


def write_pmtiles(
    store: Store, set_id: str, path: str | Path, *, minzoom: int = 4, maxzoom: int = 12,
    values: pd.DataFrame | None = None, codes: list[str] | None = None, description: str = "",
    threads: int | None = None, progress: Progress | None = None,
) -> PMTilesReport:
    """Render ``set_id``'s tiles for ``minzoom``..``maxzoom`` (with the period's ``values``, as the
    service does) into a PMTiles archive at ``path``; ``codes`` limits it to some areas."""
    _check_zooms(minzoom, maxzoom)
    addresses = tile_addresses(store, set_id, minzoom, maxzoom, codes)
    return write_archive(store, set_id, path, addresses, archive="pmtiles", values=values, codes=codes,
                         description=description, threads=threads, progress=progress)


def write_mbtiles(
    store: Store, set_id: str, path: str | Path, *, minzoom: int = 4, maxzoom: int = 12,
    values: pd.DataFrame | None = None, codes: list[str] | None = None, bbox: Bbox | None = None,
    description: str = "", threads: int | None = None, progress: Progress | None = None,
) -> PMTilesReport:
    """As :func:`write_pmtiles`, into an MBTiles file (``bbox``: only the areas meeting it)."""
    _check_zooms(minzoom, maxzoom)
    addresses = tile_addresses(store, set_id, minzoom, maxzoom, codes, bbox)
    return write_archive(store, set_id, path, addresses, archive="mbtiles", values=values, codes=codes,
                         bbox=bbox, description=description, threads=threads, progress=progress)


def write_archive(
    store: Store, set_id: str, path: str | Path, addresses: list[tuple[int, int, int]], *,
    archive: str = "pmtiles", values: pd.DataFrame | TileValues | None = None,
    codes: list[str] | None = None, bbox: Bbox | None = None, description: str = "",
    threads: int | None = None, progress: Progress | None = None, index: TileIndex | None = None,
    own_database: bool = True,
) -> PMTilesReport:
    """Render ``addresses`` (from :func:`tile_addresses` or :func:`plan_download`, in tile-id
    order) of ``set_id`` with the period's ``values`` (one row per code, as the service's tiles
    carry them; None: boundaries only) into a PMTiles or MBTiles (``archive``) file at ``path``.
    ``codes``/``bbox`` are those the addresses were chosen by: they set the archive's bounds.
    The file is written beside ``path`` and renamed over it when complete: a build that fails
    or is stopped halfway leaves neither a truncated archive nor an earlier one damaged.
    ``index``: the layer's :func:`~geo_cs.tiles.tile_index`, if kept (a server keeps one).
    ``own_database``: whether this process alone uses the database (an export): DuckDB is then
    set to one thread per query while ``threads`` tiles render at once; a server shares its
    database with other requests and leaves its settings alone."""
    if archive not in ARCHIVES:
        raise InputError(f"archive {archive!r}: expected one of {', '.join(ARCHIVES)}")
    if not addresses:
        raise InputError(f"no tile of {set_id} to write")
    path = Path(path)
    minzoom, maxzoom = min(a[0] for a in addresses), max(a[0] for a in addresses)
    arrow_values = values if isinstance(values, TileValues) or values is None else tile_values(values)
    index = index if index is not None else tile_index(store, set_id)
    report = PMTilesReport(str(path), set_id, minzoom, maxzoom)
    local = threading.local()
    cursors: list[Store] = []
    lock = threading.Lock()

    def render(address: tuple[int, int, int]) -> bytes:
        if not hasattr(local, "store"):
            local.store = Store(store.con.cursor(), store.path, read_only=True)
            with lock:
                cursors.append(local.store)
        return render_tile(local.store, set_id, *address, arrow_values, index=index)

    boxes = _area_boxes(store, set_id, codes, bbox)
    west, south = min(b[0] for b in boxes), min(b[1] for b in boxes)
    east, north = max(b[2] for b in boxes), max(b[3] for b in boxes)
    partial = path.with_name(f".{path.name}.partial")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial.unlink(missing_ok=True)
        out = partial.open("wb")
    except OSError as exc:
        raise InputError(f"{path}: cannot write the archive ({exc.strerror})") from exc
    if archive == "mbtiles":
        out.close()
        writer: Writer | _MBTiles = _MBTiles(partial)
    else:
        writer = Writer(out)
    # one DuckDB thread per tile query and one query per core: a tile is too small for DuckDB to
    # share out, and its threads would fight the pool's (measured: a quarter faster on 2 cores)
    duckdb_threads = store.sql("SELECT current_setting('threads')").fetchone()[0]
    if own_database:
        store.sql("SET threads = 1")
    try:
        workers = threads or os.cpu_count() or 1
        with ThreadPoolExecutor(max_workers=workers) as pool:
            # map keeps tile-id order, so the archive is clustered
            rendered = zip(addresses, pool.map(render, addresses), strict=True)
            for address, tile in (progress or SilentProgress()).track(rendered, len(addresses),
                                                                        f"tiles of {set_id}"):
                report.tiles_rendered += 1
                if tile:
                    data = gzip.compress(tile, mtime=0)
                    if isinstance(writer, _MBTiles):
                        writer.write_tile(*address, data)
                    else:
                        writer.write_tile(zxy_to_tileid(*address), data)
                    report.tiles_written += 1
                    report.tiles_per_zoom[address[0]] = report.tiles_per_zoom.get(address[0], 0) + 1
        if not report.tiles_written:
            raise InputError(f"no tile of {set_id} between z{minzoom} and z{maxzoom} has any area")
        fields = {"code": "String", "name": "String"}
        if values is not None:
            fields |= VALUE_FIELDS
        layer = {"id": set_id, "description": description, "fields": fields, "minzoom": minzoom,
                 "maxzoom": maxzoom}
        center = ((west + east) / 2, (south + north) / 2, (minzoom + maxzoom) // 2)
        if isinstance(writer, _MBTiles):
            tilestats = {"layerCount": 1, "layers": [{
                "layer": set_id, "count": report.tiles_written, "geometry": "Polygon",
                "attributeCount": len(fields),
                "attributes": [{"attribute": k, "type": v.lower()} for k, v in fields.items()]}]}
            writer.finalize({
                "name": set_id, "format": "pbf", "type": "overlay", "version": "2",
                "description": description, "attribution": OGL_ATTRIBUTION,
                "bounds": f"{west},{south},{east},{north}", "center": ",".join(map(str, center)),
                "minzoom": str(minzoom), "maxzoom": str(maxzoom), "generator": "geo-cs",
                "json": json.dumps({"vector_layers": [layer], "tilestats": tilestats}),
            })
        else:
            header = {
                "tile_type": TileType.MVT, "tile_compression": Compression.GZIP,
                "min_lon_e7": int(west * 1e7), "min_lat_e7": int(south * 1e7),
                "max_lon_e7": int(east * 1e7), "max_lat_e7": int(north * 1e7),
                "center_zoom": center[2], "center_lon_e7": int(center[0] * 1e7),
                "center_lat_e7": int(center[1] * 1e7),
            }
            writer.finalize(header, {
                "name": set_id, "description": description, "attribution": OGL_ATTRIBUTION,
                "vector_layers": [layer], "bounds": [west, south, east, north], "generator": "geo-cs",
            })
            out.close()
        os.replace(partial, path)
    finally:
        if isinstance(writer, _MBTiles):
            writer.close()
        out.close()
        partial.unlink(missing_ok=True)
        for cursor in cursors:
            cursor.close()
        if own_database:
            store.sql(f"SET threads = {int(duckdb_threads)}")
    report.bytes = path.stat().st_size
    return report


def write_layer_pmtiles(
    store: Store, set_id: str, path: str | Path, *, indicator: str | None = None,
    period: str | None = None, denominator: str | None = None, partnership: str | None = None,
    minzoom: int = 4, maxzoom: int = 12, disclosure: DisclosureControl | None = None,
    progress: Progress | None = None, archive: str = "pmtiles",
) -> PMTilesReport:
    """A tile layer as the service serves it, into a PMTiles (or MBTiles: ``archive``) file: the
    areas of ``set_id`` (only ``partnership``'s, if given) with ``indicator``'s values for
    ``period`` (the latest by default; counts over ``denominator`` where they need one), under
    ``disclosure`` control.

    Example
    -------
    Halton's LSOAs with the IMD 2019 employment-deprived rate (the demo bundle's files):

    >>> import tempfile
    >>> from pathlib import Path
    >>> from geo_cs import Store
    >>> from geo_cs.config import boundaries_dir
    >>> from geo_cs.ingest import ingest_boundaries, ingest_indicator, load_spec
    >>> demo = boundaries_dir() / "demo"
    >>> store = Store.open(":memory:")
    >>> _ = ingest_boundaries(store, [demo / "boundaries" / "lsoa2011" / "E06000006.json"])
    >>> for spec, name in (("imd2019_indicators", "imd2019_england_lsoa11_indicators.csv"),
    ...                    ("population2019_lsoa11", "population2019_lsoa11_ew.csv")):
    ...     _ = ingest_indicator(store, demo / "indicators" / name, load_spec(spec))
    >>> folder = tempfile.TemporaryDirectory()
    >>> report = write_layer_pmtiles(store, "lsoa2011", Path(folder.name) / "lsoa2011.pmtiles",
    ...                              indicator="employment_deprived", maxzoom=10,
    ...                              denominator="population2019_lsoa11.working_age_population")
    >>> report.tiles_written, report.minzoom, report.maxzoom
    (17, 4, 10)
    >>> store.close(); folder.cleanup()
    """
    from geo_cs.layers import area_values, resolve_measure
    from geo_cs.partnerships import get_partnerships, resolve

    _check_zooms(minzoom, maxzoom)
    values = None
    if indicator is not None:
        measure = resolve_measure(store, set_id, indicator, denominator)
        values = area_values(store, measure, disclosure=disclosure).at(period)
    codes = None
    if partnership is not None:
        codes = resolve(store, get_partnerships([partnership])[0], set_id).codes
    addresses = tile_addresses(store, set_id, minzoom, maxzoom, codes)
    return write_archive(store, set_id, path, addresses, archive=archive, values=values, codes=codes,
                         progress=progress)


def read_metadata(path: str | Path) -> dict:
    """The archive's header and JSON metadata (for checks and the CLI)."""
    from pmtiles.reader import MmapSource, Reader

    with open(path, "rb") as f:
        reader = Reader(MmapSource(f))
        return {"header": reader.header(), "metadata": reader.metadata()}
