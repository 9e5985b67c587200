"""Benchmark: geo-cs under load, 50 concurrent clients mixing vector tiles and feature items.

What is measured
----------------
geo-cs runs as ``uvicorn api.app:create_app --factory --workers W`` (``--workers``, default 1;
access log off) on loopback over the GB store of ``_gb_store.gb_store()`` (all LSOA 2011 and
Data Zone 2011 areas with values). This process, a separate one from the server, then runs
``--clients`` (default 50) concurrent clients for ``--duration`` seconds (default 60) with one
``httpx.AsyncClient`` per client (asyncio, one keep-alive connection each, ``Accept-Encoding:
gzip`` as browsers send). Each client loops: pick a request kind at random by the weights below,
send it, wait for the whole body, record status and latency, repeat (no think time). Kinds:

* ``tile_lsoa`` (50%): ``/tiles/lsoa2011/{z}/{x}/{y}.mvt?indicator=…&denominator=…`` with the
  measure of ``_gb_store.MEASURES["lsoa2011"]`` (IMD 2019 employment-deprived over the 2019
  working-age population), the address drawn from a fixed set: for each zoom 8-14, the tiles
  holding the centroids of 60 English LSOAs drawn once (seeded), via ``geo_cs.tiles.lonlat_to_tile``.
* ``tile_datazone`` (15%): the same on ``datazone2011`` (``indicator=employment_deprived``, 20
  Scottish data zones per zoom).
* ``items_offset`` (20%): ``/collections/lsoa2011/items?limit=100&offset=<uniform random>``.
* ``items_bbox`` (12%): ``/collections/lsoa2011/items?limit=100&bbox=…``, a box of 0.01-0.05 degrees
  a side around the centroid of a random LSOA (a neighbourhood to a town).
* ``map_page`` (8%): ``/maps/{partnership}``, the web map page of a random partnership (those whose
  page the GB store can draw, probed once before the load).

The tile set is fixed and small enough (a few hundred addresses) for the server's tile cache
(``tile_cache_items``) to hold it, as a map of many users would: the first request of each tile
address renders it (reported apart as ``tile_*_first``), later ones are served from the cache.
Reported: requests, errors, requests/s overall, and per kind the count and the p50/p90/p99/max
latency (request sent to body read); the server's RSS (summed over its processes: uvicorn's
supervisor and workers when ``--workers`` > 1) just before the load and at its end, with the
growth, its growth over the second half of the run (sampled every 5 s), and its peak (VmHWM);
the CPU time this client process used (on a small machine the
client competes with the server for the CPUs).

Targets: zero errors (any status other than 200/204/304, or any exception such as a timeout,
counts; 204 is an empty tile); p99 latency <= 1,000 ms for every kind (provisional, for 50
clients on one worker); memory stable: RSS growth over the second half of the run <= 50 MB.
``bench_soak.py`` is this run with 100 clients for 5 minutes.

Results are printed and written to ``bench/results/load.json``. Exit status: 0 whether or not
the targets are met, 1 when the run fails (the server does not start or dies), 2 when the shared
data for the GB store are missing.

Run from the repository root::

    /work/venv/bin/python bench/bench_load.py [--duration 60] [--workers 1] [--clients 50]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import _harness as h
import httpx
import numpy as np
from _gb_store import CACHE, MEASURES, gb_store, shared_missing
from rich.console import Console
from rich.table import Table

DEFAULT_OUT = h.RESULTS / "load.json"
WORKDIR = CACHE / "load"
ZOOMS = range(8, 15)
WEIGHTS = {"tile_lsoa": 0.45, "tile_datazone": 0.15, "items_offset": 0.20, "items_bbox": 0.12,
           "map_page": 0.08}
PER_ZOOM = {"lsoa2011": 60, "datazone2011": 20}
LSOA_COUNT = 34_753
ITEMS_LIMIT = 100
OK_STATUS = {200, 204, 304}
TARGET_P99_MS = 1000.0
#: memory is stable when the server's RSS grows by at most this over the second half of the run
#: (the caches are bounded and fill in the first minutes; a leak keeps growing)
TARGET_RSS_GROWTH_SECOND_HALF_MB = 50.0
SEED = 20260101


class RunFailed(h.ChildFailed):
    pass


# -- the request set (fixed, seeded) ------------------------------------------------------------

def request_set(store_path: Path) -> dict[str, Any]:
    """Tile addresses per layer and LSOA centroids for bbox queries, drawn once from the store."""
    from geo_cs.store import Store
    from geo_cs.tiles import lonlat_to_tile

    with Store.open(store_path, read_only=True) as store:
        def centroids(set_id: str, prefix: str) -> np.ndarray:
            rows = store.sql(
                "SELECT ST_X(c), ST_Y(c) FROM (SELECT ST_Centroid(geom_4326) AS c FROM areas "
                "WHERE set_id = $set_id AND code LIKE $prefix AND geom_4326 IS NOT NULL ORDER BY code)",
                {"set_id": set_id, "prefix": prefix + "%"}).fetchall()
            return np.asarray(rows, dtype=float)

        lsoa_england = centroids("lsoa2011", "E")
        lsoa_all = centroids("lsoa2011", "")
        datazones = centroids("datazone2011", "S")
    rng = np.random.default_rng(SEED)
    tiles: dict[str, list[tuple[int, int, int]]] = {}
    for set_id, points in (("lsoa2011", lsoa_england), ("datazone2011", datazones)):
        addresses: set[tuple[int, int, int]] = set()
        for z in ZOOMS:
            for lon, lat in points[rng.choice(len(points), PER_ZOOM[set_id], replace=False)]:
                addresses.add((z, *lonlat_to_tile(lon, lat, z)))
        tiles[set_id] = sorted(addresses)
    from geo_cs.partnerships import get_partnerships

    return {"tiles": tiles, "lsoa_centroids": lsoa_all,
            "partnerships": sorted(p.id for p in get_partnerships())}


def drawable_partnerships(base: str, ids: list[str]) -> tuple[list[str], dict[str, int]]:
    """The partnerships whose map page the store can draw (others answer 404 for want of a
    measure on their geography), and the status of the others."""
    ok, other = [], {}
    with httpx.Client(base_url=base, timeout=120) as http:
        for pid in ids:
            status = http.get(f"/maps/{pid}").status_code
            if status == 200:
                ok.append(pid)
            else:
                other[pid] = status
    return ok, other


def measure_query(set_id: str) -> str:
    indicator, denominator = MEASURES[set_id]
    return f"indicator={indicator}" + (f"&denominator={denominator}" if denominator else "")


class Requests:
    """Draws the next request (kind, path) for a client."""

    def __init__(self, rs: dict[str, Any], rng: random.Random) -> None:
        self.rs, self.rng = rs, rng
        self.kinds = list(WEIGHTS)
        self.weights = [WEIGHTS[k] for k in self.kinds]
        self.query = {s: measure_query(s) for s in rs["tiles"]}

    def next(self) -> tuple[str, str]:
        kind = self.rng.choices(self.kinds, self.weights)[0]
        if kind.startswith("tile"):
            set_id = "lsoa2011" if kind == "tile_lsoa" else "datazone2011"
            z, x, y = self.rng.choice(self.rs["tiles"][set_id])
            return kind, f"/tiles/{set_id}/{z}/{x}/{y}.mvt?{self.query[set_id]}"
        if kind == "items_offset":
            offset = self.rng.randrange(0, LSOA_COUNT - ITEMS_LIMIT)
            return kind, f"/collections/lsoa2011/items?limit={ITEMS_LIMIT}&offset={offset}"
        if kind == "map_page":
            return kind, f"/maps/{self.rng.choice(self.rs['partnerships'])}"
        lon, lat = self.rs["lsoa_centroids"][self.rng.randrange(len(self.rs["lsoa_centroids"]))]
        half = self.rng.uniform(0.005, 0.025)
        bbox = f"{lon - half:.5f},{lat - half:.5f},{lon + half:.5f},{lat + half:.5f}"
        return kind, f"/collections/lsoa2011/items?limit={ITEMS_LIMIT}&bbox={bbox}"


# -- the server ----------------------------------------------------------------------------------

# -- the clients ---------------------------------------------------------------------------------

async def run_load(base: str, rs: dict[str, Any], clients: int, duration: float,
                   on_tick) -> dict[str, Any]:
    latencies: dict[str, list[float]] = defaultdict(list)
    statuses: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    errors: list[dict[str, Any]] = []
    n_errors: dict[str, int] = defaultdict(int)
    n_bytes = 0
    seen_tiles: set[str] = set()
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    end = time.perf_counter() + duration

    async def client(i: int) -> None:
        # a client of its own per simulated user, one keep-alive connection each, used back to back:
        # a shared pool would leave some connections idle past uvicorn's keep-alive timeout (5 s),
        # and a request sent as the server closes one fails with a ReadError a browser would retry
        async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30.0,
                                     headers={"Accept-Encoding": "gzip"}) as http:
            await one_client(i, http)

    async def one_client(i: int, http: httpx.AsyncClient) -> None:
        nonlocal n_bytes
        requests = Requests(rs, random.Random(SEED + i))
        while time.perf_counter() < end:
            kind, path = requests.next()
            if kind.startswith("tile") and path not in seen_tiles:
                seen_tiles.add(path)
                kind += "_first"
            t0 = time.perf_counter()
            try:
                response = await http.get(path)
                body = response.content
                elapsed = time.perf_counter() - t0
                statuses[kind][response.status_code] += 1
                if response.status_code in OK_STATUS:
                    latencies[kind].append(elapsed)
                    n_bytes += len(body)
                    continue
                error = f"HTTP {response.status_code}: {body[:300]!r}"
            except Exception as exc:  # every failure counts, whatever it is
                elapsed = time.perf_counter() - t0
                error = f"{type(exc).__name__}: {exc}"
            n_errors[kind] += 1
            if len(errors) < 20:
                errors.append({"kind": kind, "path": path, "error": error, "seconds": round(elapsed, 3)})

    async def ticker() -> None:
        while time.perf_counter() < end:
            await asyncio.sleep(5)
            on_tick(sum(len(v) for v in latencies.values()), sum(n_errors.values()))

    t0 = time.perf_counter()
    ticking = asyncio.create_task(ticker())
    await asyncio.gather(*(client(i) for i in range(clients)))
    wall = time.perf_counter() - t0
    ticking.cancel()
    return {"wall_seconds": wall, "latencies": latencies, "statuses": statuses, "errors": errors,
            "n_errors": n_errors, "bytes": n_bytes, "tiles_rendered": len(seen_tiles)}


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {k: float("nan") for k in ("p50_ms", "p90_ms", "p99_ms", "max_ms")}
    a = np.asarray(values) * 1000
    return {"p50_ms": round(float(np.percentile(a, 50)), 1), "p90_ms": round(float(np.percentile(a, 90)), 1),
            "p99_ms": round(float(np.percentile(a, 99)), 1), "max_ms": round(float(a.max()), 1)}


def versions() -> dict[str, str]:
    return {"python": platform.python_version(),
            **h.package_versions("duckdb", "duckdb-extension-spatial", "fastapi", "starlette", "uvicorn",
                               "httpx")}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load (default 60)")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn workers (default 1)")
    parser.add_argument("--clients", type=int, default=50, help="concurrent clients (default 50)")
    h.add_out(parser, DEFAULT_OUT)
    args = parser.parse_args(argv)
    if args.duration <= 0 or args.workers < 1 or args.clients < 1:
        parser.error("--duration, --workers and --clients must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    h.stop_on_sigterm()  # stop the server on the way out
    console = Console(width=max(Console().width, 120))
    if shared_missing(console):
        return 2
    store_path = gb_store()
    with console.status("drawing the tile addresses and bbox centres from the store"):
        rs = request_set(store_path)
    console.print(f"tile set: {len(rs['tiles']['lsoa2011'])} lsoa2011 and {len(rs['tiles']['datazone2011'])} "
                  f"datazone2011 addresses at z{ZOOMS[0]}-{ZOOMS[-1]}; {args.clients} clients, "
                  f"{args.duration:.0f} s, {args.workers} worker(s)")
    load = h.warn_if_busy(console, "numbers")
    server = h.start_geo_cs(store_path, WORKDIR, args.workers)
    try:
        with console.status("starting geo-cs"):
            server.wait_ready("/health", processes=args.workers)
        with console.status("probing the partnership map pages"):
            rs["partnerships"], left_out = drawable_partnerships(server.base, rs["partnerships"])
        console.print(f"map pages of {len(rs['partnerships'])} partnerships"
                      + (f" (left out, no page on this store: {left_out})" if left_out else ""))
        rss_start = server.rss_mb()
        rss_series: list[tuple[float, float]] = []
        cpu0 = time.process_time()
        started = time.monotonic()

        def tick(done: int, errors: int) -> None:
            rss = server.rss_mb()
            rss_series.append((round(time.monotonic() - started, 1), rss))
            console.print(f"  {done:,} requests, {errors} errors, server RSS {rss:.0f} MB")

        result = asyncio.run(run_load(server.base, rs, args.clients, args.duration, tick))
        client_cpu = time.process_time() - cpu0
        rss_end = server.rss_mb()
        rss_peak = server.rss_mb("VmHWM")
        if server.proc.poll() is not None:
            raise RunFailed(f"geo-cs died during the run:\n{server.log_tail()}")
        log = server.log_tail()
    except RunFailed as exc:
        console.print(f"[red]run failed:[/] {exc}")
        return 1
    finally:
        server.stop()

    lat, n_err = result["latencies"], result["n_errors"]
    kinds = [k for k in ("tile_lsoa", "tile_lsoa_first", "tile_datazone", "tile_datazone_first",
                         "items_offset", "items_bbox", "map_page") if k in lat or k in n_err]
    ok = sum(len(v) for v in lat.values())
    total_errors = sum(n_err.values())
    total = ok + total_errors
    wall = result["wall_seconds"]
    per_kind = {k: {"requests": len(lat.get(k, [])) + n_err.get(k, 0), "errors": n_err.get(k, 0),
                    "statuses": {str(s): n for s, n in sorted(result["statuses"][k].items())},
                    **percentiles(lat.get(k, []))} for k in kinds}
    overall = percentiles([x for v in lat.values() for x in v])

    table = Table(title=f"geo-cs under load: {args.clients} clients, {wall:.0f} s, {args.workers} worker(s)")
    for column in ("kind", "requests", "errors", "req/s", "p50 ms", "p90 ms", "p99 ms", "max ms", "statuses"):
        table.add_column(column, justify="left" if column in ("kind", "statuses") else "right")
    for k, s in per_kind.items():
        table.add_row(k, f"{s['requests']:,}", str(s["errors"]), f"{s['requests'] / wall:.1f}",
                      f"{s['p50_ms']:.0f}", f"{s['p90_ms']:.0f}", f"{s['p99_ms']:.0f}", f"{s['max_ms']:.0f}",
                      " ".join(f"{c}:{n}" for c, n in s["statuses"].items()))
    table.add_row("all", f"{total:,}", str(total_errors), f"{total / wall:.1f}", f"{overall['p50_ms']:.0f}",
                  f"{overall['p90_ms']:.0f}", f"{overall['p99_ms']:.0f}", f"{overall['max_ms']:.0f}", "",
                  style="bold")
    console.print(table)
    half = [rss for t, rss in rss_series if t >= wall / 2] or [rss_end]
    rss_mid = half[0]
    second_half_growth = max(half) - rss_mid
    console.print(f"server RSS: {rss_start:.0f} MB before the load, {rss_mid:.0f} MB at half time, "
                  f"{rss_end:.0f} MB at its end (growth {rss_end - rss_start:+.0f} MB; over the second "
                  f"half {second_half_growth:+.0f} MB), peak {rss_peak:.0f} MB; "
                  f"{result['bytes'] / 1e6:.0f} MB received; client CPU {client_cpu:.1f} s "
                  f"({client_cpu / wall:.0%} of a core)")

    def verdict(passed: bool) -> str:
        return "[green]PASS[/]" if passed else "[red]FAIL[/]"

    errors_ok = total_errors == 0
    p99_ok = {k: s["p99_ms"] <= TARGET_P99_MS for k, s in per_kind.items()}
    # the first request of each tile address (a cold render) is reported, not held to the target
    held = {k: v for k, v in p99_ok.items() if not k.endswith("_first")}
    memory_ok = second_half_growth <= TARGET_RSS_GROWTH_SECOND_HALF_MB
    console.print(f"errors: {total_errors} (target 0): {verdict(errors_ok)}; p99 <= {TARGET_P99_MS:.0f} ms: "
                  + ", ".join(f"{k} {verdict(v)}" for k, v in held.items())
                  + f"; RSS growth over the second half <= {TARGET_RSS_GROWTH_SECOND_HALF_MB:.0f} MB: "
                  + verdict(memory_ok))
    for e in result["errors"][:5]:
        console.print(f"  [red]{e['kind']} {e['path']}: {e['error']} ({e['seconds']} s)[/]")

    out = {
        "benchmark": "load",
        "timestamp": h.timestamp(),
        "commit": h.git_commit(),
        "machine": h.machine(memory_gb=h.memory_gb(), **versions()),
        "inputs": {"store": store_path.name, "tile_addresses": {k: len(v) for k, v in rs["tiles"].items()},
                   "map_pages": rs["partnerships"],
                   "zooms": [ZOOMS[0], ZOOMS[-1]], "measures": {k: measure_query(k) for k in rs["tiles"]}},
        "settings": {"clients": args.clients, "duration_s": args.duration, "workers": args.workers,
                     "weights": WEIGHTS, "items_limit": ITEMS_LIMIT, "seed": SEED},
        "method": "asyncio in this process (not the server's), one httpx.AsyncClient and connection "
                  "per client, "
                  "no think time, Accept-Encoding gzip; latency = request sent to body read; RSS summed over "
                  "the server's processes",
        "results": {
            "requests": total, "errors": total_errors, "requests_per_second": round(total / wall, 1),
            "wall_seconds": round(wall, 2), "bytes": result["bytes"], "overall": overall,
            "per_kind": per_kind, "tiles_first_requested": result["tiles_rendered"],
            "server_rss_start_mb": rss_start, "server_rss_end_mb": rss_end,
            "server_rss_growth_mb": round(rss_end - rss_start, 1), "server_peak_rss_mb": rss_peak,
            "server_rss_mid_mb": rss_mid,
            "server_rss_growth_second_half_mb": round(second_half_growth, 1),
            "server_rss_series": rss_series, "map_pages_of": rs["partnerships"],
            "client_cpu_seconds": round(client_cpu, 1), "error_samples": result["errors"],
            "server_log_tail": log[-2000:],
        },
        "targets": {"errors": 0, "p99_ms_max": TARGET_P99_MS,
                    "rss_growth_second_half_mb_max": TARGET_RSS_GROWTH_SECOND_HALF_MB},
        "pass": {"errors": errors_ok, "p99": held, "memory_stable": memory_ok},
        "loadavg_at_start": list(load), "loadavg_at_end": list(os.getloadavg()),
    }
    h.write_results(args.out, out, console)
    return 0


if __name__ == "__main__":
    sys.exit(main())
