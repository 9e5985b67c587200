"""Benchmark: the full NI 153 gap series for every partnership, geo-cs against plain pandas.

What is measured
----------------
A seeded synthetic quarterly panel for all 41,729 GB small areas (34,753 LSOA 2011 in England
and Wales + 6,976 data zones 2011 in Scotland) x 80 DWP quarters (Feb 2000 - Nov 2019) x 4
benefit groups (JSA, ESA/IB, lone parents, others) is written into the ``observations`` table of
a fresh geo-cs store, which also holds the real boundaries and lookups the partnerships resolve
through. Then, for both geographies (LSOA 2011 for the English and Welsh partnerships, data
zones 2011 for the Scottish ones), the NI 153 table — per partnership and quarter the cohort's
rate, the rest's rate, the gap, the number of cohort areas and their share of the working-age
population, on the report's baseline May 2006 - Feb 2007 and threshold 25% — is computed by:

* **geo-cs**: ``Panel(store, RateSource(<4 groups>, set_id))`` then
  ``ni153(store, panel, params=MethodParams())`` for all applicable partnerships. The time
  covers everything from the ``observations`` table to the final per-partnership table: panel
  construction in DuckDB, the baseline cohort, partnership resolution (``resolve()``), the
  aggregation, intervals, flags and provenance.
* **the pandas peer** (``bench/ni153_pandas_peer.py``): the same numbers in plain pandas/numpy
  from DataFrames already in memory — the observations of the geography, the periods in order
  and the membership table. Membership comes from geo-cs's ``partnership_groups`` once, during
  setup, and is given to the peer as data, so the peer does *not* pay for resolution while
  geo-cs does (its share is reported separately).

Each side runs in its own fresh Python process, pinned to ``--cores`` CPUs (DuckDB ``threads``
set to the same). Both are warm: each loads its inputs and runs the whole computation once
untimed; then the parent alternates ``--repeat`` timed runs between the two processes (geo-cs
first in odd rounds, the peer first in even ones; the idle one blocks on its pipe), so both meet
the same machine conditions. The median of the per-run totals (both geographies) is reported,
with process CPU time and the median of the paired per-round ratios. Peak memory is each
process's own high-water RSS (VmHWM, read as it finishes; ``ru_maxrss`` would not do, as Linux
carries the parent's into a child): the interpreter, its inputs (the peer's DataFrames, geo-cs's
DuckDB buffers) and the computation. The RSS just after loading the inputs is printed too.

The results of the two sides are checked equal (cohort_rate, rest_rate, gap, n_cohort,
cohort_share per partnership and quarter, within 1e-9 relative, NaN equal to NaN); any
difference stops the benchmark with exit status 1. Targets (issue 3): geo-cs <= 2 s on 2 cores
and >= 5x faster than the peer. Results are printed and written to ``bench/results/ni153.json``.

Exit status: 0 whether or not the targets are met, 1 on a mismatch or failure, 2 when the
shared data folder is missing.

Run from the repository root::

    /work/venv/bin/python bench/bench_ni153.py [--shared DIR] [--seed 1] [--repeat 5] [--cores 2]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import platform
import pstats
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import _harness as h
import numpy as np
import pandas as pd
import pyarrow as pa
from rich.console import Console
from rich.table import Table

DEFAULT_SHARED = h.REPO.parent / "shared" / "data"
DEFAULT_OUT = h.RESULTS / "ni153.json"

BOUNDARIES = ["lsoa11_bgc_topo_by_lad", "dz11_scotland.geojson", "lad13_gb.topojson", "wards13_topo_by_lad"]
LOOKUPS = ["lsoa01_lsoa11_ew.csv", "lsoa11_ward19_lad19_ew.csv", "dz11_iz11_lad20_scotland.csv"]

GROUPS = ("synth.jsa", "synth.esa_ib", "synth.lone_parents", "synth.others")
GROUP_LABELS = ("JSA", "ESA/IB", "lone parents", "others")
#: geography set -> (expected number of areas, nations of its partnerships)
SETS = {"lsoa2011": (34_753, {"E", "W"}), "datazone2011": (6_976, {"S"})}
FIRST_YEAR, N_QUARTERS = 2000, 80
BASELINE = ("2006-05", "2006-08", "2006-11", "2007-02")
COMPARED = ["cohort_rate", "rest_rate", "gap", "n_cohort", "cohort_share"]
TARGET_SECONDS, TARGET_RATIO = 2.0, 5.0
#: issue 17: what the map's threshold and baseline controls need
TARGET_ONE_MS = 100.0
RTOL = 1e-9


# -- synthetic data ------------------------------------------------------------------------------

def quarters() -> list[Any]:
    """The 80 DWP quarters from February 2000, as geo-cs periods."""
    from geo_cs.periods import quarter

    return [quarter(FIRST_YEAR + i // 4, (2, 5, 8, 11)[i % 4]) for i in range(N_QUARTERS)]


# Common multipliers of each benefit group's rate over time (1.0 around the baseline), at knots
# in decimal years: JSA follows the economic cycle (the 2008-09 recession) and falls as Universal
# Credit arrives; incapacity benefits drift down; lone-parent claims fall with the 2008-12 rules.
KNOTS = [2000.0, 2003.0, 2006.5, 2008.5, 2009.5, 2012.0, 2015.0, 2020.0]
TRENDS = {
    "synth.jsa": [1.25, 1.05, 1.00, 0.95, 1.55, 1.50, 0.90, 0.45],
    "synth.esa_ib": [1.00, 1.02, 1.00, 0.99, 1.00, 0.98, 0.92, 0.80],
    "synth.lone_parents": [1.20, 1.10, 1.00, 0.97, 0.92, 0.75, 0.60, 0.45],
    "synth.others": [0.95, 0.98, 1.00, 1.00, 1.02, 1.05, 1.05, 1.00],
}
SEASONAL = {"synth.jsa": 0.05, "synth.esa_ib": 0.01, "synth.lone_parents": 0.01, "synth.others": 0.02}
#: Mean share of each group in an area's out-of-work total (Dirichlet concentration x 40).
SHARES = np.array([0.30, 0.45, 0.15, 0.10])


@dataclass
class Synthetic:
    """One geography's synthetic panel, ready to be written as observations."""

    set_id: str
    codes: np.ndarray            # (n,) area codes
    values: np.ndarray           # (groups, n, quarters) counts, NaN where suppressed
    denominators: np.ndarray     # (n, quarters) working-age population
    base_rate: np.ndarray        # (n,) the area's underlying rate (fraction)


def generate(rng: np.random.Generator, set_id: str, codes: np.ndarray, in_partnership: np.ndarray,
             periods: list[Any], suppressed: float) -> Synthetic:
    """Counts of the four benefit groups for every area and quarter.

    Working-age population ~ lognormal around 1,200 (600-3,000), growing or shrinking slowly per
    area, updated once a year (mid-year estimates); the area's underlying rate lognormal with
    median 10% (a few % of areas above 25%; higher inside partnership areas, which were chosen
    for their worklessness), its own slow drift, split between the groups by a per-area
    Dirichlet share; each group follows a common trend and season; counts are Poisson around
    the expectation, rounded to the nearest 5 (DWP rounding); a small share is suppressed.
    """
    n, t = len(codes), len(periods)
    years = np.array([p.end.year + (p.end.month - 0.5) / 12 for p in periods])
    months = np.array([p.end.month for p in periods])
    whole_years = np.array([p.end.year for p in periods], dtype=float)

    pop0 = np.clip(rng.lognormal(np.log(1200), 0.3, n), 600, 3000)
    growth = rng.normal(0.004, 0.008, n)
    population = np.rint(pop0[:, None] * np.exp(growth[:, None] * (whole_years[None, :] - 2006)))

    log_rate = rng.normal(np.log(0.10), 0.5, n) + 0.35 * in_partnership
    base_rate = np.clip(np.exp(log_rate), 0.01, 0.55)
    drift = rng.normal(0.0, 0.02, n)
    area_rate = base_rate[:, None] * np.exp(drift[:, None] * (years[None, :] - 2006.5))
    shares = rng.dirichlet(SHARES * 40, n)                                  # (n, groups)

    values = np.empty((len(GROUPS), n, t))
    for g, indicator in enumerate(GROUPS):
        trend = np.interp(years, KNOTS, TRENDS[indicator])
        season = 1 + SEASONAL[indicator] * np.cos(2 * np.pi * (months - 2) / 12)
        expected = population * area_rate * shares[:, g:g + 1] * (trend * season)[None, :]
        values[g] = np.rint(rng.poisson(expected) / 5) * 5
    if suppressed > 0:
        values[rng.random(values.shape) < suppressed] = np.nan
    return Synthetic(set_id, codes, values, population, base_rate)


def observations_table(syn: Synthetic, periods: list[Any], ingest_id: int) -> pa.Table:
    """The synthetic panel as an Arrow table with the columns of ``observations``."""
    g, n, t = syn.values.shape
    size = g * n * t

    def dictionary(indices: np.ndarray, words: list[str], mask: np.ndarray | None = None) -> pa.Array:
        # plain strings insert faster than dictionaries into the primary-keyed table
        array = pa.DictionaryArray.from_arrays(pa.array(indices, mask=mask), pa.array(words, pa.string()))
        return array.cast(pa.string())

    values = syn.values.reshape(-1)
    missing = np.isnan(values)
    return pa.table({
        "indicator_id": dictionary(np.repeat(np.arange(g, dtype=np.int8), n * t), list(GROUPS)),
        "set_id": dictionary(np.zeros(size, dtype=np.int8), [syn.set_id]),
        "code": dictionary(np.tile(np.repeat(np.arange(n, dtype=np.int32), t), g), syn.codes.tolist()),
        "period_id": dictionary(np.tile(np.arange(t, dtype=np.int8), g * n),
                                [p.period_id for p in periods]),
        "value": pa.array(values, mask=missing),
        "denominator": pa.array(np.tile(syn.denominators.reshape(-1), g)),
        "status": dictionary(np.zeros(size, dtype=np.int8), [".."], mask=~missing),
        "ingest_id": pa.array(np.full(size, ingest_id, dtype=np.int32)),
    })


# -- setup ---------------------------------------------------------------------------------------

def applicable(set_id: str) -> list[Any]:
    """Partnerships whose nations the geography covers (what ni153 picks by default)."""
    from geo_cs.analysis import NATION_CODE
    from geo_cs.partnerships import get_partnerships

    nations = SETS[set_id][1]
    return [p for p in get_partnerships()
            if not p.nations or {NATION_CODE.get(n, n) for n in p.nations} & nations]


def build(workdir: Path, shared: Path, seed: int, suppressed: float, console: Console) -> dict[str, Any]:
    """The store with real boundaries, lookups and the synthetic panel; the peer's inputs."""
    from geo_cs.analysis import partnership_groups
    from geo_cs.ingest import ingest_boundaries, ingest_lookup
    from geo_cs.store import Store

    info: dict[str, Any] = {"seed": seed, "suppressed_fraction": suppressed, "sets": {}}
    start = time.perf_counter()
    store = Store.open(workdir / "bench.duckdb")
    for name in BOUNDARIES:
        with console.status(f"ingesting boundaries {name}"):
            report = ingest_boundaries(store, [shared / "boundaries" / name])
        console.log(f"boundaries {name}: {report.areas_written:,} {report.set_id}")
    for name in LOOKUPS:
        with console.status(f"ingesting lookup {name}"):
            report = ingest_lookup(store, shared / "lookups" / name)
        console.log(f"lookup {name}: {report.lookup_id}")
    info["ingest_seconds"] = round(time.perf_counter() - start, 1)

    periods = quarters()
    missing = [b for b in BASELINE if b not in {p.period_id for p in periods}]
    assert not missing, f"baseline quarters {missing} not generated"
    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    with store.transaction():
        ingest_id = store.start_ingest("indicator", [f"synthetic NI 153 panel, seed {seed}"])
        for p in periods:
            store.sql("INSERT INTO periods (period_id, kind, label, start_date, end_date, data_year) "
                      "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                      [p.period_id, p.kind, p.label, p.start, p.end, p.data_year])
        for set_id, (expected, _) in SETS.items():
            codes = np.array([r[0] for r in store.sql(
                "SELECT code FROM areas WHERE set_id = ? ORDER BY code", [set_id]).fetchall()])
            if len(codes) != expected:
                raise SystemExit(f"{set_id}: {len(codes):,} areas in the store, expected {expected:,}")
            groups, _ = partnership_groups(store, applicable(set_id), set_id)
            membership = groups.rename(columns={"group": "partnership"})
            membership.to_parquet(workdir / f"membership_{set_id}.parquet", index=False)
            syn = generate(rng, set_id, codes, np.isin(codes, membership["code"]), periods, suppressed)
            table = observations_table(syn, periods, ingest_id)
            for indicator, label in zip(GROUPS, GROUP_LABELS, strict=True):
                store.sql("INSERT INTO indicators (indicator_id, source_id, measure, kind, unit, label, "
                          "set_id, source_title) VALUES (?, 'synth', ?, 'count', 'people', ?, ?, ?)",
                          [indicator, indicator.split(".")[1], f"Synthetic {label} claimants", set_id,
                           f"bench_ni153.py, seed {seed}"])
            store.con.register("synth_obs", table)
            try:
                # columns named, so that columns added to the schema later (nullable) stay NULL
                columns = ", ".join(table.column_names)
                store.sql(f"INSERT INTO observations ({columns}) SELECT {columns} FROM synth_obs")
            finally:
                store.con.unregister("synth_obs")
            baseline_cols = [i for i, p in enumerate(periods) if p.period_id in BASELINE]
            base = (np.nansum(syn.values[:, :, baseline_cols], axis=0)
                    / syn.denominators[:, baseline_cols]).mean(axis=1) * 100
            info["sets"][set_id] = {
                "areas": len(codes),
                "observations": table.num_rows,
                "panel_rows": len(codes) * len(periods),
                "partnerships": sorted(membership["partnership"].unique().tolist()),
                "member_areas": int(membership["code"].nunique()),
                "areas_over_25pc_baseline": int((base > 25).sum()),
                "suppressed_values": int(np.isnan(syn.values).sum()),
            }
            console.log(f"{set_id}: {table.num_rows:,} observations for {len(codes):,} areas; "
                        f"{(base > 25).mean():.1%} of areas above 25% in the baseline; "
                        f"{membership['partnership'].nunique()} partnerships, "
                        f"{membership['code'].nunique():,} member areas")
        store.finish_ingest(ingest_id, {"synthetic": info["sets"]})
    info["generate_seconds"] = round(time.perf_counter() - start, 1)

    # The peer's inputs, read back from the store so that both sides see the very same data.
    for set_id in SETS:
        store.sql(f"""COPY (SELECT code, period_id, indicator_id AS indicator, value, denominator
                          FROM observations WHERE set_id = '{set_id}')
                     TO '{workdir / f"observations_{set_id}.parquet"}' (FORMAT parquet)""")
    (workdir / "periods.json").write_text(json.dumps([p.period_id for p in periods]))
    store.close()
    info["store_mb"] = round((workdir / "bench.duckdb").stat().st_size / 1e6, 1)
    return info


def prepare(workdir: Path, console: Console) -> dict[str, float]:
    """The analysis-ready panels (geo_cs.panels), as an ingest prepares them, and the peer's
    copy of the same input; returns the seconds preparing each took (what it adds to an ingest)."""
    import pyarrow.parquet as pq

    from geo_cs.analysis import Panel, RateSource
    from geo_cs.panels import panel_key, prepare_panel
    from geo_cs.store import Store

    seconds = {}
    with Store.open(workdir / "bench.duckdb") as store:
        for set_id in SETS:
            t0 = time.perf_counter()
            with store.transaction():
                panel = Panel(store, RateSource(GROUPS, set_id), prepared=False)
                prepare_panel(store, panel)
                panel.drop()
            seconds[set_id] = round(time.perf_counter() - t0, 2)
            console.log(f"{set_id}: analysis-ready panel prepared in {seconds[set_id]} s")
            key = panel_key(set_id, list(GROUPS), None, False)
            codes, periods_of = store.sql(
                "SELECT codes, periods FROM analysis_panel_index WHERE panel_key = ?", [key]).fetchone()
            (workdir / f"prepared_{set_id}.json").write_text(
                json.dumps({"codes": codes, "periods": periods_of}))
            # the peer's copy of the same prepared input: one row per area and period, integer keys
            rows = store.sql("SELECT area, period, count, denominator, rate FROM analysis_panels "
                             "WHERE panel_key = ? ORDER BY area, period", [key]).to_arrow_table()
            pq.write_table(rows, workdir / f"panel_{set_id}.parquet")
        store.sql("CHECKPOINT")
    return seconds


# -- the two sides, each in its own process ------------------------------------------------------

def pin(cores: int) -> list[int]:
    """Restrict this process to ``cores`` CPUs (when it has more) and return the CPUs used."""
    allowed = sorted(os.sched_getaffinity(0))
    if len(allowed) > cores:
        os.sched_setaffinity(0, set(allowed[:cores]))
    return sorted(os.sched_getaffinity(0))


@contextmanager
def instrumented(targets: list[tuple[Any, str, str]]) -> Iterator[dict[str, list[float]]]:
    """Wrap functions/methods with inclusive timers (calls, seconds) for one pass; undo after."""
    stats: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
    originals = []
    for owner, attr, label in targets:
        fn = getattr(owner, attr)

        def timed(*args: Any, _fn: Callable = fn, _label: str = label, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return _fn(*args, **kwargs)
            finally:
                entry = stats[_label]
                entry[0] += 1
                entry[1] += time.perf_counter() - t0

        originals.append((owner, attr, fn))
        setattr(owner, attr, timed)
    try:
        yield stats
    finally:
        for owner, attr, fn in reversed(originals):
            setattr(owner, attr, fn)


class GeoCsSide:
    """geo-cs as the user calls it: Panel + ni153 per geography, from the store's observations."""

    def __init__(self, workdir: Path, cores: int, prepared: bool = True) -> None:
        from geo_cs.store import Store

        self.store = Store.open(workdir / "bench.duckdb", read_only=True)
        self.store.sql(f"SET threads = {int(cores)}")
        self.prepared = prepared

    def one_pass(self, drop: bool = True, from_store: bool = False) -> tuple[dict[str, float],
                                                                             dict[str, pd.DataFrame]]:
        """Panel + ni153 for both geographies. The panels are dropped afterwards (which also
        evicts them from geo-cs's per-connection panel cache), so that every timed pass builds
        them from the observations; ``drop=False`` leaves them cached for the next pass."""
        from geo_cs.analysis import MethodParams, Panel, RateSource, ni153
        from geo_cs.panels import forget_loaded

        seconds, tables, panels = {}, {}, []
        if from_store:
            forget_loaded()  # the prepared panels are read from the store again
        cpu0 = time.process_time()
        for set_id in SETS:
            t0 = time.perf_counter()
            panel = Panel(self.store, RateSource(GROUPS, set_id), prepared=self.prepared)
            t1 = time.perf_counter()
            tables[set_id] = ni153(self.store, panel, params=MethodParams())
            seconds[set_id] = time.perf_counter() - t0
            seconds[f"{set_id}_panel"] = t1 - t0
            panels.append(panel)
        seconds["cpu"] = time.process_time() - cpu0  # all threads of the process
        if drop:
            for panel in panels:  # clean-up, not part of the computation
                panel.drop()
        return seconds, tables

    def one_partnership(self) -> dict[str, Any]:
        """What the map's controls need: one partnership's cohort and gap recomputed for a new
        threshold or baseline (``ni153`` for that partnership alone, on a panel in use, a new
        cohort each time: no cohort is cached for these thresholds), every partnership in turn."""
        from geo_cs.analysis import MethodParams, Panel, RateSource, ni153

        baselines = [BASELINE, ("2008-05", "2008-08", "2008-11", "2009-02")]
        times: list[float] = []
        worst = {"ms": 0.0}
        k = 0
        for set_id in SETS:
            panel = Panel(self.store, RateSource(GROUPS, set_id), prepared=self.prepared)
            for partnership in applicable(set_id):
                for baseline in baselines:
                    for threshold in (20.0, 30.0):
                        k += 1
                        params = MethodParams(threshold=threshold + k * 1e-4, baseline=baseline)
                        t0 = time.perf_counter()
                        table = ni153(self.store, panel, [partnership], params=params)
                        ms = (time.perf_counter() - t0) * 1000
                        times.append(ms)
                        if ms > worst["ms"]:
                            worst = {"ms": round(ms, 2), "partnership": partnership.id,
                                     "threshold": threshold, "baseline": list(baseline), "rows": len(table)}
            panel.drop()
        return {"recomputes": len(times), "median_ms": round(statistics.median(times), 2),
                "p90_ms": round(float(np.percentile(times, 90)), 2), "max_ms": round(max(times), 2),
                "slowest": worst}

    @staticmethod
    def steps() -> list[tuple[Any, str, str]]:
        """The functions inside ni153 to time (inclusive), with their labels."""
        from geo_cs import analysis

        return [
            (analysis.Panel, "__init__", "Panel() (panel table in DuckDB)"),
            (analysis, "_applicable", "_applicable() (partnerships of the panel's nations)"),
            (analysis, "worst_cohort", "worst_cohort()"),
            (analysis, "partnership_groups", "partnership_groups()"),
            (analysis, "resolve", "resolve() (inside partnership_groups)"),
            (analysis.Panel, "aggregate", "Panel.aggregate()"),
            (analysis.Panel, "codes", "Panel.codes()"),
            (analysis.Panel, "periods", "Panel.periods()"),
            (analysis.Panel, "area_rates", "Panel.area_rates()"),
            (analysis, "add_rates", "add_rates()"),
            (analysis, "_with_periods", "_with_periods()"),
            (analysis, "_provenance", "_provenance()"),
        ]

    def warm(self) -> None:
        """The untimed first pass, with the step timers on: what a cold call costs (resolve()
        included; geo-cs caches resolutions per connection and data version)."""
        with instrumented(self.steps()) as stats:
            t0 = time.perf_counter()
            self.one_pass()
            total = time.perf_counter() - t0
        self.cold = {"total_seconds": round(total, 4),
                     "steps": {label: {"calls": int(c), "seconds": round(sec, 4)}
                               for label, (c, sec) in stats.items()}}

    def extras(self, profile: bool) -> dict[str, Any]:
        """One more pass with inclusive timers on the steps inside ni153; optionally cProfile."""
        with instrumented(self.steps()) as stats:
            t0 = time.perf_counter()
            self.one_pass()
            total = time.perf_counter() - t0
        # For information only (not a target): a pass that finds both panels in geo-cs's
        # per-connection cache, i.e. what a repeated call costs when the panel is not rebuilt.
        self.one_pass(drop=False)
        cached, _ = self.one_pass(drop=True)
        loaded, _ = self.one_pass(from_store=True)
        out: dict[str, Any] = {
            # a pass that first reads the prepared panels from the store (once per process and
            # preparation; the timed runs find them in the process, as the peer has its input)
            "pass_reading_prepared_panels_from_store": {k: round(v, 4) for k, v in loaded.items()},
            "one_partnership": self.one_partnership(),
            "cold_pass": self.cold,
            "panel_cached_pass": {k: round(v, 4) for k, v in cached.items()},
            "duckdb_threads": self.store.sql("SELECT current_setting('threads')").fetchone()[0],
            "breakdown_total_seconds": round(total, 4),
            "breakdown": {label: {"calls": int(c), "seconds": round(sec, 4)}
                          for label, (c, sec) in stats.items()},
        }
        if profile:
            profiler = cProfile.Profile()
            profiler.enable()
            self.one_pass()
            profiler.disable()
            buffer = io.StringIO()
            pstats.Stats(profiler, stream=buffer).sort_stats("cumulative").print_stats(35)
            out["profile"] = buffer.getvalue()
        return out


class PandasSide:
    """The plain pandas peer, from DataFrames loaded before any timing."""

    def __init__(self, workdir: Path, keys: str, prepared: bool = True) -> None:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from ni153_pandas_peer import ni153_pandas, ni153_pandas_prepared

        self.ni153_pandas = ni153_pandas
        self.ni153_pandas_prepared = ni153_pandas_prepared
        self.prepared = prepared
        self.periods = json.loads((workdir / "periods.json").read_text())
        self.inputs = {}
        for set_id in SETS:
            if prepared:  # the same analysis-ready panel geo-cs reads
                meta = json.loads((workdir / f"prepared_{set_id}.json").read_text())
                self.inputs[set_id] = (pd.read_parquet(workdir / f"panel_{set_id}.parquet"),
                                       pd.read_parquet(workdir / f"membership_{set_id}.parquet"), meta)
                continue
            obs = pd.read_parquet(workdir / f"observations_{set_id}.parquet")
            membership = pd.read_parquet(workdir / f"membership_{set_id}.parquet")
            if keys == "category":
                obs = obs.astype({"code": "category", "period_id": "category", "indicator": "category"})
            self.inputs[set_id] = (obs, membership, None)

    def one_pass(self) -> tuple[dict[str, float], dict[str, pd.DataFrame]]:
        seconds, tables = {}, {}
        cpu0 = time.process_time()
        for set_id, (obs, membership, meta) in self.inputs.items():
            t0 = time.perf_counter()
            if meta is not None:
                tables[set_id] = self.ni153_pandas_prepared(obs, meta["codes"], meta["periods"], membership,
                                                            baseline=BASELINE)
            else:
                tables[set_id] = self.ni153_pandas(obs, self.periods, membership, baseline=BASELINE)
            seconds[set_id] = time.perf_counter() - t0
        seconds["cpu"] = time.process_time() - cpu0
        return seconds, tables

    def warm(self) -> None:
        self.one_pass()

    def extras(self, profile: bool) -> dict[str, Any]:
        obs = self.inputs["lsoa2011"][0]
        return {"input": "prepared panel" if self.prepared else "observations",
                "input_dtypes": {c: str(t) for c, t in obs.dtypes.items()}}


def serve(side_name: str, args: argparse.Namespace) -> int:
    """A side's process: load, warm up, then answer the parent's commands one JSON line each.

    ``run`` times one pass over both geographies; ``finish`` writes the last pass's tables for
    the comparison, adds the side's extras and its peak RSS, and exits.
    """
    proto = sys.stdout
    sys.stdout = sys.stderr  # keep stray prints out of the protocol

    def send(message: dict[str, Any]) -> None:
        proto.write(json.dumps(message) + "\n")
        proto.flush()

    cpus = pin(args.cores)
    prepared = args.input == "prepared"
    side = GeoCsSide(args.workdir, args.cores, prepared) if side_name == "geo-cs" else PandasSide(
        args.workdir, args.peer_keys, prepared)
    rss_loaded = h.proc_status_mb("VmRSS")
    side.warm()
    tables: dict[str, pd.DataFrame] = {}
    send({"cpus": cpus, "rss_after_load_mb": round(rss_loaded, 1)})
    for line in sys.stdin:
        command = line.strip()
        if command == "run":
            seconds, tables = side.one_pass()
            send(seconds)
        elif command == "finish":
            tag = side_name.replace("-", "_")
            for set_id, table in tables.items():
                table[["partnership", "period_id", *COMPARED]].astype({"period_id": str}).to_parquet(
                    args.workdir / f"result_{tag}_{set_id}.parquet", index=False)
            extras = side.extras(args.profile)
            send({**extras, "result_rows": {k: len(v) for k, v in tables.items()},
                  "peak_rss_mb": round(h.proc_status_mb("VmHWM"), 1)})
            return 0
    return 1


def run_rounds(workdir: Path, args: argparse.Namespace, console: Console) -> dict[str, dict[str, Any]]:
    """Start both sides (each loads and warms up), then alternate their timed runs.

    Round i runs geo-cs then pandas, round i+1 pandas then geo-cs, so that both sides meet the
    same machine conditions (other processes, thermal state) as far as possible. The idle side
    waits on its pipe and uses no CPU.
    """
    children: dict[str, h.Child] = {}
    try:
        for side in ("geo-cs", "pandas"):
            with console.status(f"{side}: loading and warming up"):
                children[side] = h.Child(__file__, side, workdir, [
                    "--cores", str(args.cores), "--peer-keys", args.peer_keys, "--input", args.input,
                    *(["--profile"] if args.profile else [])])
        def with_total(seconds: dict[str, float]) -> dict[str, float]:
            return {**seconds, "total": sum(v for k, v in seconds.items() if k in SETS)}

        runs, loads = h.alternate_runs(
            children, args.repeat, console, measure=with_total,
            report=lambda runs: f"geo-cs {runs['geo-cs'][-1]['total']:.3f} s, "
                                f"pandas {runs['pandas'][-1]['total']:.3f} s")
        return h.finish_children(children, runs, loads, console)
    finally:
        for child in children.values():
            child.close()


# -- comparison and report -----------------------------------------------------------------------

def compare(workdir: Path) -> tuple[int, list[str]]:
    """Rows compared and a description of every mismatch (empty when equal)."""
    problems: list[str] = []
    rows = 0
    for set_id in SETS:
        ours = pd.read_parquet(workdir / f"result_geo_cs_{set_id}.parquet")
        peer = pd.read_parquet(workdir / f"result_pandas_{set_id}.parquet")
        keys = ["partnership", "period_id"]
        both = ours.merge(peer, on=keys, how="outer", suffixes=("_geo", "_peer"), indicator=True)
        only = both[both["_merge"] != "both"]
        if len(only):
            problems.append(f"{set_id}: {len(only)} (partnership, period) rows on one side only, e.g. "
                            f"{only[[*keys, '_merge']].head(3).to_dict('records')}")
        both = both[both["_merge"] == "both"]
        rows += len(both)
        for col in COMPARED:
            a = both[f"{col}_geo"].astype(float).to_numpy()
            b = both[f"{col}_peer"].astype(float).to_numpy()
            same = np.isclose(a, b, rtol=RTOL, atol=0.0) | (np.isnan(a) & np.isnan(b))
            if not same.all():
                bad = both.loc[~same, [*keys, f"{col}_geo", f"{col}_peer"]]
                problems.append(f"{set_id}: {col} differs in {len(bad)} rows, e.g. "
                                f"{bad.head(3).to_dict('records')}")
    return rows, problems


def versions() -> dict[str, str]:
    import duckdb

    return {"python": platform.python_version(), "duckdb": duckdb.__version__,
            "pandas": pd.__version__, "numpy": np.__version__, "pyarrow": pa.__version__,
            "geo_cs_commit": h.git_commit()}


def median_of(result: dict[str, Any], key: str) -> float:
    return statistics.median(run[key] for run in result["runs"])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shared", type=Path, default=DEFAULT_SHARED,
                        help=f"folder with boundaries/ and lookups/ (default {DEFAULT_SHARED})")
    parser.add_argument("--seed", type=int, default=1, help="seed of the synthetic panel (default 1)")
    parser.add_argument("--repeat", type=int, default=5,
                        help="timed runs per side after a warm-up (default 5)")
    parser.add_argument("--cores", type=int, default=2,
                        help="CPUs each side is pinned to, and DuckDB threads (default 2)")
    parser.add_argument("--suppressed", type=float, default=0.0005,
                        help="share of observations suppressed (NULL), as DWP does (default 0.0005)")
    parser.add_argument("--peer-keys", choices=["str", "category"], default="str",
                        help="dtype of the peer's key columns: pandas' default string dtype as read "
                             "from Parquet, or categoricals (default str)")
    parser.add_argument("--input", choices=["prepared", "observations"], default="prepared",
                        help="what both sides start from: the analysis-ready panel prepared at ingest "
                             "(geo_cs.panels; its preparation time is reported) or the observations "
                             "(default prepared)")
    parser.add_argument("--profile", action="store_true",
                        help="also run geo-cs once under cProfile and print the top functions")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="keep the store and inputs here (default: a temporary folder, removed)")
    h.add_out(parser, DEFAULT_OUT)
    parser.add_argument("--child", choices=["geo-cs", "pandas"], help=argparse.SUPPRESS)
    args = h.parse_with_repeat(parser, argv)
    if args.cores < 1:
        parser.error("--cores must be at least 1")
    if not 0 <= args.suppressed < 0.5:
        parser.error("--suppressed must be in [0, 0.5)")
    return args


def report(args: argparse.Namespace, console: Console, info: dict[str, Any],
           g: dict[str, Any], p: dict[str, Any], rows_compared: int) -> dict[str, Any]:
    """Print the results table and return the JSON record."""
    geo_s, peer_s = median_of(g, "total"), median_of(p, "total")
    ratio = peer_s / geo_s
    paired = statistics.median(b["total"] / a["total"] for a, b in zip(g["runs"], p["runs"], strict=True))
    pass_time, pass_ratio = geo_s <= TARGET_SECONDS, ratio >= TARGET_RATIO
    panel_rows = sum(s["panel_rows"] for s in info["sets"].values())
    observations = sum(s["observations"] for s in info["sets"].values())

    table = Table(title=f"NI 153, all partnerships, {panel_rows:,} area-quarters "
                        f"({observations:,} observations); median of {args.repeat} warm runs, "
                        f"{args.cores} cores")
    for col, justify in (("side", "left"), ("median s", "right"), ("lsoa2011 s", "right"),
                         ("datazone2011 s", "right"), ("CPU s", "right"), ("RSS after load MB", "right"),
                         ("peak RSS MB", "right")):
        table.add_column(col, justify=justify)
    for name, res in (("geo-cs (Panel + ni153)", g), (f"pandas peer (keys: {args.peer_keys})", p)):
        table.add_row(name, f"{median_of(res, 'total'):.3f}", f"{median_of(res, 'lsoa2011'):.3f}",
                      f"{median_of(res, 'datazone2011'):.3f}", f"{median_of(res, 'cpu'):.3f}",
                      f"{res['rss_after_load_mb']:.0f}", f"{res['peak_rss_mb']:.0f}")
    console.print(table)
    load = statistics.median(g["loadavg_1min"])
    busy = "; [yellow]other processes competed for the CPUs[/]" if load > args.cores + 1 else ""
    console.print(f"Timed runs alternate between the two sides' processes (median 1-minute load "
                  f"average {load:.1f} on {os.cpu_count()} CPUs{busy}). Paired ratio pandas / geo-cs "
                  f"per round, median: {paired:.2f}x.")
    console.print("Each side runs in its own subprocess. Peak RSS = that process's VmHWM (its own "
                  "high-water resident set since exec): interpreter + inputs (peer: DataFrames; "
                  "geo-cs: DuckDB buffers) + computation. RSS after load = VmRSS once the inputs "
                  "are loaded (peer) / the store is opened (geo-cs). CPU s = process CPU time, all "
                  "threads (median).")
    console.print(f"Results equal on {rows_compared:,} (partnership, quarter) rows "
                  f"(cohort_rate, rest_rate, gap, n_cohort, cohort_share; rtol {RTOL}).")

    def verdict(ok: bool) -> str:
        return "[green]PASS[/]" if ok else "[red]FAIL[/]"

    targets = Table(title="Targets (issue 3)")
    for col in ("target", "measured", "verdict"):
        targets.add_column(col)
    targets.add_row(f"geo-cs <= {TARGET_SECONDS:g} s on {args.cores} cores", f"{geo_s:.3f} s",
                    verdict(pass_time))
    targets.add_row(f"geo-cs >= {TARGET_RATIO:g}x faster than pandas", f"{ratio:.2f}x (pandas / geo-cs)",
                    verdict(pass_ratio))
    one = g["one_partnership"]
    pass_one = one["max_ms"] <= TARGET_ONE_MS
    targets.add_row(f"one partnership's cohort and gap, new threshold or baseline <= {TARGET_ONE_MS:g} ms",
                    f"max {one['max_ms']:.1f} ms, median {one['median_ms']:.1f} ms "
                    f"({one['recomputes']} recomputes)",
                    verdict(pass_one))
    console.print(targets)

    steps = Table(title=f"Where geo-cs's time goes (one instrumented pass, "
                        f"{g['breakdown_total_seconds']:.3f} s; inclusive, nested steps overlap)")
    for col, justify in (("step", "left"), ("calls", "right"), ("seconds", "right"), ("share", "right")):
        steps.add_column(col, justify=justify)
    for label, entry in sorted(g["breakdown"].items(), key=lambda kv: -kv[1]["seconds"]):
        steps.add_row(label, str(entry["calls"]), f"{entry['seconds']:.3f}",
                      f"{entry['seconds'] / g['breakdown_total_seconds']:.0%}")
    console.print(steps)
    label = "resolve() (inside partnership_groups)"
    resolve_s = g["breakdown"].get(label, {}).get("seconds", 0.0)
    cold_resolve = g["cold_pass"]["steps"].get(label, {}).get("seconds", 0.0)
    console.print(f"resolve(): {resolve_s:.3f} s in a warm pass, {cold_resolve:.3f} s in the first "
                  f"(cold) pass of {g['cold_pass']['total_seconds']:.3f} s — geo-cs caches resolutions "
                  "per connection and data version; the peer is given membership and never pays it.")
    if resolve_s > 0.5 * g["breakdown_total_seconds"]:
        console.print(f"[yellow]resolve() dominates geo-cs's warm time ({resolve_s:.3f} s).[/]")
    cached = g["panel_cached_pass"]
    cached_total = sum(v for k, v in cached.items() if k in SETS)
    console.print(f"For information (not the benchmark): with both panels already in geo-cs's "
                  f"per-connection panel cache, one pass takes {cached_total:.3f} s "
                  f"(Panel() {sum(cached[f'{k}_panel'] for k in SETS):.3f} s of it). The timed runs "
                  "drop their panels, so each builds them from the observations.")
    if g.get("profile"):
        console.print(g["profile"])

    return {
        "benchmark": "ni153",
        "timestamp": h.timestamp(),
        "machine": h.machine(**versions()),
        "setup": info,
        "repeat": args.repeat,
        "cores": args.cores,
        "method": {
            "geo_cs": "own subprocess pinned to --cores CPUs, DuckDB threads = cores; store opened "
                      "read-only; per run and geography: Panel(store, RateSource(4 groups, set)) + "
                      "ni153(store, panel, params=MethodParams()) for all applicable partnerships "
                      "(includes resolve()); one warm-up run, then --repeat timed runs. With --input "
                      "prepared (default) Panel finds the analysis-ready panel prepared at ingest "
                      "(geo_cs.panels; prepare_panel_seconds in setup) in the process's memory, where the "
                      "warm-up read it from the store (as the peer has its DataFrames in memory; a pass "
                      "reading it from the store again: pass_reading_prepared_panels_from_store); with "
                      "--input observations it builds the panel from the observations table every run",
            "one_partnership": "in the geo-cs process after the timed runs: ni153(store, panel, [p]) for "
                               "every applicable partnership, thresholds 20 and 30 (each nudged so no "
                               "cohort is cached) and baselines May 2006-Feb 2007 and May 2008-Feb 2009, on "
                               "a panel in use (what a map's threshold and baseline controls ask)",
            "rounds": "both processes stay alive; timed runs alternate between them (geo-cs first in "
                      "odd rounds, pandas first in even ones); the idle side blocks on its pipe",
            "pandas": "own subprocess pinned to --cores CPUs; with --input prepared the same analysis-ready "
                      "panel (area, period integer keys; count, denominator, rate; exported from "
                      "analysis_panels) with its codes and periods, else the observations (code, period_id, "
                      "indicator, value, denominator); and membership (from geo-cs partnership_groups, "
                      "computed in setup) read from Parquet into DataFrames before timing; per run and "
                      "geography: bench/ni153_pandas_peer.ni153_pandas_prepared (ni153_pandas from the "
                      "observations); one warm-up run, then --repeat timed runs",
            "peak_rss": "VmHWM of each side's subprocess at its end (not ru_maxrss: Linux carries "
                        "the parent's maxrss into a child across fork and exec); rss_after_load = "
                        "VmRSS after the inputs are loaded / the store is opened",
            "check": f"cohort_rate, rest_rate, gap, n_cohort, cohort_share per (partnership, period) "
                     f"equal within rtol {RTOL}, NaN == NaN",
        },
        "geo_cs": {**{k: v for k, v in g.items() if k != "profile"}, "median_seconds": round(geo_s, 4)},
        "pandas": {**p, "median_seconds": round(peer_s, 4)},
        "rows_compared": rows_compared,
        "ratio_pandas_over_geo_cs": round(ratio, 3),
        "paired_ratio_median": round(paired, 3),
        "input": args.input,
        "targets": {"seconds_max": TARGET_SECONDS, "ratio_min": TARGET_RATIO,
                    "one_partnership_ms_max": TARGET_ONE_MS},
        "pass": {"seconds": pass_time, "ratio": pass_ratio, "one_partnership": pass_one},
    }


def reusable_setup(workdir: Path, args: argparse.Namespace) -> dict[str, Any] | None:
    """The setup of an earlier run in a kept ``--workdir`` with the same seed and suppression."""
    path = workdir / "setup.json"
    if not path.exists() or not (workdir / "bench.duckdb").exists():
        return None
    info = json.loads(path.read_text())
    same = info.get("seed") == args.seed and info.get("suppressed_fraction") == args.suppressed
    return info if same else None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        return serve(args.child, args)

    console = Console() if sys.stdout.isatty() else Console(width=130)
    shared: Path = args.shared.resolve()
    needed = [shared / "boundaries" / b for b in BOUNDARIES] + [shared / "lookups" / x for x in LOOKUPS]
    absent = [str(p) for p in needed if not p.exists()]
    if absent:
        console.print(f"[red]shared data missing:[/] {', '.join(absent)}\n"
                      "Point --shared at the folder holding boundaries/ and lookups/ "
                      f"(default {DEFAULT_SHARED}).")
        return 2

    with tempfile.TemporaryDirectory(prefix="bench_ni153_") as tmp:
        workdir = (args.workdir or Path(tmp)).resolve()
        workdir.mkdir(parents=True, exist_ok=True)
        console.print(f"setup in {workdir} (not timed)")
        info = reusable_setup(workdir, args)
        reused = info is not None
        if info is None:
            for stale in workdir.glob("bench.duckdb*"):
                stale.unlink()
            info = build(workdir, shared, args.seed, args.suppressed, console)
            (workdir / "setup.json").write_text(json.dumps(info))
        else:
            console.log("reusing the store and inputs of an earlier run with the same seed")
        if args.input == "prepared":
            info["prepare_panel_seconds"] = prepare(workdir, console)
        console.log(f"setup: ingest {info['ingest_seconds']} s, synthetic panel "
                    f"{info['generate_seconds']} s, analysis-ready panels prepared in "
                    f"{info.get('prepare_panel_seconds')} s (what preparing adds to the ingest), "
                    f"store {info['store_mb']} MB")
        try:
            sides = run_rounds(workdir, args, console)
        except h.ChildFailed as exc:
            console.print(f"[red]a side failed:[/] {exc}")
            return 1
        rows, problems = compare(workdir)
        if problems:
            console.print("[red]geo-cs and the pandas peer disagree:[/]")
            for problem in problems:
                console.print(f"  {problem}")
            return 1
        results = report(args, console, info, sides["geo-cs"], sides["pandas"], rows)
        results["setup_reused_from_workdir"] = reused

    h.write_results(args.out, results, console)
    return 0


if __name__ == "__main__":
    sys.exit(main())
