"""Issue 15 on the demo database (real data): NI 153 from IoD 2025 counts and rates for all 17
partnerships, the derived denominator checked against the published file, and the demo's
(synthetic, documented) monthly series in the CLI, the API and the map."""

from __future__ import annotations

import csv

import pytest
from conftest import REPO, run_cli
from fastapi.testclient import TestClient

from geo_cs.analysis import Panel, ni153, rate_source
from geo_cs.api.app import create_app
from geo_cs.config import Settings
from geo_cs.partnerships import get_partnerships
from geo_cs.store import Store

ENGLISH = {"bcbc", "blackburn", "east_london", "greater_manchester", "leicester",
           "liverpool_city_region", "nottingham", "south_yorkshire", "tyne_and_wear", "west_london"}
SCOTTISH_AND_WELSH = {"dundee", "edinburgh", "glasgow", "heads_of_the_valleys", "rhyl",
                      "swansea_bay", "mon_menai"}


def test_ni153_from_iod2025_counts_and_rates_for_all_17_partnerships(demo_db):
    """`analyse ni153 -i imd2025_indicators.employment_deprived -g lsoa2021` had no denominator:
    it is now derived from imd2025.employment_rate; IoD 2025 covers England only, so the
    Scottish and Welsh partnerships are reported as having no coverage."""
    with Store.open(demo_db, read_only=True) as store:
        source, _ = rate_source(store, "imd2025_indicators.employment_deprived", "lsoa2021")
        assert source.denominator == "imd2025.employment_rate"
        panel = Panel(store, source)
        partnerships = get_partnerships()
        assert len(partnerships) == 17
        table = ni153(store, panel, partnerships, params=None)
    assert set(table["partnership"]) == ENGLISH
    assert set(table.attrs["no_coverage"]) == SCOTTISH_AND_WELSH
    assert table["gap"].notna().all() and (table["gap"] > 10).all()
    assert (table["n_cohort"] > 0).all()
    assert all("derived: count / imd2025.employment_rate" in s for s in table["denominator_source"])
    # the interval carries the rate's rounding (0.001 as a fraction = 0.1 points)
    assert (table["gap_high"] > table["gap"]).all() and (table["gap_low"] < table["gap"]).all()
    assert any("glasgow: no coverage" in n for n in table.attrs["notes"])


def test_derived_iod2025_denominator_matches_the_published_numerator_and_score(demo_db):
    """A figure a user can check: the denominator of one LSOA is the published
    employment_domain_numerator divided by the published Employment_score."""
    folder = REPO / "boundaries" / "demo" / "indicators"
    with open(folder / "imd2025_england_lsoa21_indicators.csv", encoding="utf-8-sig") as fh:
        numerators = {r["lsoa21_code"]: float(r["employment_domain_numerator"])
                      for r in csv.DictReader(fh) if r["employment_domain_numerator"]}
    with open(folder / "imd2025_england_lsoa21.csv", encoding="utf-8-sig") as fh:
        scores = {r["lsoa21_code"]: float(r["Employment_score"])
                  for r in csv.DictReader(fh) if r["Employment_score"]}
    code = sorted(c for c in numerators if scores.get(c, 0) > 0)[0]
    with Store.open(demo_db, read_only=True) as store:
        source, _ = rate_source(store, "imd2025_indicators.employment_deprived", "lsoa2021")
        rates = Panel(store, source).area_rates()
    row = rates[rates["code"] == code].iloc[0]
    assert row["denominator"] == pytest.approx(numerators[code] / scores[code], rel=1e-9)


def test_cli_ni153_on_iod2025_and_count_is_rate(demo_db, capsys):
    done = run_cli(capsys, "--db", str(demo_db), "analyse", "ni153", "-i",
                   "imd2025_indicators.employment_deprived", "-g", "lsoa2021")
    assert done.code == 0, done.stderr
    assert "derived as count / imd2025.employment_rate" in done.stderr
    assert "glasgow: no coverage" in done.stderr and "liverpool_city_region" in done.stdout
    rate = run_cli(capsys, "--db", str(demo_db), "analyse", "ni153", "-i", "imd2025.employment_rate",
                   "-g", "lsoa2021", "--count-is-rate", "-p", "tyne_and_wear")
    assert rate.code == 0, rate.stderr
    assert "tyne_and_wear" in rate.stdout and "counts from imd2025_indicators.employment_deprived" in rate.stderr
    only_scotland = run_cli(capsys, "--db", str(demo_db), "analyse", "ni153", "-i",
                            "imd2025_indicators.employment_deprived", "-g", "lsoa2021", "-p", "glasgow")
    assert only_scotland.code == 0 and "glasgow: no coverage" in only_scotland.stderr


def test_demo_monthly_series_is_labelled_synthetic_and_monthly(demo_db, capsys):
    with Store.open(demo_db, read_only=True) as store:
        title = store.sql("SELECT source_title FROM indicators WHERE indicator_id = "
                          "'synthetic_monthly_wpc10.claimants_monthly'").fetchone()[0]
        periods = store.sql(
            "SELECT DISTINCT o.period_id, p.kind, p.label, p.start_date FROM observations o JOIN periods p "
            "USING (period_id) WHERE indicator_id = 'synthetic_monthly_wpc10.claimants_monthly' "
            "ORDER BY p.start_date").fetchall()
        real_may = store.sql(
            "SELECT value FROM observations WHERE indicator_id = 'dwp_oowb_wpc10.claimants' "
            "AND code = 'E14000530' AND period_id = '2010-05'").fetchone()[0]
        synthetic_may = store.sql(
            "SELECT value FROM observations WHERE indicator_id = 'synthetic_monthly_wpc10.claimants_monthly' "
            "AND code = 'E14000530' AND period_id = '2010m05'").fetchone()[0]
    assert "SYNTHETIC" in title
    assert len(periods) == 22 and {p[1] for p in periods} == {"month"}
    assert (periods[0][0], periods[0][2], periods[1][2], periods[-1][2]) == (
        "2010m05", "May 2010", "June 2010", "February 2012")
    assert synthetic_may == real_may          # the quarter months keep the real figures
    done = run_cli(capsys, "--db", str(demo_db), "analyse", "rates", "-i",
                   "synthetic_monthly_wpc10.claimants_monthly", "-g", "wpc2010", "-p", "glasgow")
    assert done.code == 0 and "June 2010" in done.stdout and "February 2012" in done.stdout


def test_the_map_slider_and_the_api_show_months(demo_db):
    with TestClient(create_app(Settings(db=demo_db))) as client:
        page = client.get("/maps/nottingham", params={"geography": "wpc2010",
                                                      "indicator": "claimants_monthly"})
        assert page.status_code == 200, page.text
        assert "June 2010" in page.text and "2010m06" in page.text
        items = client.get("/collections/wpc2010/items", params={
            "indicator": "claimants_monthly", "period": "2010-06", "baseline": "2010-05..2011-04",
            "limit": 5})
        assert items.status_code == 200, items.text
        assert {f["properties"]["period"] for f in items.json()["features"]} == {"2010m06"}
        mixed = client.get("/collections/wpc2010/items", params={"indicator": "claimants",
                                                                 "period": "2010-05"})
        assert mixed.status_code == 200   # the quarterly measure stays its own series


def test_tiles_and_print_maps_take_and_label_months(demo_db):
    from geo_cs.export.maps import partnership_map

    with TestClient(create_app(Settings(db=demo_db))) as client:
        tilejson = client.get("/tiles/wpc2010/tilejson.json",
                              params={"indicator": "claimants_monthly", "period": "2010-06"})
        assert tilejson.status_code == 200, tilejson.text
        assert all("period=2010m06" in url for url in tilejson.json()["tiles"])
    with Store.open(demo_db, read_only=True) as store:
        figure = partnership_map(store, "nottingham", geography="wpc2010", indicator="claimants_monthly",
                                 periods=["2010-06", "2011-06"])
    titles = [ax.get_title() for ax in figure.axes if ax.get_title()]
    assert any("June 2010" in t for t in titles) and any("June 2011" in t for t in titles)


def test_api_derives_a_denominator_from_a_rate_indicator(demo_db):
    """`denominator=` naming a rate indicator derives count / rate × 100 (the API only passes
    it through): each area's value is then the published rate again."""
    params = {"indicator": "imd2025_indicators.employment_deprived",
              "denominator": "imd2025.employment_rate", "limit": 50}
    with TestClient(create_app(Settings(db=demo_db))) as client:
        body = client.get("/collections/lsoa2021/items", params=params)
        assert body.status_code == 200, body.text
        rates = client.get("/collections/lsoa2021/items",
                           params={"indicator": "imd2025.employment_rate", "limit": 50}).json()
    derived = {f["properties"]["code"]: f["properties"]["value"] for f in body.json()["features"]}
    published = {f["properties"]["code"]: f["properties"]["value"] for f in rates["features"]}
    shared = [c for c in derived if derived[c] is not None and published.get(c) is not None]
    assert len(shared) > 20
    assert all(abs(derived[c] - published[c]) < 0.051 for c in shared)
