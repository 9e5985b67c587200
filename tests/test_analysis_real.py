"""The analyses on the real data of the embedded demo bundle (no ../shared needed)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from geo_cs.analysis import (
    MethodParams,
    Panel,
    RateSource,
    classify_changes,
    comparator_area,
    ni153,
    partnership_rates,
    worst_cohort,
)
from geo_cs.partnerships import get_partnerships, load_partnerships, resolve
from geo_cs.store import Store

pytestmark = pytest.mark.slow
QUARTERS = ["2010-05", "2010-08", "2010-11", "2011-02"]


@pytest.fixture(scope="module")
def store(demo_db: Path) -> Store:
    with Store.open(demo_db, read_only=True) as s:
        yield s


def test_partnerships_resolve_through_lookups_and_geometry(store: Store):
    ps = load_partnerships()
    notts_2008 = resolve(store, ps["nottingham"], "lsoa2011", pd.Timestamp("2008-01-01").date())
    notts_2010 = resolve(store, ps["nottingham"], "lsoa2011")
    assert notts_2008.method == "lookup" and len(notts_2008.areas) == 182  # Nottingham's LSOAs
    assert len(notts_2010.areas) > 600  # with Nottinghamshire from April 2009
    gateshead = resolve(store, ps["tyne_and_wear"], "lsoa2011")
    # E08000037 is a 2013+ code: the 2011 lookup knows Gateshead as E08000020 (code history)
    assert gateshead.method == "lookup" and gateshead.lookup_set == "lad2011"
    assert gateshead.renamed == {"E08000037": ["E08000020"]} and len(gateshead.areas) == 719
    assert notts_2008.lookup_set == "lad2019"  # reaches E01032522, which the 2001->2011 lookup lacks
    glasgow = resolve(store, ps["glasgow"], "datazone2001")
    assert glasgow.method == "geometry" and len(glasgow.areas) == 690


def test_dwp_constituency_series_rates_and_gap_with_published_gb(store: Store):
    panel = Panel(store, RateSource("dwp_oowb_wpc10.claimants", "wpc2010"))
    rates = partnership_rates(store, panel, get_partnerships(["glasgow", "east_london"]))
    may10 = rates[rates["period_id"] == "2010-05"].set_index("partnership")
    # the GB reference is DWP's own published figure (12.3%), not a sum of the ingested areas
    assert may10.loc["glasgow", "reference_rate"] == pytest.approx(12.3, abs=1e-4)
    assert may10.loc["glasgow", "rate"] == pytest.approx(21.54, abs=0.01)
    assert may10.loc["glasgow", "gap"] == pytest.approx(9.24, abs=0.01)
    assert may10.loc["glasgow", "index"] == pytest.approx(100)


def test_worst_constituencies_on_the_first_four_quarters(store: Store):
    panel = Panel(store, RateSource("dwp_oowb_wpc10.claimants", "wpc2010"))
    cohort = worst_cohort(panel, MethodParams(baseline=tuple(QUARTERS), threshold=20))
    worst = cohort[cohort["worst"].fillna(False).astype(bool)]
    assert 20 < len(worst) < 120
    assert (worst["baseline_rate"] > 20).all()
    table = ni153(store, panel, get_partnerships(["glasgow", "liverpool_city_region"]),
                  params=MethodParams(baseline=tuple(QUARTERS), threshold=20))
    changes = classify_changes(table, "2010-05", "2012-02", MethodParams(baseline=tuple(QUARTERS)))
    assert set(changes["gap_direction"]) <= {"closed", "unchanged", "widened"}


def test_simd_2012_worst_data_zones_of_the_scottish_partnerships(store: Store):
    panel = Panel(store, RateSource("simd2012.employment_deprived", "datazone2001"))
    table = ni153(store, panel, params=MethodParams(baseline=("simd2012",))).set_index("partnership")
    assert list(table.index) == ["dundee", "edinburgh", "glasgow"]
    assert table.loc["glasgow", "n_cohort"] == 244
    assert table.loc["glasgow", "cohort_rate"] == pytest.approx(33.19, abs=0.01)
    assert table.loc["glasgow", "gap"] == pytest.approx(20.41, abs=0.01)


def test_comparator_by_rule_names_its_districts(store: Store):
    panel = Panel(store, RateSource("dwp_oowb_wpc10.claimants", "wpc2010"))
    comp = comparator_area(store, panel, worst_n=5, params=MethodParams(baseline=tuple(QUARTERS)))
    assert len(comp.members) == 5 and comp.rule == "worst 5 districts in no partnership"
    cs_members = {m for p in load_partnerships().values() for ph in p.phases for m in ph.members}
    assert not set(comp.members["code"]) & cs_members
    assert comp.members["baseline_rate"].is_monotonic_decreasing
    assert (comp.rates["group"] == "comparator").all() and len(comp.rates) == 8


def test_analyse_cli_writes_each_format(demo_db: Path, tmp_path: Path):
    for suffix in (".csv", ".parquet", ".arrow", ".json"):
        out = tmp_path / f"ni153{suffix}"
        result = subprocess.run(
            [sys.executable, "-m", "geo_cs.cli", "--db", str(demo_db), "analyse", "ni153",
             "-i", "simd2012.employment_deprived", "-g", "datazone2001", "--out", str(out)],
            capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        frame = (pd.read_csv(out) if suffix == ".csv" else pd.read_parquet(out) if suffix == ".parquet"
                 else pd.read_feather(out) if suffix == ".arrow" else pd.DataFrame(json.loads(out.read_text())))
        assert len(frame) == 3 and {"indicator", "geography", "partnership_version", "method"} <= set(frame.columns)
        assert json.loads(frame.loc[0, "method"])["threshold"] == 25.0


def test_analyse_cli_unknown_partnership_exits_5(demo_db: Path):
    result = subprocess.run(
        [sys.executable, "-m", "geo_cs.cli", "--db", str(demo_db), "analyse", "rates",
         "-i", "dwp_oowb_wpc10.claimants", "-g", "wpc2010", "-p", "atlantis"],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 5 and "unknown partnership atlantis; known: bcbc" in result.stderr


def test_region_reference_through_three_lookup_hops(store: Store):
    panel = Panel(store, RateSource("imd2019_indicators.employment_deprived", "lsoa2011",
                                    denominator="population2019_lsoa11.working_age_population"))
    rates = partnership_rates(store, panel, get_partnerships(["tyne_and_wear"]),
                              reference="region:E12000001")
    # the demo holds only the partnership districts of the North East, so region = Tyne & Wear
    assert rates.loc[0, "reference"] == "region:E12000001"
    assert rates.loc[0, "reference_rate"] == pytest.approx(rates.loc[0, "rate"], rel=1e-3)


def test_dwp_region_reference_uses_the_published_region_figures(store: Store):
    panel = Panel(store, RateSource("dwp_oowb_wpc10.claimants", "wpc2010"))
    rates = partnership_rates(store, panel, get_partnerships(["tyne_and_wear"]),
                              reference="region:E15000001")
    may10 = rates[rates["period_id"] == "2010-05"].iloc[0]
    assert may10["reference_rate"] == pytest.approx(15.9, abs=1e-4)  # North East, as published


def test_members_follow_district_changes_into_newer_lookups(store: Store):
    # Glasgow is S12000046 in the 2013 definitions and S12000049 in the 2020 lookup
    glasgow = resolve(store, load_partnerships()["glasgow"], "datazone2011")
    assert glasgow.method == "lookup" and glasgow.lookup_set == "lad2020"
    assert len(glasgow.areas) == 746 and set(glasgow.areas["member"]) == {"S12000046"}


def test_district_and_ward_editions_through_small_areas(demo_db: Path, tmp_path: Path):
    import shutil

    from geo_cs.crosswalk import build_crosswalk_through, district_successors

    db = tmp_path / "copy.duckdb"
    shutil.copy(demo_db, db)
    with Store.open(db) as rw:
        lads = build_crosswalk_through(rw, "lad2011", "lad2019", "lsoa2011",
                                       population="population2019_lsoa11.working_age_population")
        gateshead = rw.sql("SELECT to_code, weight, link_type FROM crosswalks WHERE crosswalk_id = "
                           "'lad2011->lad2019' AND from_code = 'E08000020'").fetchall()
        assert gateshead == [("E08000037", 1.0, "U")]  # the 2013 code change
        assert lads.max_weight_sum_error < 1e-12
        wards = build_crosswalk_through(rw, "ward2013", "ward2019", "lsoa2011")
        assert wards.links_by_type["U"] > 300 and wards.max_weight_sum_error < 1e-12
        moves = district_successors(rw, ["S12000046", "E07000049", "E06000018"], 2025)
        assert moves == {"S12000046": "S12000049", "E07000049": "E06000059", "E06000018": "E06000018"}
