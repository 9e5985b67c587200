"""What the staff map says and draws, read from the page's config (issue 28): one behaviour per
kind of measure, ranks coloured the right way round, empty states that say why, plain words,
the help page, and error pages written for people.

The same pages in a browser are the front-end's tests (``test_map_browser.py``); these read the
data block that ``map.js`` renders (:func:`geo_cs.maps.page.read_page_config`).
"""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from geo_cs.api.app import create_app
from geo_cs.config import Settings
from geo_cs.maps.page import read_page_config
from geo_cs.narrative import legend_title, low_is_worse
from geo_cs.palette import PALETTE

BROWSER = {"accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
WELSH = ("rhyl", "heads_of_the_valleys", "swansea_bay", "mon_menai")


@pytest.fixture(scope="module")
def client(demo_db):
    """One service for the file: these tests only read."""
    with TestClient(create_app(Settings(db=demo_db))) as c:
        yield c


def page(client, partnership: str = "glasgow", **params) -> dict:
    response = client.get(f"/maps/{partnership}", params=params)
    assert response.status_code == 200, response.text[:500]
    return read_page_config(response.text)


def class_of(value: float, breaks: list[float]) -> int:
    """``map.js``'s ``classOf``: the first class whose upper bound the value does not exceed."""
    return next((i for i, b in enumerate(breaks) if value <= b), len(breaks) - 1)


# -- point 2: one behaviour per kind of measure ----------------------------------------------------

def test_a_published_rate_gets_a_choropleth_and_a_sentence_not_a_cohort(client):
    """Glasgow's constituency claimant rate (published without counts): no outlines, no chart, no
    hint that loops; the sentence says why there is no gap and which map gives one."""
    cfg = page(client, geography="wpc2010", indicator="claimant_rate", threshold=20)
    assert cfg["hasGap"] is False and cfg["hasWorst"] is False
    assert cfg["chart"] is None and cfg["chartDownloads"] is None and cfg["thresholdHint"] is None
    assert cfg["areas"]["worst"] == [None] * len(cfg["areas"]["code"])
    sentence = cfg["sentence"]
    assert "No constituency" not in sentence and "threshold of" not in sentence
    assert "cannot pick out worst-performing constituencies" in sentence
    assert "“Claimants, % of working-age people”" in sentence          # what would give one
    assert "neighbourhood" not in sentence                              # constituencies are not
    # the highest rate it names is the highest on the map
    latest = [v[cfg["start"]] for v in cfg["areas"]["values"] if v[cfg["start"]] is not None]
    assert f"{max(latest):.1f}%" in sentence
    # another threshold changes nothing: there is no cohort to change
    again = client.get("/maps/glasgow/figures.json", params={
        "geography": "wpc2010", "indicator": "claimant_rate", "threshold": 26}).json()
    assert again["sentence"] == sentence and again["chart"] is None


@pytest.mark.parametrize(("partnership", "params", "kind"), [
    ("glasgow", {}, "count"),
    ("swansea_bay", {"geography": "wpc2010", "indicator": "claimants"}, "count"),
    ("glasgow", {"geography": "wpc2010", "indicator": "claimant_rate"}, "rate"),
    ("rhyl", {"geography": "lsoa2011", "indicator": "employment_score"}, "score"),
    ("nottingham", {"geography": "lsoa2011", "indicator": "employment_rank"}, "rank"),
    ("nottingham", {"geography": "lsoa2011", "indicator": "employment_decile"}, "decile"),
    ("glasgow", {"geography": "datazone2011", "indicator": "total_population"}, "count"),
])
def test_each_kind_of_measure_behaves_one_way(client, partnership, params, kind):
    cfg = page(client, partnership, **params)
    assert cfg["kind"] == kind
    gap = cfg["hasGap"]
    # a gap exactly when the map is a count over a population; then a chart, else none at all
    assert gap == (kind == "count" and cfg["unit"] == "%")
    assert (cfg["chart"] is not None) == gap and (cfg["chartDownloads"] is not None) == gap
    assert cfg["sentence"], "every map says something in words"
    if not gap:
        assert set(cfg["areas"]["worst"]) == {None} and cfg["hasWorst"] is False
        assert cfg["thresholdHint"] is None and cfg["baseline"] == []
        assert "cannot pick out worst-performing" in cfg["sentence"]
    else:
        assert all(isinstance(w, bool) for w in cfg["areas"]["worst"])
        assert cfg["hasWorst"] == any(cfg["areas"]["worst"])
        labels = cfg["baselineLabels"]
        words = labels[0] if len(labels) == 1 else f"{labels[0]} to {labels[-1]}"
        if cfg["hasWorst"]:       # the figures, and the rule they rest on
            assert cfg["sentence"].endswith(f"Threshold: a baseline rate above 25%; baseline: {words}."), cfg
        else:                     # why there are none
            assert cfg["sentence"].startswith(f"No {cfg['areaWords']['one']} of "), cfg["sentence"]
            assert f"has a baseline rate above 25% (baseline: {words})" in cfg["sentence"]


def test_the_gap_chart_of_a_map_without_a_gap_is_refused_in_words(client):
    response = client.get("/maps/glasgow/gap.svg", params={"geography": "wpc2010", "indicator": "claimant_rate"})
    assert response.status_code == 400 and response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["detail"] == ("claimant_rate on wpc2010 is not a count over a population: no worst-performing "
                              "areas and no gap chart")
    assert body["message"] == ("This map's measure does not count people, so it has no worst-performing "
                               "neighbourhoods and no gap to chart.")


def test_a_quarterly_gap_chart_has_a_point_per_quarter_at_its_tick(client):
    """Heads of the Valleys' constituencies, eight quarters: each series has eight points, one at
    each tick, where the page's figures put them; the first and last quarters are named, at most
    five are (a screen's chart), and the title names the partnership and the measure."""
    from tests.test_api_serving import read_chart

    params = {"geography": "wpc2010", "indicator": "claimants"}
    cfg = page(client, "heads_of_the_valleys", **params)
    periods = cfg["periods"]
    assert len(periods) == 8 and cfg["hasWorst"]
    response = client.get(cfg["chart"])
    assert response.status_code == 200
    title, _, (rates, gaps) = read_chart(response.text)
    assert title.startswith("Heads of the Valleys: Claimants (%)"), title
    where = [x for x, _ in gaps.xticks]
    assert len(where) == 8 and where == sorted(where)
    named = [label for _, label in gaps.xticks if label]
    assert named[0] == periods[0]["label"] and named[-1] == periods[-1]["label"] and len(named) <= 5
    assert set(named) <= {p["label"] for p in periods}
    plotted = {**rates.series, "gap": next(iter(gaps.series.values()))}
    for name, key in (("Worst-performing constituencies", "cohort_rate"), ("Rest of the partnership", "rest_rate"),
                      ("gap", "gap")):
        assert [x for x, _ in plotted[name]] == pytest.approx(where), name
        assert [v for _, v in plotted[name]] == pytest.approx([p["summary"][key] for p in periods], abs=0.01), name


@pytest.mark.parametrize("threshold", [30, 50, 90])
def test_a_threshold_hint_never_repeats_the_threshold_in_use(client, threshold):
    """East London has no LSOA above 30%: a hint is offered below the threshold the sentence
    refused, and it picks what it says; at the hinted threshold there is no hint."""
    cfg = client.get("/maps/east_london/figures.json", params={"threshold": threshold}).json()
    hint = cfg["thresholdHint"]
    assert hint is not None and not cfg["hasWorst"], cfg["sentence"]
    assert hint["threshold"] < hint["highest"] < threshold
    assert f"A threshold of {hint['threshold']:g}% would pick the {hint['areas']} neighbourhoods" in cfg["sentence"]
    again = client.get("/maps/east_london/figures.json", params={"threshold": hint["threshold"]}).json()
    assert sum(again["areas"]["worst"]) == hint["areas"] and again["hasWorst"]
    assert again["thresholdHint"] is None


# -- point 3: ranks and deciles most deprived darkest, whole-number classes ---------------------------

@pytest.mark.parametrize("indicator", ["employment_rank", "employment_decile"])
def test_ranks_and_deciles_colour_the_most_deprived_darkest(client, indicator):
    cfg = page(client, "nottingham", geography="lsoa2011", indicator=indicator)
    breaks, colours = cfg["breaks"], cfg["colours"]
    # rank or decile 1, the most deprived, falls in the darkest colour; the largest in the lightest
    assert colours[class_of(1, breaks)] == PALETTE[-1]
    assert colours[class_of(breaks[-1], breaks)] == PALETTE[0]
    # whole-number bounds, and labels without decimals
    assert all(b == int(b) for b in breaks)
    assert len(cfg["classLabels"]) == len(breaks)
    assert not any(re.search(r"\d\.\d", label) for label in cfg["classLabels"]), cfg["classLabels"]
    lowest = min(v for row in cfg["areas"]["values"] for v in row if v is not None)
    assert cfg["classLabels"][0].split(" – ")[0] == f"{lowest:,.0f}"     # from the lowest value shown
    assert cfg["legendTitle"].endswith("darker areas are more deprived")


def test_a_rate_keeps_darkest_for_highest_and_says_so(client):
    cfg = page(client)
    assert cfg["colours"][class_of(cfg["breaks"][-1], cfg["breaks"])] == PALETTE[-1]
    assert cfg["legendTitle"] == "Employment-deprived people (%): darker areas are higher"
    assert cfg["classLabels"][0].startswith("up to ") and cfg["classLabels"][0].endswith("%")


def test_a_measure_whose_high_end_is_good_says_so_and_is_drawn_the_other_way_round():
    assert low_is_worse("rate", "Employment rate (16-64)")
    assert "higher is better" in legend_title("rate", "Employment rate (16-64)", "%")
    assert not low_is_worse("rate", "Employment deprivation rate (% of working-age people)")
    assert "higher is better" not in legend_title("rate", "Employment deprivation rate", "%")


def test_print_maps_colour_ranks_the_same_way(demo_db):
    from geo_cs.export.maps import partnership_map_inputs
    from geo_cs.store import Store

    with Store.open(demo_db, read_only=True) as store:
        inputs = partnership_map_inputs(store, "nottingham", geography="lsoa2011", indicator="employment_rank")
    assert inputs["colours"][0] == PALETTE[-1] and all(b == int(b) for b in inputs["breaks"])
    assert not any(re.search(r"\d\.\d", label) for label in inputs["labels"]), inputs["labels"]


# -- point 11: empty states, what is on the map, the best geography ---------------------------------

def test_rhyl_says_why_and_shows_only_what_is_on_its_map(client):
    cfg = page(client, "rhyl")
    assert cfg["sentence"] and "Rhyl" in cfg["sentence"]
    assert "none is loaded for Rhyl" in cfg["sentence"]          # why, and what would give one
    assert cfg["hasWorst"] is False and cfg["hasEstimates"] is False
    # only the periods that hold Rhyl's values: no IMD (England) edition on a Welsh map
    assert [p["id"] for p in cfg["periods"]] == ["wimd2019"]
    assert all(p["summary"]["partnership_value"] is None for p in cfg["periods"])


def test_welsh_partnerships_open_on_the_same_geography_and_measure(client):
    views = {p: (cfg["layer"], cfg["indicator"]) for p in WELSH for cfg in [page(client, p)]}
    assert set(views.values()) == {("lsoa2011", "employment_rank")}, views
    # those with constituencies are told where their gap is
    assert "“Claimants, % of working-age people”" in page(client, "heads_of_the_valleys")["sentence"]


def test_glasgow_flags_its_worst_areas_and_estimates_on_the_map(client):
    cfg = page(client)
    assert cfg["hasWorst"] is True and cfg["hasEstimates"] is True
    assert cfg["hasEstimates"] == any(p["estimated"] for p in cfg["periods"])


def test_the_worst_list_carries_each_areas_baseline_and_it_explains_the_flag(client, demo_db):
    """Point 9: the list shows why an area is worst-performing: its baseline rate (Glasgow's SIMD
    2012 rate, worked out by hand), above the threshold exactly when the area is flagged; a map
    with no worst areas carries none."""
    from tests.test_map_page import glasgow_rows

    cfg = page(client)
    areas, threshold = cfg["areas"], cfg["threshold"]
    by_hand = glasgow_rows(demo_db).query("period_id == 'simd2012'").set_index("code")["rate"]
    listed = {c: (w, b) for c, w, b in zip(areas["code"], areas["worst"], areas["baseline"], strict=True)}
    assert {c for c, (_, b) in listed.items() if b is not None} == set(by_hand.index)
    for code, rate in by_hand.items():
        worst, baseline = listed[code]
        assert baseline == pytest.approx(rate, abs=1e-6) and worst == (rate > threshold), (code, worst, baseline)
    assert sum(w for w, _ in listed.values()) == 267
    rank = page(client, geography="lsoa2011", indicator="employment_rank", partnership="nottingham")
    assert set(rank["areas"]["baseline"]) == {None}


def test_the_baseline_in_the_list_is_the_published_one(demo_db):
    """Under disclosure control the list's baseline of a withheld area is withheld too."""
    with TestClient(create_app(Settings(db=demo_db, disclosure_control=True))) as controlled:
        cfg = page(controlled, "dundee", geography="datazone2011", indicator="employment_deprived")
    areas = cfg["areas"]
    first = [values[0] for values in areas["values"]]
    # a baseline is the mean of published rates: none where the baseline period is withheld
    withheld = [b for v, b in zip(first, areas["baseline"], strict=True) if v is None]
    assert withheld and set(withheld) == {None}


# -- point 7: errors on pages are written for people ---------------------------------------------------

#: Words of the service's own that a person must never have to read (issue 28, point 7).
DEVELOPER_WORDS = ("Input should be", "known:", "valid:", "ingest", "lookup", "lsoa2011", "lsoa2021",
                   "datazone", "parse string", "expected one of", "defaults tried")


def person_part(html: str) -> str:
    """The page as a person reads it at first: without the folded technical detail, tags or
    the attribution."""
    html = re.sub(r"<details.*?</details>", "", html, flags=re.S)
    html = re.sub(r"<footer.*?</footer>", "", html, flags=re.S)
    return re.sub(r"<[^>]+>", " ", html)


@pytest.mark.parametrize(("path", "params", "status", "task"), [
    ("/maps/glasgow", {"threshold": "abc"}, 400, "threshold for worst-performing neighbourhoods must be a number"),
    ("/maps/nowhere", {}, 404, "no partnership called “nowhere”"),
    ("/maps/glasgow", {"geography": "lsoa2021", "indicator": "employment_deprived"}, 400, "under “Map of”"),
    ("/maps/glasgow", {"indicator": "nope"}, 404, "Glasgow has no map of that measure"),
    ("/maps/glasgow", {"period": "1999"}, 404, "choose a period with the slider"),
    ("/maps/glasgow", {"baseline": "1999"}, 400, "choose the baseline"),
    ("/maps/glasgow", {"k": "12"}, 400, "from 2 to 9"),
    ("/maps/glasgow", {"breaks": "ten,20"}, 400, "for example 10,20,30"),
    ("/maps/glasgow/no-such-page", {}, 404, "no page at this address"),
])
def test_an_error_page_speaks_of_the_task_and_folds_the_technical_detail(client, path, params, status, task):
    response = client.get(path, params=params, headers=BROWSER)
    assert response.status_code == status and response.headers["content-type"].startswith("text/html")
    import html as html_lib

    text = " ".join(html_lib.unescape(person_part(response.text)).split())
    assert task in text, text
    leaked = [w for w in DEVELOPER_WORDS if w in text]
    assert not leaked, (leaked, text)
    assert 'href="/maps/help"' in response.text and 'href="/maps/"' in response.text
    # the detail is still there for whoever supports them, and in problem+json for programs
    assert "<details" in response.text
    plain = client.get(path, params=params)
    assert plain.headers["content-type"] == "application/problem+json"
    assert plain.json()["detail"] and plain.json()["message"]


def test_no_link_back_to_a_partnership_that_does_not_exist(client):
    html = client.get("/maps/nowhere", headers=BROWSER).text
    assert 'href="/maps/nowhere"' not in html
    assert 'href="/maps/glasgow"' in client.get("/maps/glasgow", params={"k": "12"}, headers=BROWSER).text


def test_the_pages_own_requests_carry_a_sentence_for_the_person(client):
    """What map.js shows beside the threshold box when the figures are refused."""
    body = client.get("/maps/glasgow/figures.json", params={"threshold": "abc"}).json()
    assert body["detail"].startswith("threshold: Input should be a valid number")   # for programs
    assert body["message"] == ("The threshold for worst-performing neighbourhoods must be a number "
                               "from 0 to 100, such as 25.")


# -- point 8: plain words, one help page -----------------------------------------------------------------

JARGON = ("cohort", "denominator", "estimated share", "estimated_share", "pooled", "fisher", "jenks",
          "areas held", "tolerance", "within the method", "harmonised")
#: Config keys whose strings are addresses, ids or colours, not words for people.
NOT_WORDS = {"tiles", "geojson", "csv", "chart", "url", "helpUrl", "layer", "indicator", "partnership", "codes",
             "outline", "reference", "id", "csvName", "geojsonName", "name", "settings", "noData", "colours",
             "unit", "kind", "code", "baseline", "group", "attribution", "areas"}


def words_of(value, key: str = "") -> list[str]:
    """Every string for people in a page's config."""
    if key in NOT_WORDS:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [w for k, v in value.items() for w in words_of(v, k)]
    if isinstance(value, list):
        return [w for v in value for w in words_of(v, key)]
    return []


@pytest.mark.parametrize(("partnership", "params"), [
    ("glasgow", {}), ("glasgow", {"threshold": 90}), ("glasgow", {"breaks": "80,90"}),
    ("glasgow", {"geography": "wpc2010", "indicator": "claimant_rate"}),
    ("swansea_bay", {"geography": "wpc2010", "indicator": "claimants"}), ("rhyl", {}),
    ("nottingham", {"geography": "lsoa2011", "indicator": "total_population",
                    "denominator": "population2019_lsoa11.working_age_population"}),
    ("heads_of_the_valleys", {"geography": "wpc2010", "indicator": "claimants"}),
])
def test_every_string_the_page_carries_is_in_plain_words(client, partnership, params):
    cfg = page(client, partnership, **params)
    words = words_of(cfg)
    assert cfg["sentence"] in words and cfg["legendTitle"] in words
    found = [(j, w) for w in words for j in JARGON if j in w.lower()]
    assert not found, found
    assert cfg["measure"][0].isupper()
    assert set(cfg["schemeLabels"]) == {"quantiles", "fisher_jenks", "equal_interval", "own"}
    # constituencies are called constituencies, wards wards
    if cfg["layer"] == "wpc2010":
        assert cfg["areaWords"] == {"one": "constituency", "many": "constituencies"}
        assert "neighbourhood" not in cfg["sentence"] and "constituenc" in cfg["sentence"]


def test_the_sentence_states_its_threshold_and_baseline(client):
    cfg = page(client, threshold=20, baseline="simd2016")
    assert "Threshold: a baseline rate above 20%; baseline: SIMD 2016 (2014 data)." in cfg["sentence"]
    quarterly = page(client, "heads_of_the_valleys", geography="wpc2010", indicator="claimants")
    assert "above 25%" in quarterly["sentence"] and "May 2010 to February 2011" in quarterly["sentence"]


def test_map_of_offers_one_entry_per_measure_each_with_a_capital(client):
    html = client.get("/maps/glasgow", params={"geography": "wpc2010", "indicator": "claimants"}).text
    options = re.findall(r"<option value=\"\d+\" data-geography=\"(\w+)\"[^>]*>([^<]+)</option>", html)
    labels = [label for _, label in options]
    assert all(label[0].isupper() for label in labels), labels
    # one claimant rate on constituencies, one employment-deprivation measure on data zones
    assert sum("laimant" in label and "SYNTHETIC" not in label for g, label in options if g == "wpc2010") == 1
    assert sum("mployment" in label for g, label in options if g == "datazone2011") == 1
    # a Welsh partnership is not offered England's measures (an empty map)
    welsh = client.get("/maps/rhyl").text
    assert "Employment-deprived people, % of working-age population" not in welsh


def test_the_help_page_explains_the_words_and_lists_every_measure_with_its_source(client, demo_db):
    from geo_cs.store import Store

    cfg = page(client)
    assert cfg["helpUrl"] == "/maps/help"
    response = client.get(cfg["helpUrl"], headers=BROWSER)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    import html as html_lib

    text = " ".join(html_lib.unescape(re.sub(r"<[^>]+>", " ", response.text)).split())
    for heading in ("Worst-performing neighbourhoods", "The baseline", "The gap", "The 95% interval",
                    "Estimates after boundary changes", "Where the data come from"):
        assert heading in text, heading
    with Store.open(demo_db, read_only=True) as store:
        indicators = store.sql("SELECT DISTINCT label, source_title, publisher, kind FROM indicators i "
                               "WHERE EXISTS (SELECT 1 FROM observations o "
                               "WHERE o.indicator_id = i.indicator_id)").fetchall()
    from geo_cs.narrative import survey_label

    for label, title, publisher, kind in indicators:
        plain = re.sub(r"\s*\(harmonised to [^)]*\)", "", label)
        # a survey rate is named by what it is a share of ("Economically inactive, % of people
        # aged 16-64" for Nomis's "% who are economically inactive - aged 16-64")
        plain = survey_label(plain) if kind == "survey" else plain
        assert plain[:1].upper() + plain[1:] in text, label
        assert publisher in text, publisher
        assert re.sub(r"\s+(19|20)\d\d$", "", title) in text, title
    assert "harmonised to" not in text and "Open Government Licence" in text
    # and the list of partnerships says what its partnerships are in words
    index = client.get("/maps/").text
    assert "City Strategy Pathfinder" in index and " · cs · " not in index and "assumed</span>" not in index


def test_a_constituency_map_names_its_constituencies(client):
    """Point 14: constituencies, which no reference layer names, carry their names on their own
    map; a neighbourhood map does not name its (hundreds of) neighbourhoods."""
    cfg = page(client, "nottingham", geography="wpc2010", indicator="claimants")
    named = {label["name"] for label in cfg["reference"]["labels"] if label["kind"] == "area"}
    assert {"Nottingham East", "Nottingham North", "Nottingham South"} <= named, sorted(named)[:10]
    small = page(client, "glasgow")
    assert not [label for label in small["reference"]["labels"] if label["kind"] == "area"]
