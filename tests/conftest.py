"""Shared fixtures: stores, hand-made boundary files, and the real data when it is present."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import pytest
from hypothesis import settings
from shapely.geometry import Polygon, box, mapping

from geo_cs.store import Store

REPO = Path(__file__).resolve().parent.parent

# pytest-xdist's workers start with COLUMNS=80 in their environment when the run has no terminal;
# the CLI (in-process and in subprocesses) would then squeeze its tables to 80 columns, as it
# does for a user who sets COLUMNS. The tests expect what a pipe without COLUMNS gets.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.pop("COLUMNS", None)
SHARED_DATA = Path(os.environ.get("GEO_CS_SHARED_DATA", REPO.parent / "shared" / "data"))

# --doctest-modules imports every module under tests/: qgis_client.py is a script for Debian's
# own python3 (PyQGIS), run by tests/test_clients.py in its own process, never imported here
collect_ignore = ["qgis_client.py"]

# Hypothesis: every run tries the same examples (derandomize: drawn from a seed made of each
# test's own code), so a run that fails on CI or a fresh clone fails again on the next run of the
# same code, and passes on a clean one, whatever an earlier run found; nothing is read from or
# saved in .hypothesis/. A failure prints its example as a blob for @reproduce_failure; pin it
# with @example once understood. Deadlines off: a loaded machine is no reason to fail.
# ``GEO_CS_HYPOTHESIS=explore`` hunts instead: new random examples on every run, failures saved in
# .hypothesis/ and tried first on the next (``--hypothesis-profile=explore`` too). Examples per
# test are the tests' own (``GEO_CS_FUZZ_EXAMPLES`` for the ingest fuzzing), in either profile.
settings.register_profile("repeatable", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("explore", derandomize=False, deadline=None, print_blob=True)
# loaded here, before the test modules are imported: their settings(...) take what they leave
# unset from the profile loaded when they are made
settings.load_profile(os.environ.get("GEO_CS_HYPOTHESIS", "repeatable"))


def pytest_collection_modifyitems(config, items):
    if not SHARED_DATA.exists():
        skip = pytest.mark.skip(reason=f"real data not found at {SHARED_DATA} (set GEO_CS_SHARED_DATA)")
        for item in items:
            if "shared_data" in item.keywords:
                item.add_marker(skip)
    workers = getattr(config, "workerinput", {}).get("workercount", 1)
    items[:] = costliest_files_first(items, workers)


#: Seconds per test file in a recent run (``scripts/test_durations.py`` writes it).
DURATIONS = json.loads((REPO / "tests" / "durations.json").read_text())


def costliest_files_first(items: list[pytest.Item], workers: int) -> list[pytest.Item]:
    """The tests grouped by file, the costliest files first (xdist hands files out in this
    order: ``--dist loadfile --no-loadscope-reorder``), so that the last files to start are
    short ones and the workers finish together. While the first worker builds the demo
    database (``demo_db``, some 20 s), the next ones start on the costliest files that do not
    need it instead of waiting for it. Every worker computes the same order."""
    files: dict[str, list[pytest.Item]] = {}
    for item in items:
        files.setdefault(item.path.name, []).append(item)
    known = sorted(DURATIONS.values())
    median = known[len(known) // 2] if known else 1.0
    order = sorted(files, key=lambda name: (-DURATIONS.get(name, median), name))
    needs_demo = {name for name, tests in files.items()
                  if any("demo_db" in getattr(t, "fixturenames", ()) for t in tests)}
    if order and order[0] in needs_demo:
        others = [name for name in order if name not in needs_demo][: max(workers - 1, 0)]
        order = [order[0], *others, *[n for n in order[1:] if n not in others]]
    return [item for name in order for item in files[name]]


@pytest.fixture
def shared_data() -> Path:
    return SHARED_DATA


@pytest.fixture
def store() -> Store:
    with Store.open(":memory:") as s:
        yield s


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "test.duckdb"


# -- hand-made geography: a 3x2 grid of 1 km squares near Leeds, as LSOA 2011 codes ------------

#: lon/lat of the grid origin; squares are ~0.0147° wide (1 km at 53.8°N) and 0.009° tall.
ORIGIN = (-1.55, 53.80)
DX, DY = 0.0147, 0.009
GRID_CODES = ["E01000001", "E01000002", "E01000003", "E01000010", "E01000005", "E01000006"]


def grid_squares() -> list[Polygon]:
    x0, y0 = ORIGIN
    return [box(x0 + i * DX, y0 + j * DY, x0 + (i + 1) * DX, y0 + (j + 1) * DY)
            for j in range(2) for i in range(3)]


def grid_frame(codes: list[str] | None = None, code_col: str = "LSOA11CD",
               name_col: str = "LSOA11NM") -> gpd.GeoDataFrame:
    codes = codes or GRID_CODES
    squares = grid_squares()[: len(codes)]
    return gpd.GeoDataFrame(
        {code_col: codes, name_col: [f"Testtown {i:03d}A" for i in range(len(codes))]},
        geometry=squares,
        crs="EPSG:4326",
    )


def write_topojson(path: Path, frame: gpd.GeoDataFrame, object_name: str) -> Path:
    """A minimal TopoJSON (no quantisation, one arc per ring, no CRS) like the ONS-derived files."""
    arcs: list[list[list[float]]] = []
    geometries = []
    for _, row in frame.iterrows():
        rings = []
        for ring in [row.geometry.exterior, *row.geometry.interiors]:
            arcs.append([list(c) for c in ring.coords])
            rings.append([len(arcs) - 1])
        props = {k: v for k, v in row.items() if k != "geometry"}
        geometries.append({"type": "Polygon", "arcs": rings, "properties": props})
    topo = {
        "type": "Topology",
        "objects": {object_name: {"type": "GeometryCollection", "geometries": geometries}},
        "arcs": arcs,
    }
    path.write_text(json.dumps(topo), encoding="utf-8")
    return path


def write_geojson_without_crs(path: Path, frame: gpd.GeoDataFrame) -> Path:
    features = [
        {"type": "Feature", "properties": {k: v for k, v in row.items() if k != "geometry"},
         "geometry": mapping(row.geometry)}
        for _, row in frame.iterrows()
    ]
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return path


@pytest.fixture
def grid() -> gpd.GeoDataFrame:
    return grid_frame()


@pytest.fixture
def test_registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A boundaries/ folder whose lsoa2011 list of expected codes is the 6 grid codes + 2 more."""
    root = tmp_path / "boundaries"
    shutil.copytree(REPO / "boundaries", root, ignore=shutil.ignore_patterns("demo"))
    import gzip

    with gzip.open(root / "registry" / "codes" / "lsoa2011.txt.gz", "wt") as fh:
        fh.write("\n".join([*GRID_CODES, "E01000007", "W01000001"]) + "\n")
    monkeypatch.setenv("GEO_CS_BOUNDARIES_DIR", str(root))
    return root


def snapshot(store: Store) -> dict[str, list]:
    """Every row of every table (geometries as WKB), to prove an ingest changed nothing."""
    tables = [r[0] for r in store.sql(
        "SELECT table_name FROM information_schema.tables ORDER BY 1").fetchall()]
    result = {}
    for table in tables:
        columns = store.sql(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_name = ? ORDER BY ordinal_position", [table]).fetchall()
        exprs = [f"ST_AsWKB({c})" if t.startswith("GEOMETRY") else c for c, t in columns]
        result[table] = sorted(
            map(repr, store.sql(f"SELECT {', '.join(exprs)} FROM {table}").fetchall())
        )
    return result


@pytest.fixture(scope="session")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo database, built once from the embedded bundle (real data, ~15 s).

    Under pytest-xdist the first worker to ask builds it (the others wait on a lock) and each
    worker gets its own copy, so a test opening it for writing cannot lock out another worker.
    """
    from geo_cs.demo import build_demo

    path = tmp_path_factory.mktemp("demo") / "demo.duckdb"
    if os.environ.get("PYTEST_XDIST_WORKER") is None:
        with Store.open(path) as store:
            build_demo(store)
        return path
    shared = tmp_path_factory.getbasetemp().parent / "demo-shared"   # common to the run's workers
    shared.mkdir(exist_ok=True)
    built = shared / "demo.duckdb"
    with open(shared / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (shared / "done").exists():
            with Store.open(built) as store:
                build_demo(store)
            (shared / "done").touch()
    shutil.copyfile(built, path)
    return path


# -- the CLI in-process ---------------------------------------------------------------------------

@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str


def run_cli(capsys: pytest.CaptureFixture, *args: str) -> CliResult:
    """``geo-cs ARGS`` run in this process (as ``main`` runs it): exit code and captured output."""
    from geo_cs.cli import main

    capsys.readouterr()
    # the CLI hands settings to the processes it starts through the environment
    # (--disclosure-control sets GEO_CS_DISCLOSURE_CONTROL): restored, so the next command in
    # this worker runs as a user's next command would, not under the last one's options
    settings = {k: v for k, v in os.environ.items() if k.startswith("GEO_CS_")}
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    finally:
        for name in [k for k in os.environ if k.startswith("GEO_CS_") and k not in settings]:
            del os.environ[name]
        os.environ.update(settings)
    captured = capsys.readouterr()
    return CliResult(code, captured.out, captured.err)

