"""First byte of every partnership's map page, the first visit and a repeat one, after a server
start and after an ingest: geo-cs drawing every default view ahead of its first visitor
(``api.deps.MapWarmer``, on by default) against its peer, the same server without the warm-up
(``GEO_CS_WARM_MAPS=0``: each page drawn for its first visitor, in each worker).

    python -m bench.bench_first_visit                 # the demo store, built first (~40 s)
    python -m bench.bench_first_visit --db gb.duckdb  # a store of your own (copied: it is ingested into)

Method: the server as deployed (uvicorn, ``--workers 2``, no access log) on a copy of the store.
"Ready" is what an operator's probe sees: ``/health`` answers 200 and, with the warm-up, says
``ready`` on ten new connections in a row (each worker answers some of them). Then every
partnership's ``/maps/{id}`` is asked once on a new connection (cold: the first visit), then
``--repeat`` more times each, on new connections (warm: either worker may answer). First byte =
request sent to the first byte of the body, timed by the client. Then a new quarter is ingested
into the served file (``geo-cs ingest indicator``), and once ``/health`` shows the new data
version (and, with the warm-up, ``ready``) the same is measured again.

Target (issue 28, point 15): with the warm-up, every first visit's first byte at most 300 ms,
after a start and after an ingest. Written to ``bench/results/first_visit.json``.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console

from bench import _harness as h

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "first_visit.json"
TARGET_COLD_MS = 300.0
NEW_QUARTER = "area_code,period,measure,value,denominator\nE14000530,2012-05,claimants,5000,60000\n" \
              "E14000531,2012-05,claimants,4000,50000\n"
GEO_CS = [sys.executable, "-m", "geo_cs.cli"]


def build_demo(workdir: Path, console: Console) -> Path:
    db = workdir / "demo.duckdb"
    console.print("building the demo database (geo-cs demo --no-serve) …")
    subprocess.run([*GEO_CS, "--db", str(db), "-q", "demo", "--no-serve"], check=True)
    return db


def first_byte_ms(base: str, path: str) -> tuple[float, int, str]:
    """(ms from sending to the body's first byte, status, X-Cache) on a new connection."""
    with httpx.Client(timeout=120) as client:
        started = time.perf_counter()
        with client.stream("GET", base + path) as response:
            body = response.iter_raw()
            next(body, b"")
            elapsed = (time.perf_counter() - started) * 1000
            for _ in body:   # the rest of the page
                pass
            return round(elapsed, 1), response.status_code, response.headers.get("x-cache", "")


def health(base: str) -> dict[str, Any]:
    with httpx.Client(timeout=30) as client:   # a new connection: any worker may answer
        return client.get(base + "/health").json()


def wait_ready(base: str, warm: bool, version: int | None, timeout: float = 600) -> float:
    """Seconds until /health shows ``version`` (if given) and, with the warm-up, ``ready`` on ten
    new connections in a row."""
    started = time.monotonic()
    in_a_row = 0
    while time.monotonic() - started < timeout:
        answer = health(base)
        ok = (version is None or answer["data_version"] == version) and (answer["ready"] or not warm)
        in_a_row = in_a_row + 1 if ok else 0
        if in_a_row >= (10 if warm else 1):
            return round(time.monotonic() - started, 2)
        time.sleep(0.1)
    raise h.ChildFailed(f"not ready after {timeout:.0f} s: {health(base)}")


def visits(base: str, partnerships: list[str], repeat: int) -> dict[str, Any]:
    """Cold (first) and warm (repeat) first byte of every partnership's default map page."""
    out: dict[str, Any] = {}
    for p in partnerships:
        ms, status, cache = first_byte_ms(base, f"/maps/{p}")
        out[p] = {"status": status, "cold_ms": ms, "cold_x_cache": cache}
    for p in partnerships:
        again = [first_byte_ms(base, f"/maps/{p}") for _ in range(repeat)]
        out[p]["warm_ms"] = [a[0] for a in again]
        out[p]["warm_median_ms"] = round(statistics.median(a[0] for a in again), 1)
        out[p]["warm_x_cache"] = sorted({a[2] for a in again})
    served = [v for v in out.values() if v["status"] == 200]
    cold = [v["cold_ms"] for v in served]
    warm = [v["warm_median_ms"] for v in served]
    return {"per_partnership": out,
            "cold_max_ms": max(cold, default=None),
            "cold_median_ms": statistics.median(cold) if cold else None,
            "warm_max_ms": max(warm, default=None),
            "warm_median_ms": statistics.median(warm) if warm else None,
            "served": len(served)}


def run_side(name: str, db: Path, workdir: Path, warm: bool, workers: int, repeat: int,
             partnerships: list[str], console: Console) -> dict[str, Any]:
    served_db = workdir / f"{name}.duckdb"
    shutil.copy(db, served_db)
    os.environ["GEO_CS_WARM_MAPS"] = "1" if warm else "0"
    try:
        server = h.start_geo_cs(served_db, workdir / name, workers=workers)
    finally:
        os.environ.pop("GEO_CS_WARM_MAPS", None)
    side: dict[str, Any] = {"warm_up": warm}
    try:
        up_s = server.wait_ready("/health", timeout=120, processes=workers)
        version = health(server.base)["data_version"]
        side["start"] = {"up_s": round(up_s, 2), "ready_after_up_s": wait_ready(server.base, warm, version)}
        console.print(f"{name}: up in {up_s:.1f} s, ready {side['start']['ready_after_up_s']} s later; "
                      "visiting …")
        side["start"].update(visits(server.base, partnerships, repeat))
        csv = workdir / f"{name}-newq.csv"
        csv.write_text(NEW_QUARTER)
        started = time.monotonic()
        subprocess.run([*GEO_CS, "--db", str(served_db), "-q", "ingest", "indicator", str(csv),
                        "--layout", "long", "--set", "wpc2010"], check=True, capture_output=True)
        ingest_s = time.monotonic() - started
        ready_s = wait_ready(server.base, warm, version + 1)
        side["after_ingest"] = {"ingest_s": round(ingest_s, 2), "ready_after_ingest_s": ready_s}
        console.print(f"{name}: ingest {ingest_s:.1f} s, new version ready {ready_s} s later; visiting …")
        side["after_ingest"].update(visits(server.base, partnerships, repeat))
    finally:
        server.stop()
    return side


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", type=Path, help="a geo-cs database (default: build the demo)")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn workers (default 2, as serve)")
    parser.add_argument("--repeat", type=int, default=3, help="repeat visits per partnership (default 3)")
    h.add_out(parser, DEFAULT_OUT)
    args = parser.parse_args(argv)
    console = Console()
    h.warn_if_busy(console)
    from geo_cs.partnerships import load_partnerships

    partnerships = list(load_partnerships())
    with tempfile.TemporaryDirectory(prefix="bench-first-visit-") as tmp:
        workdir = Path(tmp)
        db = args.db or build_demo(workdir, console)
        sides = {name: run_side(name, db, workdir, warm, args.workers, args.repeat, partnerships, console)
                 for name, warm in (("geo_cs", True), ("no_warm_up", False))}

    def cold_ok(phase: str) -> bool:
        got = sides["geo_cs"][phase]
        return got["served"] > 0 and got["cold_max_ms"] <= TARGET_COLD_MS

    results = {
        "benchmark": "first_visit",
        "timestamp": h.timestamp(),
        "machine": h.machine(python=platform.python_version(), workers=args.workers,
                             **h.package_versions("uvicorn", "fastapi", "starlette", "duckdb")),
        "commit": h.git_commit(),
        "loadavg_at_start": os.getloadavg(),
        "store": str(args.db) if args.db else "demo",
        "method": "first byte of /maps/{id} (default view) for every partnership on a new connection: "
                  "cold = its first visit once the server says ready (with the warm-up: /health ready "
                  "on 10 new connections in a row), warm = the median of --repeat more; after a start "
                  "and after an ingest into the served file; peer = GEO_CS_WARM_MAPS=0",
        "targets": {"cold_first_byte_ms_max": TARGET_COLD_MS},
        "sides": sides,
        "ratio_cold_peer_over_geo_cs": round(sides["no_warm_up"]["start"]["cold_median_ms"]
                                             / sides["geo_cs"]["start"]["cold_median_ms"], 2),
        "pass": {"cold_at_most_300ms_after_start": cold_ok("start"),
                 "cold_at_most_300ms_after_ingest": cold_ok("after_ingest")},
    }
    console.print(f"{'side':<11} {'phase':<13} {'partnership':<24} {'cold ms':>8} {'x-cache':>8} "
                  f"{'warm ms':>8}")
    for name, side in sides.items():
        for phase in ("start", "after_ingest"):
            for p, v in side[phase]["per_partnership"].items():
                if v["status"] == 200:
                    console.print(f"{name:<11} {phase:<13} {p:<24} {v['cold_ms']:>8} "
                                  f"{v['cold_x_cache']:>8} {v['warm_median_ms']:>8}")
            console.print(f"{name:<11} {phase:<13} {'(max / median)':<24} {side[phase]['cold_max_ms']:>8} "
                          f"{'':>8} {side[phase]['warm_max_ms']:>8}  "
                          f"median cold {side[phase]['cold_median_ms']}")
    console.print(f"targets: {results['pass']}")
    h.write_results(args.out, results, console)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
