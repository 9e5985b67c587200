"""Names from data are never code: an injection corpus through every output people open.

Area names come from boundary files and partnership names from a YAML file that staff edit; either
can hold ``</script><img src=x onerror=...>``. Here they are put in the way users put them — a
boundary file ingested with the real CLI, a partnership file in a boundaries folder — and then
every page is opened in Chromium: the partnership index, the map page with its panel, tooltips and
layer control, an error page, the static site export and the HTML report. The test fails on any
script that runs (a dialog, or a ``window.__pwned`` mark), on any console error (a blocked
script is one: the Content-Security-Policy reports it), and unless the names show as their own
characters. The CSVs are read back to check that no cell can run as a spreadsheet formula.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import httpx
import pandas as pd
import pytest
from playwright.sync_api import expect

from tests.conftest import REPO
from tests.servers import running_service, static_host
from tests.test_clients import _launch, needs_chromium, tiles_drawn, watch_console

#: What a hostile or careless file can carry. Each would set window.__pwned (or open a dialog)
#: if it ever ran.
CORPUS = [
    '</script><img src=x onerror="window.__pwned=1">',
    '"><svg onload="window.__pwned=2">',
    "<script>window.__pwned=3</script>",
    "';window.__pwned=4;'",
    "--><img src=x onerror=alert(5)><!--",
    '=HYPERLINK("http://evil.example/","click me")',
    "+SUM(1,2)",
    "@cmd",
    "{{ 7*7 }} ${7*7}",
    "Café & Bar <b>bold</b> \u2028 end",
]
PARTNERSHIP_NAME = '</script><img src=x onerror="window.__pwned=9">Glasgow & "friends"'
GEO_CS = [sys.executable, "-m", "geo_cs.cli"]


@pytest.fixture(scope="module")
def hostile(demo_db, tmp_path_factory) -> dict[str, Path]:
    """A copy of the demo database whose data zones 2011 were re-ingested from a file with the
    corpus as their names, and a boundaries folder whose Glasgow is named PARTNERSHIP_NAME."""
    root = tmp_path_factory.mktemp("hostile")
    db = root / "hostile.duckdb"
    shutil.copy(demo_db, db)
    zones = gpd.read_parquet(REPO / "boundaries" / "demo" / "boundaries" / "datazone2011.parquet")
    zones["dz11_name"] = zones["dz11_code"].map(hostile_names())
    source = root / "datazone2011_hostile.parquet"
    zones.to_parquet(source)
    result = subprocess.run([*GEO_CS, "--db", str(db), "-q", "ingest", "boundaries", str(source),
                             "--set", "datazone2011", "--code-col", "dz11_code", "--name-col", "dz11_name"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    boundaries = root / "boundaries"
    shutil.copytree(REPO / "boundaries", boundaries, ignore=shutil.ignore_patterns("demo"))
    yaml_file = boundaries / "partnerships" / "city_strategy_partnerships.yaml"
    text = yaml_file.read_text(encoding="utf-8")
    quoted = PARTNERSHIP_NAME.replace("'", "''")
    assert "\n    name: Glasgow\n" in text
    yaml_file.write_text(text.replace("\n    name: Glasgow\n", f"\n    name: '{quoted}'\n"), encoding="utf-8")
    return {"db": db, "boundaries": boundaries, "root": root}


def hostile_names() -> dict[str, str]:
    """Each data zone 2011's code and the corpus name it is given, in turn."""
    codes = pd.read_parquet(REPO / "boundaries" / "demo" / "boundaries" / "datazone2011.parquet",
                            columns=["dz11_code"])["dz11_code"]
    return {code: CORPUS[i % len(CORPUS)] for i, code in enumerate(codes)}


def _env(hostile) -> dict[str, str]:
    return {**os.environ, "GEO_CS_DB": str(hostile["db"]), "GEO_CS_BOUNDARIES_DIR": str(hostile["boundaries"])}


@pytest.fixture(scope="module")
def server(hostile):
    with running_service(_env(hostile), hostile["root"] / "uvicorn.log") as base:
        yield base


class Guard:
    """A browser page watched for anything a name could make run."""

    def __init__(self, page) -> None:
        self.page = page
        self.dialogs: list[str] = []
        self.console = watch_console(page)
        page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))

    def check(self, where: str) -> None:
        pwned = self.page.evaluate("window.__pwned === undefined ? null : String(window.__pwned)")
        assert pwned is None, f"{where}: a script from a name ran (window.__pwned={pwned})"
        assert not self.dialogs, f"{where}: a dialog opened: {self.dialogs}"
        assert not self.console, f"{where}: {self.console}"


def _hover_areas(page, points: int = 12) -> list[str]:
    """Tooltips of the areas under a grid of points across the map: each point over an area (by
    the page's own hit test) is hovered and its tooltip must open, naming that area by its code
    and its hostile name as its own characters. Fails unless ``points`` areas were hovered."""
    box = page.locator("#geo-cs-map").bounding_box()
    names = hostile_names()
    grid = [(box["x"] + box["width"] * (0.25 + 0.5 * i / 5), box["y"] + box["height"] * (0.3 + 0.4 * j / 4))
            for j in range(5) for i in range(6)]
    seen: list[str] = []
    tip = page.locator(".leaflet-tooltip")
    for x, y in grid:
        code = page.evaluate("""([x, y]) => {
            const m = geoCs.map.getContainer().getBoundingClientRect();
            const p = geoCs.areaAt(geoCs.map.containerPointToLatLng([x - m.left, y - m.top]));
            return p ? p.code : null;
        }""", [x, y])
        if code is None:        # over the river or beyond the city: no area to name
            continue
        page.mouse.move(x - 10, y - 10)
        page.mouse.move(x, y, steps=3)
        expect(tip).to_contain_text(code, timeout=10_000)
        # the name as its characters: the raw text of the tooltip holds it whole
        assert names[code] in tip.text_content(), (code, names[code], tip.text_content())
        seen.append(tip.inner_text())
        if len(seen) == points:
            return seen
    raise AssertionError(f"only {len(seen)} of the grid's points were over an area: {seen}")


@needs_chromium
def test_names_show_as_text_on_every_served_page(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = _launch(p)
        page = browser.new_page(viewport={"width": 1400, "height": 850})
        guard = Guard(page)

        page.goto(f"{server}/maps/")
        assert PARTNERSHIP_NAME in page.locator("body").inner_text()
        guard.check("the partnership index")

        page.goto(f"{server}/maps/glasgow")
        tiles_drawn(page)
        assert page.locator("#geo-cs-panel h1").inner_text() == PARTNERSHIP_NAME
        assert PARTNERSHIP_NAME in page.locator("#geo-cs-chart-img").get_attribute("alt")
        tooltips = _hover_areas(page)
        # at least half the corpus is among the 12 names hovered (the names go round in turn)
        shown = {name for name in CORPUS if any(name.strip()[:12] in t for t in tooltips)}
        assert len(shown) >= len(CORPUS) // 2, (shown, tooltips)
        # the tooltips' "gap with" line carries the partnership's name, as text
        assert any(f"Gap with {PARTNERSHIP_NAME}" in t for t in tooltips), tooltips
        page.locator(".leaflet-control-layers").hover()
        assert f"{PARTNERSHIP_NAME} (outline)" in page.locator(".leaflet-control-layers").inner_text()
        assert PARTNERSHIP_NAME in page.locator("#geo-cs-sentence").inner_text()
        # the ranked list and an area's profile
        page.check("input[name=geo-cs-list][value=all]")
        listed = page.locator("#geo-cs-area-table").inner_text()
        assert CORPUS[0] in listed and CORPUS[2] in listed and "{{ 7*7 }}" in listed
        page.locator(".geo-cs-area-link", has_text="window.__pwned=1").first.click()
        assert CORPUS[0] in page.locator("#geo-cs-profile h2").inner_text()
        # search for a hostile name: the results are text too
        page.fill("#geo-cs-search", "onerror")
        page.press("#geo-cs-search", "Enter")
        page.wait_for_selector('body[data-search="done"]', state="attached")
        assert "onerror" in page.locator("#geo-cs-search-results").inner_text()
        guard.check("the map page")

        page.goto(f"{server}/maps/glasgow?geography=datazone2011&indicator=" + "%3Cimg%20src%3Dx%20onerror%3Dalert(7)%3E")
        # the person reads a sentence about their task; the hostile value they sent is shown,
        # as text, only in the technical detail folded under it
        assert "has no map of that measure" in page.locator("[role=alert]").inner_text()
        page.locator("details.geo-cs-meta summary").click()
        assert "<img src=x onerror=alert(7)>" in page.locator("details.geo-cs-meta").inner_text()
        assert page.locator("details.geo-cs-meta img").count() == 0
        # the 404 itself is the one console line such a page leaves
        guard.console[:] = [c for c in guard.console if "status of 404" not in c]
        guard.check("an error page")
        browser.close()


def test_csv_from_the_service_cannot_run_as_a_formula(server):
    response = httpx.get(f"{server}/collections/datazone2011/items",
                         params={"f": "csv", "partnership": "glasgow", "limit": 1000,
                                 "indicator": "employment_deprived"}, timeout=60)
    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(response.text)))
    names = {row["name"] for row in rows}
    assert "'" + CORPUS[5] in names and "'+SUM(1,2)" in names and "'@cmd" in names
    assert not [n for n in names if n.startswith(("=", "+", "-", "@"))]
    # numbers stay numbers: a negative value would not be quoted (values here are all positive)
    assert all(not row["value"].startswith("'") for row in rows)
    partnerships = httpx.get(f"{server}/collections/partnerships/items", params={"f": "csv"}, timeout=60)
    assert partnerships.status_code == 200
    names = {row["id"]: row["name"] for row in csv.DictReader(io.StringIO(partnerships.text))}
    assert names["glasgow"] == PARTNERSHIP_NAME


@pytest.mark.slow
@needs_chromium
def test_names_show_as_text_in_the_static_site_and_the_html_report(hostile):
    from playwright.sync_api import sync_playwright

    site, reports = hostile["root"] / "site", hostile["root"] / "reports"
    for args in (["export", "site", "-p", "glasgow", "-o", str(site)],
                 ["export", "report", "-p", "glasgow", "-o", str(reports)]):
        result = subprocess.run([*GEO_CS, "--db", str(hostile["db"]), "-q", *args], env=_env(hostile),
                                capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr
    html = (site / "index.html").read_text(encoding="utf-8")
    assert 'http-equiv="Content-Security-Policy"' in html and "unsafe-inline" not in html
    site_csv = next((site / "data").glob("*.csv")).read_text(encoding="utf-8")
    assert "'" + CORPUS[5].replace('"', '""') in site_csv

    with static_host(hostile["root"]) as host, sync_playwright() as p:
        browser = _launch(p)
        page = browser.new_page(viewport={"width": 1400, "height": 850})
        guard = Guard(page)
        page.goto(f"{host}/site/index.html")
        tiles_drawn(page)
        assert page.locator("#geo-cs-panel h1").inner_text() == PARTNERSHIP_NAME
        _hover_areas(page, points=6)
        guard.check("the static site")

        page.goto(f"{host}/reports/glasgow.html")
        assert page.locator("h1").inner_text() == f"{PARTNERSHIP_NAME}: partnership profile"
        assert PARTNERSHIP_NAME in page.title()
        guard.check("the HTML report")
        browser.close()

