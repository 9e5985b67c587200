"""Benchmark: geo-cs vector tiles against PostGIS given the same input, and cached tiles over HTTP.

What is measured
----------------
On the GB store of ``bench/_gb_store.py`` (all 34,753 LSOA 2011 and 6,976 Data Zones 2011, with
the values each layer shows by ``_gb_store.MEASURES``, latest period), in one run:

1. **Tile addresses.** 500 fixed tiles (seeded RNG, ``--seed``) at z5-z14, 50 per zoom, 35 of
   them on ``lsoa2011`` and 15 on ``datazone2011``: random areas' points on surface (so tiles are
   drawn where the areas are, dense cities more often than moors) turned into tiles with
   ``geo_cs.tiles.lonlat_to_tile``, each address once; a zoom with fewer distinct tiles than its
   quota (GB spans a handful of z5 tiles) passes the rest to the next zoom. Both layers declare
   TileJSON ``minzoom`` 7 (``tiles.tile_sets``): the z5-z6 tiles are below it, are served
   anyway (band 0: areas under a pixel left out) and are flagged ``below_minzoom``. The list is
   saved in the results, in the (shuffled) order it is timed in.

2. **Uncached render time per tile**, in this process, four sides each rendering the list in a
   block, compared in two pairs, each pair given the same input:

   * **Headline: prepared tiles.** *geo-cs* (``geo``): ``render_tile(store, layer, z, x, y,
     values, index=...)`` on the store opened read-only, its layers prepared (``geo-cs tiles
     prepare``, when the GB store was built; the preparation's time and size are in the
     results): the layer's ``tiles.tile_index`` holds every zoom's encoded tiles
     (``tile_features``) and writes the tile with no SQL. *PostGIS* (``pgp``) is given the same
     prepared pieces: geo-cs's ``tile_pieces`` (each band's areas cut to every tile of its zooms,
     in tile units) copied into PostGIS with a btree on ``(set_id, z, x, y)`` (the table
     CLUSTERed on it); per tile ``ST_AsMVT`` of the tile's rows with code, name and the values.
   * **The default path** (a layer not prepared: every boundary ingest leaves its set so, and the
     demo): *geo-cs* (``fly``): the same call with ``prepared=False``, the path of a layer not
     prepared: the index holds the band geometries (``tile_geoms``), clips the areas crossing the
     tile's buffered square (GEOS ``clip_by_rect``), moves and encodes them in memory, no SQL.
     *PostGIS* (``pg``) is given the same ``tile_geoms`` (every band, the same simplified
     EPSG:3857 geometries; GiST on ``geom``, CLUSTERed on it, btree on ``(set_id, band)``) and
     tiles as PostGIS users write it: ``ST_AsMVT`` over ``ST_AsMVTGeom(geom,
     ST_TileEnvelope(z, x, y), 4096, 64, true)``, code, name and the values, for the band of
     ``zoom_band(z)`` and ``geom && ST_TileEnvelope(z, x, y, margin => 64 / 4096)`` (the areas in
     the tile's buffer, as geo-cs draws them).

   Both sides of both pairs are given the period's values rounded once to 4 decimals: geo-cs
   ``tiles.tile_values(area_values(store, resolve_measure(...)).at(period))``, built once per
   data version and period and cached as the API does; PostGIS a table of those values (primary
   key ``(set_id, code)``), ``LEFT JOIN``ed. geo-cs's byte budget loop (a denser tile is
   re-encoded without its smallest areas until it fits) is included. PostGIS is sent its query
   by psycopg 3 over the cluster's unix socket (it prepares a statement after 5 runs, as a tile
   server would); its time includes that round trip and fetching the bytes. PostGIS has no size
   budget: for the tiles where geo-cs needed its budget, PostGIS is timed again with ``area_m2
   >=`` the area geo-cs ended up keeping (``matched``: the same features), found by a traced
   untimed geo-cs pass.

   One untimed warm-up pass per side (caches, plans; it also records sizes and the budget),
   then ``--repeat`` timed passes (default 4): in each, every side renders all the tiles in a
   block, the blocks' order reversed from one pass to the next so that a drift of the machine's
   speed falls on all; per tile the median of its passes. Blocks rather than alternating tile
   by tile: a query run right after the other process's pays for the CPU caches that one
   evicted, and unevenly -- in the runs that brought this in, geo-cs's median was 0.9-1.7 ms
   higher alternating than in blocks and PostGIS's 0-0.4 ms (DuckDB's query path, then geo-cs's
   tile path) -- whereas a tile server draws a map's tiles as a burst of requests.
   ``--alternating`` passes (default 2) then alternate geo-cs and PostGIS tile by tile within
   each pair, and those ratios are reported for information. Reported per pair: median, p90 and
   max over tiles, per zoom too; the ratio of medians geo-cs / PostGIS (targets: not above 1 at
   any zoom, below 1 overall; the headline also <= 1.5 overall); tile sizes (target: every
   geo-cs tile at most 500 KB gzipped, as served; raw and PostGIS sizes shown); and
   ``--verify`` tiles (default 100, spread over the list) decoded with ``mapbox_vector_tile``:
   each geo-cs side against its PostGIS (with the matched area filter; feature counts and codes,
   properties for information), and the default
   path against the prepared tiles (the same features and properties). ``--tiles N`` times the
   first N tiles of the list only (a quick check).

3. **Cached throughput over HTTP**: ``uvicorn geo_cs.api.app:create_app --factory`` with 1 worker on a
   free port (``GEO_CS_DB`` = the GB store), as deployed (plain ``uvicorn``: whatever HTTP
   parser and event loop this environment has -- recorded). Its cache is warmed by fetching
   the 500 tile URLs once (``/tiles/{layer}/{z}/{x}/{y}.mvt?indicator=..&denominator=..&period=..``,
   ``Accept-Encoding: gzip`` like a browser; the uncached HTTP latencies are recorded, and each
   body is compared with the in-process render -- bytes, and for the first 60 that differ the
   decoded features), then
   ``wrk`` (C, one thread, ``--connections`` keep-alive connections, default 16; a Lua script
   cycles the 500 URLs) hammers them for ``--duration`` seconds (default 15). wrk is used
   because a Python client on this 2-CPU machine would need about as much CPU per request as
   the server; the CPU time of wrk and of the server during the run is recorded to show which
   one was the limit. Reported: tiles/s, p50/p99 latency, non-2xx count, the server's RSS
   (after warm-up, after the load, and its peak). Target: >= 2,000 tiles/s per worker.
   ``--skip-http`` skips this part; without ``wrk`` it is skipped with a note
   (``apt-get install wrk``). ``--profile`` also records the server with ``py-spy`` during
   the load: time per category (innermost matching frame) and the hottest frames in the
   results, the raw stacks beside them (``tiles_http_profile.txt``, git-ignored).

Results are printed and written to ``bench/results/tiles.json``. Exit status: 0 whether or not
the targets are met, 1 when a run fails, 2 when the shared data, PostgreSQL/PostGIS or psycopg
are missing. The PostgreSQL cluster (``initdb`` in a temporary folder, socket there, a free
port, run as ``postgres`` through ``runuser`` when this runs as root) is stopped and removed at
the end, also on error.

Bench-only dependencies (``bench/requirements-bench.txt``): psycopg 3; ``wrk`` from Debian.

Run from the repository root::

    python bench/bench_tiles.py [--repeat 4] [--duration 15] [--skip-http] [--tiles N] [--allow-dirty]
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import os
import platform
import pwd
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import _harness as h
import numpy as np
from _gb_store import MEASURES, gb_store, gb_store_info, shared_missing
from rich.console import Console
from rich.table import Table

DEFAULT_OUT = h.RESULTS / "tiles.json"

N_TILES = 500
ZOOMS = range(5, 15)
#: tiles per zoom and layer (35 + 15 = 50 per zoom, 500 in all)
QUOTA = {"lsoa2011": 35, "datazone2011": 15}
TARGET_RATIO = 1.5
#: every tile at most this many bytes *gzipped*, as served (Tippecanoe's default limit is
#: 500 KB of compressed tile; the product's own budget, geo_cs.tiles.MAX_TILE_BYTES, is 1 MB
#: before compression, which these tiles halve)
TARGET_MAX_GZIP_BYTES = 500_000
TARGET_TILES_PER_S = 2000.0

#: PostgreSQL settings of the throwaway cluster: durability off (it is rebuilt every run), memory
#: enough to hold the tables, JIT off (its compile time would dominate millisecond queries).
PG_SETTINGS = {
    "shared_buffers": "1GB", "work_mem": "16MB", "maintenance_work_mem": "512MB",
    "fsync": "off", "synchronous_commit": "off", "full_page_writes": "off", "jit": "off",
    "max_wal_size": "4GB", "logging_collector": "off",
}

#: PostGIS given the simplified band geometries (``tile_geoms``), as PostGIS users write a tile:
#: ``ST_AsMVTGeom`` clips and moves each area; the areas in the tile's 64-unit buffer count too,
#: as they do in geo-cs's tiles (``margin``). The values come rounded (as geo-cs's do).
_PG_TILE = """
SELECT ST_AsMVT(t, %(layer)s, 4096, 'geom') FROM (
    SELECT ST_AsMVTGeom(g.geom, ST_TileEnvelope(%(z)s::int, %(x)s::int, %(y)s::int), 4096, 64, true) AS geom,
           g.code, g.name, v.value, v.value_low, v.value_high, v.worst, v.estimated_share, v.suppressed
    FROM tile_geoms g LEFT JOIN tile_values v ON v.set_id = g.set_id AND v.code = g.code
    WHERE g.set_id = %(layer)s AND g.band = %(band)s::smallint AND g.area_m2 >= %(min_area)s::float8
      AND g.geom && ST_TileEnvelope(%(z)s::int, %(x)s::int, %(y)s::int, margin => %(margin)s::float8)
) t
"""

#: PostGIS given geo-cs's prepared pieces (``tile_pieces``: already cut to the tile and in its
#: units): the tile's rows by the btree on (set_id, z, x, y), encoded with their values.
_PG_PIECES = """
SELECT ST_AsMVT(t, %(layer)s, 4096, 'geom') FROM (
    SELECT p.geom, p.code, p.name, v.value, v.value_low, v.value_high, v.worst, v.estimated_share,
           v.suppressed
    FROM tile_pieces p LEFT JOIN tile_values v ON v.set_id = p.set_id AND v.code = p.code
    WHERE p.set_id = %(layer)s AND p.z = %(z)s::smallint AND p.x = %(x)s::int AND p.y = %(y)s::int
      AND p.area_m2 >= %(min_area)s::float8
) t
"""


# -- PostgreSQL + PostGIS -----------------------------------------------------------------------

def find_postgis(explicit: Path | None) -> tuple[Path, str] | str:
    """(bin dir, version) of a PostgreSQL with PostGIS, or a message saying what is missing."""
    candidates = [explicit] if explicit else sorted(
        Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: -int(p.parent.name)
        if p.parent.name.isdigit() else 0)
    seen = []
    for bindir in candidates:
        tools = [bindir / t for t in ("initdb", "pg_ctl", "postgres", "pg_config")]
        if not all(t.exists() for t in tools):
            seen.append(f"{bindir}: no initdb/pg_ctl/postgres/pg_config")
            continue
        share = subprocess.run([str(bindir / "pg_config"), "--sharedir"], capture_output=True,
                               text=True).stdout.strip()
        if not (Path(share) / "extension" / "postgis.control").exists():
            seen.append(f"{bindir}: PostgreSQL without PostGIS ({share}/extension/postgis.control)")
            continue
        version = subprocess.run([str(bindir / "postgres"), "--version"], capture_output=True,
                                 text=True).stdout.strip()
        return bindir, version
    return ("no PostgreSQL with PostGIS found (" + ("; ".join(seen) or "nothing in /usr/lib/postgresql")
            + "): apt-get install postgresql-15-postgis-3, or pass --pg-bin")


class PgCluster:
    """A throwaway PostgreSQL cluster: initdb in a temporary folder, its socket there, a free
    port; as ``postgres`` (runuser) when this process is root. ``stop()`` always cleans up."""

    def __init__(self, bindir: Path, console: Console) -> None:
        self.bindir, self.console = bindir, console
        self.tmp = Path(tempfile.mkdtemp(prefix="bench_tiles_pg_"))
        self.data = self.tmp / "data"
        self.log = self.tmp / "postgres.log"
        self.port = h.free_port()
        self.started = False
        self.as_user: str | None = None
        if os.geteuid() == 0:
            try:
                pw = pwd.getpwnam("postgres")
            except KeyError:
                pw = None
            if pw is None:
                raise RuntimeError("running as root and there is no 'postgres' user to run PostgreSQL as")
            self.as_user = "postgres"
            os.chown(self.tmp, pw.pw_uid, pw.pw_gid)
        os.chmod(self.tmp, 0o755)

    def _run(self, *cmd: str) -> subprocess.CompletedProcess:
        full = [*((["runuser", "-u", self.as_user, "--"]) if self.as_user else []), *cmd]
        done = subprocess.run(full, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd[:2])} failed ({done.returncode}):\n"
                               f"{done.stdout}\n{done.stderr}"
                               + (f"\n{self.log.read_text()[-3000:]}" if self.log.exists() else ""))
        return done

    def start(self) -> None:
        self._run(str(self.bindir / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust",
                  "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync")
        opts = " ".join([f"-p {self.port}", f"-k {self.tmp}", "-c listen_addresses=127.0.0.1",
                         *(f"-c {k}={v}" for k, v in PG_SETTINGS.items())])
        self.started = True  # from here on stop() tries pg_ctl stop
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", opts,
                  "-w", "-t", "60", "start")

    def conninfo(self) -> str:
        return f"host={self.tmp} port={self.port} user=postgres dbname=postgres"

    def stop(self) -> None:
        if self.started:
            try:
                self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "-t", "30",
                          "stop")
            except Exception as exc:  # kill the postmaster this cluster started, by its pid
                self.console.print(f"[yellow]pg_ctl stop failed ({exc}); killing the postmaster[/]")
                with contextlib.suppress(Exception):
                    pid = int((self.data / "postmaster.pid").read_text().split()[0])
                    os.kill(pid, signal.SIGKILL)
            self.started = False
        shutil.rmtree(self.tmp, ignore_errors=True)


def load_postgis(con: Any, store: Any, values: dict[str, Any], workdir: Path) -> dict[str, Any]:
    """Copy into PostGIS, for the benchmark's layers, what geo-cs has: ``tile_geoms`` (every band's
    simplified geometries, Web Mercator), ``tile_pieces`` (the prepared pieces: each band's areas
    cut to every tile of its zooms, in tile units) and the period's values as geo-cs hands them
    to a tile (``values``: :class:`geo_cs.tiles.TileValues`, rounded once); index, cluster,
    analyse."""
    layers = sorted(values)
    seconds: dict[str, float] = {}
    cur = con.cursor()
    cur.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    rows, sizes = {}, {}
    # not the bounds columns (xmin, xmax are system columns in PostgreSQL; && uses the index)
    exports = {
        "tile_geoms": ("set_id text, code text, band smallint, name text, geom geometry, area_m2 float8",
                       "SELECT set_id, code, band, name, ST_AsHEXWKB(geom) AS geom, area_m2 "
                       "FROM tile_geoms WHERE set_id IN ({layers}) ORDER BY set_id, band"),
        "tile_pieces": ("set_id text, z smallint, x integer, y integer, code text, name text, "
                        "area_m2 float8, geom geometry",
                        "SELECT set_id, z, x, y, code, name, area_m2, ST_AsHEXWKB(geom) AS geom "
                        "FROM tile_pieces WHERE set_id IN ({layers}) ORDER BY set_id, z, x, y"),
    }
    in_layers = ", ".join(f"'{layer}'" for layer in layers)  # the benchmark's own layer ids
    for table, (columns, select) in exports.items():
        t0 = time.perf_counter()
        csv = workdir / f"{table}.csv"
        store.sql(f"COPY ({select.format(layers=in_layers)}) TO '{csv.as_posix()}' "
                  "(FORMAT csv, HEADER false)")
        seconds[f"export_{table}_from_duckdb"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        cur.execute(f"CREATE UNLOGGED TABLE stage ({columns})")
        with cur.copy("COPY stage FROM STDIN (FORMAT csv)") as copy, csv.open("rb") as f:
            while chunk := f.read(1 << 20):
                copy.write(chunk)
        csv.unlink()
        srid = 3857 if table == "tile_geoms" else 0  # pieces are in tile units
        names = [c.split()[0] for c in columns.split(", ")]
        cur.execute(f"CREATE TABLE {table} AS SELECT "
                    + ", ".join(f"ST_SetSRID(geom, {srid}) AS geom" if n == "geom" else n for n in names)
                    + " FROM stage")
        cur.execute("DROP TABLE stage")
        seconds[f"copy_{table}"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    cur.execute("CREATE TABLE tile_values (set_id text, code text, value float8, value_low float8, "
                "value_high float8, worst boolean, estimated_share float8, suppressed boolean, "
                "PRIMARY KEY (set_id, code))")
    with cur.copy("COPY tile_values FROM STDIN") as copy:
        for layer, picked in values.items():
            columns = [picked.codes, *(picked.columns[name] for name in
                                       ("value", "value_low", "value_high", "worst", "estimated_share",
                                        "suppressed"))]
            for row in zip(*columns, strict=True):
                code, value, low, high, worst, share, suppressed = (None if _isnull(v) else v for v in row)
                # as geo-cs's tiles: ``suppressed`` only where true
                copy.write_row([layer, code, value, low, high, None if worst is None else bool(worst), share,
                                True if suppressed else None])
    seconds["copy_values"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    cur.execute("CREATE INDEX tile_geoms_geom ON tile_geoms USING gist (geom)")
    cur.execute("CREATE INDEX tile_geoms_set_band ON tile_geoms (set_id, band)")
    cur.execute("CLUSTER tile_geoms USING tile_geoms_geom")
    cur.execute("CREATE INDEX tile_pieces_tile ON tile_pieces (set_id, z, x, y)")
    cur.execute("CLUSTER tile_pieces USING tile_pieces_tile")
    for table in ("tile_geoms", "tile_pieces", "tile_values"):
        cur.execute(f"VACUUM ANALYZE {table}")
    seconds["index_cluster_analyze"] = time.perf_counter() - t0
    for table in ("tile_geoms", "tile_pieces"):
        n, size = cur.execute(f"SELECT count(*), pg_total_relation_size('{table}') FROM {table}").fetchone()
        rows[table], sizes[table] = n, round(size / 1e6, 1)
    postgis = cur.execute("SELECT postgis_full_version()").fetchone()[0]
    return {"rows": rows, "table_mb": sizes, "postgis": postgis,
            "seconds": {k: round(v, 2) for k, v in seconds.items()}}


def _isnull(v: Any) -> bool:
    return v is None or (isinstance(v, float) and v != v) or str(v) == "<NA>"


# -- tile addresses -------------------------------------------------------------------------------

def pick_addresses(store: Any, seed: int, minzoom: dict[str, int]) -> list[dict[str, Any]]:
    from geo_cs.tiles import lonlat_to_tile

    rng = np.random.default_rng(seed)
    points = {}
    for layer in QUOTA:
        df = store.sql("""SELECT ST_X(p) AS x, ST_Y(p) AS y FROM (
                            SELECT ST_PointOnSurface(geom) AS p FROM tile_geoms
                            WHERE set_id = ? AND band = 4 ORDER BY code)""", [layer]).df()
        # Web Mercator -> lon/lat
        lon = np.degrees(df["x"].to_numpy() / 6378137.0)
        lat = np.degrees(2 * np.arctan(np.exp(df["y"].to_numpy() / 6378137.0)) - np.pi / 2)
        points[layer] = np.column_stack([lon, lat])
    out: list[dict[str, Any]] = []
    for layer, quota in QUOTA.items():
        carry = 0
        pts = points[layer]
        for z in ZOOMS:
            want = quota + carry
            chosen: dict[tuple[int, int], None] = {}
            for i in rng.permutation(len(pts)):
                if len(chosen) >= want:
                    break
                chosen.setdefault(lonlat_to_tile(float(pts[i, 0]), float(pts[i, 1]), z), None)
            carry = want - len(chosen)
            for x, y in sorted(chosen):
                out.append({"layer": layer, "z": z, "x": x, "y": y, "below_minzoom": z < minzoom[layer]})
    if len(out) != N_TILES:
        raise RuntimeError(f"picked {len(out)} tiles, expected {N_TILES}")
    order = rng.permutation(len(out))
    return [out[i] for i in order]


# -- timing ---------------------------------------------------------------------------------------

def pg_params(a: dict[str, Any], min_area: float = 0.0) -> dict[str, Any]:
    from geo_cs.tiles import BUFFER, EXTENT, zoom_band

    return {"layer": a["layer"], "z": a["z"], "x": a["x"], "y": a["y"], "band": zoom_band(a["z"]).band,
            "margin": BUFFER / EXTENT, "min_area": min_area}


def pg_tile(cur: Any, sql: str, a: dict[str, Any], min_area: float = 0.0) -> bytes:
    row = cur.execute(sql, pg_params(a, min_area)).fetchone()
    return bytes(row[0]) if row and row[0] is not None else b""


#: The sides timed: geo-cs's two paths and PostGIS given the same input as each (``PAIRS``).
SIDES = {
    "geo": "geo-cs, tiles prepared (geo-cs tiles prepare): tile_features (every tile's geometry encoded "
           "once) loaded in memory by the layer's TileIndex; the tile written with the period's values "
           "(render_tile(..., index=...)), no SQL",
    "pgp": "PostGIS given geo-cs's prepared pieces: tile_pieces (each band's areas cut to every tile, in "
           "tile units), btree on (set_id, z, x, y), clustered; ST_AsMVT(pieces, code, name, values) LEFT "
           "JOIN the values",
    "fly": "geo-cs, the default path (a layer not prepared: after any boundary ingest, and the demo): "
           "tile_geoms (the simplified band geometries) held by the layer's TileIndex; the tile clipped "
           "(GEOS clip_by_rect), moved to tile units and encoded in memory (render_tile(..., index=...) "
           "of a layer not prepared; here prepared=False), no SQL",
    "pg": "PostGIS given the same simplified band geometries: tile_geoms, GiST on geom (clustered), btree on "
          "(set_id, band); ST_AsMVT(ST_AsMVTGeom(geom, ST_TileEnvelope(z, x, y), 4096, 64, true), code, "
          "name, values) over geom && the envelope with its 64-unit margin, LEFT JOIN the values",
}
#: headline: prepared against PostGIS given the same pieces; then the default path against
#: PostGIS given the same band geometries
PAIRS = {"prepared": ("geo", "pgp"), "default": ("fly", "pg")}


def time_tiles(store: Any, pg: Any, addresses: list[dict[str, Any]], values: dict[str, Any], repeat: int,
               console: Console, alternating: int = 2) -> dict[str, Any]:
    from geo_cs import tiles

    # as the API does: a layer's tile index (where its areas are, its prepared tiles' encoded
    # geometry) is built once per data version
    load_seconds: dict[str, dict[str, float]] = {}
    index = {}
    for layer in sorted({a["layer"] for a in addresses}):
        t0 = time.perf_counter()
        index[layer] = tiles.tile_index(store, layer)
        if index[layer].encoded is not None:
            index[layer].encoded.load(store)  # every zoom (a server loads each on its first tile)
        prepared_s = time.perf_counter() - t0
        # the default path's geometry: what the index of a layer not prepared loads when built
        t0 = time.perf_counter()
        index[layer].render(store, 14, 0, 0)
        load_seconds[layer] = {"prepared_index_s": round(prepared_s, 3),
                               "band_geometry_s": round(time.perf_counter() - t0, 3),
                               "index_mb_with_both": round(index[layer].nbytes / 1e6, 1)}
    prepared = {layer: i.prepared for layer, i in index.items()}
    encoded = {layer: i.encoded is not None for layer, i in index.items()}
    if not all(encoded.values()):
        raise RuntimeError(f"the GB store's layers are not all prepared and encoded ({encoded}): rebuild it "
                           "(delete bench/.cache/gb-*)")

    cur = pg.cursor()
    n = len(addresses)

    def render(a: dict[str, Any], on_the_fly: bool, report: dict | None = None) -> bytes:
        return tiles.render_tile(store, a["layer"], a["z"], a["x"], a["y"], values[a["layer"]],
                                 index=index[a["layer"]], report=report,
                                 **({"prepared": False} if on_the_fly else {}))

    sql = {"pgp": _PG_PIECES, "pg": _PG_TILE}
    sides: dict[str, Callable[[dict[str, Any]], Any]] = {
        "geo": lambda a: render(a, False), "pgp": lambda a: cur.execute(_PG_PIECES, pg_params(a)).fetchone(),
        "fly": lambda a: render(a, True), "pg": lambda a: cur.execute(_PG_TILE, pg_params(a)).fetchone(),
    }
    # untimed warm-up: sizes, geo-cs's budget (traced), PostGIS sizes with and without its filter
    out_bytes = {side: [b""] * n for side in sides}
    matched_bytes = {side: [b""] * n for side in ("pgp", "pg")}
    budget: dict[str, list[dict[str, Any] | None]] = {"geo": [None] * n, "fly": [None] * n}
    with console.status("warm-up pass (untimed): geo-cs traced, PostGIS"):
        for i, a in enumerate(addresses):
            for ours, theirs in PAIRS.values():
                report: dict[str, Any] = {}
                out_bytes[ours][i] = render(a, ours == "fly", report)
                out_bytes[theirs][i] = pg_tile(cur, sql[theirs], a)
                if report.get("renders", 1) > 1:
                    budget[ours][i] = {"renders": report["renders"], "min_area_m2": float(report["min_area"])}
                    matched_bytes[theirs][i] = pg_tile(cur, sql[theirs], a, budget[ours][i]["min_area_m2"])
                else:
                    matched_bytes[theirs][i] = out_bytes[theirs][i]
    perf = time.perf_counter
    runs: dict[str, list[list[float]]] = {side: [[] for _ in range(n)] for side in sides}
    matched_runs: dict[str, list[list[float]]] = {side: [[] for _ in range(n)] for side in ("pgp", "pg")}
    budget_of = {theirs: budget[ours] for ours, theirs in PAIRS.values()}
    # Each side renders the whole list in a block, the order of the blocks reversed every pass
    # (geo-cs, PostGIS, ... then ..., PostGIS, geo-cs) against drift. Blocks, not tile-by-tile
    # alternation: right after the other process's query, a side pays for the caches that query
    # evicted, and not evenly (see the module's docstring); in a block each side renders as a
    # tile server does a map's burst of requests. The alternating figures are still measured
    # and reported (``--alternating``).
    names = list(sides)
    for r in range(repeat):
        for side in (names if r % 2 == 0 else names[::-1]):
            with console.status(f"timed pass {r + 1}/{repeat}: {side}, {n} tiles in a block"):
                run, out = sides[side], runs[side]
                for i, a in enumerate(addresses):
                    t0 = perf()
                    run(a)
                    out[i].append(perf() - t0)
                    if side in budget_of and budget_of[side][i] is not None:
                        params_m = pg_params(a, budget_of[side][i]["min_area_m2"])
                        t0 = perf()
                        cur.execute(sql[side], params_m).fetchone()
                        matched_runs[side][i].append(perf() - t0)
    alt: dict[str, list[list[float]]] = {side: [[] for _ in range(n)] for side in sides}
    for r in range(alternating):
        with console.status(f"alternating pass {r + 1}/{alternating}: geo-cs and PostGIS tile by tile"):
            for i, a in enumerate(addresses):
                for pair in PAIRS.values():
                    for side in (pair if (i + r) % 2 == 0 else pair[::-1]):
                        t0 = perf()
                        sides[side](a)
                        alt[side][i].append(perf() - t0)

    def medians(per_tile: list[list[float]]) -> list[float]:
        return [statistics.median(r) * 1000 for r in per_tile]

    ms = {side: medians(runs[side]) for side in sides}
    # PostGIS as it is where geo-cs needed no budget
    matched_ms = {side: [statistics.median(matched_runs[side][i]) * 1000 if budget_of[side][i] is not None
                         else ms[side][i] for i in range(n)] for side in ("pgp", "pg")}
    return {
        "ms": ms, "matched_ms": matched_ms,
        "bytes": out_bytes, "matched_bytes": matched_bytes, "budget": budget,
        "prepared": prepared, "encoded": encoded, "index_load_seconds": load_seconds,
        "alternating": ({"passes": alternating, "ms": {side: medians(alt[side]) for side in sides}}
                        if alternating else None),
    }


def verify(addresses: list[dict[str, Any]], timed: dict[str, Any], every: int, limit: int) -> dict[str, Any]:
    """Decode a sample of tiles and compare: each geo-cs side against PostGIS given the same input
    (with geo-cs's area filter on its budget tiles): feature counts and codes, properties for
    information; and geo-cs's default path against its prepared tiles: the same features with
    the same properties (geometry: the default path leaves out areas whose rings all collapse
    to the tile's grid, which the prepared tiles keep, empty)."""
    import shapely.geometry

    def drawn(features: dict[str, Any]) -> dict[str, Any]:
        """The features with an area: a piece whose rings collapse to the grid is written empty
        by PostGIS, and left out by geo-cs."""
        return {c: v for c, v in features.items()
                if v[1]["coordinates"] and shapely.geometry.shape(v[1]).area != 0}

    checks: dict[str, Any] = {}
    sample = list(range(0, len(addresses), every))[:limit]
    for name, (ours, theirs) in PAIRS.items():
        mismatches, prop_diffs, examples, empty = [], 0, [], 0
        for i in sample:
            a = addresses[i]
            gf = drawn(decoded(timed["bytes"][ours][i], a["layer"]))
            every_pf = decoded(timed["matched_bytes"][theirs][i], a["layer"])
            pf = drawn(every_pf)
            empty += len(every_pf) - len(pf)
            if set(gf) != set(pf):
                mismatches.append({**a, "geo_cs_features": len(gf), "postgis_features": len(pf),
                                   "only_geo_cs": sorted(set(gf) - set(pf))[:10],
                                   "only_postgis": sorted(set(pf) - set(gf))[:10]})
            for code, (props, _) in gf.items():
                if code in pf and _props_differ(props, pf[code][0]):
                    prop_diffs += 1
                    if len(examples) < 5:
                        examples.append({"tile": f"{a['layer']}/{a['z']}/{a['x']}/{a['y']}",
                                         "geo_cs": props, "postgis": pf[code][0]})
        checks[name] = {"tiles_checked": len(sample), "feature_count_or_code_mismatches": mismatches,
                        "postgis_features_with_no_area": empty,
                        "features_with_different_properties": prop_diffs,
                        "property_difference_examples": examples}
    # the default path against the prepared tiles: both are geo-cs's encoder, the pieces cut in
    # tile units or the areas in Web Mercator
    differ, same_bytes = [], 0
    for i in sample:
        a = addresses[i]
        same_bytes += timed["bytes"]["fly"][i] == timed["bytes"]["geo"][i]
        fly = decoded(timed["bytes"]["fly"][i], a["layer"])
        geo = decoded(timed["bytes"]["geo"][i], a["layer"])
        if set(fly) != set(geo) or any(fly[c][0] != geo[c][0] for c in fly):
            differ.append({**a, "default_features": len(fly), "prepared_features": len(geo),
                           "codes_in_one_only": sorted(set(fly) ^ set(geo))[:5]})
    checks["default_vs_prepared"] = {"tiles_checked": len(sample), "differing": len(differ),
                                     "same_bytes": same_bytes, "examples": differ[:10]}
    return checks


def decoded(tile: bytes, layer: str) -> dict[str, Any]:
    """A tile's features by code: properties and geometry (for order-insensitive comparison)."""
    import mapbox_vector_tile

    features = mapbox_vector_tile.decode(tile).get(layer, {}).get("features", []) if tile else []
    return {f["properties"].get("code"): (f["properties"], f["geometry"]) for f in features}


def content_diff(bodies: dict[int, bytes], rendered: list[bytes], addresses: list[dict[str, Any]],
                 n_bytes: int) -> dict[str, Any]:
    """HTTP bodies whose bytes differ from the in-process render: do they differ in content?"""
    examples = []
    for i, body in bodies.items():
        layer = addresses[i]["layer"]
        http, mine = decoded(body, layer), decoded(rendered[i], layer)
        if http != mine:
            codes = sorted(set(http) ^ set(mine))
            props = sorted(c for c in set(http) & set(mine) if http[c][0] != mine[c][0])
            geoms = sorted(c for c in set(http) & set(mine) if http[c][1] != mine[c][1])
            examples.append({"tile": f"{layer}/{addresses[i]['z']}/{addresses[i]['x']}/{addresses[i]['y']}",
                             "features": [len(http), len(mine)], "codes_in_one_only": codes[:5],
                             "properties_differ": props[:5], "geometries_differ": geoms[:5]})
    return {"bytes": n_bytes, "checked_decoded": len(bodies), "content": len(examples),
            "examples": examples[:10]}


def _props_differ(p: dict[str, Any], q: dict[str, Any]) -> bool:
    keys = set(p) | set(q)
    for k in keys:
        a, b = p.get(k), q.get(k)
        if isinstance(a, float) or isinstance(b, float):
            if a is None or b is None or abs(float(a) - float(b)) > 1e-9:
                return True
        elif a != b:
            return True
    return False


# -- HTTP -----------------------------------------------------------------------------------------

_WRK_LUA = """
local paths = {%s}
local i = 0
wrk.headers["Accept-Encoding"] = "gzip"
request = function()
  i = i %% #paths + 1
  return wrk.format("GET", paths[i])
end
done = function(summary, latency, requests)
  io.write(string.format('BENCH_JSON {"requests": %%d, "duration_us": %%d, "bytes": %%d, ' ..
    '"errors": {"connect": %%d, "read": %%d, "write": %%d, "status": %%d, "timeout": %%d}, ' ..
    '"latency_us": {"p50": %%d, "p90": %%d, "p99": %%d, "max": %%d, "mean": %%.1f}}\\n',
    summary.requests, summary.duration, summary.bytes, summary.errors.connect, summary.errors.read,
    summary.errors.write, summary.errors.status, summary.errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
"""


def tile_url(a: dict[str, Any], periods: dict[str, str]) -> str:
    indicator, denominator = MEASURES[a["layer"]]
    query = {"indicator": indicator, "denominator": denominator, "period": periods[a["layer"]]}
    return (f"/tiles/{a['layer']}/{a['z']}/{a['x']}/{a['y']}.mvt?"
            + urlencode({k: v for k, v in query.items() if v}))


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_http(db: Path, addresses: list[dict[str, Any]], periods: dict[str, str], geo_bytes: list[bytes],
             args: argparse.Namespace, workdir: Path, console: Console) -> dict[str, Any]:
    import httpx

    server = h.start_geo_cs(db, workdir)
    base = server.base
    try:
        server.wait_ready("/health", timeout=90)
        with httpx.Client(base_url=base, timeout=60) as client:
            urls = [tile_url(a, periods) for a in addresses]
            warm_ms, statuses, gz_sizes, wrong = [], {}, [], 0
            differing: dict[int, bytes] = {}  # the first 60 are decoded and compared
            with console.status("HTTP: warming the tile cache (500 uncached requests)"):
                for i, url in enumerate(urls):
                    t0 = time.perf_counter()
                    r = client.get(url, headers={"Accept-Encoding": "gzip"})
                    warm_ms.append((time.perf_counter() - t0) * 1000)
                    statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
                    if r.status_code not in (200, 204):
                        raise RuntimeError(f"{url}: HTTP {r.status_code} {r.text[:300]}")
                    gz_sizes.append(int(r.headers.get("content-length", 0)))
                    # httpx decodes gzip: the body must hold the tile rendered in-process (its bytes
                    # may differ: DuckDB's parallel join emits features and values in any order)
                    if r.content != geo_bytes[i]:
                        wrong += 1
                        if len(differing) < 60:
                            differing[i] = r.content
            warm_rss = h.proc_status_mb("VmRSS", server.proc.pid)
            # a second pass, sequential, one connection: cached latency without concurrency
            t0 = time.perf_counter()
            for url in urls:
                client.get(url, headers={"Accept-Encoding": "gzip"})
            sequential_s = time.perf_counter() - t0
        out: dict[str, Any] = {
            "server": " ".join(server.cmd[1:]), "uvicorn_extras": _uvicorn_extras(),
            "warm_pass_ms": {"median": round(statistics.median(warm_ms), 2),
                             "p90": round(float(np.percentile(warm_ms, 90)), 2),
                             "max": round(max(warm_ms), 2), "total_s": round(sum(warm_ms) / 1000, 2)},
            "statuses": {str(k): v for k, v in sorted(statuses.items())},
            "bodies_differing_from_in_process_render": content_diff(differing, geo_bytes, addresses, wrong),
            "gzip_bytes": {"median": int(statistics.median(gz_sizes)), "max": max(gz_sizes),
                           "mean": round(statistics.mean(gz_sizes))},
            "sequential_cached_one_connection": {"tiles_per_s": round(len(urls) / sequential_s, 1),
                                                 "mean_ms": round(sequential_s / len(urls) * 1000, 3),
                                                 "client": "httpx.Client (sync; client-bound, information)"},
            "server_rss_mb_after_warm": round(warm_rss, 1),
        }
        wrk = shutil.which("wrk")
        if wrk is None:
            out["load"] = None
            out["note"] = "wrk not installed (apt-get install wrk): the throughput test was skipped"
            return out
        lua = workdir / "tiles.lua"
        lua.write_text(_WRK_LUA % ", ".join(json.dumps(u) for u in urls))
        profiler = None
        if args.profile:
            profiler = start_profiler(server.proc.pid, args.duration, workdir, console)
        before_children = resource.getrusage(resource.RUSAGE_CHILDREN)
        server_cpu0 = cpu_seconds(server.proc.pid)
        t0 = time.perf_counter()
        with console.status(f"HTTP: wrk, {args.connections} connections, {args.duration:g} s"):
            done = subprocess.run([wrk, "-t", "1", "-c", str(args.connections), "-d", f"{args.duration:g}s",
                                   "--timeout", "10s", "-s", str(lua), base], capture_output=True, text=True)
        wall = time.perf_counter() - t0
        server_cpu = cpu_seconds(server.proc.pid) - server_cpu0
        after_children = resource.getrusage(resource.RUSAGE_CHILDREN)
        wrk_cpu = (after_children.ru_utime + after_children.ru_stime
                   - before_children.ru_utime - before_children.ru_stime)
        match = re.search(r"BENCH_JSON (\{.*\})", done.stdout)
        if done.returncode != 0 or not match:
            raise RuntimeError(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        res = json.loads(match.group(1))
        seconds = res["duration_us"] / 1e6
        out["load"] = {
            "client": f"wrk 1 thread, {args.connections} keep-alive connections, Lua script cycling the "
                      f"{len(urls)} URLs, Accept-Encoding: gzip",
            "duration_s": round(seconds, 2), "requests": res["requests"],
            "tiles_per_s": round(res["requests"] / seconds, 1),
            "latency_ms": {k: round(v / 1000, 3) for k, v in res["latency_us"].items()},
            "errors": res["errors"], "mb_per_s": round(res["bytes"] / seconds / 1e6, 2),
            "server_cpu_share_of_one_core": round(server_cpu / wall, 2),
            "wrk_cpu_share_of_one_core": round(wrk_cpu / wall, 2),
            "wrk_stdout": done.stdout.strip().splitlines()[:12],
        }
        out["server_rss_mb_after_load"] = round(h.proc_status_mb("VmRSS", server.proc.pid), 1)
        out["server_peak_rss_mb"] = round(h.proc_status_mb("VmHWM", server.proc.pid), 1)
        if profiler is not None:
            out["profile"] = finish_profiler(profiler, args.out)
        return out
    finally:
        server.stop()  # the uvicorn started above


def _uvicorn_extras() -> dict[str, str]:
    return h.package_versions("uvicorn", "httptools", "uvloop", "h11", "fastapi", "starlette")


def start_profiler(pid: int, duration: float, workdir: Path, console: Console) -> Any:
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        console.print("[yellow]--profile: py-spy not installed (pip install py-spy); not profiling[/]")
        return None
    out = workdir / "profile.txt"
    proc = subprocess.Popen([spy, "record", "--pid", str(pid), "--duration", str(max(1, int(duration) - 2)),
                             "--format", "raw", "--rate", "200", "--nonblocking", "--threads",
                             "--output", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return proc, out


#: What a cached request spends its time on: (label, substring of a py-spy frame). A sample goes
#: to the category of its innermost matching frame (exclusive shares; "other": asyncio and the rest).
PROFILE_CATEGORIES = (
    ("socket write (kernel, loopback TCP)", "_SelectorSocketTransport.write"),
    ("socket read", "_SelectorSocketTransport._read_ready"),
    ("event loop select/epoll", "select (selectors.py"),
    ("h11 (HTTP parsing, serialising)", "(h11/"),
    ("rendering (geo_cs/tiles.py)", "(geo_cs/tiles.py"),
    ("DuckDB/store (geo_cs/store.py)", "(geo_cs/store.py"),
    ("tile endpoint (api/routers/tiles.py)", "(api/routers/tiles.py"),
    ("api/deps.py", "(api/deps.py"),
    ("thread pool hand-off (anyio)", "(anyio/"),
    ("FastAPI (routing, parameters, validation)", "(fastapi/"),
    ("pydantic", "(pydantic"),
    ("Starlette (routing, middleware, Response)", "(starlette/"),
    ("uvicorn h11 protocol", "(uvicorn/"),
)


def finish_profiler(profiler: tuple[Any, Path], out: Path) -> dict[str, Any]:
    """Summarise py-spy's raw (collapsed) stacks: per thread, per category, hottest frames."""
    proc, path = profiler
    proc.wait(60)
    if not path.exists() or not path.read_text().strip():
        return {"error": "py-spy wrote nothing"}
    own: dict[str, int] = {}
    inclusive: dict[str, int] = {}
    threads: dict[str, int] = {}
    categories = dict.fromkeys([*(label for label, _ in PROFILE_CATEGORIES), "other"], 0)
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        thread, *frames = stack.split(";")
        if not frames:
            continue
        total += n
        threads[thread] = threads.get(thread, 0) + n
        own[frames[-1]] = own.get(frames[-1], 0) + n
        for f in set(frames):
            inclusive[f] = inclusive.get(f, 0) + n
        categories[next((label for f in reversed(frames) for label, needle in PROFILE_CATEGORIES
                         if needle in f), "other")] += n
    keep = out.with_name(out.stem + "_http_profile.txt")
    shutil.copy(path, keep)

    def share(d: dict[str, int], k: int) -> list[list[Any]]:
        return [[f, round(c / total, 3)] for f, c in sorted(d.items(), key=lambda kv: -kv[1])[:k]]

    return {"samples": total, "raw": str(keep), "threads": dict(share(threads, 10)),
            "exclusive_by_category": {k: round(v / total, 3) for k, v in categories.items()},
            "top_self": share(own, 15), "top_inclusive": share(inclusive, 40)}


# -- report ---------------------------------------------------------------------------------------

def stats_ms(values: list[float]) -> dict[str, float]:
    a = np.asarray(values)
    return {"median": round(float(np.median(a)), 3), "p90": round(float(np.percentile(a, 90)), 3),
            "max": round(float(a.max()), 3), "mean": round(float(a.mean()), 3)}


def versions() -> dict[str, str]:
    import duckdb
    import shapely

    return {"python": platform.python_version(), "geo_cs_commit": h.git_commit(),
            "geos": shapely.geos_version_string, "duckdb": duckdb.__version__,
            **h.package_versions("duckdb-extension-spatial", "psycopg", "psycopg-binary",
                               "mapbox-vector-tile", "pandas", "numpy", "pyarrow")}


def verdict(ok: bool | None) -> str:
    return "[dim]n/a[/]" if ok is None else "[green]PASS[/]" if ok else "[red]FAIL[/]"


def report(console: Console, addresses: list[dict[str, Any]], timed: dict[str, Any], checks: dict[str, Any],
           http: dict[str, Any] | None, args: argparse.Namespace) -> dict[str, Any]:
    n = len(addresses)
    ms, matched = timed["ms"], timed["matched_ms"]
    sizes = {side: [len(b) for b in tiles] for side, tiles in timed["bytes"].items()}
    # what a client receives: the tiles gzipped as the service serves them (level 6)
    gzipped = {side: [len(gzip.compress(b, compresslevel=6)) if b else 0 for b in tiles]
               for side, tiles in timed["bytes"].items()}
    groups = [(f"z{z}" + (" *" if z < 7 else ""), [i for i, a in enumerate(addresses) if a["z"] == z])
              for z in ZOOMS]
    groups += [(layer, [i for i, a in enumerate(addresses) if a["layer"] == layer]) for layer in QUOTA]
    groups += [("all", list(range(n)))]
    titles = {"prepared": "Headline: prepared tiles. geo-cs given its prepared tiles (tile_features, in "
                          "memory) against PostGIS given the same prepared pieces (tile_pieces)",
              "default": "The default path (a layer not prepared: after any boundary ingest, and the "
                         "demo). geo-cs given the simplified band geometries (tile_geoms, clipped in "
                         "memory) against PostGIS given the same tile_geoms (ST_AsMVTGeom)"}
    out: dict[str, Any] = {}
    for pair, (ours, theirs) in PAIRS.items():
        table = Table(title=f"{titles[pair]}: uncached render, {n} tiles, each side in blocks (per tile the "
                            f"median of {args.repeat} pass(es)); ms and KB")
        for col in ("zoom", "tiles", "geo-cs med", "PostGIS med", "ratio", "geo-cs p90", "PostGIS p90",
                    "geo-cs max", "PostGIS max", "geo KB med/max", "PG KB med/max", "budget"):
            table.add_column(col, justify="left" if col == "zoom" else "right")
        per_zoom = {}
        for label, idx in groups:
            if not idx:
                continue
            g, p = [ms[ours][i] for i in idx], [ms[theirs][i] for i in idx]
            gs, ps = [sizes[ours][i] / 1000 for i in idx], [sizes[theirs][i] / 1000 for i in idx]
            n_budget = sum(timed["budget"][ours][i] is not None for i in idx)
            row = {"tiles": len(idx), "geo_cs_ms": stats_ms(g), "postgis_ms": stats_ms(p),
                   "ratio_of_medians": round(statistics.median(g) / statistics.median(p), 3),
                   "geo_cs_kb": {"median": round(statistics.median(gs), 1), "max": round(max(gs), 1)},
                   "postgis_kb": {"median": round(statistics.median(ps), 1), "max": round(max(ps), 1)},
                   "budget_tiles": n_budget}
            per_zoom[label] = row
            table.add_row(label, str(len(idx)), f"{row['geo_cs_ms']['median']:.2f}",
                          f"{row['postgis_ms']['median']:.2f}",
                          f"{row['ratio_of_medians']:.2f}", f"{row['geo_cs_ms']['p90']:.2f}",
                          f"{row['postgis_ms']['p90']:.2f}", f"{row['geo_cs_ms']['max']:.1f}",
                          f"{row['postgis_ms']['max']:.1f}",
                          f"{row['geo_cs_kb']['median']:.0f}/{row['geo_cs_kb']['max']:.0f}",
                          f"{row['postgis_kb']['median']:.0f}/{row['postgis_kb']['max']:.0f}",
                          str(n_budget), style="bold" if label == "all" else None)
            if label in (f"z{max(ZOOMS)}", list(QUOTA)[-1]):
                table.add_section()
        console.print(table)
        console.print(f"geo-cs was given: {SIDES[ours]}.\nPostGIS was given: {SIDES[theirs]}.\n"
                      "Both: the period's values rounded once to 4 decimals (geo-cs: tiles.tile_values, "
                      "cached per period as the API does; PostGIS: a table of those values, primary key "
                      "(set_id, code)). * below the layers' TileJSON minzoom (7); budget = tiles geo-cs "
                      f"re-encoded to fit {tiles_budget_kb()} KB; ratio = geo-cs median / PostGIS median")
        zoom_ratios = {label: row["ratio_of_medians"] for label, row in per_zoom.items()
                       if label.startswith("z")}
        every_zoom_ok = all(r <= 1.0 for r in zoom_ratios.values())
        ratio = statistics.median(ms[ours]) / statistics.median(ms[theirs])
        ratio_m = statistics.median(ms[ours]) / statistics.median(matched[theirs])
        console.print("per zoom (target <= 1 at every zoom): "
                      + ", ".join(f"{k.rstrip(' *')} {v:.2f}" for k, v in zoom_ratios.items())
                      + f": {verdict(every_zoom_ok)}; overall {ratio:.2f}x (target < 1): "
                      f"{verdict(ratio < 1)}; against PostGIS with geo-cs's area filter on the budget "
                      f"tiles: {ratio_m:.2f}x")
        budget_idx = [i for i in range(n) if timed["budget"][ours][i] is not None]
        if budget_idx:
            console.print(f"budget: {len(budget_idx)} tiles re-encoded by geo-cs (renders: "
                          f"{sorted(timed['budget'][ours][i]['renders'] for i in budget_idx)}); there geo-cs "
                          f"median {statistics.median(ms[ours][i] for i in budget_idx):.1f} ms, PostGIS full "
                          f"{statistics.median(ms[theirs][i] for i in budget_idx):.1f} ms, PostGIS with the "
                          f"same min area {statistics.median(matched[theirs][i] for i in budget_idx):.1f} ms")
        alt = timed["alternating"]
        alternating = None
        if alt:
            alt_geo, alt_pg = statistics.median(alt["ms"][ours]), statistics.median(alt["ms"][theirs])
            alternating = {"passes": alt["passes"], "geo_cs_ms": stats_ms(alt["ms"][ours]),
                           "postgis_ms": stats_ms(alt["ms"][theirs]),
                           "ratio_of_medians": round(alt_geo / alt_pg, 3)}
            console.print(f"for information, alternating tile by tile ({alt['passes']} pass(es); each side "
                          f"right after the other's query): geo-cs median {alt_geo:.2f} ms vs PostGIS "
                          f"{alt_pg:.2f} ms -> {alt_geo / alt_pg:.2f}x")
        c = checks[pair]
        mm = c["feature_count_or_code_mismatches"]
        console.print(f"decode check ({c['tiles_checked']} tiles, mapbox_vector_tile, PostGIS with the same "
                      f"area filter; features with an area, PostGIS's {c['postgis_features_with_no_area']} "
                      f"collapsed to the grid aside): {len(mm)} with different feature counts or codes"
                      + (": " + "; ".join(f"{m['layer']}/{m['z']}/{m['x']}/{m['y']} geo-cs "
                                          f"{m['geo_cs_features']} vs PostGIS {m['postgis_features']}"
                                          for m in mm[:5]) if mm else "")
                      + f"; features with different properties: {c['features_with_different_properties']}")
        over = [i for i in range(n) if gzipped[ours][i] > TARGET_MAX_GZIP_BYTES]
        out[pair] = {
            "given": {"geo_cs": SIDES[ours], "postgis": SIDES[theirs]},
            "ratio_of_medians": round(ratio, 3),
            "ratio_of_medians_vs_postgis_matched": round(ratio_m, 3),
            "per_group": per_zoom,
            "alternating_tile_by_tile": alternating,
            "budget_tiles": [{**addresses[i], **timed["budget"][ours][i], "geo_cs_bytes": sizes[ours][i],
                              "postgis_bytes": sizes[theirs][i],
                              "postgis_matched_bytes": len(timed["matched_bytes"][theirs][i]),
                              "geo_cs_ms": round(ms[ours][i], 3), "postgis_ms": round(ms[theirs][i], 3),
                              "postgis_matched_ms": round(matched[theirs][i], 3)} for i in budget_idx],
            "sizes": {"geo_cs_max_bytes": max(sizes[ours]), "postgis_max_bytes": max(sizes[theirs]),
                      "geo_cs_max_gzip_bytes": max(gzipped[ours]),
                      "postgis_max_gzip_bytes": max(gzipped[theirs]),
                      "geo_cs_over_500kb_gzipped": len(over),
                      "postgis_over_500kb_gzipped": sum(s > TARGET_MAX_GZIP_BYTES for s in gzipped[theirs]),
                      "geo_cs_empty": sizes[ours].count(0), "postgis_empty": sizes[theirs].count(0)},
            "slowest_geo_cs": [{**addresses[i], "geo_cs_ms": round(ms[ours][i], 2),
                                "postgis_ms": round(ms[theirs][i], 2), "geo_cs_bytes": sizes[ours][i]}
                               for i in np.argsort(ms[ours])[::-1][:10]],
            "pass": {"every_zoom_not_slower": every_zoom_ok, "ahead_overall": ratio < 1.0,
                     "tile_size": not over},
        }
    d = checks["default_vs_prepared"]
    console.print(f"the default path against the prepared tiles ({d['tiles_checked']} tiles decoded): "
                  f"{d['same_bytes']} the same bytes, {d['differing']} with other features or properties"
                  + "".join(f"; {e['layer']}/{e['z']}/{e['x']}/{e['y']}: {e['default_features']} vs "
                            f"{e['prepared_features']}" for e in d["examples"][:3]))
    console.print("index (per layer): " + "; ".join(
        f"{layer} prepared tiles loaded in {s['prepared_index_s']:.1f} s, band geometries (the default path) "
        f"in {s['band_geometry_s']:.1f} s, {s['index_mb_with_both']:.0f} MB with both"
        for layer, s in timed["index_load_seconds"].items()))
    speed_ok = out["prepared"]["ratio_of_medians"] <= TARGET_RATIO

    http_ok = None
    if http is not None:
        http_ok = report_http(console, http, args, n)

    return {
        "ratio_of_medians": out["prepared"]["ratio_of_medians"],
        "prepared": out["prepared"],
        "default_path": out["default"],
        "layers_prepared": timed["prepared"],
        "layers_encoded": timed["encoded"],
        "index_load_seconds": timed["index_load_seconds"],
        "pass": {"render_ratio": speed_ok,
                 "prepared_every_zoom_not_slower": out["prepared"]["pass"]["every_zoom_not_slower"],
                 "prepared_ahead_overall": out["prepared"]["pass"]["ahead_overall"],
                 "default_path_every_zoom_not_slower": out["default"]["pass"]["every_zoom_not_slower"],
                 "default_path_ahead_overall": out["default"]["pass"]["ahead_overall"],
                 "tile_size": out["prepared"]["pass"]["tile_size"] and out["default"]["pass"]["tile_size"],
                 "http_throughput": http_ok},
    }


def tiles_budget_kb() -> int:
    from geo_cs.tiles import MAX_TILE_BYTES

    return MAX_TILE_BYTES // 1000


def report_http(console: Console, http: dict[str, Any], args: argparse.Namespace, n: int) -> bool | None:
    """Print the cached HTTP figures; whether the throughput target is met (None: not measured)."""
    http_ok = None
    load = http.get("load")
    t = Table(title="Cached tiles over HTTP (uvicorn, 1 worker)")
    for col in ("test", "tiles/s", "p50 ms", "p99 ms", "max ms", "server CPU", "client CPU", "RSS MB"):
        t.add_column(col, justify="left" if col == "test" else "right")
    w = http["warm_pass_ms"]
    t.add_row("warm-up, uncached, 1 connection (httpx)", f"{1000 / w['median']:.0f}*",
              f"{w['median']:.1f}",
              "", f"{w['max']:.0f}", "", "", f"{http['server_rss_mb_after_warm']:.0f}")
    seq = http["sequential_cached_one_connection"]
    t.add_row("cached, 1 connection (httpx, sequential)", f"{seq['tiles_per_s']:.0f}",
              f"{seq['mean_ms']:.2f}†",
              "", "", "", "", "")
    if load:
        lat = load["latency_ms"]
        t.add_row(f"cached, wrk {args.connections} connections, {load['duration_s']:.0f} s",
                  f"{load['tiles_per_s']:.0f}", f"{lat['p50']:.2f}", f"{lat['p99']:.2f}",
                  f"{lat['max']:.0f}", f"{load['server_cpu_share_of_one_core']:.0%}",
                  f"{load['wrk_cpu_share_of_one_core']:.0%}",
                  f"{http['server_rss_mb_after_load']:.0f} (peak {http['server_peak_rss_mb']:.0f})")
        http_ok = load["tiles_per_s"] >= TARGET_TILES_PER_S
    console.print(t)
    console.print("* 1000 / median; † mean. CPU = share of one core during the wrk run "
                  f"(server process, all threads; wrk). {http['uvicorn_extras']}")
    if load:
        errs = {k: v for k, v in load["errors"].items() if v}
        console.print(f"throughput: {load['tiles_per_s']:.0f} tiles/s "
                      f"(target >= {TARGET_TILES_PER_S:.0f}): "
                      f"{verdict(http_ok)}; errors {errs or 'none'}; HTTP statuses in warm-up "
                      f"{http['statuses']}")
    else:
        console.print(f"[yellow]{http.get('note')}[/]")
    d = http["bodies_differing_from_in_process_render"]
    console.print(f"HTTP bodies vs the in-process render: {d['bytes']} of {n} differ in bytes; of "
                  f"{d['checked_decoded']} of those decoded, {d['content']} differ in content "
                  "(features, properties, geometry)" + "".join(
                      f"; {e['tile']}: {e['features'][0]} features over HTTP, "
                      f"{e['features'][1]} in-process" for e in d["examples"][:3]))
    prof = http.get("profile")
    if prof and "exclusive_by_category" in prof:
        console.print(f"server profile during the load (py-spy, {prof['samples']} samples by innermost "
                      "matching frame): " + "; ".join(
                          f"{k} {v:.0%}" for k, v in sorted(prof["exclusive_by_category"].items(),
                                                            key=lambda kv: -kv[1]) if v >= 0.01))
        console.print("  hottest own frames: "
                      + "; ".join(f"{f} {v:.0%}" for f, v in prof["top_self"][:5]))
    return http_ok


# -- main -----------------------------------------------------------------------------------------

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=4,
                        help="timed passes over the 500 tiles per side, each side in a block (default 4)")
    parser.add_argument("--alternating", type=int, default=2,
                        help="further passes alternating geo-cs and PostGIS tile by tile, reported for "
                             "information (default 2; 0 leaves them out)")
    parser.add_argument("--duration", type=float, default=15.0, help="seconds of wrk load (default 15)")
    parser.add_argument("--connections", type=int, default=16, help="wrk keep-alive connections (default 16)")
    parser.add_argument("--skip-http", action="store_true", help="skip the cached HTTP throughput test")
    parser.add_argument("--tiles", type=int, default=N_TILES,
                        help=f"time only the first N of the {N_TILES} tiles (a quick check; default all)")
    parser.add_argument("--profile", action="store_true", help="py-spy the server during the wrk run")
    parser.add_argument("--seed", type=int, default=20240601, help="RNG seed of the tile addresses")
    parser.add_argument("--verify", type=int, default=100, help="tiles decoded and compared (default 100)")
    parser.add_argument("--pg-bin", type=Path, default=None,
                        help="PostgreSQL bin folder (default: the newest "
                             "/usr/lib/postgresql/*/bin with PostGIS)")
    h.add_out(parser, DEFAULT_OUT)
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if args.alternating < 0:
        parser.error("--alternating must be 0 or more")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    console = Console(width=None if sys.stdout.isatty() else 132)
    if shared_missing(console):
        return 2
    found = find_postgis(args.pg_bin)
    if isinstance(found, str):
        console.print(f"[red]{found}[/]")
        return 2
    bindir, pg_version = found
    try:
        import psycopg
    except ImportError:
        console.print("[red]psycopg 3 is not installed[/]: pip install -r bench/requirements-bench.txt")
        return 2
    h.require_clean(console)  # results come from clean trees only (or --allow-dirty, marked)
    h.stop_on_sigterm()  # so that the finally clauses stop PostgreSQL and uvicorn
    load = h.warn_if_busy(console)

    from geo_cs import tiles
    from geo_cs.layers import area_values, resolve_measure
    from geo_cs.store import Store

    t_start = time.perf_counter()
    db = gb_store()
    workdir = Path(tempfile.mkdtemp(prefix="bench_tiles_"))
    cluster = None
    try:
        with Store.open(db, read_only=True) as store:
            sets = tiles.tile_sets(store).set_index("set_id")
            minzoom = {layer: int(sets.loc[layer, "minzoom"]) for layer in QUOTA}
            values, periods, values_s = {}, {}, {}
            for layer, (indicator, denominator) in MEASURES.items():
                t0 = time.perf_counter()
                av = area_values(store, resolve_measure(store, layer, indicator, denominator))
                periods[layer] = av.check_period(None)
                values_s[layer] = {"area_values_s": round(time.perf_counter() - t0, 3)}
                t0 = time.perf_counter()
                values[layer] = av.at(periods[layer])
                values_s[layer]["at_period_ms"] = round((time.perf_counter() - t0) * 1000, 2)
                values_s[layer]["rows"] = len(values[layer])
            # what the API hands render_tile: the period's values as an Arrow table, built once
            # per period (tiles.tile_values), or the pandas frame where geo-cs has no such helper
            to_arrow = getattr(tiles, "tile_values", None)
            geo_values = {layer: to_arrow(frame) if to_arrow else frame for layer, frame in values.items()}
            addresses = pick_addresses(store, args.seed, minzoom)[:args.tiles]
            console.print(f"{len(addresses)} tiles: " + ", ".join(
                f"{layer} {sum(a['layer'] == layer for a in addresses)}" for layer in QUOTA)
                + f"; z5-z6 (below minzoom {minzoom}): {sum(a['below_minzoom'] for a in addresses)}")

            cluster = PgCluster(bindir, console)
            with console.status(f"starting PostgreSQL ({pg_version}) in {cluster.tmp}"):
                cluster.start()
            with psycopg.connect(cluster.conninfo(), autocommit=True) as pg:
                with console.status("loading tile_geoms, tile_pieces and values into PostGIS"):
                    pg_info = load_postgis(pg, store, geo_values, workdir)
                console.print(f"PostGIS: rows {pg_info['rows']}, MB {pg_info['table_mb']}; setup "
                              f"{pg_info['seconds']}")
                plan = {name: [r[0] for r in pg.execute("EXPLAIN (COSTS OFF) " + sql,
                                                        pg_params(addresses[0])).fetchall()]
                        for name, sql in (("tile_geoms", _PG_TILE), ("tile_pieces", _PG_PIECES))}
                timed = time_tiles(store, pg, addresses, geo_values, args.repeat, console,
                                   alternating=args.alternating)
            cluster.stop()
            cluster = None
        with console.status("decoding tiles on both sides"):
            every = max(1, len(addresses) // max(1, args.verify))
            checks = verify(addresses, timed, every=every, limit=args.verify)
        http = None
        if not args.skip_http:
            http = run_http(db, addresses, periods, timed["bytes"]["geo"], args, workdir, console)
        summary = report(console, addresses, timed, checks, http, args)
    except Exception as exc:
        console.print_exception()
        console.print(f"[red]run failed: {exc}[/]")
        return 1
    finally:
        if cluster is not None:
            cluster.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    out = {
        "benchmark": "tiles",
        "timestamp": h.timestamp(),
        "machine": h.machine(postgresql=pg_version, postgis=pg_info["postgis"], **versions()),
        "store": {"path": str(db.relative_to(h.REPO)), "measures": MEASURES, "periods": periods,
                  "values": values_s, **gb_store_info()},
        "method": {
            "given": SIDES,
            "pairs": {"prepared (headline)": "geo-cs 'geo' against PostGIS 'pgp': the same prepared pieces",
                      "default path": "geo-cs 'fly' against PostGIS 'pg': the same simplified band "
                                      "geometries"},
            "values": "the period's values rounded once to 4 decimals: geo-cs tiles.tile_values(area_values("
                      "...).at(period)) (cached per period, as by the API); PostGIS a table of the same "
                      "values, primary key (set_id, code), LEFT JOINed",
            "geo_cs": "in-process, store read-only; the layer's tiles.tile_index built once as the API does "
                      "(index_load_seconds); the byte budget loop included "
                      f"({tiles.MAX_TILE_BYTES:,} bytes)",
            "postgis": "psycopg 3 over the cluster's unix socket (prepares a statement after 5 runs); the "
                       "time includes that round trip and fetching the bytes",
            "postgis_matched": "the same, with area_m2 >= the minimum area geo-cs kept on its budget tiles",
            "timing": "one untimed warm-up pass per side, then --repeat passes in which each side renders "
                      "all the tiles in a block, the order of the blocks reversed every pass; per tile the "
                      "median of its passes; stats over tiles. Then --alternating passes alternating "
                      "geo-cs and PostGIS tile by tile, per pair (for information: each side right after "
                      "the other's query)",
            "pg_settings": PG_SETTINGS, "pg_setup": pg_info, "pg_plan_first_tile": plan,
            "addresses": f"seed {args.seed}; per zoom 5-14: {QUOTA} distinct tiles from random areas' "
                         "points on surface (lonlat_to_tile); shortfalls carried to the next zoom; "
                         f"shuffled; the first {len(addresses)} timed",
        },
        "repeat": args.repeat,
        "minzoom": minzoom,
        "addresses": [[a["layer"], a["z"], a["x"], a["y"]] for a in addresses],
        "per_tile": {"fields": [*(f"{side}_ms" for side in SIDES),
                                *(f"{side}_matched_ms" for side in ("pgp", "pg")),
                                *(f"{side}_bytes" for side in SIDES)],
                     "rows": [[*(round(timed["ms"][side][i], 3) for side in SIDES),
                               *(round(timed["matched_ms"][side][i], 3) for side in ("pgp", "pg")),
                               *(len(timed["bytes"][side][i]) for side in SIDES)]
                              for i in range(len(addresses))]},
        **{k: v for k, v in summary.items() if k != "pass"},
        "decode_check": checks,
        "http": http,
        "targets": {"render_ratio_max": TARGET_RATIO, "per_zoom_ratio_max": 1.0,
                    "overall_ratio_below": 1.0, "default_path_per_zoom_ratio_max": 1.0,
                    "tile_gzip_bytes_max": TARGET_MAX_GZIP_BYTES,
                    "cached_tiles_per_s_min": TARGET_TILES_PER_S},
        "pass": summary["pass"],
        "loadavg_at_start": list(load),
        "loadavg_at_end": list(os.getloadavg()),
        "total_seconds": round(time.perf_counter() - t_start, 1),
    }
    given = ("prepared (headline): geo-cs its prepared tiles' encoded geometry (tile_features), PostGIS the "
             "same prepared pieces (tile_pieces, btree on set_id, z, x, y); default path: both the same "
             "simplified band geometries (tile_geoms; geo-cs clips in memory, PostGIS ST_AsMVTGeom); both "
             "the period's values rounded once")
    h.write_results(args.out, out, console, f" ({out['total_seconds']:.0f} s)",
                    peer=h.peer("PostGIS", pg_info["postgis"], given, postgresql=pg_version,
                                settings=PG_SETTINGS, psycopg=h.package_versions("psycopg")["psycopg"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
