"""The analyst's map (folium, :mod:`geo_cs.maps.notebook`): the print map's figures on a map that
pans, drawn by Chromium from one saved HTML file with every network request refused."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from geo_cs.attribution import OGL_ATTRIBUTION
from geo_cs.maps.notebook import partnership_map
from geo_cs.store import Store
from tests.test_clients import _launch, needs_chromium, watch_console

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def glasgow(demo_db: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    """Glasgow's map saved as HTML, and the data zones with their SIMD 2020 rates as stored."""
    out = tmp_path_factory.mktemp("notebook") / "glasgow.html"
    with Store.open(demo_db, read_only=True) as store:
        partnership_map(store, "glasgow", geography="datazone2011",
                        indicator="simd2020.employment_deprived").save(str(out))
        rows = store.sql("""
            SELECT code, value, denominator FROM observations
            WHERE indicator_id = 'simd2020.employment_deprived'""").df()
    return out, rows


def test_the_saved_map_names_no_address_on_the_internet(glasgow):
    text = glasgow[0].read_text(encoding="utf-8")
    assert not re.findall(r"""(?:src|href)=["']?(?:https?:)?//""", text)
    assert "cdn." not in text and "code.jquery" not in text
    assert OGL_ATTRIBUTION in text.replace("&#x27;", "'")
    assert "Worst-performing neighbourhood" in text


@needs_chromium
def test_the_map_draws_every_area_offline_with_no_console_error(glasgow):
    from playwright.sync_api import sync_playwright

    path, rows = glasgow
    with sync_playwright() as p:
        browser = _launch(p)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 800})
            problems = watch_console(page)
            refused: list[str] = []

            def refuse(route):
                refused.append(route.request.url)
                route.abort()
            page.route(re.compile(r"^https?://"), refuse)
            page.goto(path.as_uri())
            page.wait_for_selector("path.leaflet-interactive")
            drawn = page.locator("path.leaflet-interactive").count()
            # every one of Glasgow's 746 data zones (the outlines are not interactive)
            assert drawn == 746, drawn
            legend = page.locator(".geo-cs-legend").inner_text()
            assert "Glasgow" in legend and "No data" in legend
            # a hover names the area and its value, as the table of stored rows has it
            page.locator("path.leaflet-interactive").nth(drawn // 2).hover(force=True)
            tip = page.locator(".leaflet-tooltip")
            tip.wait_for()
            said = tip.inner_text()
            code = re.search(r"S0\d{7}", said).group(0)
            stored = rows.set_index("code").loc[code]
            assert f"{100 * stored['value'] / stored['denominator']:.1f}%" in said, said
        finally:
            browser.close()
    assert not refused, refused
    assert not problems, problems


def _areas_drawn(m) -> dict[str, dict]:
    """The properties of every area the map draws, by code (the choropleth's GeoJSON)."""
    import folium

    for child in m._children.values():
        if isinstance(child, folium.GeoJson) and "shown" in child.data["features"][0]["properties"]:
            return {f["properties"]["code"]: f["properties"] for f in child.data["features"]}
    raise AssertionError("no choropleth layer")


def test_under_disclosure_control_a_withheld_area_shows_no_figure(demo_db: Path, monkeypatch):
    """GEO_CS_DISCLOSURE_CONTROL=1 reaches the analyst's map as it reaches every other output:
    a data zone of fewer than ten employment-deprived people shows no rate, its neighbours do."""
    monkeypatch.setenv("GEO_CS_DISCLOSURE_CONTROL", "1")
    with Store.open(demo_db, read_only=True) as store:
        drawn = _areas_drawn(partnership_map(store, "glasgow", geography="datazone2011",
                                             indicator="simd2020.employment_deprived"))
        rows = store.sql("SELECT code, value, denominator FROM observations "
                         "WHERE indicator_id = 'simd2020.employment_deprived'").fetchall()
    counts = {code: value for code, value, _ in rows}
    # a rate needs people to be a share of (the demo has zones of no working-age population)
    with_people = {code for code, _, denominator in rows if denominator}
    small = [code for code in drawn if counts.get(code) is not None and counts[code] < 10]
    assert small, "the demo has Glasgow data zones of fewer than ten"
    assert {drawn[code]["shown"] for code in small} == {"no data"}
    published = [code for code in drawn if counts.get(code) is not None and counts[code] >= 10]
    assert all(drawn[code]["shown"].endswith("%") for code in published)
    monkeypatch.delenv("GEO_CS_DISCLOSURE_CONTROL")
    with Store.open(demo_db, read_only=True) as store:
        open_map = _areas_drawn(partnership_map(store, "glasgow", geography="datazone2011",
                                                indicator="simd2020.employment_deprived"))
    assert all(open_map[code]["shown"].endswith("%") for code in small if code in with_people)
    assert any(code in with_people for code in small)
