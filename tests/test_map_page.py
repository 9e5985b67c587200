"""The staff map page against the real service on the demo database: one visitor's choices never
reach the next, own breaks are checked, a denominator that does not fit is flagged, errors are
pages for people, and the page holds no script of its own (a strict Content-Security-Policy).

The browser side of the same page is in ``test_clients.py`` and ``test_injection.py``.
"""

from __future__ import annotations

import io
import math
import re
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from geo_cs.api.app import create_app
from geo_cs.config import Settings
from geo_cs.errors import InputError
from geo_cs.layers import breaks_note, check_breaks, parse_breaks
from geo_cs.maps import CONTENT_SECURITY_POLICY
from geo_cs.maps.page import json_for_html, read_page_config

BROWSER = {"accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
DEMO = Path(__file__).resolve().parent.parent / "boundaries" / "demo"
SIMD = ("simd2012", "simd2016", "simd2020")
SIMD_LABELS = {"simd2012": "SIMD 2012 (2010 data)", "simd2016": "SIMD 2016 (2014 data)",
               "simd2020": "SIMD 2020 (2017 data)"}


# -- an oracle: Glasgow's gap from the demo's own rows, in pandas ------------------------------------

@dataclass(frozen=True)
class GapByHand:
    """Glasgow's NI 153 figures on the demo's data zones, worked out without geo-cs: the data zones
    of Glasgow City from the bundle's own lookup file, their SIMD counts and working-age
    populations read from the database's rows with plain SQL, and DWP's method in pandas (an
    area is worst-performing when its baseline rate, SIMD 2012, is above the threshold; rates of
    a group are summed counts over summed populations). The change's 95% interval is Wald's
    (independent of the product's Wilson/Newcombe; at Glasgow's tens of thousands of people the
    two agree to well under 0.05 points)."""

    n_cohort: int                   # the worst-performing areas, picked in the baseline
    n_counted: dict[str, tuple[int, int]]   # (worst, rest) areas with a rate in each period
    cohort_rate: dict[str, float]
    rest_rate: dict[str, float]
    gap: dict[str, float]
    change_low: float
    change_high: float
    half_width: dict[str, dict[str, float]]    # "cohort", "rest", "gap": each period's Wald half-width
    cohort_share: dict[str, float]             # the worst areas' share of the people counted, %

    @property
    def change(self) -> float:
        return self.gap[SIMD[-1]] - self.gap[SIMD[0]]

    @property
    def verb(self) -> str:
        """What the gap did: the figures decide, not the product's sentence."""
        return "narrowed" if abs(self.gap[SIMD[-1]]) < abs(self.gap[SIMD[0]]) else "widened"

    @property
    def verdict(self) -> str:
        real = (self.change_low > 0 or self.change_high < 0) and abs(self.change) > 0.1
        return "a real change" if real else "not distinguishable from no change"

    def sentence_start(self) -> str:
        """The sentence up to its interval, as the figures say it must read."""
        return (f"The gap between the {self.n_cohort} worst-performing neighbourhoods and the rest of Glasgow "
                f"{self.verb} from {self.gap[SIMD[0]]:.1f} to {self.gap[SIMD[-1]]:.1f} points between "
                f"{SIMD_LABELS[SIMD[0]]} and {SIMD_LABELS[SIMD[-1]]} — {self.verdict} "
                "(95% interval of the change ")


def glasgow_rows(db: Path) -> pd.DataFrame:
    """Glasgow's data zones' employment-deprived counts and populations per SIMD edition, with
    each area's rate (%): code, period_id, value, denominator, rate."""
    lookup = pd.read_csv(DEMO / "lookups" / "dz11_iz11_lad20_scotland.csv", dtype=str)
    codes = set(lookup.loc[lookup["ltla20_name"] == "Glasgow City", "dz11_code"])
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.sql("SELECT code, period_id, value, denominator FROM observations "
                       "WHERE set_id = 'datazone2011' AND indicator_id = period_id || '.employment_deprived'"
                       ).df()
    rows = rows[rows["code"].isin(codes)].copy()
    assert len(rows) == 746 * len(SIMD), len(rows)   # every data zone of Glasgow, every edition
    # a rate needs people to divide by: five rows have none (one of them with a count of 2)
    rows = rows[rows["denominator"] > 0].copy()
    rows["rate"] = 100 * rows["value"] / rows["denominator"]
    return rows


def glasgow_gap_by_hand(db: Path, threshold: float = 25.0) -> GapByHand:
    rows = glasgow_rows(db)
    baseline = rows[rows["period_id"] == SIMD[0]].set_index("code")["rate"]
    rows["worst"] = rows["code"].isin(baseline.index[baseline > threshold])
    sums = rows.groupby(["period_id", "worst"])[["value", "denominator"]].sum()
    share = sums["value"] / sums["denominator"]
    variance = share * (1 - share) / sums["denominator"] * 100 ** 2
    cohort, rest = (100 * share.xs(w, level="worst") for w in (True, False))
    gap = cohort - rest
    gap_variance = variance.xs(True, level="worst") + variance.xs(False, level="worst")
    change = gap[SIMD[-1]] - gap[SIMD[0]]
    half = 1.959964 * math.sqrt(gap_variance[SIMD[-1]] + gap_variance[SIMD[0]])
    counted = rows.groupby(["period_id", "worst"]).size()
    people = sums["denominator"]
    return GapByHand(
        n_cohort=int(rows.loc[rows["period_id"] == SIMD[0], "worst"].sum()),
        n_counted={p: (int(counted[p, True]), int(counted[p, False])) for p in SIMD},
        cohort_rate=cohort.to_dict(), rest_rate=rest.to_dict(), gap=gap.to_dict(),
        change_low=change - half, change_high=change + half,
        half_width={"cohort": (1.959964 * np.sqrt(variance.xs(True, level="worst"))).to_dict(),
                    "rest": (1.959964 * np.sqrt(variance.xs(False, level="worst"))).to_dict(),
                    "gap": (1.959964 * np.sqrt(gap_variance)).to_dict()},
        cohort_share=(100 * people.xs(True, level="worst") / people.groupby(level="period_id").sum()).to_dict())


def check_sentence(sentence: str, expected: GapByHand, threshold: float = 25.0) -> None:
    """``sentence`` says what ``expected``'s figures say, its interval within rounding of Wald's,
    and ends with the rule it used."""
    start = expected.sentence_start()
    assert sentence.startswith(start), (sentence, start)
    tail = re.fullmatch(r"(-?\d+\.\d) to (-?\d+\.\d) points\)\. Threshold: a baseline rate above "
                        rf"{threshold:g}%; baseline: SIMD 2012 \(2010 data\)\.", sentence[len(start):])
    assert tail, sentence
    low, high = (float(v) for v in tail.groups())
    assert low == pytest.approx(expected.change_low, abs=0.06) and high == pytest.approx(expected.change_high, abs=0.06)


@pytest.fixture
def client(demo_db):
    """A fresh service per test: what one test's visitors leave in the caches is what the next
    visitor of the same test meets, never another test's."""
    with TestClient(create_app(Settings(db=demo_db))) as c:
        yield c


def page(client, partnership: str = "glasgow", **params) -> dict:
    response = client.get(f"/maps/{partnership}", params=params)
    assert response.status_code == 200, response.text
    return read_page_config(response.text)


# -- one visitor's choices are not the next one's (the cache key) -------------------------------

@pytest.mark.parametrize("order", [("k3", "k7"), ("k7", "k3")])
def test_two_visitors_with_different_classes_get_their_own_page_in_either_order(client, order):
    asked = {"k3": {"k": 3}, "k7": {"k": 7, "scheme": "equal_interval"}}
    seen = {name: page(client, **asked[name]) for name in order}
    assert len(seen["k3"]["breaks"]) == 3 and len(seen["k7"]["breaks"]) == 7
    # equal intervals: the steps between breaks are equal (to the rounding of the breaks)
    steps = [b - a for a, b in zip(seen["k7"]["breaks"], seen["k7"]["breaks"][1:], strict=False)]
    assert max(steps) - min(steps) < 1e-3
    # the first visitor's page is unchanged after the second one's
    assert page(client, **asked[order[0]])["breaks"] == seen[order[0]]["breaks"]


def test_period_threshold_and_baseline_are_each_visitors_own(client):
    latest = page(client)
    first = page(client, period="simd2012")
    assert latest["periods"][latest["start"]]["id"] == "simd2020"
    assert first["periods"][first["start"]]["id"] == "simd2012"
    low = page(client, threshold=10)
    assert low["threshold"] == 10 and latest["threshold"] == 25
    assert "threshold=10" in low["periods"][0]["tiles"] and "threshold" not in latest["periods"][0]["tiles"]
    # a lower threshold puts more data zones in the cohort
    n = lambda cfg: cfg["periods"][0]["summary"]["n_cohort"]  # noqa: E731
    assert n(low) > n(latest)
    other = page(client, baseline="simd2016")
    assert other["baseline"] == ["simd2016"] and latest["baseline"] == ["simd2012"]
    # and the default page is still the default after all of them
    assert page(client) == latest


def test_an_unknown_period_is_refused_after_a_good_page_and_does_not_poison_it(client):
    good = page(client)
    response = client.get("/maps/glasgow", params={"period": "1999"})
    assert response.status_code == 404 and "simd2012, simd2016, simd2020" in response.json()["detail"]
    assert page(client) == good
    # and a refused request first, then good ones
    fresh_bad = client.get("/maps/dundee", params={"breaks": "10,10,10"})
    assert fresh_bad.status_code == 400
    assert page(client, "dundee")["layer"] == "datazone2011"


# -- own breaks -------------------------------------------------------------------------------

@pytest.mark.parametrize(("breaks", "message"), [
    ("10,10,10", "each break must be above the one before (10 is not above 10)"),
    ("30,20", "20 is not above 30"),
    ("nan,inf", "expected finite numbers, not nan"),
    ("10,inf", "expected finite numbers, not inf"),
    ("ten,20", "expected comma-separated numbers"),
    ("1,2,3,4,5,6,7,8,9", "at most 8 breaks"),
])
def test_own_breaks_are_checked_with_a_message_naming_the_problem(client, breaks, message):
    response = client.get("/maps/glasgow", params={"breaks": breaks})
    assert response.status_code == 400 and message in response.json()["detail"]
    with pytest.raises(InputError, match=re.escape(message)):
        parse_breaks(breaks)


def test_own_breaks_outside_the_data_are_drawn_and_said_so(client):
    cfg = page(client, breaks="80,90")
    assert cfg["breaks"] == [80.0, 90.0]
    assert "every area falls in the first class" in cfg["notes"][0]
    html = client.get("/maps/glasgow", params={"breaks": "80,90"}).text
    assert "every area falls in the first class" in html     # on the page, not only in its data
    assert page(client, breaks="10,20,30")["notes"] == []
    assert check_breaks([1, 2.5]) == [1.0, 2.5]
    assert breaks_note([50.0], [1, 2, 3]) and breaks_note([1.0, 2.0], [10, 20]) and not breaks_note([2.0], [1, 3])


# -- the denominator follows the indicator; rates that cannot be right are flagged --------------

def test_a_denominator_that_does_not_fit_the_indicator_is_flagged_not_shown(client):
    # Nottingham's "total population" over the working-age population: rates of about 158%
    cfg = page(client, "nottingham", geography="lsoa2011", indicator="total_population",
               denominator="population2019_lsoa11.working_age_population")
    assert any("not valid rates" in note for note in cfg["notes"])
    summary = cfg["periods"][cfg["start"]]["summary"]
    assert summary["partnership_value"] > 100 and summary["invalid"] is True
    # chosen afresh, the indicator takes its own default denominator (none: a count)
    own = page(client, "nottingham", geography="lsoa2011", indicator="total_population")
    assert own["unit"] != "%" and not own["notes"]
    assert "denominator" not in own["periods"][0]["tiles"]
    # the page's default is a valid rate with no such flag
    default = page(client, "nottingham")
    assert default["unit"] == "%" and not default["notes"]
    assert not default["periods"][0]["summary"]["invalid"]


# -- errors are pages for people -----------------------------------------------------------------

@pytest.mark.parametrize(("params", "status", "says"), [
    ({"period": "1999"}, 404, "valid: simd2012, simd2016, simd2020"),
    ({"breaks": "10,10,10"}, 400, "each break must be above the one before"),
    ({"k": "12"}, 400, "k"),
    ({"indicator": "<b>nope</b>"}, 404, "employment_deprived"),
])
def test_a_browser_gets_an_html_error_page_with_a_link_back(client, params, status, says):
    response = client.get("/maps/glasgow", params=params, headers=BROWSER)
    assert response.status_code == status
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    assert says in html.replace("&#39;", "'")
    assert 'href="/maps/glasgow"' in html and 'href="/maps/"' in html and '<html lang="en">' in html
    assert "<b>nope</b>" not in html      # what the request said is shown as text
    # a GIS client or script asking the same still gets problem details
    plain = client.get("/maps/glasgow", params=params)
    assert plain.status_code == status and plain.headers["content-type"] == "application/problem+json"


def test_an_unknown_partnership_page_links_to_the_list(client):
    response = client.get("/maps/nope", headers=BROWSER)
    assert response.status_code == 404 and "glasgow" in response.text and 'href="/maps/"' in response.text


# -- the page holds no script: a strict Content-Security-Policy --------------------------------

def test_every_html_page_carries_a_policy_that_forbids_inline_script(client):
    for url in ("/maps/", "/maps/glasgow", "/maps/nope"):
        response = client.get(url, headers=BROWSER)
        policy = response.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy and "unsafe-eval" not in policy
        assert CONTENT_SECURITY_POLICY in policy
        assert response.headers["x-content-type-options"] == "nosniff"
    # data responses are not HTML and carry no policy, but nosniff
    items = client.get("/collections/datazone2011/items", params={"limit": 1})
    assert "content-security-policy" not in items.headers and items.headers["x-content-type-options"] == "nosniff"


def test_the_map_page_has_no_inline_script_and_no_inline_handlers(client):
    html = client.get("/maps/glasgow").text
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", html, re.S)
    for attrs, body in scripts:
        assert "src=" in attrs or 'type="application/json"' in attrs, attrs
        assert "src=" not in attrs or not body.strip()
    assert not re.search(r"\son[a-z]+\s*=", html, re.I), "inline event handler"
    assert not re.search(r"\sstyle\s*=", html, re.I), "inline style attribute (style-src 'self')"


@pytest.mark.parametrize("text", [
    "</script><img src=x onerror=alert(1)>", "<!-- a comment", "a & b > c", "\u2028line\u2029para",
    "'quotes' \"and\" `backticks`", "]]>", "<\u0000>",
])
def test_json_in_a_page_cannot_close_its_element_and_reads_back_unchanged(text):
    import json

    block = json_for_html({"name": text})
    assert "<" not in block and ">" not in block and "&" not in block
    assert json.loads(block) == {"name": text}


# -- the figures the page's controls fetch, search, benchmarks, the picker ---------------------------

def test_figures_for_another_threshold_match_the_ni153_analysis(client, demo_db):
    """The figures the page fetches for a threshold of 15% are DWP's method worked out by hand
    on the demo's rows (:func:`glasgow_gap_by_hand`), not the product's own table."""
    response = client.get("/maps/glasgow/figures.json", params={"threshold": 15})
    assert response.status_code == 200
    figures = response.json()
    assert figures["threshold"] == 15 and "threshold=15" in figures["periods"][0]["tiles"]
    expected = glasgow_gap_by_hand(demo_db, threshold=15.0)
    assert expected.n_cohort == 445        # more than the 267 above 25%: the threshold was used
    check_sentence(figures["sentence"], expected, threshold=15)
    for period in figures["periods"]:
        summary, at = period["summary"], period["id"]
        assert (summary["n_cohort"], summary["n_rest"]) == expected.n_counted[at], at
        # the page's figures are rounded to 3 decimals
        assert summary["cohort_rate"] == pytest.approx(expected.cohort_rate[at], abs=6e-4), at
        assert summary["rest_rate"] == pytest.approx(expected.rest_rate[at], abs=6e-4), at
        assert summary["gap"] == pytest.approx(expected.gap[at], abs=6e-4), at
    assert sum(figures["areas"]["worst"]) == expected.n_cohort
    assert len(figures["areas"]["code"]) == 746


def test_with_no_worst_areas_the_hinted_threshold_picks_what_it_says(client):
    figures = client.get("/maps/glasgow/figures.json", params={"threshold": 90}).json()
    assert figures["sentence"].startswith("No neighbourhood of Glasgow has a baseline rate above 90%")
    hint = figures["thresholdHint"]
    assert hint["threshold"] < hint["highest"] < 90 and hint["areas"] > 0
    again = client.get("/maps/glasgow/figures.json", params={"threshold": hint["threshold"]}).json()
    assert sum(again["areas"]["worst"]) == hint["areas"]


def test_search_by_name_and_code_and_a_postcode_district(client):
    govan = client.get("/maps/glasgow/search", params={"q": "govan"}).json()["results"]
    assert govan[0]["set_id"] == "ward2013" and govan[0]["name"] == "Govan"
    assert all("govan" in r["name"].lower() for r in govan)
    by_code = client.get("/maps/glasgow/search", params={"q": "s01010206"}).json()["results"]
    assert [r["code"] for r in by_code] == ["S01010206"] and by_code[0]["west"] < by_code[0]["east"]
    district = client.get("/maps/glasgow/search", params={"q": "Glasgow City"}).json()["results"][0]
    assert (district["set_id"], district["code"]) == ("lad2013", "S12000046")
    postcode = client.get("/maps/glasgow/search", params={"q": "G51"}).json()
    assert postcode["results"] == [] and "looks like a postcode" in postcode["note"] \
        and "postcode search is not set up" in postcode["note"] and "geo-cs" not in postcode["note"]
    assert client.get("/maps/glasgow/search", params={"q": "x"}).status_code == 400


def test_benchmarks_are_the_nations_own_sums(client, demo_db):
    from geo_cs.store import Store

    cfg = page(client, "nottingham")
    # the IoD 2019 edition (the series goes on to IoD 2025, carried onto the 2011 LSOAs)
    [imd2019] = [p for p in cfg["periods"] if p["id"] == "imd2019"]
    latest = {b["group"]: b for b in imd2019["benchmarks"]}
    # IMD is England's own index: no Welsh figure, and so no separate GB one
    assert set(latest) == {"England"}
    # independently: Σ employment-deprived / Σ working-age population over the LSOAs held
    with Store.open(demo_db, read_only=True) as store:
        rate, n = store.sql("""
            SELECT 100 * sum(c.value) / sum(d.value), count(*)
            FROM observations c JOIN observations d USING (set_id, code)
            WHERE c.set_id = 'lsoa2011' AND c.indicator_id = 'imd2019_indicators.employment_deprived'
              AND d.indicator_id = 'population2019_lsoa11.working_age_population'
              AND c.value IS NOT NULL AND d.value > 0 AND left(code, 1) = 'E'""").fetchone()
    assert latest["England"]["rate"] == pytest.approx(rate, abs=1e-3) and latest["England"]["areas"] == n
    # a set of one nation has no separate GB figure
    assert {b["group"] for b in page(client)["periods"][-1]["benchmarks"]} == {"Scotland"}


def test_the_picker_offers_every_map_in_words_and_the_reference_layer_is_named(client):
    html = client.get("/maps/nottingham").text
    options = re.findall(r"<option value=\"\d+\"[^>]*>([^<]+)</option>", html)
    assert "Employment-deprived people, % of working-age population (16-64)" in options
    assert not [o for o in options if re.search(r"\w+\.\w+", o)], options
    assert re.search(r'<optgroup label="Lower layer Super Output Areas, 2011">', html)
    cfg = read_page_config(html)
    assert {line["layer"] for line in cfg["reference"]["lines"]} >= {"lad2013"}
    assert "Nottingham" in {label["name"] for label in cfg["reference"]["labels"]}


def glasgow_class_shares(db: Path, period: str, breaks: list[float]) -> np.ndarray:
    """The share of Glasgow's land in each class of ``breaks`` in ``period``, by hand: each data
    zone's rate from the demo's rows, classed as map.js does (the first class whose upper bound
    it does not exceed), weighted by its area on the British National Grid from the bundle's
    boundary file."""
    import geopandas as gpd

    rate = glasgow_rows(db).query("period_id == @period").set_index("code")["rate"]
    zones = gpd.read_parquet(DEMO / "boundaries" / "datazone2011.parquet").to_crs(27700)
    zones = zones[zones["dz11_code"].isin(rate.index)]
    classes = np.minimum(np.searchsorted(breaks, rate.reindex(zones["dz11_code"]).to_numpy(), side="left"),
                         len(breaks) - 1)
    area = zones.area.to_numpy()
    return np.bincount(classes, weights=area, minlength=len(breaks)) / area.sum()


def colour_counts(pixels: np.ndarray, colours: list[str]) -> np.ndarray:
    """How many pixels of ``pixels`` (RGB) are exactly each of ``colours`` (#rrggbb)."""
    return np.array([np.all(pixels == tuple(int(c[i:i + 2], 16) for i in (1, 3, 5)), axis=-1).sum()
                     for c in colours])


def test_the_map_png_is_the_view_drawn(client, demo_db):
    """The PNG is the view asked for, not a default map: each class colour of the view covers
    the share of the picture that its data zones cover of Glasgow's land in that view's period
    (worked out by hand), and no colour of another classification is drawn. The outlines of the
    worst-performing areas, the borders and the hatching take pixels off the darker classes, so
    a class's share may be off by up to 0.08; the periods' shares differ by far more."""
    from PIL import Image

    from geo_cs.palette import PALETTE

    drawn: dict[tuple[str, int], np.ndarray] = {}
    for period, k in (("simd2016", 4), ("simd2012", 4), ("simd2016", 7)):
        response = client.get("/maps/glasgow/map.png", params={"period": period, "k": k})
        assert response.status_code == 200 and response.headers["content-type"] == "image/png"
        assert f'filename="glasgow_{period}_employment_deprived.png"' in response.headers["content-disposition"]
        with Image.open(io.BytesIO(response.content)) as image:
            assert image.width > 500 and image.height > 500
            pixels = np.asarray(image.convert("RGB"))
        view = page(client, period=period, k=k)
        assert len(view["colours"]) == k
        counts = colour_counts(pixels, view["colours"])
        assert counts.min() > 1000, counts                          # every class is drawn
        shares = counts / counts.sum()
        expected = glasgow_class_shares(demo_db, period, view["breaks"])
        assert np.abs(shares - expected).max() < 0.08, (period, k, shares.round(3), expected.round(3))
        drawn[(period, k)] = expected
        # the palette's other colours are not drawn (anti-aliased edges may hit one by chance)
        others = colour_counts(pixels, [c for c in PALETTE if c not in view["colours"]])
        assert others.max() < 0.005 * counts.sum(), others
    # the tolerance tells the periods apart: SIMD 2012's land is far less often in the lightest class
    assert np.abs(drawn[("simd2016", 4)] - drawn[("simd2012", 4)]).max() > 0.15
