"""Benchmark: the geometric crosswalk LSOA 2011 -> LSOA 2021, geo-cs against tobler's area_interpolate.

What is measured
----------------
Issue 4 ("Shown by"): the geometric path LSOA 2011 -> LSOA 2021 on the real boundary files,
against tobler's ``area_interpolate`` (PySAL) on the same data in the same run: time, peak
memory and the largest relative difference of the reallocated totals. Targets: geo-cs >= 5x
faster than tobler, totals agreeing within 1e-6 relative.

Inputs (all real, from ``--shared``, default ``<repo>/../shared/data``):

* source: ``boundaries/lsoa11_bgc_topo_by_lad`` (34,753 LSOA 2011, generalised 20 m, one TopoJSON
  per district), with the ONS mid-2019 working-age population (ages 16-64) of each LSOA from
  ``indicators/population2019_lsoa11_ew.csv`` (``population2019_lsoa11.working_age_population``,
  read with the shipped spec) as the extensive variable;
* target: ``boundaries/lsoa21_ew.geojson`` (35,672 LSOA 2021).

Setup (untimed): a temporary geo-cs store gets both boundary sets (``ingest_boundaries``) and
the population file (``ingest_indicator``); both geometry sets are then exported from the store
in EPSG:27700 (``ST_AsWKB(geom_27700)``) to GeoParquet, so tobler overlays exactly the
geometries geo-cs overlays, with the same values.

* **geo-cs**: ``build_crosswalk(store, "lsoa2011", "lsoa2021", basis="geometry")`` then
  ``harmonise(store, "population2019_lsoa11.working_age_population", "lsoa2021",
  crosswalk_id="lsoa2011->lsoa2021")``, on a copy of the prepared DuckDB store: candidate pairs
  from an STRtree, exact overlap areas from ``geo_cs.overlay`` (GEOS for pairs whose boundaries
  coincide), slivers below 0.1% of a source ignored, weights stored, the count reallocated and
  stored. Both calls are timed together.
* **tobler**: ``area_interpolate(source_df=lsoa11, target_df=lsoa21,
  extensive_variables=["working_age_population"])`` on GeoDataFrames read from the GeoParquet
  files (its defaults: ``n_jobs=1``, ``allocate_total=True``). The verdict is against this call.
  For information the same call with ``n_jobs=-1`` (tobler's process pool) is timed too, as
  DuckDB uses every core (``--no-tobler-parallel`` skips it).

Each side runs in its own fresh Python process, which loads its inputs (opens the store copy /
reads the GeoParquet files), runs once untimed (warm-up), then answers the parent's ``run``
commands; the parent alternates the ``--repeat`` (default 3) timed runs between the sides
(order rotated each round) so that all meet the same machine conditions. Reported: the median
wall time and the process CPU time (all threads) of the runs. The 1-minute load average is
logged per round and stored (it includes the bench's own running side, so ~1 is an idle
machine); a multi-threaded DuckDB run suffers far more than single-threaded tobler from other
processes on a small machine, so compare runs made with the machine otherwise idle.
Peak memory is each process's own high-water RSS (``VmHWM`` from ``/proc/self/status``;
``ru_maxrss`` from ``wait4`` would not do, as Linux carries the parent's RSS into a spawned
child): interpreter, inputs and computation; the RSS just after loading the inputs is shown
too. For tobler with ``n_jobs=-1`` the peaks of its worker processes are added (an upper bound
of their simultaneous peak).

Comparison: the total reallocated by each side (the sum over all targets) against the other's
and against the source total (the target is on totals, <= 1e-6 relative), and per target the
largest relative difference between geo-cs and tobler. The two differ per target by design:
geo-cs ignores overlaps below 0.1% of the source area (slivers of generalised boundaries) and
renormalises the source's remaining weights, while tobler keeps every overlap. tobler's default
``allocate_total=True`` also divides by the sum of the source's intersection areas (not by the
source area, which only ``allocate_total=False`` does), so both preserve the total; tobler
holds its area table in float32, which limits its agreement to ~1e-7. To show where the
per-target difference comes from, an untimed float64 overlay (shapely) of the same pairs is
reallocated three ways: tobler's rule (row-normalised), geo-cs's rule (slivers dropped, then
row-normalised) and ``allocate_total=False`` (divided by the source area); ``--no-explain``
skips it. A geo-cs breakdown (one more run with each SQL statement and the overlay's steps timed:
reading the geometries, the candidate pairs, the overlap areas, the weight query
``_LINK_WEIGHTS``, storing, ``harmonise``) shows where geo-cs's time goes; ``--no-breakdown``
skips it.

Results are printed and written to ``bench/results/crosswalk_lsoa.json``. Exit status: 0
whether or not the targets are met, 1 when a run fails, 2 when the shared data are missing.

tobler is a bench-only dependency (it is not in ``pyproject.toml``); it is installed into the
running interpreter's environment with pip when missing (``--no-install`` forbids that).

Run from the repository root::

    /work/venv/bin/python bench/bench_crosswalk_lsoa.py [--shared DIR] [--repeat 3] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import _harness as h
from rich.console import Console
from rich.table import Table

DEFAULT_SHARED = h.REPO.parent / "shared" / "data"
DEFAULT_OUT = h.RESULTS / "crosswalk_lsoa.json"

SOURCE_BOUNDARIES = "boundaries/lsoa11_bgc_topo_by_lad"
TARGET_BOUNDARIES = "boundaries/lsoa21_ew.geojson"
POPULATION_FILE = "indicators/population2019_lsoa11_ew.csv"
FROM_SET, TO_SET = "lsoa2011", "lsoa2021"
EXPECTED = {FROM_SET: 34_753, TO_SET: 35_672}
INDICATOR = "population2019_lsoa11.working_age_population"
VARIABLE = "working_age_population"
CROSSWALK_ID = f"{FROM_SET}->{TO_SET}"
SLIVER_TOLERANCE = 0.001  # geo_cs.crosswalk.DEFAULT_SLIVER_TOLERANCE, the default used
TARGET_SPEEDUP = 5.0
TARGET_TOTAL_REL = 1e-6
SETUP_VERSION = 1  # bump when the prepared files change


# -- setup (untimed) ------------------------------------------------------------------------------

def ensure_tobler(console: Console, allow_install: bool) -> bool:
    """tobler is a bench-only dependency: pip-install it into this environment when missing."""
    if importlib.util.find_spec("tobler") is not None:
        return True
    if not allow_install:
        console.print("[red]tobler is not installed[/] (pip install tobler, or drop --no-install)")
        return False
    console.print("tobler not installed: pip install tobler (bench-only dependency)")
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "tobler"])
    importlib.invalidate_caches()
    return done.returncode == 0 and importlib.util.find_spec("tobler") is not None


def prepare(workdir: Path, shared: Path, console: Console) -> dict[str, Any]:
    """Ingest both boundary sets and the population into a store; export GeoParquet for tobler.

    Reused when ``workdir`` already holds a complete setup of this version.
    """
    marker = workdir / "setup.json"
    if marker.exists():
        info = json.loads(marker.read_text())
        if info.get("version") == SETUP_VERSION and info.get("shared") == str(shared):
            console.print(f"reusing the prepared store and GeoParquet files in {workdir}")
            return info

    import geopandas as gpd
    import shapely

    from geo_cs.ingest import ingest_boundaries, ingest_indicator
    from geo_cs.store import Store

    db = workdir / "prepared.duckdb"
    db.unlink(missing_ok=True)
    seconds: dict[str, float] = {}
    with Store.open(db) as store:
        for set_id, rel in ((FROM_SET, SOURCE_BOUNDARIES), (TO_SET, TARGET_BOUNDARIES)):
            with console.status(f"setup: ingesting {rel}"):
                t0 = time.perf_counter()
                report = ingest_boundaries(store, [shared / rel])
                seconds[f"ingest_{set_id}"] = round(time.perf_counter() - t0, 2)
            if report.set_id != set_id or report.areas_written != EXPECTED[set_id]:
                raise SystemExit(f"{rel}: read as {report.set_id} with {report.areas_written:,} areas; "
                                 f"expected {set_id} with {EXPECTED[set_id]:,}")
        with console.status(f"setup: ingesting {POPULATION_FILE}"):
            t0 = time.perf_counter()
            ingest_indicator(store, shared / POPULATION_FILE)  # the shipped spec, by file name
            seconds["ingest_population"] = round(time.perf_counter() - t0, 2)

        def frame(query: str) -> gpd.GeoDataFrame:
            df = store.sql(query).df()
            geoms = shapely.from_wkb([bytes(w) for w in df.pop("wkb")])
            return gpd.GeoDataFrame(df, geometry=geoms, crs="EPSG:27700")

        source = frame(
            f"""
            SELECT a.code, o.value AS {VARIABLE}, ST_AsWKB(a.geom_27700) AS wkb
            FROM areas a JOIN observations o
              ON o.set_id = a.set_id AND o.code = a.code AND o.indicator_id = '{INDICATOR}'
            WHERE a.set_id = '{FROM_SET}' AND a.geom_27700 IS NOT NULL ORDER BY a.code
            """
        )
        target = frame(
            f"SELECT code, ST_AsWKB(geom_27700) AS wkb FROM areas "
            f"WHERE set_id = '{TO_SET}' AND geom_27700 IS NOT NULL ORDER BY code"
        )
        n_values = store.sql("SELECT count(value) FROM observations WHERE indicator_id = ? AND set_id = ?",
                             [INDICATOR, FROM_SET]).fetchone()[0]
    if len(source) != EXPECTED[FROM_SET] or n_values != EXPECTED[FROM_SET]:
        raise SystemExit(f"{len(source):,} LSOA 2011 with geometry and a value ({n_values:,} values); "
                         f"expected {EXPECTED[FROM_SET]:,}")
    source.to_parquet(workdir / "source.parquet", index=False)
    target.to_parquet(workdir / "target.parquet", index=False)
    info = {
        "version": SETUP_VERSION,
        "shared": str(shared),
        "setup_seconds": seconds,
        "sources": len(source),
        "targets": len(target),
        "source_total": float(source[VARIABLE].sum()),
        "vertices_per_area": {
            FROM_SET: round(float(shapely.get_num_coordinates(source.geometry.values).mean()), 1),
            TO_SET: round(float(shapely.get_num_coordinates(target.geometry.values).mean()), 1),
        },
    }
    marker.write_text(json.dumps(info, indent=2))
    return info


# -- the sides, each in its own process ----------------------------------------------------------

class _TimedResult:
    """A DuckDB result whose fetches (``df()``, ``fetchall()``, …) count towards its statement.

    DuckDB runs the last pipeline of a query while its result is fetched, so timing
    ``execute()`` alone would miss most of a query such as ``_LINK_WEIGHTS``.
    """

    def __init__(self, result: Any, entry: list[float]) -> None:
        self._result, self._entry = result, entry

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._result, name)
        if not callable(attr):
            return attr

        def timed(*args: Any, **kwargs: Any) -> Any:
            w0, c0 = time.perf_counter(), time.process_time()
            try:
                return attr(*args, **kwargs)
            finally:
                self._entry[1] += time.perf_counter() - w0
                self._entry[2] += time.process_time() - c0

        return timed


class GeoCsSide:
    """geo-cs as a user calls it, on its own copy of the prepared store."""

    def __init__(self, workdir: Path) -> None:
        from geo_cs.crosswalk import build_crosswalk, harmonise
        from geo_cs.store import Store

        self.build_crosswalk, self.harmonise = build_crosswalk, harmonise
        self.store = Store.open(workdir / "geo_cs.duckdb")
        self.reports: dict[str, Any] = {}

    def one_run(self) -> None:
        xw = self.build_crosswalk(self.store, FROM_SET, TO_SET, basis="geometry")
        hr = self.harmonise(self.store, INDICATOR, TO_SET, crosswalk_id=CROSSWALK_ID)
        self.reports = {"crosswalk": xw.to_dict(), "harmonise": hr.to_dict()}

    def write_result(self, path: Path) -> None:
        self.store.sql(
            f"COPY (SELECT code, value FROM observations WHERE indicator_id = '{INDICATOR}' "
            f"AND set_id = '{TO_SET}' ORDER BY code) TO '{path.as_posix()}' (FORMAT parquet)"
        )
        weights = (path.parent / "geo_cs_weights.parquet").as_posix()
        self.store.sql(
            f"COPY (SELECT from_code, to_code, weight, method FROM crosswalks "
            f"WHERE crosswalk_id = '{CROSSWALK_ID}') TO '{weights}' (FORMAT parquet)"
        )

    def extras(self) -> dict[str, Any]:
        """One more run with every SQL statement and the overlay's steps timed."""
        from geo_cs import crosswalk, overlay

        labels = {
            id(crosswalk._LOOKUP_PAIRS): "build: _LOOKUP_PAIRS (official lookup, none here)",
            id(crosswalk._AREA_GEOMETRIES): "build: _AREA_GEOMETRIES (read both geographies as WKB)",
            id(crosswalk._LINK_WEIGHTS): "build: _LINK_WEIGHTS (weights from the measured overlaps)",
            id(crosswalk._HARMONISE_COUNTS): "harmonise: _HARMONISE_COUNTS (reallocation)",
        }
        stats: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0.0])
        original = self.store.sql
        phase = ["build"]

        def timed_sql(query: str, params: Any = None) -> Any:
            label = labels.get(id(query))
            if label is None:
                first = " ".join(query.split())[:40]
                if first.startswith("INSERT INTO crosswalks"):
                    label = "build: INSERT INTO crosswalks (store weights)"
                elif first.startswith("INSERT INTO observations"):
                    label = "harmonise: INSERT INTO observations (store values)"
                else:
                    label = f"{phase[0]}: other SQL (counts, codes, ingest log)"
            entry = stats[label]
            entry[0] += 1
            w0, c0 = time.perf_counter(), time.process_time()
            try:
                return _TimedResult(original(query, params), entry)
            finally:
                entry[1] += time.perf_counter() - w0
                entry[2] += time.process_time() - c0

        kernel_runs: list[Any] = []
        overlay_seconds = [0.0, 0.0]
        original_kernel, original_overlay = overlay.overlap_areas, crosswalk.overlay_areas

        def timed_kernel(*args: Any, **kwargs: Any) -> Any:
            w0, c0 = time.perf_counter(), time.process_time()
            result = original_kernel(*args, **kwargs)
            kernel_runs.append((time.perf_counter() - w0, time.process_time() - c0, len(result.areas),
                                int(result.by_geos.sum())))
            return result

        def timed_overlay(*args: Any, **kwargs: Any) -> Any:
            w0, c0 = time.perf_counter(), time.process_time()
            try:
                return original_overlay(*args, **kwargs)
            finally:
                overlay_seconds[0] += time.perf_counter() - w0
                overlay_seconds[1] += time.process_time() - c0

        # instance and module attributes, this run only
        self.store.sql = timed_sql  # type: ignore[method-assign]
        overlay.overlap_areas, crosswalk.overlay_areas = timed_kernel, timed_overlay
        try:
            w0, c0 = time.perf_counter(), time.process_time()
            xw = self.build_crosswalk(self.store, FROM_SET, TO_SET, basis="geometry")
            w1, c1 = time.perf_counter(), time.process_time()
            phase[0] = "harmonise"
            self.harmonise(self.store, INDICATOR, TO_SET, crosswalk_id=CROSSWALK_ID)
            w2, c2 = time.perf_counter(), time.process_time()
        finally:
            del self.store.sql
            overlay.overlap_areas, crosswalk.overlay_areas = original_kernel, original_overlay
        kernel_s, kernel_cpu, n_pairs, by_geos = kernel_runs[0]
        recomputed = self.store.sql(
            "SELECT count(*) FROM crosswalks WHERE crosswalk_id = ? AND method = 'area'", [CROSSWALK_ID]
        ).fetchone()[0]
        geometries = stats["build: _AREA_GEOMETRIES (read both geographies as WKB)"][1]
        stats["build: overlay_areas: WKB read (rings, shapely), STRtree candidate pairs"] = [
            1, overlay_seconds[0] - kernel_s - geometries, overlay_seconds[1] - kernel_cpu - 0.0]
        stats["build: overlay_areas: overlap_areas (exact areas, kernel + GEOS fallback)"] = [
            1, kernel_s, kernel_cpu]
        sql_build = sum(v[1] for k, v in stats.items() if k.startswith("build"))
        sql_harm = sum(v[1] for k, v in stats.items() if k.startswith("harmonise"))
        stats["build: Python (pandas: sliver filter, checks, report)"] = [1, (w1 - w0) - sql_build, 0.0]
        stats["harmonise: Python (pandas: report)"] = [1, (w2 - w1) - sql_harm, 0.0]
        return {
            "duckdb_threads": int(self.store.sql("SELECT current_setting('threads')").fetchone()[0]),
            "breakdown_build_seconds": round(w1 - w0, 3),
            "breakdown_build_cpu_seconds": round(c1 - c0, 3),
            "breakdown_harmonise_seconds": round(w2 - w1, 3),
            "breakdown_harmonise_cpu_seconds": round(c2 - c1, 3),
            "breakdown": {label: {"calls": int(n), "seconds": round(sec, 3), "cpu_seconds": round(cpu, 3)}
                          for label, (n, sec, cpu) in stats.items()},
            "overlaps": {"candidate_pairs": n_pairs, "computed_by_geos": by_geos,
                         "links_by_area": int(recomputed), "slivers_ignored": xw.slivers_ignored},
        }


class ToblerSide:
    """tobler's area_interpolate on GeoDataFrames read from the prepared GeoParquet files."""

    def __init__(self, workdir: Path, n_jobs: int) -> None:
        import geopandas as gpd
        from tobler.area_weighted import area_interpolate

        self.area_interpolate = area_interpolate
        self.n_jobs = n_jobs
        self.source = gpd.read_parquet(workdir / "source.parquet")
        self.target = gpd.read_parquet(workdir / "target.parquet")
        self.estimates = None
        self.reports: dict[str, Any] = {}

    def one_run(self) -> None:
        kwargs = {} if self.n_jobs == 1 else {"n_jobs": self.n_jobs}  # the documented call as is
        self.estimates = self.area_interpolate(
            source_df=self.source, target_df=self.target, extensive_variables=[VARIABLE], **kwargs
        )

    def write_result(self, path: Path) -> None:
        import pandas as pd

        assert self.estimates is not None
        pd.DataFrame({"code": self.target["code"].to_numpy(),
                      "value": self.estimates[VARIABLE].to_numpy()}).to_parquet(path, index=False)

    def extras(self) -> dict[str, Any]:
        return {}


def serve(side_name: str, workdir: Path) -> int:
    """A side's process: load, warm up, then answer the parent's commands one JSON line each.

    ``run`` times one run; ``finish`` writes the last run's result for the comparison, reports
    the peak RSS, adds the side's extras (run after the peak is read) and exits.
    """
    proto = sys.stdout
    sys.stdout = sys.stderr  # keep stray prints out of the protocol

    def send(message: dict[str, Any]) -> None:
        proto.write(json.dumps(message) + "\n")
        proto.flush()

    try:
        t0 = time.perf_counter()
        side: GeoCsSide | ToblerSide
        if side_name == "geo-cs":
            side = GeoCsSide(workdir)
        else:
            side = ToblerSide(workdir, n_jobs=-1 if side_name == "tobler-parallel" else 1)
        load_seconds = time.perf_counter() - t0
        rss_loaded = h.proc_status_mb("VmRSS")
        w0 = time.perf_counter()
        side.one_run()  # warm-up, untimed
        send({"load_seconds": round(load_seconds, 3), "rss_after_load_mb": round(rss_loaded, 1),
              "warmup_seconds": round(time.perf_counter() - w0, 3)})
        for line in sys.stdin:
            command = line.strip()
            if command == "run":
                w0, c0 = time.perf_counter(), time.process_time()
                side.one_run()
                send({"seconds": time.perf_counter() - w0, "cpu_seconds": time.process_time() - c0})
            elif command.startswith("finish"):
                side.write_result(workdir / f"result_{side_name}.parquet")
                peak = h.proc_status_mb("VmHWM")
                workers = [h.proc_status_mb("VmHWM", pid) for pid in h.descendants()]
                workers = [w for w in workers if w == w]  # drop processes gone meanwhile (NaN)
                extras = side.extras() if command == "finish breakdown" else {}
                send({**extras, "reports": side.reports, "peak_rss_mb": round(peak, 1),
                      "worker_processes": len(workers), "workers_peak_rss_mb": round(sum(workers), 1)})
                return 0
        return 1
    except Exception as exc:
        import traceback

        traceback.print_exc()
        send({"error": f"{type(exc).__name__}: {exc}"})
        return 1


def run_rounds(
    workdir: Path, sides: list[str], repeat: int, breakdown: bool, console: Console
) -> dict[str, dict[str, Any]]:
    """Start every side (each loads and warms up), then alternate their timed runs.

    The order of the sides rotates each round, so that all meet the same machine conditions as
    far as possible; the idle ones wait on their pipes and use no CPU.
    """
    shutil.copyfile(workdir / "prepared.duckdb", workdir / "geo_cs.duckdb")
    children: dict[str, h.Child] = {}
    try:
        for side in sides:
            with console.status(f"{side}: loading and warming up"):
                children[side] = h.Child(__file__, side, workdir)
            console.log(f"{side}: loaded in {children[side].ready['load_seconds']:.1f} s, "
                        f"warm-up run {children[side].ready['warmup_seconds']:.1f} s")
        runs, loads = h.alternate_runs(children, repeat, console, report=lambda runs: ", ".join(
            f"{side} {runs[side][-1]['seconds']:.2f} s" for side in sides))
        steps = {"geo-cs": ("finish breakdown", ", then timing geo-cs's steps")} if breakdown else {}
        return h.finish_children(children, runs, loads, console, steps)
    finally:
        for child in children.values():
            child.close()
        (workdir / "geo_cs.duckdb").unlink(missing_ok=True)
        (workdir / "geo_cs.duckdb.wal").unlink(missing_ok=True)


# -- comparison ------------------------------------------------------------------------------------

def rel(a: float, b: float) -> float:
    """|a - b| relative to |b| (0 when both are 0)."""
    return abs(a - b) / abs(b) if b else (0.0 if a == b else float("inf"))


def compare(workdir: Path, info: dict[str, Any]) -> dict[str, Any]:
    """Totals of both sides against each other and the source; per-target differences."""
    import numpy as np
    import pandas as pd

    geo = pd.read_parquet(workdir / "result_geo-cs.parquet").set_index("code")["value"]
    tob = pd.read_parquet(workdir / "result_tobler.parquet").set_index("code")["value"]
    source_total = info["source_total"]
    geo_total, tob_total = float(geo.sum()), float(tob.sum())
    both = pd.concat({"geo_cs": geo, "tobler": tob}, axis=1)
    only_geo = int(both["tobler"].isna().sum())
    only_tob = int(both["geo_cs"].isna().sum())
    both = both.fillna(0.0)
    diff = (both["geo_cs"] - both["tobler"]).abs()
    with np.errstate(divide="ignore", invalid="ignore"):
        per_target = diff / both["tobler"].abs()
    per_target = per_target.replace([np.inf], np.nan)
    worst = per_target.idxmax()
    out = {
        "source_total": source_total,
        "geo_cs_total": geo_total,
        "tobler_total": tob_total,
        "rel_geo_cs_vs_tobler": rel(geo_total, tob_total),
        "rel_geo_cs_vs_source": rel(geo_total, source_total),
        "rel_tobler_vs_source": rel(tob_total, source_total),
        "targets": {"geo_cs": len(geo), "tobler": len(tob), "only_geo_cs": only_geo, "only_tobler": only_tob,
                    "geo_cs_null": int(geo.isna().sum())},
        "per_target": {
            "max_rel": float(per_target.max()),
            "max_rel_code": str(worst),
            "max_rel_values": {"geo_cs": float(both.loc[worst, "geo_cs"]),
                               "tobler": float(both.loc[worst, "tobler"])},
            "max_abs": float(diff.max()),
            "median_rel": float(per_target.median()),
            "p99_rel": float(per_target.quantile(0.99)),
            "targets_over_1pct": int((per_target > 0.01).sum()),
            "targets_over_10pct": int((per_target > 0.10).sum()),
        },
    }
    return out


def explain(workdir: Path) -> dict[str, Any]:
    """An untimed float64 overlay (shapely, 2 threads) of the same pairs, reallocated three ways.

    * tobler's rule (``allocate_total=True``): a_ij / sum_k a_ik, all overlaps — differs from
      tobler only by tobler's float32 area table;
    * geo-cs's rule: overlaps below 0.1% of the source area dropped, then a_ij / sum_k a_ik —
      should reproduce geo-cs per target;
    * ``allocate_total=False``: a_ij / area_i — loses what lies outside every target.
    """
    import geopandas as gpd
    import numpy as np
    import pandas as pd
    import shapely

    source = gpd.read_parquet(workdir / "source.parquet")
    target = gpd.read_parquet(workdir / "target.parquet")
    s_geoms, t_geoms = source.geometry.to_numpy(), target.geometry.to_numpy()
    t0 = time.perf_counter()
    tree = shapely.STRtree(t_geoms)
    i_src, i_tgt = tree.query(s_geoms, predicate="intersects")
    t1 = time.perf_counter()
    chunks = np.array_split(np.arange(len(i_src)), 16)
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:  # GEOS releases the GIL
        parts = pool.map(lambda c: shapely.area(shapely.intersection(s_geoms[i_src[c]], t_geoms[i_tgt[c]])),
                         chunks)
        overlap = np.concatenate(list(parts))
    t2 = time.perf_counter()
    values = source[VARIABLE].to_numpy()
    src_area = shapely.area(s_geoms)
    n_s, n_t = len(source), len(target)

    def reallocate(mask: np.ndarray, by_source_area: bool = False) -> np.ndarray:
        a = np.where(mask, overlap, 0.0)
        den = src_area if by_source_area else np.bincount(i_src, weights=a, minlength=n_s)
        den = np.where(den == 0, 1.0, den)
        return np.bincount(i_tgt, weights=values[i_src] * a / den[i_src], minlength=n_t)

    share = overlap / src_area[i_src]
    keep = share >= SLIVER_TOLERANCE
    codes = target["code"].to_numpy()
    rules = {
        "tobler_rule_float64": reallocate(np.ones_like(keep)),
        "geo_cs_rule_float64": reallocate(keep),
        "allocate_total_false_float64": reallocate(np.ones_like(keep), by_source_area=True),
    }
    def result(side: str) -> np.ndarray:
        frame = pd.read_parquet(workdir / f"result_{side}.parquet")
        return frame.set_index("code")["value"].reindex(codes).to_numpy()

    geo, tob = result("geo-cs"), result("tobler")

    def max_rel(a: np.ndarray, b: np.ndarray) -> float:
        ok = b != 0
        return float(np.max(np.abs(a[ok] - b[ok]) / np.abs(b[ok])))

    total = float(values.sum())
    # how far the geometric crosswalk keeps an unchanged LSOA (same code in 2011 and 2021) whole
    same = source["code"].to_numpy()[i_src] == codes[i_tgt]
    weights = pd.read_parquet(workdir / "geo_cs_weights.parquet")
    self_weight = weights[weights["from_code"] == weights["to_code"]]["weight"]
    per_source = pd.Series(share).groupby(i_src).sum()
    return {
        "overlay_seconds": {"strtree_query": round(t1 - t0, 3), "intersection_area": round(t2 - t1, 3),
                            "threads": os.cpu_count()},
        "pairs": len(i_src),
        "slivers_below_tolerance": int((~keep).sum()),
        "pairs_kept": int(keep.sum()),
        "pairs_same_code": int(same.sum()),
        "totals": {name: float(est.sum()) for name, est in rules.items()},
        "rel_total_vs_source": {name: rel(float(est.sum()), total) for name, est in rules.items()},
        "max_rel_per_target": {
            "tobler_vs_tobler_rule_float64": max_rel(tob, rules["tobler_rule_float64"]),
            "geo_cs_vs_geo_cs_rule_float64": max_rel(geo, rules["geo_cs_rule_float64"]),
            "geo_cs_rule_vs_tobler_rule_float64": max_rel(rules["geo_cs_rule_float64"],
                                                          rules["tobler_rule_float64"]),
        },
        "source_area_covered_by_targets": {
            "min": float(per_source.min()), "p01": float(per_source.quantile(0.01)),
            "median": float(per_source.median()),
        },
        "unchanged_codes_weight_to_same_code": {
            "codes": len(self_weight), "p05": float(self_weight.quantile(0.05)),
            "median": float(self_weight.median()), "p95": float(self_weight.quantile(0.95)),
        },
    }


# -- report ----------------------------------------------------------------------------------------

def versions() -> dict[str, str]:
    import shapely

    return {"python": platform.python_version(), "geo_cs_commit": h.git_commit(),
            "geos": shapely.geos_version_string,
            **h.package_versions("duckdb", "duckdb-extension-spatial", "tobler", "geopandas", "shapely",
                               "scipy", "numpy", "pandas", "pyarrow")}


def summarise(side: dict[str, Any]) -> dict[str, Any]:
    runs = side["runs"]
    out = {
        "median_seconds": round(statistics.median(r["seconds"] for r in runs), 3),
        "min_seconds": round(min(r["seconds"] for r in runs), 3),
        "median_cpu_seconds": round(statistics.median(r["cpu_seconds"] for r in runs), 3),
        "peak_rss_mb": side["peak_rss_mb"],
        "rss_after_load_mb": side["rss_after_load_mb"],
    }
    if side.get("worker_processes"):
        out["workers_peak_rss_mb"] = side["workers_peak_rss_mb"]
        out["worker_processes"] = side["worker_processes"]
    return out


def report(console: Console, args: argparse.Namespace, info: dict[str, Any], results: dict[str, Any],
           comparison: dict[str, Any], explained: dict[str, Any] | None) -> dict[str, Any]:
    summary = {side: summarise(r) for side, r in results.items()}
    geo_s = summary["geo-cs"]["median_seconds"]
    speedup = summary["tobler"]["median_seconds"] / geo_s
    speed_pass = speedup >= TARGET_SPEEDUP
    speedup_parallel = (summary["tobler-parallel"]["median_seconds"] / geo_s
                        if "tobler-parallel" in summary else None)
    totals_pass = comparison["rel_geo_cs_vs_tobler"] <= TARGET_TOTAL_REL
    source_pass = comparison["rel_geo_cs_vs_source"] <= TARGET_TOTAL_REL

    def verdict(ok: bool) -> str:
        return "[green]PASS[/]" if ok else "[red]FAIL[/]"

    table = Table(title=f"LSOA 2011 -> LSOA 2021 by geometry ({info['sources']:,} -> {info['targets']:,} "
                        f"areas), median of {args.repeat}")
    for column, justify in (("tool", "left"), ("median s", "right"), ("CPU s", "right"),
                            ("peak RSS MB", "right"), ("RSS after load MB", "right")):
        table.add_column(column, justify=justify)
    names = {"geo-cs": "geo-cs build_crosswalk + harmonise", "tobler": "tobler area_interpolate",
             "tobler-parallel": "tobler area_interpolate n_jobs=-1"}
    for side, s in summary.items():
        peak = f"{s['peak_rss_mb']:.0f}"
        if s.get("worker_processes"):
            peak += f" + {s['workers_peak_rss_mb']:.0f} ({s['worker_processes']} workers)"
        # with n_jobs=-1 the work runs in tobler's worker processes, whose CPU time is not counted
        cpu = "-" if side == "tobler-parallel" else f"{s['median_cpu_seconds']:.2f}"
        table.add_row(names[side], f"{s['median_seconds']:.2f}", cpu, peak, f"{s['rss_after_load_mb']:.0f}")
    console.print(table)
    console.print("CPU s = the process's CPU time over all its threads (DuckDB's included); peak RSS = its "
                  "VmHWM, interpreter + inputs + computation")
    console.print(f"speed: tobler / geo-cs = {speedup:.2f}x (target >= {TARGET_SPEEDUP:.0f}x): "
                  f"{verdict(speed_pass)}")
    if speedup_parallel is not None:
        console.print(f"       tobler n_jobs=-1 / geo-cs = {speedup_parallel:.2f}x (information)")
    c = comparison
    console.print(
        f"totals: source {c['source_total']:,.3f}; geo-cs {c['geo_cs_total']:,.6f}; "
        f"tobler {c['tobler_total']:,.6f}\n"
        f"  |geo-cs - tobler| / tobler = {c['rel_geo_cs_vs_tobler']:.2e} (target <= {TARGET_TOTAL_REL:.0e}): "
        f"{verdict(totals_pass)}\n"
        f"  geo-cs vs source {c['rel_geo_cs_vs_source']:.2e} ({verdict(source_pass)}), "
        f"tobler vs source {c['rel_tobler_vs_source']:.2e}"
    )
    pt = c["per_target"]
    console.print(
        f"per target (information): largest |geo-cs - tobler| / tobler = {pt['max_rel']:.3g} at "
        f"{pt['max_rel_code']} (geo-cs {pt['max_rel_values']['geo_cs']:.2f}, tobler "
        f"{pt['max_rel_values']['tobler']:.2f}); median {pt['median_rel']:.2e}, 99th percentile "
        f"{pt['p99_rel']:.2e}; {pt['targets_over_1pct']:,} targets differ by > 1%, "
        f"{pt['targets_over_10pct']:,} by > 10%; largest absolute difference {pt['max_abs']:.2f}"
    )
    if explained:
        e, m = explained, explained["max_rel_per_target"]
        console.print(
            f"why (float64 overlay of the same {e['pairs']:,} pairs, untimed): "
            f"{e['slivers_below_tolerance']:,} overlaps are below {SLIVER_TOLERANCE:.1%} of their source; "
            f"geo-cs drops them and renormalises, tobler keeps them.\n"
            f"  geo-cs vs geo-cs's rule recomputed: {m['geo_cs_vs_geo_cs_rule_float64']:.1e}; "
            f"tobler vs tobler's rule in float64: {m['tobler_vs_tobler_rule_float64']:.1e} "
            f"(tobler's float32 area table); the two rules differ by up to "
            f"{m['geo_cs_rule_vs_tobler_rule_float64']:.3g} per target\n"
            f"  dividing by the source area instead (allocate_total=False) would lose "
            f"{e['rel_total_vs_source']['allocate_total_false_float64']:.2e} of the total"
        )
        u = e["unchanged_codes_weight_to_same_code"]
        console.print(
            f"  {u['codes']:,} LSOAs keep their code 2011->2021, yet their geometric weight to the same "
            f"code is median {u['median']:.3f} (5th percentile {u['p05']:.3f}): the source file is "
            f"generalised to {info['vertices_per_area'][FROM_SET]} vertices per area, the target to "
            f"{info['vertices_per_area'][TO_SET]}"
        )
    extras = results["geo-cs"]
    if "breakdown" in extras:
        bt = Table(title=f"geo-cs, one more run by step (DuckDB threads {extras['duckdb_threads']})")
        bt.add_column("step")
        bt.add_column("calls", justify="right")
        bt.add_column("wall s", justify="right")
        bt.add_column("CPU s", justify="right")
        for label, s in extras["breakdown"].items():
            bt.add_row(label, str(s["calls"]), f"{s['seconds']:.2f}",
                       f"{s['cpu_seconds']:.2f}" if s["cpu_seconds"] else "")
        bt.add_row("build_crosswalk total", "", f"{extras['breakdown_build_seconds']:.2f}",
                   f"{extras['breakdown_build_cpu_seconds']:.2f}")
        bt.add_row("harmonise total", "", f"{extras['breakdown_harmonise_seconds']:.2f}",
                   f"{extras['breakdown_harmonise_cpu_seconds']:.2f}")
        if explained:
            o = explained["overlay_seconds"]
            bt.add_row(f"(reference: shapely STRtree + intersection areas, {o['threads']} threads)", "",
                       f"{o['strtree_query'] + o['intersection_area']:.2f}", "")
        console.print(bt)
        n = extras["overlaps"]
        console.print(f"geo-cs measures {n['candidate_pairs']:,} candidate pairs (envelopes meeting), "
                      f"{n['computed_by_geos']:,} of them by GEOS (boundaries within rounding of each "
                      f"other); {n['links_by_area']:,} links weighted by area, "
                      f"{n['slivers_ignored']:,} slivers ignored")

    return {
        "benchmark": "crosswalk_lsoa",
        "timestamp": h.timestamp(),
        "machine": h.machine(**versions()),
        "inputs": {"shared": str(args.shared), "source": SOURCE_BOUNDARIES, "target": TARGET_BOUNDARIES,
                   "values": f"{POPULATION_FILE} ({INDICATOR})", **{k: v for k, v in info.items()
                                                                     if k not in ("version", "shared")}},
        "repeat": args.repeat,
        "method": {
            "geo_cs": f"build_crosswalk(store, '{FROM_SET}', '{TO_SET}', basis='geometry') + "
                      f"harmonise(store, '{INDICATOR}', '{TO_SET}', crosswalk_id='{CROSSWALK_ID}') "
                      "on a copy of the prepared store",
            "tobler": f"area_interpolate(source_df, target_df, extensive_variables=['{VARIABLE}']) on "
                      "GeoDataFrames (EPSG:27700) read from GeoParquet exported from the store",
            "timing": "own process per side; one untimed warm-up; timed runs alternated between sides; "
                      "median wall; CPU = process_time of the side's process (all threads)",
            "peak_rss": "VmHWM of each side's process at the end (interpreter + inputs + computation); "
                        "tobler n_jobs=-1: workers' VmHWM added separately",
        },
        "results": {side: {**summarise(r), "runs": r["runs"], "load_seconds": r["load_seconds"],
                           "warmup_seconds": r["warmup_seconds"]} for side, r in results.items()},
        "geo_cs_reports": results["geo-cs"].get("reports"),
        "geo_cs_breakdown": {k: v for k, v in results["geo-cs"].items()
                             if k.startswith(("breakdown", "overlaps", "duckdb"))},
        "loadavg_1min_during_runs": results["geo-cs"]["loadavg_1min"],
        "speedup_tobler_over_geo_cs": round(speedup, 3),
        "speedup_tobler_parallel_over_geo_cs": round(speedup_parallel, 3) if speedup_parallel else None,
        "totals": comparison,
        "explain": explained,
        "targets": {"speedup_min": TARGET_SPEEDUP, "totals_rel_max": TARGET_TOTAL_REL},
        "pass": {"speed": speed_pass, "totals_geo_cs_vs_tobler": totals_pass,
                 "totals_geo_cs_vs_source": source_pass,
                 "speed_vs_tobler_parallel": (speedup_parallel >= TARGET_SPEEDUP
                                              if speedup_parallel is not None else None)},
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shared", type=Path, default=DEFAULT_SHARED,
                        help=f"the shared data folder (default {DEFAULT_SHARED})")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per tool (default 3)")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="keep (and reuse) the prepared store and GeoParquet files here "
                             "(default: a temporary folder, removed at the end)")
    h.add_out(parser, DEFAULT_OUT)
    parser.add_argument("--no-tobler-parallel", action="store_true",
                        help="do not also time tobler with n_jobs=-1")
    parser.add_argument("--no-breakdown", action="store_true", help="skip geo-cs's step-by-step run")
    parser.add_argument("--no-explain", action="store_true",
                        help="skip the untimed float64 overlay that explains per-target differences")
    parser.add_argument("--no-install", action="store_true", help="do not pip-install tobler when missing")
    parser.add_argument("--child", choices=["geo-cs", "tobler", "tobler-parallel"], help=argparse.SUPPRESS)
    return h.parse_with_repeat(parser, argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        return serve(args.child, args.workdir)
    console = Console()
    args.shared = args.shared.resolve()
    needed = [args.shared / p for p in (SOURCE_BOUNDARIES, TARGET_BOUNDARIES, POPULATION_FILE)]
    missing = [p for p in needed if not p.exists()]
    if missing:
        console.print("[red]shared data missing:[/] " + ", ".join(map(str, missing))
                      + "\nPass the folder holding boundaries/ and indicators/ with --shared.")
        return 2
    if not ensure_tobler(console, allow_install=not args.no_install):
        return 1
    load = h.warn_if_busy(console)
    tmp, workdir = h.workdir_or_temp(args.workdir, "bench_crosswalk_")
    try:
        info = prepare(workdir, args.shared, console)
        console.print(f"{info['sources']:,} LSOA 2011 -> {info['targets']:,} LSOA 2021; "
                      f"working-age population {info['source_total']:,.0f}; setup {info['setup_seconds']}")
        sides = ["geo-cs", "tobler"] + ([] if args.no_tobler_parallel else ["tobler-parallel"])
        try:
            results = run_rounds(workdir, sides, args.repeat, not args.no_breakdown, console)
        except h.ChildFailed as exc:
            console.print(f"[red]{exc}[/]")
            return 1
        comparison = compare(workdir, info)
        explained = None
        if not args.no_explain:
            with console.status("explaining per-target differences (untimed float64 overlay)"):
                explained = explain(workdir)
        out = report(console, args, info, results, comparison, explained)
        out["loadavg_at_start"] = list(load)
        out["loadavg_at_end"] = list(os.getloadavg())
    finally:
        if tmp is not None:
            tmp.cleanup()
    import tobler

    peer = h.peer("tobler", tobler.__version__,
                  "the same LSOA 2011 and LSOA 2021 boundaries (EPSG:27700) and working-age "
                  "population; each side computes the area-weighted crosswalk and the population "
                  "apportioned to 2021 areas",
                  **{k: v for k, v in versions().items() if k != "geo_cs_commit"})
    h.write_results(args.out, out, console, peer=peer)
    return 0


if __name__ == "__main__":
    sys.exit(main())
