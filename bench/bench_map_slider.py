"""Benchmark: one step of the map page's period slider, in Chromium, cold and warm.

What is measured
----------------
``uvicorn geo_cs.api.app:create_app --factory`` (1 worker, started fresh: its tile cache is empty) on
the demo database (built first into a temporary folder with ``geo-cs demo --no-serve``, or
``--db``), and Debian's Chromium driven by Playwright (``--no-sandbox --disable-gpu
--disable-background-networking``, a 1400 x 850 window, as the browser tests use). For each
partnership (``--partnership``, default Glasgow's data zones and Nottingham's LSOAs), in a new
browser context (an empty HTTP cache):

* **cold**: open ``/maps/<partnership>``, wait for its tiles, then move the slider to each other
  period once. The browser has none of those tiles; for the first partnership the server has
  not rendered them either (``server_cache`` says which).
* **warm**: ``--passes`` (default 5) more passes over every period: each step is to a period
  this view has already drawn. ``map.js`` keeps each drawn period's tile layers on the map
  (hidden when not shown) until the view moves, so nothing is fetched, decoded or painted: the
  step swaps which period's layers are displayed and rewrites the panel.
* **peer — uncached**: the same steps, each in a new view (a new browser context: an empty
  HTTP cache and page), the server answering from its warm in-process tile cache: what a step
  costs when its tiles must come over HTTP and be decoded. The ratio warm / uncached is what
  keeping the view's tiles buys. There is no other map page to compare with on the same data.

One step is timed inside the page (``performance.now()``, through ``page.evaluate``, which the
page's Content-Security-Policy does not block): from just before the slider's ``input`` event
is dispatched to the next animation frame after the page announced the period drawn (its
``geo-cs:drawn`` event: *both* tile layers, the colours on canvas and the hatching on SVG,
loaded). For each step the tiles the page asked for and those that
reached the network are counted (DevTools: a request that went out on the wire has raw
response headers, ``Network.responseReceivedExtraInfo``; one answered by the HTTP cache has
none).

Printed and written to ``bench/results/map_slider.json``: median, p95 and max per phase, the
request counts, and the ratio of the warm median to the peer's. Targets: a warm step under
100 ms (p95), and no tile fetched from the network twice in one view (cold and warm passes).

Run from the repository root::

    python bench/bench_map_slider.py [--db geo-cs.duckdb] [--passes 5] [--partnership glasgow]
"""

from __future__ import annotations

import argparse
import collections
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

import _harness as h
from rich.console import Console

DEFAULT_OUT = h.RESULTS / "map_slider.json"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
TARGET_WARM_P95_MS = 100.0

#: One slider step, timed in the page: resolves with the milliseconds from the input event to
#: the frame after the page announced the period drawn (``geo-cs:drawn``: both tile layers of the
#: period loaded -- at once for a period this view has drawn, whose layers are kept).
STEP_JS = """
(index) => new Promise((resolve, reject) => {
  const slider = document.getElementById("geo-cs-period");
  let t0 = 0;
  const timer = setTimeout(() => reject(new Error("tiles not loaded in 30 s")), 30000);
  document.addEventListener("geo-cs:drawn", () => {
    const loaded = performance.now() - t0;
    requestAnimationFrame(() => {
      clearTimeout(timer);
      resolve({ frame_ms: performance.now() - t0, loaded_ms: loaded });
    });
  }, { once: true });
  slider.value = String(index);
  t0 = performance.now();
  slider.dispatchEvent(new Event("input", { bubbles: true }));
})
"""


def _summary(values: list[float]) -> dict[str, float | int]:
    ordered = sorted(values)
    if not ordered:
        return {"n": 0}
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"n": len(ordered), "median_ms": round(statistics.median(ordered), 1),
            "p95_ms": round(p95, 1), "max_ms": round(ordered[-1], 1), "min_ms": round(ordered[0], 1)}


def build_demo(workdir: Path, console: Console) -> Path:
    db = workdir / "demo.duckdb"
    console.print("building the demo database (geo-cs demo --no-serve) …")
    subprocess.run([sys.executable, "-m", "geo_cs.cli", "--db", str(db), "-q", "demo", "--no-serve"],
                   check=True, cwd=h.REPO)
    return db


class Counted:
    """Tile requests the page made and those that reached the network, since the last take()."""

    def __init__(self, page) -> None:
        self.url_of: dict[str, str] = {}
        self.asked: collections.Counter = collections.Counter()
        self.network: collections.Counter = collections.Counter()
        self.view_network: collections.Counter = collections.Counter()
        self.cdp = page.context.new_cdp_session(page)
        self.cdp.send("Network.enable")
        self.cdp.on("Network.requestWillBeSent", self._sent)
        self.cdp.on("Network.responseReceivedExtraInfo", self._wire)

    def _sent(self, event: dict) -> None:
        url = event["request"]["url"]
        if ".mvt" in url:
            self.url_of[event["requestId"]] = url
            self.asked[url] += 1

    def _wire(self, event: dict) -> None:
        url = self.url_of.get(event["requestId"])
        if url is not None:
            self.network[url] += 1

    def take(self) -> dict[str, int]:
        out = {"tiles_asked": sum(self.asked.values()), "tiles_from_network": sum(self.network.values())}
        self.view_network.update(self.network)
        self.asked.clear()
        self.network.clear()
        return out


def _open(browser, base: str, partnership: str):
    context = browser.new_context(viewport={"width": 1400, "height": 850})   # an empty HTTP cache
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    counted = Counted(page)
    opened = time.perf_counter()
    page.goto(f"{base}/maps/{partnership}")
    page.wait_for_selector('body[data-tiles="loaded"]', state="attached", timeout=60_000)
    open_s = time.perf_counter() - opened
    n_periods = int(page.evaluate("document.getElementById('geo-cs-period').max")) + 1
    start = int(page.evaluate("document.getElementById('geo-cs-period').value"))
    return context, page, errors, counted, open_s, n_periods, start


def run_view(browser, base: str, partnership: str, passes: int, server_cache: str) -> dict[str, Any]:
    steps: dict[str, list[dict]] = {"cold": [], "warm": [], "uncached": []}
    context, page, errors, counted, open_s, n_periods, start = _open(browser, base, partnership)
    opening = counted.take()

    def step(page, counted, index: int, phase: str) -> None:
        timing = page.evaluate(STEP_JS, index)
        steps[phase].append({"period_index": index, **timing, **counted.take()})

    order = [i for i in range(n_periods) if i != start]
    for index in order:
        step(page, counted, index, "cold")
    for _ in range(passes):
        for index in [start, *order]:
            step(page, counted, index, "warm")
    once_per_view = all(n == 1 for n in counted.view_network.values())
    twice = sorted(u for u, n in counted.view_network.items() if n > 1)
    distinct = len(counted.view_network)
    context.close()
    # the peer: the same steps in a new view each time (nothing in the browser or the page),
    # the server answering from its warm tile cache
    for _ in range(passes):
        context, page, more_errors, counted, _, _, start = _open(browser, base, partnership)
        errors += more_errors
        counted.take()
        for index in [i for i in range(n_periods) if i != start]:
            step(page, counted, index, "uncached")
        context.close()
    phases = {}
    for phase, rows in steps.items():
        phases[phase] = {
            "frame": _summary([r["frame_ms"] for r in rows]),
            "layers_loaded": _summary([r["loaded_ms"] for r in rows]),
            "tiles_asked_per_step": round(statistics.mean(r["tiles_asked"] for r in rows), 1) if rows else 0,
            "tiles_from_network_per_step": round(statistics.mean(r["tiles_from_network"] for r in rows), 1)
            if rows else 0,
        }
    return {"partnership": partnership, "periods": n_periods, "server_cache": server_cache,
            "open_s": round(open_s, 2), "opening_requests": opening, "phases": phases,
            "each_tile_from_network_once": once_per_view, "tiles_fetched_twice": twice[:20],
            "distinct_tiles": distinct, "console_errors": errors, "steps": steps}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", type=Path, help="a geo-cs database (default: build the demo)")
    parser.add_argument("--partnership", action="append",
                        help="repeatable, with its query if any; default glasgow, nottingham and "
                             "the demo's monthly series")
    parser.add_argument("--passes", type=int, default=5, help="warm passes over the periods (default 5)")
    h.add_out(parser, DEFAULT_OUT)
    args = parser.parse_args(argv)
    console = Console()
    if not Path(CHROMIUM).exists():
        console.print(f"[red]Chromium not found at {CHROMIUM}[/] (apt-get install chromium)")
        return 2
    from playwright.sync_api import sync_playwright

    partnerships = args.partnership or [
        "glasgow", "nottingham", "nottingham?geography=wpc2010&indicator=claimants_monthly"]
    with tempfile.TemporaryDirectory(prefix="bench-slider-") as tmp:
        workdir = Path(tmp)
        db = args.db or build_demo(workdir, console)
        server = h.start_geo_cs(db, workdir, access_log=True)
        try:
            server.wait_ready("/health", timeout=60)
            base = server.base
            views = []
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=[
                    "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
                for i, partnership in enumerate(partnerships):
                    console.print(f"{partnership}: cold, {args.passes} warm passes, {args.passes} "
                                  "new views (uncached) …")
                    views.append(run_view(browser, base, partnership, args.passes,
                                          "empty" if i == 0 else "holds other partnerships' tiles"))
                browser.close()
        finally:
            server.stop()

    def pooled(phase: str) -> list[float]:
        return [s["frame_ms"] for v in views for s in v["steps"][phase]]

    overall = {phase: _summary(pooled(phase)) for phase in ("cold", "warm", "uncached")}
    ratio = overall["warm"]["median_ms"] / overall["uncached"]["median_ms"]
    results = {
        "benchmark": "map_slider",
        "timestamp": h.timestamp(),
        "machine": h.machine(python=platform.python_version(), chromium=CHROMIUM,
                           **h.package_versions("playwright", "uvicorn", "fastapi", "starlette")),
        "commit": h.git_commit(),
        "loadavg_at_start": os.getloadavg(),
        "method": "slider input event to the next animation frame after both tile layers' load, "
                  "timed in the page; warm = periods this view already drew; peer (uncached) = "
                  "the same steps in a new view each time, the server's tile cache warm",
        "targets": {"warm_p95_ms_max": TARGET_WARM_P95_MS},
        "overall": overall,
        "ratio_warm_over_uncached": round(ratio, 3),
        "views": views,
        "pass": {
            "warm_step_p95_under_100ms": overall["warm"]["p95_ms"] < TARGET_WARM_P95_MS,
            "each_tile_from_network_once_per_view": all(v["each_tile_from_network_once"] for v in views),
            "console_clean": not any(v["console_errors"] for v in views),
        },
    }
    console.print(f"{'phase':<18} {'n':>4} {'median':>8} {'p95':>8} {'max':>8}  (ms, input to drawn frame)")
    for phase, s in overall.items():
        console.print(f"{phase:<18} {s['n']:>4} {s['median_ms']:>8} {s['p95_ms']:>8} {s['max_ms']:>8}")
    for v in views:
        ph = v["phases"]
        console.print(f"{v['partnership']}: {v['periods']} periods, {v['distinct_tiles']} distinct tiles; "
                      f"tiles asked / from the network per step: cold {ph['cold']['tiles_asked_per_step']}"
                      f"/{ph['cold']['tiles_from_network_per_step']}, warm "
                      f"{ph['warm']['tiles_asked_per_step']}/{ph['warm']['tiles_from_network_per_step']}, "
                      f"uncached {ph['uncached']['tiles_asked_per_step']}"
                      f"/{ph['uncached']['tiles_from_network_per_step']}")
    console.print(f"warm median / uncached median: {ratio:.2f}; targets: {results['pass']}")
    h.write_results(args.out, results, console)
    return 0


if __name__ == "__main__":
    sys.exit(main())
