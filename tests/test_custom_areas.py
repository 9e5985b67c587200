"""Custom areas (issue 34, point 1): an estate, a zone, a catchment made of small areas.

The id holds the whole area (no state on the server); it decodes to a partnership every route
takes; its figures are checked against sums computed here from the demo's own observation rows;
under disclosure control no custom area, nor the difference of two, recovers a withheld area;
the definition downloads as a partnership file the CLI's ``--area-file`` takes back.
"""

from __future__ import annotations

import csv
import io
import re

import numpy as np
import pandas as pd
import pytest
import yaml
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from geo_cs.api.app import create_app
from geo_cs.config import Settings
from geo_cs.custom_areas import (
    MAX_ID_LENGTH,
    CustomArea,
    area_id,
    codes_from_text,
    file_stem,
    parse_area_id,
)
from geo_cs.disclosure import DisclosureControl
from geo_cs.errors import InputError
from geo_cs.layers import partnership_gap, resolve_measure
from geo_cs.maps.page import read_page_config
from geo_cs.partnerships import area_from_file, get_partnerships, resolve
from geo_cs.store import Store
from tests.conftest import run_cli

MEASURE = {"geography": "datazone2011", "indicator": "employment_deprived"}
#: A Dundee data zone whose SIMD 2012 count is under 10: withheld under disclosure control.
WITHHELD = "S01007687"

# -- the id ------------------------------------------------------------------------------------

codes = st.lists(st.builds(lambda p, n: f"{p}{n:06d}", st.sampled_from(["S01", "E01", "W01"]),
                           st.integers(0, 999_999)), min_size=1, max_size=300)


@settings(max_examples=200, deadline=None)
@given(codes=codes, name=st.text(max_size=80), within=st.sampled_from(["", "glasgow", "nottingham"]),
       against=st.booleans())
def test_an_id_gives_back_exactly_its_area(codes, name, within, against):
    against = against and bool(within)
    try:
        text = area_id("datazone2011", codes, name=name, within=within, against_within=against)
    except InputError as exc:        # too scattered for a link: said, never cut short
        assert "at most" in str(exc)
        return
    area = parse_area_id(text)
    assert area.codes == tuple(sorted(set(codes)))
    assert area.name == re.sub(r"[\x00-\x1f\x7f]", " ", name).strip()   # control characters are spaces
    assert (area.within, area.against_within) == (within, against)
    assert len(text) <= MAX_ID_LENGTH
    assert area_id("datazone2011", list(reversed(codes)), name=area.name, within=within,
                   against_within=against) == text      # order and repeats do not matter


def test_consecutive_codes_make_a_short_id():
    estate = [f"S01{n:06d}" for n in range(10206, 10246)]          # 40 data zones in a row
    assert len(area_id("datazone2011", estate, name="Castlemilk", within="glasgow")) <= 64


@pytest.mark.parametrize("damage", [
    lambda t: t[:-3],                       # cut short in an email
    lambda t: t[:12] + "A" + t[13:],        # a character changed
    lambda t: t + "AAAA",                   # something after it
    lambda t: "area-" + "!" * 10,           # not base64
])
def test_a_damaged_id_is_refused_in_words(damage):
    good = area_id("datazone2011", ["S01010206", "S01010207"], name="Govan", within="glasgow")
    with pytest.raises(InputError, match="custom area"):
        area = parse_area_id(damage(good))
        # a change that still decodes must decode to a different, well-formed area
        assert area != parse_area_id(good)
        raise InputError("custom area: decoded to another area")


def test_codes_must_be_codes():
    with pytest.raises(InputError, match="SO1010206 is not a small-area code"):
        area_id("datazone2011", ["SO1010206"])
    with pytest.raises(InputError, match="no small-area codes"):
        area_id("datazone2011", [])


@pytest.mark.parametrize("text, expected", [
    # the ONS lookup's shape, QGIS's "export as CSV" (fid first), a pasted list, tab-separated
    ("LSOA11CD,LSOA11NM\nE01000001,City of London 001A\nE01000002,City of London 001B\n",
     ["E01000001", "E01000002"]),
    ("fid,DataZone,Name,TotPop2011\n1,S01006506,Culter - 01,872\n2,S01006507,Culter - 02,836\n",
     ["S01006506", "S01006507"]),
    ("S01010206\nS01010207 s01010300; S01010206", ["S01010206", "S01010207", "S01010300"]),
    ("zone\tcount\nS01010206\t3\nS01010207\t4\n", ["S01010206", "S01010207"]),
    ("\ufeffcode\nE01000001\n\n", ["E01000001"]),
])
def test_codes_are_read_from_the_shapes_users_have(text, expected):
    assert codes_from_text(text) == expected


def test_a_code_column_with_a_stray_value_names_it():
    with pytest.raises(InputError, match=r"column 'LSOA11CD' holds 'CITY OF LONDON'"):
        codes_from_text("LSOA11CD,n\nE01000001,1\nCity of London,2\n", source="mine.csv")


def test_a_files_name_is_its_area_name():
    pid = area_id("datazone2011", ["S01010206"], name="Govan / Ibrox estate!")
    assert file_stem(pid).startswith("govan-ibrox-estate-") and len(file_stem(pid)) < 30
    assert file_stem("glasgow") == "glasgow"


# -- figures against the demo's own rows --------------------------------------------------------

@pytest.fixture(scope="module")
def exact_rows(demo_db):
    """Each data zone's count and denominator per period, straight from the observations."""
    with Store.open(demo_db, read_only=True) as store:
        return store.sql("""
            SELECT code, period_id, value AS count, denominator FROM observations
            WHERE set_id = 'datazone2011' AND indicator_id LIKE 'simd20%.employment_deprived'
        """).df()


@pytest.fixture(scope="module")
def glasgow(demo_db) -> list[str]:
    with Store.open(demo_db, read_only=True) as store:
        return resolve(store, get_partnerships(["glasgow"])[0], "datazone2011").codes


def by_hand(rows, area: list[str], compared: list[str], threshold: float = 25.0) -> dict:
    """Per period the cohort's and the rest's rate and the gap, summed here: the cohort is the
    area's data zones whose SIMD 2012 (the first edition: the baseline) rate exceeds the threshold.
    As the method says, a row counts only with a population to divide by (a data zone of no
    working-age people, with 2 deprived in SIMD 2020, has no rate)."""
    rows = rows[rows["denominator"] > 0]
    base = rows[rows["period_id"] == "simd2012"].set_index("code")
    rate = 100 * base["count"] / base["denominator"]
    cohort = set(rate[rate > threshold].index) & set(area)
    rest = set(compared) - cohort
    out = {}
    for period, group in rows.groupby("period_id"):
        c, r = group[group["code"].isin(cohort)], group[group["code"].isin(rest)]
        c_rate = 100 * c["count"].sum() / c["denominator"].sum()
        r_rate = 100 * r["count"].sum() / r["denominator"].sum()
        out[period] = (c_rate, r_rate, c_rate - r_rate, len(cohort))
    return out


def gap_of(demo_db, pid: str, disclosure=None):
    with Store.open(demo_db, read_only=True) as store:
        measure = resolve_measure(store, "datazone2011", "employment_deprived")
        return partnership_gap(store, measure, pid, disclosure=disclosure)


@pytest.mark.parametrize("against", [False, True])
def test_an_estates_gap_is_the_sum_of_its_own_rows(demo_db, exact_rows, glasgow, against):
    estate = glasgow[100:140]
    pid = area_id("datazone2011", estate, name="Estate", within="glasgow", against_within=against)
    table = gap_of(demo_db, pid)
    expected = by_hand(exact_rows, estate, glasgow if against else estate)
    assert set(table["period_id"]) == set(expected)
    for row in table.itertuples():
        cohort, rest, gap, n = expected[row.period_id]
        assert (row.cohort_rate, row.rest_rate, row.gap) == pytest.approx((cohort, rest, gap), abs=1e-9)
        assert row.n_cohort == n and 0 < n < 40
        assert row.partnership == pid


def test_the_custom_area_of_a_whole_partnership_is_the_partnership(demo_db, glasgow):
    mine = gap_of(demo_db, area_id("datazone2011", glasgow, name="All of Glasgow"))
    theirs = gap_of(demo_db, "glasgow")
    columns = ["cohort_rate", "rest_rate", "gap", "gap_low", "gap_high", "n_cohort", "n_rest"]
    np.testing.assert_allclose(mine[columns].to_numpy(float), theirs[columns].to_numpy(float), rtol=1e-12)


def test_an_area_outside_its_partnership_cannot_be_compared_with_the_rest_of_it(demo_db):
    pid = area_id("datazone2011", [WITHHELD, "S01010206"], within="glasgow", against_within=True)
    with pytest.raises(InputError, match="outside Glasgow"):
        gap_of(demo_db, pid)


def test_codes_the_store_does_not_hold_are_named(demo_db):
    with pytest.raises(InputError, match="S01999999 is not a datazone2011 code in the store"):
        gap_of(demo_db, area_id("datazone2011", ["S01010206", "S01999999"]))


# -- disclosure control: the attack --------------------------------------------------------------

@pytest.fixture(scope="module")
def protected(demo_db):
    with TestClient(create_app(Settings(db=demo_db, disclosure_control=True))) as client:
        yield client


@pytest.fixture(scope="module")
def large_dundee_zone(demo_db, exact_rows) -> str:
    """A Dundee data zone far from any small number, beside the withheld one."""
    with Store.open(demo_db, read_only=True) as store:
        dundee = resolve(store, get_partnerships(["dundee"])[0], "datazone2011").codes
    counts = exact_rows[exact_rows["code"].isin(dundee)].groupby("code")["count"].min()
    assert counts[WITHHELD] < 10               # the premise: it is withheld
    return str(counts[counts > 60].index[0])


@pytest.mark.parametrize("within", ["", "dundee"])
def test_two_custom_areas_that_differ_by_a_withheld_area_publish_the_same_figures(
        protected, demo_db, exact_rows, large_dundee_zone, within):
    """The differencing attack: {x} and {x, w}, alone or against the rest of Dundee. A custom
    area's figures are sums of its areas' published figures: in SIMD 2012, where w is withheld,
    it adds nothing; where w is published, it adds exactly its published (rounded) count."""
    make = dict(name="Probe", within=within, against_within=bool(within))
    x_only = area_id("datazone2011", [large_dundee_zone], **make)
    x_and_w = area_id("datazone2011", [large_dundee_zone, WITHHELD], **make)
    control = DisclosureControl()
    a, b = (gap_of(demo_db, pid, control).set_index("period_id") for pid in (x_only, x_and_w))
    figures = ["cohort_count", "cohort_denominator", "cohort_rate", "rest_count", "rest_denominator",
               "rest_rate", "gap", "gap_low", "gap_high", "n_cohort"]
    pd.testing.assert_series_equal(a.loc["simd2012", figures], b.loc["simd2012", figures])
    w = exact_rows[exact_rows["code"] == WITHHELD].set_index("period_id")
    for period in ("simd2016", "simd2020"):
        assert w.loc[period, "count"] >= 10           # published there: counted, rounded
        # against the rest of Dundee, w is in that rest either way; alone, it joins the rest
        added = 0 if within else control.round([w.loc[period, "count"]])[0]
        assert b.loc[period, "rest_count"] == a.loc[period, "rest_count"] + added
    # the service says the same (its page's figures and the gap chart's CSV)
    summaries = [{p["id"]: p["summary"] for p in protected.get(f"/maps/{pid}/figures.json", params=MEASURE).json()["periods"]}
                 for pid in (x_only, x_and_w)]
    assert summaries[0]["simd2012"] == summaries[1]["simd2012"]
    rows = [next(r for r in csv.DictReader(io.StringIO(protected.get(f"/maps/{pid}/gap.csv", params=MEASURE).text))
                 if r["period_code"] == "simd2012") for pid in (x_only, x_and_w)]
    shown = [c for c in rows[0] if c.endswith(("_pct", "_95", "_points", "_areas"))]
    assert len(shown) > 8 and [rows[0][c] for c in shown] == [rows[1][c] for c in shown]


def test_a_custom_area_of_only_a_withheld_area_shows_no_figure(protected, demo_db):
    pid = area_id("datazone2011", [WITHHELD], name="Probe")
    figures = protected.get(f"/maps/{pid}/figures.json", params=MEASURE).json()
    shown = {p["id"]: p["summary"] for p in figures["periods"]}
    # SIMD 2012 is not offered at all (nothing of it is published), or offered empty
    assert shown.get("simd2012", {}).get("partnership_value") is None
    assert shown.get("simd2012", {}).get("cohort_rate") is None
    page = read_page_config(protected.get(f"/maps/{pid}", params=MEASURE).text)
    assert all(p["id"] != "simd2012" or p["summary"].get("partnership_value") is None for p in page["periods"])
    items = protected.get("/collections/datazone2011/items", params={
        "indicator": "employment_deprived", "partnership": pid, "period": "simd2012", "f": "csv"})
    assert items.status_code == 200, items.text
    row = next(csv.DictReader(io.StringIO(items.text)))
    assert row["code"] == WITHHELD and row["value"] == row["count"] == row["denominator"] == ""
    # without the control an analyst sees it (the test would pass vacuously otherwise)
    exact = gap_of(demo_db, pid).set_index("period_id")
    assert exact.loc["simd2012", ["cohort_count", "rest_count"]].notna().any()


def test_the_whole_partnership_as_a_custom_area_is_summed_from_published_figures(demo_db):
    """Under the control a custom area's counts are multiples of the rounding: sums of rounded
    counts, not an exact total rounded once (which a difference would give back)."""
    with Store.open(demo_db, read_only=True) as store:
        dundee = resolve(store, get_partnerships(["dundee"])[0], "datazone2011").codes
    table = gap_of(demo_db, area_id("datazone2011", dundee), disclosure=DisclosureControl())
    counts = table[["cohort_count", "rest_count"]].to_numpy(float)
    assert np.all(np.isnan(counts) | (counts % 5 == 0))
    assert any("published figures" in note for note in table.attrs["notes"])


# -- the page, its downloads and the CLI -------------------------------------------------------

@pytest.fixture(scope="module")
def client(demo_db):
    with TestClient(create_app(Settings(db=demo_db))) as c:
        yield c


def test_the_page_of_a_custom_area_names_it_and_links_its_definition(client, glasgow):
    pid = area_id("datazone2011", glasgow[100:140], name="Castlemilk estate", within="glasgow")
    response = client.get(f"/maps/{pid}", params=MEASURE)
    assert response.status_code == 200
    config = read_page_config(response.text)
    assert config["partnershipName"] == "Castlemilk estate"
    assert sorted(config["codes"]) == sorted(glasgow[100:140])
    assert "rest of Castlemilk estate" in config["sentence"]
    assert config["custom"]["withinName"] == "Glasgow" and config["figureWords"]["whole"] == "Castlemilk estate"
    other = client.get(config["custom"]["withinUrl"])
    words = read_page_config(other.text)
    assert "worst-performing neighbourhoods of Castlemilk estate and the rest of Glasgow" in words["sentence"]
    assert words["figureWords"]["rest"] == "Rest of Glasgow"
    # the downloads are named for it, not for its id
    assert config["periods"][0]["csvName"].startswith("castlemilk-estate-")


def test_the_definition_downloads_and_comes_back_through_the_cli(client, demo_db, tmp_path, glasgow, capsys):
    pid = area_id("datazone2011", glasgow[100:140], name="Castlemilk estate")
    yaml_file = tmp_path / "castlemilk.yaml"
    yaml_file.write_bytes(client.get(f"/maps/{pid}/area.yaml").content)
    csv_file = tmp_path / "Castlemilk estate.csv"
    csv_file.write_bytes(client.get(f"/maps/{pid}/area.csv").content)
    with Store.open(demo_db, read_only=True) as store:
        assert area_from_file(store, csv_file, ["datazone2011"]) == pid
        assert parse_area_id(area_from_file(store, yaml_file)).codes == tuple(sorted(glasgow[100:140]))
    out = tmp_path / "ni153.csv"
    result = run_cli(capsys, "--db", str(demo_db), "analyse", "ni153", "-i", "simd2016.employment_deprived",
                     "-g", "datazone2011", "--area-file", str(csv_file), "-o", str(out))
    assert result.code == 0, result.stderr
    rows = list(csv.DictReader(out.open()))
    assert rows and rows[0]["partnership"] == file_stem(pid)
    result = run_cli(capsys, "--db", str(demo_db), "export", "report", "--area-file", str(yaml_file),
                     "-o", str(tmp_path / "reports"), "--format", "html")
    assert result.code == 0, result.stderr
    [report] = (tmp_path / "reports").glob("*.html")
    assert report.name.startswith("castlemilk-estate-") and "Castlemilk estate" in report.read_text()


def test_a_file_of_codes_the_store_does_not_hold_is_named(demo_db, tmp_path, capsys):
    bad = tmp_path / "districts.csv"
    bad.write_text("code\nS12000049\n")
    result = run_cli(capsys, "--db", str(demo_db), "analyse", "ni153", "-i", "simd2016.employment_deprived",
                     "-g", "datazone2011", "--area-file", str(bad))
    assert result.code == 3 and "districts.csv: its codes are not datazone2011 areas" in result.stderr


def test_a_damaged_link_is_refused_in_plain_words(client):
    pid = area_id("datazone2011", ["S01010206", "S01010207"], name="Govan")
    response = client.get(f"/maps/{pid[:-2]}", headers={"Accept": "text/html"})
    assert response.status_code == 400
    assert "copy the whole link again" in response.text
    too_long = client.get("/maps/area-" + "A" * 3100, headers={"Accept": "text/html"})
    assert too_long.status_code in (400, 404, 422) and "traceback" not in too_long.text.lower()


def test_the_area_is_as_the_issue_lists_it(client):
    """A custom area made of the same codes in another order is the same address."""
    a = CustomArea("datazone2011", ("S01010206", "S01010207"), "Govan")
    assert parse_area_id(a.id) == a


def test_a_custom_areas_chart_downloads_with_its_source_and_attribution(client, glasgow):
    """Point 5 for the gap chart of a custom area: PNG, SVG and the CSV behind it, each with the
    source line and the OGL attribution, named for the area."""
    pid = area_id("datazone2011", glasgow[100:140], name="Castlemilk estate")
    downloads = read_page_config(client.get(f"/maps/{pid}", params=MEASURE).text)["chartDownloads"]
    svg = client.get(downloads["svg"]["url"])
    assert svg.headers["content-type"].startswith("image/svg+xml")
    words = " ".join(" ".join(re.findall(r">([^<>]+)<", svg.text)).split())   # the chart's text, as read
    assert "Open Government Licence" in words and "Scottish Index of Multiple Deprivation" in words
    assert "Castlemilk estate" in words
    png = client.get(downloads["png"]["url"])
    assert png.content[:8] == b"\x89PNG\r\n\x1a\n" and "castlemilk-estate-" in png.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(client.get(downloads["csv"]["url"]).text)))
    assert rows and all("Open Government Licence" in r["attribution"] and r["source"] for r in rows)
    assert downloads["csv"]["name"].startswith("castlemilk-estate-")


def test_a_name_with_markup_is_shown_as_text_everywhere(client):
    """The name comes from whoever made the link: written as text on the page, in its data,
    the chart, the downloads' names and the partnership file."""
    name = '<img src=x onerror=alert(1)>"; x'
    pid = area_id("datazone2011", ["S01010206", "S01010207"], name=name)
    page = client.get(f"/maps/{pid}", params=MEASURE).text
    assert "<img src=x" not in page and read_page_config(page)["partnershipName"] == name
    svg = client.get(f"/maps/{pid}/gap.svg", params=MEASURE).text
    assert "<img" not in svg
    yaml_download = client.get(f"/maps/{pid}/area.yaml")
    assert '"' not in yaml_download.headers["content-disposition"].split("filename=")[1].strip('"')
    assert yaml.safe_load(yaml_download.text)["partnerships"][0]["name"] == name
