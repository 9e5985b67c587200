"""Integration tests on the real data in ../shared/data (skipped, with the reason, when absent)."""

from __future__ import annotations

from pathlib import Path

import pytest

from geo_cs.ingest import ingest_boundaries, ingest_indicator, ingest_lookup
from geo_cs.ingest.indicators import spec_for_file
from geo_cs.store import Store

pytestmark = [pytest.mark.shared_data, pytest.mark.slow]


#: The Annual Population Survey's two downloads (a Nomis web table with its preamble and
#: footer, and the Nomis API's long form): the employment rate of issue 29, ingested with no
#: spec, recognised by their shape (geo_cs.ingest.survey); tests/test_survey_real.py checks
#: their figures by hand.
SURVEY_FILES = ("aps_employment_rate_la_2019.csv", "aps_lad_north_2004_2023.csv")


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
        # after the lookups: a survey file's district edition is read from the code history
        spec = None if path.name in SURVEY_FILES else spec_for_file(path)
        reports[path.name] = ingest_indicator(store, path, spec)
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
        if path.name not in SURVEY_FILES:
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


# -- boundary changes on the real data (issue: crosswalks and harmonised series) -----------------

def test_simd_2012_carried_to_data_zone_2011_keeps_scotland_totals(real):
    from geo_cs.crosswalk import build_crosswalk, harmonise

    store, _ = real
    xw = build_crosswalk(store, "datazone2001", "datazone2011")
    assert xw.sources == 6_505 and xw.max_weight_sum_error < 1e-9
    assert set(xw.links_by_type) <= {"U", "S", "M", "X"} and xw.links_by_type["X"] > 0
    report = harmonise(store, "simd2012.employment_deprived", "datazone2011")
    before, after = report.totals_before["simd2012"], report.totals_after["simd2012"]
    assert abs(after - before) / before < 1e-9
    rows = dict(store.sql(
        """SELECT period_id, 100 * sum(value) / sum(denominator) FROM observations
           WHERE indicator_id IN ('simd2012.employment_deprived', 'simd2016.employment_deprived',
                                  'simd2020.employment_deprived') AND set_id = 'datazone2011'
           GROUP BY 1""").fetchall())
    # the same 6,976 zones: Scotland's employment-deprivation rate 2010 -> 2014 -> 2017 data
    assert set(rows) == {"simd2012", "simd2016", "simd2020"}
    assert all(5 < r < 20 for r in rows.values())


def test_iod_2019_and_2025_on_one_geography_both_directions(real):
    from geo_cs.crosswalk import build_crosswalk, harmonise

    store, _ = real
    forward = build_crosswalk(store, "lsoa2011", "lsoa2021")
    backward = build_crosswalk(store, "lsoa2021", "lsoa2011")
    assert {"S", "M", "X"} <= set(forward.links_by_type) and {"S", "M", "X"} <= set(backward.links_by_type)
    up = harmonise(store, "imd2019_indicators.employment_deprived", "lsoa2021")
    down = harmonise(store, "imd2025_indicators.employment_deprived", "lsoa2011")
    for report in (up, down):
        period = report.periods[0]
        lost = report.totals_before[period] - report.totals_after[period]
        assert report.targets_suppressed > 0 and lost >= 0  # blank cells make their targets NULL
        assert 0 < report.apportioned_share < 0.2


def test_imd_2010_rates_carried_to_2011_with_a_population_weight(real):
    from geo_cs.crosswalk import build_crosswalk, harmonise

    store, _ = real
    xw = build_crosswalk(store, "lsoa2001", "lsoa2011",
                         population="population2019_lsoa11.working_age_population")
    assert xw.links_by_method["population"] > 0
    # the ONS 2001->2011 lookup lacks 4 LSOAs of 2011; the audit names them
    assert len(xw.targets_without_source) == 4 and "E01032522" in xw.targets_without_source
    report = harmonise(store, "imd2010.employment_rate", "lsoa2011",
                       weight="population2019_lsoa11.working_age_population")
    assert report.observations > 32_000 and report.kind == "rate"


def test_worst_neighbourhoods_of_2001_tracked_on_2011_and_2021(real):
    from geo_cs.analysis import MethodParams, Panel, RateSource, carry_cohort, ni153, worst_cohort
    from geo_cs.crosswalk import build_crosswalk, chain_crosswalks
    from geo_cs.partnerships import get_partnerships

    store, _ = real
    build_crosswalk(store, "lsoa2001", "lsoa2011", population="population2019_lsoa11.working_age_population")
    build_crosswalk(store, "lsoa2011", "lsoa2021")
    chain_crosswalks(store, "lsoa2001->lsoa2011", "lsoa2011->lsoa2021")
    imd2010 = Panel(store, RateSource("imd2010.employment_rate", "lsoa2001", count_is_rate=True,
                                      denominator=None))
    # IMD 2010 has no denominators on 2001 LSOAs: the cohort needs only rates
    cohort01 = worst_cohort(imd2010, MethodParams(baseline=("imd2010",)))
    assert cohort01["worst"].sum() > 100
    cohort11 = carry_cohort(store, cohort01, "lsoa2001->lsoa2011")
    cohort21 = carry_cohort(store, cohort01, "lsoa2001->lsoa2011->lsoa2021")
    assert abs(int(cohort11["worst"].sum()) - int(cohort01["worst"].sum())) < 0.1 * cohort01["worst"].sum()
    assert cohort21["worst"].sum() > 0
    liverpool = get_partnerships(["liverpool_city_region"])
    on_2019 = ni153(store, Panel(store, RateSource("imd2019_indicators.employment_deprived", "lsoa2011",
                                                   denominator="population2019_lsoa11.working_age_population")),
                    liverpool, params=MethodParams(baseline=("imd2019",)), cohort=cohort11)
    assert on_2019.loc[0, "n_cohort"] > 0 and on_2019.loc[0, "gap"] > 0


def test_the_survey_files_ingested_with_no_spec(real, shared_data: Path):
    """Both APS downloads as users download them: no spec (none is shipped for them), the shape
    recognised, every area once on its district edition, the markers kept as words."""
    from geo_cs.errors import NotFoundError

    real_store, reports = real
    for name in SURVEY_FILES:
        with pytest.raises(NotFoundError, match=name):
            spec_for_file(shared_data / "indicators" / name)    # read by shape, not by a spec
    web, api = (reports[name] for name in SURVEY_FILES)
    assert (web.shape, web.rows_read, web.estimates) == ("nomis_web", 573, 393)
    assert web.sets == {"cty2020": 25, "lad2020": 368} and web.duplicates_dropped == 180
    assert web.period_labels == ["Jan 2019-Dec 2019"] and web.reliability == {"missing": 1, "unreliable": 1}
    assert web.edition.startswith("2020 edition: E06000060 Buckinghamshire is in use from 2020")
    assert (api.shape, api.rows_read, api.estimates) == ("nomis_api", 33_264, 72 * 77 * 3)
    assert api.sets == {"lad2021": 72} and len(api.periods) == 77
    assert api.measures == {"aps.employment_rate": 5_544, "aps.inactivity_rate": 5_544,
                            "aps.unemployment_rate": 5_544}
    assert api.edition == "2021 edition: as the file says"
    kinds = dict(real_store.sql("SELECT indicator_id || '@' || set_id, kind FROM indicators "
                                "WHERE source_id = 'aps'").fetchall())
    assert kinds == {"aps.employment_rate@lad2020": "survey", "aps.employment_rate@cty2020": "survey",
                     "aps.employment_rate@lad2021": "survey", "aps.unemployment_rate@lad2021": "survey",
                     "aps.inactivity_rate@lad2021": "survey"}
    # Glasgow City under its 2019 code in both editions (the district code history)
    glasgow = real_store.sql("SELECT set_id, value FROM observations WHERE code = 'S12000049' "
                             "AND indicator_id = 'aps.employment_rate' AND period_id = '2019y12' "
                             "ORDER BY set_id").fetchall()
    assert glasgow == [("lad2020", 67.3)]   # the API extract is of northern England only
