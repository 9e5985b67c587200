"""The survey employment rate (issue 29) on the two real APS files in ../shared/data.

Every expected figure is computed here, by hand, from the file's own rows (read with the csv
module): a partnership's rate is Σ numerators / Σ denominators × 100 of its districts and its 95%
half-width √Σ (wᵢ·cᵢ)², wᵢ = denominatorᵢ / Σ denominators, cᵢ the published half-width (``Conf``);
the gap with Great Britain has coefficients wᵢᴾ − wᵢᴮ (geo_cs/survey.py's module doc). geo-cs is
only asked for what it stores and what it computes, never for an expected value.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest

from geo_cs.store import Store

pytestmark = [pytest.mark.shared_data, pytest.mark.slow]

WEB = "aps_employment_rate_la_2019.csv"
API = "aps_lad_north_2004_2023.csv"

GREATER_MANCHESTER = [f"E080000{i:02d}" for i in range(1, 11)]
TYNE_AND_WEAR = ["E08000037", "E08000021", "E08000022", "E08000023", "E08000024"]
LIVERPOOL_CITY_REGION = ["E06000006", "E08000011", "E08000012", "E08000013", "E08000014",
                         "E08000015"]
CITY_OF_LONDON, ISLES_OF_SCILLY, MANCHESTER, GLASGOW = "E09000001", "E06000053", "E08000003", "S12000049"


# -- the files, read by hand ----------------------------------------------------------------------

def read_web(path: Path) -> dict:
    """The web download's preamble, area rows (type, name, code, cells, line) and footer."""
    with open(path, encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    header = next(i for i, r in enumerate(rows) if r[:2] == ["Area", "mnemonic"])
    end = next(i for i in range(header + 2, len(rows)) if not any(rows[i]))
    areas = []
    for i in range(header + 1, end):
        if not any(rows[i]):
            continue
        kind, _, name = rows[i][0].partition(":")
        areas.append({"type": kind, "name": name, "code": rows[i][1], "num": rows[i][2],
                      "den": rows[i][3], "rate": rows[i][4], "conf": rows[i][5], "line": i + 1})
    footer: dict[str, str] = {}
    last = None
    for r in rows[end:]:
        if r and r[0]:
            last = r[0]
            footer[last] = r[1]
        elif r and len(r) > 1 and r[1] and last:
            footer[last] += " " + r[1]
    return {"preamble": rows[:header], "header": rows[header], "areas": areas, "footer": footer}


def districts_2019(web: dict) -> dict[str, dict]:
    """The ``ladu:`` rows (every GB district once), by code."""
    return {a["code"]: a for a in web["areas"] if a["type"] == "ladu"}


def aggregate(rows: list[dict]) -> tuple[float, float]:
    """Σnum/Σden × 100 of the rows with numbers; √Σ(wᵢcᵢ)² over those with a published Conf."""
    usable = [r for r in rows if r["num"] != "-" and r["den"] != "-"]
    total = sum(float(r["den"]) for r in usable)
    rate = sum(float(r["num"]) for r in usable) / total * 100
    half = math.sqrt(sum((float(r["den"]) / total * float(r["conf"])) ** 2
                         for r in usable if r["conf"] not in ("*", "-")))
    return rate, half


def read_api(path: Path) -> list[dict]:
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


# -- the store ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def survey(tmp_path_factory) -> tuple[Path, dict, dict]:
    """A store with the district code history, the regions, the 2020 district boundaries and both
    APS files, as a user would ingest them (no spec), and the two reports."""
    from conftest import SHARED_DATA as data

    from geo_cs.ingest import ingest_boundaries, ingest_indicator, ingest_lookup

    db = tmp_path_factory.mktemp("survey_real") / "survey.duckdb"
    with Store.open(db) as store:
        ingest_lookup(store, data / "lookups" / "lad_changes_2014_2025.csv")
        ingest_lookup(store, data / "lookups" / "ward19_lad19_rgn19.csv")
        ingest_boundaries(store, [data / "boundaries" / "uk_admin_2014_2025.topojson"],
                          layer="ltla", set_id="lad2020", code_col="areacd", name_col="areanm",
                          alive_in=2020)
        reports = {name: ingest_indicator(store, data / "indicators" / name) for name in (WEB, API)}
    return db, reports, {"web": read_web(data / "indicators" / WEB),
                         "api": read_api(data / "indicators" / API)}


@pytest.fixture(scope="module")
def rates_2019(survey):
    from geo_cs.survey import employment_rates

    with Store.open(survey[0], read_only=True) as store:
        table = employment_rates(store, set_id="lad2020",
                                 partnerships=["greater_manchester", "glasgow", "tyne_and_wear"])
    return table.set_index("group")


# -- figures 4.1 and 4.2, 2019 --------------------------------------------------------------------

def test_greater_manchester_2019_rate_and_interval_by_hand(survey, rates_2019):
    districts = districts_2019(survey[2]["web"])
    rate, half = aggregate([districts[c] for c in GREATER_MANCHESTER])
    row = rates_2019.loc["greater_manchester"]
    assert row["rate"] == pytest.approx(rate, rel=1e-12)
    assert row["half_width"] == pytest.approx(half, rel=1e-12)
    assert (row["rate_low"], row["rate_high"]) == pytest.approx((rate - half, rate + half), rel=1e-12)
    assert row["interval"] == "published intervals combined"
    assert (row["districts"], row["districts_in_figure"], row["period_label"]) == (10, 10, "Jan 2019-Dec 2019")
    assert round(rate, 2) == 72.69 and round(half, 2) == 1.04
    # the sums themselves, from the rows
    assert row["numerator"] == sum(float(districts[c]["num"]) for c in GREATER_MANCHESTER)
    assert row["denominator"] == sum(float(districts[c]["den"]) for c in GREATER_MANCHESTER)


def test_glasgow_is_its_one_district_as_published(survey, rates_2019):
    glasgow = districts_2019(survey[2]["web"])[GLASGOW]
    assert (glasgow["num"], glasgow["den"], glasgow["rate"], glasgow["conf"]) == (
        "291900", "433500", "67.3", "2.9")
    row = rates_2019.loc["glasgow"]
    assert row["rate"] == pytest.approx(291900 / 433500 * 100, rel=1e-12)
    assert round(row["rate"], 1) == 67.3               # the file's own rounding
    assert row["half_width"] == pytest.approx(2.9, rel=1e-12)   # w = 1
    assert row["districts"] == 1


def test_tyne_and_wear_2019_by_hand(survey, rates_2019):
    districts = districts_2019(survey[2]["web"])
    rate, half = aggregate([districts[c] for c in TYNE_AND_WEAR])
    row = rates_2019.loc["tyne_and_wear"]
    assert (row["rate"], row["half_width"]) == pytest.approx((rate, half), rel=1e-12)
    assert row["districts"] == 5 and row["unreliable"] == "" and row["missing"] == ""


def test_great_britain_from_every_district_but_the_missing_one(survey, rates_2019):
    districts = districts_2019(survey[2]["web"])
    assert len(districts) == 368
    usable = [d for c, d in districts.items() if c != ISLES_OF_SCILLY]
    total = sum(float(d["den"]) for d in usable)
    rate = sum(float(d["num"]) for d in usable) / total * 100
    # the City of London (unreliable) is in the rate and its weight in the total, but has no
    # interval: the interval leaves it out
    half = math.sqrt(sum((float(d["den"]) / total * float(d["conf"])) ** 2
                         for d in usable if d["code"] != CITY_OF_LONDON))
    assert (rate, half) == pytest.approx(aggregate(list(districts.values())), rel=1e-12)
    row = rates_2019.loc["gb"]
    assert row["name"] == "Great Britain" and row["group_kind"] == "benchmark"
    assert (row["rate"], row["half_width"]) == pytest.approx((rate, half), rel=1e-12)
    assert (row["districts"], row["districts_in_figure"]) == (368, 367)
    assert row["interval"] == "published intervals combined, partial"
    assert "City of London (E09000001)" in row["unreliable"]
    assert "Isles of Scilly (E06000053)" in row["missing"]
    assert "unreliable" in row["note"] and "the other 367 districts" in row["note"]


def test_gap_greater_manchester_minus_great_britain_counts_each_district_once(survey, rates_2019):
    districts = districts_2019(survey[2]["web"])
    gm = [districts[c] for c in GREATER_MANCHESTER]
    gb = [d for c, d in districts.items() if c != ISLES_OF_SCILLY]
    gm_total = sum(float(d["den"]) for d in gm)
    gb_total = sum(float(d["den"]) for d in gb)
    gm_rate = sum(float(d["num"]) for d in gm) / gm_total * 100
    gb_rate = sum(float(d["num"]) for d in gb) / gb_total * 100
    coefficient = {d["code"]: -float(d["den"]) / gb_total for d in gb}
    for d in gm:
        coefficient[d["code"]] += float(d["den"]) / gm_total
    half = math.sqrt(sum((coefficient[d["code"]] * float(d["conf"])) ** 2
                         for d in gb if d["conf"] not in ("*", "-")))
    row = rates_2019.loc["greater_manchester"]
    assert row["gap"] == pytest.approx(gm_rate - gb_rate, rel=1e-12)
    assert (row["gap_low"], row["gap_high"]) == pytest.approx(
        (gm_rate - gb_rate - half, gm_rate - gb_rate + half), rel=1e-12)
    assert row["gap_real"] is True and abs(gm_rate - gb_rate) > half
    assert row["benchmark"] == "Great Britain" and row["benchmark_rate"] == pytest.approx(gb_rate)
    # the naive sum of the two intervals in quadrature counts GM twice: not what is computed
    naive = math.hypot(aggregate(gm)[1], rates_2019.loc["gb", "half_width"])
    assert half < naive and row["gap_high"] - row["gap"] == pytest.approx(half)


# -- the rolling years of the API file ------------------------------------------------------------

def test_liverpool_city_region_every_rolling_year_by_hand(survey):
    from geo_cs.survey import employment_rates

    rows = [r for r in survey[2]["api"] if r["variable_name"].startswith("Employment rate")
            and r["geography_code"] in LIVERPOOL_CITY_REGION]
    by_date: dict[str, dict] = {}
    for r in rows:
        cell = by_date.setdefault(r["date"], {"label": r["date_name"], "num": 0.0, "den": 0.0, "n": {}})
        cell["n"].setdefault(r["geography_code"], {})[r["measures_name"]] = float(r["value"])
    for cell in by_date.values():
        assert len(cell["n"]) == 6
        cell["num"] = sum(v["Numerator"] for v in cell["n"].values())
        cell["den"] = sum(v["Numerator"] / v["Variable"] * 100 for v in cell["n"].values())
    assert len(by_date) == 77
    with Store.open(survey[0], read_only=True) as store:
        table = employment_rates(store, partnerships=["liverpool_city_region"])   # default: lad2021
    mine = table[table["group"] == "liverpool_city_region"]
    assert len(mine) == 77 and set(mine["geography"]) == {"lad2021"}
    expected = [by_date[d] for d in sorted(by_date)]
    assert list(mine["period_label"]) == [c["label"] for c in expected]   # as Nomis writes them
    for (_, row), cell in zip(mine.iterrows(), expected, strict=True):
        assert row["rate"] == pytest.approx(cell["num"] / cell["den"] * 100, rel=1e-12), row["period_label"]
    assert set(mine["interval"]) == {"no interval published"}
    assert mine["half_width"].isna().all() and mine["rate_low"].isna().all()
    assert mine["gap_real"].isna().all()   # no interval: never called real
    assert all("denominators derived" in note for note in mine["note"])
    benchmark = table[table["group_kind"] == "benchmark"]["name"].iloc[0]
    assert benchmark == ("All 72 districts of North East, North West and Yorkshire and The Humber")


def test_api_period_labels_and_ids_as_nomis_writes_them(survey):
    labels = sorted({(r["date"], r["date_name"]) for r in survey[2]["api"]})
    with Store.open(survey[0], read_only=True) as store:
        stored = store.sql("SELECT p.period_id, p.label, p.kind FROM periods p WHERE p.period_id IN "
                           "(SELECT DISTINCT period_id FROM observations WHERE set_id = 'lad2021') "
                           "ORDER BY p.start_date").fetchall()
    assert [s[1] for s in stored] == [name for _, name in labels]
    assert {s[2] for s in stored} == {"rolling_year"}
    # the period id names the rolling year's last month: 2004-12-01 -> 2004y12
    assert [s[0] for s in stored] == [f"{d[:4]}y{d[5:7]}" for d, _ in labels]
    assert stored[0][1] == "Jan 2004-Dec 2004" and stored[-1][1] == "Jan 2023-Dec 2023"


# -- the markers, the preamble and the footer -----------------------------------------------------

def test_markers_kept_as_words_never_numbers(survey):
    from geo_cs.layers import area_values, resolve_measure

    districts = districts_2019(survey[2]["web"])
    assert (districts[CITY_OF_LONDON]["rate"], districts[CITY_OF_LONDON]["conf"]) == ("87.2", "*")
    assert {districts[ISLES_OF_SCILLY][k] for k in ("num", "den", "rate", "conf")} == {"-"}
    with Store.open(survey[0], read_only=True) as store:
        values = area_values(store, resolve_measure(store, "lad2020", "aps.employment_rate")).frame
        stored = dict(store.sql("SELECT code, status FROM observations WHERE set_id = 'lad2020' "
                                "AND status IS NOT NULL").fetchall())
    by_code = values.set_index("code")
    london = by_code.loc[CITY_OF_LONDON]
    assert london["value"] == 87.2 and london["reliability"] == "unreliable"
    assert (london["count"], london["denominator"]) == (7400, 8500)
    assert math.isnan(london["half_width"]) and math.isnan(london["value_low"])
    scilly = by_code.loc[ISLES_OF_SCILLY]
    assert scilly["reliability"] == "missing"
    assert all(math.isnan(scilly[c]) for c in ("value", "count", "denominator", "half_width"))
    # the markers stored as the file wrote them, and only for those two districts
    assert stored == {CITY_OF_LONDON: "*", ISLES_OF_SCILLY: "-"}
    assert by_code["reliability"].notna().sum() == 2


def test_preamble_and_footer_are_read_not_stored_as_areas(survey):
    _, reports, files = survey
    web = files["web"]
    report = reports[WEB]
    lines = [line.strip() for line in report.lines()]
    # the footer's meanings of the markers, as the file words them, in the report
    assert set(web["footer"]) == {"*", "-"}
    for marker, words in web["footer"].items():
        assert f"the file's footer: {marker!r} = {words}" in lines
    assert web["footer"]["*"] == ("Estimate and confidence interval unreliable since the group "
                                  "sample size is small (3-9)")
    # the preamble's Date is the period, labelled as Nomis labels it
    date = next(r[1] for r in web["preamble"] if r and r[0].startswith("Date"))
    assert date == "Jan 2019-Dec 2019" and report.period_labels == [date] and report.periods == ["2019y12"]
    # every area row, and nothing else, became an area
    codes = {a["code"] for a in web["areas"]}
    assert report.rows_read == len(web["areas"]) == 573
    with Store.open(survey[0], read_only=True) as store:
        stored = {r[0] for r in store.sql("SELECT DISTINCT code FROM observations "
                                          "WHERE indicator_id = 'aps.employment_rate' "
                                          "AND set_id IN ('lad2020', 'cty2020')").fetchall()}
    assert stored == codes and len(codes) == 393
    assert report.sets == {"cty2020": 25, "lad2020": 368}


def test_the_180_unitaries_listed_twice_are_kept_once(survey):
    web = survey[2]["web"]
    lacu = {a["code"]: a for a in web["areas"] if a["type"] == "lacu"}
    ladu = {a["code"]: a for a in web["areas"] if a["type"] == "ladu"}
    twice = set(lacu) & set(ladu)
    assert len(twice) == 180
    assert all([lacu[c][k] for k in ("num", "den", "rate", "conf")] ==
               [ladu[c][k] for k in ("num", "den", "rate", "conf")] for c in twice)
    report = survey[1][WEB]
    assert report.duplicates_dropped == 180
    assert ("180 areas listed twice (lacu: and ladu:, the unitary authorities) with the same "
            "figures, kept once") in [line.strip() for line in report.lines()]
    with Store.open(survey[0], read_only=True) as store:
        per_code = store.sql("SELECT max(n) FROM (SELECT code, count(*) AS n FROM observations "
                             "WHERE indicator_id = 'aps.employment_rate' AND period_id = '2019y12' "
                             "GROUP BY code, set_id)").fetchone()[0]
    assert per_code == 1


def test_district_editions_said_in_the_reports(survey):
    web, api = survey[1][WEB], survey[1][API]
    assert web.edition == ("2020 edition: E06000060 Buckinghamshire is in use from 2020 "
                           "(district code history)")
    assert api.edition == "2021 edition: as the file says"
    assert api.sets == {"lad2021": 72}
    assert "derived as Numerator ÷ Variable × 100" in api.denominators
    assert "no interval published" in api.intervals


# -- a figure a user can check against Nomis ------------------------------------------------------

def test_manchester_2019_as_nomis_publishes_it_through_layers_and_the_api(survey):
    """Nomis, APS, Jan 2019-Dec 2019, Manchester: employment rate 16-64 66.8%, ± 3.1 (95%),
    259,400 of 388,400: the file's own row, back unchanged."""
    from fastapi.testclient import TestClient

    from geo_cs.api.app import create_app
    from geo_cs.config import Settings
    from geo_cs.layers import area_values, resolve_measure

    row = districts_2019(survey[2]["web"])[MANCHESTER]
    published = {"value": float(row["rate"]), "half_width": float(row["conf"]),
                 "count": float(row["num"]), "denominator": float(row["den"])}
    assert published == {"value": 66.8, "half_width": 3.1, "count": 259400, "denominator": 388400}
    with Store.open(survey[0], read_only=True) as store:
        values = area_values(store, resolve_measure(store, "lad2020", "aps.employment_rate")).frame
    mine = values[values["code"] == MANCHESTER].iloc[0]
    assert {k: mine[k] for k in published} == published
    assert (mine["value_low"], mine["value_high"]) == pytest.approx((66.8 - 3.1, 66.8 + 3.1))
    with TestClient(create_app(Settings(db=survey[0]))) as client:
        response = client.get("/collections/lad2020_employment_rate/items",
                              params={"filter": f"code = '{MANCHESTER}'"})
    assert response.status_code == 200, response.text
    (feature,) = response.json()["features"]
    props = feature["properties"]
    assert {k: props[k] for k in published} == published
    assert (props["period"], props["reliability"]) == ("2019y12", None)
    assert (props["value_low"], props["value_high"]) == pytest.approx((63.7, 69.9))
