"""Integration tests on the real data in ../shared/data (skipped, with the reason, when absent)."""

from __future__ import annotations

from pathlib import Path

import pytest

from geo_cs.ingest import ingest_boundaries, ingest_indicator, ingest_lookup
from geo_cs.ingest.indicators import spec_for_file
from geo_cs.store import Store

pytestmark = [pytest.mark.shared_data, pytest.mark.slow]


@pytest.fixture(scope="module")
def real_store(tmp_path_factory, request) -> Store:
    from conftest import SHARED_DATA

    store = Store.open(tmp_path_factory.mktemp("real") / "real.duckdb")
    yield store
    store.close()


def test_full_lsoa_2011_set_from_348_topojson_files(real_store: Store, shared_data: Path):
    report = ingest_boundaries(real_store, [shared_data / "boundaries" / "lsoa11_bgc_topo_by_lad"])
    assert (report.files, report.features_read, report.areas_written) == (348, 34_753, 34_753)
    assert report.missing_codes == [] and report.present_count == report.expected_count == 34_753
    assert len(report.crs_assumed_files) == 348  # TopoJSON declares no CRS to GDAL
    assert real_store.sql(
        "SELECT count(*) FROM areas WHERE set_id = 'lsoa2011' AND NOT ST_IsValid(geom_27700)"
    ).fetchone()[0] == 0
    # England and Wales add up to about 151,000 km² (generalised, clipped to the coastline)
    total_km2 = real_store.sql("SELECT sum(area_m2) / 1e6 FROM areas WHERE set_id = 'lsoa2011'").fetchone()[0]
    assert 145_000 < total_km2 < 155_000


def test_data_zone_2001_report_names_the_5_missing_and_3_twice(real_store: Store, shared_data: Path):
    report = ingest_boundaries(real_store, [shared_data / "boundaries" / "dz01_by_lad"])
    lines = report.lines()
    assert lines[0] == "datazone2001: 6,503 features read from 32 files; 6,500 areas written"
    assert ("coverage: 6,500 of 6,505 expected codes (S) in the store; 5 missing: S01002296, "
            "S01003031, S01003319, S01003505, S01003548") in lines
    assert ("identical duplicates dropped: 3 codes appeared more than once with the same geometry: "
            "S01000215 (S12000033.json, S12000034.json); S01001422 (S12000008.json, S12000011.json); "
            "S01003502 (S12000044.json, S12000046.json)") in lines


def test_other_real_boundary_files(real_store: Store, shared_data: Path):
    b = shared_data / "boundaries"
    dz11 = ingest_boundaries(real_store, [b / "dz11_scotland.geojson"])
    assert dz11.areas_written == 6_976 and len(dz11.repaired_codes) == 10  # 10 invalid, as documented
    bsc = ingest_boundaries(real_store, [b / "lsoa11_bsc_ew.geojson"])
    assert bsc.areas_written == 34_753 and len(bsc.repaired_codes) >= 3
    lsoa21 = ingest_boundaries(real_store, [b / "lsoa21_ew.geojson"])
    assert lsoa21.areas_written == 35_672 and lsoa21.missing_codes == []
    wpc = ingest_boundaries(real_store, [b / "wpc_eng.topojson", b / "wpc_wal.topojson",
                                         b / "wpc_sco.topojson"])
    assert wpc.areas_written == 632
    wards = ingest_boundaries(real_store, [b / "wards13_topo_by_lad"])
    assert wards.files == 380 and wards.areas_written > 8_000
    lad = ingest_boundaries(real_store, [b / "lad13_gb.topojson"])
    assert lad.areas_written == 380
    ltla = ingest_boundaries(real_store, [b / "uk_admin_2014_2025.topojson"], layer="ltla",
                             set_id="lad2022", code_col="areacd", name_col="areanm",
                             on_duplicate="first")
    assert ltla.areas_written > 300


def test_every_real_lookup(real_store: Store, shared_data: Path):
    for path in sorted((shared_data / "lookups").glob("*.csv")):
        report = ingest_lookup(real_store, path)
        assert report.rows_read > 0, path
    changes = dict(real_store.sql(
        "SELECT change_ind, count(*) FROM lookup_links WHERE lookup_id = 'lsoa2011_lsoa2021' "
        "AND from_set = 'lsoa2011' GROUP BY 1").fetchall())
    assert changes == {"U": 33_647, "S": 1_900, "M": 239, "X": 10}


def test_every_real_indicator_file_with_its_shipped_spec(real_store: Store, shared_data: Path):
    # boundaries and lookups above registered every geography these files use
    for path in sorted((shared_data / "indicators").glob("*.csv")):
        spec = spec_for_file(path)
        report = ingest_indicator(real_store, path, spec)
        assert report.observations > 0, path
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
