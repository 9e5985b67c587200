"""Commands and promises the README documents, run as it shows them and checked against figures
worked out here from the stored rows (pandas, shapely, statsmodels) or from the fixture files the
test writes — never by the function under test (issue 31, point 6).

Commands run in this process (:func:`tests.conftest.run_cli`, as ``main`` runs them) unless the
process is what is tested (``serve --workers``). A test that writes copies the demo database first.
"""

from __future__ import annotations

import bisect
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import geopandas as gpd
import mapbox_vector_tile
import matplotlib
import pandas as pd
import pytest
import shapely
import yaml
from fastapi.testclient import TestClient
from statsmodels.stats.proportion import proportion_confint

from geo_cs.api.app import create_app
from geo_cs.config import Settings
from geo_cs.maps.page import read_page_config
from geo_cs.palette import NO_DATA
from geo_cs.store import Store
from tests.conftest import GRID_CODES, CliResult, run_cli
from tests.servers import start_on_a_free_port, wait_until

REPO = Path(__file__).resolve().parent.parent
PARTNERSHIPS = REPO / "boundaries" / "partnerships" / "city_strategy_partnerships.yaml"
#: The DWP series' first four quarters: the baseline the README gives for a series that lacks
#: the report's (May 2006 - Feb 2007).
FIRST_QUARTERS = ["2010-05", "2010-08", "2010-11", "2011-02"]
NATIONS = {"E": "England", "S": "Scotland", "W": "Wales"}


@pytest.fixture
def cli(capsys: pytest.CaptureFixture):
    """``cli(*args)``: ``geo-cs ARGS`` in this process; its exit code and output. The environment
    is left as it was: ``--disclosure-control`` writes ``GEO_CS_DISCLOSURE_CONTROL=1`` into it
    (for a server's worker processes), which would put every later command of this process
    under the control."""
    def run(*args: str) -> CliResult:
        before = {k: v for k, v in os.environ.items() if k.startswith("GEO_CS_")}
        try:
            return run_cli(capsys, *args)
        finally:
            for key in [k for k in os.environ if k.startswith("GEO_CS_")]:
                if key not in before:
                    del os.environ[key]
            os.environ.update(before)
    return run




@pytest.fixture
def demo_copy(demo_db: Path, tmp_path: Path) -> Path:
    """A copy of the demo database for a test that writes (the session's stays as built)."""
    path = tmp_path / "demo.duckdb"
    shutil.copyfile(demo_db, path)
    return path


# -- oracles: the stored rows, read plainly ------------------------------------------------------

def rows(db: Path, sql: str, params: list | None = None) -> pd.DataFrame:
    with Store.open(db, read_only=True) as store:
        return store.sql(sql, params or []).df()


def shapes(db: Path, set_id: str) -> gpd.GeoDataFrame:
    """A set's areas as stored in EPSG:27700."""
    table = rows(db, "SELECT code, name, ST_AsWKB(geom_27700) AS wkb FROM areas "
                     "WHERE set_id = ? AND geom_27700 IS NOT NULL ORDER BY code", [set_id])
    geometry = shapely.from_wkb([bytes(w) for w in table.pop("wkb")])
    return gpd.GeoDataFrame(table, geometry=geometry, crs="EPSG:27700")


def placed_in(small: gpd.GeoDataFrame, big: gpd.GeoDataFrame) -> pd.Series:
    """small code -> the big area holding its point on surface (the README's rule where no
    lookup reaches), by shapely's own spatial join."""
    points = gpd.GeoDataFrame({"code": small["code"]}, geometry=small.geometry.representative_point(),
                              crs=small.crs)
    joined = gpd.sjoin(points, big[["code", "geometry"]].rename(columns={"code": "big"}),
                       predicate="within")
    # a point on two generalised boundaries that overlap: the first by code
    return joined.sort_values(["code", "big"]).drop_duplicates("code").set_index("code")["big"]


def partnership_definitions() -> list[dict]:
    """The partnerships as the YAML file states them: member set, every phase's members (the
    last is the final, end-of-initiative definition)."""
    found = []
    for p in yaml.safe_load(PARTNERSHIPS.read_text(encoding="utf-8"))["partnerships"]:
        phases = p.get("phases") or [{"members": p["members"]}]
        found.append({"id": p["id"], "set": p.get("member_geography", "lad2013"),
                      "phases": [list(ph["members"]) for ph in phases]})
    return found


def claimants(db: Path) -> pd.DataFrame:
    """The DWP out-of-work benefit counts by constituency with their stored denominators."""
    frame = rows(db, "SELECT code, period_id, value AS count, denominator FROM observations "
                     "WHERE indicator_id = 'dwp_oowb_wpc10.claimants' AND set_id = 'wpc2010'")
    assert frame["count"].notna().all() and (frame["denominator"] > 0).all()
    return frame


def rate_of(frame: pd.DataFrame) -> float:
    """Σ count / Σ denominator × 100: the README's rate of a group, never a mean of rates."""
    return 100 * frame["count"].sum() / frame["denominator"].sum()


# -- geo-cs analyse nations -----------------------------------------------------------------------

@pytest.mark.slow
def test_analyse_nations_splits_each_nation_inside_and_outside_the_partnerships(cli, demo_db, tmp_path):
    """README: ``analyse nations`` — worst-performing vs other neighbourhoods, inside and outside
    partnership areas, per nation. The constituency series at the README's 20% threshold has
    worst-performing constituencies on both sides in England and Wales."""
    out = tmp_path / "nations.csv"
    done = cli("--db", str(demo_db), "analyse", "nations", "-i", "dwp_oowb_wpc10.claimants",
               "-g", "wpc2010", "--threshold", "20", "-o", str(out))
    assert done.code == 0, done.stderr
    table = pd.read_csv(out)

    obs = claimants(demo_db)
    obs["rate"] = 100 * obs["count"] / obs["denominator"]
    base = obs[obs["period_id"].isin(FIRST_QUARTERS)].groupby("code")["rate"].agg(["mean", "size"])
    worst = set(base.index[(base["size"] == 4) & (base["mean"] > 20)])
    # inside: in a partnership's final definition, placed by point on surface (no lookup
    # links constituencies to districts or wards)
    seats = shapes(demo_db, "wpc2010")
    inside: set[str] = set()
    for p in partnership_definitions():
        members = shapes(demo_db, p["set"])
        members = members[members["code"].isin(p["phases"][-1])]
        assert len(members) == len(p["phases"][-1]), p["id"]
        inside |= set(placed_in(seats, members).index)
    obs["nation"] = obs["code"].str[0].map(NATIONS)
    obs["area"] = ["inside" if c in inside else "outside" for c in obs["code"]]
    obs["role"] = ["cohort" if c in worst else "rest" for c in obs["code"]]

    expected = {}
    for (nation, area, period, role), group in obs.groupby(["nation", "area", "period_id", "role"]):
        expected[(nation, area, period, role)] = (rate_of(group), len(group))
    # every nation, both sides, every quarter: 3 × 2 × 8 rows
    assert len(table) == 3 * 2 * 8
    assert set(zip(table["nation"], table["area"], strict=True)) == {
        (n, a) for n in NATIONS.values() for a in ("inside", "outside")}
    for row in table.itertuples():
        for role in ("cohort", "rest"):
            rate, n_areas = getattr(row, f"{role}_rate"), getattr(row, f"{role}_n_areas")
            want = expected.get((row.nation, row.area, row.period_id, role))
            if want is None:      # no worst-performing constituency on that side (Scotland, outside)
                assert math.isnan(rate) and math.isnan(n_areas), row
                continue
            assert rate == pytest.approx(want[0], abs=1e-9), (row.nation, row.area, row.period_id, role)
            assert n_areas == want[1]
            low, high = getattr(row, f"{role}_rate_low"), getattr(row, f"{role}_rate_high")
            assert low < rate < high
        if not math.isnan(row.cohort_rate):
            assert row.gap == pytest.approx(row.cohort_rate - row.rest_rate, abs=1e-12)
            assert row.gap_low < row.gap < row.gap_high
    # the README's figures: worst-performing seats exist outside the partnerships too
    english = table[(table["nation"] == "England") & (table["period_id"] == "2010-05")].set_index("area")
    assert english.loc["outside", "cohort_n_areas"] > 0 and english.loc["inside", "cohort_n_areas"] > 0


# -- geo-cs analyse comparator ----------------------------------------------------------------------

def _table_rows(stdout: str, first_column: str) -> list[list[str]]:
    """The body rows of a rich table printed by the CLI whose first cells match ``first_column``."""
    found = []
    for line in stdout.splitlines():
        cells = [c.strip() for c in re.split(r"[│┃]", line)[1:-1]]
        if cells and re.fullmatch(first_column, cells[0]):
            found.append(cells)
    return found


@pytest.mark.slow
def test_analyse_comparator_by_rule_picks_the_worst_districts_in_no_partnership(cli, demo_db, tmp_path):
    """README: ``analyse comparator`` — districts in no partnership, by rule (``--worst-n``,
    ``--above``), with the members reported. Districts are made of the constituencies whose point
    on surface they hold; a district's baseline rate is the mean of its quarterly rates over the
    first four quarters."""
    seats = shapes(demo_db, "wpc2010")
    districts = shapes(demo_db, "lad2013")
    in_district = placed_in(seats, districts)
    partnership_districts = {m for p in partnership_definitions() if p["set"] == "lad2013"
                             for phase in p["phases"] for m in phase}
    obs = claimants(demo_db)
    obs["district"] = obs["code"].map(in_district)
    per_quarter = obs.dropna(subset=["district"]).groupby(["district", "period_id"])
    district_rates = per_quarter.apply(rate_of, include_groups=False).rename("rate").reset_index()
    baseline = (district_rates[district_rates["period_id"].isin(FIRST_QUARTERS)]
                .groupby("district")["rate"].mean())
    candidates = baseline.drop(index=[d for d in baseline.index if d in partnership_districts])
    ranked = candidates.sort_values(ascending=False)
    names = dict(zip(districts["code"], districts["name"], strict=True))

    def check(result: CliResult, chosen: list[str], rates_csv: Path) -> None:
        assert result.code == 0, result.stderr
        members = _table_rows(result.stdout, r"[ESW]\d{8}")
        assert [m[0] for m in members] == chosen
        for code, name, shown_rate, rank in members:
            assert name == names[code]
            assert float(shown_rate) == pytest.approx(baseline[code], abs=0.005)   # two decimals
            assert int(rank) == list(ranked.index).index(code) + 1
        rates = pd.read_csv(rates_csv).set_index("period_id")
        mine = obs[obs["district"].isin(chosen)]
        assert len(rates) == 8
        for period, group in mine.groupby("period_id"):
            assert rates.loc[period, "rate"] == pytest.approx(rate_of(group), abs=1e-9)
            assert rates.loc[period, "n_areas"] == len(group)
            assert rates.loc[period, "count"] == group["count"].sum()

    top3 = tmp_path / "top3.csv"
    check(cli("--db", str(demo_db), "analyse", "comparator", "-i", "dwp_oowb_wpc10.claimants",
              "-g", "wpc2010", "--worst-n", "3", "-o", str(top3)), list(ranked.index[:3]), top3)
    above = tmp_path / "above.csv"
    chosen = list(ranked.index[ranked > 18])
    assert 3 < len(chosen) < len(ranked)          # the rule chooses, it does not take all
    check(cli("--db", str(demo_db), "analyse", "comparator", "-i", "dwp_oowb_wpc10.claimants",
              "-g", "wpc2010", "--above", "18", "-o", str(above)), chosen, above)


# -- --definition-date ------------------------------------------------------------------------------

@pytest.mark.slow
def test_definition_date_takes_the_partnership_as_it_was_then(cli, demo_db, tmp_path):
    """README: ``--definition-date 2008-06-01`` uses the definitions in force then; the default is
    the final one. Nottingham was the city alone until March 2009, then Nottingham and
    Nottinghamshire (8 districts)."""
    notts = next(p for p in partnership_definitions() if p["id"] == "nottingham")
    city, county = notts["phases"]
    assert city == ["E06000018"] and len(county) == 8
    # the LSOAs of each district, from the official LSOA 2011 -> ward 2019 -> district 2019
    # lookup rows (Nottinghamshire's district codes did not change between 2013 and 2019)
    lookup = rows(demo_db, "SELECT DISTINCT w.from_code AS code, d.to_code AS district "
                           "FROM lookup_links w JOIN lookup_links d ON d.from_set = 'ward2019' "
                           "AND d.from_code = w.to_code AND d.to_set = 'lad2019' "
                           "WHERE w.from_set = 'lsoa2011' AND w.to_set = 'ward2019'")
    assert lookup["code"].is_unique
    counts = rows(demo_db, "SELECT code, value AS count FROM observations WHERE indicator_id = "
                           "'imd2019_indicators.employment_deprived' AND set_id = 'lsoa2011'")
    people = rows(demo_db, "SELECT code, value AS denominator FROM observations WHERE indicator_id = "
                           "'population2019_lsoa11.working_age_population' AND set_id = 'lsoa2011'")
    both = counts.merge(people, on="code").dropna()
    gb = rate_of(both)        # the reference: every area held with both figures

    def expected(members: list[str]) -> tuple[float, int]:
        mine = both[both["code"].isin(lookup.loc[lookup["district"].isin(members), "code"])]
        return rate_of(mine), len(mine)

    found = {}
    for label, extra in (("2008", ["--definition-date", "2008-06-01"]), ("final", [])):
        out = tmp_path / f"rates_{label}.csv"
        done = cli("--db", str(demo_db), "analyse", "rates", "-i", "imd2019_indicators.employment_deprived",
                   "-g", "lsoa2011", "--denominator", "population2019_lsoa11.working_age_population",
                   "-p", "nottingham", *extra, "-o", str(out))
        assert done.code == 0, done.stderr
        found[label] = pd.read_csv(out).iloc[0]
    for label, members in (("2008", city), ("final", county)):
        rate, n_areas = expected(members)
        row = found[label]
        assert row["n_areas"] == n_areas and row["rate"] == pytest.approx(rate, abs=1e-9), label
        assert row["gap"] == pytest.approx(rate - gb, abs=1e-9)
    assert found["2008"]["n_areas"] == 182            # Nottingham's own LSOAs
    assert found["2008"]["partnership_version"].startswith("Nottingham (2007-04..2009-03)")
    assert found["final"]["partnership_version"].startswith("Nottingham and Nottinghamshire (2009-04..2011-03)")
    bad = cli("--db", str(demo_db), "analyse", "rates", "-i", "dwp_oowb_wpc10.claimants", "-g", "wpc2010",
              "-p", "nottingham", "--definition-date", "June 2008")
    assert bad.code == 3 and "--definition-date 'June 2008': expected YYYY-MM-DD" in bad.stderr


# -- geo-cs crosswalk build --through -------------------------------------------------------------

def _stored_weights(db: Path, crosswalk_id: str) -> pd.Series:
    table = rows(db, "SELECT from_code, to_code, weight FROM crosswalks WHERE crosswalk_id = ?",
                 [crosswalk_id])
    return table.set_index(["from_code", "to_code"])["weight"].sort_index()


def _weights(pairs: pd.DataFrame) -> pd.Series:
    """w(a, b) = what of a's small areas lies in b / what lies in a, from (code, from, to, pop)."""
    summed = pairs.groupby(["from_code", "to_code"])["pop"].sum()
    return (summed / summed.groupby(level="from_code").transform("sum")).sort_index()


@pytest.mark.slow
def test_crosswalk_build_through_small_areas_links_gateshead_and_weights_wards(cli, demo_copy):
    """README: district code changes and ward editions are crosswalked through the small areas
    both editions are made of: ``--from lad2011 --to lad2019 --through lsoa2011`` links Gateshead
    E08000020 to E08000037; ``--from ward2013 --to ward2019 --through lsoa2011``."""
    done = cli("--db", str(demo_copy), "crosswalk", "build", "--from", "lad2011", "--to", "lad2019",
               "--through", "lsoa2011", "--json")
    assert done.code == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["crosswalk_id"] == "lad2011->lad2019"
    assert report["basis"].startswith("through lsoa2011")
    # each LSOA's district in both editions, from the official lookup rows
    lad2011 = rows(demo_copy, "SELECT from_code AS code, to_code AS from_code FROM lookup_links "
                              "WHERE from_set = 'lsoa2011' AND to_set = 'lad2011'")
    lad2019 = rows(demo_copy, "SELECT DISTINCT w.from_code AS code, d.to_code FROM lookup_links w "
                              "JOIN lookup_links d ON d.from_set = 'ward2019' AND d.from_code = w.to_code "
                              "AND d.to_set = 'lad2019' WHERE w.from_set = 'lsoa2011' AND w.to_set = 'ward2019'")
    assert lad2011["code"].is_unique and lad2019["code"].is_unique
    expected = _weights(lad2011.merge(lad2019, on="code").assign(pop=1.0))
    stored = _stored_weights(demo_copy, "lad2011->lad2019")
    pd.testing.assert_series_equal(stored, expected, check_names=False, atol=1e-12)
    assert stored[("E08000020", "E08000037")] == 1.0          # Gateshead, under its new code
    assert report["sources"] == expected.index.get_level_values(0).nunique()

    # wards: the 2013 edition has no lookup from LSOAs, so each LSOA is placed by its point on
    # surface; weighted by the working-age population of the LSOAs
    population = "population2019_lsoa11.working_age_population"
    done = cli("--db", str(demo_copy), "crosswalk", "build", "--from", "ward2013", "--to", "ward2019",
               "--through", "lsoa2011", "--population", population, "--json")
    assert done.code == 0, done.stderr
    report = json.loads(done.stdout)
    assert "point-on-surface to ward2013" in report["basis"] and "lookup to ward2019" in report["basis"]
    in_ward2013 = placed_in(shapes(demo_copy, "lsoa2011"), shapes(demo_copy, "ward2013"))
    ward2019 = rows(demo_copy, "SELECT from_code AS code, to_code FROM lookup_links "
                               "WHERE from_set = 'lsoa2011' AND to_set = 'ward2019'")
    people = rows(demo_copy, "SELECT code, value AS pop FROM observations WHERE indicator_id = ? "
                             "AND set_id = 'lsoa2011'", [population])
    pairs = (in_ward2013.rename("from_code").reset_index().merge(ward2019, on="code")
             .merge(people, on="code"))
    expected = _weights(pairs)
    stored = _stored_weights(demo_copy, "ward2013->ward2019")
    pd.testing.assert_series_equal(stored, expected, check_names=False, atol=1e-12)
    # ward editions really differ: some 2013 wards are split between 2019 wards
    assert (stored < 1).sum() > 100 and report["links_by_method"] == {
        "population of lsoa2011": len(expected)}


# -- geo-cs ingest indicator --spec ----------------------------------------------------------------

#: The README's own spec (boundaries/README.md, "Writing a spec for your own file"), verbatim.
README_SPEC = """\
id = "my_claimants"                 # indicator ids become my_claimants.<measure>
title = "DWP working-age client group, our LSOAs"
layout = "wide"                     # wide | long | nomis | statxplore
geography = "lsoa2011"              # a set from registry.yaml
code_column = "lsoa11_code"
file = "my_claimants.csv"           # lets `geo-cs ingest indicator my_claimants.csv` find this spec

[period]                            # or: year = 2019 | quarter = "2006-05" | month = "2017-10"
                                    #   | column = "Date" (+ frequency = "month" | "quarter")
edition = "IMD 2019"
data_year = 2015

[[measures]]
id = "claimants"
column = "total"
kind = "count"                      # count | rate | score | rank | decile
denominator = "working_age_pop"     # optional column holding its denominator

[[measures]]
id = "working_age_population"
sum_columns = ["16", "64"]          # sum every column from "16" to "64"
kind = "count"
"""


@pytest.fixture
def grid_db(tmp_path: Path, grid, cli) -> Path:
    """A database holding the hand-made grid of six LSOA 2011 boundaries."""
    path = tmp_path / "grid.duckdb"
    boundaries = tmp_path / "grid.geojson"
    grid.to_file(boundaries)
    assert cli("--db", str(path), "ingest", "boundaries", str(boundaries)).code == 0
    return path


def test_ingest_indicator_with_the_readmes_own_spec(cli, grid_db, tmp_path):
    """README: ``geo-cs ingest indicator my_file.csv --spec my_spec.toml``, with the spec the
    boundaries README shows: a count with its denominator column, and ages 16 to 64 summed."""
    spec = tmp_path / "my_spec.toml"
    spec.write_text(README_SPEC, encoding="utf-8")
    ages = [str(a) for a in range(10, 75)]          # ages either side of 16-64, to leave out
    frame = pd.DataFrame({"lsoa11_code": GRID_CODES})
    for i, age in enumerate(ages):
        frame[age] = [(7 * i + 13 * j) % 29 for j in range(len(GRID_CODES))]
    frame["total"] = [40, 0, 125, 7, 300, 61]
    frame["working_age_pop"] = [900, 850, 1200, 640, 1500, 700]
    data = tmp_path / "my_file.csv"
    frame.to_csv(data, index=False)

    done = cli("--db", str(grid_db), "ingest", "indicator", str(data), "--spec", str(spec))
    assert done.code == 0, done.stderr
    stored = rows(grid_db, "SELECT o.indicator_id, o.code, o.value, o.denominator, p.label "
                           "FROM observations o JOIN periods p USING (period_id) ORDER BY 1, 2")
    assert set(stored["label"]) == {next(iter(set(stored["label"])))} and "IMD 2019" in stored["label"].iloc[0]
    claim = stored[stored["indicator_id"] == "my_claimants.claimants"].set_index("code")
    assert claim["value"].to_dict() == dict(zip(GRID_CODES, map(float, frame["total"]), strict=True))
    assert claim["denominator"].to_dict() == dict(
        zip(GRID_CODES, map(float, frame["working_age_pop"]), strict=True))
    people = stored[stored["indicator_id"] == "my_claimants.working_age_population"].set_index("code")
    working_age = frame.set_index("lsoa11_code")[[str(a) for a in range(16, 65)]].sum(axis=1)
    assert people["value"].to_dict() == working_age.astype(float).to_dict()
    assert working_age.sum() < frame[ages].to_numpy().sum()        # the other ages were left out


# -- geo-cs ingest postcodes --postcode-col / --include-terminated --------------------------------

def test_ingest_postcodes_with_a_named_column_leaves_out_terminated_ones_unless_asked(cli, grid_db, tmp_path):
    """README: the postcode column is recognised or given with ``--postcode-col``; terminated
    postcodes (``doterm``) are left out unless ``--include-terminated``; the area columns are
    found by their codes, whatever their names."""
    a, b, c, d = GRID_CODES[:4]
    directory = pd.DataFrame([
        # postcode,  terminated, area (a column named for nothing geo-cs knows)
        ("LS1 1AA", "", a), ("LS1 1AB", "", a), ("LS1 2AA", "", b),
        ("LS2 1AA", "201901", c), ("LS2 1AB", "", c),
        ("LS6 9ZZ", "200812", d),                       # LS6: terminated postcodes only
        ("LS7 1AA", "", "E01999999"),                   # an area this store does not hold
    ], columns=["Postcode Unit", "doterm", "Small area"])
    path = tmp_path / "directory.csv"
    directory.to_csv(path, index=False)

    unnamed = cli("--db", str(grid_db), "ingest", "postcodes", str(path))
    assert unnamed.code == 3 and "no postcode column" in unnamed.stderr and "--postcode-col" in unnamed.stderr

    def held() -> dict[tuple[str, str], int]:
        table = rows(grid_db, "SELECT district, set_id, code, postcodes FROM postcode_districts")
        assert set(table["set_id"]) == {"lsoa2011"}
        return {(r.district, r.code): r.postcodes for r in table.itertuples()}

    def expected(keep_terminated: bool) -> dict[tuple[str, str], int]:
        kept = directory if keep_terminated else directory[directory["doterm"].fillna("") == ""]
        kept = kept[kept["Small area"].isin(GRID_CODES)]
        counts = kept.groupby([kept["Postcode Unit"].str.split().str[0], kept["Small area"]]).size()
        return {key: int(n) for key, n in counts.items()}

    live = cli("--db", str(grid_db), "ingest", "postcodes", str(path), "--postcode-col", "Postcode Unit",
               "--json")
    assert live.code == 0, live.stderr
    report = json.loads(live.stdout)
    assert report["postcode_column"] == "Postcode Unit" and report["terminated_left_out"] == 2
    assert report["links"] == {"Small area -> lsoa2011": len(expected(False))}
    assert held() == expected(False) == {("LS1", a): 2, ("LS1", b): 1, ("LS2", c): 1}

    every = cli("--db", str(grid_db), "ingest", "postcodes", str(path), "--postcode-col", "Postcode Unit",
                "--include-terminated", "--json")
    assert every.code == 0, every.stderr
    assert json.loads(every.stdout)["terminated_left_out"] == 0
    assert held() == expected(True) == {("LS1", a): 2, ("LS1", b): 1, ("LS2", c): 2, ("LS6", d): 1}


# -- the service: tiles' Cache-Control, /admin/refresh, "not a valid rate" --------------------------

def tile_of(lon: float, lat: float, z: int) -> tuple[int, int, int]:
    """The XYZ (Web Mercator) tile holding a point, by the slippy-map formula."""
    n = 2 ** z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return z, x, y


def centre_tile(db: Path, set_id: str, code: str, z: int = 12) -> tuple[int, int, int]:
    """The tile at the middle of an area's stored lon/lat bounding box."""
    box = rows(db, "SELECT xmin, ymin, xmax, ymax FROM areas WHERE set_id = ? AND code = ?",
               [set_id, code]).iloc[0]
    return tile_of((box["xmin"] + box["xmax"]) / 2, (box["ymin"] + box["ymax"]) / 2, z)


def page_config(client: TestClient, partnership: str, **params) -> dict:
    response = client.get(f"/maps/{partnership}", params=params)
    assert response.status_code == 200, response.text
    return read_page_config(response.text)


def wait_for_version(client: TestClient, old: int, seconds: float = 30) -> int:
    """The data version /health reports once the served file has been replaced (the README:
    the server notices the new file within half a second)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        version = client.get("/health").json()["data_version"]
        if version != old:
            return version
        time.sleep(0.2)
    pytest.fail(f"the data version stayed {old} for {seconds} s after an ingest")


def one_row_ingest(cli, db: Path, tmp_path: Path) -> None:
    """An ingest that changes nothing the tiles show: a new measure on one constituency."""
    data = tmp_path / "extra.csv"
    data.write_text("area_code,period,measure,value\nE14000530,2010-05,extra_count,5\n", encoding="utf-8")
    done = cli("--db", str(db), "ingest", "indicator", str(data), "--layout", "long", "--set", "wpc2010",
               "--source-id", "extra")
    assert done.code == 0, done.stderr


@pytest.mark.slow
def test_tiles_are_kept_a_minute_then_revalidated_until_the_data_version_changes(cli, demo_copy, tmp_path):
    """README: tiles carry an ETag (the data version and request) and ``Cache-Control``; a tile may
    be reused for a minute (``max-age=60``, then a 304 until the data version changes). Assets
    named by their content are ``public, max-age=31536000, immutable``; any other /static name
    is kept for a minute."""
    with TestClient(create_app(Settings(db=demo_copy))) as client:
        cfg = page_config(client, "glasgow")
        z, x, y = centre_tile(demo_copy, "datazone2011", cfg["areas"]["code"][0])
        urls = [p["tiles"].format(z=z, x=x, y=y) for p in cfg["periods"]]
        assert len(urls) == 3                       # SIMD 2012, 2016, 2020
        first = [client.get(url) for url in urls]
        for response in first:
            assert response.status_code == 200 and response.content
            assert response.headers["cache-control"] == "public, max-age=60"
            assert response.headers["vary"] == "Accept-Encoding"
        etags = [r.headers["etag"] for r in first]
        assert len(set(etags)) == 3                 # one per request, not per layer
        # within the minute and after: the same data version revalidates to a 304, headers kept
        again = client.get(urls[0], headers={"If-None-Match": etags[0]})
        assert again.status_code == 304 and not again.content
        assert again.headers["etag"] == etags[0] and again.headers["cache-control"] == "public, max-age=60"
        # another tile's ETag does not revalidate this one
        assert client.get(urls[0], headers={"If-None-Match": etags[1]}).status_code == 200

        # the page's own script and style, named by their content, are cached for good; the
        # plain name only for a minute
        html = client.get("/maps/glasgow").text

        hashed = re.findall(r'(?:src|href)="(/static/geo-cs/map\.[0-9a-f]{12}\.(?:js|css))"', html)
        assert len(hashed) == 2, hashed
        for url in hashed:
            assert client.get(url).headers["cache-control"] == "public, max-age=31536000, immutable"
        assert client.get("/static/geo-cs/map.js").headers["cache-control"] == "public, max-age=60"

        # an ingest into the served file: the data version moves on, and with it the ETag
        version = client.get("/health").json()["data_version"]
        one_row_ingest(cli, demo_copy, tmp_path)
        assert wait_for_version(client, version) > version
        fresh = client.get(urls[0], headers={"If-None-Match": etags[0]})
        assert fresh.status_code == 200 and fresh.headers["etag"] != etags[0]
        assert fresh.headers["cache-control"] == "public, max-age=60"
        assert fresh.content == first[0].content    # the same tile: only its version changed


@pytest.mark.slow
def test_admin_refresh_says_how_many_cached_tiles_and_values_it_dropped(demo_db):
    """README: ``GEO_CS_API_KEY=change-me geo-cs --disclosure-control serve`` then ``POST
    /admin/refresh`` answers ``{"data_version":7,"tiles_dropped":812,"values_dropped":14}``:
    the tiles the server had cached are dropped and counted."""
    settings = Settings(db=demo_db, api_key="change-me", disclosure_control=True)
    with TestClient(create_app(settings)) as client:
        bearer = {"Authorization": "Bearer change-me"}
        assert client.post("/admin/refresh").status_code == 401
        assert client.post("/admin/refresh", headers={"Authorization": "Bearer wrong"}).status_code == 401
        emptied = client.post("/admin/refresh", headers=bearer)
        assert emptied.status_code == 200
        assert emptied.json()["tiles_dropped"] == 0          # nothing drawn yet

        cfg = page_config(client, "glasgow")
        z, x, y = centre_tile(demo_db, "datazone2011", cfg["areas"]["code"][0])
        template = cfg["periods"][-1]["tiles"]
        # a 3 × 2 block of tiles, the first asked twice: six tiles cached, not seven
        drawn = [template.format(z=z, x=x + dx, y=y + dy) for dx in range(3) for dy in range(2)]
        for url in [*drawn, drawn[0]]:
            assert client.get(url).status_code in (200, 204)
        refreshed = client.post("/admin/refresh", headers={"X-API-Key": "change-me"})
        assert refreshed.status_code == 200
        body = refreshed.json()
        assert set(body) == {"data_version", "tiles_dropped", "values_dropped"}
        assert body["tiles_dropped"] == len(drawn) == 6
        assert body["values_dropped"] > 0                     # the measure's values behind them
        assert body["data_version"] == client.get("/health").json()["data_version"]
        # dropped, so a second refresh finds nothing to drop
        assert client.post("/admin/refresh", headers=bearer).json()["tiles_dropped"] == 0
    # without a key the operation is off
    with TestClient(create_app(Settings(db=demo_db))) as client:
        assert client.post("/admin/refresh", headers={"X-API-Key": "change-me"}).status_code == 403


#: The data zone whose denominator will not fit its count, and Dundee (its partnership).
BAD_AREA = "S01007771"
DUNDEE = "S12000042"


@pytest.fixture(scope="module")
def unfit_db(demo_db: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.Series]:
    """A copy of the demo database with a count for each of Dundee's data zones over a
    denominator of 200, one of them (``BAD_AREA``) 250: the rates by hand, beside it."""
    folder = tmp_path_factory.mktemp("unfit")
    db = folder / "demo.duckdb"
    shutil.copyfile(demo_db, db)
    # Dundee's data zones (official lookup rows: data zone -> intermediate zone -> council)
    codes = rows(db, "SELECT DISTINCT z.from_code AS code FROM lookup_links z JOIN lookup_links c "
                     "ON c.from_set = 'iz2011' AND c.from_code = z.to_code AND c.to_set = 'lad2020' "
                     "WHERE z.from_set = 'datazone2011' AND z.to_set = 'iz2011' AND c.to_code = ? "
                     "ORDER BY 1", [DUNDEE])["code"].tolist()
    assert BAD_AREA in codes and len(codes) > 100
    figures = pd.DataFrame({"area_code": codes, "period": "2019", "measure": "claimants",
                            "value": [20 + (7 * i) % 60 for i in range(len(codes))], "denominator": 200})
    figures.loc[figures["area_code"] == BAD_AREA, "value"] = 250      # 125% of its denominator
    data = folder / "fx.csv"
    figures.to_csv(data, index=False)
    from geo_cs.cli import main

    try:       # in this process, as run_cli does (a module's fixture has no capsys)
        main(["--db", str(db), "-q", "ingest", "indicator", str(data), "--layout", "long",
              "--set", "datazone2011", "--source-id", "fx"])
    except SystemExit as exc:
        assert exc.code in (0, None), exc
    by_hand = 100 * figures.set_index("area_code")["value"] / figures.set_index("area_code")["denominator"]
    assert by_hand[BAD_AREA] == 125.0 and (by_hand.drop(BAD_AREA) < 100).all()
    return db, by_hand


@pytest.mark.slow
def test_a_rate_over_100_percent_is_flagged_not_a_valid_rate_never_a_figure(unfit_db):
    """README: a rate over 100% (a denominator that does not fit the count) is never shown as a
    figure: the area is left uncoloured, its tooltip says *not a valid rate*, and the panel
    explains why. The tooltip is map.js's ``invalidRate`` of the tile's value (over 100, or
    outside value_low-value_high); the page's data flag the area and carry the note."""
    demo_copy, by_hand = unfit_db
    with TestClient(create_app(Settings(db=demo_copy))) as client:
        cfg = page_config(client, "dundee", geography="datazone2011", indicator="fx.claimants")
        assert cfg["unit"] == "%" and cfg["hasGap"]
        areas = cfg["areas"]
        flagged = {code for code, bad in zip(areas["code"], areas["invalid"], strict=True) if bad}
        assert flagged == {BAD_AREA}
        assert any(note.startswith("1 of the partnership's area figures are not valid rates")
                   and "'not a valid rate'" in note for note in cfg["notes"]), cfg["notes"]

        # the tile the tooltip reads: the bad area's value is over 100, which map.js's
        # invalidRate turns into "not a valid rate"; every other area's is a rate inside its
        # own interval, shown as a figure
        url = cfg["periods"][0]["tiles"].format(*(), **dict(zip("zxy", centre_tile(
            demo_copy, "datazone2011", BAD_AREA), strict=True)))
        tile = client.get(url)
        assert tile.status_code == 200
        features = {f["properties"]["code"]: f["properties"]
                    for f in mapbox_vector_tile.decode(tile.content)["datazone2011"]["features"]}
        bad = features[BAD_AREA]
        assert bad["value"] == pytest.approx(by_hand[BAD_AREA], abs=1e-4) and bad["value"] > 100
        others = [p for code, p in features.items() if code != BAD_AREA and code in by_hand.index]
        assert others
        for p in others:
            assert p["value"] == pytest.approx(by_hand[p["code"]], abs=1e-4)
            assert p["value_low"] - 1e-9 <= p["value"] <= p["value_high"] + 1e-9 and p["value"] <= 100

        # a measure whose every rate is over 100% (the README's own pairing of the working-age
        # population over the employment-deprived count): the panel has no figures, and nor
        # has the answer in words above the map
        glasgow = rows(demo_copy, "SELECT DISTINCT z.from_code AS code FROM lookup_links z JOIN lookup_links c "
                                  "ON c.from_set = 'iz2011' AND c.from_code = z.to_code AND c.to_set = 'lad2020' "
                                  "WHERE z.from_set = 'datazone2011' AND z.to_set = 'iz2011' "
                                  "AND c.to_code = 'S12000049'")["code"]
        pairs = rows(demo_copy, "SELECT code, indicator_id, value FROM observations WHERE period_id = 'simd2020' "
                                "AND set_id = 'datazone2011' AND indicator_id IN "
                                "('simd2020.working_age_population', 'simd2020.employment_deprived')")
        wide = pairs.pivot(index="code", columns="indicator_id", values="value").loc[glasgow]
        whole = 100 * wide["simd2020.working_age_population"].sum() / wide["simd2020.employment_deprived"].sum()
        assert whole > 100
        cfg = page_config(client, "glasgow", indicator="simd2020.working_age_population",
                          denominator="simd2020.employment_deprived")
        summary = cfg["periods"][cfg["start"]]["summary"]
        assert summary["invalid"] is True and summary["partnership_value"] == pytest.approx(whole, abs=1e-3)
        assert all(cfg["areas"]["invalid"][i] for i, code in enumerate(cfg["areas"]["code"])
                   if code in set(wide.index[wide["simd2020.working_age_population"]
                                             > wide["simd2020.employment_deprived"]]))
        assert cfg["sentence"].startswith("No valid figures for Glasgow"), cfg["sentence"]
        assert f"{whole:.1f}" not in cfg["sentence"] and "points" not in cfg["sentence"]


# -- geo-cs serve --workers -------------------------------------------------------------------------

def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (Linux /proc)."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _owner_of_connection(client_port: int, server_port: int, pids: list[int]) -> int | None:
    """Which of ``pids`` holds the server side of the TCP connection from ``client_port``: its
    socket inode in /proc/net/tcp, among each process's open files."""
    inode = None
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote = fields[1].split(":"), fields[2].split(":")
        if int(local[1], 16) == server_port and int(remote[1], 16) == client_port and fields[3] == "01":
            inode = f"socket:[{fields[9]}]"
    if inode is None:
        return None

    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                if os.readlink(fd) == inode:
                    return pid
            except OSError:
                continue
    return None


def _answered(port: int) -> tuple[int, str, socket.socket]:
    """GET /health over a connection left open: (the connection's local port, status line, the
    socket, to be closed by the caller once its server side has been looked up)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=60)
    sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n")
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, "the server closed the connection before answering"
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:")))
    while len(body) < length:
        body += sock.recv(65536)
    assert json.loads(body)["status"] == "ok"
    return sock.getsockname()[1], head.split(b"\r\n")[0].decode(), sock


@pytest.mark.slow
def test_serve_with_two_workers_answers_from_both_and_stops_cleanly(demo_db, tmp_path):
    """README: ``geo-cs serve`` starts ``--workers N`` worker processes (the banner says how
    many); each keeps its own caches. Started with 2 on a free port: two worker processes under
    it, both answer requests, and SIGTERM stops all of them."""
    log = tmp_path / "serve.log"

    def start(port: int) -> subprocess.Popen:
        with log.open("wb") as out:
            # the map warm-up is not what is tested here, and costs the 2 CPUs a minute
            return subprocess.Popen(
                [sys.executable, "-m", "geo_cs.cli", "--db", str(demo_db), "serve", "--port", str(port),
                 "--workers", "2"], stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                env={**os.environ, "PYTHONUNBUFFERED": "1", "GEO_CS_WARM_MAPS": "0"})

    proc, port = start_on_a_free_port(start, log, 120, "geo-cs serve --workers 2")
    try:
        wait_until(lambda: _cmdline(proc.pid) and len(
            [c for c in _children(proc.pid) if "spawn_main" in _cmdline(c)]) == 2, 60,
            lambda: f"two worker processes; the log:\n{log.read_text()}")
        workers = sorted(c for c in _children(proc.pid) if "spawn_main" in _cmdline(c))
        # the banner says how many, and each worker says it started (uvicorn's log)
        text = wait_until(lambda: (t := log.read_text()).count("Application startup complete") == 2 and t,
                          120, lambda: f"both workers to start; the log:\n{log.read_text()}")
        assert "read-only (2 worker processes)" in text

        assert sorted(int(p) for p in re.findall(r"Started server process \[(\d+)\]", text)) == workers

        # connections are shared between the workers by the kernel: open them in bursts, each
        # kept open until its server side has been found, until both workers have answered
        answered: set[int] = set()
        for _ in range(10):
            with ThreadPoolExecutor(8) as pool:
                done = list(pool.map(lambda _: _answered(port), range(8)))
            for client_port, status, sock in done:
                assert status == "HTTP/1.1 200 OK"
                owner = _owner_of_connection(client_port, port, workers)
                assert owner in workers, (client_port, owner)
                answered.add(owner)
                sock.close()
            if answered == set(workers):
                break
        assert answered == set(workers)

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, log.read_text()
        wait_until(lambda: not any(Path(f"/proc/{w}").exists() and "spawn_main" in _cmdline(w)
                                   for w in workers), 10, "the workers to exit")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


# -- disclosure control in geo-cs export map and export profile -------------------------------------

def round5(value: float) -> float:
    """To the nearest 5, halves away from zero: the DWP rounding the README describes."""
    return math.copysign(math.floor(abs(value) / 5 + 0.5) * 5, value)


def dundee_employment(db: Path, edition: str) -> pd.DataFrame:
    """Dundee's data zones with their employment-deprived count and its own denominator."""
    return rows(db, "SELECT o.code, o.value AS count, o.denominator FROM observations o "
                    "JOIN lookup_links z ON z.from_set = 'datazone2011' AND z.from_code = o.code "
                    "AND z.to_set = 'iz2011' JOIN lookup_links c ON c.from_set = 'iz2011' "
                    "AND c.from_code = z.to_code AND c.to_set = 'lad2020' "
                    "WHERE o.indicator_id = ? AND o.set_id = 'datazone2011' AND c.to_code = ? "
                    "ORDER BY o.code", [f"{edition}.employment_deprived", DUNDEE]).set_index("code")


def _fills(svg: str) -> list[str]:
    """The fill colours of the first path collection of a matplotlib SVG (the map's areas, in
    the order drawn: by code)."""
    start = svg.index('id="PathCollection_1"')
    block = svg[start:svg.index("</g>", start)]
    return re.findall(r"fill: (#[0-9a-f]{6})", block)


@pytest.mark.slow
def test_export_map_under_disclosure_control_draws_a_withheld_area_as_no_data(cli, demo_db, tmp_path):
    """README: under ``--disclosure-control`` (``serve``, or ``export …``) the rate of fewer than 10
    people is suppressed — no value in the tile (drawn as no data), the same in print maps,
    each of which states the rule; rates are recomputed from counts rounded to 5. With own
    breaks (10, 20, 30) every area's class is known by hand, with the control and without."""
    zones = dundee_employment(demo_db, "simd2020")
    withheld = set(zones.index[zones["count"] < 10])
    assert len(withheld) == 5 and BAD_AREA in withheld
    breaks = [10.0, 20.0, 30.0]

    def klass(rate: float) -> int:
        return bisect.bisect_left(breaks, rate)      # the last class: above the last break

    drawn = {}
    for mode, control in (("off", []), ("on", ["--disclosure-control"])):
        out = tmp_path / f"dundee_{mode}.svg"
        # text as text, so that what the map says can be read back (the drawing is unchanged)
        with matplotlib.rc_context({"svg.fonttype": "none"}):
            done = cli("--db", str(demo_db), *control, "export", "map", "-p", "dundee", "--period", "simd2020",
                       "--breaks", "10,20,30", "-o", str(out))
        assert done.code == 0, done.stderr
        svg = out.read_text(encoding="utf-8")
        fills = _fills(svg)
        assert len(fills) == len(zones)               # one path per data zone, in code order
        drawn[mode] = (dict(zip(zones.index, fills, strict=True)), svg)

    exact = 100 * zones["count"] / zones["denominator"]
    published = pd.Series({c: 100 * round5(r["count"]) / round5(r["denominator"])
                           for c, r in zones.iterrows() if c not in withheld})
    for mode, rates in (("off", exact), ("on", published)):
        colours, svg = drawn[mode]
        by_class: dict[int, set[str]] = {}
        for code, rate in rates.items():
            by_class.setdefault(klass(rate), set()).add(colours[code])
        # one colour per class, a different one for each
        assert all(len(c) == 1 for c in by_class.values()), (mode, by_class)
        class_colours = [next(iter(c)) for c in by_class.values()]
        assert len(set(class_colours)) == len(class_colours) and NO_DATA not in class_colours
        rule = "Counts rounded to the nearest 5; rates of fewer than 10 people suppressed."
        words = " ".join(" ".join(re.findall(r"<text[^>]*>([^<]*)", svg)).split())   # lines rejoined
        assert "Dundee: Employment-deprived people" in words
        if mode == "on":
            assert {colours[c] for c in withheld} == {NO_DATA}, mode
            assert rule in words
        else:
            assert NO_DATA not in colours.values() and rule not in words
    # the rounding moves some areas to another class (S01007794: 10.26% exactly, 10.0% published),
    # so the colours above tell a map of published figures from one of exact ones
    moved = [c for c in published.index if klass(published[c]) != klass(exact[c])]
    assert moved and all(drawn["on"][0][c] != drawn["off"][0][c] for c in moved)


def _profile_text(cli, db: Path, out: Path, *control: str) -> str:

    done = cli("--db", str(db), *control, "export", "profile", "--area", BAD_AREA, "-o", str(out))
    assert done.code == 0, done.stderr
    return subprocess.run(["pdftotext", "-layout", str(out / f"{BAD_AREA}.pdf"), "-"], capture_output=True,
                          text=True, check=True).stdout


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils (pdftotext) not installed")
def test_export_profile_under_disclosure_control_leaves_out_a_withheld_figure(cli, demo_db, tmp_path):
    """README: ``geo-cs export profile --area S01009841 -o profiles/``; under disclosure control
    a rate of fewer than 10 people is suppressed in profiles too, which state the rule, and the
    figures shown are those recomputed from counts rounded to 5. Barnhill - 04 (S01007771) had 8
    employment-deprived people of 303 in SIMD 2020: its figure is in the profile without the
    control and nowhere in it with the control."""
    figures = {e: dundee_employment(demo_db, e).loc[BAD_AREA] for e in ("simd2012", "simd2016", "simd2020")}
    assert figures["simd2020"]["count"] == 8 and figures["simd2016"]["count"] == 10   # 10 is published
    labels = {"simd2012": "SIMD 2012 (2010 data)", "simd2016": "SIMD 2016 (2014 data)",
              "simd2020": "SIMD 2020 (2017 data)"}

    def row(edition: str, count: float, denominator: float) -> str:
        """The profile's table row as pdftotext lays it out: the period, the rate, its interval."""
        low, high = proportion_confint(count, denominator, alpha=0.05, method="wilson")
        words = [f"{100 * count / denominator:.1f}", f"{100 * low:.1f}", f"{100 * high:.1f}"]
        return r"\s+".join([re.escape(labels[edition]), *map(re.escape, words)]) + r"\s"


    plain = _profile_text(cli, demo_db, tmp_path / "off")
    for edition, f in figures.items():
        assert re.search(row(edition, f["count"], f["denominator"]), plain), (edition, plain)
    rate_2020 = f"{100 * 8 / figures['simd2020']['denominator']:.1f}%"
    assert rate_2020 == "2.6%" and f"had a rate of {rate_2020}" in plain

    controlled = _profile_text(cli, demo_db, tmp_path / "on", "--disclosure-control")
    assert "Counts rounded to the nearest 5; rates of fewer than 10 people suppressed." in controlled
    assert "No figure for it in SIMD 2020 (2017 data)" in controlled
    # the withheld figure, its interval and its table row are nowhere
    f = figures["simd2020"]
    assert not re.search(row("simd2020", f["count"], f["denominator"]), controlled)
    assert not re.search(re.escape(labels["simd2020"]) + r"\s+\d", controlled)
    assert rate_2020 not in controlled
    # the published editions, from the rounded count and denominator
    for edition in ("simd2012", "simd2016"):
        f = figures[edition]
        assert re.search(row(edition, round5(f["count"]), round5(f["denominator"])), controlled), edition
    # SIMD 2012's figure really changed with the rounding (5.9% -> 6.0%)
    f = figures["simd2012"]
    assert f"{100 * f['count'] / f['denominator']:.1f}" != f"{100 * round5(f['count']) / round5(f['denominator']):.1f}"


@pytest.mark.slow
@pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="Debian chromium not installed")
def test_the_tooltip_of_a_rate_over_100_percent_says_not_a_valid_rate(unfit_db, tmp_path):
    """The same area in Chromium against the running service: the mouse over it shows *not a
    valid rate* with the figure it came to, no interval and no gap with the partnership."""
    from playwright.sync_api import expect, sync_playwright

    from tests.servers import running_service
    from tests.test_clients import _launch, in_page, tiles_drawn, watch_console

    db, _ = unfit_db
    inside = shapes(db, "datazone2011").set_index("code").loc[BAD_AREA, "geometry"]
    point = gpd.GeoSeries([inside.representative_point()], crs="EPSG:27700").to_crs("EPSG:4326").iloc[0]
    env = {"GEO_CS_DB": str(db), "GEO_CS_WARM_MAPS": "0"}
    with running_service(env, tmp_path / "service.log") as base, sync_playwright() as p:
        browser = _launch(p)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 800})
            problems = watch_console(page)
            page.goto(f"{base}/maps/dundee?geography=datazone2011&indicator=fx.claimants")
            tiles_drawn(page)
            assert "not valid rates" in page.locator("body").inner_text()     # the panel says why
            page.evaluate("([lat, lon]) => geoCs.map.setView([lat, lon], 14, {animate: false})",
                          [point.y, point.x])
            # the page's own hit test finds the area there once the new zoom's tiles are in
            wait_until(lambda: page.evaluate("([lat, lon]) => (geoCs.areaAt(L.latLng(lat, lon)) || {}).code",
                                             [point.y, point.x]) == BAD_AREA,
                       30, f"{BAD_AREA} under its own point at zoom 14", pause=in_page(page))
            x, y = page.evaluate("""([lat, lon]) => {
                const p = geoCs.map.latLngToContainerPoint([lat, lon]);
                const box = geoCs.map.getContainer().getBoundingClientRect();
                return [p.x + box.left, p.y + box.top]; }""", [point.y, point.x])
            page.mouse.move(x - 15, y - 15)
            page.mouse.move(x, y, steps=4)
            tip = page.locator(".leaflet-tooltip")
            expect(tip).to_contain_text(BAD_AREA, timeout=10_000)
            text = tip.inner_text()
            assert "not a valid rate (125.0%: the population it is divided by does not fit the count)" in text
            assert "95% interval" not in text and "Gap with" not in text
            assert not problems, problems
        finally:
            browser.close()
