"""Benchmark: the static exports -- partnership profile reports and a GB-wide PMTiles archive.

What is measured
----------------
In one run:

1. **Partnership profile reports** (PDF + HTML), for each of the 17 partnerships of
   ``geo_cs.partnerships.load_partnerships()``, each as a fresh ``geo-cs --db DEMO -q export
   report -p PID -o DIR`` process: what a user waits for, interpreter start and imports included.
   The database is the demo (``geo-cs --db <tmp>/demo.duckdb -q demo --no-serve``, built first
   into a temporary folder and timed for information): it holds every partnership's areas, which
   the GB store of ``bench/_gb_store.py`` (LSOA and Data Zones only) does not. Per partnership:
   wall seconds (spawn to exit, measured by the parent), CPU seconds (``wait4`` rusage of the
   child), peak RSS, the PDF's page count (``pdfinfo`` from poppler-utils, when installed), the
   output sizes, and success or the error text. A partnership that fails to produce a report
   (e.g. no small-area measure) is a finding, reported with its error, not a failed run.
   Peak RSS is the child's own ``VmHWM`` read from ``/proc/self/status`` at its exit (not
   ``ru_maxrss``, which Linux carries over from the parent across fork and exec): the command is
   started through a few lines of ``python -c`` that import ``geo_cs.cli.main`` (the console
   script's entry point), wrap ``partnership_profile``, ``write_pdf`` and ``write_html`` with
   timers (the step breakdown shown) and write those figures to a file at exit.
   Target: every partnership under 30 s on this machine (2 cores).

2. **PMTiles of all GB LSOAs against fetching the same tiles from the server.**

   * **build**: ``geo-cs --db GB -q export pmtiles -l lsoa2011 -i INDICATOR --denominator D
     --minzoom 4 --maxzoom 12 -o FILE`` (``_gb_store.MEASURES`` values, latest period), a fresh
     process, wrapped the same way (``tile_addresses``, ``area_values``, ``write_layer_pmtiles`` and the
     summed per-thread time of ``render_tile`` recorded). ``write_layer_pmtiles`` renders on a thread
     pool of ``min(4, cpu_count)`` threads (one DuckDB cursor each) and gzips and writes in the
     calling thread. ``--maxzoom`` lowers the last zoom.
   * **server**: ``uvicorn geo_cs.api.app:create_app --factory`` with 1 worker (``GEO_CS_DB`` = the GB
     store), started fresh so that its tile cache is empty, then the same z/x/y list
     (``geo_cs.export.pmtiles.tile_addresses``, computed in this process) fetched one by one
     by a sequential ``httpx.Client`` (keep-alive, ``Accept-Encoding: gzip`` like a browser),
     ``/tiles/lsoa2011/{z}/{x}/{y}.mvt?indicator=..&denominator=..&period=..``. The order is
     shuffled with a fixed seed (``--seed``), so that when the fetch takes more than
     ``--fetch-budget`` seconds (default 360; or, after 600 tiles, is projected to take more
     than 1.5x that) it stops and the tiles fetched so far are a deterministic random sample:
     the full time is then extrapolated per zoom (mean time of the zoom's sampled tiles x its
     tile count; the first request counted once), and said so. The first request also computes
     the measure's values in the server (the build computes them too).

   Printed: both times, the ratio server-fetch time / build time, the archive size, tiles per
   zoom (addressed, written, fetched), HTTP statuses (a 204 is a tile with no area, which the
   archive leaves out). No target beyond printing the ratio.

The 1-minute load average is recorded at the start, per report and at the end: the machine may
be shared with other jobs, and a loaded 2-core machine slows everything here.

Results are printed and written to ``bench/results/exports.json``. Exit status: 0 whether or not
the targets are met, 1 when a run fails (demo build, PMTiles build, server), 2 when inputs are
missing (the shared data for the GB store, the ``geo-cs`` command).

Run from the repository root::

    /work/venv/bin/python bench/bench_exports.py [--skip-report] [--skip-pmtiles] [--maxzoom 12]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import _harness as h
from _gb_store import MEASURES, gb_store, shared_missing
from rich.console import Console
from rich.table import Table

DEFAULT_OUT = h.RESULTS / "exports.json"
LAYER = "lsoa2011"
MINZOOM = 4
TARGET_REPORT_S = 30.0
REPORT_TIMEOUT_S = 300.0

#: Runs the geo-cs console script's entry point in this process, with timers around the library
#: steps named in BENCH_EXPORTS_WRAP ("module:function,..."), and at exit writes the step times,
#: the import time and the process's own peak RSS (VmHWM) as JSON to BENCH_EXPORTS_STATS.
WRAPPER = r"""
import atexit, importlib, json, os, sys, threading, time
_t0 = time.perf_counter()
_stats = {"steps": {}, "calls": {}}
_lock = threading.Lock()

def _dump():
    _stats["in_process_s"] = time.perf_counter() - _t0
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            _stats["vmhwm_mb"] = int(line.split()[1]) / 1024
    with open(os.environ["BENCH_EXPORTS_STATS"], "w") as f:
        json.dump(_stats, f, default=str)

atexit.register(_dump)
from geo_cs.cli import main
_stats["import_cli_s"] = time.perf_counter() - _t0

def _timed(name, fn):
    def inner(*args, **kwargs):
        t = time.perf_counter()
        try:
            result = fn(*args, **kwargs)
        finally:
            with _lock:
                _stats["steps"][name] = _stats["steps"].get(name, 0.0) + time.perf_counter() - t
                _stats["calls"][name] = _stats["calls"].get(name, 0) + 1
        if hasattr(result, "to_dict"):
            _stats.setdefault("reports", {})[name] = result.to_dict()
        return result
    return inner

_t = time.perf_counter()
for spec in filter(None, os.environ.get("BENCH_EXPORTS_WRAP", "").split(",")):
    module, name = spec.split(":")
    mod = importlib.import_module(module)
    setattr(mod, name, _timed(name, getattr(mod, name)))
_stats["import_wrapped_modules_s"] = time.perf_counter() - _t
sys.argv = ["geo-cs", *sys.argv[1:]]
sys.exit(main())
"""

REPORT_WRAP = ("geo_cs.export.report:partnership_profile,geo_cs.export.report:write_pdf,"
               "geo_cs.export.report:write_html")
PMTILES_WRAP = ("geo_cs.layers:resolve_measure,geo_cs.layers:area_values,"
                "geo_cs.export.pmtiles:tile_addresses,"
                "geo_cs.export.pmtiles:render_tile,geo_cs.export.pmtiles:write_layer_pmtiles")


# -- running a geo-cs command ---------------------------------------------------------------------

def run_geo_cs(args: list[str], wrap: str, workdir: Path, tag: str, timeout: float) -> dict[str, Any]:
    """One fresh ``geo-cs ARGS`` process (through WRAPPER); wall, CPU, peak RSS, its step times."""
    stats_path = workdir / f"stats_{tag}.json"
    stats_path.unlink(missing_ok=True)
    err_path = workdir / f"stderr_{tag}.txt"
    env = {**os.environ, "BENCH_EXPORTS_STATS": str(stats_path), "BENCH_EXPORTS_WRAP": wrap}
    load = os.getloadavg()[0]
    with err_path.open("wb") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-c", WRAPPER, *args], cwd=workdir, env=env,
                                stdout=err, stderr=subprocess.STDOUT)
        timer = threading.Timer(timeout, proc.kill)  # the process started just above
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    output = err_path.read_text(errors="replace")
    stats = json.loads(stats_path.read_text()) if stats_path.exists() else {}
    return {
        "returncode": proc.returncode, "timed_out": proc.returncode == -signal.SIGKILL and wall >= timeout,
        "wall_s": round(wall, 3), "cpu_s": round(usage.ru_utime + usage.ru_stime, 3),
        "peak_rss_mb": round(stats["vmhwm_mb"], 1) if "vmhwm_mb" in stats else None,
        # importing geo_cs.cli and the wrapped modules (matplotlib for the report); not the
        # interpreter's own start
        "import_cli_s": round(stats.get("import_cli_s", float("nan"))
                              + stats.get("import_wrapped_modules_s", 0.0), 3),
        "steps_s": {k: round(v, 3) for k, v in stats.get("steps", {}).items()},
        "calls": stats.get("calls", {}), "returned": stats.get("reports", {}),
        "output_tail": output[-3000:], "loadavg_1min_before": load,
    }


def error_text(output: str) -> str:
    """The error a failed command printed (its last non-empty lines, short)."""
    lines = [line.strip() for line in output.strip().splitlines() if line.strip()]
    return " ".join(lines[-4:])[:600]


def pdf_pages(path: Path) -> int | None:
    if shutil.which("pdfinfo") is None or not path.exists():
        return None
    done = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True)
    for line in done.stdout.splitlines():
        if line.startswith("Pages:"):
            return int(line.split()[1])
    return None


# -- 1. reports -----------------------------------------------------------------------------------

def build_demo(workdir: Path, console: Console) -> tuple[Path, dict[str, Any]]:
    db = workdir / "demo.duckdb"
    with console.status("building the demo database (geo-cs demo --no-serve, ~20 s)"):
        run = run_geo_cs(["--db", str(db), "-q", "demo", "--no-serve"], "", workdir, "demo", 600)
    if run["returncode"] != 0 or not db.exists():
        raise RuntimeError(f"geo-cs demo failed (exit {run['returncode']}):\n{run['output_tail']}")
    console.print(f"demo database built in {run['wall_s']:.1f} s ({db.stat().st_size / 1e6:.0f} MB)")
    return db, {"wall_s": run["wall_s"], "cpu_s": run["cpu_s"], "peak_rss_mb": run["peak_rss_mb"],
                "mb": round(db.stat().st_size / 1e6, 1)}


def run_reports(db: Path, partnerships: list[str], workdir: Path, console: Console) -> list[dict[str, Any]]:
    rows = []
    for i, pid in enumerate(partnerships, 1):
        out_dir = workdir / "reports" / pid
        with console.status(f"report {i}/{len(partnerships)}: {pid}"):
            run = run_geo_cs(["--db", str(db), "-q", "export", "report", "-p", pid, "-o", str(out_dir)],
                             REPORT_WRAP, workdir, f"report_{pid}", REPORT_TIMEOUT_S)
        pdf, html = out_dir / f"{pid}.pdf", out_dir / f"{pid}.html"
        ok = run["returncode"] == 0 and pdf.exists() and html.exists()
        row = {
            "partnership": pid, "ok": ok, "wall_s": run["wall_s"], "cpu_s": run["cpu_s"],
            "peak_rss_mb": run["peak_rss_mb"], "pdf_pages": pdf_pages(pdf) if ok else None,
            "pdf_kb": round(pdf.stat().st_size / 1024) if pdf.exists() else None,
            "html_kb": round(html.stat().st_size / 1024) if html.exists() else None,
            "import_cli_s": run["import_cli_s"], "steps_s": run["steps_s"],
            "returncode": run["returncode"], "timed_out": run["timed_out"],
            "loadavg_1min_before": run["loadavg_1min_before"],
            "meets_target": ok and run["wall_s"] < TARGET_REPORT_S,
        }
        if not ok:
            row["error"] = ("timed out" if run["timed_out"] else error_text(run["output_tail"]))
        rows.append(row)
        mark = "ok" if ok else f"[red]FAILED[/]: {row['error'][:160]}"
        console.print(f"  {pid}: {run['wall_s']:.1f} s, {mark}", highlight=False)
    return rows


# -- 2. PMTiles against the server ----------------------------------------------------------------

def gb_inputs(db: Path, maxzoom: int) -> dict[str, Any]:
    """Untimed in this process: the tile list (the same call write_layer_pmtiles makes) and the period."""
    from geo_cs.export.pmtiles import tile_addresses
    from geo_cs.layers import area_values, resolve_measure
    from geo_cs.store import Store

    indicator, denominator = MEASURES[LAYER]
    with Store.open(db, read_only=True) as store:
        t0 = time.perf_counter()
        addresses = tile_addresses(store, LAYER, MINZOOM, maxzoom)
        addresses_s = time.perf_counter() - t0
        period = area_values(store, resolve_measure(store, LAYER, indicator, denominator)).check_period(None)
        areas = store.sql("SELECT count(*) FROM areas WHERE set_id = ?", [LAYER]).fetchone()[0]
    return {"addresses": addresses, "addresses_s": round(addresses_s, 3), "period": period,
            "indicator": indicator, "denominator": denominator, "areas": areas}


def build_pmtiles(db: Path, inputs: dict[str, Any], maxzoom: int, workdir: Path) -> dict[str, Any]:
    path = workdir / f"{LAYER}.pmtiles"
    cmd = ["--db", str(db), "-q", "export", "pmtiles", "-l", LAYER, "-i", inputs["indicator"],
           "--period", inputs["period"], "--minzoom", str(MINZOOM), "--maxzoom", str(maxzoom),
           "-o", str(path)]
    if inputs["denominator"]:
        cmd[cmd.index("--period"):cmd.index("--period")] = ["--denominator", inputs["denominator"]]
    run = run_geo_cs(cmd, PMTILES_WRAP, workdir, "pmtiles", 3600)
    if run["returncode"] != 0 or not path.exists():
        raise RuntimeError(f"geo-cs export pmtiles failed (exit {run['returncode']}):\n{run['output_tail']}")
    report = run["returned"].get("write_layer_pmtiles", {})
    steps = run["steps_s"]
    return {
        "command": "geo-cs " + " ".join(cmd).replace(str(db), "<gb store>").replace(str(workdir), "<tmp>"),
        "wall_s": run["wall_s"], "cpu_s": run["cpu_s"], "peak_rss_mb": run["peak_rss_mb"],
        "import_cli_s": run["import_cli_s"], "steps_s": steps, "calls": run["calls"],
        "bytes": path.stat().st_size, "tiles_rendered": report.get("tiles_rendered"),
        "tiles_written": report.get("tiles_written"),
        "tiles_per_zoom_written": {int(k): v for k, v in report.get("tiles_per_zoom", {}).items()},
        "threads": min(4, os.cpu_count() or 1),
        "render_thread_s_over_write_wall": (round(steps["render_tile"] / steps["write_layer_pmtiles"], 2)
                                            if steps.get("write_layer_pmtiles") else None),
        "loadavg_1min_before": run["loadavg_1min_before"],
    }


def fetch_from_server(db: Path, inputs: dict[str, Any], workdir: Path, budget_s: float, seed: int,
                      console: Console) -> dict[str, Any]:
    import httpx

    addresses = inputs["addresses"]
    order = list(range(len(addresses)))
    random.Random(seed).shuffle(order)
    query = urlencode({k: v for k, v in (("indicator", inputs["indicator"]),
                                         ("denominator", inputs["denominator"]),
                                         ("period", inputs["period"])) if v})
    server = h.start_geo_cs(db, workdir)
    try:
        startup_s = server.wait_ready("/health", timeout=120)
        with httpx.Client(base_url=server.base, timeout=120) as client:
            per_tile: list[tuple[int, float]] = []  # (zoom, seconds)
            statuses: dict[int, int] = {}
            ok_per_zoom: dict[int, int] = {}
            gz_bytes = 0
            sampled = False
            t_start = time.perf_counter()
            with console.status(f"fetching {len(addresses):,} tiles one by one from the server") as status:
                for n, i in enumerate(order, 1):
                    z, x, y = addresses[i]
                    t = time.perf_counter()
                    r = client.get(f"/tiles/{LAYER}/{z}/{x}/{y}.mvt?{query}",
                                   headers={"Accept-Encoding": "gzip"})
                    _ = r.content
                    per_tile.append((z, time.perf_counter() - t))
                    statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
                    if r.status_code not in (200, 204):
                        raise RuntimeError(f"tile {z}/{x}/{y}: HTTP {r.status_code} {r.text[:300]}")
                    if r.status_code == 200:
                        ok_per_zoom[z] = ok_per_zoom.get(z, 0) + 1
                        gz_bytes += int(r.headers.get("content-length", 0))
                    elapsed = time.perf_counter() - t_start
                    if n % 100 == 0:
                        status.update(f"fetched {n:,}/{len(addresses):,} tiles in {elapsed:.0f} s")
                    projected = elapsed / n * len(order)
                    if n < len(order) and (elapsed > budget_s or (n >= 600 and projected > 1.5 * budget_s)):
                        sampled = True
                        break
            fetch_s = time.perf_counter() - t_start
        server_peak = h.proc_status_mb("VmHWM", server.proc.pid)
    finally:
        server.stop()  # the uvicorn started above
    zooms = sorted({z for z, _, _ in addresses})
    addressed = {z: sum(1 for a in addresses if a[0] == z) for z in zooms}
    by_zoom = {z: [s for zz, s in per_tile if zz == z] for z in zooms}
    overall_mean = statistics.mean(s for _, s in per_tile)
    # the first request also computes the measure's values: counted once, not extrapolated
    first_s = per_tile[0][1]
    if sampled:
        rest = [(z, s) for z, s in per_tile[1:]]
        mean_z = {z: statistics.mean([s for zz, s in rest if zz == z] or [overall_mean]) for z in zooms}
        total_s = first_s + sum(mean_z[z] * addressed[z] for z in zooms) - mean_z[per_tile[0][0]]
    else:
        total_s = fetch_s
    return {
        "server": " ".join(server.cmd[1:]), "startup_s": round(startup_s, 2),
        "client": "httpx.Client, sequential, keep-alive, Accept-Encoding: gzip",
        "order": f"shuffled (random.Random({seed}))", "sampled": sampled,
        "tiles_fetched": len(per_tile), "tiles_addressed": len(addresses),
        "fetched_s": round(fetch_s, 2), "total_s": round(total_s, 2),
        "total_is_extrapolated": sampled,
        "first_request_s": round(first_s, 3),
        "ms_per_tile": {"median": round(statistics.median(s for _, s in per_tile) * 1000, 2),
                        "mean": round(overall_mean * 1000, 2),
                        "max": round(max(s for _, s in per_tile) * 1000, 1)},
        "ms_per_tile_by_zoom": {z: {"fetched": len(v), "median": round(statistics.median(v) * 1000, 2),
                                    "max": round(max(v) * 1000, 1)} for z, v in by_zoom.items() if v},
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "tiles_with_content_per_zoom": ok_per_zoom, "gzip_bytes_fetched": gz_bytes,
        "server_peak_rss_mb": round(server_peak, 1),
    }


# -- report -------------------------------------------------------------------------------------

def versions() -> dict[str, str]:
    out = {"python": platform.python_version(), "geo_cs_commit": h.git_commit(),
           **h.package_versions("duckdb", "matplotlib", "pmtiles", "uvicorn", "fastapi", "httpx")}
    pdfinfo = shutil.which("pdfinfo")
    out["pdfinfo"] = pdfinfo or "not installed (page counts not available)"
    return out


def print_reports(console: Console, rows: list[dict[str, Any]]) -> None:
    t = Table(title=f"Partnership profile reports (fresh geo-cs export report per partnership, demo db), "
                    f"target < {TARGET_REPORT_S:.0f} s each")
    for column, justify in (("partnership", "left"), ("wall s", "right"), ("CPU s", "right"),
                            ("imports s", "right"), ("profile s", "right"), ("PDF s", "right"),
                            ("HTML s", "right"), ("peak RSS MB", "right"), ("pages", "right"),
                            ("PDF KB", "right"), ("HTML KB", "right"), ("result", "left")):
        t.add_column(column, justify=justify)

    def f(v: Any, fmt: str = ".1f") -> str:
        return "" if v is None else format(v, fmt)

    for r in rows:
        s = r["steps_s"]
        if r["ok"]:
            result = "[green]ok[/]" if r["meets_target"] else "[red]ok, too slow[/]"
        else:
            result = f"[red]failed[/]: {r['error'][:90]}"
        t.add_row(r["partnership"], f(r["wall_s"]), f(r["cpu_s"]), f(r["import_cli_s"]),
                  f(s.get("partnership_profile")), f(s.get("write_pdf")), f(s.get("write_html")),
                  f(r["peak_rss_mb"], ".0f"), f(r["pdf_pages"], "d"), f(r["pdf_kb"], ",d"),
                  f(r["html_kb"], ",d"), result)
    console.print(t)
    console.print("wall = spawn to exit, seen by the parent; imports = importing geo_cs.cli and "
                  "geo_cs.export.report (matplotlib) in the child; peak RSS = the child's VmHWM")


def print_pmtiles(console: Console, build: dict[str, Any], fetch: dict[str, Any], inputs: dict[str, Any],
                  maxzoom: int) -> float:
    zooms = sorted({z for z, _, _ in inputs["addresses"]})
    addressed = {z: sum(1 for a in inputs["addresses"] if a[0] == z) for z in zooms}
    t = Table(title=f"{LAYER} ({inputs['areas']:,} areas) tiles per zoom, z{MINZOOM}-z{maxzoom}")
    for column in ("zoom", "addressed", "in archive", "fetched", "fetched with content",
                   "server median ms", "server max ms"):
        t.add_column(column, justify="right")
    by_zoom = fetch["ms_per_tile_by_zoom"]
    for z in zooms:
        b = by_zoom.get(z, {})
        t.add_row(str(z), f"{addressed[z]:,}", f"{build['tiles_per_zoom_written'].get(z, 0):,}",
                  f"{b.get('fetched', 0):,}", f"{fetch['tiles_with_content_per_zoom'].get(z, 0):,}",
                  f"{b.get('median', float('nan')):.1f}", f"{b.get('max', float('nan')):.0f}")
    t.add_row("all", f"{len(inputs['addresses']):,}", f"{build['tiles_written']:,}",
              f"{fetch['tiles_fetched']:,}", f"{sum(fetch['tiles_with_content_per_zoom'].values()):,}",
              f"{fetch['ms_per_tile']['median']:.1f}",
              f"{fetch['ms_per_tile']['max']:.0f}")
    console.print(t)
    ratio = fetch["total_s"] / build["wall_s"]
    s = build["steps_s"]
    t2 = Table(title="PMTiles build against fetching the same tiles from the server")
    for column, justify in (("what", "left"), ("seconds", "right"), ("notes", "left")):
        t2.add_column(column, justify=justify)
    t2.add_row("build: geo-cs export pmtiles (fresh process)", f"{build['wall_s']:.1f}",
               f"CPU {build['cpu_s']:.1f} s, peak RSS {build['peak_rss_mb']:.0f} MB, "
               f"archive {build['bytes'] / 1e6:.1f} MB, {build['threads']} render threads")
    t2.add_row("  imports (geo_cs.cli, wrapped modules)", f"{build['import_cli_s']:.1f}", "")
    t2.add_row("  resolve_measure + area_values",
               f"{s.get('resolve_measure', 0) + s.get('area_values', 0):.1f}", "")
    t2.add_row("  write_layer_pmtiles", f"{s.get('write_layer_pmtiles', 0):.1f}",
               f"of which tile_addresses {s.get('tile_addresses', 0):.1f} s; render_tile summed over "
               f"threads {s.get('render_tile', 0):.1f} s "
               f"({build['render_thread_s_over_write_wall']}x its wall)")
    label = "server: fetch one by one" + (" (EXTRAPOLATED from a sample)" if fetch["sampled"] else "")
    t2.add_row(label, f"{fetch['total_s']:.1f}",
               f"{fetch['tiles_fetched']:,} of {fetch['tiles_addressed']:,} tiles fetched in "
               f"{fetch['fetched_s']:.1f} s; first request {fetch['first_request_s']:.2f} s (values); "
               f"startup {fetch['startup_s']:.1f} s not counted; server peak RSS "
               f"{fetch['server_peak_rss_mb']:.0f} MB")
    console.print(t2)
    console.print(f"ratio server-fetch time / PMTiles build time = [bold]{ratio:.2f}[/] "
                  f"(HTTP statuses {fetch['statuses']}; archive tiles {build['tiles_written']:,} vs "
                  f"server tiles with content {sum(fetch['tiles_with_content_per_zoom'].values()):,}"
                  f"{' in the sample' if fetch['sampled'] else ''})")
    return ratio


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--skip-report", action="store_true", help="skip the partnership reports")
    parser.add_argument("--skip-pmtiles", action="store_true", help="skip the PMTiles / server comparison")
    parser.add_argument("--maxzoom", type=int, default=12, help="last zoom of the PMTiles build (default 12)")
    parser.add_argument("--partnership", action="append", help="only these partnerships (repeatable)")
    parser.add_argument("--fetch-budget", type=float, default=360.0,
                        help="seconds of one-by-one fetching before falling back to a sample (default 360)")
    parser.add_argument("--seed", type=int, default=20240601,
                        help="seed of the fetch order (default 20240601)")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="keep outputs here (default: a temporary folder)")
    h.add_out(parser, DEFAULT_OUT)
    args = parser.parse_args(argv)
    if not MINZOOM <= args.maxzoom <= 14:
        parser.error(f"--maxzoom must be between {MINZOOM} and 14")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    console = Console(width=None if sys.stdout.isatty() else 160)
    if not args.skip_pmtiles and shared_missing(console):
        return 2
    try:
        import geo_cs.cli  # noqa: F401
    except ImportError as exc:
        console.print(f"[red]geo-cs cannot be imported[/] ({exc}): run with the project's venv")
        return 2
    h.stop_on_sigterm()  # so the finally clauses stop uvicorn
    load_start = h.warn_if_busy(console)
    tmp, workdir = h.workdir_or_temp(args.workdir, "bench_exports_")
    out: dict[str, Any] = {
        "benchmark": "exports",
        "timestamp": h.timestamp(),
        "machine": h.machine(**versions()),
        "commit": h.git_commit(),
        "loadavg_at_start": list(load_start),
        "targets": {"report_wall_s_max": TARGET_REPORT_S},
    }
    t_run = time.perf_counter()
    try:
        if not args.skip_report:
            from geo_cs.partnerships import load_partnerships

            partnerships = args.partnership or list(load_partnerships())
            db, demo = build_demo(workdir, console)
            rows = run_reports(db, partnerships, workdir, console)
            print_reports(console, rows)
            ok = [r for r in rows if r["ok"]]
            failed = [r for r in rows if not r["ok"]]
            slow = [r for r in ok if not r["meets_target"]]
            met = not failed and not slow
            console.print(
                f"reports: {len(ok)}/{len(rows)} produced; "
                + (f"wall median {statistics.median(r['wall_s'] for r in ok):.1f} s, max "
                   f"{max(r['wall_s'] for r in ok):.1f} s "
                   f"({max(ok, key=lambda r: r['wall_s'])['partnership']}); "
                   if ok else "")
                + f"target every partnership < {TARGET_REPORT_S:.0f} s: "
                + ("[green]MET[/]" if met else "[red]MISSED[/] ("
                   + ", ".join([f"{r['partnership']} failed" for r in failed]
                               + [f"{r['partnership']} {r['wall_s']:.1f} s" for r in slow]) + ")"))
            out["reports"] = {
                "database": "demo (geo-cs demo --no-serve)", "demo_build": demo,
                "command": "geo-cs --db <tmp>/demo.duckdb -q export report -p PID -o DIR "
                           "(fresh process each)",
                "partnerships": rows, "produced": len(ok), "failed": [r["partnership"] for r in failed],
                "too_slow": [r["partnership"] for r in slow],
                "wall_s_median_ok": round(statistics.median(r["wall_s"] for r in ok), 2) if ok else None,
                "wall_s_max_ok": max((r["wall_s"] for r in ok), default=None),
                "target_met": met,
            }
        if not args.skip_pmtiles:
            with console.status("GB store (building it if missing) and the tile list"):
                db = gb_store(progress=False)
                inputs = gb_inputs(db, args.maxzoom)
            console.print(f"{LAYER}: {inputs['areas']:,} areas, {len(inputs['addresses']):,} tiles "
                          f"z{MINZOOM}-"
                          f"z{args.maxzoom} (tile_addresses {inputs['addresses_s']:.1f} s), measure "
                          f"{inputs['indicator']} / {inputs['denominator']}, period {inputs['period']}")
            with console.status(f"PMTiles build, z{MINZOOM}-z{args.maxzoom}"):
                build = build_pmtiles(db, inputs, args.maxzoom, workdir)
            console.print(f"PMTiles built in {build['wall_s']:.1f} s")
            fetch = fetch_from_server(db, inputs, workdir, args.fetch_budget, args.seed, console)
            ratio = print_pmtiles(console, build, fetch, inputs, args.maxzoom)
            out["pmtiles"] = {
                "store": str(db.relative_to(h.REPO)), "layer": LAYER, "areas": inputs["areas"],
                "measure": {"indicator": inputs["indicator"], "denominator": inputs["denominator"],
                            "period": inputs["period"]},
                "minzoom": MINZOOM, "maxzoom": args.maxzoom,
                "tiles_addressed": len(inputs["addresses"]),
                "tiles_addressed_per_zoom": {z: sum(1 for a in inputs["addresses"] if a[0] == z)
                                             for z in sorted({a[0] for a in inputs["addresses"]})},
                "tile_addresses_s_in_bench_process": inputs["addresses_s"],
                "build": build, "server_fetch": fetch,
                "ratio_server_fetch_over_build": round(ratio, 3),
                "note": "the build renders on a thread pool (min(4, cpu_count) threads, one DuckDB cursor "
                        "each) and gzips/writes in the calling thread; the server renders one tile per "
                        "request, sequentially requested, each through HTTP, its thread pool and its cache",
            }
    except RuntimeError as exc:
        console.print(f"[red]run failed:[/] {exc}")
        return 1
    finally:
        if tmp is not None:
            tmp.cleanup()
    out["loadavg_at_end"] = list(os.getloadavg())
    out["bench_wall_s"] = round(time.perf_counter() - t_run, 1)
    console.print(f"load average (1, 5, 15 min): start {tuple(round(v, 2) for v in load_start)}, "
                  f"end {tuple(round(v, 2) for v in out['loadavg_at_end'])}; "
                  f"bench wall {out['bench_wall_s']:.0f} s")
    if args.out.exists():
        # keep the other part when only one was run
        with contextlib.suppress(ValueError):
            previous = json.loads(args.out.read_text())
            for part in ("reports", "pmtiles"):
                if part not in out and part in previous:
                    out[part] = {**previous[part], "from_earlier_run": previous.get("timestamp")}
    out["pass"] = {}
    if "reports" in out:
        out["pass"]["reports_every_partnership_under_30s"] = out["reports"]["target_met"]
    h.write_results(args.out, out, console)
    return 0


if __name__ == "__main__":
    sys.exit(main())
