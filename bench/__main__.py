"""Every benchmark of the project against its peer, then one table of ratios and targets.

    python -m bench                    # run them all (about 20 minutes on 2 cores), then the table
    python -m bench --only tiles,load  # some of them
    python -m bench --table            # only the table, from bench/results/*.json as they are
    python -m bench --table --strict   # ... and exit 1 when a result is dirty or older than its code

Each ``bench/bench_*.py`` runs in its own process (as a user would run it) and writes
``bench/results/<name>.json`` with its ``targets`` and whether each was met (``pass``); this reads
those files back. A benchmark that fails to run is reported and the others still run; the exit
status is 1 if any failed to run, else 0 (a missed target is a finding, not a failure).

Results come from clean trees only: on a tree with uncommitted changes nothing runs (and a
benchmark run by itself writes nothing) unless ``--allow-dirty``, whose results are marked dirty
and are not to be committed (``bench/_harness.py``, ``write_results``). The table says, per
result, what it was compared with (the peer and its version) and whether it still describes the
code: each benchmark's measured files are :data:`MEASURES` (a script and entry modules, with every
module of this repository they import, read from their imports); a result whose commit is older
than the last commit touching them is marked *stale*, one from a dirty tree *dirty*.
"""

from __future__ import annotations

import argparse
import ast
import functools
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
RESULTS = BENCH / "results"
sys.path.insert(0, str(BENCH))
import _harness as h  # noqa: E402  (a sibling module, as the benchmarks import it)

#: What each result (bench/results/<name>.json) measures: the script that writes it, and the
#: entry points of the code it runs that its imports do not show (the server it starts as
#: ``uvicorn geo_cs.api.app:create_app``, the CLI it runs as ``python -m geo_cs.cli``). Each entry
#: stands for itself and every file of this repository it imports (:func:`measured_paths`).
SERVER = "geo_cs.api.app"
MEASURES: dict[str, list[str]] = {
    "api_fuzz": ["bench/bench_api_fuzz.py", SERVER],
    "crosswalk_lsoa": ["bench/bench_crosswalk_lsoa.py"],
    "exports": ["bench/bench_exports.py", SERVER, "geo_cs.cli"],
    "features": ["bench/bench_features.py", SERVER],
    "first_visit": ["bench/bench_first_visit.py", SERVER, "geo_cs.cli"],
    "ingest_lsoa11": ["bench/bench_ingest_lsoa11.py"],
    "load": ["bench/bench_load.py", SERVER],
    "map_slider": ["bench/bench_map_slider.py", SERVER, "geo_cs.cli"],
    "memory": ["bench/bench_memory.py", SERVER, "geo_cs.cli"],
    "memory_gb": ["bench/bench_memory.py", SERVER, "bench/_gb_store.py"],
    "ni153": ["bench/bench_ni153.py", "bench/ni153_pandas_peer.py"],
    "soak": ["bench/bench_soak.py", SERVER],
    "tiles": ["bench/bench_tiles.py", SERVER],
}
#: files read (not imported) by a module: included with it
DATA_FILES = {"geo_cs/store.py": ["geo_cs/sql"], "maps/__init__.py": ["maps/static", "maps/templates"],
              "api/docs_page.py": ["api/templates"]}

#: The headline ratio of each benchmark's JSON: (key path, what it means).
HEADLINES = {
    "ingest_lsoa11": (("ratio",), "geo-cs time / ogr2ogr (VRT) time"),
    "ni153": (("ratio_pandas_over_geo_cs",), "pandas / geo-cs time, both from the observations"),
    "crosswalk_lsoa": (("speedup_tobler_over_geo_cs",), "tobler time / geo-cs time"),
    "tiles": (("ratio_of_medians",), "geo-cs prepared / PostGIS given the same prepared pieces"),
    "features": (("ratio_geo_cs_over_pygeoapi",),
                 "geo-cs / the faster pygeoapi provider, server time, no compression (identity)"),
    "load": (("results", "requests_per_second"), "req/s, 50 clients back to back: capacity"),
    "api_fuzz": (("results", "requests"), "schemathesis requests over HTTP"),
    "soak": (("results", "per_group", "tiles", "p99_ms"), "tile p99 ms, 100 people for 5 min"),
    "exports": (("pmtiles", "ratio_server_fetch_over_build"), "server one-by-one / PMTiles build"),
    "map_slider": (("ratio_warm_over_uncached",), "warm slider step / the step in a new view"),
    "memory": (("results", "peak_rss_mb"), "one worker's peak RSS, MB, 48 pages of 10,000 at once"),
    "memory_gb": (("results", "peak_rss_mb"), "the same on the GB store (bench_memory.py --gb)"),
    "first_visit": (("ratio_cold_peer_over_geo_cs",), "first map visit, no warm-up / warmed, median ms"),
}


def _module_files(name: str, near: Path | None = None) -> list[Path]:
    """The files of this repository that ``import name`` runs (packages' ``__init__.py`` and
    the module); ``near``: the importing file's folder, for sibling modules (bench/ scripts
    import ``_harness`` so)."""
    if near is not None and "." not in name and (near / f"{name}.py").exists():
        return [near / f"{name}.py"]
    parts = name.split(".")
    found = []
    # geo_cs.api and geo_cs.maps are the repository's api/ and maps/ (a wheel puts them inside
    # geo_cs/): importing them runs geo_cs/__init__.py, then the folder's files
    if parts[0] == "geo_cs" and parts[1:2] in (["api"], ["maps"]):
        found.append(REPO / "geo_cs" / "__init__.py")
        parts = parts[1:]
    for i in range(1, len(parts) + 1):
        base = REPO.joinpath(*parts[:i])
        if (base / "__init__.py").exists():
            found.append(base / "__init__.py")
        elif i == len(parts) and base.with_suffix(".py").exists():
            found.append(base.with_suffix(".py"))
        elif not base.is_dir():
            break
    return found


@functools.cache
def _imports(path: Path) -> list[Path]:
    """The repository files ``path`` imports (at the top or inside functions); read once."""
    try:
        tree = ast.parse(path.read_text(), str(path))
    except (OSError, SyntaxError):
        return []
    package = path.relative_to(REPO).parent.parts
    found: list[Path] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found += _module_files(alias.name, path.parent)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1] if node.level > 1 else package
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            found += _module_files(module, None if node.level else path.parent)
            for alias in node.names:
                found += _module_files(f"{module}.{alias.name}")
    return found


@functools.cache
def measured_paths(name: str) -> tuple[str, ...]:
    """The files (relative to the repository) benchmark ``name`` measures: its entries in
    :data:`MEASURES` and, transitively, every repository file they import, with the data files
    those read (:data:`DATA_FILES`)."""
    todo: list[Path] = []
    for entry in MEASURES.get(name, [f"bench/bench_{name}.py"]):
        todo += [REPO / entry] if "/" in entry else _module_files(entry)
    seen: set[Path] = set()
    while todo:
        path = todo.pop()
        if path in seen or not path.exists():
            continue
        seen.add(path)
        todo += _imports(path)
    paths = {str(p.relative_to(REPO)) for p in seen}
    for module, data in DATA_FILES.items():
        if module in paths:
            paths.update(data)
    return tuple(sorted(paths))


def _git(*args: str) -> tuple[int, str]:
    done = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True)
    return done.returncode, done.stdout.strip()


def _result_commit(data: dict) -> tuple[str | None, bool]:
    """The full hash of the commit a result was measured on (None when unknown) and whether
    it came from a dirty tree."""
    provenance = data.get("provenance") or {}
    # the benchmark's own "commit" first: bench_memory.py --at measures another commit's tree
    raw = str(data.get("commit") or provenance.get("commit") or _get(data, ("machine", "commit"))
              or _get(data, ("machine", "geo_cs_commit")) or "")
    if "clean" in provenance:
        # the harness's own judgement of the tree (bench/results/ and caches aside): a result's
        # ``commit`` from ``git describe --dirty`` counts the results that ``python -m bench``
        # wrote before it in the same run, which change nothing the benchmark measures
        dirty = provenance["clean"] is False or bool(data.get("dirty"))
    else:
        dirty = (bool(data.get("dirty")) or raw.endswith("-dirty")
                 or "-dirty" in str(data.get("commit", "")))
    raw = raw.removesuffix("-dirty")
    if "-g" in raw:  # git describe: <tag>-<n>-g<hash>
        raw = raw.rsplit("-g", 1)[1]
    if not raw or raw == "unknown":
        return None, dirty
    code, sha = _git("rev-parse", "--verify", "--quiet", f"{raw}^{{commit}}")
    return (sha if code == 0 else None), dirty


def code_state(name: str, data: dict) -> tuple[str, bool]:
    """Whether a result still describes the code it measures, for the table (rich markup), and
    whether it is committable (from a clean tree, not older than its code)."""
    sha, dirty = _result_commit(data)
    if sha is None:
        return "[red]unknown commit[/]", False
    paths = measured_paths(name)
    _, last = _git("log", "-1", "--format=%H", "--", *paths)
    notes = ["[red]dirty tree[/]"] if dirty else []
    stale = bool(last) and _git("merge-base", "--is-ancestor", last, sha)[0] != 0
    if stale:
        _, changed = _git("diff", "--name-only", sha, "HEAD", "--", *paths)
        files = changed.split()
        shown = ", ".join(files[:2]) + (f" +{len(files) - 2}" if len(files) > 2 else "")
        notes.append(f"[red]stale[/]: {len(files) or 'its'} measured files changed since (last in "
                     f"{last[:7]}){': ' + shown if shown else ''}")
    return ("; ".join(notes) or "[green]current[/]"), not notes


#: benchmarks that compare geo-cs with targets or with itself, not with another tool
WITHOUT_PEER = {"api_fuzz", "exports", "first_visit", "load", "map_slider", "memory", "memory_gb", "soak"}


def _peer(name: str, data: dict) -> str:
    peer = data.get("peer")
    if isinstance(peer, dict):
        return " ".join(str(x) for x in (peer.get("name"), peer.get("version")) if x)
    if name in WITHOUT_PEER:
        return "—"
    return "[red]not recorded[/]"


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


#: Rows beside the headline that a reader needs to judge it (the path a user gets by default).
MORE_HEADLINES = {
    "tiles": [(("default_path", "ratio_of_medians"),
               "default path, not prepared / PostGIS on the same band geometries")],
}


#: results under bench/results/ that are not benchmarks: the mutation score (scripts/mutation.py)
#: records the commit of each module it measured and is read in its own mutation.md
NOT_BENCHMARKS = {"mutation"}


def _benchmark_results() -> list[Path]:
    return [p for p in sorted(RESULTS.glob("*.json")) if p.stem not in NOT_BENCHMARKS]


def table(console: Console) -> Table:
    """The latest result of every benchmark: its commit and whether that still describes the
    code it measures, the peer, the headline ratio and each target met or missed."""
    out = Table(title="geo-cs benchmarks (bench/results/*.json)")
    for column in ("benchmark", "when", "commit", "code", "peer", "headline", "target", "met"):
        out.add_column(column)
    for path in _benchmark_results():
        data = json.loads(path.read_text())
        name = path.stem
        headlines = [HEADLINES.get(name, ((), "")), *MORE_HEADLINES.get(name, ())]
        values = [(_get(data, key) if key else None, meaning) for key, meaning in headlines]
        headline = "; ".join(f"{value:.3g} ({meaning})" for value, meaning in values
                             if isinstance(value, int | float))
        when = str(data.get("timestamp", ""))[:16]
        commit = str((data.get("provenance") or {}).get("commit") or data.get("commit")
                     or _get(data, ("machine", "commit")) or _get(data, ("machine", "geo_cs_commit"))
                     or "").removesuffix("-dirty")[:10]
        state, _ = code_state(name, data)
        first = [name, when, commit, state, _peer(name, data), headline]
        rows = _flatten(data.get("pass", {}))
        for i, (target, met) in enumerate(rows or [("", None)]):
            mark = "[green]met[/]" if met is True else "[red]missed[/]" if met is False else ""
            out.add_row(*(first if i == 0 else [""] * len(first)), target, mark)
    return out


def unfit_results() -> list[str]:
    """The results (names) that are dirty or older than the code they measure."""
    return [path.stem for path in _benchmark_results()
            if not code_state(path.stem, json.loads(path.read_text()))[1]]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help="comma-separated names (tiles, features, load, exports, ...)")
    parser.add_argument("--table", action="store_true", help="only print the table of the latest results")
    parser.add_argument("--strict", action="store_true",
                        help="exit 1 when a result is dirty or older than the code it measures")
    parser.add_argument("--allow-dirty", action="store_true",
                        help="for development: run on a tree with uncommitted changes; the results "
                             "are marked dirty and are not to be committed")
    parser.add_argument("--paths", metavar="NAME", help="print the files benchmark NAME measures and exit")
    args = parser.parse_args(argv)
    if args.paths:
        print("\n".join(measured_paths(args.paths)))
        return 0
    console = Console(width=200)  # the table is wide; piped output keeps it whole
    failed = []
    if not args.table:
        if args.allow_dirty:
            os.environ[h.ALLOW_DIRTY_ENV] = "1"  # the benchmarks' writer reads it
        h.require_clean(console)
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
    unfit = unfit_results() if args.strict else []
    if unfit:
        console.print(f"[red]dirty or older than the code they measure: {', '.join(unfit)}[/]")
    return 1 if failed or unfit else 0


if __name__ == "__main__":
    sys.exit(main())
