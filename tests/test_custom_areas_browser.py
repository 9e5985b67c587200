"""Your own area and a shared view (issue 34, points 1 and 3), in Chromium at desktop and phone
sizes against the service on the demo database; every test fails on a console error.

A staff member draws their estate, picks areas by click or tap, pastes or uploads codes, and
gets the area's own page; the browser writes the same id as ``geo_cs.custom_areas``; a copied
link opened elsewhere shows what its sender saw (period, threshold, zoom, centre, selected area).
GEO_CS_WRITE_SCREENSHOTS=1 writes docs/screenshots/custom-area-*.png.
"""

from __future__ import annotations

import json
import random

import pytest

from geo_cs.custom_areas import area_id, parse_area_id
from tests import test_clients, test_map_staff
from tests.test_clients import needs_chromium, tiles_drawn, watch_console
from tests.test_map_staff import SIZES, config, drawn_frames, open_map, tap_or_click, write_screenshot

# the staff map's fixtures: a demo service (or GEO_CS_TEST_SERVER), Chromium, a page per size
server, logged_server = test_clients.server, test_clients.logged_server
browser, page, staff_server = test_map_staff.browser, test_map_staff.page, test_map_staff.staff_server

pytestmark = [needs_chromium, pytest.mark.slow]


def map_pixel(page, lon: float, lat: float) -> tuple[float, float]:
    """Where a lon/lat point is on the screen."""
    return tuple(page.evaluate("""([lon, lat]) => {
        const p = geoCs.map.latLngToContainerPoint([lat, lon]);
        const m = geoCs.map.getContainer().getBoundingClientRect();
        return [m.left + p.x, m.top + p.y];
    }""", [lon, lat]))


def open_tools(page) -> None:
    page.locator("#geo-cs-make summary").click()
    page.locator("#geo-cs-make-show").wait_for()


def show_area(page, name: str) -> dict:
    page.fill("#geo-cs-area-name", name)
    with page.expect_navigation():
        page.locator("#geo-cs-make-show").click()
    tiles_drawn(page)
    return config(page)


def test_the_browser_writes_the_id_python_writes(page, staff_server):
    open_map(page, staff_server)
    rng = random.Random(34)
    for _ in range(20):
        codes = [f"{rng.choice(['S01', 'E01', 'W01'])}{rng.randrange(0, 20000):06d}"
                 for _ in range(rng.randrange(1, 60))]
        name = rng.choice(["", "Govan estate", "Caerau & Ely (Cardiff)", "Ŵyn – ‘quoted’ ✓"])
        within = rng.choice(["", "glasgow"])
        against = bool(within) and rng.random() < 0.5
        mine = page.evaluate("([c, n, w, a]) => geoCs.encodeArea('datazone2011', c, n, w, a)",
                             [codes, name, within, against])
        assert mine == area_id("datazone2011", codes, name=name, within=within, against_within=against)


def test_drawing_round_an_estate_gives_it_the_whole_page(page, staff_server):
    open_map(page, staff_server)
    glasgow = config(page)
    # a shape round a block of neighbourhoods: the box of the ten points around the map's centre
    centre = page.evaluate("() => { const c = geoCs.map.getCenter(); return [c.lng, c.lat]; }")
    points = sorted(glasgow["areas"]["point"], key=lambda p: (p[0] - centre[0]) ** 2 + (p[1] - centre[1]) ** 2)[:10]
    west, east = min(p[0] for p in points) - 0.001, max(p[0] for p in points) + 0.001
    south, north = min(p[1] for p in points) - 0.001, max(p[1] for p in points) + 0.001
    # clear of the map's controls (top left; large on a phone) so that every corner is on the map
    page.evaluate("""(b) => geoCs.map.fitBounds([[b[1], b[0]], [b[3], b[2]]],
                                                {animate: false, paddingTopLeft: [200, 200], paddingBottomRight: [40, 60]})""",
                  [west, south, east, north])
    open_tools(page)
    page.locator("#geo-cs-draw").click()
    assert page.locator("#geo-cs-draw").get_attribute("aria-pressed") == "true"
    for lon, lat in ((west, south), (east, south), (east, north), (west, north)):
        tap_or_click(page, *map_pixel(page, lon, lat))
    page.locator("#geo-cs-pick-done").click()      # the map's own "Done": in reach on a phone
    inside = [c for c, p in zip(glasgow["areas"]["code"], glasgow["areas"]["point"], strict=True)
              if west <= p[0] <= east and south <= p[1] <= north]
    assert page.locator("#geo-cs-make-count").text_content() == f"{len(inside)} neighbourhoods picked."
    assert len(inside) >= 10
    area = show_area(page, "Drawn estate")
    assert sorted(area["codes"]) == sorted(inside)
    assert area["partnershipName"] == "Drawn estate"
    assert "rest of Drawn estate" in page.locator("#geo-cs-sentence").text_content()
    assert page.locator("#geo-cs-summary th").first.text_content() == "Drawn estate"
    assert page.locator("#geo-cs-area-table tr").count() > 1          # the ranked list
    assert page.locator("#geo-cs-chart-img").get_attribute("src")      # the gap chart
    decoded = parse_area_id(page.url.split("/maps/")[1].split("?")[0])
    assert decoded.within == "glasgow" and decoded.name == "Drawn estate"
    # against the rest of Glasgow: another address, said in words
    with page.expect_navigation():
        page.get_by_role("link", name="the rest of Glasgow").click()
    tiles_drawn(page)
    assert "of Drawn estate and the rest of Glasgow" in page.locator("#geo-cs-sentence").text_content()
    assert page.locator("#geo-cs-summary th").first.text_content() == "Glasgow"
    write_screenshot(page, f"custom-area-{page.size}.png")
    # and beside the whole city: the comparison page, started with both
    link = page.locator("#geo-cs-compare-link")
    assert link.text_content() == "Compare it with Glasgow and other places"
    with page.expect_navigation():
        link.click()
    words = page.locator("body").text_content()
    assert "Drawn estate" in words and "Glasgow" in words
    assert "a real difference" in words or "within noise" in words


def test_picking_adds_and_removes_areas_with_a_click_or_a_tap(page, staff_server):
    open_map(page, staff_server)
    glasgow = config(page)
    worst = [i for i, w in enumerate(glasgow["areas"]["worst"]) if w][:3]
    open_tools(page)
    page.locator("#geo-cs-pick").click()
    picked = []
    for i in worst:
        b = glasgow["areas"]["bounds"][i]
        page.evaluate("(b) => geoCs.map.fitBounds([[b[1], b[0]], [b[3], b[2]]], {animate: false, padding: [80, 80]})", b)
        tiles_drawn(page)
        drawn_frames(page)
        lon, lat = glasgow["areas"]["point"][i]
        tap_or_click(page, *map_pixel(page, lon, lat))
        picked.append(glasgow["areas"]["code"][i])
        assert page.evaluate("document.body.dataset.picked") == str(len(picked))
    assert page.locator("#geo-cs-profile").is_hidden()         # picking is not selecting
    tap_or_click(page, *map_pixel(page, *glasgow["areas"]["point"][worst[-1]]))      # again: out
    assert page.evaluate("document.body.dataset.picked") == "2"
    page.locator("#geo-cs-pick-done").click()
    area = show_area(page, "Picked")
    assert sorted(area["codes"]) == sorted(picked[:2])


def test_pasted_or_uploaded_codes_make_an_area(page, staff_server, tmp_path):
    open_map(page, staff_server)
    codes = config(page)["areas"]["code"][:5]
    open_tools(page)
    # a pasted list with a district code in it: left out, and said
    page.fill("#geo-cs-codes", f"{codes[0]}, {codes[1]}\nS12000049")
    page.locator("#geo-cs-codes-add").click()
    assert "left out" in page.locator("#geo-cs-make-problem").text_content()
    upload = tmp_path / "estate.csv"
    upload.write_text("fid,DataZone,Name\n" + "".join(f"{i},{c},x\n" for i, c in enumerate(codes[2:])))
    page.set_input_files("#geo-cs-codes-file", str(upload))
    page.wait_for_function("() => document.body.dataset.picked === '5'")
    area = show_area(page, "Listed")
    assert sorted(area["codes"]) == sorted(codes)
    # codes of another kind only: refused in words, nothing added
    page.locator("#geo-cs-make summary").click()
    page.locator("#geo-cs-make-clear").click()
    page.fill("#geo-cs-codes", "E08000035 E06000001")
    page.locator("#geo-cs-codes-add").click()
    assert "None of those codes" in page.locator("#geo-cs-make-problem").text_content()
    assert page.evaluate("document.body.dataset.picked") == "0"


def test_a_copied_link_shows_the_sender_exactly_what_they_saw(page, browser, staff_server):
    """Period, threshold, zoom, centre and the selected area go into the link; a colleague who
    opens it (another browser context) sees the same."""
    open_map(page, staff_server)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=staff_server)
    slider = page.locator("#geo-cs-period")
    slider.evaluate("(s) => { s.value = '1'; s.dispatchEvent(new Event('input')); }")
    tiles_drawn(page)
    page.fill("#geo-cs-threshold", "30")
    page.locator("#geo-cs-threshold").dispatch_event("change")
    page.wait_for_function("() => new URL(location.href).searchParams.get('threshold') === '30'")
    glasgow = config(page)
    i = 5
    page.evaluate("(b) => geoCs.map.fitBounds([[b[1], b[0]], [b[3], b[2]]], {animate: false, padding: [80, 80]})",
                  glasgow["areas"]["bounds"][i])
    tiles_drawn(page)
    drawn_frames(page)
    tap_or_click(page, *map_pixel(page, *glasgow["areas"]["point"][i]))
    page.locator("#geo-cs-profile").wait_for()
    selected = page.evaluate("document.body.dataset.selected")
    page.locator("#geo-cs-copy-link").click()
    page.wait_for_function("() => document.getElementById('geo-cs-copy-status').textContent !== ''")
    link = page.evaluate("() => navigator.clipboard.readText()")
    seen = {
        "period": page.locator("#geo-cs-period-label").text_content(),
        "sentence": page.locator("#geo-cs-sentence").text_content(),
        "zoom": page.evaluate("geoCs.map.getZoom()"),
        "centre": page.evaluate("(() => { const c = geoCs.map.getCenter(); return [c.lat, c.lng]; })()"),
        "summary": page.locator("#geo-cs-summary").text_content(),
    }
    assert {"z", "lat", "lon", "select", "threshold", "period"} <= set(link.split("?")[1].replace("=", "&").split("&"))
    colleague = browser.new_context(viewport=SIZES[page.size], is_mobile=page.size == "phone",
                                    has_touch=page.size == "phone")
    other = colleague.new_page()
    problems = watch_console(other)
    other.goto(link)
    tiles_drawn(other)
    assert other.locator("#geo-cs-period-label").text_content() == seen["period"]
    assert other.locator("#geo-cs-sentence").text_content() == seen["sentence"]
    assert other.evaluate("geoCs.map.getZoom()") == pytest.approx(seen["zoom"], abs=0.01)
    centre = other.evaluate("(() => { const c = geoCs.map.getCenter(); return [c.lat, c.lng]; })()")
    assert centre == pytest.approx(seen["centre"], abs=1e-4)
    assert other.evaluate("document.body.dataset.selected") == selected
    assert other.locator("#geo-cs-profile").is_visible()
    assert other.locator("#geo-cs-summary").text_content() == seen["summary"]
    assert json.loads(other.locator("#geo-cs-config").text_content())["threshold"] == 30
    colleague.close()
    assert not problems, problems
