"""Benchmark: paging through every LSOA 2011 item over OGC API - Features, geo-cs against pygeoapi.

What is measured
----------------
A client pages through all 34,753 LSOA 2011 items of ``/collections/lsoa2011/items`` at
``limit=1000`` (``--limit``), starting at offset 0 and following each page's ``next`` link until
a page has none, once against geo-cs and once against pygeoapi serving the same polygons with the
same properties, in the same run. Reported per server: the wall time of the whole pass (the
median of ``--repeat``, default 3, passes; the sides alternate, order rotated each round), the
part of it spent in HTTP (request sent to body fully read; the rest is the client parsing JSON
to find the ``next`` link), the pages and bytes received, the features received and how many
distinct ids they carry, and the server process's RSS after the warm-up and its peak
(``VmHWM`` of ``/proc/<pid>/status``) at the end. The ratio geo-cs / pygeoapi of the median wall
times is printed (below 1: geo-cs is faster).

Targets: both servers return exactly 34,753 features with 34,753 distinct ids, the same ids,
and the same properties per id; geo-cs takes no longer than pygeoapi (ratio <= 1.0).

The servers, each in its own process on loopback, one worker each, access log off:

* **geo-cs**: ``uvicorn api.app:create_app --factory --workers 1`` with ``GEO_CS_DB`` = the GB
  store of ``_gb_store.gb_store()`` (all GB small areas; items are read from DuckDB).
* **pygeoapi** (0.21, its Starlette app ``pygeoapi.starlette_app:APP`` under uvicorn, one
  worker) with its OGR provider on a GeoPackage (``source_type: GPKG``): the 34,753 LSOA 2011
  rows of the store's ``areas`` table (``geom_4326``, lon/lat, Polygon/MultiPolygon as stored)
  written in code order with geopandas/pyogrio, with a spatial index, columns ``id`` (= code,
  the provider's ``id_field``), code, name, nation, geography, vintage and
  ``area_km2 = round(area_m2 / 1e6, 4)`` (as geo-cs computes it), so both return the same
  feature ids and properties. ``pretty_print: false`` and ``gzip: false`` (geo-cs does not
  compress items either), ``max_items: 10000`` (geo-cs's maximum), logging at ERROR.
  pygeoapi's OGR provider pages with ``SELECT * … LIMIT n OFFSET m`` (GeoPackage row order, which
  is code order here) and gives no ``numberMatched``; pygeoapi then adds a ``next`` link whenever
  a page is full. pygeoapi runs from its own virtual environment ``bench/.cache/pygeoapi-venv``
  (Debian's python3 with its GDAL 3.6 bindings, ``python3-gdal``, via ``--system-site-packages``,
  plus ``pip install pygeoapi starlette uvicorn``), created here when missing; nothing is added
  to the project's environment. See ``bench/requirements-bench.txt``.

The client is the same for both: one ``httpx.Client`` (HTTP/1.1 keep-alive), sequential, in this
process. Before the timed passes each server answers one untimed page (warm-up). The 1-minute
load average is stored; the machine should be otherwise idle.

Results are printed and written to ``bench/results/features.json``. Exit status: 0 whether or not
the targets are met, 1 when a run fails (a server does not start, a request fails), 2 when the
inputs are missing (the shared data for the GB store, or Debian's python3 with GDAL bindings).

Run from the repository root::

    /work/venv/bin/python bench/bench_features.py [--repeat 3] [--limit 1000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import _harness as h
import httpx
from _gb_store import CACHE, gb_store, shared_missing
from rich.console import Console
from rich.table import Table

DEFAULT_OUT = h.RESULTS / "features.json"
WORKDIR = CACHE / "features"
PYGEOAPI_VENV = CACHE / "pygeoapi-venv"
SYSTEM_PYTHON = Path("/usr/bin/python3")  # Debian's, with python3-gdal (osgeo) for the OGR provider
PYGEOAPI_PACKAGES = ["pygeoapi==0.21.0", "starlette", "uvicorn"]
SET_ID = "lsoa2011"
EXPECTED = 34_753
PROPERTIES = ("code", "name", "nation", "geography", "vintage", "area_km2")
TARGET_RATIO = 1.0
SIDES = ("geo-cs", "pygeoapi")


class RunFailed(h.ChildFailed):
    pass


# -- setup (untimed) ---------------------------------------------------------------------------

def ensure_pygeoapi(console: Console) -> Path:
    """The pygeoapi virtual environment's python, created when missing."""
    python = PYGEOAPI_VENV / "bin" / "python"
    check = [str(python), "-c", "import osgeo.ogr, pygeoapi.starlette_app, uvicorn"]
    env = {**os.environ, "PYGEOAPI_CONFIG": "/nonexistent", "PYGEOAPI_OPENAPI": "/nonexistent"}
    if python.exists():
        # importing starlette_app reads the config: a missing file is fine, an ImportError is not
        done = subprocess.run(check, capture_output=True, text=True, env=env)
        if "ModuleNotFoundError" not in done.stderr and "ImportError" not in done.stderr:
            return python
    if not SYSTEM_PYTHON.exists() or subprocess.run(
            [str(SYSTEM_PYTHON), "-c", "import osgeo.ogr"], capture_output=True).returncode != 0:
        raise FileNotFoundError(f"{SYSTEM_PYTHON} with GDAL's Python bindings (apt-get install python3-gdal)")
    console.print(f"creating {PYGEOAPI_VENV} (system python3 + python3-gdal; pip install "
                  f"{' '.join(PYGEOAPI_PACKAGES)})")
    subprocess.run([str(SYSTEM_PYTHON), "-m", "venv", "--system-site-packages", str(PYGEOAPI_VENV)],
                   check=True)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", *PYGEOAPI_PACKAGES], check=True)
    return python


def export_gpkg(store_path: Path, console: Console) -> Path:
    """The store's LSOA 2011 polygons and properties as a GeoPackage (reused while the store is)."""
    path = WORKDIR / f"{SET_ID}-{store_path.stem}.gpkg"
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
            df = store.sql(
                "SELECT code AS id, code, name, nation, geography, vintage, "
                "round(area_m2 / 1e6, 4) AS area_km2, ST_AsWKB(geom_4326) AS wkb "
                "FROM areas WHERE set_id = $set_id AND xmin IS NOT NULL ORDER BY code",
                {"set_id": SET_ID}).df()
        geoms = shapely.from_wkb([bytes(w) for w in df.pop("wkb")])
        gdf = gpd.GeoDataFrame(df, geometry=geoms, crs="OGC:CRS84")
        partial = path.with_suffix(".partial.gpkg")
        partial.unlink(missing_ok=True)
        # geometry type "Unknown": polygons stay polygons (no promotion to multi), as geo-cs serves them
        pyogrio.write_dataframe(gdf, partial, layer=SET_ID, driver="GPKG", geometry_type="Unknown",
                                promote_to_multi=False, layer_options={"SPATIAL_INDEX": "YES"},
                                # GeoPackage 1.2: the GDAL 3.6 of pygeoapi's environment warns on
                                # every open of a 1.4 file (pyogrio's newer GDAL writes 1.4)
                                dataset_options={"VERSION": "1.2"})
        partial.rename(path)
    return path


PYGEOAPI_CONFIG = """\
server:
  bind: {{host: 127.0.0.1, port: {port}}}
  url: http://127.0.0.1:{port}
  mimetype: application/json; charset=UTF-8
  encoding: utf-8
  gzip: false
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


def start_pygeoapi(python: Path, gpkg: Path) -> h.Server:
    port = h.free_port()
    config = WORKDIR / "pygeoapi-config.yml"
    openapi = WORKDIR / "pygeoapi-openapi.yml"
    config.write_text(PYGEOAPI_CONFIG.format(port=port, gpkg=gpkg, set_id=SET_ID))
    env = {**os.environ, "PYGEOAPI_CONFIG": str(config), "PYGEOAPI_OPENAPI": str(openapi)}
    env.pop("PYTHONPATH", None)
    done = subprocess.run([str(python.parent / "pygeoapi"), "openapi", "generate", str(config),
                           "--output-file", str(openapi)], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RunFailed(f"pygeoapi openapi generate failed:\n{done.stderr[-3000:]}")
    cmd = [str(python), "-m", "uvicorn", "pygeoapi.starlette_app:APP", "--host", "127.0.0.1",
           "--port", str(port), "--workers", "1", "--no-access-log", "--log-level", "warning"]
    return h.Server("pygeoapi", cmd, env, port, WORKDIR, WORKDIR)


# -- the client ---------------------------------------------------------------------------------

def page_through(client: httpx.Client, server: h.Server, limit: int, record: bool) -> dict[str, Any]:
    """Follow ``next`` links from offset 0 until none; the same loop for both servers."""
    url: str | None = f"{server.base}/collections/{SET_ID}/items?limit={limit}&offset=0"
    pages = n_bytes = n_features = 0
    ids: set[str] = set()
    page_sizes: list[int] = []
    seen: dict[str, Any] = {}
    http_s = 0.0
    t0 = time.perf_counter()
    while url is not None:
        h0 = time.perf_counter()
        response = client.get(url)
        body = response.content
        http_s += time.perf_counter() - h0
        if response.status_code != 200:
            raise RunFailed(f"{server.name}: GET {url} -> {response.status_code}: {body[:500]!r}")
        page = json.loads(body)
        pages += 1
        n_bytes += len(body)
        features = page["features"]
        n_features += len(features)
        page_sizes.append(len(features))
        repeated = 0
        for f in features:
            if str(f["id"]) in ids:
                repeated += 1
            ids.add(str(f["id"]))
            if record:
                g = f["geometry"] or {}
                first = g.get("coordinates")
                while isinstance(first, list) and first and isinstance(first[0], list):
                    first = first[0]
                seen[str(f["id"])] = {"properties": {k: f["properties"].get(k) for k in PROPERTIES},
                                      "extra_properties": sorted(set(f["properties"]) - set(PROPERTIES)),
                                      "geometry_type": g.get("type"), "first_point": first}
        url = next((link["href"] for link in page.get("links", []) if link.get("rel") == "next"), None)
        if repeated or pages > EXPECTED // limit + 3:
            raise RunFailed(f"{server.name}: paging is broken: page {pages} ({response.url}) repeats "
                            f"{repeated} of its {len(features)} ids; {n_features:,} features so far")
    seconds = time.perf_counter() - t0
    out = {"seconds": seconds, "http_seconds": http_s, "pages": pages, "bytes": n_bytes,
           "features": n_features, "unique_ids": len(ids), "last_page_size": page_sizes[-1],
           "rss_mb": round(h.proc_status_mb("VmRSS", server.proc.pid), 1)}
    if record:
        out["_seen"] = seen
        out["_ids"] = ids
    return out


def compare(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Ids, properties and geometry types of the two servers' first passes."""
    ids_a, ids_b = a["_ids"], b["_ids"]
    common = ids_a & ids_b
    prop_diff = [i for i in sorted(common) if a["_seen"][i]["properties"] != b["_seen"][i]["properties"]]
    type_diff = [i for i in sorted(common)
                 if a["_seen"][i]["geometry_type"] != b["_seen"][i]["geometry_type"]]
    max_first_point = 0.0
    for i in common:
        pa, pb = a["_seen"][i]["first_point"], b["_seen"][i]["first_point"]
        if pa and pb:
            max_first_point = max(max_first_point, abs(pa[0] - pb[0]), abs(pa[1] - pb[1]))
    return {
        "same_ids": ids_a == ids_b,
        "only_geo_cs": len(ids_a - ids_b), "only_pygeoapi": len(ids_b - ids_a),
        "properties_differ": len(prop_diff),
        "properties_differ_examples": [{"id": i, "geo-cs": a["_seen"][i]["properties"],
                                        "pygeoapi": b["_seen"][i]["properties"]} for i in prop_diff[:3]],
        "geometry_type_differs": len(type_diff),
        "max_first_vertex_difference_deg": max_first_point,
        "extra_properties": {"geo-cs": sorted({p for s in a["_seen"].values()
                                               for p in s["extra_properties"]}),
                             "pygeoapi": sorted({p for s in b["_seen"].values()
                                                 for p in s["extra_properties"]})},
    }


# -- report ---------------------------------------------------------------------------------------

def versions(pygeoapi_python: Path) -> dict[str, str]:
    out = {"python": platform.python_version(), "geo_cs_commit": h.git_commit(),
           **h.package_versions("duckdb", "duckdb-extension-spatial", "fastapi", "starlette", "uvicorn",
                              "httpx")}
    probe = ("import importlib.metadata as m, platform, osgeo.gdal as g, json; print(json.dumps("
             "{'python': platform.python_version(), 'gdal': g.__version__, **{d: m.version(d) "
             "for d in ('pygeoapi', 'starlette', 'uvicorn')}}))")
    done = subprocess.run([str(pygeoapi_python), "-c", probe], capture_output=True, text=True)
    if done.returncode == 0:
        out["pygeoapi_env"] = json.loads(done.stdout)
    return out


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "median_seconds": round(statistics.median(r["seconds"] for r in runs), 3),
        "min_seconds": round(min(r["seconds"] for r in runs), 3),
        "median_http_seconds": round(statistics.median(r["http_seconds"] for r in runs), 3),
        "pages": runs[0]["pages"], "bytes": runs[0]["bytes"], "features": runs[0]["features"],
        "unique_ids": runs[0]["unique_ids"], "last_page_size": runs[0]["last_page_size"],
        "consistent_across_runs": all((r["pages"], r["bytes"], r["features"], r["unique_ids"])
                                      == (runs[0]["pages"], runs[0]["bytes"], runs[0]["features"],
                                          runs[0]["unique_ids"]) for r in runs),
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="timed passes per server (default 3)")
    parser.add_argument("--limit", type=int, default=1000, help="items per page (default 1000)")
    h.add_out(parser, DEFAULT_OUT)
    args = parser.parse_args(argv)
    if args.repeat < 1 or not 1 <= args.limit <= 10_000:
        parser.error("--repeat must be >= 1 and --limit 1-10000")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    console = Console(width=max(Console().width, 120))
    if shared_missing(console):
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
    gpkg = export_gpkg(store_path, console)
    load = h.warn_if_busy(console)
    h.stop_on_sigterm()  # stop the servers on the way out

    servers: dict[str, h.Server] = {}
    runs: dict[str, list[dict[str, Any]]] = {s: [] for s in SIDES}
    first: dict[str, dict[str, Any]] = {}
    rss_start: dict[str, float] = {}
    peak: dict[str, float] = {}
    try:
        servers["geo-cs"] = h.start_geo_cs(store_path, WORKDIR)
        servers["pygeoapi"] = start_pygeoapi(pygeoapi_python, gpkg)
        with console.status("starting the servers"):
            for s in servers.values():
                s.wait_ready(f"/collections/{SET_ID}")
        with httpx.Client(timeout=600) as client:
            for name, s in servers.items():  # warm-up: one page, untimed
                r = client.get(f"{s.base}/collections/{SET_ID}/items?limit={args.limit}&offset=0")
                if r.status_code != 200:
                    raise RunFailed(f"{name}: warm-up page -> {r.status_code}: {r.text[:500]}")
                rss_start[name] = round(h.proc_status_mb("VmRSS", s.proc.pid), 1)
            for round_ in range(args.repeat):
                order = SIDES if round_ % 2 == 0 else SIDES[::-1]
                for name in order:
                    with console.status(f"round {round_ + 1}/{args.repeat}: paging through {name}"):
                        result = page_through(client, servers[name], args.limit, record=round_ == 0)
                    if round_ == 0:
                        first[name] = {"_seen": result.pop("_seen"), "_ids": result.pop("_ids")}
                    runs[name].append(result)
                    console.print(f"  round {round_ + 1} {name}: {result['seconds']:.2f} s "
                                  f"({result['pages']} pages, {result['features']:,} features, "
                                  f"{result['bytes'] / 1e6:.1f} MB)")
        for name, s in servers.items():
            peak[name] = round(h.proc_status_mb("VmHWM", s.proc.pid), 1)
            if s.proc.poll() is not None:
                raise RunFailed(f"{name} died during the run:\n{s.log_tail()}")
    except (RunFailed, httpx.HTTPError) as exc:
        console.print(f"[red]run failed:[/] {exc}")
        for s in servers.values():
            console.print(f"--- {s.name} log ---\n{s.log_tail()}")
        return 1
    finally:
        for s in servers.values():
            s.stop()

    comparison = compare(first["geo-cs"], first["pygeoapi"])
    summary = {name: {**summarise(runs[name]), "rss_after_warmup_mb": rss_start[name],
                      "peak_rss_mb": peak[name]} for name in SIDES}
    g, p = summary["geo-cs"], summary["pygeoapi"]
    ratio = g["median_seconds"] / p["median_seconds"]
    ratio_http = g["median_http_seconds"] / p["median_http_seconds"]
    counts_ok = {name: s["features"] == EXPECTED and s["unique_ids"] == EXPECTED
                 for name, s in summary.items()}
    same_ok = comparison["same_ids"] and comparison["properties_differ"] == 0
    speed_ok = ratio <= TARGET_RATIO

    table = Table(title=f"Paging through all {EXPECTED:,} LSOA 2011 items at limit={args.limit}, "
                        f"median of {args.repeat}")
    for column in ("server", "wall s", "of which HTTP s", "pages", "MB", "features", "unique ids",
                   "RSS after warm-up MB", "peak RSS MB"):
        table.add_column(column, justify="left" if column == "server" else "right")
    for name, s in summary.items():
        table.add_row(name, f"{s['median_seconds']:.2f}", f"{s['median_http_seconds']:.2f}", str(s["pages"]),
                      f"{s['bytes'] / 1e6:.1f}", f"{s['features']:,}", f"{s['unique_ids']:,}",
                      f"{s['rss_after_warmup_mb']:.0f}", f"{s['peak_rss_mb']:.0f}")
    console.print(table)

    def verdict(ok: bool) -> str:
        return "[green]PASS[/]" if ok else "[red]FAIL[/]"

    console.print(f"ratio geo-cs / pygeoapi: wall {ratio:.3f} "
                  f"(target <= {TARGET_RATIO}: {verdict(speed_ok)}), "
                  f"HTTP only {ratio_http:.3f}; pygeoapi / geo-cs = {1 / ratio:.2f}x")
    console.print(f"counts: geo-cs {verdict(counts_ok['geo-cs'])}, "
                  f"pygeoapi {verdict(counts_ok['pygeoapi'])}; "
                  f"same ids {comparison['same_ids']} (only geo-cs {comparison['only_geo_cs']}, only "
                  f"pygeoapi {comparison['only_pygeoapi']}), "
                  f"properties differ on {comparison['properties_differ']}, "
                  f"geometry type on {comparison['geometry_type_differs']}, first vertex up to "
                  f"{comparison['max_first_vertex_difference_deg']:.1e} deg: {verdict(same_ok)}")
    if p["last_page_size"] == 0 or g["last_page_size"] == 0:
        console.print("[yellow]a server's last page is empty (a next link on a full last page)[/]")

    out = {
        "benchmark": "features",
        "timestamp": h.timestamp(),
        "commit": h.git_commit(),
        "machine": h.machine(memory_gb=h.memory_gb(), **versions(pygeoapi_python)),
        "inputs": {"store": store_path.name, "collection": SET_ID, "expected_features": EXPECTED,
                   "pygeoapi_source": f"{gpkg.name} (GeoPackage, OGR provider)"},
        "repeat": args.repeat, "limit": args.limit,
        "method": {
            "client": "one httpx.Client, sequential; GET items?limit=L&offset=0 then each page's next link "
                      "until none; wall includes the client's json.loads; HTTP = request to body read",
            "servers": "uvicorn, 1 worker each, loopback, access log off; "
                       "geo-cs api.app:create_app on the GB "
                       "store; pygeoapi 0.21 starlette_app:APP, OGR provider on a GeoPackage exported from "
                       "the same store (same ids and properties)",
            "timing": "one untimed warm-up page per server; passes alternate between the servers, "
                      "order rotated each round; median",
            "rss": "server process VmRSS after the warm-up page; VmHWM at the end",
        },
        "results": {name: {**summary[name], "runs": runs[name]} for name in SIDES},
        "ratio_geo_cs_over_pygeoapi": round(ratio, 4),
        "ratio_geo_cs_over_pygeoapi_http_only": round(ratio_http, 4),
        "comparison": comparison,
        "targets": {"features": EXPECTED, "unique_ids": EXPECTED, "same_ids_and_properties": True,
                    "ratio_max": TARGET_RATIO},
        "pass": {"counts_geo_cs": counts_ok["geo-cs"], "counts_pygeoapi": counts_ok["pygeoapi"],
                 "same_ids_and_properties": same_ok, "speed": speed_ok},
        "loadavg_at_start": list(load), "loadavg_at_end": list(os.getloadavg()),
    }
    h.write_results(args.out, out, console)
    return 0


if __name__ == "__main__":
    sys.exit(main())
