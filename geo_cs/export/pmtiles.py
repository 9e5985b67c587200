"""PMTiles v3 archives of the vector tiles, for maps on any static host with no Python running.

The tiles are the same as the service's (:func:`geo_cs.tiles.render_tile`), rendered for every
tile that an area touches between two zooms, gzipped, and written in tile-id order (a clustered
archive) with metadata: ``vector_layers`` with their fields, bounds, centre and the OGL
attribution. Rendering runs on a thread pool with one DuckDB cursor per thread.

Example
-------
>>> write_pmtiles(store, "lsoa2011", "lsoa2011.pmtiles", minzoom=4, maxzoom=12)  # doctest: +SKIP
"""

from __future__ import annotations

import gzip
import math
import os
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
from geo_cs.tiles import MAX_ZOOM, MIN_ZOOM, VALUE_FIELDS, render_tile, tile_index, tile_values


def _tile_range(west: float, south: float, east: float, north: float, z: int) -> tuple[int, int, int, int]:
    n = 2**z

    def x_of(lon: float) -> int:
        return min(n - 1, max(0, int((lon + 180) / 360 * n)))

    def y_of(lat: float) -> int:
        lat = max(min(lat, 85.0511), -85.0511)
        return min(n - 1, max(0, int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)))

    return x_of(west), y_of(north), x_of(east), y_of(south)


def tile_addresses(store: Store, set_id: str, minzoom: int, maxzoom: int,
                   codes: list[str] | None = None) -> list[tuple[int, int, int]]:
    """Every tile (z, x, y) touched by an area's bounding box, in tile-id order."""
    boxes = store.sql(
        "SELECT xmin, ymin, xmax, ymax FROM areas WHERE set_id = ? AND xmin IS NOT NULL "
        "AND (? IS NULL OR list_contains(?, code))", [set_id, codes, codes]).fetchall()
    if not boxes:
        raise InputError(f"no {set_id} areas with boundaries to tile")
    found: set[tuple[int, int, int]] = set()
    for z in range(minzoom, maxzoom + 1):
        for west, south, east, north in boxes:
            x0, y0, x1, y1 = _tile_range(west, south, east, north, z)
            found.update((z, x, y) for x in range(x0, x1 + 1) for y in range(y0, y1 + 1))
    return sorted(found, key=lambda t: zxy_to_tileid(*t))


@dataclass
class PMTilesReport:
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


def write_pmtiles(
    store: Store, set_id: str, path: str | Path, *, minzoom: int = 4, maxzoom: int = 12,
    values: pd.DataFrame | None = None, codes: list[str] | None = None, description: str = "",
    threads: int | None = None, progress: Progress | None = None,
) -> PMTilesReport:
    """Render ``set_id``'s tiles for ``minzoom``..``maxzoom`` (with the period's ``values``, as the
    service does) into a PMTiles archive at ``path``; ``codes`` limits it to some areas."""
    if not MIN_ZOOM <= minzoom <= maxzoom <= MAX_ZOOM:
        raise InputError(f"zooms {minzoom}-{maxzoom}: expected {MIN_ZOOM} <= minzoom <= maxzoom <= "
                         f"{MAX_ZOOM}")
    path = Path(path)
    addresses = tile_addresses(store, set_id, minzoom, maxzoom, codes)
    arrow_values = tile_values(values) if values is not None else None
    index = tile_index(store, set_id)
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

    west, south, east, north = store.sql(
        "SELECT min(xmin), min(ymin), max(xmax), max(ymax) FROM areas WHERE set_id = ? AND xmin IS NOT NULL "
        "AND (? IS NULL OR list_contains(?, code))", [set_id, codes, codes]).fetchone()
    # written beside the target and renamed over it when complete: a build that fails or is
    # stopped halfway leaves neither a truncated archive nor an earlier one damaged
    partial = path.with_name(f".{path.name}.partial")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        out = partial.open("wb")
    except OSError as exc:
        raise InputError(f"{path}: cannot write the archive ({exc.strerror})") from exc
    # one DuckDB thread per tile query and one query per core: a tile is too small for DuckDB to
    # share out, and its threads would fight the pool's (measured: a quarter faster on 2 cores)
    duckdb_threads = store.sql("SELECT current_setting('threads')").fetchone()[0]
    store.sql("SET threads = 1")
    try:
        writer = Writer(out)
        workers = threads or os.cpu_count() or 1
        with ThreadPoolExecutor(max_workers=workers) as pool:
            # map keeps tile-id order, so the archive is clustered
            rendered = zip(addresses, pool.map(render, addresses), strict=True)
            for address, tile in (progress or SilentProgress()).track(rendered, len(addresses),
                                                                        f"tiles of {set_id}"):
                report.tiles_rendered += 1
                if tile:
                    writer.write_tile(zxy_to_tileid(*address), gzip.compress(tile, mtime=0))
                    report.tiles_written += 1
                    report.tiles_per_zoom[address[0]] = report.tiles_per_zoom.get(address[0], 0) + 1
        if not report.tiles_written:
            raise InputError(f"no tile of {set_id} between z{minzoom} and z{maxzoom} has any area")
        fields = {"code": "String", "name": "String"}
        if values is not None:
            fields |= VALUE_FIELDS
        header = {
            "tile_type": TileType.MVT, "tile_compression": Compression.GZIP,
            "min_lon_e7": int(west * 1e7), "min_lat_e7": int(south * 1e7),
            "max_lon_e7": int(east * 1e7), "max_lat_e7": int(north * 1e7),
            "center_zoom": (minzoom + maxzoom) // 2,
            "center_lon_e7": int((west + east) / 2 * 1e7), "center_lat_e7": int((south + north) / 2 * 1e7),
        }
        metadata = {
            "name": set_id, "description": description, "attribution": OGL_ATTRIBUTION,
            "vector_layers": [{"id": set_id, "fields": fields, "minzoom": minzoom, "maxzoom": maxzoom}],
            "bounds": [west, south, east, north], "generator": "geo-cs",
        }
        writer.finalize(header, metadata)
        out.close()
        os.replace(partial, path)
    finally:
        out.close()
        partial.unlink(missing_ok=True)
        for cursor in cursors:
            cursor.close()
        store.sql(f"SET threads = {int(duckdb_threads)}")
    report.bytes = path.stat().st_size
    return report


def write_layer_pmtiles(
    store: Store, set_id: str, path: str | Path, *, indicator: str | None = None,
    period: str | None = None, denominator: str | None = None, partnership: str | None = None,
    minzoom: int = 4, maxzoom: int = 12, disclosure: DisclosureControl | None = None,
    progress: Progress | None = None,
) -> PMTilesReport:
    """A tile layer as the service serves it, into a PMTiles archive: the areas of ``set_id``
    (only ``partnership``'s, if given) with ``indicator``'s values for ``period`` (the latest by
    default; counts over ``denominator`` where they need one), under ``disclosure`` control.

    Example
    -------
    >>> write_layer_pmtiles(store, "lsoa2011", "lsoa2011.pmtiles", indicator="employment_deprived",
    ...                     denominator="population2019_lsoa11.working_age_population")  # doctest: +SKIP
    """
    from geo_cs.layers import area_values, resolve_measure
    from geo_cs.partnerships import get_partnerships, resolve

    values = None
    if indicator is not None:
        measure = resolve_measure(store, set_id, indicator, denominator)
        values = area_values(store, measure, disclosure=disclosure).at(period)
    codes = None
    if partnership is not None:
        codes = resolve(store, get_partnerships([partnership])[0], set_id).codes
    return write_pmtiles(store, set_id, path, minzoom=minzoom, maxzoom=maxzoom, values=values,
                         codes=codes, progress=progress)


def read_metadata(path: str | Path) -> dict:
    """The archive's header and JSON metadata (for checks and the CLI)."""
    from pmtiles.reader import MmapSource, Reader

    with open(path, "rb") as f:
        reader = Reader(MmapSource(f))
        return {"header": reader.header(), "metadata": reader.metadata()}

