"""The staff map on a desktop (1366×768) and a phone (390×844), in Chromium against the service on
the demo database (issue 28, the page's points): a click or tap selects an area, the answer shows
on a phone's arrival, the panel in the order staff ask, the worst areas visible and listed
consistently, outside areas neutral, labels that never collide, a refused request said in words,
the printed page, and no serious accessibility violation.

Every test runs at both sizes and fails on any console error or uncaught exception.
GEO_CS_TEST_SERVER=http://127.0.0.1:PORT runs them against a service already running on the
demo database (no build); GEO_CS_WRITE_SCREENSHOTS=1 writes the pictures into docs/screenshots/.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect

from tests.test_clients import (  # noqa: F401 (the service's fixtures)
    _launch,
    logged_server,
    needs_chromium,
    server,
    tiles_drawn,
    watch_console,
)

AXE = "/static/vendor/axe-core@4.14.1/axe.min.js"
SCREENSHOTS = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
SIZES = {"desktop": {"width": 1366, "height": 768}, "phone": {"width": 390, "height": 844}}
MONTHLY = "/maps/nottingham?geography=wpc2010&indicator=claimants_monthly"
# constituencies: every one in Great Britain has a value, so the partnership's neighbours are drawn
CONSTITUENCIES = "/maps/nottingham?geography=wpc2010&indicator=claimants"

pytestmark = [needs_chromium, pytest.mark.slow]


@pytest.fixture(scope="module")
def staff_server(request) -> str:
    """The service's base URL: one already running (GEO_CS_TEST_SERVER), else the suite's own
    on the demo database."""
    return os.environ.get("GEO_CS_TEST_SERVER") or request.getfixturevalue("server")


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = _launch(p)
        yield b
        b.close()


@pytest.fixture(params=list(SIZES))
def page(request, browser):
    """A page at each size; the phone has touch and a phone's pixel ratio."""
    phone = request.param == "phone"
    context = browser.new_context(viewport=SIZES[request.param], is_mobile=phone, has_touch=phone,
                                  device_scale_factor=2 if phone else 1, accept_downloads=True)
    page = context.new_page()
    page.size = request.param
    page.console_problems = watch_console(page)
    yield page
    problems = page.console_problems
    context.close()
    assert not problems, problems


def open_map(page, base: str, path: str = "/maps/glasgow") -> None:
    page.goto(f"{base}{path}")
    tiles_drawn(page)
    drawn_frames(page)


def drawn_frames(page) -> None:
    """Wait until the page's fonts are loaded and two more frames are drawn: names and ticks are
    measured and placed once the text has its font (a condition, not a fixed time)."""
    page.evaluate("""() => document.fonts.ready.then(() => new Promise(
        done => requestAnimationFrame(() => requestAnimationFrame(done))))""")


def view_settled(page, condition: str, arg: object = None) -> None:
    """Wait until ``condition`` (a function of ``arg``) holds of the map and no zoom or pan
    animation runs: Leaflet sets the new zoom as its animation starts."""
    page.wait_for_function(f"""a => ({condition})(a) && !geoCs.map._animatingZoom
                                  && !(geoCs.map._panAnim && geoCs.map._panAnim._inProgress)""",
                           arg=arg, timeout=10_000)


def config(page) -> dict:
    return json.loads(page.locator("#geo-cs-config").text_content())


def in_view(page, selector: str) -> bool:
    """Whether the element is wholly inside the window and on top at its centre (not covered,
    not scrolled out of its panel)."""
    return page.evaluate("""(sel) => {
        const e = document.querySelector(sel);
        if (!e || e.offsetParent === null) { return false; }
        const r = e.getBoundingClientRect();
        if (r.top < 0 || r.left < 0 || r.bottom > innerHeight + 0.5 || r.right > innerWidth + 0.5) { return false; }
        const panel = e.closest('#geo-cs-panel');
        if (panel) {
            const p = panel.getBoundingClientRect();
            if (r.top < p.top - 0.5 || r.bottom > p.bottom + 0.5) { return false; }
        }
        const top = document.elementFromPoint(r.left + r.width / 2, r.top + Math.min(r.height / 2, 8));
        return top !== null && (e === top || e.contains(top));
    }""", selector)


def map_point_inside(page) -> tuple[float, float]:
    """A point of the map over one of the partnership's areas, in page pixels: the centre of the
    first area in the ranked list (a worst one, so inside)."""
    return tuple(page.evaluate("""() => {
        const c = JSON.parse(document.getElementById('geo-cs-config').textContent);
        const i = c.areas.worst.findIndex(Boolean);
        const b = c.areas.bounds[i];
        const p = geoCs.map.latLngToContainerPoint([(b[1] + b[3]) / 2, (b[0] + b[2]) / 2]);
        const m = geoCs.map.getContainer().getBoundingClientRect();
        return [m.left + p.x, m.top + p.y];
    }"""))


def tap_or_click(page, x: float, y: float) -> None:
    if page.size == "phone":
        page.touchscreen.tap(x, y)
    else:
        page.mouse.click(x, y)


def select_area_on_the_map(page) -> str:
    """Click (desktop) or tap (phone) an area; its code, from the profile that opens."""
    config_ = config(page)
    i = next(k for k, w in enumerate(config_["areas"]["worst"]) if w)
    bounds = config_["areas"]["bounds"][i]
    # that area filling the map, so the click lands on it whatever Leaflet's hit tolerance
    page.evaluate("(b) => geoCs.map.fitBounds([[b[1], b[0]], [b[3], b[2]]], {animate: false, padding: [60, 60]})",
                  bounds)
    tiles_drawn(page)
    drawn_frames(page)
    x, y = map_point_inside(page)
    tap_or_click(page, x, y)
    page.locator("#geo-cs-profile").wait_for()
    return page.evaluate("document.body.dataset.selected")


# -- 1. a click or a tap selects an area ------------------------------------------------------------

def test_a_click_or_tap_selects_an_area_and_escape_or_close_clears_it(page, staff_server):
    open_map(page, staff_server)
    code = select_area_on_the_map(page)
    areas = config(page)["areas"]
    assert code in areas["code"], code
    profile = page.locator("#geo-cs-profile")
    text = profile.inner_text()
    assert code in text and "Rank in partnership" in text, text
    # outlined on the map, in view in the panel, and keyboard focus on it
    assert page.evaluate("document.body.dataset.highlighted") == "1"
    assert page.evaluate("document.activeElement === document.querySelector('#geo-cs-profile h2')")
    assert in_view(page, "#geo-cs-profile h2"), "the profile's heading is not in view"
    # Escape clears it, focus back on the map
    page.keyboard.press("Escape")
    assert profile.is_hidden()
    assert page.evaluate("document.body.dataset.highlighted") == "0"
    assert page.evaluate("document.activeElement === document.getElementById('geo-cs-map')")
    # and so does its close button
    select_area_on_the_map(page)
    page.locator("#geo-cs-profile .geo-cs-close").click()
    assert profile.is_hidden() and page.evaluate("document.body.dataset.highlighted") == "0"


def test_an_area_outside_the_partnership_says_so_when_tapped(page, staff_server):
    open_map(page, staff_server, CONSTITUENCIES)
    # a point 25 px west of the partnership's box, half way down it: in Derbyshire
    x, y = page.evaluate("""() => {
        const c = JSON.parse(document.getElementById('geo-cs-config').textContent);
        const p = geoCs.map.latLngToContainerPoint([(c.bounds[1] + c.bounds[3]) / 2, c.bounds[0]]);
        const m = geoCs.map.getContainer().getBoundingClientRect();
        return [m.left + p.x - 25, m.top + p.y];
    }""")
    tap_or_click(page, x, y)
    page.locator("#geo-cs-profile").wait_for()
    text = page.locator("#geo-cs-profile").inner_text()
    assert "Outside Nottingham and Nottinghamshire" in text, text
    assert page.evaluate("document.body.dataset.selected") not in config(page)["codes"]


def test_an_area_the_dashed_outline_crosses_is_not_called_outside_the_partnership(page, staff_server):
    """Rhyl's outline follows its own boundary, which crosses a neighbourhood of its neighbours:
    tapped inside the outline, that area is not said to be outside Rhyl, but what it is."""
    open_map(page, staff_server, "/maps/rhyl")
    point = page.evaluate("""() => {
        const c = JSON.parse(document.getElementById('geo-cs-config').textContent);
        const codes = new Set(c.codes);
        const m = geoCs.map.getContainer().getBoundingClientRect();
        const size = geoCs.map.getSize();
        for (let y = 60; y < size.y - 30; y += 6) {
            for (let x = 140; x < size.x - 60; x += 6) {
                const at = geoCs.map.containerPointToLatLng([x, y]);
                const p = geoCs.areaAt(at);
                if (p && !codes.has(p.code) && geoCs.insideOutline(at.lng, at.lat)
                        && document.elementFromPoint(m.left + x, m.top + y) !== null
                        && document.elementFromPoint(m.left + x, m.top + y).closest('#geo-cs-map')) {
                    return [m.left + x, m.top + y, p.code];
                }
            }
        }
        return null;
    }""")
    assert point is not None, "no grey area inside Rhyl's outline"
    tap_or_click(page, point[0], point[1])
    page.locator("#geo-cs-profile").wait_for()
    text = page.locator("#geo-cs-profile").inner_text()
    assert point[2] in text and "Outside Rhyl" not in text and "dashed outline" in text, text


def test_the_tooltip_is_readable_near_the_maps_edge(page, staff_server):
    if page.size == "phone":
        pytest.skip("a phone has no hover: a tap opens the profile (tested above)")
    open_map(page, staff_server)
    box = page.locator("#geo-cs-map").bounding_box()
    widths = []
    for dx in (box["width"] / 2, box["width"] * 0.72, box["width"] * 0.8):
        x, y = box["x"] + dx, box["y"] + box["height"] / 2
        code = page.evaluate("""([x, y]) => {
            const m = geoCs.map.getContainer().getBoundingClientRect();
            const p = geoCs.areaAt(geoCs.map.containerPointToLatLng([x - m.left, y - m.top]));
            return p ? p.code : null;
        }""", [x, y])
        assert code, f"no area at {dx:.0f} px across the map"
        page.mouse.move(x - 10, y)
        page.mouse.move(x, y, steps=3)
        tip = page.locator(".leaflet-tooltip")
        expect(tip).to_contain_text(code, timeout=10_000)
        tb = tip.bounding_box()
        widths.append(tb["width"])
        # no word on a line of its own: the box is as wide as the words need, up to 320 px
        assert tb["width"] >= 220, (dx, tb)
        assert tb["x"] >= box["x"] - 1 and tb["x"] + tb["width"] <= box["x"] + box["width"] + 1, tb
    assert min(widths) >= 220, widths


# -- 4. the answer on a phone's arrival; the map fits the partnership ----------------------------------

def test_the_answer_and_key_figures_show_on_arrival_and_the_map_fits(page, staff_server):
    open_map(page, staff_server)
    assert page.locator("#geo-cs-panel-body").is_visible()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), "the page spills sideways"
    assert in_view(page, "#geo-cs-sentence"), "the answer is not in view on arrival"
    assert page.locator("#geo-cs-sentence").inner_text().startswith("The gap between")
    for row in range(1, 5):   # partnership, worst, rest, gap
        assert in_view(page, f"#geo-cs-summary tr:nth-child({row})"), f"key figure {row} not in view"
    # the partnership fills the map that shows, and all of it is in view
    fit = page.evaluate("""() => {
        const c = JSON.parse(document.getElementById('geo-cs-config').textContent);
        const m = geoCs.map.getContainer().getBoundingClientRect();
        const panel = document.getElementById('geo-cs-panel').getBoundingClientRect();
        const a = geoCs.map.latLngToContainerPoint([c.bounds[3], c.bounds[0]]);
        const b = geoCs.map.latLngToContainerPoint([c.bounds[1], c.bounds[2]]);
        return {left: m.left + a.x, top: m.top + a.y, right: m.left + b.x, bottom: m.top + b.y,
                mapLeft: m.left, mapTop: m.top, mapRight: Math.min(m.right, panel.left < m.right && panel.top < m.bottom - 1 && panel.left > m.left ? panel.left : m.right),
                mapBottom: Math.min(m.bottom, panel.top > m.top ? panel.top : m.bottom)};
    }""")
    assert fit["left"] >= fit["mapLeft"] - 1 and fit["right"] <= fit["mapRight"] + 1, fit
    assert fit["top"] >= fit["mapTop"] - 1 and fit["bottom"] <= fit["mapBottom"] + 1, fit
    share = max((fit["right"] - fit["left"]) / (fit["mapRight"] - fit["mapLeft"]),
                (fit["bottom"] - fit["top"]) / (fit["mapBottom"] - fit["mapTop"]))
    assert share >= 0.8, (share, fit)
    # the map's credits take one line and leave the scale bar clear
    credits = page.locator(".leaflet-control-attribution").bounding_box()
    scale = page.locator(".leaflet-control-scale").bounding_box()
    assert credits["height"] <= 22, credits
    assert credits["x"] >= scale["x"] + scale["width"] or credits["y"] >= scale["y"] + scale["height"], (credits, scale)
    write_screenshot(page, f"staff-map-{page.size}.png")


def write_screenshot(page, name: str) -> None:
    if os.environ.get("GEO_CS_WRITE_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        tiles_drawn(page)
        drawn_frames(page)
        page.screenshot(path=str(SCREENSHOTS / name))


# -- 5. the panel in the order staff ask; a skip link -------------------------------------------------

def test_the_panel_puts_first_what_staff_ask_first(page, staff_server):
    open_map(page, staff_server)
    # the first Tab stop is the skip link, which takes focus to search
    page.keyboard.press("Tab")
    skip = page.locator(".geo-cs-skip")
    assert page.evaluate("document.activeElement.className") == "geo-cs-skip"
    assert skip.is_visible() and in_view(page, ".geo-cs-skip")
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.activeElement.id === 'geo-cs-search'", timeout=5_000)
    # without it, search is still among the first Tab stops
    open_map(page, staff_server)
    stops = []
    for _ in range(12):
        page.keyboard.press("Tab")
        stops.append(page.evaluate("document.activeElement.id || document.activeElement.className"))
        if stops[-1] == "geo-cs-search":
            break
    assert stops[-1] == "geo-cs-search" and len(stops) <= 5, stops
    order = page.evaluate("""() => ['#geo-cs-search', '#geo-cs-sentence', '#geo-cs-summary', '#geo-cs-legend',
            '#geo-cs-period', '#geo-cs-view', '#geo-cs-threshold', 'select[name=scheme]']
        .map(s => document.querySelector(s))
        .map((e, i, all) => i === 0 || (all[i - 1].compareDocumentPosition(e) & Node.DOCUMENT_POSITION_FOLLOWING) ? 1 : 0)""")
    assert order == [1] * 8, order
    # the class settings are folded under "Map style"
    style = page.locator("details#geo-cs-style")
    assert style.locator("summary").inner_text() == "Map style"
    assert not style.evaluate("d => d.open") and page.locator("select[name=scheme]").is_hidden()
    style.locator("summary").click()
    assert page.locator("select[name=scheme]").is_visible()
    # the legend starts within the first screen on a desktop
    if page.size == "desktop":
        assert page.locator("#geo-cs-legend").bounding_box()["y"] < SIZES["desktop"]["height"] - 60


# -- 9. the worst areas visible; zoom to them; the list ranked consistently -----------------------------

def test_worst_areas_are_outlined_with_a_halo_and_zoom_to_worst_shows_them_all(page, staff_server):
    open_map(page, staff_server, "/maps/nottingham")
    # a dark line over a light halo, drawn over the colours: one of each for every worst area in view
    lines = page.locator(".geo-cs-hatch path[stroke='#111111']")
    halos = page.locator(".geo-cs-hatch path[stroke='#ffffff']")
    assert lines.count() > 0 and halos.count() == lines.count()
    assert float(halos.first.get_attribute("stroke-width")) >= 2 * float(lines.first.get_attribute("stroke-width"))
    # the 14 worst are small: the button shows all of them, as large as they fit
    cfg = config(page)
    worst = [b for b, w in zip(cfg["areas"]["bounds"], cfg["areas"]["worst"], strict=True) if w]
    assert len(worst) >= 2
    zoom = page.evaluate("geoCs.map.getZoom()")
    page.get_by_role("button", name="Zoom to the worst-performing").click()
    view_settled(page, "z => geoCs.map.getZoom() > z + 0.5", zoom)
    inside = page.evaluate("""(boxes) => boxes.every(b => geoCs.map.getBounds().pad(0.001).contains(
        L.latLngBounds([[b[1], b[0]], [b[3], b[2]]])))""", worst)
    assert inside
    tiles_drawn(page)
    page.get_by_role("button", name="Show the whole of Nottingham and Nottinghamshire").click()
    view_settled(page, "z => Math.abs(geoCs.map.getZoom() - z) < 0.01", zoom)


def test_the_worst_list_ranks_one_to_n(page, staff_server):
    open_map(page, staff_server, "/maps/glasgow?period=simd2016")
    ranks = page.locator("#geo-cs-area-table tbody td:nth-child(1)").all_inner_texts()
    n = len(ranks)
    assert n == sum(bool(w) for w in config(page)["areas"]["worst"])
    numbers = [int(r.rstrip("=")) for r in ranks]
    assert numbers[0] == 1 and numbers == sorted(numbers) and numbers[-1] <= n
    # a rank skipped only after a tie, which is marked
    for before, after, label in zip(numbers, numbers[1:], ranks[1:], strict=False):
        assert after in (before, before + 1) or ranks[numbers.index(before)].endswith("="), (before, after, label)
    # each worst area's baseline rate is shown beside it: why it is in the list, in any period
    headers = page.locator("#geo-cs-area-table thead").inner_text()
    assert "Baseline" in headers, headers
    column = 1 + [h.strip() for h in page.locator("#geo-cs-area-table thead th").all_inner_texts()].index(
        next(h.strip() for h in page.locator("#geo-cs-area-table thead th").all_inner_texts() if "Baseline" in h))
    shown = page.locator(f"#geo-cs-area-table tbody td:nth-child({column})").all_inner_texts()
    threshold = config(page)["threshold"]
    assert len(shown) == n and min(float(v.rstrip("%")) for v in shown) >= threshold, sorted(shown)[:5]


def test_hatching_leaves_the_colour_readable(page, staff_server):
    open_map(page, staff_server, "/maps/glasgow?period=simd2012")
    hatched = page.locator(".geo-cs-hatch path[fill='url(#geo-cs-hatch)']")
    assert hatched.count() > 0
    pattern = page.locator("#geo-cs-hatch")
    width = float(pattern.get_attribute("width"))
    line = float(pattern.locator("line").get_attribute("stroke-width"))
    opacity = max(float(o) for o in hatched.evaluate_all("ps => ps.map(p => p.getAttribute('fill-opacity'))"))
    # at most a fifth of an area's colour is covered by the lines
    assert line / width * opacity <= 0.2, (line, width, opacity)


# -- 10. outside the partnership: neutral, and in the legend -----------------------------------------

def test_outside_areas_are_neutral_grey_and_in_the_legend(page, staff_server, tmp_path):
    from PIL import Image

    open_map(page, staff_server, CONSTITUENCIES)
    cfg = config(page)
    outside = page.evaluate("geoCs.OUTSIDE")
    assert outside not in cfg["colours"]
    rows = page.locator("#geo-cs-legend .geo-cs-outside")
    assert rows.count() == 1 and "Outside Nottingham and Nottinghamshire" in rows.inner_text()
    # the pixels of the map beyond the partnership's box are grey (white, black or between):
    # the only coloured things there were the faded classes
    box = page.evaluate("""() => {
        const c = JSON.parse(document.getElementById('geo-cs-config').textContent);
        const a = geoCs.map.latLngToContainerPoint([c.bounds[3], c.bounds[0]]);
        const b = geoCs.map.latLngToContainerPoint([c.bounds[1], c.bounds[2]]);
        return [a.x, a.y, b.x, b.y];
    }""")
    shot = tmp_path / "map.png"
    page.locator("#geo-cs-map").screenshot(path=str(shot))
    image = Image.open(shot).convert("RGB")
    scale = image.width / page.locator("#geo-cs-map").bounding_box()["width"]
    coloured = total = 0
    for x in range(0, image.width, 3):
        for y in range(0, image.height, 3):
            px, py = x / scale, y / scale
            if box[0] - 15 <= px <= box[2] + 15 or py < 90 or py > image.height / scale - 30:
                continue   # the partnership's box; the map's buttons; the credits
            r, g, b = image.getpixel((x, y))
            total += 1
            coloured += max(r, g, b) - min(r, g, b) > 24
    assert total > 1000 and coloured / total < 0.01, (coloured, total)


# -- 14. slider ticks thinned; district names placed without overlap --------------------------------------

def overlaps(boxes: list[dict], gap: float = 0) -> list[tuple]:
    out = []
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            if (a["x"] < b["x"] + b["width"] + gap and b["x"] < a["x"] + a["width"] + gap
                    and a["y"] < b["y"] + b["height"] + gap and b["y"] < a["y"] + a["height"] + gap):
                out.append((a.get("text"), b.get("text")))
    return out


def test_slider_ticks_are_thinned_and_never_run_together(page, staff_server):
    open_map(page, staff_server, MONTHLY)
    ticks = page.evaluate("""() => Array.from(document.querySelectorAll('#geo-cs-ticks span'))
        .filter(s => s.offsetParent !== null)
        .map(s => { const r = s.getBoundingClientRect(); return {x: r.x, y: r.y, width: r.width, height: r.height,
                                                                  text: s.textContent}; })""")
    labels = [p["label"] for p in config(page)["periods"]]
    assert len(labels) >= 20 and ticks
    shown = [t["text"] for t in ticks]
    assert shown[0] == labels[0] and shown[-1] == labels[-1] and 3 <= len(shown) < len(labels), shown
    assert not overlaps(ticks, gap=4), overlaps(ticks, gap=4)
    slider = page.locator("#geo-cs-period").bounding_box()
    for t in ticks:   # none clipped: each within the slider's width, on two lines at most
        assert t["x"] >= slider["x"] - 1 and t["x"] + t["width"] <= slider["x"] + slider["width"] + 1, t
        assert t["height"] < 32, t
        # no word broken: the name's lines are whole words
        assert t["width"] >= 40, t


def test_a_few_periods_keep_every_tick(page, staff_server):
    open_map(page, staff_server)
    labels = [p["label"] for p in config(page)["periods"]]
    shown = page.evaluate("""() => Array.from(document.querySelectorAll('#geo-cs-ticks span'))
        .filter(s => s.offsetParent !== null).map(s => s.textContent)""")
    assert shown == labels, (shown, labels)


@pytest.mark.parametrize("path", ["/maps/nottingham", MONTHLY])
def test_place_names_are_placed_without_overlap(page, staff_server, path):
    open_map(page, staff_server, path)
    for step in range(2):
        names = page.evaluate("""() => Array.from(document.querySelectorAll('.geo-cs-label'))
            .filter(s => s.offsetParent !== null)
            .map(s => { const r = s.getBoundingClientRect(); return {x: r.x, y: r.y, width: r.width, height: r.height,
                                                                      text: s.textContent}; })""")
        assert len(names) >= 5, names
        assert not overlaps(names), overlaps(names)
        # none over the map's buttons, scale or credits, none cut by the map's edge
        controls = page.evaluate("""() => Array.from(document.querySelectorAll('#geo-cs-map .leaflet-control'))
            .map(c => { const r = c.getBoundingClientRect(); return {x: r.x, y: r.y, width: r.width, height: r.height,
                                                                      text: c.className}; })
            .filter(r => r.width > 0)""")
        assert not [o for o in overlaps(names + controls) if "leaflet" in str(o)], overlaps(names + controls)
        frame = page.locator("#geo-cs-map").bounding_box()
        for n in names:
            assert n["x"] >= frame["x"] - 0.5 and n["x"] + n["width"] <= frame["x"] + frame["width"] + 0.5, n
            assert n["y"] >= frame["y"] - 0.5 and n["y"] + n["height"] <= frame["y"] + frame["height"] + 0.5, n
        # the partnership's own districts are named
        texts = {n["text"] for n in names}
        if step == 0 and path == "/maps/nottingham":
            assert {"Nottingham", "Mansfield", "Broxtowe"} <= texts, texts
        if step == 0 and path == MONTHLY:
            # a constituency map names its constituencies (no reference layer does)
            areas = {x["name"] for x in config(page)["reference"]["labels"] if x["kind"] == "area"}
            assert len(texts & areas) >= 2, (texts, areas)
        page.evaluate("geoCs.map.setZoom(geoCs.map.getZoom() + 1, {animate: false})")
        tiles_drawn(page)
        drawn_frames(page)


# -- 7. a refused request, in words, next to the control used ----------------------------------------------

TECHNICAL = {"type": "about:blank", "title": "Bad request", "status": 400,
             "detail": "threshold: Input should be a valid number, unable to parse string as a number",
             "instance": "/maps/glasgow/figures.json",
             "errors": [{"parameter": "threshold", "message": "Input should be a valid number"}]}


def refused_loads_only(page) -> None:
    """The browser's own line for a response refused on purpose (not a script error) is let
    through the console check; anything else still fails the test."""
    page.console_problems[:] = [c for c in page.console_problems
                                if "Failed to load resource: the server responded with a status of" not in c]


def test_a_refused_threshold_is_said_in_words_and_the_old_figures_marked(page, staff_server):
    open_map(page, staff_server)
    before = page.locator("#geo-cs-sentence").inner_text()
    # the server refuses it (as it would a threshold it cannot parse): its detail never shows
    page.route("**/figures.json*", lambda route: route.fulfill(
        status=400, content_type="application/problem+json", body=json.dumps(TECHNICAL)))
    page.fill("#geo-cs-threshold", "30")
    page.wait_for_selector('body[data-figures="refused"]', state="attached")
    problem = page.locator("#geo-cs-cohort-problem")
    assert problem.is_visible()
    words = problem.inner_text()
    assert "number from 0 to 100" in words and "Input should" not in words, words
    assert "Input should" not in page.locator("#geo-cs-panel").inner_text()
    # next to the control: within the threshold's fieldset, described by it
    assert page.locator("#geo-cs-cohort #geo-cs-cohort-problem").count() == 1
    assert page.locator("#geo-cs-threshold").get_attribute("aria-describedby") == "geo-cs-cohort-problem"
    # the previous answer is marked as not updated
    assert page.locator("#geo-cs-answer.geo-cs-stale").count() == 1
    assert page.locator("#geo-cs-stale-note").inner_text().startswith("Not updated")
    assert page.locator("#geo-cs-sentence").inner_text() == before
    # a busy service: another sentence
    page.unroute("**/figures.json*")
    page.route("**/figures.json*", lambda route: route.fulfill(
        status=503, content_type="application/problem+json",
        body=json.dumps({"status": 503, "title": "Service unavailable", "detail": "GEO_CS_MEMORY_BUDGET_MB"})))
    page.fill("#geo-cs-threshold", "31")
    page.locator("#geo-cs-cohort-problem", has_text="busy").wait_for()
    assert "GEO_CS" not in problem.inner_text()
    # a sentence the service wrote for a person about the figures is shown as it is
    page.unroute("**/figures.json*")
    page.route("**/figures.json*", lambda route: route.fulfill(
        status=400, content_type="application/problem+json",
        body=json.dumps({**TECHNICAL, "message": "Choose a threshold from 0 to 100 for these figures."})))
    page.fill("#geo-cs-threshold", "32")
    page.locator("#geo-cs-cohort-problem", has_text="Choose a threshold from 0 to 100 for these figures.").wait_for()
    # out of range: said before asking the server
    page.unroute("**/figures.json*")
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url) if "figures.json" in r.url else None)
    page.fill("#geo-cs-threshold", "150")
    page.locator("#geo-cs-cohort-problem", has_text="number from 0 to 100").wait_for()
    assert asked == [], asked
    # a good one clears the sentence and the mark
    page.fill("#geo-cs-threshold", "20")
    page.wait_for_selector('body[data-figures="loaded"]', state="attached", timeout=30_000)
    assert problem.is_hidden() and page.locator(".geo-cs-stale").count() == 0
    assert page.locator("#geo-cs-sentence").inner_text() != before
    refused_loads_only(page)


def test_a_failed_search_is_said_in_words_next_to_the_search_box(page, staff_server):
    open_map(page, staff_server)
    page.fill("#geo-cs-search", "Govan")
    page.press("#geo-cs-search", "Enter")
    page.wait_for_selector('body[data-search="done"]', state="attached")
    assert page.locator("#geo-cs-search-results li").count() > 0
    page.route("**/search?*", lambda route: route.fulfill(
        status=500, content_type="application/problem+json",
        body=json.dumps({"status": 500, "title": "Internal server error", "detail": "duckdb.IOException: x"})))
    page.fill("#geo-cs-search", "Calton")
    page.press("#geo-cs-search", "Enter")
    page.wait_for_selector('body[data-search="refused"]', state="attached")
    problem = page.locator("#geo-cs-search-problem")
    assert problem.is_visible() and "try again" in problem.inner_text()
    assert "duckdb" not in page.locator("#geo-cs-panel").inner_text()
    # the previous results are cleared, not left as if they answered this search
    assert page.locator("#geo-cs-search-results li").count() == 0
    page.unroute("**/search?*")
    # one letter: what to type, without asking the server
    page.fill("#geo-cs-search", "G")
    page.press("#geo-cs-search", "Enter")
    assert "at least 2 letters" in problem.inner_text()
    # a postcode where none are held: no command names
    page.fill("#geo-cs-search", "G51")
    page.press("#geo-cs-search", "Enter")
    page.wait_for_selector('body[data-search="done"]', state="attached")
    text = page.locator("#geo-cs-search-results").inner_text()
    assert "postcode" in text and "geo-cs" not in text and "ingest" not in text, text
    assert problem.is_hidden()
    refused_loads_only(page)


# -- 12. on paper ------------------------------------------------------------------------------------------

@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils (pdftotext) not installed")
def test_the_printed_page_fits_the_partnership_with_answer_legend_figures_chart_and_one_source(
        page, staff_server, tmp_path):
    open_map(page, staff_server)
    page.emulate_media(media="print")
    page.wait_for_selector('body[data-print="fitted"]', state="attached")
    tiles_drawn(page)
    drawn_frames(page)
    # the map is the page's width and shows the whole partnership
    fit = page.evaluate("""() => {
        const c = JSON.parse(document.getElementById('geo-cs-config').textContent);
        const s = geoCs.map.getSize();
        const a = geoCs.map.latLngToContainerPoint([c.bounds[3], c.bounds[0]]);
        const b = geoCs.map.latLngToContainerPoint([c.bounds[1], c.bounds[2]]);
        return {w: s.x, h: s.y, left: a.x, top: a.y, right: b.x, bottom: b.y};
    }""")
    assert fit["left"] >= -1 and fit["top"] >= -1 and fit["right"] <= fit["w"] + 1 and fit["bottom"] <= fit["h"] + 1, fit
    assert max((fit["right"] - fit["left"]) / fit["w"], (fit["bottom"] - fit["top"]) / fit["h"]) >= 0.8, fit
    # no ticks without their slider; no controls
    assert page.locator("#geo-cs-ticks").is_hidden() and page.locator("#geo-cs-period").is_hidden()
    assert page.locator("#geo-cs-chart-img").is_visible()
    pdf = tmp_path / "glasgow.pdf"
    page.pdf(path=str(pdf), format="A4", print_background=True)
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
    pages = int(re.search(r"Pages:\s+(\d+)", info).group(1))
    texts = [subprocess.run(["pdftotext", "-layout", "-f", str(n), "-l", str(n), str(pdf), "-"],
                            capture_output=True, text=True, check=True).stdout for n in range(1, pages + 1)]
    text = "\n".join(texts)
    for expected in ("Glasgow", "The gap between", "Legend", "Key figures", "Partnership", "Gap, points"):
        assert expected in text, expected
    first = texts[0]
    assert "The gap between" in first and "Legend" in first and "Key figures" in first, first
    # the figures table on one page
    rows = ["Partnership", "Worst-performing neighbourhoods", "Rest of the partnership", "Gap, points", "Their share"]
    assert any(all(r in t for r in rows) for t in texts), texts
    # one source line: the map's credits are not printed again, and the panel's chart is drawn
    # without its own (the downloaded chart keeps one)
    chart = httpx.get(staff_server + page.locator("#geo-cs-chart-img").get_attribute("src"), timeout=60).text
    assert "Open Government Licence" not in chart
    assert text.count("Open Government Licence") == 1, text.count("Open Government Licence")
    assert page.locator(".leaflet-control-attribution").is_hidden()
    assert "Find an area" not in text and "Map style" not in text
    # one A4 page
    assert pages == 1, pages


# -- accessibility at both sizes, a profile open --------------------------------------------------------------

def serious_violations(page) -> list[dict]:
    page.add_script_tag(url=AXE)
    result = page.evaluate("""async () => {
        const r = await axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21aa']}});
        return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                        nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}));
    }""")
    return [v for v in result if v["impact"] in ("serious", "critical")]


@pytest.mark.parametrize("path", ["/maps/rhyl", MONTHLY, "/maps/"])
def test_no_serious_accessibility_violations(page, staff_server, path):
    if path == "/maps/":
        page.goto(f"{staff_server}{path}")
    else:
        open_map(page, staff_server, path)
        page.locator("details#geo-cs-style summary").click()   # its fields checked too
    assert not serious_violations(page)


def test_no_serious_accessibility_violations_with_a_profile_open(page, staff_server):
    open_map(page, staff_server)
    select_area_on_the_map(page)
    assert not serious_violations(page)
