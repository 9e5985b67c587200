from pathlib import Path

import pytest
from conftest import GRID_CODES, snapshot

from geo_cs.errors import InputError, NotFoundError
from geo_cs.ingest import ingest_boundaries, ingest_indicator, load_spec
from geo_cs.ingest.indicators import spec_for_file, spec_from_dict
from geo_cs.store import Store


@pytest.fixture
def grid_store(tmp_path: Path, store: Store, grid) -> Store:
    path = tmp_path / "grid.geojson"
    grid.to_file(path)
    ingest_boundaries(store, [path])
    return store


def _csv(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


LONG_SPEC = {"id": "dwp_wacg", "layout": "long", "geography": "lsoa2011",
             "denominator_column": "denominator",
             "measures": [{"id": "claimants", "kind": "count"},
                          {"id": "claimant_rate", "kind": "rate"}]}
LONG = (
    "area_code,period,measure,value,denominator\n"
    "E01000001,May 2006,claimants,120,800\n"
    "E01000001,May 2006,claimant_rate,15.0,800\n"
    "E01000002,May 2006,claimants,*,900\n"
    "E01000002,Aug 2006,claimants,..,900\n"
    "E01000003,2006-08,claimants,\"1,200\",4000\n"
)


def _obs(store: Store) -> list[tuple]:
    return store.sql("SELECT indicator_id, code, period_id, value, denominator, status "
                     "FROM observations ORDER BY 1, 2, 3").fetchall()


def test_long_table_with_suppression_markers(tmp_path: Path, grid_store: Store):
    spec = spec_from_dict(LONG_SPEC)
    report = ingest_indicator(grid_store, _csv(tmp_path, "long.csv", LONG), spec)
    assert report.observations == 5
    assert report.suppressed == {"*": 1, "..": 1}
    assert "suppressed or missing values stored as NULL: 2 ('*' 1, '..' 1)" in "\n".join(report.lines())
    assert _obs(grid_store) == [
        ("dwp_wacg.claimant_rate", "E01000001", "2006-05", 15.0, 800.0, None),
        ("dwp_wacg.claimants", "E01000001", "2006-05", 120.0, 800.0, None),
        ("dwp_wacg.claimants", "E01000002", "2006-05", None, 900.0, "*"),
        ("dwp_wacg.claimants", "E01000002", "2006-08", None, 900.0, ".."),
        ("dwp_wacg.claimants", "E01000003", "2006-08", 1200.0, 4000.0, None),
    ]
    periods = grid_store.sql("SELECT period_id, kind, label FROM periods ORDER BY 1").fetchall()
    assert periods == [("2006-05", "quarter", "May 2006"), ("2006-08", "quarter", "August 2006")]


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("E01000001,May 2006,claimants,120,800", "E01000001,May 2006,claimants,-5,800",
         r"long.csv, row 2, column 'value': value -5 is out of range for claimants \(count\): "
         r"a count cannot be negative"),
        ("E01000001,May 2006,claimant_rate,15.0,800", "E01000001,May 2006,claimant_rate,115,800",
         r"long.csv, row 3, column 'value': value 115 is out of range for claimant_rate \(rate\): "
         r"a rate must be between 0 and 100"),
        ("E01000003,2006-08", "E09999999,2006-08",
         r"long.csv, row 6, column 'area_code': area code 'E09999999' is not a lsoa2011 code "
         r"in the store \(1 unknown code in all\)"),
        ("E01000003,2006-08,claimants", "E01000001,May 2006,claimants",
         r"long.csv, rows 2, 6, column 'value': duplicate value for area E01000001, period "
         r"2006-05, measure claimants"),
        ("E01000001,May 2006,claimants,120", "E01000001,May 2006,claimants,lots",
         r"long.csv, row 2, column 'value': 'lots' is not a number or a suppression marker"),
        ("E01000001,May 2006,claimants", "E01000001,March 2006,claimants",
         r"long.csv, row 2, column 'period': March 2006 is not a DWP quarter"),
    ],
)
def test_bad_values_name_file_row_column_and_value_and_write_nothing(
    tmp_path: Path, grid_store: Store, old: str, new: str, message: str
):
    spec = spec_from_dict(LONG_SPEC)
    ingest_indicator(grid_store, _csv(tmp_path, "good.csv", LONG.replace("May 2006", "Nov 2006")), spec)
    before = snapshot(grid_store)
    assert LONG.count(old) == 1
    with pytest.raises(InputError, match=message):
        ingest_indicator(grid_store, _csv(tmp_path, "long.csv", LONG.replace(old, new)), spec)
    assert snapshot(grid_store) == before


def test_failure_inside_the_write_rolls_back_everything(tmp_path: Path, grid_store: Store):
    """Codes are checked inside the transaction, after periods and areas could be written."""
    spec = spec_from_dict(LONG_SPEC)
    before = snapshot(grid_store)
    with pytest.raises(InputError, match="not a lsoa2011 code"):
        ingest_indicator(grid_store, _csv(tmp_path, "l.csv", LONG.replace("E01000003", "E01999999")), spec)
    assert snapshot(grid_store) == before


def test_reingest_of_a_period_replaces_it(tmp_path: Path, grid_store: Store):
    spec = spec_from_dict(LONG_SPEC)
    ingest_indicator(grid_store, _csv(tmp_path, "a.csv", LONG), spec)
    ingest_indicator(grid_store, _csv(tmp_path, "b.csv", LONG.replace(",120,", ",130,")), spec)
    assert grid_store.sql("SELECT value FROM observations WHERE code = 'E01000001' AND "
                          "indicator_id = 'dwp_wacg.claimants'").fetchall() == [(130.0,)]


NOMIS = (
    '"DATE","DATE_NAME","GEOGRAPHY_NAME","GEOGRAPHY_CODE","ITEM_NAME","MEASURES_NAME","OBS_VALUE","OBS_STATUS"\n'
    '"2006-05","May 2006","Testtown 000A","E01000001","Total claimants","Value","120","A"\n'
    '"2006-05","May 2006","Testtown 000A","E01000001","Total claimants","Percent","15.0","A"\n'
    '"2006-05","May 2006","Testtown 001A","E01000002","Total claimants","Value","","Q"\n'
    '"2006-05","May 2006","Testtown 001A","E01000002","Job seekers","Value","30","A"\n'
)


def test_nomis_bulk_csv(tmp_path: Path, grid_store: Store):
    spec = spec_from_dict({
        "id": "nomis_wacg", "layout": "nomis", "geography": "lsoa2011",
        "measures": [
            {"id": "claimants", "kind": "count",
             "match": {"ITEM_NAME": "Total claimants", "MEASURES_NAME": "Value"}},
            {"id": "claimant_rate", "kind": "rate",
             "match": {"ITEM_NAME": "Total claimants", "MEASURES_NAME": "Percent"}},
        ],
    })
    report = ingest_indicator(grid_store, _csv(tmp_path, "nomis.csv", NOMIS), spec)
    assert report.observations == 3 and report.skipped_rows == 1
    assert report.suppressed == {"": 1}
    assert ("nomis_wacg.claimant_rate", "E01000001", "2006-05", 15.0, None, None) in _obs(grid_store)


STATXPLORE = (
    '"Title:","Working age client group by Quarter and Lower Layer Super Output Area"\n'
    '"Dataset:","Benefit Claimants - Working Age Client Group"\n'
    '\n'
    '"","Quarter","May-06","Aug-06","Nov-06","Feb-07"\n'
    '"Lower Layer Super Output Area (2011)","","","","",""\n'
    '"E01000001 : Testtown 000A","","250","245","240","230"\n'
    '"E01000002 : Testtown 001A","","30","*","25","20"\n'
    '"Total","","280","245","265","250"\n'
    '\n'
    '"*","Figures are rounded; small values suppressed"\n'
)


def test_statxplore_table(tmp_path: Path, grid_store: Store):
    spec = spec_from_dict({"id": "sx_wacg", "layout": "statxplore", "geography": "lsoa2011",
                           "measures": [{"id": "claimants", "kind": "count"}]})
    report = ingest_indicator(grid_store, _csv(tmp_path, "sx.csv", STATXPLORE), spec)
    assert report.observations == 8 and report.periods == ["2006-05", "2006-08", "2006-11", "2007-02"]
    assert report.suppressed == {"*": 1}
    values = dict(grid_store.sql("SELECT period_id, value FROM observations WHERE code = 'E01000001'").fetchall())
    assert values == {"2006-05": 250.0, "2006-08": 245.0, "2006-11": 240.0, "2007-02": 230.0}


def test_statxplore_negative_value_names_its_line(tmp_path: Path, grid_store: Store):
    spec = spec_from_dict({"id": "sx", "layout": "statxplore", "geography": "lsoa2011",
                           "measures": [{"id": "claimants", "kind": "count"}]})
    with pytest.raises(InputError, match=r"sx.csv, row 7, column 'May 2006': value -30"):
        ingest_indicator(grid_store, _csv(tmp_path, "sx.csv", STATXPLORE.replace('"30"', '"-30"')), spec)


def test_wide_file_with_toml_spec_sums_ages_and_reads_denominators(tmp_path: Path, grid_store: Store):
    ages = ",".join(f'"{a}"' for a in range(15, 67))
    rows = []
    for i, code in enumerate(GRID_CODES):
        rows.append(f'"{code}","Testtown {i:03d}A",' + ",".join(["10"] * 52) + f",{100 + i},0.{i + 1}")
    text = f'"lsoa11_code","lsoa11_name",{ages},"deprived","share"\n' + "\n".join(rows) + "\n"
    spec_path = tmp_path / "mine.toml"
    spec_path.write_text(
        'id = "mine"\nlayout = "wide"\ngeography = "lsoa2011"\ncode_column = "lsoa11_code"\n'
        '[period]\nedition = "Local 2020"\ndata_year = 2019\n'
        '[[measures]]\nid = "working_age_population"\nsum_columns = ["16", "64"]\nkind = "count"\n'
        '[[measures]]\nid = "employment_deprived"\ncolumn = "deprived"\nkind = "count"\n'
        '[[measures]]\nid = "employment_rate"\ncolumn = "share"\nkind = "rate"\nscale = 100\n'
    )
    report = ingest_indicator(grid_store, _csv(tmp_path, "wide.csv", text), load_spec(spec_path))
    assert report.observations == 18
    got = dict(grid_store.sql(
        "SELECT indicator_id, value FROM observations WHERE code = 'E01000002'").fetchall())
    assert got == {"mine.working_age_population": 490.0, "mine.employment_deprived": 101.0,
                   "mine.employment_rate": pytest.approx(20.0)}
    assert grid_store.sql("SELECT label, data_year FROM periods").fetchone() == ("Local 2020 (2019 data)", 2019)


def test_a_spec_is_found_by_the_file_name_it_was_written_for():
    assert spec_for_file("some/dir/simd2016_scotland_dz11_indicators.csv").source_id == "simd2016"
    with pytest.raises(NotFoundError, match="no shipped spec is written for a file of this name"):
        spec_for_file("mystery.csv")


def test_every_shipped_spec_parses():
    from geo_cs.ingest.indicators import specs_dir

    specs = sorted(specs_dir().glob("*.toml"))
    assert len(specs) >= 15
    for path in specs:
        assert load_spec(path).measures


def test_indicators_need_their_geography_in_the_store(tmp_path: Path, store: Store):
    with pytest.raises(InputError, match="no areas of lsoa2011 are in the store; ingest its boundaries"):
        ingest_indicator(store, _csv(tmp_path, "long.csv", LONG), spec_from_dict(LONG_SPEC))


def test_missing_spec_column_is_named(tmp_path: Path, grid_store: Store):
    spec = spec_from_dict({**LONG_SPEC, "denominator_column": "population"})
    with pytest.raises(InputError, match=r"long.csv: missing column\(s\) 'population'"):
        ingest_indicator(grid_store, _csv(tmp_path, "long.csv", LONG), spec)


def test_windows_1252_csv_is_read(tmp_path: Path, grid_store: Store):
    path = tmp_path / "excel.csv"
    text = "area_code,period,measure,value,denominator,note\nE01000001,May 2006,claimants,120,800,Ynys Môn – £\n"
    path.write_bytes(text.encode("cp1252"))
    report = ingest_indicator(grid_store, path, spec_from_dict(LONG_SPEC))
    assert report.observations == 1


def test_header_only_file_is_an_error(tmp_path: Path, grid_store: Store):
    with pytest.raises(InputError, match="no data rows to ingest"):
        ingest_indicator(grid_store, _csv(tmp_path, "h.csv", "area_code,period,measure,value\n"),
                         spec_from_dict(LONG_SPEC | {"denominator_column": None}))


def test_a_code_of_the_official_list_without_a_boundary_is_accepted(tmp_path: Path, store: Store, test_registry):
    # the test registry lists E01000007, which has no boundary here (like S01002296 in DZ 2001)
    from conftest import grid_frame

    path = tmp_path / "grid.geojson"
    grid_frame().to_file(path)
    ingest_boundaries(store, [path])
    text = "area_code,period,measure,value\nE01000007,May 2006,claimants,10\n"
    spec = spec_from_dict({**LONG_SPEC, "denominator_column": None})
    assert ingest_indicator(store, _csv(tmp_path, "l.csv", text), spec).observations == 1
    assert store.sql("SELECT geom_27700 IS NULL FROM areas WHERE code = 'E01000007'").fetchone() == (True,)
