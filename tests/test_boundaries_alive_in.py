"""``ingest boundaries --alive-in YEAR``: one edition of districts from a file holding several
(features with ``start``/``end`` years), its codes as the district code history has them that
year, on a few hand-made squares and on the real UK file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import DX, DY, ORIGIN, run_cli
from shapely.geometry import box, mapping

from geo_cs.errors import InputError
from geo_cs.ingest import ingest_boundaries, ingest_lookup
from geo_cs.store import Store

#: (code, name, start, end) of a file of several district editions; None = no such property.
#: Chiltern and the old North Lanarkshire are stale (no ``end``) where the history has them
#: merged or recoded by 2020: they show what is not renamed.
FEATURES = [
    ("E06000001", "Hartlepool", None, None),
    ("E06000028", "Bournemouth", None, 2018),
    ("E06000058", "Bournemouth, Christchurch and Poole", 2019, None),
    ("E07000004", "Aylesbury Vale", None, 2019),
    ("E07000005", "Chiltern", None, None),
    ("E06000060", "Buckinghamshire", 2020, None),
    ("S12000046", "Glasgow City", None, None),
    ("S12000044", "North Lanarkshire", None, None),
    ("S12000050", "North Lanarkshire", 2019, None),
    ("W06000001", "Isle of Anglesey", None, None),
    ("N09000003", "Belfast", None, None),
    ("N09000099", "Gone by 2020", None, 2015),
]
#: The official changes list's layout (lad_changes_2014_2025.csv), rows for the codes above.
LAD_CHANGES = """oldcd,oldnm,newcd,newnm,type,start
E06000028,Bournemouth,E06000058,"Bournemouth, Christchurch and Poole",merger,2019
S12000044,North Lanarkshire,S12000050,North Lanarkshire,new_geo,2019
S12000046,Glasgow City,S12000049,Glasgow City,new_geo,2019
E07000004,Aylesbury Vale,E06000060,Buckinghamshire,merger,2020
E07000005,Chiltern,E06000060,Buckinghamshire,merger,2020
"""
DISTRICTS = {"set_id": "lad2020", "code_col": "areacd", "name_col": "areanm"}


def _features(rows: list[tuple]) -> list[dict]:
    """GeoJSON features: a row of 1 km squares near Leeds (where they are does not matter to a
    district set without a code list), each with only the years it has."""
    x0, y0 = ORIGIN
    out = []
    for i, (code, name, start, end) in enumerate(rows):
        props = {"areacd": code, "areanm": name}
        props |= {k: v for k, v in (("start", start), ("end", end)) if v is not None}
        square = box(x0 + (i % 6) * DX, y0 + (i // 6) * DY, x0 + (i % 6 + 1) * DX, y0 + (i // 6 + 1) * DY)
        out.append({"type": "Feature", "properties": props, "geometry": mapping(square)})
    return out


def write_geojson(path: Path, rows: list[tuple]) -> Path:
    path.write_text(json.dumps({"type": "FeatureCollection", "features": _features(rows)}))
    return path


def write_topojson(path: Path, rows: list[tuple], layer: str = "ltla") -> Path:
    """A minimal TopoJSON (one arc per ring, no quantisation) like uk_admin_2014_2025.topojson."""
    arcs, geometries = [], []
    for feature in _features(rows):
        arcs.append([list(c) for c in feature["geometry"]["coordinates"][0]])
        geometries.append({"type": "Polygon", "arcs": [[len(arcs) - 1]],
                           "properties": feature["properties"]})
    path.write_text(json.dumps({"type": "Topology", "arcs": arcs, "objects": {
        layer: {"type": "GeometryCollection", "geometries": geometries}}}))
    return path


def _codes(store: Store, set_id: str = "lad2020") -> dict[str, str]:
    return dict(store.sql("SELECT code, name FROM areas WHERE set_id = ?", [set_id]).fetchall())


@pytest.fixture
def editions(tmp_path: Path) -> Path:
    return write_geojson(tmp_path / "districts.geojson", FEATURES)


@pytest.fixture
def history(tmp_path: Path, store: Store) -> Store:
    """The store with the district changes list: the code history the renames come from."""
    path = tmp_path / "lad_changes_2014_2025.csv"
    path.write_text(LAD_CHANGES, encoding="utf-8")
    ingest_lookup(store, path)
    return store


@pytest.mark.parametrize("fmt", ["geojson", "topojson"])
def test_only_features_in_use_that_year_of_the_sets_nations_are_kept(tmp_path: Path, store: Store, fmt):
    path = (write_geojson(tmp_path / "d.geojson", FEATURES) if fmt == "geojson"
            else write_topojson(tmp_path / "d.topojson", FEATURES))
    report = ingest_boundaries(store, [path], alive_in=2020, **DISTRICTS)
    # no code history in the store: every code as the file has it
    assert set(_codes(store)) == {"E06000001", "E06000058", "E07000005", "E06000060", "S12000046",
                                  "S12000044", "S12000050", "W06000001"}
    assert (report.features_read, report.areas_written, report.not_alive) == (12, 8, 3)
    assert report.other_nations == {"N": ["N09000003"]}
    assert report.renamed == [] and report.code_history_held is False
    lines = report.lines()
    assert lines[:4] == [
        "lad2020: 12 features read from 1 file; 8 areas written",
        "3 features not in use in 2020 left out (their start/end years)",
        "1 feature of Northern Ireland left out: lad2020 covers England, Wales and Scotland only "
        "(N09000003)",
        "no district code history in the store: codes stored as the file has them, none renamed "
        "to its 2020 code (ingest the district changes lookup, lad_changes, first to rename them)",
    ]


def test_a_code_recoded_by_that_year_is_stored_under_its_new_code(editions: Path, history: Store):
    report = ingest_boundaries(history, [editions], alive_in=2020, **DISTRICTS)
    codes = _codes(history)
    assert codes["S12000049"] == "Glasgow City" and "S12000046" not in codes
    # a merger is not a recode, and a target the file already holds gets no second geometry
    assert {"E07000005", "S12000044", "S12000050", "E06000060"} <= set(codes)
    assert "E07000004" not in codes and "E06000028" not in codes
    assert report.renamed == [("S12000046", "Glasgow City", "S12000049")]
    lines = report.lines()
    assert "S12000046 Glasgow City stored as S12000049, its code in 2020 (district code history)" in lines
    assert ("E07000005 Chiltern kept under its own code, although the district code history has it "
            "as E06000060 in 2020: it was merged into another district, not recoded") in lines
    assert ("S12000044 North Lanarkshire kept under its own code, although the district code history "
            "has it as S12000050 in 2020: the file also holds S12000050 in use in 2020") in lines
    assert not any(line.startswith("no district code history") for line in lines)


def test_a_code_is_followed_from_its_own_start_year_to_the_year(tmp_path: Path, history: Store):
    dated = ("S12000047", "Fife", 2018, None)    # a file needs start/end years somewhere
    path = write_geojson(tmp_path / "d.geojson", [("S12000046", "Glasgow City", 2016, None), dated])
    report = ingest_boundaries(history, [path], alive_in=2020, **DISTRICTS)
    assert report.renamed == [("S12000046", "Glasgow City", "S12000049")]
    # a change of the code's first year is not after it (codes_in_edition counts a change when
    # its first year lies after from_year): the file and the history disagree, the file stands
    path = write_geojson(tmp_path / "e.geojson", [("S12000046", "Glasgow City", 2019, None), dated])
    report = ingest_boundaries(history, [path], alive_in=2020, **DISTRICTS)
    assert report.renamed == [] and "S12000046" in _codes(history)
    # before the recode's year the old code stands
    path = write_geojson(tmp_path / "f.geojson", [("S12000046", "Glasgow City", None, None), dated])
    report = ingest_boundaries(history, [path], alive_in=2018, **DISTRICTS)
    assert report.renamed == [] and report.not_renamed == []


def test_two_codes_recoded_to_one_are_both_kept(tmp_path: Path, history: Store):
    lookup = tmp_path / "lad_changes_2014_2025.csv"
    lookup.write_text(LAD_CHANGES + "S12000043,Glasgow City,S12000049,Glasgow City,new_code,2019\n",
                      encoding="utf-8")
    ingest_lookup(history, lookup)
    path = write_geojson(tmp_path / "d.geojson", [("S12000046", "Glasgow City", None, None),
                                                   ("S12000043", "Glasgow City", 2011, None)])
    report = ingest_boundaries(history, [path], alive_in=2020, **DISTRICTS)
    assert report.renamed == [] and {"S12000043", "S12000046"} <= set(_codes(history))
    assert [why for *_, why in report.not_renamed] == ["other features of the file are also S12000049"] * 2


def test_without_alive_in_nothing_changes(editions: Path, store: Store):
    # a code of a nation outside the set is refused, as before: most often it is the wrong --set
    with pytest.raises(InputError, match=r"feature 11, column 'areacd': 'N09000003' is not a lad2020 code"):
        ingest_boundaries(store, [editions], **DISTRICTS)
    gb = write_geojson(editions.with_name("gb.geojson"), FEATURES[:10])
    report = ingest_boundaries(store, [gb], **DISTRICTS)
    assert report.areas_written == 10 and report.alive_in is None
    assert not any("in use in" in line or "code history" in line for line in report.lines())


def test_a_small_area_set_is_cut_to_the_year_without_renaming(tmp_path: Path, history: Store):
    path = write_geojson(tmp_path / "lsoa.geojson", [("E01000001", "A", None, None),
                                                      ("E01000002", "B", 2012, 2014)])
    report = ingest_boundaries(history, [path], set_id="lsoa2011", code_col="areacd",
                               name_col="areanm", alive_in=2020)
    assert set(_codes(history, "lsoa2011")) == {"E01000001"} and report.not_alive == 1
    assert report.code_history_held is None
    assert not any("code history" in line for line in report.lines())


def test_messages_of_the_feature_left_out_keep_the_files_numbering(tmp_path: Path, store: Store):
    rows = [*FEATURES, ("E06000002", "", None, None)]
    path = write_geojson(tmp_path / "d.geojson", rows)
    text = path.read_text().replace('"areacd": "E06000002"', '"areacd": "X06000002"')
    path.write_text(text)
    with pytest.raises(InputError, match=r"feature 13, column 'areacd': 'X06000002' is not a lad2020"):
        ingest_boundaries(store, [path], alive_in=2020, **DISTRICTS)


@pytest.mark.parametrize("year", [1899, 2101, 20200, 202])
def test_a_year_out_of_range_is_refused_naming_the_parameter(editions: Path, store: Store, year: int):
    with pytest.raises(InputError, match=rf"--alive-in \(alive_in\) must be a year from 1900 to 2100, not {year}"):
        ingest_boundaries(store, [editions], alive_in=year, **DISTRICTS)
    assert _codes(store) == {}


def test_a_file_without_start_or_end_years_is_refused(tmp_path: Path, store: Store):
    path = write_geojson(tmp_path / "one_edition.geojson", [(c, n, None, None) for c, n, *_ in FEATURES[:3]])
    with pytest.raises(InputError) as caught:
        ingest_boundaries(store, [path], alive_in=2020, **DISTRICTS)
    assert str(path) in str(caught.value)
    assert "the features of this file carry no start/end years" in str(caught.value)


def test_a_start_that_is_not_a_year_is_refused(tmp_path: Path, store: Store):
    path = write_geojson(tmp_path / "d.geojson", FEATURES[:3])
    path.write_text(path.read_text().replace('"end": 2018', '"end": "soon"'))
    with pytest.raises(InputError, match=r"d.geojson, feature 2, property 'end': 'soon' is not a year"):
        ingest_boundaries(store, [path], alive_in=2020, **DISTRICTS)


def test_no_feature_in_use_that_year_is_refused(editions: Path, store: Store):
    path = write_geojson(editions.with_name("old.geojson"), [FEATURES[1], FEATURES[3]])
    with pytest.raises(InputError, match=r"no feature of lad2020 is in use in 2020 by its start/end years"):
        ingest_boundaries(store, [path], alive_in=2020, **DISTRICTS)


def test_the_command_line_option(tmp_path: Path, editions: Path, capsys):
    db = tmp_path / "cli.duckdb"
    args = ["--db", str(db), "ingest", "boundaries", str(editions), "--set", "lad2020",
            "--code-col", "areacd", "--name-col", "areanm"]
    result = run_cli(capsys, *args, "--alive-in", "2020")
    assert result.code == 0, result.stderr
    assert "3 features not in use in 2020 left out (their start/end years)" in result.stdout
    bad = run_cli(capsys, *args, "--alive-in", "1800")
    assert bad.code == 3 and "--alive-in (alive_in) must be a year from 1900 to 2100" in bad.stderr
    assert run_cli(capsys, *args, "--alive-in", "twenty").code == 2


# -- the real file ------------------------------------------------------------------------------

@pytest.mark.shared_data
@pytest.mark.slow
def test_the_2020_districts_of_the_uk_file(tmp_path: Path, capsys):
    import pyogrio
    from conftest import SHARED_DATA

    source = SHARED_DATA / "boundaries" / "uk_admin_2014_2025.topojson"
    # what the file itself says is in use in 2020, counted here independently of geo-cs
    table = pyogrio.read_dataframe(source, layer="ltla", read_geometry=False)
    alive = table[(table["start"].isna() | (table["start"] <= 2020))
                  & (table["end"].isna() | (table["end"] >= 2020))]
    gb = alive[~alive["areacd"].str.startswith("N")]
    db = tmp_path / "real.duckdb"
    with Store.open(db) as store:
        ingest_lookup(store, SHARED_DATA / "lookups" / "lad_changes_2014_2025.csv")
    result = run_cli(capsys, "--db", str(db), "ingest", "boundaries", str(source), "--layer", "ltla",
                     "--set", "lad2020", "--code-col", "areacd", "--name-col", "areanm",
                     "--alive-in", "2020")
    assert result.code == 0, result.stderr
    assert (f"{len(table) - len(alive)} features not in use in 2020 left out "
            "(their start/end years)") in result.stdout
    assert "S12000046 Glasgow City stored as S12000049, its code in 2020 (district code history)" in result.stdout
    with Store.open(db, read_only=True) as store:
        codes = set(_codes(store))
    assert {"E06000060", "S12000049", "S12000050"} <= codes
    assert not {"E07000004", "S12000046", "S12000044"} & codes
    assert not any(c.startswith("N") for c in codes)
    assert len(codes) == len(gb) == 368
