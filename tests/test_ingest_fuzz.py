"""Property-based fuzzing of the CSV and GeoJSON readers (hypothesis).

Two kinds of property:

- *never crash, never half-write*: any mutation of a valid file (cut short anywhere, bytes
  flipped, inserted or deleted, values replaced by hostile ones) is either ingested or refused
  with a :class:`~geo_cs.errors.GeoCsError` — no other exception — and a refusal leaves the
  database exactly as it was;
- *round trip*: any valid table or set of polygons, however it is encoded (UTF-8 or
  Windows-1252, quoted thousands separators, suppression markers), is stored exactly.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from conftest import GRID_CODES, grid_frame, snapshot
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shapely.geometry import box, mapping

from geo_cs.errors import GeoCsError
from geo_cs.ingest import ingest_boundaries, ingest_indicator
from geo_cs.ingest.csvfile import read_csv_header, read_csv_text
from geo_cs.ingest.indicators import spec_from_options
from geo_cs.store import Store

#: hypothesis over whole ingests: a minute or more; the default run leaves them to CI
pytestmark = pytest.mark.slow

#: examples per property; CI keeps it small, ``GEO_CS_FUZZ_EXAMPLES=2000`` for a long hunt
FUZZ = settings(max_examples=int(os.environ.get("GEO_CS_FUZZ_EXAMPLES", "25")), deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def grid_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fuzz")
    boundaries = root / "grid.geojson"
    grid_frame().to_file(boundaries)
    path = root / "grid.duckdb"
    with Store.open(path) as store:
        ingest_boundaries(store, [boundaries])
    return path


def fresh_copy(db: Path, tmp: Path) -> Path:
    target = tmp / "copy.duckdb"
    target.unlink(missing_ok=True)
    shutil.copy(db, target)
    return target


def ingest_or_refuse(db: Path, ingest) -> bool:
    """Run ``ingest(store)``; True if it landed. A refusal must be a GeoCsError that changed
    nothing (anything else propagates and fails the test)."""
    with Store.open(db) as store:
        before = snapshot(store)
        try:
            ingest(store)
            return True
        except GeoCsError as exc:
            assert str(exc)
            assert snapshot(store) == before
            return False


# -- mutations of valid bytes -------------------------------------------------------------------

def mutated(valid: bytes) -> st.SearchStrategy[bytes]:
    """``valid`` cut short, with bytes flipped, inserted or deleted, or spliced with junk."""
    n = len(valid)
    cut = st.integers(0, n).map(lambda i: valid[:i])
    flip = st.tuples(st.integers(0, n - 1), st.integers(0, 255)).map(
        lambda t: valid[: t[0]] + bytes([t[1]]) + valid[t[0] + 1:])
    insert = st.tuples(st.integers(0, n), st.binary(min_size=1, max_size=8)).map(
        lambda t: valid[: t[0]] + t[1] + valid[t[0]:])
    delete = st.tuples(st.integers(0, n - 1), st.integers(1, 16)).map(
        lambda t: valid[: t[0]] + valid[t[0] + t[1]:])
    junk = st.sampled_from([b",", b'"', b"\n", b"\r", b"\x00", b"\xff\xfe", b"NaN", b"1e309",
                            b"-", b";", b"\t", b"{", b"]", b"null"])
    splice = st.tuples(st.integers(0, n), junk).map(lambda t: valid[: t[0]] + t[1] + valid[t[0]:])
    return st.one_of(cut, flip, insert, delete, splice)


VALID_CSV = (
    "area_code,period,measure,value,denominator\n"
    + "".join(f"{c},May 2006,claimants,{10 * (i + 1)},{100 * (i + 2)}\n" for i, c in enumerate(GRID_CODES))
).encode()


@FUZZ
@given(mutated(VALID_CSV))
def test_any_mutation_of_a_csv_is_ingested_or_refused_cleanly(grid_db: Path, tmp_path: Path,
                                                                data: bytes):
    path = tmp_path / "wacg.csv"
    path.write_bytes(data)
    db = fresh_copy(grid_db, tmp_path)
    landed = ingest_or_refuse(db, lambda store: ingest_indicator(
        store, path, spec_from_options(path, "long", "lsoa2011", source_id="wacg")))
    if landed:
        # what landed is what the file says: every stored value is a finite count
        with Store.open(db, read_only=True) as store:
            values = [v for (v,) in store.sql("SELECT value FROM observations").fetchall()]
        assert all(v is None or 0 <= v < float("inf") for v in values)


@FUZZ
@given(st.binary(max_size=400))
def test_arbitrary_bytes_are_read_or_refused(tmp_path: Path, data: bytes):
    path = tmp_path / "any.csv"
    path.write_bytes(data)
    try:
        frame = read_csv_text(path)
    except GeoCsError:
        return
    # every cell is text, and no column was taken for an index (pandas does that when every row
    # has one field more than the header): as many columns as the header has fields
    assert all(isinstance(v, str) for v in frame.to_numpy().ravel())
    try:
        header = read_csv_header(path)
    except GeoCsError:
        return  # a header spread over several lines (a quoted newline): not a one-line header
    assert len(frame.columns) == len(header)


cell_text = st.text(st.characters(codec="cp1252", exclude_characters="\r\n\x00"), max_size=12)


@FUZZ
@given(counts=st.lists(st.one_of(st.integers(0, 5_000_000), st.none()),
                       min_size=len(GRID_CODES), max_size=len(GRID_CODES)),
       notes=st.lists(cell_text, min_size=len(GRID_CODES), max_size=len(GRID_CODES)),
       encoding=st.sampled_from(["utf-8", "utf-8-sig", "cp1252"]),
       thousands=st.booleans())
def test_any_valid_table_round_trips_exactly(grid_db: Path, tmp_path: Path, counts, notes,
                                            encoding, thousands):
    def cell(count: int | None) -> str:
        if count is None:
            return "*"  # a suppression marker: stored as NULL
        return f'"{count:,}"' if thousands else str(count)

    def quoted(text: str) -> str:
        return '"' + text.replace('"', '""') + '"'

    lines = ["area_code,period,measure,value,notes"] + [
        f"{code},Aug 2007,claimants,{cell(count)},{quoted(note)}"
        for code, count, note in zip(GRID_CODES, counts, notes, strict=True)
    ]
    path = tmp_path / "wacg.csv"
    path.write_bytes(("\n".join(lines) + "\n").encode(encoding))
    db = fresh_copy(grid_db, tmp_path)
    with Store.open(db) as store:
        ingest_indicator(store, path, spec_from_options(path, "long", "lsoa2011", source_id="wacg"))
        stored = dict(store.sql("SELECT code, value FROM observations").fetchall())
    assert stored == {c: (None if n is None else float(n)) for c, n in zip(GRID_CODES, counts, strict=True)}


# -- GeoJSON ------------------------------------------------------------------------------------

def feature_collection(frame) -> dict:
    return {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"LSOA11CD": row.LSOA11CD, "LSOA11NM": row.LSOA11NM},
         "geometry": mapping(row.geometry)} for row in frame.itertuples()]}


VALID_GEOJSON = json.dumps(feature_collection(grid_frame())).encode()


@FUZZ
@given(mutated(VALID_GEOJSON))
def test_any_mutation_of_a_geojson_is_ingested_or_refused_cleanly(grid_db: Path, tmp_path: Path,
                                                                    data: bytes):
    path = tmp_path / "areas.geojson"
    path.write_bytes(data)
    db = fresh_copy(grid_db, tmp_path)
    if ingest_or_refuse(db, lambda store: ingest_boundaries(store, [path])):
        with Store.open(db, read_only=True) as store:
            bad = store.sql("SELECT count(*) FROM areas WHERE NOT ST_IsValid(geom_27700) "
                            "OR ST_Area(geom_27700) <= 0").fetchone()[0]
        assert bad == 0


#: LSOA 2011 codes on the official list (E01000004 is a 2001-only code, so it is skipped)
LISTED_CODES = ["E01000001", "E01000002", "E01000003", "E01000005", "E01000006", "E01000007",
                "E01000008", "E01000009"]

hostile_number = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 1e308, -1e308, 5e-324, 700000.0, 1_300_000.0]),
)


@FUZZ
@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 4), st.integers(0, 1), hostile_number),
                min_size=1, max_size=4))
def test_hostile_coordinates_are_refused_or_stored_valid(grid_db: Path, tmp_path: Path, edits):
    collection = json.loads(VALID_GEOJSON)
    for feature, vertex, axis, number in edits:
        collection["features"][feature]["geometry"]["coordinates"][0][vertex][axis] = number
    path = tmp_path / "areas.geojson"
    path.write_text(json.dumps(collection))  # NaN and Infinity as the non-standard literals
    db = fresh_copy(grid_db, tmp_path)
    if ingest_or_refuse(db, lambda store: ingest_boundaries(store, [path])):
        with Store.open(db, read_only=True) as store:
            assert store.sql("SELECT bool_and(ST_IsValid(geom_27700)) FROM areas").fetchone()[0]


@FUZZ
@given(st.lists(st.tuples(st.floats(-5.0, 1.5), st.floats(50.5, 58.0), st.floats(1e-4, 0.05)),
                min_size=1, max_size=8, unique_by=lambda t: (round(t[0], 2), round(t[1], 2))))
def test_any_squares_in_great_britain_round_trip(tmp_path: Path, squares):
    codes = LISTED_CODES[: len(squares)]
    features = [{"type": "Feature", "properties": {"LSOA11CD": code},
                 "geometry": mapping(box(x, y, x + size, y + size))}
                for code, (x, y, size) in zip(codes, squares, strict=True)]
    path = tmp_path / "areas.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    with Store.open(":memory:") as store:
        report = ingest_boundaries(store, [path], on_duplicate="first")
        stored = dict(store.sql("SELECT code, ST_Area(geom_4326) FROM areas").fetchall())
    assert report.areas_written == len(codes)
    for code, (_, _, size) in zip(codes, squares, strict=True):
        assert stored[code] == pytest.approx(size * size, rel=1e-9)
