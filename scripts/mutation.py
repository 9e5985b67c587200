"""The mutation score of the modules that decide what users read (issue 31, point 4).

mutmut 3 changes one operator, number, string or argument of a function at a time (a *mutant*)
and runs the tests that call that function: a mutant no test notices (*survived*) is a wrong
answer the suite would let through. This script runs it over

    geo_cs/stats.py        every interval (Wilson, Newcombe, the change's quadrature, the index)
    geo_cs/disclosure.py   what is rounded, what is withheld
    geo_cs/analysis.py     the gap classification: closed / unchanged / widened and its sentence
    geo_cs/spreadsheet.py  what a CSV cell can run in a spreadsheet
    geo_cs/features.py     the CRS handling: CRS names, axis order, bbox, geometry per CRS
    api/deps.py            the cache keys: who gets which cached figures and pages

each against the tests that cover it (:data:`GROUPS`), less those that need the demo database
or the real data (each mutant is run in a pytest session of its own: the demo would be built
again, 35 s, for every mutant). It writes bench/results/mutation.json and mutation.md: per
module the mutants killed, survived and timed out, and every survivor with its diff and the
reason it is *equivalent* (no test could tell it from the code: :data:`EQUIVALENT`). A survivor
without a reason is a gap in the tests, and the script exits 1.

    python scripts/mutation.py                     # every module, the commit checked out (HEAD)
    python scripts/mutation.py spreadsheet deps    # some modules
    python scripts/mutation.py --worktree          # the working tree as it is (result marked dirty)

It measures a snapshot of HEAD (``git archive``) in bench/.cache/mutation/, where mutmut keeps
its ``mutants/`` folder, so uncommitted changes are not measured (``--worktree`` measures them).
Shared settings (timeouts, lines not mutated) are ``[tool.mutmut]`` in pyproject.toml; this
script adds each module's files and tests. ``--baseline FILE`` (default: the committed result)
names, for every mutant that survived there and is killed now, the tests that kill it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import fnmatch
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
CACHE = REPO / "bench" / ".cache" / "mutation"
#: the package whose code is copied into mutmut's ``mutants/`` folder
SOURCE_PATHS = ("geo_cs",)
#: the repository's folders a wheel installs inside geo_cs/ (geo_cs.api, geo_cs.maps): the
#: snapshot puts them there too, because mutmut names a mutant after its file's path and finds it
#: by the module name its function reports (``geo_cs.api.deps``), which must be the same
INSIDE_PACKAGE = ("api", "maps")
#: fixtures that make a test too slow to run once per mutant (a session of its own each time)
COSTLY_FIXTURES = ("demo_db", "shared_data")


@dataclass(frozen=True)
class Group:
    """One module, the functions of it that are mutated, and the tests run against them."""

    name: str
    module: str
    #: what the module decides, in words (for the results)
    decides: str
    #: test files (or node ids); a module path runs its docstring examples
    tests: tuple[str, ...]
    #: function names mutated (fnmatch on mutmut's names: ``x_name`` for a function,
    #: ``xǁClassǁmethod`` for a method); every function when empty
    functions: tuple[str, ...] = ()
    #: fixtures whose tests are left out besides :data:`COSTLY_FIXTURES` (a service the
    #: module's functions are reached through, when its tests call them directly)
    leave_out: tuple[str, ...] = ()

    @property
    def path(self) -> str:
        """The module's file in the snapshot (``api/deps.py`` is ``geo_cs/api/deps.py`` there)."""
        return f"geo_cs/{self.module}" if self.module.split("/")[0] in INSIDE_PACKAGE else self.module

    @property
    def dotted(self) -> str:
        return self.path.removesuffix(".py").replace("/", ".")

    def patterns(self) -> list[str]:
        return [f"{self.dotted}.{f}__mutmut_*" for f in (self.functions or ("*",))]

    def in_scope(self, mutant: str) -> bool:
        return any(fnmatch.fnmatchcase(mutant, p) for p in self.patterns())


GROUPS: tuple[Group, ...] = (
    Group("stats", "geo_cs/stats.py",
          "every interval published beside a rate, a gap, a change or an index",
          ("geo_cs/stats.py", "tests/test_oracles.py", "tests/test_disclosure.py", "tests/test_edges.py"),
          leave_out=("edge_db",)),
    Group("disclosure", "geo_cs/disclosure.py",
          "which counts are rounded and which rates are withheld",
          ("geo_cs/disclosure.py", "tests/test_disclosure.py", "tests/test_edges.py")),
    Group("analysis", "geo_cs/analysis.py",
          "whether a partnership closed or widened its gap, and the sentence that says so",
          ("tests/test_analysis.py", "tests/test_edges.py"),
          ("x_classify_changes", "x__direction", "x_summarise_changes"),
          # test_analysis's toy store copies the boundaries folder for each test: 20 min of the
          # run for what the edge tests check column by column in 4
          leave_out=("toy",)),
    Group("spreadsheet", "geo_cs/spreadsheet.py",
          "what a CSV cell becomes in a spreadsheet",
          ("geo_cs/spreadsheet.py", "tests/test_edges.py")),
    Group("features", "geo_cs/features.py",
          "the coordinates' CRS and axis order, and which areas a bbox selects",
          ("geo_cs/features.py", "tests/test_edges.py"),
          ("x_crs_from_param", "x_bbox_to_lonlat", "x_spatial_for", "x__items_sql", "x__searched_sql")),
    Group("deps", "api/deps.py",
          "which cached values and pages a request is given",
          ("tests/test_api.py", "tests/test_edges.py"),
          ("xǁMeasureParamsǁ*", "x_cached_*", "xǁCachedMapSourcesǁ*", "x_default_map_request")),
)


@dataclass(frozen=True)
class Equivalent:
    """Why a surviving mutant cannot be told from the code by any test: matched on the mutant's
    name (fnmatch) and a regular expression on its diff's changed lines."""

    mutants: str
    diff: str
    why: str
    #: a regular expression the whole diff (its context lines too) must match, where the
    #: changed line alone does not say which of two alike lines it is
    context: str | None = None

    def matches(self, name: str, diff: str) -> bool:
        return (fnmatch.fnmatchcase(name, self.mutants) and re.search(self.diff, _changed(diff)) is not None
                and (self.context is None or re.search(self.context, diff, re.S) is not None))


#: Survivors no test can kill, and why. Each entry names the function (fnmatch) and the change
#: (a regular expression on the diff's - and + lines).
EQUIVALENT: tuple[Equivalent, ...] = (
    # -- anywhere
    Equivalent("*", r'\+.*float\("NAN"\)',
               "float() reads NaN in any case: float('NAN') is float('nan')"),
    # -- geo_cs.stats
    Equivalent("geo_cs.stats.x_wilson_interval__*", r"\+\s+valid = n >= 0",
               "a zero denominator gives NaN through either branch (0/0, or ∞/∞ in the centre and "
               "half-width), and errstate keeps it silent"),
    Equivalent("geo_cs.stats.x_wilson_interval__*", r'\+.*np\.errstate\((invalid=None, )?divide="ignore"\)',
               "no operation meets an invalid value: the rate p is NaN for every denominator that is "
               "not positive before anything is computed from it, and NaN arithmetic does not warn; "
               "only the division by a zero denominator does (its errstate is tested)"),
    Equivalent("geo_cs.stats.x_wilson_interval__*", r"np\.where\(valid, n, 2\)",
               "the stand-in for an invalid denominator only avoids dividing by it: the outer "
               "np.where discards what it gives"),
    Equivalent("geo_cs.stats.x_wilson_interval__*", r"np\.clip\(c / np\.where\(valid, n, 1\), None, 1\)",
               "count/denominator is below 0 only for a negative count, and counts of people are not "
               "negative (rounded ones included)"),
    Equivalent("geo_cs.stats.x_wilson_interval__*", r"\+.*np\.clip\(low, 0, (None|2)\)",
               "the lower end is at most the rate, so never above 100%: the upper clip of the lower "
               "end never acts"),
    Equivalent("geo_cs.stats.x_wilson_interval__*", r"\+.*np\.clip\(high, None, 1\)",
               "the upper end is at least the rate, so never below 0%: the lower clip of the upper "
               "end never acts"),
    Equivalent("geo_cs.stats.x_index_interval__*", r"\(c > 0\) & \(b >= 0\)",
               "a base count of 0 has no index (NaN) whatever its spread"),
    Equivalent("geo_cs.stats.x_widen_for_denominator__*", r"inv_cdf\(0\.5 - confidence / 2\)",
               "z enters only through np.hypot, which squares it: −z widens as much as z"),
    Equivalent("geo_cs.stats.x_known_half_widths__*", r"np\.where\(counted, c, 1\.0\)",
               "the stand-in for a rate that does not count only keeps NaN out of the product: the "
               "outer np.where discards it"),
    Equivalent("geo_cs.stats.x_survey_difference__*", r"round\(rate_a - rate_b, 7\)",
               "the rounding only removes float noise from the difference of two published rates "
               "(one decimal): to 6 or to 7 decimals gives the same number"),
    Equivalent("geo_cs.stats.x_add_gap__*", r"total_den\.where\(total_den >= 0\)",
               "with no one in either role the share is 0/0 through either branch: NaN"),
    # -- geo_cs.disclosure
    Equivalent("geo_cs.disclosure.xǁDisclosureControlǁ*",
               r'\+.*\.merge\((cohort|out), (on=None, )?how="left"\)',
               "the two frames share one column, code, which merge() joins on when not told"),
    Equivalent("geo_cs.disclosure.xǁDisclosureControlǁarea_values__*", r'\+.*\.merge\(cohort, on="code", \)',
               "an inner join keeps every row here: the published cohort has a row for every code of "
               "the frame (it is made from the frame's own codes, then left-joined)"),
    Equivalent("geo_cs.disclosure.xǁDisclosureControlǁarea_values__*",
               r'\+.*frame\.loc\[frame\["suppressed"\], "baseline_value"\] = None',
               "None set into rows of a float column is stored as NaN: the column is the same"),
    # -- geo_cs.analysis
    Equivalent("geo_cs.analysis.x_classify_changes__*", r"\+.*\] / sign",
               "sign is −1 or 1 (a gap of 0 counts as 1): dividing by it is multiplying by it"),
    Equivalent("geo_cs.analysis.x__direction__*", r"np\.asarray\(x, (dtype=None)?\)",
               "classify_changes gives it float columns only: as arrays they are float already"),
    Equivalent("geo_cs.analysis.x_summarise_changes__*", r'gap\.get\("no (cohort|data)", (None)?\)',
               "a kind of change that is absent counts 0, and None is as false as 0"),
    # -- geo_cs.features (CRS handling)
    Equivalent("geo_cs.features.x_bbox_to_lonlat__*", r"\+\s+if a > c and b > d:",
               "the check after the range check can only fail for a lon/lat box the first check "
               "refused already, or for a transformed British National Grid box, which "
               "transform_bounds returns ordered: it never acts", context=r"out of range.*\n.\s+if a > c"),
    Equivalent("geo_cs.features.x_bbox_to_lonlat__*", r"always_xy=(None|False)\)|\"OGC:CRS84\", \)",
               "EPSG:27700 (easting, northing) and OGC:CRS84 (longitude, latitude) both put x first: "
               "always_xy changes no axis for them (checked: the same point either way)"),
    Equivalent("geo_cs.features.x_bbox_to_lonlat__*", r'from_crs\("epsg:27700"',
               "PROJ reads authority codes in any case"),
    Equivalent("geo_cs.features.x_bbox_to_lonlat__*", r"transform_bounds\(a, b, c, d, (densify_pts=22)?\)",
               "21 points per edge is pyproj's default; 22 move the edges of a box of all Britain by "
               "≤ 0.0002° (~15 m) and of a town's by far less: a refinement of the same bounds, which "
               "only prefilter areas before their geometries are intersected with the box"),
    Equivalent("geo_cs.features.x_bbox_to_lonlat__*",
               r"-180 <= a <= 181|-181 <= c <= 180|-90 <= b <= 91|-91 <= d <= 90",
               "min ≤ max is checked first, so a west edge beyond 180 comes with an east edge beyond "
               "180 (refused by its own check), and likewise each pair: the loosened bound never acts"),
    Equivalent("geo_cs.features.x_spatial_for__*",
               r'\+.*Spatial\("a\.geom_27700", (swap_axes=None, lonlat_bounds=False|swap_axes=False, '
               r'lonlat_bounds=None|lonlat_bounds=False)\)',
               "None is as false as False, and False is the default of swap_axes"),
    Equivalent("geo_cs.features.x_spatial_for__*", r'"A\.GEOM_(27700|4326)"',
               "DuckDB reads column names in any case"),
    Equivalent("geo_cs.features.x_spatial_for__*",
               r'\+.*Spatial\(("a\.geom_4326", )?swap_axes=crs == EPSG4326, '
               r'(lonlat_bounds=(None|False|True))?\)',
               "the geometry column is the default (a.geom_4326), and the lon/lat bounds only "
               "prefilter: the spatial predicate itself selects the same areas without them"),
    Equivalent("geo_cs.features.x__items_sql__*", r"\+def _items_sql\(|\+\s+page_given: bool = True\)",
               "every caller passes with_geometry and page_given: the defaults are never used"),
    Equivalent("geo_cs.features.x__*_sql__*",
               r'else "null"|left join geo_cs_item_values v on v\.code = a\.code|'
               r"GEO_CS_ITEM_VALUES V ON V\.CODE = A\.CODE",
               "SQL keywords and DuckDB's names are read in any case"),
    Equivalent("geo_cs.features.x__*_sql__*", r"if \(with_geometry\) or True else",
               "only a CSV asks for no geometry, and a CSV writes no geometry column: computing it "
               "anyway costs time and changes nothing written"),
    Equivalent("geo_cs.features.x__items_sql__*", r'sql\.rindex\("\\nSELECT a\.code"\)',
               "the page's SQL has one line starting SELECT a.code: its first is its last"),
    # -- geo_cs.api.deps (the cache keys; "api.deps" in results measured before it was installed
    # inside the package)
    Equivalent("*api.deps.*", r'\+.*data_version\((self\.)?request\), "(XX[-\w]+XX|[-A-Z]+)"',
               "a cache key's tag only keeps one kind of entry apart from the others: XXtagXX or TAG "
               "does that as well as tag"),
    Equivalent("*api.deps.xǁMeasureParamsǁ__init____*", r"\+\s+threshold: ThresholdQuery = \d",
               "not testable under mutmut: FastAPI reads the query's default from the signature, and "
               "mutmut's trampoline (functools.wraps) shows it the original's (25.0); for real, "
               "test_edges' baseline test fails with any other default (26% is not above 26)"),
    # -- geo_cs.spreadsheet
    Equivalent("geo_cs.spreadsheet.x_safe_frame__*", r"if \(changed\) or True else frame",
               "with nothing to change, assign() returns an equal copy: the CSV is the same"),
    Equivalent("geo_cs.spreadsheet.x_safe_frame__*",
               r'\+.*lambda v: ("XXXX" if v is None or v is pd\.NA|"" if \(v is None or v is pd\.NA\) '
               r'and False|"" if v is None and v is pd\.NA)',
               "the branch for a missing value is never taken: map(..., na_action='ignore') skips "
               "missing values (None, NaN, NA), which the CSV writes empty"),
    Equivalent("geo_cs.spreadsheet.x_csv_text__*", r"to_csv\(index=None\)",
               "pandas writes no index for any false index argument, None included"),
    Equivalent("geo_cs.spreadsheet.x_write_csv__*", r"to_csv\(path, index=None\)",
               "pandas writes no index for any false index argument, None included"),
    Equivalent("geo_cs.spreadsheet.x__is_boolean__*",
               r"\+.*(if column\.dtype == object:|return present\.empty and|and bool\(None\)|"
               r"map\(lambda v: None\))",
               "these send an object column of yes/no values down the text path, which writes it the "
               "same: neutralise() writes True/False as true/false and leaves missing values missing "
               "(the object branch of _is_boolean is redundant with neutralise)"),
)


# -- running ---------------------------------------------------------------------------------------

def git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True,
                          check=True).stdout.strip()


def snapshot(target: Path, worktree: bool) -> None:
    """The repository's files in ``target``: HEAD as committed, or the working tree."""
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    if worktree:
        names = git("ls-files", "-co", "--exclude-standard", "-z").split("\0")
        for name in filter(None, names):
            source = REPO / name
            if source.is_file():
                (target / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target / name)
        _as_installed(target)
        return
    archive = subprocess.run(["git", "-C", str(REPO), "archive", "--format=tar", "HEAD"],
                             capture_output=True, check=True).stdout
    import io

    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(target, filter="data")
    _as_installed(target)


def _as_installed(target: Path) -> None:
    """Move api/ and maps/ inside geo_cs/, where a wheel installs them (:data:`INSIDE_PACKAGE`)."""
    for folder in INSIDE_PACKAGE:
        if (target / folder).is_dir():
            shutil.move(target / folder, target / "geo_cs" / folder)


def base_config() -> dict[str, Any]:
    """``[tool.mutmut]`` of the repository's pyproject.toml: what every module's run shares."""
    return tomllib.loads((REPO / "pyproject.toml").read_text("utf-8")).get("tool", {}).get("mutmut", {})


def toml_value(value: Any) -> str:
    # JSON's strings, numbers, booleans and arrays of them are TOML too
    return json.dumps(value, ensure_ascii=False)


def write_config(workdir: Path, config: dict[str, Any]) -> None:
    """The snapshot's pyproject.toml with its ``[tool.mutmut]`` replaced by ``config``."""
    path = workdir / "pyproject.toml"
    lines, skipping = [], False
    for line in path.read_text("utf-8").splitlines():
        if line.startswith("["):
            skipping = line.strip() == "[tool.mutmut]"
        if not skipping:
            lines.append(line)
    lines += ["", "[tool.mutmut]", *(f"{k} = {toml_value(v)}" for k, v in config.items())]
    path.unlink()     # a fresh file, never one shared with the snapshot
    path.write_text("\n".join(lines) + "\n", "utf-8")


_COLLECT = """
import json, sys
import pytest

class Collect:
    kept, dropped = [], []
    def pytest_collection_modifyitems(self, items):
        for item in items:
            costly = set(getattr(item, "fixturenames", ())) & set(sys.argv[2].split(","))
            (self.dropped if costly else self.kept).append(item.nodeid)

plugin = Collect()
code = pytest.main(["--collect-only", "-q", "-p", "no:cacheprovider", "-n", "0", "-o", "addopts=",
                    "--doctest-modules", "-m", "slow or not slow", *json.loads(sys.argv[1])],
                   plugins=[plugin])
print("\\nRESULT" + json.dumps({"code": int(code), "kept": plugin.kept, "dropped": plugin.dropped}))
"""


def select_tests(workdir: Path, tests: tuple[str, ...], leave_out: tuple[str, ...]
                 ) -> tuple[list[str], list[str]]:
    """The node ids of ``tests`` collected in the unmutated snapshot: those to run, and those
    left out for needing a fixture of ``leave_out``. Collected here, before mutmut copies the
    code: in its mutated copy a module's docstring examples appear once more for every mutant."""
    done = subprocess.run([sys.executable, "-c", _COLLECT, json.dumps(list(tests)),
                           ",".join(leave_out)], cwd=workdir, capture_output=True, text=True)
    marker = done.stdout.rfind("RESULT")
    if marker < 0:
        raise SystemExit(f"collecting {tests} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    found = json.loads(done.stdout[marker + len("RESULT"):])
    if found["code"] != 0:
        raise SystemExit(f"collecting {tests} failed (pytest exit {found['code']}):\n{done.stdout[-3000:]}")
    return found["kept"], found["dropped"]


_READ = """
import json, sys
from pathlib import Path
from mutmut.mutation.data import SourceFileMutationData
from mutmut.mutation.diff_apply import get_diff_for_mutant
from mutmut.stats import status_by_exit_code

module, wanted = sys.argv[1], json.loads(sys.argv[2])
data = SourceFileMutationData(path=Path(module))
data.load()
stats = json.loads(Path("mutants/mutmut-stats.json").read_text())
out = {}
for name, code in data.exit_code_by_key.items():
    status = status_by_exit_code[code]
    entry = {"status": status, "seconds": data.durations_by_key.get(name)}
    if status != "killed" or name in wanted:
        entry["diff"] = get_diff_for_mutant(name, path=Path(module))
    function = name.rpartition("__mutmut_")[0]
    entry["tests"] = sorted(stats["tests_by_mangled_function_name"].get(function, []))
    out[name] = entry
print("RESULT" + json.dumps(out))
"""


def read_results(workdir: Path, module: str, wanted: list[str]) -> dict[str, dict]:
    """Every mutant of ``module``: status, seconds, tests run; the diff of every one not killed
    (and of those in ``wanted``)."""
    done = subprocess.run([sys.executable, "-c", _READ, module, json.dumps(wanted)], cwd=workdir,
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout[done.stdout.rfind("RESULT") + len("RESULT"):])


_KILLERS = """
import json, os, signal, sys
import pytest

class FirstFailure:
    def __init__(self):
        self.failed = None
    def pytest_runtest_logreport(self, report):
        if report.failed and self.failed is None:
            self.failed = report.nodeid

class TooLong(BaseException):
    pass

def too_long(*_):
    raise TooLong()

signal.signal(signal.SIGALRM, too_long)
todo, out = json.loads(sys.stdin.read()), {}
for mutant, tests in todo.items():
    os.environ["MUTANT_UNDER_TEST"] = mutant
    plugin = FirstFailure()
    signal.alarm(60)    # a mutant that loops in the first test it meets here (mutmut met another)
    try:
        pytest.main(["-x", "-q", "-p", "no:cacheprovider", "-n", "0", "-o", "addopts=",
                     "--doctest-modules", "-p", "no:randomly", "-W", "ignore::DeprecationWarning", *tests],
                    plugins=[plugin])
    except TooLong:
        pass
    finally:
        signal.alarm(0)
    out[mutant] = plugin.failed
print("RESULT" + json.dumps(out))
"""


def killing_tests(workdir: Path, todo: dict[str, list[str]]) -> dict[str, str | None]:
    """For each mutant of ``todo``, the first of its tests that fails with it active: all run in
    one process (a pytest session per mutant, as mutmut does), in mutmut's copy of the code."""
    if not todo:
        return {}
    done = subprocess.run([sys.executable, "-c", _KILLERS], input=json.dumps(todo), cwd=workdir / "mutants",
                          capture_output=True, text=True)
    marker = done.stdout.rfind("RESULT")
    return json.loads(done.stdout[marker + len("RESULT"):]) if marker >= 0 else {}


@dataclass
class Outcome:
    group: Group
    seconds: float
    selected: list[str]
    dropped: list[str]
    mutants: dict[str, dict] = field(default_factory=dict)


def run_group(group: Group, tree: Path, children: int, baseline: dict[str, dict], log) -> Outcome:
    """mutmut over ``group`` in a copy of ``tree`` of its own (its ``mutants/`` and settings)."""
    started = time.monotonic()
    workdir = tree.parent / group.name
    if workdir.exists():
        shutil.rmtree(workdir)
    shutil.copytree(tree, workdir, symlinks=True)
    selected, dropped = select_tests(workdir, group.tests, COSTLY_FIXTURES + group.leave_out)
    config = {
        **base_config(),
        "source_paths": list(SOURCE_PATHS),
        "only_mutate": [group.path],
        "pytest_add_cli_args_test_selection": selected,
        # the snapshot is no checkout of its own: mutmut must not ask git what changed
        "use_git_change_detection": False,
    }
    write_config(workdir, config)
    log(f"{group.module}: {len(selected)} tests ({len(dropped)} left out: "
        f"{', '.join(COSTLY_FIXTURES + group.leave_out)})")
    with open(workdir / "mutmut.log", "w") as out:
        done = subprocess.run(["mutmut", "run", "--max-children", str(children), *group.patterns()],
                              cwd=workdir, stdout=out, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        tail = (workdir / "mutmut.log").read_text(errors="replace")[-3000:]
        raise SystemExit(f"mutmut failed on {group.module} (exit {done.returncode}):\n{tail}")
    previous = [name for name, m in baseline.items() if m.get("status") == "survived"]
    mutants = {name: m for name, m in read_results(workdir, group.path, previous).items()
               if group.in_scope(name)}
    todo = {name: m["tests"] for name, m in mutants.items()
            if m["status"] == "killed" and (before := baseline.get(name))
            and before.get("status") == "survived" and before.get("diff") == _changed(m.get("diff", ""))}
    if todo:
        log(f"{group.module}: finding the tests that kill {len(todo)} survivor(s) of the baseline")
    for name, test in killing_tests(workdir, todo).items():
        mutants[name]["killed_since_baseline"] = [test] if test else []
    return Outcome(group, time.monotonic() - started, selected, dropped, mutants)


# -- results ---------------------------------------------------------------------------------------

def verdict(name: str, m: dict) -> str | None:
    for rule in EQUIVALENT:
        if rule.matches(name, m.get("diff", "")):
            return rule.why
    return None


def summarise(outcome: Outcome) -> dict[str, Any]:
    newly_killed = [{"mutant": name, "diff": _changed(m["diff"]), "killed_by": m["killed_since_baseline"]}
                    for name, m in sorted(outcome.mutants.items(), key=lambda kv: _order(kv[0]))
                    if "killed_since_baseline" in m]
    summary = {
        "module": outcome.group.module, "decides": outcome.group.decides,
        "functions": list(outcome.group.functions) or ["every function"],
        "tests": list(outcome.group.tests), "tests_run": len(outcome.selected),
        "left_out_fixtures": list(COSTLY_FIXTURES + outcome.group.leave_out),
        "tests_left_out": outcome.dropped,
        "seconds": round(outcome.seconds, 1),
        "killed_since_baseline": newly_killed,
        # every mutant's status, and the diff (with its context) of every one not killed
        "all": {name: {"status": m["status"], **({"diff": m["diff"]} if "diff" in m else {})}
                for name, m in outcome.mutants.items()},
    }
    return judge(summary)


def judge(summary: dict[str, Any]) -> dict[str, Any]:
    """``summary``'s counts, and its survivors each with the reason it is equivalent (or none),
    from its ``all``: run again on a stored result when :data:`EQUIVALENT` changes."""
    counts: dict[str, int] = {}
    survivors = []
    for name in sorted(summary["all"], key=_order):
        m = summary["all"][name]
        counts[m["status"]] = counts.get(m["status"], 0) + 1
        if m["status"] in ("survived", "no tests", "suspicious"):
            why = verdict(name, m)
            survivors.append({"mutant": name, "status": m["status"], "diff": _changed(m["diff"]),
                              "equivalent": why is not None, "why": why or "UNEXPLAINED: a gap in the tests"})
    total = len(summary["all"])
    detected = counts.get("killed", 0) + counts.get("timeout", 0)
    equivalent = sum(s["equivalent"] for s in survivors)
    summary.update({
        "mutants": total, "killed": counts.get("killed", 0), "timeout": counts.get("timeout", 0),
        "survived": counts.get("survived", 0), "no_tests": counts.get("no tests", 0),
        "other": {k: v for k, v in counts.items() if k not in ("killed", "timeout", "survived", "no tests")},
        "equivalent": equivalent, "unexplained": len(survivors) - equivalent,
        # the score: mutants detected (killed or timed out) of those that are not equivalent
        "score": round(detected / (total - equivalent), 4) if total > equivalent else None,
        "survivors": survivors,
    })
    return summary


def _order(name: str) -> tuple[str, int]:
    function, _, number = name.rpartition("__mutmut_")
    return function, int(number) if number.isdigit() else 0


def _changed(diff: str) -> str:
    """The - and + lines of a unified diff (the function around them is named by the mutant)."""
    return "\n".join(line for line in diff.splitlines()
                     if line[:1] in "+-" and not line.startswith(("+++", "---")))


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "# Mutation score of the modules that decide what users read",
        "",
        f"Commit {result['commit']}, {result['timestamp']}, mutmut {result['mutmut']}, "
        f"{result['machine']['nproc']} cores; {result['seconds'] / 60:.1f} min. "
        f"Command: `{result['command']}`.",
        "",
        "Each module's mutants were run against the tests named (each mutant only against the tests "
        "that call its function), less those needing the demo database or the real data. "
        "*Detected* = killed or timed out; the score is detected / (mutants − equivalent).",
        "",
        "| module | what it decides | mutated | mutants | killed | timeout | survived | equivalent "
        "| unexplained | score | min |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for m in result["modules"]:
        score = f"{m['score'] * 100:.1f}%" if m["score"] is not None else "–"
        mutated = ", ".join(f.replace("xǁ", "").replace("ǁ", ".").removeprefix("x_") for f in m["functions"])
        lines.append(f"| `{m['module']}` | {m['decides']} | {mutated} | {m['mutants']} | {m['killed']} | "
                     f"{m['timeout']} | {m['survived'] + m['no_tests']} | {m['equivalent']} | "
                     f"{m['unexplained']} | {score} | {m['seconds'] / 60:.1f} |")
    for m in result["modules"]:
        lines += ["", f"## `{m['module']}`", "",
                  f"Tests: {', '.join(f'`{t}`' for t in m['tests'])} ({m['tests_run']} run"
                  + (f"; {len(m['tests_left_out'])} left out: those using "
                     + ", ".join(f"`{f}`" for f in m["left_out_fixtures"]) if m["tests_left_out"] else "")
                  + ")."]
        if m["killed_since_baseline"]:
            lines += ["", "Survivors of the baseline run now killed, and the tests that kill them:", ""]
            for k in m["killed_since_baseline"]:
                lines += [f"- `{k['mutant']}` — {', '.join(f'`{t}`' for t in k['killed_by']) or '(killed)'}",
                          "", "  ```diff", *(f"  {d}" for d in k["diff"].splitlines()), "  ```"]
        if m["survivors"]:
            lines += ["", "Survivors:", ""]
            for s in m["survivors"]:
                lines += [f"- `{s['mutant']}` ({s['status']}) — {s['why']}", "", "  ```diff",
                          *(f"  {d}" for d in s["diff"].splitlines()), "  ```"]
        else:
            lines += ["", "No survivors."]
    return "\n".join(lines) + "\n"


def load_baseline(path: Path | None) -> dict[str, dict]:
    if path is None or not path.exists():
        return {}
    found = json.loads(path.read_text())
    return {name: {"status": m["status"], "diff": _changed(m.get("diff") or "")}
            for module in found.get("modules", []) for name, m in module.get("all", {}).items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("groups", nargs="*", metavar="MODULE",
                        help="modules to run (default: all): " + ", ".join(g.name for g in GROUPS))
    parser.add_argument("--worktree", action="store_true",
                        help="measure the working tree as it is, not HEAD (the result is marked dirty)")
    parser.add_argument("-j", "--children", type=int, default=os.cpu_count() or 2,
                        help="mutants run at once (default: one per core)")
    parser.add_argument("--baseline", type=Path, default=RESULTS / "mutation.json",
                        help="a previous result: its survivors now killed are listed with their tests")
    parser.add_argument("--rejudge", action="store_true",
                        help="run nothing: apply the reasons of EQUIVALENT to the stored result again")
    parser.add_argument("--merge", action="store_true",
                        help="replace only the modules run in an existing result (each module keeps "
                             "the commit it was measured at)")
    parser.add_argument("--workdir", type=Path, default=CACHE,
                        help="where the snapshot and mutmut's folders go (default: bench/.cache/mutation)")
    parser.add_argument("--out", type=Path, default=RESULTS / "mutation.json",
                        help="the JSON result (the Markdown is written beside it)")
    args = parser.parse_args(argv)
    unknown = set(args.groups) - {g.name for g in GROUPS}
    if unknown:
        parser.error(f"unknown module(s) {', '.join(sorted(unknown))}; choose from "
                     + ", ".join(g.name for g in GROUPS))
    groups = [g for g in GROUPS if not args.groups or g.name in args.groups]

    def log(text: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)

    if args.rejudge:
        stored = json.loads(args.out.read_text())
        stored["modules"] = [judge(m) for m in stored["modules"]]
        stored["totals"] = totals(stored["modules"])
        write(args.out, stored)
        log(f"rejudged {args.out}: {stored['totals']['unexplained']} unexplained survivor(s)")
        return 1 if stored["totals"]["unexplained"] else 0
    commit = git("rev-parse", "--short", "HEAD")
    dirty = bool(git("status", "--porcelain", "--untracked-files=no")) if args.worktree else False
    baseline = load_baseline(args.baseline)
    started = time.monotonic()
    # one snapshot for every module: they all measure the same code and tests
    tree = args.workdir / "tree"
    snapshot(tree, args.worktree)
    modules = []
    for group in groups:
        log(f"{group.module}: mutating {', '.join(group.functions) or 'every function'}")
        outcome = run_group(group, tree, args.children, baseline, log)
        summary = summarise(outcome)
        summary["commit"] = commit + ("-worktree" if args.worktree else "")
        log(f"{group.module}: {summary['mutants']} mutants, {summary['killed']} killed, "
            f"{summary['timeout']} timeout, {summary['survived']} survived "
            f"({summary['equivalent']} equivalent, {summary['unexplained']} unexplained) "
            f"in {summary['seconds'] / 60:.1f} min")
        modules.append(summary)
    import mutmut

    if args.merge and args.out.exists():
        kept = [m for m in json.loads(args.out.read_text())["modules"]
                if m["module"] not in {g.module for g in groups}]
        order = {g.module: i for i, g in enumerate(GROUPS)}
        modules = sorted(kept + modules, key=lambda m: order.get(m["module"], len(order)))
    commits = sorted({m.get("commit", commit) for m in modules})
    result = {
        "benchmark": "mutation",
        "timestamp": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "commit": ", ".join(commits) + ("-dirty" if dirty else ""),
        "measured": "working tree" if args.worktree else "HEAD (git archive)",
        "dirty": dirty,
        "command": " ".join(["python", "scripts/mutation.py", *(argv if argv is not None else sys.argv[1:])]),
        "mutmut": getattr(mutmut, "__version__", None) or _version("mutmut"),
        "machine": {"nproc": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version(), "children": args.children},
        "config": base_config(),
        "seconds": round(sum(m["seconds"] for m in modules), 1),
        "this_run_seconds": round(time.monotonic() - started, 1),
        "modules": modules,
        "totals": totals(modules),
    }
    write(args.out, result)
    log(f"written {args.out} and {args.out.with_suffix('.md')} in {result['seconds'] / 60:.1f} min; "
        f"{result['totals']['unexplained']} unexplained survivor(s)")
    return 1 if result["totals"]["unexplained"] else 0


def totals(modules: list[dict[str, Any]]) -> dict[str, int]:
    return {k: sum(m[k] for m in modules)
            for k in ("mutants", "killed", "timeout", "survived", "no_tests", "equivalent", "unexplained")}


def write(out: Path, result: dict[str, Any]) -> None:
    """The result as JSON, and as Markdown beside it."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")
    out.with_suffix(".md").write_text(markdown(result))


def _version(dist: str) -> str | None:
    import importlib.metadata

    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


if __name__ == "__main__":
    sys.exit(main())
