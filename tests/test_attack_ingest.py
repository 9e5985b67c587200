"""Attacks on what an ingest writes (issue 27, points 3, 4, 5 and 10), each run for real.

- A degenerate polygon (collinear or coincident points, a TopoJSON quantised with
  ``"scale": [0, 0]``) must not replace a real boundary with ``POLYGON EMPTY``.
- A demo build killed part-way must leave the served file byte-identical and no partial file
  at its path; an update keeps the file's owner and mode.
- A YAML "billion laughs", an oversized or binary YAML, a zip or gzip saved as ``.csv``, and a
  disk that fills during an update are refused with a message naming the file and what it is.

In every refusal the database file is byte-for-byte what it was (its SHA-256 is compared).
"""

from __future__ import annotations

import fcntl
import gzip
import hashlib
import itertools
import json
import os
import resource
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import GRID_CODES, grid_frame, run_cli, write_topojson
from shapely.geometry import mapping

from geo_cs.ingest import ingest_boundaries
from geo_cs.store import Store, updating


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def seeded_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database holding the grid's six real boundaries."""
    root = tmp_path_factory.mktemp("seed")
    path = root / "seed.duckdb"
    boundaries = root / "grid.geojson"
    grid_frame().to_file(boundaries)
    with Store.open(path) as store:
        ingest_boundaries(store, [boundaries])
    return path


@pytest.fixture
def db(seeded_db: Path, tmp_path: Path) -> Path:
    path = tmp_path / "geo-cs.duckdb"
    shutil.copy(seeded_db, path)
    return path


def refused(capsys: pytest.CaptureFixture, db: Path, *args: str, code: int = 3) -> str:
    """Run ``geo-cs --db DB -q ARGS``; assert it is refused with ``code``, no traceback and the
    database byte-identical; return the message on one line."""
    before = sha256(db)
    result = run_cli(capsys, "--db", str(db), "-q", *args)
    assert result.code == code, (result.code, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stderr.startswith("error: "), result.stderr
    assert sha256(db) == before
    return " ".join(result.stderr.split())


# -- 3. a degenerate polygon does not replace a real boundary --------------------------------------

def _geojson(path: Path, rings: dict[str, list[list[float]]]) -> Path:
    """The grid as GeoJSON, with the ring of each code in ``rings`` replaced."""
    features = [
        {"type": "Feature", "properties": {"LSOA11CD": row.LSOA11CD, "LSOA11NM": row.LSOA11NM},
         "geometry": ({"type": "Polygon", "coordinates": [rings[row.LSOA11CD]]}
                      if row.LSOA11CD in rings else mapping(row.geometry))}
        for row in grid_frame().itertuples()
    ]
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return path


#: The issue's feature: collinear points (make_valid made it POLYGON EMPTY, and it was stored).
COLLINEAR = [[-2.95, 53.4], [-2.94, 53.4], [-2.93, 53.4], [-2.95, 53.4]]
#: Every point the same.
COLLAPSED = [[-1.53, 53.805]] * 4
#: Back and forth along one segment: a "polygon" that is a line.
DOUBLED_BACK = [[-1.55, 53.8], [-1.54, 53.81], [-1.55, 53.8], [-1.54, 53.81], [-1.55, 53.8]]


@pytest.mark.parametrize("ring", [COLLINEAR, COLLAPSED, DOUBLED_BACK],
                         ids=["collinear", "collapsed", "doubled back"])
def test_a_polygon_without_area_is_refused_naming_file_and_feature(
    ring: list[list[float]], db: Path, tmp_path: Path, capsys: pytest.CaptureFixture
):
    path = _geojson(tmp_path / "areas.geojson", {GRID_CODES[3]: ring})
    message = refused(capsys, db, "ingest", "boundaries", str(path))
    assert f"{path}, feature 4 (code {GRID_CODES[3]})" in message
    assert "encloses no area" in message
    with Store.open(db, read_only=True) as store:   # the real boundary is still there
        area = store.sql("SELECT area_m2 FROM areas WHERE code = ?", [GRID_CODES[3]]).fetchone()[0]
    assert area > 900_000


def test_a_topojson_quantised_to_nothing_is_refused(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture
):
    path = write_topojson(tmp_path / "areas.json", grid_frame(), "lsoa")
    topo = json.loads(path.read_text())
    # quantised arcs (delta-encoded integers) with a scale of zero: every point is `translate`
    topo["transform"] = {"scale": [0, 0], "translate": [-1.55, 53.8]}
    topo["arcs"] = [[[1000, 1000], [0, 5], [5, 0], [0, -5], [-1005, -1000]] for _ in topo["arcs"]]
    path.write_text(json.dumps(topo))
    message = refused(capsys, db, "ingest", "boundaries", str(path))
    assert f"{path}, feature 1 (code {GRID_CODES[0]})" in message
    assert "encloses no area" in message
    assert "6 features like it" in message


def test_a_bow_tie_is_still_repaired_into_two_triangles(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture
):
    """What make_valid can repair is still repaired (and reported): only nothing is refused."""
    bow_tie = [[-1.55, 53.8], [-1.5353, 53.809], [-1.5353, 53.8], [-1.55, 53.809], [-1.55, 53.8]]
    path = _geojson(tmp_path / "areas.geojson", {GRID_CODES[0]: bow_tie})
    result = run_cli(capsys, "--db", str(db), "ingest", "boundaries", str(path))
    assert result.code == 0, result.stderr
    assert "invalid geometries repaired (make_valid): 1" in result.stdout
    with Store.open(db, read_only=True) as store:
        area = store.sql("SELECT area_m2 FROM areas WHERE code = ?", [GRID_CODES[0]]).fetchone()[0]
    assert 400_000 < area < 600_000


# -- 4. the demo build is never where a served file stands; 5. an update keeps owner and mode -----

GEO_CS = [sys.executable, "-m", "geo_cs.cli"]


def _leftovers(db: Path) -> list[Path]:
    return sorted(db.parent.glob(f".{db.name}.*.updating*"))


@pytest.mark.slow  # a demo build started and killed: ~10 s
def test_a_demo_build_killed_midway_leaves_the_old_file_intact(db: Path):
    """``geo-cs demo --force`` over a served file, killed with SIGKILL while it builds: the old
    file is byte-identical (it used to be deleted first and built in place: a server switched
    to a partial 63 MB file), nothing else is at its path, and the killed build's working file
    is removed by the next update."""
    before = sha256(db)
    with Store.open(db, read_only=True) as served:   # a server's read-only connection
        proc = subprocess.Popen([*GEO_CS, "--db", str(db), "-q", "demo", "--no-serve", "--force"],
                                stderr=subprocess.PIPE)
        identity = (db.stat().st_ino, db.stat().st_mtime_ns)

        def started() -> bool:   # its new file beside the old one, or (before the fix) the old one gone
            return bool(_leftovers(db)) or not db.exists() or (
                db.stat().st_ino, db.stat().st_mtime_ns) != identity

        deadline = time.monotonic() + 120
        while not started() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert started(), f"the demo build never started (exit {proc.poll()})"
        time.sleep(3)   # well into the build: boundaries written, its file tens of MB
        assert proc.poll() is None, "the demo build ended before it was killed"
        proc.kill()
        proc.wait()
        assert served.sql("SELECT count(*) FROM areas").fetchone()[0] == 6
    assert db.exists(), "the served file was deleted"
    assert sha256(db) == before, f"the served file was replaced by a partial one ({db.stat().st_size:,} bytes)"
    assert sorted(p.name for p in db.parent.iterdir() if p.name.startswith(db.name)) == [db.name]
    killed = _leftovers(db)
    assert killed and killed[0].stat().st_size > 0   # the killed build's file, aside
    with updating(db) as store:   # the next update (an ingest, a demo build) removes it
        store.sql("SELECT 1")
    assert not _leftovers(db)


def test_a_database_the_demo_did_not_build_is_refused_without_touching_it(
    db: Path, capsys: pytest.CaptureFixture
):
    message = refused(capsys, db, "demo", "--no-serve")
    assert f"{db} exists and was not built by the demo" in message
    assert not _leftovers(db)


NOBODY = 65534


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file another owner needs root")
@pytest.mark.parametrize("fresh", [False, True], ids=["ingest", "rebuild"])
def test_an_update_keeps_the_files_owner_and_mode(fresh: bool, db: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture):
    """The file served by user nobody, mode 0640, updated by root: an ingest (a copy) and a
    rebuild from scratch (the demo's way) both leave it nobody's, 0640 (an ingest made it
    root's; a rebuild made it root's and 0644)."""
    os.chown(db, NOBODY, NOBODY)
    os.chmod(db, 0o640)
    if fresh:
        with updating(db, fresh=True) as store:
            store.sql("INSERT INTO meta VALUES ('built_by', 'demo')")
    else:
        boundaries = _geojson(tmp_path / "areas.geojson", {})
        assert run_cli(capsys, "--db", str(db), "-q", "ingest", "boundaries", str(boundaries)).code == 0
    info = db.stat()
    assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (NOBODY, NOBODY, 0o640)
    assert not _leftovers(db)


#: An update by user nobody, who may write the folder: the modules are imported as root first
#: (the interpreter may live in root's home), then the process becomes nobody.
AS_NOBODY = """
import os, sys
from geo_cs.errors import GeoCsError
from geo_cs.store import check_signature, spatial_extension_path, updating
check_signature(spatial_extension_path())
os.setgid(65534)
os.setuid(65534)
try:
    with updating(sys.argv[1]) as store:
        store.sql("INSERT INTO meta VALUES ('touched', 'by nobody')")
except GeoCsError as exc:
    print(exc, file=sys.stderr)
    sys.exit(exc.exit_code)
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="switching to another user needs root")
def test_an_update_that_would_change_the_owner_is_refused(seeded_db: Path):
    """A user who may write the folder but cannot give the new file the old one's owner (root)
    is refused before anything is written, rather than leaving the database theirs."""
    folder = Path(tempfile.mkdtemp(prefix="geo-cs-owner-"))   # reachable by nobody
    try:
        folder.chmod(0o777)
        db = folder / "geo-cs.duckdb"
        shutil.copy(seeded_db, db)
        db.chmod(0o666)
        before = sha256(db)
        result = subprocess.run([sys.executable, "-c", AS_NOBODY, str(db)], capture_output=True,
                                text=True, timeout=120, cwd=folder)
        assert result.returncode == 4, result.stderr
        message = " ".join(result.stderr.split())
        assert f"{db} belongs to user 0, group 0" in message
        assert "run the update as that user (or root)" in message
        assert sha256(db) == before and db.stat().st_uid == 0
        assert not _leftovers(db)
    finally:
        shutil.rmtree(folder)


# -- 10. a disk that fills during an update ---------------------------------------------------------

def _run_with_file_size_limit(limit: int, *args: str) -> subprocess.CompletedProcess:
    """``geo-cs ARGS`` in a process that may write no file larger than ``limit`` bytes.

    RLIMIT_FSIZE stands in for a full disk without root-only tricks (a tiny mounted
    filesystem): a write past it fails with EFBIG (Python ignores SIGXFSZ) as one on a full
    disk fails with ENOSPC, and both go through the same handling.
    """
    def limited() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return subprocess.run([*GEO_CS, *args], capture_output=True, text=True, timeout=300,
                          preexec_fn=limited)


def _many_squares(path: Path, n: int) -> Path:
    """``n`` small squares near Leeds as LSOA 2011 boundaries (codes off the official list)."""
    side = 0.0005
    features = [
        {"type": "Feature", "properties": {"LSOA11CD": f"E0110{i:04d}", "LSOA11NM": f"Square {i}"},
         "geometry": {"type": "Polygon", "coordinates": [[
             [x, y], [x + side, y], [x + side, y + side], [x, y + side], [x, y]]]}}
        for i in range(n)
        for x, y in [(-1.6 + (i % 100) * side, 53.7 + (i // 100) * side)]
    ]
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return path


@pytest.mark.parametrize("room", [-200_000, 150_000], ids=["while copying", "while writing"])
def test_a_disk_that_fills_during_an_update_leaves_no_partial_copy(room: int, db: Path, tmp_path: Path):
    """The update runs out of room copying the database (less room than the file) or writing
    its ingest into the copy: exit code 6, "disk full" with the room it needs and where, the
    partial copy removed (it used to stay, keeping the disk full) and the database unchanged."""
    before = sha256(db)
    squares = _many_squares(tmp_path / "squares.geojson", 3000)
    result = _run_with_file_size_limit(db.stat().st_size + room, "--db", str(db), "-q", "ingest",
                                       "boundaries", str(squares), "--allow-unlisted-codes")
    assert result.returncode == 6, result.stderr
    assert "Traceback" not in result.stderr
    message = " ".join(result.stderr.split())
    assert message.startswith(f"error: disk full: updating {db} needs about ")
    assert f"MB free in {db.parent.resolve()} for its working copy (File too large: the " \
           "file-size limit of this process (ulimit -f)" in message
    assert f"the partial copy was removed and {db} is unchanged" in message
    assert sha256(db) == before
    assert not _leftovers(db)


def test_a_first_ingest_that_fills_the_disk_leaves_no_file(tmp_path: Path):
    """Into a new database: nothing at all is left at its path, nor beside it."""
    db = tmp_path / "new.duckdb"
    squares = _many_squares(tmp_path / "squares.geojson", 3000)
    result = _run_with_file_size_limit(600_000, "--db", str(db), "-q", "ingest", "boundaries",
                                       str(squares), "--allow-unlisted-codes")
    assert result.returncode == 6, result.stderr
    assert f"no database was created at {db}" in " ".join(result.stderr.split())
    assert not db.exists() and not Path(f"{db}.wal").exists() and not _leftovers(db)


# -- 10. YAML bombs and binary files given for text ------------------------------------------------

def billion_laughs(path: Path) -> Path:
    """A 457-byte code-changes file whose one note is nine levels of nine aliases: 9^9 (387
    million) items when expanded. Before the limits, printing it ran 35 s to 1.45 GB and a
    MemoryError (under a 3 GB limit); the issue saw 90 s and 1.3 GB."""
    levels = "abcdefghi"
    lines = ["add:", "  - old: E08000020", "    new: E08000037", "    year: 2013",
             "    a: &a [" + ",".join(["lol"] * 9) + "]"]
    lines += [f"    {cur}: &{cur} [" + ",".join([f"*{prev}"] * 9) + "]"
              for prev, cur in itertools.pairwise(levels)]
    lines.append("    note: [" + ",".join(["*i"] * 9) + "]")
    path.write_text("\n".join(lines) + "\n")
    return path


def _bounded(limit_bytes: int) -> None:   # runs in the child: a bomb must not take the machine
    resource.setrlimit(resource.RLIMIT_AS, (limit_bytes, limit_bytes))


def test_a_yaml_billion_laughs_as_code_changes_is_refused_at_once(db: Path, tmp_path: Path):
    bomb = billion_laughs(tmp_path / "code_changes.yaml")
    assert bomb.stat().st_size < 500
    started = time.monotonic()
    result = subprocess.run(
        [*GEO_CS, "--db", str(db), "--code-changes", str(bomb), "crosswalk", "codes", "-d", "E08000020"],
        capture_output=True, text=True, timeout=60, preexec_fn=lambda: _bounded(3 << 30))
    elapsed = time.monotonic() - started
    assert result.returncode == 3, result.stderr
    message = " ".join(result.stderr.split())
    assert f"{bomb}: its aliases (*name) expand it by more than 100,000 values" in message
    assert elapsed < 20, elapsed   # about 2 s, most of it the command's imports


@pytest.mark.parametrize(("text", "fragments"), [
    ("add: [" + ", ".join(["&x 1"] + ["*x"] * 101) + "]\n",
     ["line 1: more than 100 aliases (*name)"]),
    ("add: &a [*a]\n", ["line 1: an alias refers to the collection it is in"]),
    ("add: " + "[" * 5000 + "]" * 5000 + "\n", ["nested too deeply"]),
    ("# padding\n" * 110_000, ["larger than 1 MB"]),
    ("add:\n  - [\n", ["not valid YAML"]),
], ids=["too many aliases", "recursive alias", "deep nesting", "too large", "invalid"])
def test_a_hostile_yaml_is_refused_naming_the_file(text: str, fragments: list[str], tmp_path: Path):
    from geo_cs.codehistory import load_overrides
    from geo_cs.errors import InputError

    path = tmp_path / "code_changes.yaml"
    path.write_text(text)
    with pytest.raises(InputError) as caught:
        load_overrides(path)
    message = str(caught.value)
    assert message.startswith(str(path))
    for fragment in fragments:
        assert fragment in message


def _zip(path: Path, members: dict[str, str]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in members.items():
            archive.writestr(name, text)
    return path


#: Binary files given for a text file, and what geo-cs must call them.
BINARIES: dict[str, tuple[Callable[[Path], None], str]] = {
    "zip": (lambda p: _zip(p, {"data.csv": "area_code,period\r\nE01000001,2006\r\n" * 500}),
            "is a zip archive, not a {kind} text file: unzip it"),
    "xlsx": (lambda p: _zip(p, {"[Content_Types].xml": "<Types/>", "xl/workbook.xml": "<workbook/>"}),
             "is an Excel workbook (.xlsx, a zip archive), not a {kind} text file: save the sheet as CSV"),
    "gzip": (lambda p: p.write_bytes(gzip.compress(b"area_code,period\n" * 500)),
             "is a gzip-compressed file, not a {kind} text file: decompress it first"),
    "nul bytes": (lambda p: p.write_bytes(b"area_code: x\n\x00\x01\x02\x03" * 10),
                  "line 2: not a {readable}{kind} {file}: it holds NUL bytes"),
}


@pytest.mark.parametrize("kind", list(BINARIES))
@pytest.mark.parametrize("command", [
    ["ingest", "indicator", "{path}", "--layout", "long", "--set", "lsoa2011"],
    ["ingest", "lookup", "{path}"],
    ["ingest", "postcodes", "{path}"],
], ids=["indicator", "lookup", "postcodes"])
def test_a_binary_file_given_for_a_csv_is_called_what_it_is(
    kind: str, command: list[str], db: Path, tmp_path: Path, capsys: pytest.CaptureFixture
):
    """It used to be read as a header of garbage, a newline error or an internal error."""
    make, expected = BINARIES[kind]
    path = tmp_path / "data.csv"
    make(path)
    message = refused(capsys, db, *[a.format(path=path) for a in command])
    assert f"{path}" in message
    assert expected.format(kind="CSV", readable="readable ", file="file") in message


@pytest.mark.parametrize("kind", list(BINARIES))
def test_a_binary_file_given_for_a_yaml_is_called_what_it_is(kind: str, tmp_path: Path):
    from geo_cs.errors import InputError
    from geo_cs.partnerships import load_partnerships

    make, expected = BINARIES[kind]
    path = tmp_path / "partnerships.yaml"
    make(path)
    with pytest.raises(InputError) as caught:
        load_partnerships([path])
    assert str(caught.value).startswith(str(path))
    assert expected.format(kind="YAML", readable="", file="text file") in str(caught.value)


def test_yaml_with_a_few_aliases_still_loads(tmp_path: Path):
    from geo_cs.config import load_yaml

    path = tmp_path / "ok.yaml"
    path.write_text("base: &base {kind: recode, year: 2013}\nadd:\n  - {<<: *base, old: E1}\n"
                    "  - {<<: *base, old: E2}\n")
    assert load_yaml(path)["add"][1] == {"kind": "recode", "year": 2013, "old": "E2"}


def test_a_failed_first_ingest_never_deletes_a_database_another_one_completed(
    seeded_db: Path, tmp_path: Path
):
    """Two first ingests into a new --db: the second waits on the update lock while the first
    completes the database, then fails on a bad file. It used to delete the path it thought it
    had created, and so the first one's complete database; now it leaves it byte-identical."""
    db = tmp_path / "new.duckdb"
    bad = _geojson(tmp_path / "areas.geojson", {GRID_CODES[0]: COLLINEAR})
    with open(db.with_name(f".{db.name}.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)   # the first ingest, still running
        second = subprocess.Popen([*GEO_CS, "--db", str(db), "-q", "ingest", "boundaries", str(bad)],
                                  stderr=subprocess.PIPE, text=True)
        time.sleep(3)   # the second has started (imports, then the lock) and sees no database
        shutil.copy(seeded_db, db)   # the first one's result, in place
    assert second.wait(timeout=120) == 3, second.stderr.read()
    assert db.exists(), "the failed ingest deleted the database the other one completed"
    assert sha256(db) == sha256(seeded_db)
