"""Every benchmark of the project against its peer, then one table of ratios and targets.

    python -m bench                    # run them all (about 20 minutes on 2 cores), then the table
    python -m bench --only tiles,load  # some of them
    python -m bench --table            # only the table, from bench/results/*.json as they are

Each ``bench/bench_*.py`` runs in its own process (as a user would run it) and writes
``bench/results/<name>.json`` with its ``targets`` and whether each was met (``pass``); this reads
those files back. A benchmark that fails to run is reported and the others still run; the exit
status is 1 if any failed to run, else 0 (a missed target is a finding, not a failure).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"

#: The headline ratio of each benchmark's JSON: (key path, what it means).
HEADLINES = {
    "ingest_lsoa11": (("ratio",), "geo-cs time / ogr2ogr (VRT) time"),
    "ni153": (("ratio_pandas_over_geo_cs",), "pandas time / geo-cs time"),
    "crosswalk_lsoa": (("speedup_tobler_over_geo_cs",), "tobler time / geo-cs time"),
    "tiles": (("ratio_of_medians",), "geo-cs / PostGIS uncached median"),
    "features": (("ratio_geo_cs_over_pygeoapi",), "geo-cs / pygeoapi paging time"),
    "load": (("results", "requests_per_second"), "req/s, 50 clients back to back: capacity"),
    "api_fuzz": (("results", "requests"), "schemathesis requests over HTTP"),
    "soak": (("results", "per_group", "tiles", "p99_ms"), "tile p99 ms, 100 people for 5 min"),
    "exports": (("pmtiles", "ratio_server_fetch_over_build"), "server one-by-one / PMTiles build"),
    "map_slider": (("ratio_warm_over_uncached",), "warm slider step / the step in a new view"),
    "memory": (("results", "peak_rss_mb"), "one worker's peak RSS, MB, 48 pages of 10,000 at once"),
    "memory_gb": (("results", "peak_rss_mb"), "the same on the GB store (bench_memory.py --gb)"),
    "first_visit": (("ratio_cold_peer_over_geo_cs",), "first map visit, no warm-up / warmed, median ms"),
}


def _get(data: dict, path: tuple[str, ...]):
    for key in path:
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data


def _flatten(passes, prefix: str = "") -> list[tuple[str, bool | None]]:
    if isinstance(passes, dict):
        out = []
        for key, value in passes.items():
            out += _flatten(value, f"{prefix}{key}." if isinstance(value, dict) else f"{prefix}{key}")
        return out
    return [(prefix.rstrip(".") or "target", passes)]


def table(console: Console) -> Table:
    """The latest result of every benchmark: headline ratio and each target met or missed."""
    out = Table(title="geo-cs benchmarks (bench/results/*.json)")
    for column in ("benchmark", "when", "commit", "headline", "target", "met"):
        out.add_column(column)
    for path in sorted(RESULTS.glob("*.json")):
        data = json.loads(path.read_text())
        name = path.stem
        key, meaning = HEADLINES.get(name, ((), ""))
        value = _get(data, key) if key else None
        headline = f"{value:.3g} ({meaning})" if isinstance(value, int | float) else ""
        when = str(data.get("timestamp", ""))[:16]
        commit = str(data.get("commit") or _get(data, ("machine", "commit"))
                     or _get(data, ("machine", "geo_cs_commit")) or "")[:12]
        rows = _flatten(data.get("pass", {}))
        for i, (target, met) in enumerate(rows or [("", None)]):
            mark = "[green]met[/]" if met is True else "[red]missed[/]" if met is False else ""
            out.add_row(name if i == 0 else "", when if i == 0 else "", commit if i == 0 else "",
                        headline if i == 0 else "", target, mark)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help="comma-separated names (tiles, features, load, exports, ...)")
    parser.add_argument("--table", action="store_true", help="only print the table of the latest results")
    args = parser.parse_args(argv)
    console = Console(width=170)  # the table is wide; piped output keeps it whole
    failed = []
    if not args.table:
        scripts = sorted(BENCH.glob("bench_*.py"))
        if args.only:
            wanted = {n.strip() for n in args.only.split(",")}
            scripts = [s for s in scripts if s.stem.removeprefix("bench_") in wanted]
        for script in scripts:
            console.rule(script.name)
            started = time.monotonic()
            code = subprocess.call([sys.executable, str(script)], cwd=BENCH.parent)
            console.print(f"{script.name}: exit {code} after {time.monotonic() - started:.0f} s")
            if code != 0:
                failed.append(script.name)
    console.print(table(console))
    if failed:
        console.print(f"[red]failed to run: {', '.join(failed)}[/]")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
