"""The staff map of a survey rate in Chromium, on a desktop (1366×768) and a phone (390×844)
(issue 29, point 3): a district's tooltip and profile give its rate with its 95% interval in
words, a district the file marks says so in words with no number, a pair of districts and two
periods of one district are called real only when the intervals say so, the answer follows the
period slider, and ``map.js``'s survey_difference gives what Python's gives on the same numbers.

The service runs on the fixture store of ``test_map_survey.py`` (South Yorkshire as squares, a
Nomis web download and an API extract), so no real data is needed. Every test fails on any
console error or uncaught exception.
"""

from __future__ import annotations

import json
import re

import pytest

from geo_cs.stats import survey_difference
from tests.servers import running_service
from tests.test_clients import _launch, needs_chromium, tiles_drawn, watch_console
from tests.test_map_survey import (
    SERIES,
    WEB,
    build_survey_store,
    difference_cases,
    js_cases,
    python_answers,
)

pytestmark = [needs_chromium, pytest.mark.slow]

SIZES = {"desktop": {"width": 1366, "height": 768}, "phone": {"width": 390, "height": 844}}


def address(params: dict[str, str]) -> str:
    return "/maps/south_yorkshire?" + "&".join(f"{k}={v}" for k, v in params.items())


@pytest.fixture(scope="module")
def survey_server(tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("survey_browser")
    db = build_survey_store(folder / "survey.duckdb", folder / "files")
    with running_service({"GEO_CS_DB": str(db)}, folder / "uvicorn.log") as base:
        yield base


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = _launch(p)
        yield b
        b.close()


@pytest.fixture(params=list(SIZES))
def page(request, browser):
    phone = request.param == "phone"
    context = browser.new_context(viewport=SIZES[request.param], is_mobile=phone, has_touch=phone,
                                  device_scale_factor=2 if phone else 1)
    page = context.new_page()
    page.size = request.param
    page.console_problems = watch_console(page)
    yield page
    problems = page.console_problems
    context.close()
    assert not problems, problems


def open_map(page, base: str, params: dict[str, str]) -> dict:
    page.goto(base + address(params))
    tiles_drawn(page)
    page.wait_for_timeout(200)
    return json.loads(page.locator("#geo-cs-config").text_content())


def point_of(page, cfg: dict, code: str) -> tuple[float, float]:
    """The page pixel at the centre of district ``code``, the partnership fitted in the map."""
    bounds = cfg["areas"]["bounds"][cfg["areas"]["code"].index(code)]
    return tuple(page.evaluate("""(b) => {
        const p = geoCs.map.latLngToContainerPoint([(b[1] + b[3]) / 2, (b[0] + b[2]) / 2]);
        const m = geoCs.map.getContainer().getBoundingClientRect();
        return [m.left + p.x, m.top + p.y];
    }""", bounds))


def select(page, cfg: dict, code: str) -> str:
    """Click (desktop) or tap (phone) district ``code`` on the map; the profile's words."""
    x, y = point_of(page, cfg, code)
    if page.size == "phone":
        page.touchscreen.tap(x, y)
    else:
        page.mouse.click(x, y)
    page.wait_for_selector(f'body[data-selected="{code}"]', state="attached")
    return re.sub(r"\s+", " ", page.locator("#geo-cs-profile").inner_text())


def hover(page, cfg: dict, code: str) -> str:
    """The tooltip's words over district ``code`` (a mouse: the desktop only)."""
    x, y = point_of(page, cfg, code)
    page.mouse.move(x - 6, y - 6)
    page.mouse.move(x, y, steps=4)
    tip = page.locator(".leaflet-tooltip")
    tip.wait_for(timeout=10_000)
    for _ in range(20):
        text = re.sub(r"\s+", " ", tip.inner_text())
        if code in text:
            return text
        page.wait_for_timeout(100)
    return text


def test_a_district_gives_its_rate_with_its_interval_in_words(page, survey_server):
    cfg = open_map(page, survey_server, WEB)
    assert "Employment rate, % of people aged 16-64: higher is better" in page.locator("#geo-cs-legend").inner_text()
    if page.size == "desktop":
        tip = hover(page, cfg, "E08000016")
        assert "Barnsley" in tip and "73.9% (95% interval 70.9% to 76.9%)" in tip, tip
        assert "Against Great Britain (" in tip and "Against South Yorkshire (" in tip, tip
    profile = select(page, cfg, "E08000016")
    assert "Jan 2019-Dec 2019: 73.9% (95% interval 70.9% to 76.9%)." in profile, profile
    assert re.search(r"Against South Yorkshire \(\d+\.\d%\): \d+\.\d points higher; the difference is "
                     r"(real|not shown to be real): its interval, -?\d+\.\d to \d+\.\d points,", profile), profile
    # the sentence and the key figures carry the partnership's interval and the gap's verdict
    assert page.locator("#geo-cs-sentence").inner_text() == cfg["sentence"]
    assert "the gap is real" in cfg["sentence"]
    summary = page.locator("#geo-cs-summary").inner_text()
    assert "with 95% intervals" in summary and re.search(r"Gap with Great Britain, points\s+-\d+\.\d "
                                                         r"\(-\d+\.\d to -\d+\.\d\), real", summary), summary


def test_a_marked_district_says_so_in_words_and_shows_no_number(page, survey_server):
    cfg = open_map(page, survey_server, WEB)
    if page.size == "desktop":
        tip = hover(page, cfg, "E08000018")
        assert "Rotherham" in tip and "unreliable (survey sample of 3 to 9 people)" in tip, tip
        assert "67.9" not in tip and "Against" not in tip, tip
    profile = select(page, cfg, "E08000018")
    assert "unreliable (survey sample of 3 to 9 people)" in profile, profile
    assert "67.9" not in profile and "no difference with it can be called real" in profile, profile
    # uncoloured, as the legend says; and the note explains it under the answer
    assert "No figure: unreliable, missing or withheld" in page.locator("#geo-cs-legend").inner_text()
    assert "Rotherham's estimate is unreliable" in page.locator("#geo-cs-notes").inner_text()
    # the ranked list: its word, no figure, no rank
    table = page.locator("#geo-cs-area-table").inner_text()
    assert re.search(r"–\s+Rotherham\s+E08000018\s+unreliable", table), table


def test_a_pair_of_districts_is_called_real_only_when_the_intervals_say_so(page, survey_server):
    cfg = open_map(page, survey_server, WEB)
    rates = {"E08000019": (70.7, 2.6), "E08000016": (73.9, 3.0), "E08000017": (73.4, 2.9)}
    names = {"E08000019": "Sheffield", "E08000016": "Barnsley", "E08000017": "Doncaster"}
    for first, second in (("E08000019", "E08000016"), ("E08000016", "E08000017")):
        select(page, cfg, first)
        profile = select(page, cfg, second)
        diff, hw, real = survey_difference(*rates[second], *rates[first])
        verdict = "real" if real else "not shown to be real"
        size = abs(diff)
        expected = (f"Against {names[first]}, the district you selected before ({rates[first][0]:.1f}%): "
                    f"{size:.1f} points {'lower' if diff < 0 else 'higher'}; the difference is {verdict}: its "
                    f"interval, {size - hw:.1f} to {size + hw:.1f} points, "
                    f"{'does not include' if real else 'includes'} 0.")
        assert expected in profile, (expected, profile)
    # the page's own function, on the same numbers as Python's
    cases = difference_cases()
    got = page.evaluate("(cases) => cases.map(c => { const d = geoCs.surveyDifference(...c); "
                        "return [d.diff, d.halfWidth, d.real]; })", json.loads(js_cases(cases)))
    assert got == python_answers(cases)


def test_two_periods_of_a_district_without_intervals_get_no_verdict(page, survey_server):
    cfg = open_map(page, survey_server, SERIES)
    assert cfg["periods"][cfg["start"]]["label"] == "Jan 2019-Dec 2019"
    assert "cannot say: no interval published" in page.locator("#geo-cs-sentence").inner_text()
    summary = page.locator("#geo-cs-summary").inner_text()
    assert "Key figures, Jan 2019-Dec 2019 (%)" in summary, summary
    assert re.search(r"Gap with all 5 districts of England, points\s+-\d+\.\d, cannot say if real", summary), summary
    profile = select(page, cfg, "E08000016")
    assert "73.9% (no interval published)" in profile, profile
    assert ("Against its own figure in Jan 2018-Dec 2018 (71.1%): 2.8 points higher; real or not, cannot say: "
            "no interval published.") in profile, profile
    # the slider: the answer and the notes follow the period shown (Doncaster is missing in it)
    page.locator("#geo-cs-period").fill("1")
    tiles_drawn(page, "2019y06")
    assert "In Jul 2018-Jun 2019," in page.locator("#geo-cs-sentence").inner_text()
    notes = page.locator("#geo-cs-notes").inner_text()
    assert "Doncaster's figure is missing (not published)." in notes, notes
    assert page.locator("#geo-cs-period-label").inner_text() == "Jul 2018-Jun 2019"
    profile = re.sub(r"\s+", " ", page.locator("#geo-cs-profile").inner_text())
    assert "Jul 2018-Jun 2019: 72.5% (no interval published)." in profile, profile


def test_no_worst_area_controls_on_a_survey_map(page, survey_server):
    open_map(page, survey_server, WEB)
    assert page.locator("#geo-cs-cohort").count() == 0
    assert page.locator("input[name=geo-cs-list]").count() == 0
    assert page.locator("#geo-cs-zoom-worst").is_hidden()
