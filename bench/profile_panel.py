"""Where NI 153's time goes: the area-quarter panel, built several ways on the benchmark's store.

Not a benchmark (no peer, no target): the measurements behind the README's note that the panel
alone takes about half of what pandas needs for the whole NI 153 computation. On the store that
``bench_ni153.py --workdir DIR`` leaves in DIR (41,729 areas x 80 quarters x 4 benefit groups),
for LSOA 2011 (11.1 M rows into 2.78 M area-quarters), each variant is timed as
``CREATE TEMP TABLE ... AS`` (best of ``--repeat``), DuckDB threads = ``--cores``:

* the panel as ``geo_cs.analysis.Panel`` builds it (five aggregates);
* three aggregates, one aggregate;
* one concatenated text key instead of (code, period);
* integer keys through a join to code and period dictionaries;
* only the partnerships' areas (the membership ``bench_ni153.py`` wrote), five aggregates.

    python bench/bench_ni153.py --workdir /tmp/ni153w     # once, to build the store
    python bench/profile_panel.py --workdir /tmp/ni153w [--repeat 3] [--cores 2]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd

from geo_cs import analysis
from geo_cs.store import Store

GROUPS = ["synth.jsa", "synth.esa_ib", "synth.lone_parents", "synth.others"]
FIVE = ("CASE WHEN count(o.value) = count(*) THEN sum(o.value) END AS value, "
        "max(o.denominator) AS row_den, max(o.apportioned_share) AS estimated_share")
SCAN = "FROM observations o WHERE list_contains($counts, o.indicator_id) AND o.set_id = $set_id"
VARIANTS = {
    "as Panel() builds it (five aggregates)": analysis._PANEL_SQL_OWN_DENOMINATORS.split(" AS\n", 1)[1],
    "three aggregates": ("SELECT o.code, o.period_id, sum(o.value), count(o.value), max(o.denominator) "
                         f"{SCAN} GROUP BY o.code, o.period_id"),
    "one aggregate": f"SELECT o.code, o.period_id, sum(o.value) {SCAN} GROUP BY o.code, o.period_id",
    "one concatenated key": f"SELECT o.code || o.period_id AS k, sum(o.value) {SCAN} GROUP BY k",
    "integer keys through a join": (
        "SELECT c.cid * 128 + p.pid AS k, sum(o.value), count(o.value), max(o.denominator) "
        "FROM observations o JOIN geo_cs_codes c USING (code) JOIN geo_cs_periods p USING (period_id) "
        "WHERE list_contains($counts, o.indicator_id) AND o.set_id = $set_id GROUP BY k"),
    "the partnerships' areas only (five aggregates)": (
        f"SELECT o.code, o.period_id, {FIVE} {SCAN} AND o.code IN (SELECT code FROM geo_cs_members) "
        "GROUP BY o.code, o.period_id"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, required=True, help="the --workdir of bench_ni153.py")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cores", type=int, default=2)
    args = parser.parse_args()
    with Store.open(args.workdir / "bench.duckdb", read_only=True) as store:
        store.sql(f"SET threads = {int(args.cores)}")
        members = pd.read_parquet(args.workdir / "membership_lsoa2011.parquet")[["code"]].drop_duplicates()
        store.con.register("geo_cs_members", members)
        store.sql("CREATE TEMP TABLE geo_cs_codes AS SELECT code, row_number() OVER ()::INTEGER AS cid "
                  "FROM (SELECT DISTINCT code FROM observations WHERE set_id = 'lsoa2011')")
        store.sql("CREATE TEMP TABLE geo_cs_periods AS SELECT period_id, "
                  "row_number() OVER ()::INTEGER AS pid "
                  "FROM (SELECT DISTINCT period_id FROM observations WHERE set_id = 'lsoa2011')")
        params = {"counts": GROUPS, "set_id": "lsoa2011"}
        print(f"lsoa2011 panel, {len(members):,} partnership areas, threads {args.cores}, "
              f"best of {args.repeat}:")
        for name, sql in VARIANTS.items():
            query = "CREATE OR REPLACE TEMP TABLE geo_cs_panel_variant AS " + sql
            run_params = {**params, "is_rate": False, "periods": None} if "$is_rate" in sql else params
            best = float("inf")
            for _ in range(args.repeat):
                started = time.perf_counter()
                store.sql(query, run_params)
                best = min(best, time.perf_counter() - started)
            rows = store.sql("SELECT count(*) FROM geo_cs_panel_variant").fetchone()[0]
            print(f"  {best:6.2f} s  {rows:>10,} rows  {name}")


if __name__ == "__main__":
    main()
