"""A corpus of broken inputs for every ingester, run through the real CLI (in-process).

Each case writes one broken file the way users' files break — cut short, mis-encoded, with the
wrong columns, codes or geometries — and states what geo-cs must do with it: refuse it with a
message naming the file (and the row or feature where there is one) and exit code 3 or 5, or
repair it as documented and say so. In every refusal the database is byte-for-byte what it was
(``snapshot``) and nothing printed is a Python traceback.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import geopandas as gpd
import pytest
from conftest import GRID_CODES, grid_frame, run_cli, snapshot, write_topojson
from shapely.geometry import LineString, box, mapping

from geo_cs.ingest import ingest_boundaries, ingest_indicator, ingest_lookup
from geo_cs.ingest.indicators import spec_from_options
from geo_cs.store import Store

LONG_HEADER = "area_code,period,measure,value,denominator\n"
LONG_ROWS = "".join(
    f"{code},May 2006,claimants,{10 * (i + 1)},{100 * (i + 2)}\n" for i, code in enumerate(GRID_CODES)
)
LOOKUP_HEADER = "LSOA11CD,LSOA11NM,LSOA21CD,LSOA21NM,CHGIND,LAD22CD,LAD22NM,LAD22NMW,ObjectId\n"
#: each grid area unchanged in 2021, except E01000010, which was split (E01000007 is on the
#: 2021 list, E01000010 is not)
LOOKUP_ROWS = "".join(
    f"{code},Testtown {i:03d}A,{code if code != 'E01000010' else 'E01000007'},Testtown {i:03d}A,"
    f"{'U' if code != 'E01000010' else 'S'},E08000035,Leeds,,{i + 1}\n"
    for i, code in enumerate(GRID_CODES)
)
INDICATOR = ["ingest", "indicator", "--layout", "long", "--set", "lsoa2011", "--source-id", "wacg"]


@pytest.fixture(scope="module")
def seeded_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database holding the grid's boundaries, one quarter of claimants and a lookup."""
    root = tmp_path_factory.mktemp("seed")
    path = root / "seed.duckdb"
    boundaries = root / "grid.geojson"
    grid_frame().to_file(boundaries)
    indicator = root / "wacg.csv"
    indicator.write_text(LONG_HEADER + LONG_ROWS)
    lookup = root / "lsoa11_lsoa21.csv"
    lookup.write_text(LOOKUP_HEADER + LOOKUP_ROWS)
    with Store.open(path) as store:
        ingest_boundaries(store, [boundaries])
        ingest_indicator(store, indicator, spec_from_options(
            indicator, "long", "lsoa2011", source_id="wacg"))
        ingest_lookup(store, lookup)
    return path


@pytest.fixture
def db(seeded_db: Path, tmp_path: Path) -> Path:
    path = tmp_path / "geo-cs.duckdb"
    shutil.copy(seeded_db, path)
    return path


def read_snapshot(db: Path) -> dict[str, list]:
    with Store.open(db, read_only=True) as store:
        return snapshot(store)


# -- the corpus: each maker writes a broken file and returns (CLI arguments, message fragments) --

Case = Callable[[Path], tuple[list[str], list[str]]]


def _geojson(features: list[dict]) -> str:
    return json.dumps({"type": "FeatureCollection", "features": features})


def _features(frame: gpd.GeoDataFrame | None = None) -> list[dict]:
    frame = grid_frame() if frame is None else frame
    return [{"type": "Feature", "geometry": mapping(geometry),
             "properties": {k: v for k, v in row.items() if k != "geometry"}}
            for (_, row), geometry in zip(frame.iterrows(), frame.geometry, strict=True)]


def _boundary(tmp: Path, text: str | bytes, name: str = "areas.geojson") -> Path:
    path = tmp / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def many_squares(n: int) -> gpd.GeoDataFrame:
    """``n`` small squares near Leeds with distinct LSOA 2011-style codes."""
    side = 0.0005
    squares = [box(-1.6 + (i % 100) * side, 53.7 + (i // 100) * side,
                   -1.6 + (i % 100 + 1) * side, 53.7 + (i // 100 + 1) * side) for i in range(n)]
    codes = [f"E0100{i + 1:04d}" for i in range(n)]
    return gpd.GeoDataFrame({"LSOA11CD": codes, "LSOA11NM": codes}, geometry=squares, crs=4326)


BOUNDARY_CASES: dict[str, Case] = {
    "geojson cut short": lambda t: (
        [str(_boundary(t, _geojson(_features())[:700]))], ["areas.geojson", "cannot read"]),
    "large geojson cut mid-record": lambda t: (
        [str(_boundary(t, (lambda s: s[: int(len(s) * 0.7)])(_geojson(_features(many_squares(3000))))))],
        ["areas.geojson", "cannot read"]),
    "json syntax error": lambda t: (
        [str(_boundary(t, _geojson(_features()).replace(":", ";", 3)))], ["areas.geojson"]),
    "json that is not geojson": lambda t: (
        [str(_boundary(t, '{"hello": "world"}'))], ["areas.geojson"]),
    "empty file": lambda t: ([str(_boundary(t, ""))], ["areas.geojson"]),
    "binary garbage": lambda t: (
        [str(_boundary(t, bytes(range(256)) * 8))], ["areas.geojson", "cannot read"]),
    "lines instead of polygons": lambda t: (
        [str(_boundary(t, _geojson([{**f, "geometry": mapping(LineString([(-1.5, 53.8), (-1.49, 53.81)]))}
                                    for f in _features()])))],
        ["areas.geojson", "feature 1", "LineString", "must be polygons"]),
    "one point among polygons": lambda t: (
        [str(_boundary(t, _geojson([*_features()[:5], {**_features()[5], "geometry": {"type": "Point", "coordinates": [-1.5, 53.8]}}])))],
        ["areas.geojson", "feature 6", "Point"]),
    "null geometry": lambda t: (
        [str(_boundary(t, _geojson([*_features()[:5], {**_features()[5], "geometry": None}])))],
        ["areas.geojson", "feature 6", "has no geometry"]),
    "nan coordinates": lambda t: (
        [str(_boundary(t, _geojson(_features()).replace("-1.55,", "NaN,", 1)))],
        ["areas.geojson", "feature 1", "not finite"]),
    "huge coordinates": lambda t: (
        [str(_boundary(t, _geojson(_features()).replace("-1.55,", "-1e300,", 1)))],
        ["areas.geojson", "no CRS declared for projected coordinates"]),
    "british national grid without a crs": lambda t: (
        [str(_boundary(t, _geojson(_features(grid_frame().to_crs(27700)))))],
        ["areas.geojson", "no CRS declared for projected coordinates"]),
    "codes of another geography": lambda t: (
        [str(_boundary(t, _geojson(_features(grid_frame(
            codes=["S01000001", *GRID_CODES[1:]])))))],
        ["areas.geojson", "feature 1", "'S01000001' is not a lsoa2011 code"]),
    "a column of another vintage": lambda t: (
        [str(_boundary(t, _geojson(_features(grid_frame(code_col="LSOA21CD", name_col="LSOA21NM")))
                       )), "--set", "lsoa2011"],
        ["areas.geojson", "no code column", "LSOA21CD"]),
    "codes of the wrong vintage": lambda t: (
        # E01035000 exists only from 2021: a 2021 file given to the 2011 set
        [str(_boundary(t, _geojson(_features(grid_frame(codes=[*GRID_CODES[:5], "E01035000"])))))],
        ["areas.geojson", "feature 6", "'E01035000' is not on the official list of lsoa2011",
         "use --set lsoa2021"]),
    "topojson cut short": lambda t: (
        [str(_boundary(t, write_topojson(t / "x.json", grid_frame(), "lsoa").read_text()[:500],
                       "areas.json"))], ["areas.json", "cannot read"]),
    "topojson arc index out of range": lambda t: (
        [str(_boundary(t, write_topojson(t / "x.json", grid_frame(), "lsoa").read_text()
                       .replace('"arcs": [[0]]', '"arcs": [[999]]'), "areas.json"))],
        ["areas.json"]),
    "shapefile without its dbf": lambda t: (
        [str((lambda p: (grid_frame().to_file(p), p.with_suffix(".dbf").unlink(), p)[2])(
            t / "areas.shp"))], ["areas.shp"]),
    "corrupt geoparquet": lambda t: (
        [str(_boundary(t, b"PAR1" + bytes(200) + b"PAR1", "areas.parquet"))],
        ["areas.parquet", "cannot read"]),
}


def _csv(tmp: Path, text: str | bytes, name: str = "wacg.csv") -> Path:
    path = tmp / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


INDICATOR_CASES: dict[str, Case] = {
    "empty file": lambda t: ([str(_csv(t, ""))], ["wacg.csv", "not a readable CSV"]),
    "header only": lambda t: ([str(_csv(t, LONG_HEADER))], ["wacg.csv", "no data rows"]),
    "cut short mid-record": lambda t: (
        [str(_csv(t, (LONG_HEADER + LONG_ROWS)[:-12]))],
        ["wacg.csv", "line 7", "3 fields where the header has 5", "cut short"]),
    "missing column": lambda t: (
        [str(_csv(t, "area_code,period,value\nE01000001,May 2006,3\n"))],
        ["wacg.csv", "measure"]),
    "unquoted thousands separator": lambda t: (
        [str(_csv(t, LONG_HEADER + "E01000001,May 2006,claimants,1,200,4000\n"))],
        ["wacg.csv", "line 2", "6 fields where the header has 5", "thousands separator"]),
    "duplicate rows": lambda t: (
        [str(_csv(t, LONG_HEADER + LONG_ROWS + LONG_ROWS.splitlines(keepends=True)[0]))],
        ["wacg.csv", "rows 2, 8", "duplicate value for area E01000001"]),
    "a code of the wrong vintage": lambda t: (
        # E01035000 exists only from 2021; the store holds the 2011 set
        [str(_csv(t, LONG_HEADER + LONG_ROWS.replace(GRID_CODES[3], "E01035000")))],
        ["wacg.csv", "row 5", "'E01035000' is not a lsoa2011 code"]),
    "a typo in a code": lambda t: (
        [str(_csv(t, LONG_HEADER + LONG_ROWS.replace(GRID_CODES[3], "E0100004")))],
        ["wacg.csv", "row 5", "'E0100004'"]),
    "not a number": lambda t: (
        [str(_csv(t, LONG_HEADER + LONG_ROWS.replace(",30,", ",thirty,")))],
        ["wacg.csv", "row 4", "'thirty' is not a number"]),
    "nan value": lambda t: (
        [str(_csv(t, LONG_HEADER + LONG_ROWS.replace(",30,", ",NaN,")))],
        ["wacg.csv", "row 4", "'NaN' is not a number"]),
    "infinite value": lambda t: (
        [str(_csv(t, LONG_HEADER + LONG_ROWS.replace(",30,", ",inf,")))],
        ["wacg.csv", "row 4", "'inf' is not a number"]),
    "negative count": lambda t: (
        [str(_csv(t, LONG_HEADER + LONG_ROWS.replace(",30,", ",-30,")))],
        ["wacg.csv", "row 4", "out of range"]),
    "unreadable period": lambda t: (
        [str(_csv(t, LONG_HEADER + LONG_ROWS.replace("May 2006", "Spring 2006", 1)))],
        ["wacg.csv", "row 2", "'Spring 2006'"]),
    "nul bytes": lambda t: (
        [str(_csv(t, (LONG_HEADER + LONG_ROWS).encode().replace(b",30,", b",3\x000,")))],
        ["wacg.csv", "line 4", "NUL bytes"]),
    "utf-16 export": lambda t: (
        [str(_csv(t, (LONG_HEADER + LONG_ROWS).encode("utf-16")))], ["wacg.csv", "UTF-16"]),
    "binary garbage": lambda t: (
        [str(_csv(t, bytes(range(256)) * 8))], ["wacg.csv", "NUL bytes"]),
    "a spreadsheet saved with a csv name": lambda t: (
        [str(_csv(t, b"PK\x03\x04" + bytes(300)))], ["wacg.csv", ".xlsx workbook"]),
}

LOOKUP_CASES: dict[str, Case] = {
    "empty file": lambda t: ([str(_csv(t, "", "lookup.csv"))], ["lookup.csv", "not a readable CSV"]),
    "unknown layout": lambda t: (
        [str(_csv(t, "A,B\n1,2\n", "lookup.csv"))], ["lookup.csv", "not a lookup layout"]),
    "missing column": lambda t: (
        [str(_csv(t, LOOKUP_HEADER.replace("CHGIND,", "") + "\n", "lookup.csv")), "--kind",
         "lsoa2011_lsoa2021"], ["lookup.csv", "CHGIND"]),
    "cut short mid-record": lambda t: (
        [str(_csv(t, LOOKUP_HEADER + LOOKUP_ROWS[:-30], "lookup.csv"))],
        ["lookup.csv", "line 7", "cut short"]),
    "bad change indicator": lambda t: (
        [str(_csv(t, LOOKUP_HEADER + LOOKUP_ROWS.replace(",U,", ",Q,", 1), "lookup.csv"))],
        ["lookup.csv", "row 2", "'Q'"]),
    "a typo in a code": lambda t: (
        [str(_csv(t, LOOKUP_HEADER + LOOKUP_ROWS.replace("E01000003,", "E0100003,", 1), "lookup.csv"))],
        ["lookup.csv", "row 4", "'E0100003' is not a GSS code"]),
    "binary garbage": lambda t: (
        [str(_csv(t, bytes(range(256)) * 8, "lookup.csv"))], ["lookup.csv"]),
}

CORPUS = (
    [pytest.param(["ingest", "boundaries"], make, id=f"boundaries: {name}")
     for name, make in BOUNDARY_CASES.items()]
    + [pytest.param(INDICATOR, make, id=f"indicator: {name}") for name, make in INDICATOR_CASES.items()]
    + [pytest.param(["ingest", "lookup"], make, id=f"lookup: {name}") for name, make in LOOKUP_CASES.items()]
)


@pytest.mark.parametrize(("command", "make"), CORPUS)
def test_broken_input_is_refused_naming_what_is_wrong_and_changes_nothing(
    command: list[str], make: Case, db: Path, tmp_path: Path, capsys: pytest.CaptureFixture
):
    before = read_snapshot(db)
    args, fragments = make(tmp_path)
    result = run_cli(capsys, "--db", str(db), "-q", *command, *args)
    assert result.code in (3, 5), result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stderr.startswith("error: ")
    message = " ".join(result.stderr.split())
    for fragment in fragments:
        assert fragment in message
    assert read_snapshot(db) == before


# -- documented repairs: accepted, and the report says what was done --------------------------

def test_windows_1252_and_mixed_encodings_are_read_line_by_line(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture
):
    # a file assembled from two sources: UTF-8 lines with a UTF-8 'é', one line saved by Excel
    text = (LONG_HEADER.replace("\n", ",notes\n").encode()
            + "E01000001,Nov 2006,claimants,11,100,Café – checked\n".encode()
            + "E01000002,Nov 2006,claimants,12,100,Café – checked\n".encode("cp1252"))
    path = _csv(tmp_path, text)
    result = run_cli(capsys, "--db", str(db), *INDICATOR, str(path))
    assert result.code == 0, result.stderr
    assert "1 line was not UTF-8 and was read as Windows-1252" in result.stdout
    with Store.open(db, read_only=True) as store:
        assert store.sql("SELECT count(*) FROM observations WHERE period_id = '2006-11'"
                         ).fetchone()[0] == 2


def test_extra_columns_and_quoted_thousands_are_accepted(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture
):
    text = ("area_code,period,measure,value,denominator,notes\n"
            'E01000001,Aug 2006,claimants,"1,200","12,000",checked\n')
    result = run_cli(capsys, "--db", str(db), "-q", *INDICATOR, str(_csv(tmp_path, text)))
    assert result.code == 0, result.stderr
    with Store.open(db, read_only=True) as store:
        assert store.sql("SELECT value, denominator FROM observations WHERE period_id = '2006-08'"
                         ).fetchone() == (1200.0, 12000.0)
