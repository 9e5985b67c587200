"""Benchmark: a worker's memory under many large pages at once (issue 27, point 9).

What is measured
----------------
``geo-cs serve --workers 1`` (one worker process, as ``geo-cs serve`` starts it) serves the demo
store (built into ``--workdir`` by ``geo-cs demo --no-serve`` unless ``--db`` names one). After a
warm-up (one large page, so the collection's selection and caches are built as on any used
server) this process sends ``N`` requests at once, for each ``N`` of ``--concurrency`` (default
16 and 48), every one the largest page the API gives: ``/collections/lsoa2021/items?limit=10000``
(10,000 LSOA 2021 features with their geometry, 4.5 MB of GeoJSON; the demo's largest
collection), read whole as a GIS client reads it (``Accept-Encoding: gzip``, asyncio + httpx).
The worker's resident memory (``VmRSS`` of /proc, every 20 ms) gives:

* ``rss_before_mb``: after the warm-up, before the burst;
* ``rss_peak_mb``: the highest sample during the burst (and ``vmhwm_mb``, the kernel's peak
  since the worker started, which a sample between two readings cannot miss);
* ``rss_kept_mb``: five seconds after the last response, what the worker still holds;
* per status: how many got 200 and how many 503 (refused by the service's memory budget, with
  ``Retry-After``), any other status or error counted as such; the wall time of the burst.

Each burst is measured on a freshly started worker, so one burst's leftovers do not count in
the next. The server runs from this checkout as it is, or from the tree of ``--at COMMIT``
(exported with ``git archive`` into the work folder: a commit's figures, whatever else the
checkout holds); ``--baseline COMMIT`` measures the same bursts on that commit too (the figures
before a change), reported under ``baseline``; ``--budget-mb`` sets ``GEO_CS_MEMORY_BUDGET_MB``.

Targets (``targets``/``pass``): no status other than 200 and 503, every 503 with
``Retry-After``, and the peak growth over ``rss_before_mb`` within ``--max-growth-mb``
(default: the budget, 512 MB unless ``--budget-mb``).

``--gb`` serves the Great Britain store of ``bench/_gb_store.py`` instead (built once from
``../shared/data``) and pages its LSOA 2011 (a page of 10,000 is 21 MB of GeoJSON there, 4.5
on the demo); its results go to ``bench/results/memory_gb.json``.

    python bench/bench_memory.py                      # 16 and 48 at once, bench/results/memory.json
    python bench/bench_memory.py --at HEAD --baseline HEAD~1   # a commit, and the one before
    python bench/bench_memory.py --gb                 # the GB store: bench/results/memory_gb.json
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from _harness import (
    REPO,
    RESULTS,
    Server,
    add_out,
    free_port,
    git_commit,
    machine,
    package_versions,
    proc_status_mb,
    stop_on_sigterm,
    timestamp,
    warn_if_busy,
    workdir_or_temp,
    write_results,
)
from rich.console import Console
from rich.table import Table

from geo_cs.config import Settings

#: The collection paged: the demo's largest, or with ``--gb`` the GB LSOAs (34,753)
COLLECTION = "lsoa2021"
GB_COLLECTION = "lsoa2011"
PAGE = {"limit": "10000"}
#: How long after the last response the memory the worker keeps is read.
SETTLE_SECONDS = 5.0
SAMPLE_SECONDS = 0.02


def build_demo(db: Path, console: Console) -> None:
    """``geo-cs demo --no-serve`` into ``db`` (about 25 s), unless it is there already."""
    if db.exists():
        return
    with console.status(f"building the demo store {db}"):
        subprocess.run([sys.executable, "-m", "geo_cs.cli", "--quiet", "--db", str(db), "demo",
                        "--no-serve"], check=True, cwd=REPO)


def short_commit(commit: str) -> str:
    """``commit`` (HEAD~1, a branch…) as a short hash."""
    return subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short=12", commit],
                          capture_output=True, text=True, check=True).stdout.strip()


def export_commit(commit: str, folder: Path) -> Path:
    """The tree of ``commit`` of this repository, written into ``folder`` (``git archive``)."""
    folder.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "-C", str(REPO), "archive", commit], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive.stdout, check=True)
    return folder


def start_server(db: Path, workdir: Path, checkout: Path, budget_mb: int | None) -> Server:
    """``geo-cs serve --workers 1`` from ``checkout`` on a free loopback port."""
    port = free_port()
    env = {**os.environ, "GEO_CS_DB": str(db), "PYTHONPATH": str(checkout)}
    if budget_mb is not None:
        env["GEO_CS_MEMORY_BUDGET_MB"] = str(budget_mb)
    cmd = [sys.executable, "-m", "geo_cs.cli", "--quiet", "--db", str(db), "serve", "--workers", "1",
           "--host", "127.0.0.1", "--port", str(port)]
    return Server("geo-cs", cmd, env, port, checkout, workdir)


class Sampler:
    """VmRSS of ``pid`` every :data:`SAMPLE_SECONDS` on a thread of its own, the highest kept."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            rss = proc_status_mb("VmRSS", self.pid)
            if rss == rss:
                self.peak = max(self.peak, rss)
            time.sleep(SAMPLE_SECONDS)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


async def _one(client: httpx.AsyncClient, url: str) -> tuple[str, bool, int]:
    """One page read whole: (status or error name, whether a 503 had Retry-After, bytes)."""
    try:
        response = await client.get(url, params=PAGE)
    except httpx.HTTPError as exc:
        return type(exc).__name__, False, 0
    return str(response.status_code), "retry-after" in response.headers, len(response.content)


async def burst(base: str, n: int, collection: str) -> list[tuple[str, bool, int]]:
    """``n`` large pages sent at once, each on its own connection."""
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    async with httpx.AsyncClient(timeout=600, limits=limits,
                                 headers={"Accept-Encoding": "gzip"}) as client:
        url = f"{base}/collections/{collection}/items"
        return await asyncio.gather(*(_one(client, url) for _ in range(n)))


def measure(n: int, db: Path, workdir: Path, checkout: Path, budget_mb: int | None,
            console: Console, collection: str = COLLECTION) -> dict[str, Any]:
    """One burst of ``n`` large pages of ``collection`` against a freshly started worker."""
    server = start_server(db, workdir, checkout, budget_mb)
    try:
        server.wait_ready()
        pid = server.proc.pid
        # warm-up: the selection, the collections and DuckDB's metadata, as on a server in use
        warm = httpx.get(f"{server.base}/collections/{collection}/items", params=PAGE, timeout=300)
        warm.raise_for_status()
        time.sleep(1)
        before = proc_status_mb("VmRSS", pid)
        started = time.monotonic()
        with Sampler(pid) as sampler, console.status(f"{n} pages of 10,000 items at once"):
            answers = asyncio.run(burst(server.base, n, collection))
        seconds = time.monotonic() - started
        time.sleep(SETTLE_SECONDS)
        kept = proc_status_mb("VmRSS", pid)
        hwm = proc_status_mb("VmHWM", pid)
        # the reservations were all released: one more large page is served
        after = httpx.get(f"{server.base}/collections/{collection}/items", params=PAGE, timeout=300)
    finally:
        server.stop()
    statuses = Counter(status for status, _, _ in answers)
    peak = max(sampler.peak, before)
    return {
        "concurrent": n, "rss_before_mb": round(before, 1), "rss_peak_mb": round(peak, 1),
        "vmhwm_mb": round(hwm, 1), "rss_kept_mb": round(kept, 1),
        "peak_growth_mb": round(peak - before, 1),
        "kept_growth_mb": round(kept - before, 1),
        "statuses": dict(sorted(statuses.items())),
        "503_without_retry_after": sum(1 for s, retry, _ in answers if s == "503" and not retry),
        "bytes_per_200": max((size for s, _, size in answers if s == "200"), default=0),
        "seconds": round(seconds, 1), "later_request_status": after.status_code,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", type=Path, help="the store to serve (default: the demo, built in --workdir)")
    parser.add_argument("--gb", action="store_true",
                        help="serve the GB store (bench/_gb_store.py) and page its LSOAs; results in "
                             "bench/results/memory_gb.json")
    parser.add_argument("--workdir", type=Path, help="where the demo store and server logs go "
                                                     "(default a temporary folder)")
    parser.add_argument("--concurrency", default="16,48", help="comma-separated burst sizes")
    parser.add_argument("--at", metavar="COMMIT", help="measure this commit's tree, not the checkout")
    parser.add_argument("--baseline", metavar="COMMIT",
                        help="a commit to measure the same way (the figures before a change)")
    parser.add_argument("--budget-mb", type=int, help="GEO_CS_MEMORY_BUDGET_MB for the server")
    parser.add_argument("--max-growth-mb", type=float,
                        help="target: the peak's growth over the RSS before a burst (default: the "
                             "budget, GEO_CS_MEMORY_BUDGET_MB or its default)")
    add_out(parser, RESULTS / "memory.json")
    args = parser.parse_args(argv)
    collection = GB_COLLECTION if args.gb else COLLECTION
    if args.gb and args.out == RESULTS / "memory.json":
        args.out = RESULTS / "memory_gb.json"
    at_commit = short_commit(args.at) if args.at else git_commit()
    max_growth = args.max_growth_mb or args.budget_mb or Settings.model_fields["memory_budget_mb"].default
    baseline_commit = short_commit(args.baseline) if args.baseline else None
    stop_on_sigterm()
    console = Console()
    load = warn_if_busy(console, "memory readings")
    tmp, workdir = workdir_or_temp(args.workdir, "geo-cs-bench-memory-")
    try:
        if args.gb:
            from _gb_store import gb_store

            db = gb_store()
        else:
            db = args.db or workdir / "demo.duckdb"
            if args.db is None:
                build_demo(db, console)
        sizes = [int(n) for n in args.concurrency.split(",")]
        checkouts = {"after": REPO if args.at is None else export_commit(args.at, workdir / "at")}
        if args.baseline:
            checkouts["before"] = export_commit(args.baseline, workdir / "baseline")
        measured = {name: [measure(n, db, workdir, checkout, args.budget_mb, console, collection)
                           for n in sizes]
                    for name, checkout in checkouts.items()}
    finally:
        if tmp is not None:
            tmp.cleanup()
    runs = measured["after"]
    table = Table(title=f"One worker, {collection} pages of 10,000 items at once ({db.name})")
    for column in ("server", "at once", "RSS before", "peak", "kept after 5 s", "statuses", "seconds"):
        table.add_column(column, justify="right")
    for name, their_runs in measured.items():
        for r in their_runs:
            label = at_commit if name == "after" else f"{baseline_commit} (before)"
            table.add_row(label, str(r["concurrent"]), f"{r['rss_before_mb']:,.0f} MB",
                          f"{r['rss_peak_mb']:,.0f} MB", f"{r['rss_kept_mb']:,.0f} MB",
                          ", ".join(f"{k}: {v}" for k, v in r["statuses"].items()), f"{r['seconds']:.1f}")
    console.print(table)
    passes = {
        f"n{r['concurrent']}": {
            "only_200_or_503": set(r["statuses"]) <= {"200", "503"} and r["later_request_status"] == 200,
            "every_503_has_retry_after": r["503_without_retry_after"] == 0,
            "peak_growth_within_target": r["peak_growth_mb"] <= max_growth,
        } for r in runs
    }
    results = {
        "benchmark": "memory", "timestamp": timestamp(), "commit": at_commit,
        "budget_mb": args.budget_mb or "default (GEO_CS_MEMORY_BUDGET_MB unset)",
        "machine": machine(loadavg_before=load, **package_versions("duckdb", "uvicorn", "starlette")),
        "targets": {"statuses": "200 or 503 only; 503 with Retry-After; a later page 200",
                    "peak_growth_mb": max_growth},
        "store": "GB (bench/_gb_store.py)" if args.gb else "demo" if args.db is None else str(args.db),
        "results": {"collection": collection, "limit": 10_000,
                    # the headline: the peak of the largest burst
                    "peak_rss_mb": max(runs, key=lambda r: r["concurrent"])["rss_peak_mb"],
                    "runs": runs},
        **({"baseline": {"commit": baseline_commit, "runs": measured["before"]}}
           if args.baseline else {}),
        "pass": passes,
    }
    write_results(args.out, results, console)
    return 0


if __name__ == "__main__":
    sys.exit(main())
