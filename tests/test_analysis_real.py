"""The analyses on the real data of the embedded demo bundle (no ../shared needed).

Expected figures are worked out here from the bundle's raw files (and, where marked
``shared_data``, from the full files in ../shared/data) with pandas and the plain-pandas NI 153
of ``bench/ni153_pandas_peer.py``, never with geo-cs; the README's published figures are then
checked against those, so a README figure that drifted from the data would fail too.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.ni153_pandas_peer import ni153_pandas, worst_codes
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
DEMO = Path(__file__).resolve().parents[1] / "boundaries" / "demo"
PEER_COLUMNS = ["cohort_rate", "rest_rate", "gap", "n_cohort", "cohort_share"]


def dwp_constituencies(path: Path) -> pd.DataFrame:
    """DWP's file as published, one row per constituency and quarter: the count, the working-age
    population its level and rate imply (DWP does not publish it) and GB's published rate."""
    raw = pd.read_csv(path)
    raw = raw[raw["CountryName"] == "Great Britain"].copy()          # NI rows are blank
    raw["period_id"] = pd.to_datetime(raw["Date"], format="%Y/%m/%d").dt.strftime("%Y-%m")
    # the population a level and a rate imply, in whole people (as geo-cs documents storing it)
    raw["denominator"] = (raw["ConstLevel"] / raw["ConstRate"] * 100).round()
    return raw.rename(columns={"ONSConstID": "code", "ConstituencyName": "name", "ConstLevel": "value"})


def simd2012_observations(path: Path) -> pd.DataFrame:
    """SIMD 2012's file in the peer's shape: one row per 2001 data zone."""
    raw = pd.read_csv(path)
    return pd.DataFrame({
        "code": raw["dz01_code"], "period_id": "simd2012", "indicator": "employment_deprived",
        "value": raw["number_of_employment_deprived_people_2012"],
        "denominator": raw["best_fit_working_age_population_men_16_64_women_16_60_sape_2010"]})


#: The Scottish partnerships' councils: 2007-2019 codes (the partnerships file's) and the NRS
#: lookup's 2020 codes (Glasgow was recoded in 2019).
SCOTTISH = {"dundee": ("S12000042", "S12000042"), "edinburgh": ("S12000036", "S12000036"),
            "glasgow": ("S12000046", "S12000049")}


def lookup_membership() -> pd.DataFrame:
    """The 2001 data zones of each Scottish partnership through NRS's lookups alone: a 2001 zone
    belongs to a council when any 2011 zone it is linked to lies in that council."""
    links = pd.read_csv(DEMO / "lookups" / "dz01_dz11.csv").merge(
        pd.read_csv(DEMO / "lookups" / "dz11_iz11_lad20_scotland.csv"), on="dz11_code")
    rows = [pd.DataFrame({"partnership": pid, "code": links.loc[links["ltla20_code"] == lad20, "dz01_code"].unique()})
            for pid, (_, lad20) in SCOTTISH.items()]
    return pd.concat(rows, ignore_index=True)


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
    # by hand from DWP's file: Glasgow's seven constituencies, Σ level / Σ implied population
    raw = dwp_constituencies(DEMO / "indicators" / "out_of_work_benefits_wpc10_2010q2_2012q1.csv")
    glasgow = raw[(raw["period_id"] == "2010-05") & raw["name"].str.startswith("Glasgow ")]
    assert len(glasgow) == 7
    rate = 100 * glasgow["value"].sum() / glasgow["denominator"].sum()
    gb = glasgow["CountryRate"].unique()
    assert len(gb) == 1                 # GB's published figure, the same on every row of a quarter
    # the GB reference is DWP's own published figure, not a sum of the ingested areas
    # (to float precision: stored as a level over the population it implies)
    assert may10.loc["glasgow", "reference_rate"] == pytest.approx(gb[0], abs=1e-6)
    assert may10.loc["glasgow", "rate"] == pytest.approx(rate, rel=1e-9)
    assert may10.loc["glasgow", "gap"] == pytest.approx(rate - gb[0], abs=1e-6)
    assert may10.loc["glasgow", "index"] == pytest.approx(100)
    # the README's figures (21.54%, 9.24 points above GB's 12.3%) are the data's
    assert (round(rate, 2), round(rate - gb[0], 2), gb[0]) == (21.54, 9.24, 12.3)


def test_worst_constituencies_on_the_first_four_quarters(store: Store):
    panel = Panel(store, RateSource("dwp_oowb_wpc10.claimants", "wpc2010"))
    cohort = worst_cohort(panel, MethodParams(baseline=tuple(QUARTERS), threshold=20))
    worst = cohort[cohort["worst"].fillna(False).astype(bool)]
    # the peer's cohort from DWP's file: a mean rate above 20% over the four quarters
    raw = dwp_constituencies(DEMO / "indicators" / "out_of_work_benefits_wpc10_2010q2_2012q1.csv")
    raw["rate"] = 100 * raw["value"] / raw["denominator"]
    expected = worst_codes(raw[["code", "period_id", "value", "denominator", "rate"]], QUARTERS, 20)
    assert set(worst["code"]) == set(expected) and 20 < len(expected) < 120
    assert (worst["baseline_rate"] > 20).all()
    table = ni153(store, panel, get_partnerships(["glasgow", "liverpool_city_region"]),
                  params=MethodParams(baseline=tuple(QUARTERS), threshold=20))
    changes = classify_changes(table, "2010-05", "2012-02", MethodParams(baseline=tuple(QUARTERS)))
    assert set(changes["gap_direction"]) <= {"closed", "unchanged", "widened"}


def compare_with_peer(ours: pd.DataFrame, peer: pd.DataFrame) -> None:
    both = ours.reset_index().merge(peer, on=["partnership", "period_id"], suffixes=("", "_peer"))
    assert len(both) == len(ours) == len(peer)
    for column in PEER_COLUMNS:
        assert np.allclose(both[column].astype(float), both[f"{column}_peer"].astype(float), rtol=1e-9), column


def test_simd_2012_worst_data_zones_of_the_scottish_partnerships(store: Store):
    """geo-cs's NI 153 (its partnerships resolved by geometry) against the pandas peer on SIMD
    2012's file with the data zones found through NRS's lookups."""
    panel = Panel(store, RateSource("simd2012.employment_deprived", "datazone2001"))
    table = ni153(store, panel, params=MethodParams(baseline=("simd2012",))).set_index("partnership")
    assert list(table.index) == ["dundee", "edinburgh", "glasgow"]
    peer = ni153_pandas(simd2012_observations(DEMO / "indicators" / "simd2012_scotland_dz01_indicators.csv"),
                        ["simd2012"], lookup_membership(), baseline=("simd2012",))
    compare_with_peer(table, peer)
    glasgow = peer.set_index("partnership").loc["glasgow"]
    # the README's figures for Glasgow (244 zones, 33.19%, 20.41 points) are the data's
    assert (glasgow["n_cohort"], round(glasgow["cohort_rate"], 2), round(glasgow["gap"], 2)) == (244, 33.19, 20.41)


@pytest.mark.shared_data
def test_simd_2012_figures_from_the_full_published_files(store: Store, shared_data: Path):
    """The same table from the full SIMD 2012 file (all of Scotland, ../shared/data), each
    council's 2001 data zones as the publisher's boundaries list them per council: the peer
    agrees with geo-cs on the demo, and the published figures hold on the full data."""
    rows = []
    for pid, (lad, _) in SCOTTISH.items():
        features = json.loads((shared_data / "boundaries" / "dz01_by_lad" / f"{lad}.json").read_text())["features"]
        rows.append(pd.DataFrame({"partnership": pid, "code": [f["properties"]["DZ_CODE"] for f in features]}))
    membership = pd.concat(rows, ignore_index=True)
    assert membership.groupby("partnership").size().to_dict() == {"dundee": 179, "edinburgh": 548, "glasgow": 690}
    observations = simd2012_observations(shared_data / "indicators" / "simd2012_scotland_dz01_indicators.csv")
    assert observations["code"].nunique() > 6000                        # the whole of Scotland
    peer = ni153_pandas(observations, ["simd2012"], membership, baseline=("simd2012",))
    panel = Panel(store, RateSource("simd2012.employment_deprived", "datazone2001"))
    compare_with_peer(ni153(store, panel, params=MethodParams(baseline=("simd2012",))).set_index("partnership"), peer)
    glasgow = peer.set_index("partnership").loc["glasgow"]
    assert (glasgow["n_cohort"], round(glasgow["cohort_rate"], 2), round(glasgow["gap"], 2)) == (244, 33.19, 20.41)


@pytest.mark.shared_data
def test_dwp_glasgow_from_the_full_published_file(shared_data: Path):
    """The bundle's DWP figures hold on DWP's full file in ../shared/data."""
    raw = dwp_constituencies(shared_data / "indicators" / "out_of_work_benefits_wpc10_2010q2_2012q1.csv")
    glasgow = raw[(raw["period_id"] == "2010-05") & raw["name"].str.startswith("Glasgow ")]
    rate = 100 * glasgow["value"].sum() / glasgow["denominator"].sum()
    assert len(glasgow) == 7 and (round(rate, 2), round(rate - glasgow["CountryRate"].iloc[0], 2)) == (21.54, 9.24)


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
