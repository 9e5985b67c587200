"""Integration tests on the real data in ../shared/data (skipped, with the reason, when absent)."""

from __future__ import annotations

from pathlib import Path

import pytest

from geo_cs.ingest import ingest_boundaries, ingest_indicator, ingest_lookup
from geo_cs.ingest.indicators import spec_for_file
from geo_cs.store import Store

pytestmark = [pytest.mark.shared_data, pytest.mark.slow]


@pytest.fixture(scope="module")
def real(tmp_path_factory) -> tuple[Store, dict]:
    """One store with every real boundary file, lookup and indicator, and each ingest's report."""
    from conftest import SHARED_DATA as data

    b = data / "boundaries"
    store = Store.open(tmp_path_factory.mktemp("real") / "real.duckdb")
    reports = {
        "lsoa11_topo": ingest_boundaries(store, [b / "lsoa11_bgc_topo_by_lad"]),
        "dz01": ingest_boundaries(store, [b / "dz01_by_lad"]),
        "dz11": ingest_boundaries(store, [b / "dz11_scotland.geojson"]),
        "lsoa11_bsc": ingest_boundaries(store, [b / "lsoa11_bsc_ew.geojson"]),
        "lsoa21": ingest_boundaries(store, [b / "lsoa21_ew.geojson"]),
        "wpc": ingest_boundaries(store, [b / "wpc_eng.topojson", b / "wpc_wal.topojson",
                                         b / "wpc_sco.topojson"]),
        "wards13": ingest_boundaries(store, [b / "wards13_topo_by_lad"]),
        "lad13": ingest_boundaries(store, [b / "lad13_gb.topojson"]),
        "ltla": ingest_boundaries(store, [b / "uk_admin_2014_2025.topojson"], layer="ltla",
                                  set_id="ltla_uk", code_col="areacd", name_col="areanm",
                                  on_duplicate="first"),
    }
    for path in sorted((data / "lookups").glob("*.csv")):
        reports[path.name] = ingest_lookup(store, path)
    for path in sorted((data / "indicators").glob("*.csv")):
        reports[path.name] = ingest_indicator(store, path, spec_for_file(path))
    yield store, reports
    store.close()


def test_full_lsoa_2011_set_from_348_topojson_files(real):
    real_store, reports = real
    report = reports["lsoa11_topo"]
    assert (report.files, report.features_read, report.areas_written) == (348, 34_753, 34_753)
    assert report.missing_codes == [] and report.present_count == report.expected_count == 34_753
    assert len(report.crs_assumed_files) == 348  # TopoJSON declares no CRS to GDAL
    assert real_store.sql(
        "SELECT count(*) FROM areas WHERE set_id = 'lsoa2011' AND NOT ST_IsValid(geom_27700)"
    ).fetchone()[0] == 0
    # England and Wales add up to about 151,000 km² (generalised, clipped to the coastline)
    total_km2 = real_store.sql("SELECT sum(area_m2) / 1e6 FROM areas WHERE set_id = 'lsoa2011'").fetchone()[0]
    assert 145_000 < total_km2 < 155_000


def test_data_zone_2001_report_names_the_5_missing_and_3_twice(real):
    report = real[1]["dz01"]
    lines = report.lines()
    assert lines[0] == "datazone2001: 6,503 features read from 32 files; 6,500 areas written"
    assert ("coverage: 6,500 of 6,505 expected codes (S) in the store; 5 missing: S01002296, "
            "S01003031, S01003319, S01003505, S01003548") in lines
    assert ("identical duplicates dropped: 3 codes appeared more than once with the same geometry: "
            "S01000215 (S12000033.json, S12000034.json); S01001422 (S12000008.json, S12000011.json); "
            "S01003502 (S12000044.json, S12000046.json)") in lines


def test_other_real_boundary_files(real):
    _, reports = real
    assert reports["dz11"].areas_written == 6_976
    assert len(reports["dz11"].repaired_codes) == 10  # 10 invalid geometries, as documented
    assert reports["lsoa11_bsc"].areas_written == 34_753
    assert len(reports["lsoa11_bsc"].repaired_codes) >= 3
    assert reports["lsoa21"].areas_written == 35_672 and reports["lsoa21"].missing_codes == []
    assert reports["wpc"].areas_written == 632
    assert reports["wards13"].files == 380 and reports["wards13"].areas_written > 8_000
    assert reports["lad13"].areas_written == 380
    assert reports["ltla"].areas_written > 300


def test_every_real_lookup(real, shared_data: Path):
    real_store, reports = real
    for path in sorted((shared_data / "lookups").glob("*.csv")):
        assert reports[path.name].rows_read > 0, path
    changes = dict(real_store.sql(
        "SELECT change_ind, count(*) FROM lookup_links WHERE lookup_id = 'lsoa2011_lsoa2021' "
        "AND from_set = 'lsoa2011' GROUP BY 1").fetchall())
    assert changes == {"U": 33_647, "S": 1_900, "M": 239, "X": 10}


def test_every_real_indicator_file_with_its_shipped_spec(real, shared_data: Path):
    real_store, reports = real
    for path in sorted((shared_data / "indicators").glob("*.csv")):
        assert reports[path.name].observations > 0, path
    oowb = reports["out_of_work_benefits_wpc10_2010q2_2012q1.csv"]
    assert oowb.excluded_rows == 144  # the 18 Northern Ireland constituencies x 8 quarters
    rows = dict(real_store.sql(
        "SELECT indicator_id, count(value) FROM observations GROUP BY 1").fetchall())
    assert rows["simd2012.employment_deprived"] == 6_505
    assert rows["imd2010.employment_rate"] == 32_482
    assert rows["imd2019_indicators.employment_deprived"] == 32_844 - 119  # 119 blank cells
    # SIMD 2016 national totals: employment-deprived people and working-age population
    deprived, population = real_store.sql(
        "SELECT sum(value), sum(denominator) FROM observations "
        "WHERE indicator_id = 'simd2016.employment_deprived'").fetchone()
    assert deprived == 369_660  # as summed from the published file
    assert 3_200_000 < population < 3_600_000
