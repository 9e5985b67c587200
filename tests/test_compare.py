"""Compare places (issue 34, point 2): two to four partnerships or custom areas on one rate.

The core is checked against figures worked out here from the demo's own rows (the store's
observations read with SQL and summed by hand, Wilson's interval from statsmodels), the overlap
variance against the textbook formula for two independent rates and against a simulation, and
disclosure control against the published figures (a withheld area adds nothing and gives
nothing back). The routes answer JSON, CSV, SVG, PNG and the page, and refuse bad input in
words; in Chromium, at a desktop's size and a phone's, a person picks places and gets the chart,
the table and the downloads, with no console error.
"""

from __future__ import annotations

import csv
import io
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from statsmodels.stats.proportion import confint_proportions_2indep, proportion_confint

from geo_cs.api.app import create_app
from geo_cs.compare import (
    Place,
    check_places,
    compare_places,
    compare_values,
    difference_sentence,
    parse_places,
)
from geo_cs.config import Settings
from geo_cs.custom_areas import area_id
from geo_cs.disclosure import DisclosureControl
from geo_cs.errors import InputError, NotFoundError
from geo_cs.layers import area_values, resolve_measure
from geo_cs.partnerships import get_partnerships, resolve
from geo_cs.stats import overlapping_difference
from geo_cs.store import Store
from tests import test_clients, test_map_staff
from tests.servers import wait_until
from tests.test_clients import in_page, needs_chromium
from tests.test_map_staff import SCREENSHOTS

server, logged_server = test_clients.server, test_clients.logged_server
SCOTLAND = ["glasgow", "edinburgh", "dundee"]
Z = 1.959963984540054


@pytest.fixture(scope="module")
def store(demo_db):
    with Store.open(demo_db, read_only=True) as s:
        yield s


@pytest.fixture(scope="module")
def client(demo_db):
    with TestClient(create_app(Settings(db=demo_db, warm_maps=False))) as c:
        yield c


@pytest.fixture(scope="module")
def published_client(demo_db):
    with TestClient(create_app(Settings(db=demo_db, disclosure_control=True, warm_maps=False))) as c:
        yield c


def codes_of(store: Store, place: str, set_id: str) -> list[str]:
    return resolve(store, get_partnerships([place])[0], set_id).codes


def by_hand(store: Store, indicators: list[str], set_id: str, codes: list[str]) -> pd.DataFrame:
    """Per period, Σ value and Σ denominator of the rows with both (a positive denominator),
    read straight from ``observations`` and summed here, not by geo-cs."""
    rows = store.sql(
        "SELECT period_id, value, denominator FROM observations WHERE set_id = ? "
        "AND list_contains(?, indicator_id) AND list_contains(?, code)",
        [set_id, indicators, codes]).fetchall()
    sums: dict[str, list[float]] = {}
    for period, value, denominator in rows:
        if value is None or denominator is None or not denominator > 0:
            continue
        s = sums.setdefault(period, [0.0, 0.0, 0])
        s[0] += value
        s[1] += denominator
        s[2] += 1
    return pd.DataFrame([(p, c, n, k) for p, (c, n, k) in sums.items()],
                        columns=["period_id", "count", "denominator", "areas"]).set_index("period_id")


# -- the core, against the demo's own rows ------------------------------------------------------

@pytest.mark.parametrize(("places", "geography", "indicator", "periods"), [
    (SCOTLAND, "datazone2011", "employment_deprived", 3),
    (["glasgow", "nottingham"], "wpc2010", "claimants", 8),
    # the Welsh partnerships' maps show a rank, which sums to no rate: constituencies
    (["swansea_bay", "heads_of_the_valleys"], "wpc2010", "claimants", 8),
])
def test_each_place_is_its_areas_counts_summed_with_wilsons_interval(store, places, geography, indicator,
                                                                     periods):
    comparison = compare_places(store, places)
    # the first place's map when every place has it; else the first default they all have
    assert (comparison.measure.set_id, comparison.measure.name) == (geography, indicator)
    assert len(comparison.period_ids) == periods
    indicators = list(comparison.measure.indicators)
    for place in places:
        expected = by_hand(store, indicators, geography, codes_of(store, place, geography))
        mine = comparison.rates[comparison.rates["place"] == place].set_index("period_id")
        assert sorted(mine.index) == sorted(expected.index)
        for period, row in expected.iterrows():
            got = mine.loc[period]
            assert got["count"] == pytest.approx(row["count"], rel=1e-9)
            assert got["denominator"] == pytest.approx(row["denominator"], rel=1e-9)
            assert got["n_areas"] == row["areas"]
            assert got["rate"] == pytest.approx(100 * row["count"] / row["denominator"], rel=1e-9)
            low, high = proportion_confint(row["count"], row["denominator"], alpha=0.05, method="wilson")
            assert (got["low"], got["high"]) == (pytest.approx(100 * low, abs=1e-6), pytest.approx(100 * high, abs=1e-6))


def test_glasgow_is_its_746_data_zones_and_differs_from_edinburgh_by_a_real_margin(store):
    comparison = compare_places(store, ["glasgow", "edinburgh"])
    assert len(comparison.places[0].codes) == 746      # Glasgow City's data zones (2011)
    row = comparison.differences_at("simd2020").iloc[0]
    rates = comparison.rates.set_index(["place", "period_id"])
    a, b = rates.loc[("glasgow", "simd2020")], rates.loc[("edinburgh", "simd2020")]
    assert row["difference"] == pytest.approx(a["rate"] - b["rate"])
    # disjoint places: the textbook interval of two independent rates (statsmodels' Wald)
    low, high = confint_proportions_2indep(a["count"], a["denominator"], b["count"], b["denominator"],
                                           method="wald", compare="diff")
    assert (row["low"], row["high"]) == (pytest.approx(100 * low, abs=1e-6), pytest.approx(100 * high, abs=1e-6))
    assert row["verdict"] == "real"
    assert comparison.sentences("simd2020")[0].startswith("Glasgow's rate is 6.8 points higher than Edinburgh's")


# -- the overlap variance -------------------------------------------------------------------------

@pytest.mark.parametrize(("a", "n_a", "b", "n_b"), [(30, 200, 20, 200), (3, 40, 250, 900), (0, 50, 5, 60),
                                                  (77180.76, 403283.61, 31802.56, 333951.08)])
def test_for_disjoint_places_the_parts_give_the_usual_two_independent_rates(a, n_a, b, n_b):
    diff, low, high = overlapping_difference([a, b], [n_a, n_b], [True, False], [False, True])
    p, q = a / n_a, b / n_b
    half = Z * np.sqrt(p * (1 - p) / n_a + q * (1 - q) / n_b)
    assert float(diff) == pytest.approx(100 * (p - q))
    assert (float(low), float(high)) == (pytest.approx(100 * (p - q - half)), pytest.approx(100 * (p - q + half)))


def test_a_place_against_itself_differs_by_zero_with_no_spread(store):
    diff, low, high = overlapping_difference([5, 40], [100, 300], [True, True], [True, True])
    assert (float(diff), float(low), float(high)) == (0.0, 0.0, 0.0)
    # and through the core: Glasgow under two names
    measure = resolve_measure(store, "datazone2011", "employment_deprived")
    codes = tuple(codes_of(store, "glasgow", "datazone2011"))
    comparison = compare_values(area_values(store, measure), [Place("a", "Glasgow", codes), Place("b", "Also Glasgow", codes)])
    d = comparison.differences
    assert (d["difference"].abs().max(), (d["high"] - d["low"]).max()) == (0.0, 0.0)
    assert set(d["shared_areas"]) == {746}


def test_the_overlap_variance_matches_a_simulation_of_its_parts():
    """A = parts 1 and 2, B = parts 2 and 3, each part's count binomial on its own people: the
    spread of rate_A - rate_B over many draws is the formula's."""
    n = np.array([400, 1500, 900])
    p = np.array([0.12, 0.08, 0.2])
    draws = np.random.default_rng(34).binomial(n, p, size=(200_000, 3))
    simulated = 100 * ((draws[:, 0] + draws[:, 1]) / (n[0] + n[1]) - (draws[:, 1] + draws[:, 2]) / (n[1] + n[2]))
    diff, low, high = overlapping_difference(n * p, n, [True, True, False], [False, True, True])
    assert float(diff) == pytest.approx(simulated.mean(), abs=0.01)
    assert float(high - low) / (2 * Z) == pytest.approx(simulated.std(), rel=0.01)
    # treating the two as independent samples counts part 2 twice: a wider interval
    rate_a, rate_b = (n[0] * p[0] + n[1] * p[1]) / (n[0] + n[1]), (n[1] * p[1] + n[2] * p[2]) / (n[1] + n[2])
    naive = Z * np.sqrt(rate_a * (1 - rate_a) / (n[0] + n[1]) + rate_b * (1 - rate_b) / (n[1] + n[2]))
    assert float(high - low) / 2 < 100 * naive


def test_a_custom_area_inside_its_partnership_is_compared_from_the_disjoint_parts(store):
    glasgow = codes_of(store, "glasgow", "datazone2011")
    estate = area_id("datazone2011", glasgow[:40], name="Castlemilk estate", within="glasgow")
    comparison = compare_places(store, ["glasgow", estate])
    assert comparison.measure.set_id == "datazone2011"        # Glasgow's own map holds both
    assert [p.name for p in comparison.places] == ["Glasgow", "Castlemilk estate"]
    row = comparison.differences_at("simd2020").iloc[0]
    assert row["shared_areas"] == 40
    # by hand: the rest of Glasgow and the estate, each binomial; the difference's variance
    indicators = list(comparison.measure.indicators)
    rest = by_hand(store, indicators, "datazone2011", glasgow[40:]).loc["simd2020"]
    inner = by_hand(store, indicators, "datazone2011", glasgow[:40]).loc["simd2020"]
    n_a, n_b = rest["denominator"] + inner["denominator"], inner["denominator"]
    c_rest, c_inner = 1 / n_a, 1 / n_a - 1 / n_b
    p_rest, p_inner = rest["count"] / rest["denominator"], inner["count"] / inner["denominator"]
    half = Z * np.sqrt(c_rest**2 * rest["denominator"] * p_rest * (1 - p_rest)
                       + c_inner**2 * inner["denominator"] * p_inner * (1 - p_inner))
    diff = (rest["count"] + inner["count"]) / n_a - inner["count"] / n_b
    assert row["difference"] == pytest.approx(100 * diff)
    assert (row["low"], row["high"]) == (pytest.approx(100 * (diff - half)), pytest.approx(100 * (diff + half)))
    assert any(n.startswith("Castlemilk estate lies inside Glasgow") for n in comparison.notes("simd2020"))


# -- disclosure control: published figures only ---------------------------------------------------

def _withheld_everywhere_and_large(store) -> tuple[str, str]:
    """A data zone withheld in every period (w) and a large one published in every period (x)."""
    measure = resolve_measure(store, "datazone2011", "employment_deprived")
    frame = area_values(store, measure, disclosure=DisclosureControl()).frame
    exact = area_values(store, measure).frame
    withheld = frame.groupby("code")["suppressed"].all()
    counted = exact[exact["count"] > 0].groupby("code")["count"].count()
    w = next(c for c in withheld[withheld].index if counted.get(c, 0) == 3)   # it has people
    published = frame[~frame["suppressed"]].groupby("code")["count"].agg(["count", "min"])
    x = published[published["count"] == 3]["min"].idxmax()
    return x, w


def test_under_disclosure_control_a_withheld_area_adds_nothing_and_gives_nothing_back(store):
    control = DisclosureControl()
    x, w = _withheld_everywhere_and_large(store)
    just_x, x_and_w, just_w = (area_id("datazone2011", codes, name=name) for codes, name in
                               (([x], "x"), ([x, w], "x and w"), ([w], "w")))
    published = compare_places(store, [just_x, x_and_w, just_w], disclosure=control)
    rates = published.rates.set_index(["place", "period_id"])
    figures = ["count", "denominator", "rate", "low", "high"]
    for period in published.period_ids:
        pd.testing.assert_series_equal(rates.loc[(just_x, period), figures], rates.loc[(x_and_w, period), figures],
                                       check_names=False)
        assert rates.loc[(x_and_w, period), "n_withheld"] == 1
        assert np.isnan(rates.loc[(just_w, period), "rate"])            # a place of only w: no rate
    pair = published.differences[(published.differences["place_a"] == just_x)
                                 & (published.differences["place_b"] == x_and_w)]
    assert (pair["difference"] == 0).all() and (pair["high"] - pair["low"] == 0).all()
    assert published.differences[published.differences["place_b"] == just_w]["difference"].isna().all()
    assert "cannot be compared" in published.sentences()[1]
    note = next(n for n in published.notes() if n.startswith("Figures as published"))
    assert "x and w 1 of 2" in note and "w 1 of 1" in note
    # the published counts are rounded to 5: the sums are of what is published, not exact
    assert (rates["count"].dropna() % 5 == 0).all()
    # without the control the exact counts are used, and w's people count
    exact = compare_places(store, [just_x, x_and_w])
    exact_rates = exact.rates.set_index(["place", "period_id"])
    assert (exact_rates.xs(x_and_w)["denominator"] > exact_rates.xs(just_x)["denominator"]).all()
    assert exact.differences["difference"].abs().min() > 0


def test_places_with_no_published_figure_at_all_are_refused_in_words(store):
    _, w = _withheld_everywhere_and_large(store)
    only_w = [area_id("datazone2011", [w], name="w"), area_id("datazone2011", [w], name="also w")]
    with pytest.raises(InputError, match="^figures: .* has no figure for any of w, also w"):
        compare_places(store, only_w, disclosure=DisclosureControl())


# -- which places, in words -----------------------------------------------------------------------

def test_places_are_read_from_ids_and_pasted_links():
    estate = area_id("datazone2011", ["S01010206", "S01010207"], name="Govan")
    assert parse_places(f"glasgow,{estate}") == ["glasgow", estate]
    assert parse_places("glasgow", f"https://geo.example/maps/{estate}?period=simd2020 dundee") == [
        "glasgow", estate, "dundee"]
    assert parse_places("https://geo.example/maps/compare?places=glasgow,edinburgh&geography=wpc2010") == [
        "glasgow", "edinburgh"]


@pytest.mark.parametrize(("ids", "error", "words"), [
    (["glasgow"], InputError, "choose two to four places to compare; you chose one (glasgow)"),
    (["glasgow", "dundee", "edinburgh", "rhyl", "leicester"], InputError, "you chose five"),
    (["glasgow", "<script>"], InputError, "is not a place"),
])
def test_a_wrong_number_of_places_or_a_malformed_one_is_refused_in_words(ids, error, words):
    with pytest.raises(error, match=re.escape(words)):
        check_places(ids)


def test_an_unknown_place_is_named(store):
    with pytest.raises(NotFoundError, match="no place called 'nowhere'"):
        compare_places(store, ["glasgow", "nowhere"])


def test_a_measure_that_is_not_a_rate_or_a_geography_a_place_lacks_is_refused(store):
    with pytest.raises(InputError, match="not a count of people over a population"):
        compare_places(store, SCOTLAND[:2], "datazone2011", "working_age_population")
    with pytest.raises(InputError, match="Nottingham and Nottinghamshire has no datazone2011 areas"):
        compare_places(store, ["glasgow", "nottingham"], "datazone2011", "employment_deprived")


def test_places_with_no_rate_in_common_are_refused_in_words(store):
    # Rhyl (wards) has no constituency of its own, and Wales no count of the employment-deprived
    with pytest.raises(NotFoundError, match="no map of the defaults holds all of Rhyl, Swansea Bay"):
        compare_places(store, ["rhyl", "swansea_bay"])


def test_a_difference_reads_as_staff_read_it():
    assert difference_sentence("Glasgow", "Castlemilk estate", 4.1, 3.2, 5.0) == (
        "Glasgow's rate is 4.1 points higher than Castlemilk estate's (3.2 to 5.0): a real difference.")
    assert difference_sentence("Heads of the Valleys", "Rhyl", -0.4, -1.2, 0.4) == (
        "Heads of the Valleys' rate is 0.4 points lower than Rhyl's (−0.4 to 1.2): within noise.")
    assert difference_sentence("Swansea Bay (DAF partnership)", "Glasgow", 0.04, 0.01, 0.07) == (
        "Swansea Bay's rate is 0.04 points higher than Glasgow's (0.01 to 0.07): a real difference.")


# -- the routes -------------------------------------------------------------------------------------

QUERY = "places=glasgow,edinburgh,dundee"


def test_json_gives_the_figures_the_core_gives(client, store):
    r = client.get(f"/maps/compare.json?{QUERY}")
    assert r.status_code == 200, r.text
    body = r.json()
    core = compare_places(store, SCOTLAND)
    assert [p["id"] for p in body["places"]] == SCOTLAND
    assert body["period"] == "simd2020" and body["geography"] == "datazone2011"
    assert len(body["rates"]) == 9 and len(body["differences"]) == 9
    first = body["rates"][0]
    assert first["rate"] == pytest.approx(core.rates.iloc[0]["rate"], abs=1e-3)
    assert body["sentences"] == core.sentences()
    assert "Open Government Licence" in body["attribution"] and body["source"].startswith("Source: Scottish")
    assert body["disclosure"] is None
    # another period, and the measure named
    other = client.get("/maps/compare.json?places=glasgow,edinburgh&geography=wpc2010&indicator=claimants"
                       "&period=2011-02").json()
    assert other["period"] == "2011-02" and len(other["periods"]) == 8
    # Dundee's two constituencies reach into Angus: none is Dundee's own, said in words
    dundee = client.get(f"/maps/compare.json?{QUERY}&geography=wpc2010&indicator=claimants")
    assert dundee.status_code == 400 and dundee.json()["message"].startswith("Dundee has no wpc2010 areas")


def test_csv_has_a_row_per_place_and_period_then_the_differences_with_source_and_attribution(client):
    r = client.get(f"/maps/compare.csv?{QUERY}")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert 'filename="compare_glasgow_edinburgh_dundee_employment_deprived.csv"' in r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.text)))
    rates = [row for row in rows if row["row"] == "rate"]
    diffs = [row for row in rows if row["row"] == "difference"]
    assert len(rates) == 9 and len(diffs) == 9
    assert {k for k in ("place", "period", "count", "denominator", "rate_pct", "rate_low_95",
                        "rate_high_95")} <= set(rates[0])
    assert all(row["difference_is"] in ("real", "within noise") for row in diffs)
    assert all("Open Government Licence" in row["attribution"] and row["source"] for row in rows)
    assert "disclosure_control" not in rows[0]


def test_svg_has_words_as_text_the_source_and_the_attribution_and_png_is_a_png(client):
    svg = client.get(f"/maps/compare.svg?{QUERY}&highlight=simd2016")
    assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml")
    text = svg.text
    assert "<title>" in text and "Glasgow" in text and "Dundee" in text
    assert "Scottish Index of Multiple Deprivation" in text and "Open Government Licence v3.0." in text
    png = client.get(f"/maps/compare.png?{QUERY}")
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")


def test_the_page_shows_the_sentences_the_chart_and_the_table(client):
    r = client.get(f"/maps/compare?{QUERY}")
    assert r.status_code == 200
    html = r.text
    assert "Differences in SIMD 2020 (2017 data)" in html
    assert "Glasgow&#39;s rate is 6.8 points higher than Edinburgh&#39;s" in html
    assert 'src="/maps/compare.svg?places=glasgow%2Cedinburgh%2Cdundee' in html
    assert html.count('<th scope="row">') == 3 and "Open Government Licence" in html
    assert "<script>" not in html and re.search(r'<script src="/static/geo-cs/compare\.[0-9a-f]{12}\.js">', html)
    # the map's link brings one place: the picker, with it ticked, and no error
    one = client.get("/maps/compare?places=glasgow&geography=datazone2011&indicator=employment_deprived")
    assert one.status_code == 200 and "choose at least one more" in one.text
    assert 'value="glasgow" checked' in one.text


def test_the_picker_is_sent_on_to_the_pages_own_address(client):
    estate = area_id("datazone2011", ["S01010206", "S01010207"], name="Govan")
    r = client.get("/maps/compare", params={"place": ["glasgow", "dundee"], "custom": f"https://x/maps/{estate}",
                                            "view": "datazone2011|employment_deprived|", "from_view": "||",
                                            "period": "simd2016"}, follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == (f"/maps/compare?places=glasgow%2Cdundee%2C{estate}&geography=datazone2011"
                                     "&indicator=employment_deprived")
    page = client.get(r.headers["location"])
    assert page.status_code == 200 and "Govan" in page.text


@pytest.mark.parametrize(("query", "status", "words"), [
    ("places=glasgow,nowhere", 404, "There is no partnership or custom area called “nowhere”"),
    ("places=glasgow,dundee,edinburgh,rhyl,leicester", 400, "You chose five"),
    ("places=glasgow,dundee&indicator=working_age_population&geography=datazone2011", 400,
     "Places can be compared only on a rate"),
    ("places=glasgow,dundee&period=1999", 404, "Choose a period from the list"),
    ("places=" + "x" * 8000, 400, "Tick two, three or four places"),
])
def test_bad_input_is_refused_in_plain_words_as_problem_json_and_as_a_page(client, query, status, words):
    r = client.get(f"/maps/compare.json?{query}")
    assert r.status_code == status and r.headers["content-type"] == "application/problem+json"
    assert words in r.json()["message"], r.json()
    page = client.get(f"/maps/compare?{query}", headers={"accept": "text/html"})
    assert page.status_code == status
    assert words.replace("“", "&#8220;") in page.text or words in page.text
    assert 'role="alert"' in page.text and 'name="place"' in page.text    # the picker, to try again


def test_compare_is_not_taken_for_a_partnership(client):
    # declared before /maps/{partnership}: the map's routes never see "compare"
    for path in ("/maps/compare", "/maps/compare.json?places=glasgow,dundee"):
        r = client.get(path)
        assert r.status_code == 200 and "no partnership called" not in r.text.lower()


def test_the_map_links_to_compare_with_its_place_and_measure(client):
    html = client.get("/maps/glasgow").text
    assert ('<a id="geo-cs-compare-link" href="/maps/compare?geography=datazone2011&amp;'
            'indicator=employment_deprived&amp;places=glasgow">Compare with other places</a>') in html


def test_under_disclosure_control_the_service_says_so_and_counts_withheld_areas(published_client):
    body = published_client.get("/maps/compare.json?places=glasgow,edinburgh").json()
    assert body["disclosure"].startswith("Counts rounded to the nearest 5")
    note = next(n for n in body["notes"] if n.startswith("Figures as published"))
    assert re.search(r"Withheld in SIMD 2020 \(2017 data\): Glasgow \d+ of 746; Edinburgh \d+ of 597", note)
    assert all(r["count"] is None or r["count"] % 5 == 0 for r in body["rates"])
    rows = list(csv.DictReader(io.StringIO(published_client.get("/maps/compare.csv?places=glasgow,edinburgh").text)))
    assert all(row["disclosure_control"].startswith("Counts rounded") for row in rows)


# -- in Chromium, at a desktop's size and a phone's ----------------------------------------------------

# the staff map's fixtures: the service on the demo (or GEO_CS_TEST_SERVER), Chromium, a page per
# size that fails on any console error
browser, page = test_map_staff.browser, test_map_staff.page
compare_server = test_map_staff.staff_server


def chart_drawn(page) -> None:
    wait_until(lambda: page.evaluate("() => { const i = document.getElementById('geo-cs-compare-chart-img');"
                                     " return !!i && i.complete && i.naturalWidth > 0; }"),
               30, "the compare chart to load", pause=in_page(page))


@needs_chromium
@pytest.mark.slow
def test_staff_pick_places_and_get_the_chart_the_table_and_the_downloads(page, compare_server):
    page.goto(f"{compare_server}/maps/compare?places=glasgow&geography=datazone2011&indicator=employment_deprived")
    assert page.locator("#geo-cs-compare-count").inner_text().startswith("One place chosen")
    for name in ("Edinburgh", "Dundee"):
        page.get_by_label(name, exact=True).check()
    assert page.locator("#geo-cs-compare-count").inner_text().startswith("Three places chosen")
    # a fourth, and the rest rest: four is the most, said in words
    page.get_by_label("Rhyl", exact=True).check()
    assert page.get_by_label("Leicester", exact=True).is_disabled()
    assert "the most one comparison shows" in page.locator("#geo-cs-compare-count").inner_text()
    page.get_by_label("Rhyl", exact=True).uncheck()
    page.locator("#geo-cs-compare-go").click()
    page.wait_for_url(re.compile(r"places=glasgow%2Cdundee%2Cedinburgh|places=glasgow%2Cedinburgh%2Cdundee"))
    chart_drawn(page)
    headers = page.locator("#geo-cs-compare-table thead th").all_inner_texts()
    assert headers[0] == "Period" and sorted(headers[1:]) == ["Dundee", "Edinburgh", "Glasgow"]
    assert page.locator("#geo-cs-compare-table tbody tr").count() == 3
    sentences = page.locator(".geo-cs-compare-sentences li").all_inner_texts()
    assert len(sentences) == 3 and all(s.endswith(("a real difference.", "within noise.")) for s in sentences)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), "the page spills sideways"
    # the chart is legible at the width it is shown: at least 300 px wide
    assert page.locator("#geo-cs-compare-chart-img").bounding_box()["width"] >= 300
    if page.size == "desktop" and os.environ.get("GEO_CS_WRITE_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "compare-desktop.png"), full_page=True)
    for label, starts in (("PNG", b"\x89PNG"), ("SVG", b"<?xml"), ("CSV", b"row,place")):
        with page.expect_download() as download:
            page.locator("#geo-cs-compare-downloads").get_by_role("link", name=label).click()
        path = download.value.path()
        assert Path(path).read_bytes().startswith(starts), label
        assert download.value.suggested_filename.startswith("compare_glasgow_")


@needs_chromium
@pytest.mark.slow
def test_a_custom_area_pasted_into_the_picker_is_compared_with_its_partnership(page, compare_server, demo_db):
    with Store.open(demo_db, read_only=True) as store:
        glasgow = codes_of(store, "glasgow", "datazone2011")
    estate = area_id("datazone2011", glasgow[:40], name="Castlemilk estate", within="glasgow")
    page.goto(f"{compare_server}/maps/compare?places=glasgow")
    page.locator("#geo-cs-compare-custom").fill(f"{compare_server}/maps/{estate}?period=simd2020")
    assert page.locator("#geo-cs-compare-count").inner_text().startswith("Two places chosen")
    page.locator("#geo-cs-compare-go").click()
    chart_drawn(page)
    text = page.locator("#geo-cs-compare-answer").inner_text()
    assert "Castlemilk estate lies inside Glasgow" in text
    assert re.search(r"Glasgow's rate is [\d.]+ points? (higher|lower) than Castlemilk estate's", text)
    assert page.get_by_label(re.compile("Castlemilk estate")).is_checked()


@needs_chromium
@pytest.mark.slow
def test_the_maps_link_opens_the_picker_with_its_place_ticked(page, compare_server):
    page.goto(f"{compare_server}/maps/glasgow")
    page.locator("#geo-cs-compare-link").click()
    page.wait_for_url(re.compile(r"/maps/compare\?"))
    assert page.get_by_label("Glasgow", exact=True).is_checked()
    assert page.locator("#geo-cs-compare-count").inner_text().startswith("One place chosen")
    assert page.locator("#geo-cs-compare-view option:checked").inner_text().startswith("Employment-deprived people")


@needs_chromium
@pytest.mark.slow
def test_no_serious_accessibility_violations_on_the_compare_page(page, compare_server):
    from tests.test_map_staff import serious_violations

    page.goto(f"{compare_server}/maps/compare?{QUERY}")
    chart_drawn(page)
    assert not serious_violations(page)


def test_the_page_answers_a_program_in_problem_json_and_a_person_in_words(client):
    """Found by the API fuzz: the page's refusal came as HTML to a program that asked for JSON."""
    url = "/maps/compare?places=glasgow,nowhere"
    program = client.get(url, headers={"Accept": "application/json"})
    assert program.status_code == 404 and program.headers["content-type"].startswith("application/problem+json")
    assert "nowhere" in program.json()["detail"]
    person = client.get(url, headers={"Accept": "text/html"})
    assert person.status_code == 404 and person.headers["content-type"].startswith("text/html")
