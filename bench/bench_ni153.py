"""Benchmark: the full NI 153 gap series for every partnership, geo-cs against plain pandas,
each side given the same input, twice: from the observations, and from prepared matrices.

What is measured
----------------
A seeded synthetic quarterly panel for all 41,729 GB small areas (34,753 LSOA 2011 in England
and Wales + 6,976 data zones 2011 in Scotland) x 80 DWP quarters (Feb 2000 - Nov 2019) x 4
benefit groups (JSA, ESA/IB, lone parents, others) is written into the ``observations`` table of
a fresh geo-cs store, which also holds the real boundaries and lookups the partnerships resolve
through. Then, for both geographies (LSOA 2011 for the English and Welsh partnerships, data
zones 2011 for the Scottish ones), the NI 153 table — per partnership and quarter the cohort's
rate, the rest's rate, the gap, the number of cohort areas and their share of the working-age
population, on the report's baseline May 2006 - Feb 2007 and threshold 25% — is computed by
geo-cs and by a plain pandas peer (``bench/ni153_pandas_peer.py``), in two rows, each side
given the same input in a row:

1. **from the observations** (13.35 M long rows: one per area, quarter and benefit group):

   * **geo-cs**, the path a user gets by default: ``Panel(store, RateSource(<4 groups>,
     set_id))`` then ``ni153(store, panel, params=MethodParams())`` for all applicable
     partnerships, on a store whose panels are not prepared (as after any ingest). The time
     covers everything from the store's ``observations`` table to the final per-partnership
     table: building the panel from the observations (``geo_cs.panels.observed_panel``: the
     observations read with integer keys and summed into area × quarter arrays), the baseline
     cohort, the aggregation, intervals, flags and provenance. Each timed run builds its panels
     again (they are dropped after each run).
   * **pandas**: ``ni153_pandas`` on the same observations (code, period_id, indicator, value,
     denominator, read from the store into Parquet during setup) as DataFrames in memory:
     group-by of the benefit groups into area-quarters, then steps 2-5.

2. **from prepared matrices** (the area × quarter arrays ``geo-cs analyse prepare`` stores,
   ``geo_cs.panels``; preparing them is timed once and reported, as what it adds to an ingest):

   * **geo-cs**: the same calls, on the store with the panels prepared: ``Panel`` finds the
     prepared arrays, read from the store in the untimed warm-up and kept in the process (a
     pass that reads them from the store first is reported too).
   * **pandas**: ``ni153_pandas_matrices`` on the very same arrays (count, denominator, rate:
     exported from geo-cs's loaded panel) as three DataFrames, rows the areas, columns the
     quarters, in memory.

In both rows the partnerships' membership comes from geo-cs's ``partnership_groups`` once, in
setup, and is given to the peer as data: the peer does *not* pay for resolution, while geo-cs
resolves in every run (cached per connection after its warm-up; the cold cost is reported).

Each side runs in its own fresh Python process, pinned to ``--cores`` CPUs (DuckDB ``threads``
set to the same). Both are warm: each loads its inputs and runs the whole computation once
untimed; then the parent alternates ``--repeat`` timed runs between the two processes (geo-cs
first in odd rounds, the peer first in even ones; the idle one blocks on its pipe), so both meet
the same machine conditions. The median of the per-run totals (both geographies) is reported,
with process CPU time and the median of the paired per-round ratios. Peak memory is each
process's own high-water RSS (VmHWM, read as it finishes; ``ru_maxrss`` would not do, as Linux
carries the parent's into a child): the interpreter, its inputs and the computation. The rows
run one after the other (the store is prepared between them); each row's ratio is from its
own rounds.

After the timed runs, in each row's geo-cs process: one partnership's cohort and gap recomputed
for a new threshold or baseline (``ni153(store, panel, [partnership])`` on a panel in use, what
the map's threshold and baseline controls ask), every applicable partnership, thresholds 20 and
30, two baselines.

The results of the two sides are checked equal in each row (cohort_rate, rest_rate, gap,
n_cohort, cohort_share per partnership and quarter, within 1e-9 relative, NaN equal to NaN);
any difference stops the benchmark with exit status 1. Targets (issue 32): from the
observations, geo-cs not slower than pandas (pandas / geo-cs >= 1) and <= 2 s on 2 cores;
one partnership's recompute <= 20 ms (median, in both rows). The matrices row is reported
without a target. Results are printed and written to ``bench/results/ni153.json``, with what
each side was given in each row.

Exit status: 0 whether or not the targets are met, 1 on a mismatch or failure, 2 when the
shared data folder is missing, 3 when the tree has uncommitted changes (``--allow-dirty``).

Run from the repository root (about 10 minutes on 2 quiet cores, 5 of them building the store;
``--workdir DIR`` keeps the store for the next run)::

    python bench/bench_ni153.py [--shared DIR] [--seed 1] [--repeat 5] [--cores 2] [--workdir DIR]
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
#: issue 32: from the observations, geo-cs not slower than pandas, and within 2 s (issue 3)
TARGET_SECONDS, TARGET_RATIO = 2.0, 1.0
#: issue 32: one partnership's recompute for a new threshold or baseline (the map's controls)
TARGET_ONE_MS = 20.0
#: the two rows: what both sides start from
INPUTS = ("observations", "matrices")
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


def unprepare(workdir: Path) -> None:
    """Drop the prepared panels (left by an earlier run in a kept ``--workdir``): the
    observations row runs on a store as an ingest leaves it."""
    from geo_cs.panels import drop_prepared
    from geo_cs.store import Store

    with Store.open(workdir / "bench.duckdb") as store:
        with store.transaction():
            for set_id in SETS:
                drop_prepared(store, set_id)
        store.sql("CHECKPOINT")


def prepare(workdir: Path, console: Console) -> dict[str, float]:
    """The prepared panels (geo_cs.panels), as ``geo-cs analyse prepare`` makes them, and the
    peer's copy of the same matrices (exported from the panel as geo-cs loads it); returns the
    seconds preparing each took (what it adds to an ingest)."""
    from geo_cs.analysis import Panel, RateSource
    from geo_cs.panels import forget_loaded, load_dense, panel_key, prepare_panel, prepared_token
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
            console.log(f"{set_id}: panel prepared in {seconds[set_id]} s")
            key = panel_key(set_id, list(GROUPS), None, False)
            dense = load_dense(store, key, prepared_token(store, key))
            np.savez(workdir / f"matrices_{set_id}.npz", count=dense.count, denominator=dense.denominator,
                     rate=dense.rate)
            (workdir / f"matrices_{set_id}.json").write_text(
                json.dumps({"codes": dense.codes.tolist(), "periods": dense.period_ids}))
        forget_loaded()
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
    """geo-cs as the user calls it: Panel + ni153 per geography, on the store (its panels
    prepared or not: the row's input)."""

    def __init__(self, workdir: Path, cores: int, source: str) -> None:
        from geo_cs.panels import panel_key, prepared_token
        from geo_cs.store import Store

        self.store = Store.open(workdir / "bench.duckdb", read_only=True)
        self.store.sql(f"SET threads = {int(cores)}")
        self.source = source
        prepared = [s for s in SETS if prepared_token(self.store, panel_key(s, list(GROUPS), None, False))]
        if prepared != ([*SETS] if source == "matrices" else []):
            raise RuntimeError(f"{source} row: panels prepared for {prepared or 'no set'}")

    def one_pass(self, drop: bool = True, from_store: bool = False) -> tuple[dict[str, float],
                                                                             dict[str, pd.DataFrame]]:
        """Panel + ni153 for both geographies, as a user calls them. The panels are dropped
        afterwards (which releases panels built from the observations, so that the next pass
        builds them again); ``drop=False`` leaves them in use for the next pass."""
        from geo_cs.analysis import MethodParams, Panel, RateSource, ni153
        from geo_cs.panels import forget_loaded

        seconds, tables, panels = {}, {}, []
        if from_store:
            forget_loaded()  # the prepared panels are read from the store again
        cpu0 = time.process_time()
        for set_id in SETS:
            t0 = time.perf_counter()
            panel = Panel(self.store, RateSource(GROUPS, set_id))
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
        cpu: list[float] = []
        worst = {"ms": 0.0}
        k = 0
        for set_id in SETS:
            panel = Panel(self.store, RateSource(GROUPS, set_id))
            for partnership in applicable(set_id):
                for baseline in baselines:
                    for threshold in (20.0, 30.0):
                        k += 1
                        params = MethodParams(threshold=threshold + k * 1e-4, baseline=baseline)
                        t0, c0 = time.perf_counter(), time.process_time()
                        table = ni153(self.store, panel, [partnership], params=params)
                        ms = (time.perf_counter() - t0) * 1000
                        times.append(ms)
                        cpu.append((time.process_time() - c0) * 1000)
                        if ms > worst["ms"]:
                            worst = {"ms": round(ms, 2), "partnership": partnership.id,
                                     "threshold": threshold, "baseline": list(baseline), "rows": len(table)}
            panel.drop()
        return {"recomputes": len(times), "median_ms": round(statistics.median(times), 2),
                "p90_ms": round(float(np.percentile(times, 90)), 2), "max_ms": round(max(times), 2),
                # CPU time of the process (all threads): what a busy machine does not inflate
                "median_cpu_ms": round(statistics.median(cpu), 2), "slowest": worst}

    @staticmethod
    def steps() -> list[tuple[Any, str, str]]:
        """The functions inside ni153 to time (inclusive), with their labels."""
        from geo_cs import analysis, panels

        return [
            (analysis.Panel, "__init__", "Panel()"),
            (analysis, "observed_keys", "observed_keys() (in Panel(): codes, periods, checks)"),
            (analysis, "observed_panel", "observed_panel() (in Panel(): the arrays)"),
            (analysis, "load_dense", "load_dense() (in Panel(): prepared arrays from the store)"),
            (analysis, "_applicable", "_applicable() (partnerships of the panel's nations)"),
            (analysis, "worst_cohort", "worst_cohort()"),
            (analysis, "partnership_groups", "partnership_groups()"),
            (analysis, "resolve", "resolve() (inside partnership_groups)"),
            (panels.DensePanel, "ni153_wide", "DensePanel.ni153_wide()"),
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
        """One more pass with inclusive timers on the steps inside ni153; the one-partnership
        recomputes; optionally cProfile."""
        with instrumented(self.steps()) as stats:
            t0 = time.perf_counter()
            self.one_pass()
            total = time.perf_counter() - t0
        out: dict[str, Any] = {
            "one_partnership": self.one_partnership(),
            "cold_pass": self.cold,
            "duckdb_threads": self.store.sql("SELECT current_setting('threads')").fetchone()[0],
            "breakdown_total_seconds": round(total, 4),
            "breakdown": {label: {"calls": int(c), "seconds": round(sec, 4)}
                          for label, (c, sec) in stats.items()},
        }
        if self.source == "matrices":
            # a pass that first reads the prepared panels from the store (once per process and
            # preparation; the timed runs find them in the process, as the peer has its input)
            loaded, _ = self.one_pass(from_store=True)
            out["pass_reading_prepared_panels_from_store"] = {k: round(v, 4) for k, v in loaded.items()}
        else:
            # for information: a pass on panels already in use (built by an earlier call and not
            # yet dropped), what a repeated call on the same connection costs
            self.one_pass(drop=False)
            cached, _ = self.one_pass(drop=True)
            out["pass_on_panels_in_use"] = {k: round(v, 4) for k, v in cached.items()}
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
    """The plain pandas peer, from DataFrames loaded before any timing: the observations, or
    the matrices geo-cs prepared (the row's input)."""

    def __init__(self, workdir: Path, keys: str, source: str) -> None:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from ni153_pandas_peer import ni153_pandas, ni153_pandas_matrices

        self.ni153_pandas = ni153_pandas
        self.ni153_pandas_matrices = ni153_pandas_matrices
        self.source = source
        self.periods = json.loads((workdir / "periods.json").read_text())
        self.inputs: dict[str, tuple[Any, ...]] = {}
        for set_id in SETS:
            membership = pd.read_parquet(workdir / f"membership_{set_id}.parquet")
            if source == "matrices":  # the very arrays geo-cs computes on, as DataFrames
                meta = json.loads((workdir / f"matrices_{set_id}.json").read_text())
                arrays = np.load(workdir / f"matrices_{set_id}.npz")
                index = pd.Index(meta["codes"], name="code")
                frames = [pd.DataFrame(arrays[name], index=index, columns=meta["periods"])
                          for name in ("count", "denominator", "rate")]
                self.inputs[set_id] = (*frames, membership)
                continue
            obs = pd.read_parquet(workdir / f"observations_{set_id}.parquet")
            if keys == "category":
                obs = obs.astype({"code": "category", "period_id": "category", "indicator": "category"})
            self.inputs[set_id] = (obs, membership)

    def one_pass(self) -> tuple[dict[str, float], dict[str, pd.DataFrame]]:
        seconds, tables = {}, {}
        cpu0 = time.process_time()
        for set_id, given in self.inputs.items():
            t0 = time.perf_counter()
            if self.source == "matrices":
                count, denominator, rate, membership = given
                tables[set_id] = self.ni153_pandas_matrices(count, denominator, rate, membership,
                                                            baseline=BASELINE)
            else:
                obs, membership = given
                tables[set_id] = self.ni153_pandas(obs, self.periods, membership, baseline=BASELINE)
            seconds[set_id] = time.perf_counter() - t0
        seconds["cpu"] = time.process_time() - cpu0
        return seconds, tables

    def warm(self) -> None:
        self.one_pass()

    def extras(self, profile: bool) -> dict[str, Any]:
        first = self.inputs["lsoa2011"][0]
        return {"input": self.source, "input_rows": {k: len(v[0]) for k, v in self.inputs.items()},
                "input_dtypes": {str(c): str(t) for c, t in list(first.dtypes.items())[:6]}}


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
    side = GeoCsSide(args.workdir, args.cores, args.input) if side_name == "geo-cs" else PandasSide(
        args.workdir, args.peer_keys, args.input)
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
                    args.workdir / f"result_{args.input}_{tag}_{set_id}.parquet", index=False)
            extras = side.extras(args.profile)
            send({**extras, "result_rows": {k: len(v) for k, v in tables.items()},
                  "peak_rss_mb": round(h.proc_status_mb("VmHWM"), 1)})
            return 0
    return 1


def run_rounds(workdir: Path, args: argparse.Namespace, source: str,
               console: Console) -> dict[str, dict[str, Any]]:
    """Start both sides of a row (each loads ``source`` and warms up), then alternate their
    timed runs.

    Round i runs geo-cs then pandas, round i+1 pandas then geo-cs, so that both sides meet the
    same machine conditions (other processes, thermal state) as far as possible. The idle side
    waits on its pipe and uses no CPU.
    """
    children: dict[str, h.Child] = {}
    try:
        for side in ("geo-cs", "pandas"):
            with console.status(f"{source}: {side} loading and warming up"):
                children[side] = h.Child(__file__, side, workdir, [
                    "--cores", str(args.cores), "--peer-keys", args.peer_keys, "--input", source,
                    *(["--profile"] if args.profile else [])])

        def with_total(seconds: dict[str, float]) -> dict[str, float]:
            return {**seconds, "total": sum(v for k, v in seconds.items() if k in SETS)}

        runs, loads = h.alternate_runs(
            children, args.repeat, console, measure=with_total,
            report=lambda runs: f"from the {source}: geo-cs {runs['geo-cs'][-1]['total']:.3f} s, "
                                f"pandas {runs['pandas'][-1]['total']:.3f} s")
        return h.finish_children(children, runs, loads, console)
    finally:
        for child in children.values():
            child.close()


# -- comparison and report -----------------------------------------------------------------------

def compare(workdir: Path, source: str) -> tuple[int, list[str]]:
    """Rows compared and a description of every mismatch (empty when equal), in one row."""
    problems: list[str] = []
    rows = 0
    for set_id in SETS:
        ours = pd.read_parquet(workdir / f"result_{source}_geo_cs_{set_id}.parquet")
        peer = pd.read_parquet(workdir / f"result_{source}_pandas_{set_id}.parquet")
        keys = ["partnership", "period_id"]
        both = ours.merge(peer, on=keys, how="outer", suffixes=("_geo", "_peer"), indicator=True)
        only = both[both["_merge"] != "both"]
        if len(only):
            problems.append(f"{source}, {set_id}: {len(only)} (partnership, period) rows on one side only, "
                            f"e.g. {only[[*keys, '_merge']].head(3).to_dict('records')}")
        both = both[both["_merge"] == "both"]
        rows += len(both)
        for col in COMPARED:
            a = both[f"{col}_geo"].astype(float).to_numpy()
            b = both[f"{col}_peer"].astype(float).to_numpy()
            same = np.isclose(a, b, rtol=RTOL, atol=0.0) | (np.isnan(a) & np.isnan(b))
            if not same.all():
                bad = both.loc[~same, [*keys, f"{col}_geo", f"{col}_peer"]]
                problems.append(f"{source}, {set_id}: {col} differs in {len(bad)} rows, e.g. "
                                f"{bad.head(3).to_dict('records')}")
    return rows, problems


def versions() -> dict[str, str]:
    import duckdb

    return {"python": platform.python_version(), "duckdb": duckdb.__version__,
            "pandas": pd.__version__, "numpy": np.__version__, "pyarrow": pa.__version__,
            "geo_cs_commit": h.git_commit()}


def median_of(result: dict[str, Any], key: str) -> float:
    return statistics.median(run[key] for run in result["runs"])


#: what each side is given in each row (the results say it per row)
GIVEN = {
    "observations": {
        "geo_cs": "the store, its panels not prepared (as after an ingest): Panel() builds each "
                  "geography's area x quarter panel from the 13.35 M observations in every run "
                  "(geo_cs.panels.observed_panel), then ni153()",
        "pandas": "the same 13.35 M observations (code, period_id, indicator, value, denominator) "
                  "as DataFrames in memory, and the membership table: ni153_pandas() groups them "
                  "into area-quarters in every run",
    },
    "matrices": {
        "geo_cs": "the store with its panels prepared (geo-cs analyse prepare): Panel() finds the "
                  "area x quarter arrays, read from the store in the untimed warm-up and kept in "
                  "the process, then ni153()",
        "pandas": "the very same area x quarter arrays (count, denominator, rate, exported from "
                  "geo-cs's loaded panel) as three DataFrames in memory, and the membership "
                  "table: ni153_pandas_matrices()",
    },
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shared", type=Path, default=DEFAULT_SHARED,
                        help=f"folder with boundaries/ and lookups/ (default {DEFAULT_SHARED})")
    parser.add_argument("--seed", type=int, default=1, help="seed of the synthetic panel (default 1)")
    parser.add_argument("--repeat", type=int, default=5,
                        help="timed runs per side and row after a warm-up (default 5)")
    parser.add_argument("--cores", type=int, default=2,
                        help="CPUs each side is pinned to, and DuckDB threads (default 2)")
    parser.add_argument("--suppressed", type=float, default=0.0005,
                        help="share of observations suppressed (NULL), as DWP does (default 0.0005)")
    parser.add_argument("--peer-keys", choices=["str", "category"], default="str",
                        help="dtype of the peer's key columns in the observations row: pandas' default "
                             "string dtype as read from Parquet, or categoricals (default str)")
    parser.add_argument("--input", choices=["both", *INPUTS], default="both",
                        help="the rows to run: from the observations, from prepared matrices, or both "
                             "(default both; a result needs both)")
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


def row_record(source: str, g: dict[str, Any], p: dict[str, Any], rows_compared: int) -> dict[str, Any]:
    """One row of the result: what each side was given, their runs and the ratio."""
    geo_s, peer_s = median_of(g, "total"), median_of(p, "total")
    paired = statistics.median(b["total"] / a["total"] for a, b in zip(g["runs"], p["runs"], strict=True))
    return {
        "given": GIVEN[source],
        "geo_cs": {**{k: v for k, v in g.items() if k != "profile"}, "median_seconds": round(geo_s, 4),
                   "median_cpu_seconds": round(median_of(g, "cpu"), 4)},
        "pandas": {**p, "median_seconds": round(peer_s, 4),
                   "median_cpu_seconds": round(median_of(p, "cpu"), 4)},
        "ratio_pandas_over_geo_cs": round(peer_s / geo_s, 3),
        "paired_ratio_median": round(paired, 3),
        "rows_compared": rows_compared,
    }


def report(args: argparse.Namespace, console: Console, info: dict[str, Any],
           rows: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Print the results tables and return the JSON record."""
    panel_rows = sum(s["panel_rows"] for s in info["sets"].values())
    observations = sum(s["observations"] for s in info["sets"].values())
    table = Table(title=f"NI 153, all partnerships, {panel_rows:,} area-quarters ({observations:,} "
                        f"observations); median of {args.repeat} warm runs, {args.cores} cores")
    for col, justify in (("input (each side given the same)", "left"), ("side", "left"),
                         ("median s", "right"), ("lsoa2011 s", "right"), ("datazone2011 s", "right"),
                         ("CPU s", "right"), ("pandas / geo-cs", "right"), ("peak RSS MB", "right")):
        table.add_column(col, justify=justify)
    for source, row in rows.items():
        label = {"observations": f"from the observations ({observations / 1e6:.2f} M long rows)",
                 "matrices": "from prepared area x quarter matrices"}[source]
        for i, (name, side) in enumerate((("geo-cs", "geo_cs"), ("pandas", "pandas"))):
            res = row[side]
            table.add_row(label if i == 0 else "", name, f"{median_of(res, 'total'):.3f}",
                          f"{median_of(res, 'lsoa2011'):.3f}", f"{median_of(res, 'datazone2011'):.3f}",
                          f"{median_of(res, 'cpu'):.3f}",
                          f"{row['ratio_pandas_over_geo_cs']:.2f}x (paired {row['paired_ratio_median']:.2f}x)"
                          if i == 0 else "", f"{res['peak_rss_mb']:.0f}")
    console.print(table)
    for source, row in rows.items():
        console.print(f"[bold]{source}[/]: geo-cs given {row['given']['geo_cs']}; pandas given "
                      f"{row['given']['pandas']}. Results equal on {row['rows_compared']:,} "
                      f"(partnership, quarter) rows (rtol {RTOL}).")
    load = statistics.median(x for row in rows.values() for x in row["geo_cs"]["loadavg_1min"])
    busy = "; [yellow]other processes competed for the CPUs[/]" if load > args.cores + 1 else ""
    console.print(f"Timed runs alternate between the two sides' processes (median 1-minute load "
                  f"average {load:.1f} on {os.cpu_count()} CPUs{busy}). Peak RSS = each process's VmHWM; "
                  "CPU s = process CPU time, all threads (median).")

    def verdict(ok: bool | None) -> str:
        return "[green]PASS[/]" if ok else "[dim]not run[/]" if ok is None else "[red]FAIL[/]"

    targets = Table(title="Targets (issue 32)")
    for col in ("target", "measured", "verdict"):
        targets.add_column(col)
    passes: dict[str, Any] = {}
    obs = rows.get("observations")
    if obs is not None:
        geo_s = obs["geo_cs"]["median_seconds"]
        passes["not_slower_from_observations"] = obs["ratio_pandas_over_geo_cs"] >= TARGET_RATIO
        passes["seconds_from_observations"] = geo_s <= TARGET_SECONDS
        targets.add_row("from the observations, geo-cs not slower than pandas",
                        f"{obs['ratio_pandas_over_geo_cs']:.2f}x (pandas / geo-cs)",
                        verdict(passes["not_slower_from_observations"]))
        targets.add_row(f"from the observations, geo-cs <= {TARGET_SECONDS:g} s on {args.cores} cores",
                        f"{geo_s:.3f} s", verdict(passes["seconds_from_observations"]))
    for source, row in rows.items():
        one = row["geo_cs"]["one_partnership"]
        passes[f"one_partnership_{source}"] = one["median_ms"] <= TARGET_ONE_MS
        targets.add_row(f"one partnership's recompute, new threshold or baseline <= {TARGET_ONE_MS:g} ms "
                        f"(median; {source})",
                        f"median {one['median_ms']:.1f} ms, p90 {one['p90_ms']:.1f}, max {one['max_ms']:.1f} "
                        f"(CPU median {one['median_cpu_ms']:.1f}; {one['recomputes']} recomputes)",
                        verdict(passes[f"one_partnership_{source}"]))
    console.print(targets)

    for source, row in rows.items():
        g = row["geo_cs"]
        steps = Table(title=f"Where geo-cs's time goes from the {source} (one instrumented pass, "
                            f"{g['breakdown_total_seconds']:.3f} s; inclusive, nested steps overlap)")
        for col, justify in (("step", "left"), ("calls", "right"), ("seconds", "right"), ("share", "right")):
            steps.add_column(col, justify=justify)
        for label, entry in sorted(g["breakdown"].items(), key=lambda kv: -kv[1]["seconds"]):
            steps.add_row(label, str(entry["calls"]), f"{entry['seconds']:.3f}",
                          f"{entry['seconds'] / g['breakdown_total_seconds']:.0%}")
        console.print(steps)
        label = "resolve() (inside partnership_groups)"
        cold_resolve = g["cold_pass"]["steps"].get(label, {}).get("seconds", 0.0)
        console.print(f"resolve(): {cold_resolve:.3f} s in the first (cold) pass of "
                      f"{g['cold_pass']['total_seconds']:.3f} s, cached after it (per connection and "
                      "data version); the peer is given membership and never pays it.")
        if g.get("profile"):
            console.print(g["profile"])

    headline = obs or next(iter(rows.values()))
    return {
        "benchmark": "ni153",
        "timestamp": h.timestamp(),
        "machine": h.machine(**versions()),
        "setup": info,
        "repeat": args.repeat,
        "cores": args.cores,
        "method": {
            "rows": "one row per input, both sides given the same input in a row: from the observations "
                    "(store without prepared panels; pandas from the same long rows) and from prepared "
                    "matrices (store with its panels prepared; pandas from the same arrays); the rows run "
                    "one after the other, each with its own pair of processes",
            "sides": "each side in its own subprocess pinned to --cores CPUs (DuckDB threads = cores), "
                     "store opened read-only; per run and geography geo-cs calls Panel(store, "
                     "RateSource(4 groups, set)) + ni153(store, panel, params=MethodParams()) for all "
                     "applicable partnerships (resolve() included, cached after the warm-up), the peer "
                     "ni153_pandas (observations) or ni153_pandas_matrices (matrices) with membership from "
                     "geo-cs's partnership_groups computed in setup; one warm-up run, then --repeat "
                     "timed runs",
            "rounds": "both processes of a row stay alive; timed runs alternate between them (geo-cs first "
                      "in odd rounds, pandas first in even ones); the idle side blocks on its pipe",
            "one_partnership": "in each row's geo-cs process after the timed runs: ni153(store, panel, [p]) "
                               "for every applicable partnership, thresholds 20 and 30 (each nudged so no "
                               "cohort is cached) and baselines May 2006-Feb 2007 and May 2008-Feb 2009, on "
                               "a panel in use (what a map's threshold and baseline controls ask)",
            "peak_rss": "VmHWM of each side's subprocess at its end",
            "check": f"cohort_rate, rest_rate, gap, n_cohort, cohort_share per (partnership, period) "
                     f"equal within rtol {RTOL}, NaN == NaN, in each row",
        },
        "rows": rows,
        # the headline: both sides from the observations
        "ratio_pandas_over_geo_cs": headline["ratio_pandas_over_geo_cs"],
        "paired_ratio_median": headline["paired_ratio_median"],
        "input": list(rows),
        "targets": {"ratio_min_from_observations": TARGET_RATIO,
                    "seconds_max_from_observations": TARGET_SECONDS,
                    "one_partnership_median_ms_max": TARGET_ONE_MS},
        "pass": passes,
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
    h.require_clean(console)  # before the long run: a dirty tree's result would not be written
    shared: Path = args.shared.resolve()
    needed = [shared / "boundaries" / b for b in BOUNDARIES] + [shared / "lookups" / x for x in LOOKUPS]
    absent = [str(p) for p in needed if not p.exists()]
    if absent:
        console.print(f"[red]shared data missing:[/] {', '.join(absent)}\n"
                      "Point --shared at the folder holding boundaries/ and lookups/ "
                      f"(default {DEFAULT_SHARED}).")
        return 2
    sources = list(INPUTS) if args.input == "both" else [args.input]

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
        console.log(f"setup: ingest {info['ingest_seconds']} s, synthetic panel "
                    f"{info['generate_seconds']} s, store {info['store_mb']} MB")
        rows: dict[str, dict[str, Any]] = {}
        try:
            for source in sources:
                if source == "observations":
                    unprepare(workdir)
                else:
                    info["prepare_panel_seconds"] = prepare(workdir, console)
                    console.log(f"panels prepared in {info['prepare_panel_seconds']} s (what preparing "
                                "adds to an ingest)")
                sides = run_rounds(workdir, args, source, console)
                compared, problems = compare(workdir, source)
                if problems:
                    console.print(f"[red]geo-cs and the pandas peer disagree ({source}):[/]")
                    for problem in problems:
                        console.print(f"  {problem}")
                    return 1
                rows[source] = row_record(source, sides["geo-cs"], sides["pandas"], compared)
        except h.ChildFailed as exc:
            console.print(f"[red]a side failed:[/] {exc}")
            return 1
        results = report(args, console, info, rows)
        results["setup_reused_from_workdir"] = reused

    peer = h.peer("pandas", pd.__version__, "; ".join(f"{s}: {GIVEN[s]['pandas']}" for s in rows),
                  numpy=np.__version__, pyarrow=pa.__version__, keys=args.peer_keys,
                  functions={"observations": "bench/ni153_pandas_peer.py:ni153_pandas",
                             "matrices": "bench/ni153_pandas_peer.py:ni153_pandas_matrices"},
                  cores=args.cores, process="its own subprocess, pinned like geo-cs's")
    if args.input != "both" and args.out == DEFAULT_OUT:
        console.print(f"[yellow]one row only (--input {args.input}): not written to {args.out} (a result "
                      "has both rows); give --out to keep it[/]")
        return 0
    h.write_results(args.out, results, console, peer=peer)
    return 0


if __name__ == "__main__":
    sys.exit(main())
