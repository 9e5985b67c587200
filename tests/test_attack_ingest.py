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

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from conftest import GRID_CODES, grid_frame, run_cli, write_topojson
from shapely.geometry import mapping

from geo_cs.ingest import ingest_boundaries
from geo_cs.store import Store


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
