"""The staff map of a survey rate (issue 29, point 3): districts coloured by the Annual Population
Survey's employment rate, each with its published 95% interval in the tooltip and the profile,
the districts the file marks in words (never a number), and a difference between two districts
or two periods called real only when the intervals say so.

The page's data (its config) and sentence are checked here, without a browser, on a small
fixture (South Yorkshire's four districts as squares, a web download shaped as Nomis gives it,
an API extract of three rolling years with no intervals) and on the real 2019 file when
``../shared/data`` is present. ``map.js``'s copy of :func:`geo_cs.stats.survey_difference` is
run against the Python function on the same numbers (with Node; in Chromium in
``test_map_survey_browser.py``, which drives the page itself).
"""

from __future__ import annotations

import json
import math
import random
import re
import shutil
import subprocess
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
from fastapi.testclient import TestClient
from shapely.geometry import box

from geo_cs.api.app import create_app
from geo_cs.config import Settings
from geo_cs.maps.page import read_page_config
from geo_cs.narrative import (
    CANNOT_SAY,
    difference_verdict,
    interval_words,
    legend_title,
    survey_label,
    survey_notes,
    survey_population,
    survey_sentence,
)
from geo_cs.palette import class_colours
from geo_cs.stats import survey_difference
from geo_cs.store import Store

REPO = Path(__file__).resolve().parent.parent
MAP_JS = REPO / "maps" / "static" / "geo-cs" / "map.js"

# -- the fixture: South Yorkshire's districts and three neighbours as squares ---------------------

#: code, name, (column, row) of its square. South Yorkshire is a partnership of the four first.
DISTRICTS = [
    ("E08000019", "Sheffield", (0, 0)), ("E08000018", "Rotherham", (1, 0)),
    ("E08000016", "Barnsley", (0, 1)), ("E08000017", "Doncaster", (1, 1)),
    ("E08000036", "Wakefield", (0, 2)), ("W06000015", "Cardiff", (2, 0)),
    ("S12000036", "City of Edinburgh", (2, 1)),
]
SOUTH_YORKSHIRE = ["E08000016", "E08000017", "E08000018", "E08000019"]

#: The web download's rows: numerator, denominator, rate, Conf ("*": unreliable, "-": missing).
WEB_ROWS = {
    "E08000016": (112900, 152800, 73.9, "3.0"), "E08000017": (140000, 190800, 73.4, "2.9"),
    "E08000018": (110000, 162000, 67.9, "*"), "E08000019": (270000, 382000, 70.7, "2.6"),
    "E08000036": ("-", "-", "-", "-"), "W06000015": (180000, 243000, 74.1, "2.7"),
    "S12000036": (290000, 364000, 79.7, "2.2"),
}

#: The API extract: per rolling year (date, label), each district's rate and numerator; None: blank.
API_PERIODS = [("2018-12-01", "Jan 2018-Dec 2018"), ("2019-06-01", "Jul 2018-Jun 2019"),
               ("2019-12-01", "Jan 2019-Dec 2019")]
API_ROWS = {
    "E08000016": [(71.1, 109700), (72.5, 111000), (73.9, 112900)],
    "E08000017": [(72.0, 137000), (None, None), (73.4, 140000)],
    "E08000018": [(69.0, 111500), (68.1, 110300), (67.9, 110000)],
    "E08000019": [(70.2, 266000), (70.9, 269500), (70.7, 270000)],
    "E08000036": [(74.4, 151000), (75.0, 152300), (75.2, 152800)],
}


def squares(codes: list[str] | None = None) -> gpd.GeoDataFrame:
    rows = [(c, n, box(-1.8 + 0.2 * i, 53.3 + 0.15 * j, -1.6 + 0.2 * i, 53.45 + 0.15 * j))
            for c, n, (i, j) in DISTRICTS if codes is None or c in codes]
    return gpd.GeoDataFrame({"code": [r[0] for r in rows], "name": [r[1] for r in rows]},
                            geometry=[r[2] for r in rows], crs="EPSG:4326")


def write_web_download(path: Path) -> Path:
    """A Nomis web download of the Annual Population Survey, as it comes (preamble, each area as
    ``lacu:`` and ``ladu:``, markers, footer)."""
    names = {c: n for c, n, _ in DISTRICTS}
    lines = ['"annual population survey"', '"ONS Crown Copyright Reserved [from Nomis on 12 June 2020]"',
             '"Analysis   :","variable"',
             '"Confidence :","95% confidence interval of percent figure (+/-)"',
             '"Date       :","Jan 2019-Dec 2019"', "",
             '"Area","mnemonic","Numerator","Denominator","Employment rate - aged 16-64","Conf"', ""]
    for prefix in ("lacu", "ladu"):
        for code, (num, den, rate, conf) in WEB_ROWS.items():
            conf_cell = f'"{conf}"' if conf in ("*",) else conf
            lines.append(f'"{prefix}:{names[code]}","{code}",{num},{den},{rate},{conf_cell}')
    lines += ["", "", "", '"*","Estimate and confidence interval unreliable since the group sample size is"',
              '"","small (3-9)"', "", '"-","These figures are missing."']
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_api_extract(path: Path) -> Path:
    """A Nomis API extract (dataset NM_17_5, long form) of three rolling years with no intervals."""
    names = {c: n for c, n, _ in DISTRICTS}
    kind = "local authorities: county / unitary (as of April 2021)"
    out = ["theme,date,date_name,geography_code,geography_name,geography_type,variable_code,variable_name,"
           "measures_code,measures_name,value"]
    for k, (date, label) in enumerate(API_PERIODS):
        for code, series in API_ROWS.items():
            rate, num = series[k]
            for measure_code, measure, value in (("20599", "Variable", rate), ("21001", "Numerator", num)):
                cell = "" if value is None else value
                out.append(f"employment,{date},{label},{code},{names[code]},{kind},45,"
                           f"Employment rate - aged 16-64,{measure_code},{measure},{cell}")
    path.write_text("\n".join(out) + "\n", encoding="utf-8")
    return path


def build_survey_store(db: Path, folder: Path) -> Path:
    """The fixture's store: the squares as the partnerships' districts (2013) and as the survey's
    district editions (2020, 2021), the web download on lad2020 and the API extract on lad2021."""
    from geo_cs.ingest import ingest_boundaries
    from geo_cs.ingest.survey import ingest_survey

    folder.mkdir(parents=True, exist_ok=True)
    every = squares()
    every.to_file(folder / "districts.geojson", driver="GeoJSON")
    with Store.open(db) as store:
        for set_id in ("lad2013", "lad2020", "lad2021"):
            ingest_boundaries(store, [folder / "districts.geojson"], set_id=set_id, code_col="code",
                              name_col="name")
        ingest_survey(store, write_web_download(folder / "aps_2019.csv"), set_edition=2020)
        ingest_survey(store, write_api_extract(folder / "aps_api.csv"))
    return db


@pytest.fixture(scope="module")
def survey_db(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("survey_map")
    return build_survey_store(folder / "survey.duckdb", folder / "files")


@pytest.fixture(scope="module")
def client(survey_db):
    with TestClient(create_app(Settings(db=survey_db))) as c:
        yield c


WEB = {"geography": "lad2020", "indicator": "aps.employment_rate"}
SERIES = {"geography": "lad2021", "indicator": "employment_rate"}


def page(client, partnership: str = "south_yorkshire", **params) -> tuple[dict, str]:
    response = client.get(f"/maps/{partnership}", params=params)
    assert response.status_code == 200, response.text
    return read_page_config(response.text), response.text


def by_code(cfg: dict, code: str) -> int:
    return cfg["areas"]["code"].index(code)


# -- by hand, from the fixture's own rows ---------------------------------------------------------

def whole(codes: list[str]) -> tuple[float, float, dict[str, float]]:
    """A whole's rate, half-width and weights from the web rows (unreliable districts in the
    rate, not in the interval; missing ones in neither)."""
    rows = {c: WEB_ROWS[c] for c in codes if WEB_ROWS[c][0] != "-"}
    total = sum(r[1] for r in rows.values())
    rate = 100 * sum(r[0] for r in rows.values()) / total
    weights = {c: r[1] / total for c, r in rows.items()}
    hw = math.sqrt(sum((weights[c] * float(r[3])) ** 2 for c, r in rows.items() if r[3] != "*"))
    return rate, hw, weights


def part_against_whole(code: str, codes: list[str]) -> tuple[float, float]:
    """A district against a whole it is part of: its rate minus the whole's, and the half-width
    of Σ aᵢ·rᵢ with a = 1 − w for it and −wᵢ for the others (published intervals only)."""
    rate, _, weights = whole(codes)
    terms = []
    for c, w in weights.items():
        conf = WEB_ROWS[c][3]
        if conf == "*":
            continue
        a = (1 - w) if c == code else -w
        terms.append((a * float(conf)) ** 2)
    return WEB_ROWS[code][2] - rate, math.sqrt(sum(terms))


# -- the page of the 2019 web download --------------------------------------------------------------

def test_districts_coloured_by_the_rate_with_the_legend_of_a_rate_where_higher_is_better(client):
    cfg, html = page(client, **WEB)
    assert cfg["kind"] == "survey" and cfg["layer"] == "lad2020"
    assert cfg["measure"] == "Employment rate, % of people aged 16-64"
    assert cfg["legendTitle"] == ("Employment rate, % of people aged 16-64: higher is better, so the darkest "
                                  "areas are the lowest")
    # a claimant rate is darkest where it is highest; an employment rate where it is lowest
    assert cfg["colours"] == class_colours(len(cfg["breaks"]), True) and cfg["lowIsWorse"] is True
    assert cfg["colours"][0] != class_colours(len(cfg["breaks"]), False)[0]
    # the map's own classes, from the figures shown (Rotherham's unreliable 67.9 is not one)
    shown = [v[0] for v in cfg["areas"]["values"] if v[0] is not None]
    assert sorted(shown) == [70.7, 73.4, 73.9] and cfg["breaks"][-1] == 73.9
    # the panel names the measure once, with what it is a share of
    assert "Employment rate, % of people aged 16-64, Local authority" in re.sub(r"\s+", " ", html)
    assert "(%)" not in html.split('class="geo-cs-measure"')[1].split("</p>")[0]


def test_no_worst_areas_and_no_gap_controls_for_a_survey_rate(client):
    cfg, html = page(client, **WEB)
    assert cfg["hasGap"] is False and cfg["hasWorst"] is False and cfg["chart"] is None
    assert not any(cfg["areas"]["worst"]) and cfg["thresholdHint"] is None
    assert 'id="geo-cs-cohort"' not in html and 'name="geo-cs-list"' not in html
    assert 'id="geo-cs-chart"' not in html


def test_the_period_is_labelled_as_nomis_labels_it(client):
    cfg, html = page(client, **WEB)
    assert [p["label"] for p in cfg["periods"]] == ["Jan 2019-Dec 2019"]
    assert [p["id"] for p in cfg["periods"]] == ["2019y12"]
    series, html = page(client, **SERIES)
    assert [p["label"] for p in series["periods"]] == [label for _, label in API_PERIODS]
    assert "<span>Jul 2018-Jun 2019</span>" in html


def test_the_measure_is_offered_on_both_editions_and_shown_as_chosen(client):
    _, html = page(client, **WEB)
    options = re.findall(r'<option value="\d+" data-geography="(\w+)" data-indicator="([\w.]+)"[^>]*?'
                         r'( selected)?>([^<]*)</option>', html)
    offered = {(g, i): label for g, i, _, label in options}
    assert offered[("lad2020", "employment_rate")] == "Employment rate, % of people aged 16-64"
    assert offered[("lad2021", "employment_rate")] == "Employment rate, % of people aged 16-64"
    # asked for by its indicator id, the map is the choice offered by its measure name: one entry
    chosen = [(g, i) for g, i, sel, _ in options if sel]
    assert chosen == [("lad2020", "employment_rate")]
    assert len(options) == len(set((g, i) for g, i, _, _ in options))


def test_each_district_carries_its_published_interval_and_marked_ones_no_number(client):
    cfg, _ = page(client, **WEB)
    survey = cfg["areas"]["survey"]
    barnsley, rotherham = by_code(cfg, "E08000016"), by_code(cfg, "E08000018")
    assert cfg["areas"]["values"][barnsley] == [73.9] and survey["halfWidth"][barnsley] == [3.0]
    assert survey["marker"][barnsley] == [None]
    # unreliable: no figure, no interval, a word
    assert cfg["areas"]["values"][rotherham] == [None] and survey["halfWidth"][rotherham] == [None]
    assert survey["marker"][rotherham] == ["unreliable"]
    assert cfg["survey"]["markers"]["unreliable"] == "unreliable (survey sample of 3 to 9 people)"
    assert cfg["survey"]["markers"]["missing"] == "missing (not published)"
    # every district the file marks, in or out of the partnership (for the tooltips)
    assert cfg["periods"][0]["survey"]["marked"] == {"E08000018": "unreliable", "E08000036": "missing"}
    assert survey["vsPartnership"][rotherham] == [None] and survey["vsBenchmark"][rotherham] == [None]


def test_a_district_against_its_partnership_and_great_britain_counts_it_once(client):
    cfg, _ = page(client, **WEB)
    survey = cfg["areas"]["survey"]
    everywhere = [c for c, _, _ in DISTRICTS]
    for code in ("E08000016", "E08000017", "E08000019"):
        i = by_code(cfg, code)
        for key, codes in (("vsPartnership", SOUTH_YORKSHIRE), ("vsBenchmark", everywhere)):
            diff, hw = part_against_whole(code, codes)
            got = survey[key][i][0]
            assert got[0] == pytest.approx(diff, abs=1e-6) and got[1] == pytest.approx(hw, abs=1e-3)
            assert got[2] is (abs(round(diff, 6)) > round(hw, 3))
            # as independent samples the district would count twice: a wider interval
            _, whole_hw, _ = whole(codes)
            assert got[1] < math.hypot(float(WEB_ROWS[code][3]), whole_hw)
    # Sheffield is really below Great Britain; Barnsley's difference is not shown to be real
    assert survey["vsBenchmark"][by_code(cfg, "E08000019")][0][2] is True
    assert survey["vsBenchmark"][by_code(cfg, "E08000016")][0][2] is False


def test_the_sentence_gives_the_rate_its_interval_the_gap_and_whether_it_is_real(client):
    cfg, _ = page(client, **WEB)
    rate, hw, weights = whole(SOUTH_YORKSHIRE)
    gb, _, gb_weights = whole([c for c, _, _ in DISTRICTS])
    gap = rate - gb
    # the gap's interval counts each district once: Σ (wᵢᴾ − wᵢᴮ)·rᵢ
    gap_hw = math.sqrt(sum(((weights.get(c, 0) - gb_weights[c]) * float(WEB_ROWS[c][3])) ** 2
                           for c in gb_weights if WEB_ROWS[c][3] != "*"))
    assert abs(gap) > gap_hw     # the fixture's gap is real
    expected = (f"In Jan 2019-Dec 2019, {rate:.1f}% of South Yorkshire's people aged 16-64 were in work "
                f"(95% interval {rate - hw:.1f}% to {rate + hw:.1f}%), {abs(gap):.1f} points below Great "
                f"Britain ({gb:.1f}%); the gap is real: its interval, {abs(gap) - gap_hw:.1f} to "
                f"{abs(gap) + gap_hw:.1f} points, does not include 0.")
    assert cfg["sentence"] == expected == cfg["periods"][0]["sentence"]
    s = cfg["periods"][0]["survey"]
    assert s["partnership"]["rate"] == pytest.approx(rate, abs=1e-3)
    assert s["partnership"]["halfWidth"] == pytest.approx(hw, abs=1e-3)
    assert s["gap"] == {"diff": pytest.approx(gap, abs=1e-3), "halfWidth": pytest.approx(gap_hw, abs=1e-3),
                        "real": True}
    assert s["benchmark"]["name"] == "Great Britain" and cfg["survey"]["benchmark"] == "Great Britain"
    # the key figures: Great Britain with how many of its districts have a figure, and the nations
    labels = [b["label"] for b in cfg["periods"][0]["benchmarks"]]
    assert labels[0] == "Great Britain (6 of its 7 districts have a figure)"
    assert {b["group"] for b in cfg["periods"][0]["benchmarks"][1:]} == {"England", "Scotland", "Wales"}


def test_a_marked_district_is_explained_in_plain_words(client):
    cfg, _ = page(client, **WEB)
    notes = cfg["periods"][0]["notes"]
    assert notes == ["Rotherham's estimate is unreliable (survey sample of 3 to 9 people), so the map shows "
                     "no figure for it. It is in South Yorkshire's rate, but not in its interval, which is a "
                     "little too narrow."]
    jargon = ("denominator", "cohort", "reliability", "half-width", "half_width")
    words = [cfg["sentence"], *notes, *cfg["survey"]["markers"].values(), cfg["survey"]["cannotSay"]]
    assert not [w for w in words for j in jargon if j in w.lower()]


def test_every_string_of_the_page_is_in_plain_words(client):
    from tests.test_map_words import JARGON, words_of

    for params in (WEB, SERIES):
        cfg, _ = page(client, **params)
        words = words_of(cfg)
        assert cfg["sentence"] in words and cfg["legendTitle"] in words
        assert not [(j, w) for w in words for j in JARGON if j in w.lower()]


def test_a_district_withheld_by_disclosure_control_is_a_word_not_a_figure(survey_db):
    settings = Settings(db=survey_db, disclosure_control=True, disclosure_min_count=120_000)
    with TestClient(create_app(settings)) as c:
        cfg, _ = page(c, **WEB)
    barnsley = by_code(cfg, "E08000016")       # 112,900 people in work: under the minimum
    assert cfg["areas"]["values"][barnsley] == [None]
    assert cfg["areas"]["survey"]["marker"][barnsley] == ["suppressed"]
    assert cfg["areas"]["survey"]["halfWidth"][barnsley] == [None]
    assert cfg["areas"]["survey"]["vsPartnership"][barnsley] == [None]
    assert cfg["survey"]["markers"]["suppressed"] == "withheld (fewer than 120000 people)"


def test_the_help_page_says_what_a_survey_rate_is(client):
    text = client.get("/maps/help").text
    assert "Employment rate, % of people aged 16-64" in text
    assert "called real only when its 95% interval does not include 0" in text


# -- the series (the API extract: no intervals) --------------------------------------------------------

def test_a_series_without_intervals_says_so_and_gives_no_verdict(client):
    cfg, _ = page(client, **SERIES)
    assert cfg["start"] == 2 and cfg["periods"][-1]["label"] == "Jan 2019-Dec 2019"
    last = cfg["periods"][-1]
    benchmark = "All 5 districts of England"
    assert cfg["survey"]["benchmark"] == benchmark
    assert re.fullmatch(r"In Jan 2019-Dec 2019, \d+\.\d% of South Yorkshire's people aged 16-64 were in work "
                        r"\(no interval published\), \d+\.\d points below all 5 districts of England "
                        r"\(\d+\.\d%\); real or not, cannot say: no interval published\.", cfg["sentence"]), \
        cfg["sentence"]
    assert last["survey"]["gap"]["real"] is None and last["survey"]["gap"]["halfWidth"] is None
    survey = cfg["areas"]["survey"]
    assert all(h is None for row in survey["halfWidth"] for h in row)
    assert all(v is None for row in survey["vsPartnership"] for v in row)
    # two periods of a district are compared a year apart (rolling years that share no month)
    assert [p["survey"]["yearBefore"] for p in cfg["periods"]] == [None, None, 0]
    # a blank in the extract is missing, in words, with what it does to the partnership's figure
    doncaster = by_code(cfg, "E08000017")
    assert survey["marker"][doncaster] == [None, "missing", None]
    assert cfg["periods"][1]["notes"] == ["Doncaster's figure is missing (not published).",
                                          "South Yorkshire's rate covers its other 3 districts."]
    assert any("only, not all of Great Britain" in n for n in cfg["notes"])


# -- the words, from the narrative ---------------------------------------------------------------------

def test_the_words_of_a_survey_rate():
    assert survey_label("Employment rate - aged 16-64") == "Employment rate, % of people aged 16-64"
    assert survey_label("Unemployment rate - aged 16-64") == (
        "Unemployment rate, % of economically active people aged 16-64")
    assert survey_population("% who are economically inactive - aged 16-64") == "people aged 16-64"
    assert legend_title("survey", "Unemployment rate - aged 16-64", "%").endswith("darker areas are higher")
    assert interval_words(72.6947, 1.0355) == "72.7% (95% interval 71.7% to 73.7%)"
    assert interval_words(72.6947, None) == "72.7% (no interval published)"
    assert difference_verdict(1.0, 2.0, False) == (
        "the difference is not shown to be real: its interval, -1.0 to 3.0 points, includes 0")
    assert difference_verdict(-1.0, None, None) == CANNOT_SAY == "real or not, cannot say: no interval published"
    not_real = survey_sentence("Glasgow", "Employment rate - aged 16-64", "Jan 2019-Dec 2019", 74.9, 2.9,
                               "Great Britain", 75.8, -0.9, 2.9, False)
    assert not_real.endswith("0.9 points below Great Britain (75.8%); the gap is not shown to be real: its "
                             "interval, -2.0 to 3.8 points, includes 0.")
    level = survey_sentence("Glasgow", "Employment rate - aged 16-64", "Jan 2019-Dec 2019", 75.8, 2.9,
                            "Great Britain", 75.81, -0.01, 2.9, False)
    assert "level with Great Britain" in level
    assert survey_notes("Tyneside", [("Gateshead", "missing"), ("Sunderland", "withheld")], 5) == [
        "Gateshead's figure is missing (not published).",
        "Sunderland's figure is withheld (survey sample of 0 to 2 people, not published).",
        "Tyneside's rate covers its other 3 districts."]


# -- map.js's copy of survey_difference, on the same numbers ------------------------------------------

def difference_cases() -> list[tuple]:
    """Rates and half-widths as published (one decimal), combined ones (many decimals), exact ties
    at the rounding, and no interval."""
    rng = random.Random(29)
    cases: list[tuple] = [(67.3, 2.9, 75.1, 3.0), (74.2, 2.8, 71.2, 2.8), (70.0, 0.3, 70.5, 0.4),
                          (72.6946783, 1.0354552, 75.7590851, 0.2489951), (50.0, 0.0625, 50.0, 0.0),
                          (0.0, 0.0, 0.0, 0.0), (60.0, None, 61.2, 3.0), (60.0, 3.0, 61.2, float("nan")),
                          (1.0000005, 0.0, 0.0, 0.0005), (73.25, 0.125, 73.0, 0.0)]
    for _ in range(400):
        cases.append((round(rng.uniform(40, 90), 1), round(rng.uniform(0.5, 10), 1),
                      round(rng.uniform(40, 90), 1), round(rng.uniform(0.5, 10), 1)))
    for _ in range(200):
        cases.append((rng.uniform(40, 90), rng.uniform(0.1, 5), rng.uniform(40, 90), rng.uniform(0.1, 5)))
    return cases


def python_answers(cases: list[tuple]) -> list[list]:
    out = []
    for a, ca, b, cb in cases:
        diff, hw, real = survey_difference(a, np.nan if ca is None else ca, b, np.nan if cb is None else cb)
        out.append([diff, None if math.isnan(hw) else hw, real])
    return out


def survey_difference_js() -> str:
    """The block of map.js between its BEGIN and END survey-difference markers."""
    text = MAP_JS.read_text(encoding="utf-8")
    found = re.search(r"// BEGIN survey-difference.*?// END survey-difference", text, re.S)
    assert found, "map.js has no survey-difference block"
    return found.group(0)


def js_cases(cases: list[tuple]) -> str:
    return json.dumps([[None if v is None or (isinstance(v, float) and math.isnan(v)) else v for v in c]
                       for c in cases])


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js not installed")
def test_map_js_mirrors_survey_difference_exactly(tmp_path):
    cases = difference_cases()
    script = tmp_path / "mirror.js"
    script.write_text(survey_difference_js() + "\nconst cases = " + js_cases(cases) + ";\n"
                      "console.log(JSON.stringify(cases.map(c => { const d = surveyDifference(...c); "
                      "return [d.diff, d.halfWidth, d.real]; })));\n", encoding="utf-8")
    result = subprocess.run(["node", str(script)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == python_answers(cases)


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js not installed")
def test_map_js_rounds_as_python_does(tmp_path):
    rng = random.Random(3)
    values = [0.0625, 0.125, 2.5, 3.5, -2.5, 72.25, 1.0005, 0.0005, 1e-7, -0.04, 123.4565]
    values += [rng.uniform(-100, 100) for _ in range(300)] + [k / 16 for k in range(-64, 64)]
    digits = [0, 1, 2, 3, 6]
    script = tmp_path / "round.js"
    script.write_text(survey_difference_js() + f"\nconst v = {json.dumps(values)};\n"
                      f"console.log(JSON.stringify({json.dumps(digits)}.map(d => v.map(x => roundHalfEven(x, d)))));\n",
                      encoding="utf-8")
    result = subprocess.run(["node", str(script)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [[round(x, d) for x in values] for d in digits]


# -- the real 2019 file: Greater Manchester ------------------------------------------------------------

@pytest.fixture(scope="module")
def real_client(tmp_path_factory):
    from conftest import SHARED_DATA as data

    from geo_cs.ingest import ingest_boundaries, ingest_indicator, ingest_lookup

    db = tmp_path_factory.mktemp("survey_real") / "real.duckdb"
    with Store.open(db) as store:
        ingest_lookup(store, data / "lookups" / "lad_changes_2014_2025.csv")
        ingest_boundaries(store, [data / "boundaries" / "lad13_gb.topojson"])
        ingest_boundaries(store, [data / "boundaries" / "uk_admin_2014_2025.topojson"], layer="ltla",
                          set_id="lad2020", code_col="areacd", name_col="areanm", alive_in=2020)
        ingest_indicator(store, data / "indicators" / "aps_employment_rate_la_2019.csv")
    with TestClient(create_app(Settings(db=db))) as c:
        yield c


def file_rows(path: Path, codes: list[str]) -> dict[str, tuple]:
    """The file's own ``ladu:`` rows of ``codes``: (numerator, denominator, rate, Conf)."""
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        cells = [c.strip('"') for c in line.split(",")]
        if len(cells) == 6 and cells[0].startswith("ladu:") and cells[1] in codes:
            out[cells[1]] = (float(cells[2]), float(cells[3]), float(cells[4]), float(cells[5]))
    return out


@pytest.mark.shared_data
@pytest.mark.slow
def test_greater_manchester_on_the_real_2019_file(real_client, shared_data):
    cfg, _ = page(real_client, "greater_manchester", **WEB)
    assert cfg["sentence"] == (
        "In Jan 2019-Dec 2019, 72.7% of Greater Manchester's people aged 16-64 were in work (95% interval "
        "71.7% to 73.7%), 3.1 points below Great Britain (75.8%); the gap is real: its interval, 2.0 to "
        "4.1 points, does not include 0.")
    members = [f"E080000{n:02d}" for n in range(1, 11)]
    rows = file_rows(shared_data / "indicators" / "aps_employment_rate_la_2019.csv", members)
    assert len(rows) == 10 and sorted(cfg["areas"]["code"]) == members
    total = sum(r[1] for r in rows.values())
    rate = 100 * sum(r[0] for r in rows.values()) / total
    # Bolton against Greater Manchester, by hand from the file's rows: counted once
    bolton = rows["E08000001"]
    w = {c: r[1] / total for c, r in rows.items()}
    hw = math.sqrt(sum((((1 - w[c]) if c == "E08000001" else -w[c]) * r[3]) ** 2 for c, r in rows.items()))
    got = cfg["areas"]["survey"]["vsPartnership"][by_code(cfg, "E08000001")][0]
    assert got == [round(bolton[2] - rate, 6), round(hw, 3), abs(bolton[2] - rate) > hw]
    assert cfg["areas"]["survey"]["halfWidth"][by_code(cfg, "E08000001")] == [bolton[3]]
    # City of London (unreliable) and the Isles of Scilly (missing) are marked, not numbers
    assert cfg["periods"][0]["survey"]["marked"] == {"E09000001": "unreliable", "E06000053": "missing"}
    assert cfg["periods"][0]["benchmarks"][0]["label"] == "Great Britain (367 of its 368 districts have a figure)"
