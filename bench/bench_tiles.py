"""Benchmark: geo-cs vector tiles against PostGIS ``ST_AsMVT``, and cached tiles over HTTP.

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

2. **Uncached render time per tile**, in this process, each side rendering the list in a block:

   * **geo-cs**: ``render_tile(store, layer, z, x, y, values, index=...)`` on the store opened
     read-only, its layers prepared (``geo-cs tiles prepare``, when the GB store was built; the
     preparation's time and size are in the results), ``index`` = the layer's
     ``tiles.tile_index`` built once, and ``values`` =
     ``tiles.tile_values(area_values(store, resolve_measure(...)).at(period))`` -- both as the
     API builds them once per data version and period and caches them -- including its 500 KB
     budget loop (a denser tile is re-encoded without its smallest areas until it fits). For
     information, the same call with ``prepared=False`` (the tile clipped and transformed on the
     fly, as for a layer not prepared) is timed in blocks of its own (``--no-on-the-fly`` leaves
     it out).
   * **PostGIS** (PostgreSQL and PostGIS from Debian, a throwaway cluster started here): the same
     ``tile_geoms`` rows (every band, the same pre-simplified EPSG:3857 geometries) and the same
     values copied into PostGIS tables (GiST index on ``geom`` -- the table CLUSTERed on it --
     btree on ``(set_id, band)``, primary key on the values), then per tile the same query
     shape as geo-cs's ``_TILE_WITH_VALUES`` as PostGIS users write it (geo-cs's shortcut for
     areas wholly inside a tile is not copied): ``ST_AsMVT(t, layer, 4096, 'geom')`` over
     ``ST_AsMVTGeom(geom, ST_TileEnvelope(z, x, y), 4096, 64, true)``, code, name and the five
     value properties rounded the same way (1 decimal below z9, 2 from z9; share to 2),
     ``LEFT JOIN`` of the values, ``set_id``, the band of ``zoom_band(z)`` and
     ``geom && ST_TileEnvelope(z, x, y)``. Sent by psycopg 3 over the cluster's unix socket
     (it prepares a statement after 5 runs, as a tile server would); the time includes that
     round trip and fetching the bytes. PostGIS has no size budget: for the tiles where geo-cs
     needed its budget, PostGIS is timed again with ``area_m2 >=`` the area geo-cs ended up
     keeping (``pg matched``: the same features), found by a traced untimed geo-cs pass.

   One untimed warm-up pass per side (caches, plans; it also records sizes and the budget),
   then ``--repeat`` timed passes (default 4): in each, every side renders all 500 tiles in a
   block, the blocks' order reversed from one pass to the next (geo-cs, PostGIS, on the fly;
   then on the fly, PostGIS, geo-cs) so that a drift of the machine's speed falls on both; per
   tile the median of its passes. Blocks rather than alternating tile by tile: a query run right
   after the other process's pays for the CPU caches that one evicted, and unevenly -- in the
   runs that brought this in, geo-cs's median was 0.9-1.7 ms higher alternating than in blocks
   and PostGIS's 0-0.4 ms (DuckDB's query path, from parser to MVT encoder, is the longer) --
   whereas a tile server draws a map's tiles as a burst of requests. ``--alternating`` passes
   (default 2) then alternate geo-cs and PostGIS tile by tile, and that ratio is reported for
   information. Reported per side: median, p90 and max over tiles, per zoom too; the ratio of
   medians geo-cs / PostGIS (target <= 1.5); tile sizes (target: every geo-cs tile < 500 KB;
   PostGIS sizes shown); and ``--verify`` tiles (default 100, every fifth) decoded with
   ``mapbox_vector_tile`` on both sides (PostGIS with the matched area filter) to compare feature
   counts and codes (mismatches reported; properties compared for information).

3. **Cached throughput over HTTP**: ``uvicorn api.app:create_app --factory`` with 1 worker on a
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

    /work/venv/bin/python bench/bench_tiles.py [--repeat 3] [--duration 15] [--skip-http] [--no-on-the-fly]
"""

from __future__ import annotations

import argparse
import contextlib
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
TARGET_MAX_BYTES = 500_000
TARGET_TILES_PER_S = 2000.0

#: PostgreSQL settings of the throwaway cluster: durability off (it is rebuilt every run), memory
#: enough to hold the tables, JIT off (its compile time would dominate millisecond queries).
PG_SETTINGS = {
    "shared_buffers": "1GB", "work_mem": "16MB", "maintenance_work_mem": "512MB",
    "fsync": "off", "synchronous_commit": "off", "full_page_writes": "off", "jit": "off",
    "max_wal_size": "4GB", "logging_collector": "off",
}

_PG_TILE = """
SELECT ST_AsMVT(t, %(layer)s, 4096, 'geom') FROM (
    SELECT ST_AsMVTGeom(g.geom, ST_TileEnvelope(%(z)s::int, %(x)s::int, %(y)s::int), 4096, 64, true) AS geom,
           g.code, g.name,
           round(v.value::numeric, %(digits)s::int)::float8 AS value,
           round(v.value_low::numeric, %(digits)s::int)::float8 AS value_low,
           round(v.value_high::numeric, %(digits)s::int)::float8 AS value_high,
           v.worst,
           round(v.estimated_share::numeric, 2)::float8 AS estimated_share
    FROM tile_geoms g LEFT JOIN tile_values v ON v.set_id = g.set_id AND v.code = g.code
    WHERE g.set_id = %(layer)s AND g.band = %(band)s::smallint AND g.area_m2 >= %(min_area)s::float8
      AND g.geom && ST_TileEnvelope(%(z)s::int, %(x)s::int, %(y)s::int)
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
    """Copy tile_geoms (every band) and the values into PostGIS; index, cluster, analyse."""
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    csv = workdir / "tile_geoms.csv"
    # not the bounds columns (xmin, xmax are system columns in PostgreSQL; && uses the index)
    store.sql(f"""COPY (SELECT set_id, code, band, name, ST_AsHEXWKB(geom) AS geom, area_m2
                       FROM tile_geoms ORDER BY set_id, band)
                  TO '{csv.as_posix()}' (FORMAT csv, HEADER false)""")
    seconds["export_from_duckdb"] = time.perf_counter() - t0
    cur = con.cursor()
    t0 = time.perf_counter()
    cur.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    cur.execute("""CREATE UNLOGGED TABLE stage (set_id text, code text, band smallint, name text,
                   geom geometry, area_m2 float8)""")
    with cur.copy("COPY stage FROM STDIN (FORMAT csv)") as copy, csv.open("rb") as f:
        while chunk := f.read(1 << 20):
            copy.write(chunk)
    csv.unlink()
    cur.execute("""CREATE TABLE tile_geoms AS
                   SELECT set_id, code, band, name, ST_SetSRID(geom, 3857)::geometry(Geometry, 3857) AS geom,
                          area_m2 FROM stage""")
    cur.execute("DROP TABLE stage")
    seconds["copy_geometries"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    cur.execute("CREATE TABLE tile_values (set_id text, code text, value float8, value_low float8, "
                "value_high float8, worst boolean, estimated_share float8, PRIMARY KEY (set_id, code))")
    with cur.copy("COPY tile_values FROM STDIN") as copy:
        for layer, frame in values.items():
            cols = [frame[c].tolist() for c in ("code", "value", "value_low", "value_high", "worst",
                                                "estimated_share")]
            for row in zip(*cols, strict=True):
                copy.write_row([layer, *(None if _isnull(v) else v for v in row)])
    seconds["copy_values"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    cur.execute("CREATE INDEX tile_geoms_geom ON tile_geoms USING gist (geom)")
    cur.execute("CREATE INDEX tile_geoms_set_band ON tile_geoms (set_id, band)")
    cur.execute("CLUSTER tile_geoms USING tile_geoms_geom")
    cur.execute("VACUUM ANALYZE tile_geoms")
    cur.execute("VACUUM ANALYZE tile_values")
    seconds["index_cluster_analyze"] = time.perf_counter() - t0
    rows = cur.execute("SELECT count(*), pg_total_relation_size('tile_geoms') FROM tile_geoms").fetchone()
    postgis = cur.execute("SELECT postgis_full_version()").fetchone()[0]
    return {"rows": rows[0], "table_mb": round(rows[1] / 1e6, 1), "postgis": postgis,
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
    from geo_cs.tiles import VALUE_DIGITS, zoom_band

    # the items' rounding at every zoom, as geo-cs's own tiles now do (issue 30)
    return {"layer": a["layer"], "z": a["z"], "x": a["x"], "y": a["y"], "band": zoom_band(a["z"]).band,
            "digits": VALUE_DIGITS, "min_area": min_area}


def pg_tile(cur: Any, a: dict[str, Any], min_area: float = 0.0) -> bytes:
    row = cur.execute(_PG_TILE, pg_params(a, min_area)).fetchone()
    return bytes(row[0]) if row and row[0] is not None else b""


def time_tiles(store: Any, pg: Any, addresses: list[dict[str, Any]], values: dict[str, Any], repeat: int,
               console: Console, on_the_fly: bool = True, alternating: int = 2) -> dict[str, Any]:
    from geo_cs import tiles

    # as the API does: a layer's tile index (where its areas are, whether its tiles are prepared)
    # is built once per data version
    load_seconds: dict[str, float] = {}
    index = {}
    for layer in sorted({a["layer"] for a in addresses}):
        t0 = time.perf_counter()
        index[layer] = tiles.tile_index(store, layer)
        if index[layer].encoded is not None:
            index[layer].encoded.load(store)  # every zoom (a server loads each on its first tile)
        load_seconds[layer] = round(time.perf_counter() - t0, 3)
    prepared = {layer: i.prepared for layer, i in index.items()}
    encoded = {layer: i.encoded is not None for layer, i in index.items()}

    cur = pg.cursor()
    n = len(addresses)
    # untimed warm-up: sizes, geo-cs's budget (traced), PostGIS sizes with and without its filter
    geo_bytes, pg_bytes, pg_matched_bytes = [b""] * n, [b""] * n, [b""] * n
    budget: list[dict[str, Any] | None] = [None] * n
    with console.status("warm-up pass (untimed): geo-cs traced, PostGIS"):
        for i, a in enumerate(addresses):
            report: dict[str, Any] = {}
            geo_bytes[i] = tiles.render_tile(store, a["layer"], a["z"], a["x"], a["y"], values[a["layer"]],
                                             index=index[a["layer"]], report=report)
            tiles.render_tile(store, a["layer"], a["z"], a["x"], a["y"], values[a["layer"]], prepared=False,
                              index=index[a["layer"]])
            pg_bytes[i] = pg_tile(cur, a)
            if report.get("renders", 1) > 1:
                min_area = float(report["min_area"])
                budget[i] = {"renders": report["renders"], "min_area_m2": min_area}
                pg_matched_bytes[i] = pg_tile(cur, a, min_area)
            else:
                pg_matched_bytes[i] = pg_bytes[i]
    perf = time.perf_counter

    def geo(a: dict[str, Any]) -> None:
        tiles.render_tile(store, a["layer"], a["z"], a["x"], a["y"], values[a["layer"]],
                          index=index[a["layer"]])

    def fly(a: dict[str, Any]) -> None:
        tiles.render_tile(store, a["layer"], a["z"], a["x"], a["y"], values[a["layer"]], prepared=False,
                          index=index[a["layer"]])

    def postgis(a: dict[str, Any]) -> None:
        cur.execute(_PG_TILE, pg_params(a)).fetchone()

    sides: dict[str, Callable[[dict[str, Any]], None]] = {"geo": geo, "pg": postgis}
    if on_the_fly:
        sides["fly"] = fly
    runs: dict[str, list[list[float]]] = {side: [[] for _ in range(n)] for side in sides}
    pgm_runs: list[list[float]] = [[] for _ in range(n)]
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
                render, out = sides[side], runs[side]
                for i, a in enumerate(addresses):
                    t0 = perf()
                    render(a)
                    out[i].append(perf() - t0)
                    if side == "pg" and budget[i] is not None:
                        params_m = pg_params(a, budget[i]["min_area_m2"])
                        t0 = perf()
                        cur.execute(_PG_TILE, params_m).fetchone()
                        pgm_runs[i].append(perf() - t0)
    alt: dict[str, list[list[float]]] = {"geo": [[] for _ in range(n)], "pg": [[] for _ in range(n)]}
    for r in range(alternating):
        with console.status(f"alternating pass {r + 1}/{alternating}: geo-cs and PostGIS tile by tile"):
            for i, a in enumerate(addresses):
                for side in (("geo", "pg") if (i + r) % 2 == 0 else ("pg", "geo")):
                    t0 = perf()
                    sides[side](a)
                    alt[side][i].append(perf() - t0)

    def medians(per_tile: list[list[float]]) -> list[float]:
        return [statistics.median(r) * 1000 for r in per_tile]

    pg_ms = medians(runs["pg"])
    return {
        "geo_ms": medians(runs["geo"]),
        "fly_ms": medians(runs["fly"]) if on_the_fly else None,
        "prepared": prepared,
        "encoded": encoded,
        "index_load_seconds": load_seconds,
        "pg_ms": pg_ms,
        # PostGIS as it is where geo-cs needed no budget
        "pg_matched_ms": [statistics.median(pgm_runs[i]) * 1000 if budget[i] is not None else pg_ms[i]
                          for i in range(n)],
        "alternating": ({"passes": alternating, "geo_ms": medians(alt["geo"]), "pg_ms": medians(alt["pg"])}
                        if alternating else None),
        "geo_bytes": geo_bytes, "pg_bytes": pg_bytes, "pg_matched_bytes": pg_matched_bytes,
        "budget": budget,
    }


def verify(addresses: list[dict[str, Any]], timed: dict[str, Any], every: int, limit: int) -> dict[str, Any]:
    """Decode a sample of tiles on both sides; compare feature counts, codes and properties."""
    import mapbox_vector_tile

    checked, mismatches, prop_diffs, examples = 0, [], 0, []
    for i in range(0, len(addresses), every)[:limit]:
        a = addresses[i]
        geo = mapbox_vector_tile.decode(timed["geo_bytes"][i]) if timed["geo_bytes"][i] else {}
        pg = mapbox_vector_tile.decode(timed["pg_matched_bytes"][i]) if timed["pg_matched_bytes"][i] else {}
        gf = geo.get(a["layer"], {}).get("features", [])
        pf = pg.get(a["layer"], {}).get("features", [])
        checked += 1
        gcodes = {f["properties"].get("code") for f in gf}
        pcodes = {f["properties"].get("code") for f in pf}
        if len(gf) != len(pf) or gcodes != pcodes:
            mismatches.append({**a, "geo_cs_features": len(gf), "postgis_features": len(pf),
                               "only_geo_cs": sorted(gcodes - pcodes)[:10],
                               "only_postgis": sorted(pcodes - gcodes)[:10]})
        pprops = {f["properties"].get("code"): f["properties"] for f in pf}
        for f in gf:
            other = pprops.get(f["properties"].get("code"))
            if other is not None and _props_differ(f["properties"], other):
                prop_diffs += 1
                if len(examples) < 5:
                    examples.append({"tile": f"{a['layer']}/{a['z']}/{a['x']}/{a['y']}",
                                     "geo_cs": f["properties"], "postgis": other})
    return {"tiles_checked": checked, "feature_count_or_code_mismatches": mismatches,
            "features_with_different_properties": prop_diffs, "property_difference_examples": examples}


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
    geo_size = [len(b) for b in timed["geo_bytes"]]
    pg_size = [len(b) for b in timed["pg_bytes"]]
    pgm_size = [len(b) for b in timed["pg_matched_bytes"]]
    geo, pg, pgm = timed["geo_ms"], timed["pg_ms"], timed["pg_matched_ms"]

    table = Table(title=f"Uncached tile render, {n} tiles, each side in blocks (per tile the median of "
                        f"{args.repeat} pass(es)); ms and KB")
    for col in ("zoom", "tiles", "geo-cs med", "PostGIS med", "ratio", "geo-cs p90", "PostGIS p90",
                "geo-cs max", "PostGIS max", "geo KB med/max", "PG KB med/max", "budget"):
        table.add_column(col, justify="left" if col == "zoom" else "right")
    per_zoom = {}
    groups = [(f"z{z}" + (" *" if z < 7 else ""), [i for i, a in enumerate(addresses) if a["z"] == z])
              for z in ZOOMS]
    groups += [(layer, [i for i, a in enumerate(addresses) if a["layer"] == layer]) for layer in QUOTA]
    groups += [("all", list(range(n)))]
    for label, idx in groups:
        if not idx:
            continue
        g, p = [geo[i] for i in idx], [pg[i] for i in idx]
        gs, ps = [geo_size[i] / 1000 for i in idx], [pg_size[i] / 1000 for i in idx]
        n_budget = sum(timed["budget"][i] is not None for i in idx)
        row = {"tiles": len(idx), "geo_cs_ms": stats_ms(g), "postgis_ms": stats_ms(p),
               "ratio_of_medians": round(statistics.median(g) / statistics.median(p), 3),
               "geo_cs_kb": {"median": round(statistics.median(gs), 1), "max": round(max(gs), 1)},
               "postgis_kb": {"median": round(statistics.median(ps), 1), "max": round(max(ps), 1)},
               "budget_tiles": n_budget}
        per_zoom[label] = row
        style = "bold" if label == "all" else None
        table.add_row(label, str(len(idx)), f"{row['geo_cs_ms']['median']:.2f}",
                      f"{row['postgis_ms']['median']:.2f}",
                      f"{row['ratio_of_medians']:.2f}", f"{row['geo_cs_ms']['p90']:.2f}",
                      f"{row['postgis_ms']['p90']:.2f}", f"{row['geo_cs_ms']['max']:.1f}",
                      f"{row['postgis_ms']['max']:.1f}",
                      f"{row['geo_cs_kb']['median']:.0f}/{row['geo_cs_kb']['max']:.0f}",
                      f"{row['postgis_kb']['median']:.0f}/{row['postgis_kb']['max']:.0f}",
                      str(n_budget), style=style)
        if label in (f"z{max(ZOOMS)}", list(QUOTA)[-1]):
            table.add_section()
    console.print(table)
    console.print("* below the layers' TileJSON minzoom (7); budget = tiles geo-cs re-encoded to fit 500 KB; "
                  "ratio = geo-cs median / PostGIS median")

    ratio = statistics.median(geo) / statistics.median(pg)
    ratio_m = statistics.median(geo) / statistics.median(pgm)
    budget_idx = [i for i in range(n) if timed["budget"][i] is not None]
    over = [i for i in range(n) if geo_size[i] >= TARGET_MAX_BYTES]
    pg_over = [i for i in range(n) if pg_size[i] >= TARGET_MAX_BYTES]
    speed_ok = ratio <= TARGET_RATIO
    # issue 17: not slower than PostGIS at any zoom z5-z14, and ahead of it overall
    zoom_ratios = {label: row["ratio_of_medians"] for label, row in per_zoom.items() if label.startswith("z")}
    every_zoom_ok = all(r <= 1.0 for r in zoom_ratios.values())
    ahead_ok = ratio < 1.0
    console.print("per zoom (geo-cs median / PostGIS median, target <= 1 at every zoom): "
                  + ", ".join(f"{k.rstrip(' *')} {v:.2f}" for k, v in zoom_ratios.items())
                  + f": {verdict(every_zoom_ok)}; overall {ratio:.2f} (target < 1): {verdict(ahead_ok)}")
    size_ok = not over
    fly = timed["fly_ms"]
    ratio_fly = statistics.median(fly) / statistics.median(pg) if fly else None
    console.print(f"render: geo-cs median {statistics.median(geo):.2f} ms "
                  f"(tiles prepared: {timed['prepared']}) vs PostGIS "
                  f"{statistics.median(pg):.2f} ms "
                  f"-> {ratio:.2f}x (target <= {TARGET_RATIO}x): {verdict(speed_ok)}; against PostGIS with "
                  f"geo-cs's area filter on the budget tiles: {ratio_m:.2f}x")
    alt = timed["alternating"]
    alternating = None
    if alt:
        alt_geo, alt_pg = statistics.median(alt["geo_ms"]), statistics.median(alt["pg_ms"])
        alternating = {"passes": alt["passes"], "geo_cs_ms": stats_ms(alt["geo_ms"]),
                       "postgis_ms": stats_ms(alt["pg_ms"]), "ratio_of_medians": round(alt_geo / alt_pg, 3)}
        console.print(f"for information, alternating tile by tile ({alt['passes']} pass(es); each side right "
                      f"after the other's query): geo-cs median {alt_geo:.2f} ms vs PostGIS {alt_pg:.2f} ms "
                      f"-> {alt_geo / alt_pg:.2f}x")
    if fly:
        console.print(f"for information, the same tiles clipped on the fly (a layer not prepared): median "
                      f"{statistics.median(fly):.2f} ms, p90 {stats_ms(fly)['p90']:.2f} ms "
                      f"-> {ratio_fly:.2f}x PostGIS")
    if budget_idx:
        bg = [geo[i] for i in budget_idx]
        bp = [pg[i] for i in budget_idx]
        bpm = [pgm[i] for i in budget_idx]
        console.print(f"budget: {len(budget_idx)} tiles re-encoded by geo-cs (renders: "
                      f"{sorted(timed['budget'][i]['renders'] for i in budget_idx)}); there geo-cs median "
                      f"{statistics.median(bg):.1f} ms, PostGIS full {statistics.median(bp):.1f} ms "
                      f"(max {max(pg_size[i] for i in budget_idx) / 1000:.0f} KB), PostGIS with the same "
                      f"min area {statistics.median(bpm):.1f} ms "
                      f"(max {max(pgm_size[i] for i in budget_idx) / 1000:.0f} KB)")
    console.print(f"sizes: largest geo-cs tile {max(geo_size) / 1000:.1f} KB, {len(over)} >= 500 KB "
                  f"(target none): {verdict(size_ok)}; largest PostGIS tile {max(pg_size) / 1000:.1f} KB, "
                  f"{len(pg_over)} >= 500 KB; empty tiles geo-cs {geo_size.count(0)}, "
                  f"PostGIS {pg_size.count(0)}")
    mm = checks["feature_count_or_code_mismatches"]
    console.print(f"decode check ({checks['tiles_checked']} tiles, mapbox_vector_tile, PostGIS with the same "
                  f"area filter): {len(mm)} with different feature counts or codes"
                  + (": " + "; ".join(f"{m['layer']}/{m['z']}/{m['x']}/{m['y']} "
                                      f"geo-cs {m['geo_cs_features']} "
                                      f"vs PostGIS {m['postgis_features']}" for m in mm[:5]) if mm else "")
                  + f"; features with different properties: {checks['features_with_different_properties']}")

    http_ok = None
    if http is not None:
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

    return {
        "prepared": timed["prepared"],
        "encoded": timed["encoded"],
        "index_load_seconds": timed["index_load_seconds"],
        "on_the_fly": ({"geo_cs_ms": stats_ms(fly), "ratio_of_medians": round(ratio_fly, 3)}
                       if fly else None),
        "per_group": per_zoom,
        "ratio_of_medians": round(ratio, 3),
        "alternating_tile_by_tile": alternating,
        "ratio_of_medians_vs_postgis_matched": round(ratio_m, 3),
        "budget_tiles": [{**addresses[i], **timed["budget"][i], "geo_cs_bytes": geo_size[i],
                          "postgis_bytes": pg_size[i], "postgis_matched_bytes": pgm_size[i],
                          "geo_cs_ms": round(geo[i], 3), "postgis_ms": round(pg[i], 3),
                          "postgis_matched_ms": round(pgm[i], 3)} for i in budget_idx],
        "sizes": {"geo_cs_max_bytes": max(geo_size), "geo_cs_over_500kb": len(over),
                  "postgis_max_bytes": max(pg_size), "postgis_over_500kb": len(pg_over),
                  "geo_cs_empty": geo_size.count(0), "postgis_empty": pg_size.count(0)},
        "slowest_geo_cs": [{**addresses[i], "geo_cs_ms": round(geo[i], 2), "postgis_ms": round(pg[i], 2),
                            "geo_cs_bytes": geo_size[i]} for i in np.argsort(geo)[::-1][:10]],
        "pass": {"render_ratio": speed_ok, "every_zoom_not_slower": every_zoom_ok, "ahead_overall": ahead_ok,
                 "tile_size": size_ok, "http_throughput": http_ok},
    }


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
    parser.add_argument("--no-on-the-fly", action="store_true",
                        help="do not also time the tiles clipped on the fly (two sides alternate, not three)")
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
            addresses = pick_addresses(store, args.seed, minzoom)
            console.print(f"{len(addresses)} tiles: " + ", ".join(
                f"{layer} {sum(a['layer'] == layer for a in addresses)}" for layer in QUOTA)
                + f"; z5-z6 (below minzoom {minzoom}): {sum(a['below_minzoom'] for a in addresses)}")

            cluster = PgCluster(bindir, console)
            with console.status(f"starting PostgreSQL ({pg_version}) in {cluster.tmp}"):
                cluster.start()
            with psycopg.connect(cluster.conninfo(), autocommit=True) as pg:
                with console.status("loading tile_geoms and values into PostGIS"):
                    pg_info = load_postgis(pg, store, values, workdir)
                console.print(f"PostGIS: {pg_info['rows']:,} rows, {pg_info['table_mb']} MB; setup "
                              f"{pg_info['seconds']}")
                plan = pg.execute("EXPLAIN (COSTS OFF) " + _PG_TILE, pg_params(addresses[0])).fetchall()
                timed = time_tiles(store, pg, addresses, geo_values, args.repeat, console,
                                   on_the_fly=not args.no_on_the_fly, alternating=args.alternating)
            cluster.stop()
            cluster = None
        with console.status("decoding tiles on both sides"):
            every = max(1, len(addresses) // max(1, args.verify))
            checks = verify(addresses, timed, every=every, limit=args.verify)
        http = None
        if not args.skip_http:
            http = run_http(db, addresses, periods, timed["geo_bytes"], args, workdir, console)
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
            "geo_cs": "tiles.render_tile(store, layer, z, x, y, values, index=...) in-process, store "
                      "read-only, tiles prepared (geo-cs tiles prepare, when the store was built: see "
                      "store.prepare_tiles; their geometry encoded once, tile_features, see geo_cs/mvt.py), "
                      "the layer's tiles.tile_index built once as the API does (with every zoom's encoded "
                      "tiles loaded: index_load_seconds); "
                      "values = tiles.tile_values(area_values(...).at(period)) (cached as by the API); "
                      "500 KB budget loop included",
            "geo_cs_on_the_fly": "the same with prepared=False (clipped and transformed per tile, as a "
                                 "layer not prepared), timed in its own blocks for information",
            "postgis": "ST_AsMVT(ST_AsMVTGeom(geom, ST_TileEnvelope(z,x,y), 4096, 64, true), code, name, "
                       "rounded values) over a copy of tile_geoms (GiST, clustered; btree set_id, band) LEFT "
                       "JOIN the values, same band; psycopg 3 over a unix socket (auto-prepared)",
            "postgis_matched": "the same, with area_m2 >= the minimum area geo-cs kept on its budget tiles",
            "timing": "one untimed warm-up pass per side, then --repeat passes in which each side renders "
                      "all the tiles in a block, the order of the blocks reversed every pass; per tile the "
                      "median of its passes; stats over tiles. Then --alternating passes alternating "
                      "geo-cs and PostGIS tile by tile (for information: each side right after the other's "
                      "query)",
            "pg_settings": PG_SETTINGS, "pg_setup": pg_info, "pg_plan_first_tile": [r[0] for r in plan],
            "addresses": f"seed {args.seed}; per zoom 5-14: {QUOTA} distinct tiles from random areas' "
                         "points on surface (lonlat_to_tile); shortfalls carried to the next zoom; shuffled",
        },
        "repeat": args.repeat,
        "minzoom": minzoom,
        "addresses": [[a["layer"], a["z"], a["x"], a["y"]] for a in addresses],
        "per_tile": {"fields": ["geo_cs_ms", "postgis_ms", "postgis_matched_ms", "geo_cs_bytes",
                                "postgis_bytes"],
                     "rows": [[round(timed["geo_ms"][i], 3), round(timed["pg_ms"][i], 3),
                               round(timed["pg_matched_ms"][i], 3), len(timed["geo_bytes"][i]),
                               len(timed["pg_bytes"][i])] for i in range(len(addresses))]},
        **{k: v for k, v in summary.items() if k != "pass"},
        "decode_check": checks,
        "http": http,
        "targets": {"render_ratio_max": TARGET_RATIO, "per_zoom_ratio_max": 1.0,
                    "overall_ratio_below": 1.0, "tile_bytes_max": TARGET_MAX_BYTES,
                    "cached_tiles_per_s_min": TARGET_TILES_PER_S},
        "pass": summary["pass"],
        "loadavg_at_start": list(load),
        "loadavg_at_end": list(os.getloadavg()),
        "total_seconds": round(time.perf_counter() - t_start, 1),
    }
    h.write_results(args.out, out, console, f" ({out['total_seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
