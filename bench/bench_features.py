"""Benchmark: paging through every LSOA 2011 item over OGC API - Features, geo-cs against
pygeoapi with two providers: OGR on a GeoPackage, and PostgreSQL on PostGIS.

What is measured
----------------
A client pages through all 34,753 LSOA 2011 items of ``/collections/lsoa2011/items`` at
``limit=1000`` (``--limit``), starting at offset 0 and following each page's ``next`` link until
a page has none, against each server in the same run, serving the same polygons with the same
properties.

* **Server time (the headline)**: per page, from the request sent to the last byte of the body
  received as it came over the wire (not decompressed, not parsed), summed over the pass. The
  client's work is outside it.
* **Client time**: the client decompressing (gzip) and ``json.loads``-ing each page, which it
  must do to find the ``next`` link: the same code on every side, about 7 s a pass for any
  server, so it is not the server's and is shown apart.
* **Wall time** of the pass: server time plus client time (the client is sequential, so the
  server waits for it), as a secondary row.

Each side is timed twice per round, with the same ``Accept-Encoding`` sent to every server:

* ``identity`` (the headline): neither server compresses, so both do the same work: the same
  features as the same GeoJSON.
* ``gzip``: each compresses as it does when asked, as a GIS client or browser asks: geo-cs
  with zlib level 1 (``api.app.GZIP_LEVEL``, as deployed), pygeoapi with its ``gzip: true``
  server setting (Python's ``gzip.compress``, level 9, the only level it has; without the
  setting it sends plain JSON whatever the client accepts). ``--encodings`` chooses.

Per server, side and encoding: the median of ``--repeat`` passes (default 3); the passes cycle
through every (server, encoding) with the order rotated each round. Also the pages, the bytes on
the wire and decoded, the pages that came gzipped, and the server process's RSS after the
warm-up and its peak (``VmHWM`` of ``/proc/<pid>/status``; for the PostgreSQL provider the
pygeoapi process only, not PostgreSQL's). Ratios geo-cs / pygeoapi (below 1: geo-cs faster) of
the medians, per provider and encoding; the headline ``ratio_geo_cs_over_pygeoapi`` is the server
time with ``identity`` against the faster of the two providers.

Checks (one untimed pass per server, ``identity``, the pages compared as they arrive): every
server returns exactly 34,753 features with 34,753 distinct ids, the same ids, and per id the
same properties, the same geometry type as served (strict: no normalisation), and the same
geometry: the same parts, rings and vertices, every coordinate within 1e-9 degrees (0.1 mm;
geo-cs writes coordinates as stored, shortest round trip, GDAL's GeoJSON writer with 15
significant digits). A geometry whose type differs is also compared after normalising a
Polygon to a MultiPolygon of one part, to say whether only its type differs.

Why the geometry type once differed: geo-cs serves every area as a MultiPolygon
(``geo_cs.features._GEOMETRY``: ``ST_Multi``, since 62eab31; the collections declare it, so GDAL
and QGIS type the layer once, not from the first features), while the GeoPackage given to
pygeoapi kept the store's 34,083 single polygons as Polygon (``promote_to_multi=False``: true to
geo-cs before 62eab31). Both are valid GeoJSON for the same polygon. The peers are now given the
geometries as geo-cs serves them (``ST_Multi(geom_4326)``), so all three send MultiPolygons and
the check compares types strictly.

Targets: the checks pass for both providers; geo-cs's server time is no longer than either
provider's (ratio <= 1.0, ``identity``).

What each side is given (all in their own processes on loopback, one worker each, access log
off; before the timed passes each answers one untimed page):

* **geo-cs**: ``uvicorn geo_cs.api.app:create_app --factory --workers 1`` with ``GEO_CS_DB`` = the GB
  store of ``_gb_store.gb_store()`` (all GB small areas; items read from its ``areas`` table
  in DuckDB: ``geom_4326`` as stored, Polygon or MultiPolygon, sent as MultiPolygon).
* **pygeoapi, OGR provider** (0.21, its Starlette app ``pygeoapi.starlette_app:APP`` under
  uvicorn) on a GeoPackage (``source_type: GPKG``): the store's 34,753 LSOA 2011 rows,
  ``ST_Multi(geom_4326)`` (lon/lat), written in code order with geopandas/pyogrio with a spatial
  index, columns ``id`` (= code, the ``id_field``), code, name, nation, geography, vintage and
  ``area_km2 = round(area_m2 / 1e6, 4)`` (as geo-cs computes it). The provider pages with
  ``SELECT * … LIMIT n OFFSET m`` (GeoPackage row order: code order) and gives no
  ``numberMatched``; pygeoapi adds a ``next`` link whenever a page is full.
* **pygeoapi, PostgreSQL provider** (the same pygeoapi; SQLAlchemy, GeoAlchemy2, psycopg2) on a
  PostGIS table of the same rows and columns: ``id`` text primary key, ``geom
  geometry(MultiPolygon, 4326)`` with a GiST index, written in code order, ``VACUUM ANALYZE``d;
  PostgreSQL 15 and PostGIS 3 from Debian (``postgresql-15-postgis-3``) in a throwaway cluster
  started here (``bench_tiles.PgCluster`` with its settings: durability off, 1 GB shared
  buffers, JIT off), reached over TCP on loopback. Per page the provider counts the matches
  (``count(*)``) and reads ``LIMIT n OFFSET m`` with no ``ORDER BY`` (the table's physical
  order: code order, as written); each row's WKB becomes GeoJSON through shapely.
* Both pygeoapi servers: ``pretty_print: false``, ``gzip: true`` (compressing only when the
  client asks), ``max_items: 10000`` (geo-cs's maximum), logging at ERROR, from their own
  virtual environment ``bench/.cache/pygeoapi-venv`` (Debian's python3 with its GDAL 3.6
  bindings, ``python3-gdal``, via ``--system-site-packages``, plus :data:`PYGEOAPI_PACKAGES`),
  created here when missing; nothing is added to the project's environment.

The client is the same for every side: one ``httpx.Client`` (HTTP/1.1 keep-alive), sequential,
in this process, the body read raw (``iter_raw``). The 1-minute load average is stored; the
machine should be otherwise idle.

Results are printed and written to ``bench/results/features.json``. Exit status: 0 whether or not
the targets are met, 1 when a run fails (a server does not start, a request fails), 2 when the
inputs are missing (the shared data for the GB store, Debian's python3 with GDAL bindings, or
PostgreSQL with PostGIS), 3 when the tree is dirty (``_harness.write_results``).

Run from the repository root (about 15 minutes on 2 cores, most of it pygeoapi's passes)::

    python bench/bench_features.py [--repeat 3] [--limit 1000] [--encodings identity,gzip]
                                   [--peers ogr,postgresql]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import _harness as h
import httpx
import numpy as np
from _gb_store import CACHE, gb_store, shared_missing
from rich.console import Console
from rich.table import Table

DEFAULT_OUT = h.RESULTS / "features.json"
WORKDIR = CACHE / "features"
PYGEOAPI_VENV = CACHE / "pygeoapi-venv"
SYSTEM_PYTHON = Path("/usr/bin/python3")  # Debian's, with python3-gdal (osgeo) for the OGR provider
#: pygeoapi and what its Starlette app and PostgreSQL provider need (its OGR provider uses GDAL's
#: bindings from Debian's python3)
PYGEOAPI_PACKAGES = ["pygeoapi==0.21.0", "starlette", "uvicorn", "GeoAlchemy2", "psycopg2-binary"]
SET_ID = "lsoa2011"
EXPECTED = 34_753
PROPERTIES = ("code", "name", "nation", "geography", "vintage", "area_km2")
TARGET_RATIO = 1.0
GEO_CS = "geo-cs"
#: the peers: pygeoapi with each provider (``--peers`` takes the short names)
PEERS = {"ogr": "pygeoapi-ogr", "postgresql": "pygeoapi-postgresql"}
ENCODINGS = ("identity", "gzip")
#: the largest coordinate difference (degrees) that still counts as the same vertex
COORD_TOLERANCE = 1e-9


class RunFailed(h.ChildFailed):
    pass


# -- setup (untimed) ---------------------------------------------------------------------------

def ensure_pygeoapi(console: Console) -> Path:
    """The pygeoapi virtual environment's python, created (or completed) when missing."""
    python = PYGEOAPI_VENV / "bin" / "python"
    check = [str(python), "-c", "import osgeo.ogr, pygeoapi.starlette_app, uvicorn, geoalchemy2, psycopg2"]
    env = {**os.environ, "PYGEOAPI_CONFIG": "/nonexistent", "PYGEOAPI_OPENAPI": "/nonexistent"}
    if python.exists():
        # importing starlette_app reads the config: a missing file is fine, an ImportError is not
        done = subprocess.run(check, capture_output=True, text=True, env=env)
        if "ModuleNotFoundError" not in done.stderr and "ImportError" not in done.stderr:
            return python
    if not SYSTEM_PYTHON.exists() or subprocess.run(
            [str(SYSTEM_PYTHON), "-c", "import osgeo.ogr"], capture_output=True).returncode != 0:
        raise FileNotFoundError(f"{SYSTEM_PYTHON} with GDAL's Python bindings (apt-get install python3-gdal)")
    console.print(f"setting up {PYGEOAPI_VENV} (system python3 + python3-gdal; pip install "
                  f"{' '.join(PYGEOAPI_PACKAGES)})")
    if not python.exists():
        subprocess.run([str(SYSTEM_PYTHON), "-m", "venv", "--system-site-packages", str(PYGEOAPI_VENV)],
                       check=True)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", *PYGEOAPI_PACKAGES], check=True)
    return python


#: The rows every peer is given: the store's LSOA 2011 areas with geo-cs's item properties and
#: its served geometry (every area a MultiPolygon), in code order. SET_ID is this file's own.
_ROWS_SQL = f"""
SELECT code AS id, code, name, nation, geography, vintage, round(area_m2 / 1e6, 4) AS area_km2,
       ST_AsWKB(ST_Multi(geom_4326)) AS wkb
FROM areas WHERE set_id = '{SET_ID}' AND xmin IS NOT NULL ORDER BY code
"""


def export_gpkg(store_path: Path, console: Console) -> Path:
    """The store's LSOA 2011 rows (:data:`_ROWS_SQL`) as a GeoPackage (reused while the store is)."""
    path = WORKDIR / f"{SET_ID}-{store_path.stem}-multi.gpkg"
    if path.exists():
        return path
    import geopandas as gpd
    import pyogrio
    import shapely

    from geo_cs.store import Store

    WORKDIR.mkdir(parents=True, exist_ok=True)
    for old in WORKDIR.glob(f"{SET_ID}-*.gpkg"):
        old.unlink()
    with console.status("setup: exporting the LSOA 2011 polygons to a GeoPackage for pygeoapi"):
        with Store.open(store_path, read_only=True) as store:
            df = store.sql(_ROWS_SQL).df()
        geoms = shapely.from_wkb([bytes(w) for w in df.pop("wkb")])
        gdf = gpd.GeoDataFrame(df, geometry=geoms, crs="OGC:CRS84")
        partial = path.with_suffix(".partial.gpkg")
        partial.unlink(missing_ok=True)
        pyogrio.write_dataframe(gdf, partial, layer=SET_ID, driver="GPKG", geometry_type="MultiPolygon",
                                layer_options={"SPATIAL_INDEX": "YES"},
                                # GeoPackage 1.2: the GDAL 3.6 of pygeoapi's environment warns on
                                # every open of a 1.4 file (pyogrio's newer GDAL writes 1.4)
                                dataset_options={"VERSION": "1.2"})
        partial.rename(path)
    return path


def load_postgis(conninfo: str, store_path: Path, console: Console) -> dict[str, Any]:
    """The same rows (:data:`_ROWS_SQL`) as the PostGIS table ``lsoa2011``: id primary key,
    MultiPolygon geometry with a GiST index, written in code order, analysed."""
    import psycopg

    from geo_cs.store import Store

    t0 = time.perf_counter()
    with console.status("setup: loading the LSOA 2011 polygons into PostGIS"), \
            psycopg.connect(conninfo, autocommit=True) as con, \
            Store.open(store_path, read_only=True) as store:
        cur = con.cursor()
        cur.execute("CREATE EXTENSION IF NOT EXISTS postgis")
        cur.execute("CREATE UNLOGGED TABLE stage (id text, code text, name text, nation text, "
                    "geography text, vintage integer, area_km2 double precision, wkb bytea)")
        rows = store.sql(_ROWS_SQL)
        with cur.copy("COPY stage FROM STDIN") as copy:
            while batch := rows.fetchmany(2000):
                for row in batch:
                    copy.write_row([*row[:7], bytes(row[7])])
        cur.execute(f"CREATE TABLE {SET_ID} AS SELECT id, code, name, nation, geography, vintage, "
                    "area_km2, ST_SetSRID(ST_GeomFromWKB(wkb), 4326)::geometry(MultiPolygon, 4326) AS geom "
                    "FROM stage ORDER BY id")
        cur.execute("DROP TABLE stage")
        cur.execute(f"ALTER TABLE {SET_ID} ADD PRIMARY KEY (id)")
        cur.execute(f"CREATE INDEX ON {SET_ID} USING gist (geom)")
        cur.execute(f"VACUUM ANALYZE {SET_ID}")
        n, size = cur.execute(f"SELECT count(*), pg_total_relation_size('{SET_ID}') FROM {SET_ID}").fetchone()
        versions = cur.execute("SELECT version(), postgis_full_version()").fetchone()
    return {"rows": n, "table_mb": round(size / 1e6, 1), "seconds": round(time.perf_counter() - t0, 1),
            "postgresql": versions[0], "postgis": versions[1]}


PYGEOAPI_CONFIG = """\
server:
  bind: {{host: 127.0.0.1, port: {port}}}
  url: http://127.0.0.1:{port}
  mimetype: application/json; charset=UTF-8
  encoding: utf-8
  gzip: true
  languages: [en-US]
  cors: false
  pretty_print: false
  limits: {{default_items: 10, max_items: 10000}}
  map: {{url: 'https://tile.openstreetmap.org/{{z}}/{{x}}/{{y}}.png', attribution: OpenStreetMap}}
logging:
  level: ERROR
metadata:
  identification:
    title: geo-cs benchmark
    description: LSOA 2011 for the OGC API Features paging benchmark
    keywords: [lsoa]
    keywords_type: theme
    terms_of_service: https://creativecommons.org/licenses/by/4.0/
    url: http://127.0.0.1:{port}
  license: {{name: OGL-UK-3.0, url: 'https://www.nationalarchives.gov.uk/doc/open-government-licence/'}}
  provider: {{name: geo-cs bench, url: 'http://127.0.0.1'}}
  contact: {{name: bench, position: bench, address: none, city: none, stateorprovince: none,
            postalcode: none, country: UK, phone: none, fax: none, email: none@example.org,
            url: 'http://127.0.0.1', hours: none, instructions: none, role: pointOfContact}}
resources:
  {set_id}:
    type: collection
    title: LSOA 2011
    description: Lower layer super output areas 2011 (England and Wales)
    keywords: [lsoa]
    extents:
      spatial: {{bbox: [-6.5, 49.8, 2.0, 55.9], crs: 'http://www.opengis.net/def/crs/OGC/1.3/CRS84'}}
    providers:
{provider}
"""

PROVIDER_OGR = """\
      - type: feature
        name: OGR
        data:
          source_type: GPKG
          source: '{gpkg}'
          # without it the OGR provider ignores offset: every page is the first one, each full
          # page gets a next link, and paging never ends
          source_capabilities: {{paging: true}}
        id_field: id
        layer: {set_id}
"""

PROVIDER_POSTGRESQL = """\
      - type: feature
        name: PostgreSQL
        data:
          host: 127.0.0.1
          port: {pg_port}
          dbname: postgres
          user: postgres
          search_path: [public]
        id_field: id
        table: {set_id}
        geom_field: geom
"""


def start_pygeoapi(python: Path, name: str, provider: str) -> h.Server:
    """pygeoapi under uvicorn (one worker) with one collection served by ``provider`` (YAML)."""
    port = h.free_port()
    config = WORKDIR / f"{name}-config.yml"
    openapi = WORKDIR / f"{name}-openapi.yml"
    config.write_text(PYGEOAPI_CONFIG.format(port=port, set_id=SET_ID, provider=provider))
    env = {**os.environ, "PYGEOAPI_CONFIG": str(config), "PYGEOAPI_OPENAPI": str(openapi)}
    env.pop("PYTHONPATH", None)
    done = subprocess.run([str(python.parent / "pygeoapi"), "openapi", "generate", str(config),
                           "--output-file", str(openapi)], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RunFailed(f"{name}: pygeoapi openapi generate failed:\n{done.stderr[-3000:]}")
    cmd = [str(python), "-m", "uvicorn", "pygeoapi.starlette_app:APP", "--host", "127.0.0.1",
           "--port", str(port), "--workers", "1", "--no-access-log", "--log-level", "warning"]
    return h.Server(name, cmd, env, port, WORKDIR, WORKDIR)


# -- the client ---------------------------------------------------------------------------------

def get_page(client: httpx.Client, url: str, encoding: str) -> tuple[httpx.Response, bytes, float]:
    """GET ``url`` asking for ``encoding``: the response, its body as sent (not decompressed)
    and the seconds from sending the request to the body's last byte."""
    t0 = time.perf_counter()
    with client.stream("GET", url, headers={"Accept-Encoding": encoding}) as response:
        raw = b"".join(response.iter_raw())
    return response, raw, time.perf_counter() - t0


def decode(response: httpx.Response, raw: bytes) -> bytes:
    """The body as the server meant it: gunzipped when it came gzipped."""
    return gzip.decompress(raw) if response.headers.get("content-encoding") == "gzip" else raw


def first_url(server: h.Server, limit: int) -> str:
    return f"{server.base}/collections/{SET_ID}/items?limit={limit}&offset=0"


def next_link(page: dict[str, Any]) -> str | None:
    return next((link["href"] for link in page.get("links", []) if link.get("rel") == "next"), None)


def page_through(client: httpx.Client, server: h.Server, limit: int, encoding: str) -> dict[str, Any]:
    """Follow ``next`` links from offset 0 until none; the same loop for every server. Server
    time: request to last byte; client time: gunzip and ``json.loads``."""
    url: str | None = first_url(server, limit)
    pages = wire = body_bytes = n_features = gzipped = 0
    ids: set[str] = set()
    server_s = client_s = 0.0
    last_size = 0
    t0 = time.perf_counter()
    while url is not None:
        response, raw, seconds = get_page(client, url, encoding)
        server_s += seconds
        if response.status_code != 200:
            raise RunFailed(f"{server.name}: GET {url} -> {response.status_code}: {raw[:500]!r}")
        c0 = time.perf_counter()
        body = decode(response, raw)
        page = json.loads(body)
        client_s += time.perf_counter() - c0
        pages += 1
        wire += len(raw)
        body_bytes += len(body)
        gzipped += response.headers.get("content-encoding") == "gzip"
        features = page["features"]
        before = len(ids)
        ids.update(str(f["id"]) for f in features)
        repeated = len(features) - (len(ids) - before)
        n_features += len(features)
        last_size = len(features)
        url = next_link(page)
        if repeated or pages > EXPECTED // limit + 3:
            raise RunFailed(f"{server.name}: paging is broken: page {pages} ({response.url}) repeats "
                            f"{repeated} of its {len(features)} ids; {n_features:,} features so far")
    return {"seconds": time.perf_counter() - t0, "server_seconds": server_s, "client_seconds": client_s,
            "pages": pages, "wire_bytes": wire, "body_bytes": body_bytes, "gzipped_pages": gzipped,
            "features": n_features, "unique_ids": len(ids), "last_page_size": last_size,
            "rss_mb": round(h.proc_status_mb("VmRSS", server.proc.pid), 1)}


# -- the check: the same features from every server -------------------------------------------------

def rings(geometry: dict[str, Any] | None) -> list[list[np.ndarray]] | None:
    """A (Multi)Polygon's parts, each a list of rings as (n, 2) arrays: a Polygon as a
    MultiPolygon of one part (the normalisation); None for anything else."""
    if not geometry or geometry.get("type") not in ("Polygon", "MultiPolygon"):
        return None
    polygons = [geometry["coordinates"]] if geometry["type"] == "Polygon" else geometry["coordinates"]
    return [[np.asarray(ring, dtype=float) for ring in polygon] for polygon in polygons]


def geometry_difference(a: dict[str, Any] | None, b: dict[str, Any] | None) -> float:
    """The largest coordinate difference (degrees) of two (Multi)Polygons normalised to
    MultiPolygons; infinity when their parts, rings or vertex counts differ."""
    ra, rb = rings(a), rings(b)
    if ra is None or rb is None or len(ra) != len(rb):
        return float("inf")
    worst = 0.0
    for pa, pb in zip(ra, rb, strict=True):
        if len(pa) != len(pb) or any(x.shape != y.shape for x, y in zip(pa, pb, strict=True)):
            return float("inf")
        for x, y in zip(pa, pb, strict=True):
            if len(x):
                worst = max(worst, float(np.abs(x - y).max()))
    return worst


class Comparison:
    """Features of geo-cs against one peer's, matched by id as their pages arrive."""

    def __init__(self, peer: str) -> None:
        self.peer = peer
        self.waiting: dict[str, dict[str, dict[str, Any]]] = {GEO_CS: {}, peer: {}}
        self.compared = 0
        self.properties_differ: list[dict[str, Any]] = []
        self.extra_properties: dict[str, set[str]] = {GEO_CS: set(), peer: set()}
        self.type_differs: dict[tuple[str, str], int] = {}
        self.type_examples: list[str] = []
        self.geometry_differs: list[str] = []
        self.only_type_differs = 0
        self.max_difference = 0.0

    def add(self, side: str, features: list[dict[str, Any]]) -> None:
        other = self.peer if side == GEO_CS else GEO_CS
        for f in features:
            fid = str(f["id"])
            if fid in self.waiting[other]:
                pair = {side: f, other: self.waiting[other].pop(fid)}
                self._compare(fid, pair[GEO_CS], pair[self.peer])
            else:
                self.waiting[side][fid] = f

    def _compare(self, fid: str, g: dict[str, Any], p: dict[str, Any]) -> None:
        self.compared += 1
        gp, pp = g.get("properties") or {}, p.get("properties") or {}
        self.extra_properties[GEO_CS].update(set(gp) - set(PROPERTIES))
        self.extra_properties[self.peer].update(set(pp) - set(PROPERTIES))
        mine, theirs = {k: gp.get(k) for k in PROPERTIES}, {k: pp.get(k) for k in PROPERTIES}
        if mine != theirs:
            self.properties_differ.append({"id": fid, GEO_CS: mine, self.peer: theirs})
        gt, pt = (g.get("geometry") or {}).get("type"), (p.get("geometry") or {}).get("type")
        difference = geometry_difference(g.get("geometry"), p.get("geometry"))
        if gt != pt:
            self.type_differs[(str(gt), str(pt))] = self.type_differs.get((str(gt), str(pt)), 0) + 1
            if len(self.type_examples) < 3:
                self.type_examples.append(fid)
            self.only_type_differs += difference <= COORD_TOLERANCE
        if difference > COORD_TOLERANCE:
            self.geometry_differs.append(fid)
        elif difference > self.max_difference:
            self.max_difference = difference

    def summary(self) -> dict[str, Any]:
        return {
            "features_compared": self.compared,
            "only_geo_cs": len(self.waiting[GEO_CS]), f"only_{self.peer}": len(self.waiting[self.peer]),
            "only_examples": sorted(self.waiting[GEO_CS])[:3] + sorted(self.waiting[self.peer])[:3],
            "properties_differ": len(self.properties_differ),
            "properties_differ_examples": self.properties_differ[:3],
            "extra_properties": {k: sorted(v) for k, v in self.extra_properties.items()},
            "geometry_type_differs": sum(self.type_differs.values()),
            "geometry_type_pairs": {f"{a} (geo-cs) / {b}": n for (a, b), n in self.type_differs.items()},
            "geometry_type_differs_examples": self.type_examples,
            "geometry_type_differs_but_same_geometry": self.only_type_differs,
            "geometry_differs": len(self.geometry_differs),
            "geometry_differs_examples": self.geometry_differs[:3],
            "max_coordinate_difference_deg": self.max_difference,
            "coordinate_tolerance_deg": COORD_TOLERANCE,
        }

    def same(self) -> bool:
        s = self.summary()
        return (self.compared == EXPECTED and not self.waiting[GEO_CS] and not self.waiting[self.peer]
                and s["properties_differ"] == 0 and s["geometry_type_differs"] == 0
                and s["geometry_differs"] == 0)


def verify(client: httpx.Client, servers: dict[str, h.Server], limit: int,
           console: Console) -> dict[str, Comparison]:
    """One untimed pass per server (``identity``), the servers' pages taken in turn and each
    peer's features compared with geo-cs's as they arrive."""
    comparisons = {name: Comparison(name) for name in servers if name != GEO_CS}
    urls: dict[str, str | None] = {name: first_url(s, limit) for name, s in servers.items()}
    pages = 0
    with console.status("checking: every server's features against geo-cs's"):
        while any(urls.values()):
            for name, url in urls.items():
                if url is None:
                    continue
                response, raw, _ = get_page(client, url, "identity")
                if response.status_code != 200:
                    raise RunFailed(f"{name}: GET {url} -> {response.status_code}: {raw[:500]!r}")
                page = json.loads(decode(response, raw))
                for comparison in comparisons.values():
                    if name in (GEO_CS, comparison.peer):
                        comparison.add(name, page["features"])
                urls[name] = next_link(page)
            pages += 1
            if pages > EXPECTED // limit + 3:
                raise RunFailed("checking: paging does not end")
    return comparisons


def iter_rounds(sides: list[tuple[str, str]], repeat: int) -> Iterator[tuple[int, tuple[str, str]]]:
    """(round, (server, encoding)) for every pass, the order rotated each round."""
    for i in range(repeat):
        k = i % len(sides)
        for side in sides[k:] + sides[:k]:
            yield i, side


# -- report ---------------------------------------------------------------------------------------

def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    def median(key: str) -> float:
        return round(statistics.median(r[key] for r in runs), 3)

    first = runs[0]
    shape = ("pages", "wire_bytes", "body_bytes", "features", "unique_ids", "gzipped_pages")
    return {
        "median_server_seconds": median("server_seconds"),
        "median_client_seconds": median("client_seconds"),
        "median_seconds": median("seconds"),
        "min_server_seconds": round(min(r["server_seconds"] for r in runs), 3),
        **{k: first[k] for k in (*shape, "last_page_size")},
        "consistent_across_runs": all(all(r[k] == first[k] for k in shape) for r in runs),
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3,
                        help="timed passes per server and encoding (default 3)")
    parser.add_argument("--limit", type=int, default=1000, help="items per page (default 1000)")
    parser.add_argument("--encodings", default=",".join(ENCODINGS),
                        help="Accept-Encoding values to time, comma-separated (default identity,gzip; "
                             "identity is the headline)")
    parser.add_argument("--peers", default=",".join(PEERS),
                        help="pygeoapi providers to compare with (default ogr,postgresql)")
    parser.add_argument("--pg-bin", type=Path, default=None,
                        help="PostgreSQL's bin directory (default: the newest in /usr/lib/postgresql "
                             "with PostGIS)")
    h.add_out(parser, DEFAULT_OUT)
    args = parser.parse_args(argv)
    args.encodings = [e.strip() for e in args.encodings.split(",") if e.strip()]
    args.peers = [p.strip() for p in args.peers.split(",") if p.strip()]
    if args.repeat < 1 or not 1 <= args.limit <= 10_000:
        parser.error("--repeat must be >= 1 and --limit 1-10000")
    if not args.encodings or set(args.encodings) - set(ENCODINGS):
        parser.error(f"--encodings: some of {', '.join(ENCODINGS)}")
    if not args.peers or set(args.peers) - set(PEERS):
        parser.error(f"--peers: some of {', '.join(PEERS)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    console = Console(width=max(Console().width, 140))
    h.require_clean(console)
    if shared_missing(console):
        return 2
    peers = [PEERS[p] for p in args.peers]
    postgis = None
    if PEERS["postgresql"] in peers:
        from bench_tiles import find_postgis

        postgis = find_postgis(args.pg_bin)
        if isinstance(postgis, str):
            console.print(f"[red]missing:[/] {postgis} (or leave it out: --peers ogr)")
            return 2
    try:
        pygeoapi_python = ensure_pygeoapi(console)
    except FileNotFoundError as exc:
        console.print(f"[red]missing:[/] {exc}")
        return 2
    except subprocess.CalledProcessError as exc:
        console.print(f"[red]could not set up pygeoapi:[/] {exc}")
        return 1
    store_path = gb_store()
    gpkg = export_gpkg(store_path, console) if PEERS["ogr"] in peers else None
    load = h.warn_if_busy(console)
    h.stop_on_sigterm()  # stop the servers and the cluster on the way out

    servers: dict[str, h.Server] = {}
    cluster = None
    pg_info: dict[str, Any] = {}
    sides = [(name, enc) for name in [GEO_CS, *peers] for enc in args.encodings]
    runs: dict[tuple[str, str], list[dict[str, Any]]] = {side: [] for side in sides}
    rss_start: dict[str, float] = {}
    peak: dict[str, float] = {}
    try:
        if postgis is not None:
            from bench_tiles import PgCluster

            cluster = PgCluster(postgis[0], console)
            with console.status("setup: starting a throwaway PostgreSQL cluster"):
                cluster.start()
            pg_info = load_postgis(cluster.conninfo(), store_path, console)
        servers[GEO_CS] = h.start_geo_cs(store_path, WORKDIR)
        if gpkg is not None:
            servers[PEERS["ogr"]] = start_pygeoapi(pygeoapi_python, PEERS["ogr"],
                                                   PROVIDER_OGR.format(gpkg=gpkg, set_id=SET_ID))
        if cluster is not None:
            servers[PEERS["postgresql"]] = start_pygeoapi(
                pygeoapi_python, PEERS["postgresql"], PROVIDER_POSTGRESQL.format(pg_port=cluster.port,
                                                                                 set_id=SET_ID))
        with console.status("starting the servers"):
            for s in servers.values():
                s.wait_ready(f"/collections/{SET_ID}")
        with httpx.Client(timeout=600) as client:
            for name, s in servers.items():  # warm-up: one page, untimed
                response, raw, _ = get_page(client, first_url(s, args.limit), "identity")
                if response.status_code != 200:
                    raise RunFailed(f"{name}: warm-up page -> {response.status_code}: {raw[:500]!r}")
                rss_start[name] = round(h.proc_status_mb("VmRSS", s.proc.pid), 1)
            comparisons = verify(client, servers, args.limit, console)
            for round_, (name, encoding) in iter_rounds(sides, args.repeat):
                with console.status(f"round {round_ + 1}/{args.repeat}: paging through {name} ({encoding})"):
                    result = page_through(client, servers[name], args.limit, encoding)
                runs[(name, encoding)].append(result)
                console.print(f"  round {round_ + 1} {name:20s} {encoding:8s}: "
                              f"server {result['server_seconds']:6.2f} s, "
                              f"client {result['client_seconds']:5.2f} s ({result['pages']} pages, "
                              f"{result['features']:,} features, "
                              f"{result['wire_bytes'] / 1e6:.1f} MB on the wire)")
        for name, s in servers.items():
            peak[name] = round(h.proc_status_mb("VmHWM", s.proc.pid), 1)
            if s.proc.poll() is not None:
                raise RunFailed(f"{name} died during the run:\n{s.log_tail()}")
    except (RunFailed, httpx.HTTPError, RuntimeError) as exc:
        console.print(f"[red]run failed:[/] {exc}")
        for s in servers.values():
            console.print(f"--- {s.name} log ---\n{s.log_tail()}")
        return 1
    finally:
        for s in servers.values():
            s.stop()
        if cluster is not None:
            cluster.stop()

    summary = {name: {enc: summarise(runs[(name, enc)]) for enc in args.encodings} for name in servers}
    checks = {peer: comparisons[peer].summary() for peer in peers}
    counts_ok = {name: all(s["features"] == EXPECTED and s["unique_ids"] == EXPECTED
                           for s in summary[name].values()) for name in servers}
    same_ok = {peer: comparisons[peer].same() for peer in peers}
    # every server sends what the client asked for: gzip when asked, plain when not
    encoding_ok = {name: all((summary[name][enc]["gzipped_pages"] == summary[name][enc]["pages"])
                             if enc == "gzip" else summary[name][enc]["gzipped_pages"] == 0
                             for enc in args.encodings) for name in servers}
    def ratio(enc: str, peer: str, key: str) -> float:
        return round(summary[GEO_CS][enc][key] / summary[peer][enc][key], 4)

    ratios = {enc: {peer: {"server": ratio(enc, peer, "median_server_seconds"),
                           "wall": ratio(enc, peer, "median_seconds")} for peer in peers}
              for enc in args.encodings}
    head_enc = "identity" if "identity" in args.encodings else args.encodings[0]
    head_peer = min(peers, key=lambda p: summary[p][head_enc]["median_server_seconds"])
    headline = ratios[head_enc][head_peer]["server"]
    speed_ok = {peer: ratios[head_enc][peer]["server"] <= TARGET_RATIO for peer in peers}

    table = Table(title=f"Paging through all {EXPECTED:,} LSOA 2011 items at limit={args.limit}, "
                        f"median of {args.repeat}")
    for column in ("server", "Accept-Encoding", "server s (to last byte)", "client s (gunzip+parse)",
                   "wall s", "pages", "wire MB", "JSON MB", "gzipped pages", "features",
                   "RSS after warm-up MB", "peak RSS MB"):
        table.add_column(column, justify="left" if column in ("server", "Accept-Encoding") else "right")
    for name in servers:
        for enc in args.encodings:
            s = summary[name][enc]
            table.add_row(name, enc, f"{s['median_server_seconds']:.2f}", f"{s['median_client_seconds']:.2f}",
                          f"{s['median_seconds']:.2f}", str(s["pages"]), f"{s['wire_bytes'] / 1e6:.1f}",
                          f"{s['body_bytes'] / 1e6:.1f}", str(s["gzipped_pages"]), f"{s['features']:,}",
                          f"{rss_start[name]:.0f}", f"{peak[name]:.0f}")
    console.print(table)

    def verdict(ok: bool) -> str:
        return "[green]PASS[/]" if ok else "[red]FAIL[/]"

    for enc in args.encodings:
        for peer in peers:
            r = ratios[enc][peer]
            target = (f" (target <= {TARGET_RATIO}: {verdict(speed_ok[peer])})" if enc == head_enc else "")
            console.print(f"{enc:8s} geo-cs / {peer}: server time {r['server']:.3f}{target}, "
                          f"wall (with the client's parsing) {r['wall']:.3f}")
    console.print(f"headline: geo-cs / {head_peer} (the faster provider), server time, {head_enc}: "
                  f"{headline:.3f} ({1 / headline:.1f}x)")
    for peer in peers:
        c = checks[peer]
        console.print(f"check {peer}: {c['features_compared']:,} features matched by id (only geo-cs "
                      f"{c['only_geo_cs']}, only {peer} {c[f'only_{peer}']}); properties differ on "
                      f"{c['properties_differ']}, geometry type on {c['geometry_type_differs']} "
                      f"{c['geometry_type_pairs'] or ''}, geometry on {c['geometry_differs']} (max "
                      f"coordinate difference {c['max_coordinate_difference_deg']:.1e} deg): "
                      f"{verdict(same_ok[peer])}")
    console.print("counts: " + ", ".join(f"{n} {verdict(ok)}" for n, ok in counts_ok.items())
                  + "; encoding as asked: "
                  + ", ".join(f"{n} {verdict(ok)}" for n, ok in encoding_ok.items()))

    pygeoapi_env = h.other_python_packages(pygeoapi_python, "pygeoapi", "starlette", "uvicorn", "SQLAlchemy",
                                           "GeoAlchemy2", "psycopg2-binary", "shapely", "GDAL")
    given = ("Each server the same 34,753 LSOA 2011 areas with the same properties (id = code, code, "
             "name, nation, geography, vintage, area_km2 = round(area_m2 / 1e6, 4)) and the same "
             "geometries as geo-cs serves them (ST_Multi(geom_4326): MultiPolygon, lon/lat): geo-cs "
             "its GB store (DuckDB); pygeoapi 0.21 (Starlette, uvicorn, 1 worker) an OGR provider "
             "on a GeoPackage (spatial index) and a PostgreSQL provider on a PostGIS table (id "
             "primary key, GiST index). The same client and Accept-Encoding for all: identity "
             "(neither compresses; headline) and gzip (geo-cs zlib level 1; pygeoapi gzip: true, "
             "level 9). Headline: server time (request to last byte, no parsing).")
    peer = h.peer("pygeoapi", pygeoapi_env.get("pygeoapi"), given,
                  environment=pygeoapi_env, config=PYGEOAPI_CONFIG.split("resources:")[0],
                  providers={PEERS["ogr"]: PROVIDER_OGR, PEERS["postgresql"]: PROVIDER_POSTGRESQL},
                  postgresql=pg_info or None, geopackage=gpkg.name if gpkg else None,
                  servers={name: s.cmd for name, s in servers.items()})
    out = {
        "benchmark": "features",
        "timestamp": h.timestamp(),
        "commit": h.git_commit(),
        "machine": h.machine(memory_gb=h.memory_gb(), python=sys.version.split()[0],
                             **h.package_versions("duckdb", "fastapi", "starlette", "uvicorn", "httpx")),
        "inputs": {"store": store_path.name, "collection": SET_ID, "expected_features": EXPECTED,
                   "geopackage": gpkg.name if gpkg else None, "postgis_table": pg_info or None},
        "repeat": args.repeat, "limit": args.limit, "encodings": args.encodings, "peers": peers,
        "method": {
            "client": "one httpx.Client, sequential; GET items?limit=L&offset=0 then each page's next "
                      "link until none, the same Accept-Encoding to every server; body read raw",
            "server_seconds": "per page, request sent to the last byte of the body as sent (not "
                              "decompressed, not parsed), summed: the headline",
            "client_seconds": "the client's gunzip and json.loads of each page (to find the next link)",
            "seconds": "wall time of the pass: server + client",
            "servers": "uvicorn, 1 worker each, loopback, access log off; geo-cs geo_cs.api.app:create_app "
                       "on the GB store; pygeoapi 0.21 starlette_app:APP with the OGR provider on a "
                       "GeoPackage and with the PostgreSQL provider on PostGIS, both exported from "
                       "the same store (same ids, properties and MultiPolygon geometries)",
            "timing": "one untimed warm-up page per server, one untimed checking pass per server; "
                      "then passes cycling through every (server, encoding), order rotated each "
                      "round; median",
            "check": "features matched by id: properties equal, geometry type equal as served "
                     "(strict), geometry equal: same parts, rings and vertex counts, coordinates "
                     f"within {COORD_TOLERANCE} deg",
            "rss": "server process VmRSS after the warm-up page; VmHWM at the end (pygeoapi's "
                   "process, not PostgreSQL's)",
        },
        "results": {name: {**{enc: {**summary[name][enc], "runs": runs[(name, enc)]}
                              for enc in args.encodings},
                           "rss_after_warmup_mb": rss_start[name], "peak_rss_mb": peak[name]}
                    for name in servers},
        "ratios_geo_cs_over_peer": ratios,
        "headline": {"peer": head_peer, "encoding": head_enc, "measure": "median server time, geo-cs / peer"},
        "ratio_geo_cs_over_pygeoapi": headline,
        "comparison": checks,
        "targets": {"features": EXPECTED, "unique_ids": EXPECTED,
                    "same_ids_properties_geometry_type_and_geometry": True,
                    "server_time_ratio_max": TARGET_RATIO},
        "pass": {"counts": counts_ok, "same_features": same_ok, "encoding_as_asked": encoding_ok,
                 "speed": speed_ok},
        "loadavg_at_start": list(load), "loadavg_at_end": list(os.getloadavg()),
    }
    h.write_results(args.out, out, console, peer=peer)
    return 0


if __name__ == "__main__":
    sys.exit(main())
