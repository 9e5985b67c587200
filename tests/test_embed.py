"""The map embedded in another site's page (issue 34, point 4): ``/maps/{partnership}/embed``, the
``GEO_CS_FRAME_ANCESTORS`` setting and the snippet the full page offers.

The API tests check what the service sends: the same answer as the full page, the embed's
Content-Security-Policy (``frame-ancestors 'self'`` and the allowed origins; every other page
keeps ``'self'`` alone), a bad setting refused at start naming itself and the entry, and under
disclosure control no rate of a withheld area in the embed's data.

The browser tests put the embed in an iframe of a page served from another origin (a plain
static host on another port), at desktop and phone sizes, and fail on any console error but
Chromium's own refusal to frame where refusing is the point: an allowed origin shows the map
(tiles drawn, legend, answer, the link to the full page), one not allowed is refused, and the
code offered by the full page's "Put this map on your own site" works pasted into that page.
GEO_CS_WRITE_SCREENSHOTS=1 writes docs/screenshots/embed-desktop.png.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import expect
from pydantic import ValidationError

from geo_cs.api.app import create_app
from geo_cs.api.headers import embed_policy
from geo_cs.config import Settings
from geo_cs.custom_areas import area_id
from geo_cs.maps import CONTENT_SECURITY_POLICY_HEADER
from geo_cs.maps.page import read_page_config
from geo_cs.store import Store
from tests import test_map_staff
from tests.servers import REPO, running_service, static_host, wait_until
from tests.test_clients import in_page, needs_chromium, watch_console

SCREENSHOTS = REPO / "docs" / "screenshots"
ALLOWED = ["https://intranet.example.gov.uk", "https://*.council.example.gov.uk"]
#: A custom area (issue 34, point 1): six of Glasgow's worst-performing data zones, its id holding them.
CUSTOM = area_id(
    "datazone2011",
    ["S01010138", "S01010362", "S01010323", "S01010245", "S01009977", "S01010122"],
    name="Our estate",
    within="glasgow",
)
#: Views of each kind: a gap (with a period and threshold asked for), a rank with no gap, a
#: count on constituencies, a survey rate on districts, a custom area.
VIEWS = [
    ("glasgow", {}),
    ("glasgow", {"period": "simd2016", "threshold": "20"}),
    ("rhyl", {}),
    ("nottingham", {"geography": "wpc2010", "indicator": "claimants_monthly"}),
    ("greater_manchester", {"geography": "lad2020", "indicator": "aps.employment_rate"}),
    (CUSTOM, {}),
]
VIEW_IDS = ["gap", "gap-period-threshold", "rank", "count-constituencies", "survey", "custom-area"]


@pytest.fixture(scope="module")
def client(demo_db: Path) -> Iterator[TestClient]:
    """The service with no frame ancestors set (the default)."""
    with TestClient(create_app(Settings(db=demo_db))) as c:
        yield c


@pytest.fixture(scope="module")
def allowing(demo_db: Path) -> Iterator[TestClient]:
    """The service with two origins allowed to frame the embed."""
    with TestClient(create_app(Settings(db=demo_db, frame_ancestors=ALLOWED))) as c:
        yield c


# -- what the service sends --------------------------------------------------------------------------


@pytest.mark.parametrize(("partnership", "query"), VIEWS, ids=VIEW_IDS)
def test_the_embed_is_the_full_pages_map_and_answer_without_the_panel(client, partnership, query):
    full = client.get(f"/maps/{partnership}", params=query)
    embed = client.get(f"/maps/{partnership}/embed", params=query)
    assert full.status_code == embed.status_code == 200, embed.text[:500]
    assert embed.headers["content-type"].startswith("text/html")
    page, framed = read_page_config(full.text), read_page_config(embed.text)
    # the same words (the sentence is in the HTML too, before the script runs) and the same map
    assert framed["sentence"] and framed["sentence"] == page["sentence"]
    assert f'id="geo-cs-sentence" class="geo-cs-answer">{_escaped(framed["sentence"])}</p>' in embed.text
    for key in ("periods", "start", "breaks", "colours", "classLabels", "codes", "layer", "attribution"):
        assert framed[key] == page[key], key
    assert framed["embed"] is True and page["embed"] is False
    # no panel: no search, slider, figures, areas, settings or downloads
    for absent in (
        "geo-cs-panel",
        "geo-cs-search",
        'id="geo-cs-period"',
        "geo-cs-summary",
        "geo-cs-area-table",
        "geo-cs-choose",
        "geo-cs-geojson",
        'id="geo-cs-embed"',
    ):
        assert absent not in embed.text, absent
    # the link to the full page of the same view, in a new tab
    link = re.search(
        r'<a id="geo-cs-full" class="geo-cs-full" href="([^"]*)" target="_blank" '
        r'rel="noopener">Open the full map</a>',
        embed.text,
    )
    assert link, embed.text[:2000]
    href = link.group(1).replace("&amp;", "&")
    assert client.get(href).text == full.text  # the very page asked for the same view
    assert OGL_LINE in embed.text


OGL_LINE = "Open Government Licence v3.0"


def _escaped(text: str) -> str:
    """``text`` as Jinja's autoescape writes it."""
    return (
        text.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&#34;")
        .replace("'", "&#39;")
    )


def test_the_full_page_offers_the_code_and_a_static_site_does_not(client, demo_db):
    """The section is on the service's page, folded, before the downloads; a static site has no
    embed view, so its page offers no code."""
    from geo_cs.maps.page import MapRequest, MapSources, StaticSiteUrls, gather_map, render_map_page

    html = client.get("/maps/glasgow").text
    section = re.search(r'<details id="geo-cs-embed" class="geo-cs-embed">(.*?)</details>', html, re.S)
    assert section, "no embed section"
    assert "<summary>Put this map on your own site</summary>" in section.group(1)
    assert re.search(r'<textarea id="geo-cs-embed-code"[^>]*readonly', section.group(1))
    assert 'id="geo-cs-embed-status" class="geo-cs-help" aria-live="polite"' in section.group(1)
    assert "GEO_CS_FRAME_ANCESTORS" in section.group(1)
    assert html.index('id="geo-cs-embed"') < html.index("Download what is shown")
    with Store.open(demo_db, read_only=True) as store:
        static = render_map_page(gather_map(MapSources(store), MapRequest("dundee")), StaticSiteUrls())
    assert read_page_config(static)["standalone"] is True
    assert "geo-cs-embed" not in static and "/embed" not in static


def test_the_embed_is_framed_by_the_services_own_pages_alone_by_default(client):
    response = client.get("/maps/glasgow/embed")
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY_HEADER
    assert response.headers["content-security-policy"].endswith("; frame-ancestors 'self'")
    assert "x-frame-options" not in response.headers


def test_the_allowed_origins_may_frame_the_embed_and_nothing_else(allowing):
    expected = f"frame-ancestors 'self' {' '.join(ALLOWED)}"
    for path in ("/maps/glasgow/embed", "/maps/glasgow/embed?period=simd2016", "/maps/rhyl/embed"):
        for method in ("GET", "HEAD"):
            response = allowing.request(method, path)
            assert response.status_code == 200
            policy = response.headers["content-security-policy"]
            assert policy == embed_policy(ALLOWED) and policy.endswith(f"; {expected}"), policy
            assert "x-frame-options" not in response.headers
    # an embed that cannot be drawn says why inside the frame (its error page may be framed too)
    missing = allowing.get("/maps/nowhere/embed", headers={"Accept": "text/html"})
    assert missing.status_code == 404 and "We could not find that partnership" in missing.text
    assert missing.headers["content-security-policy"].endswith(expected)
    # every other page keeps 'self' alone
    for path in (
        "/maps/",
        "/maps/glasgow",
        "/maps/glasgow?period=simd2016",
        "/maps/help",
        "/docs",
        "/maps/glasgow/embedded",
        "/maps/nowhere",
    ):
        response = allowing.get(path, headers={"Accept": "text/html"})
        assert response.headers["content-type"].startswith("text/html"), path
        assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY_HEADER, path


@pytest.mark.parametrize(
    ("value", "said"),
    [
        ('["https://intranet.example.gov.uk/maps"]', 'leave out the path "/maps"'),
        ('["*"]', "any site on the internet"),
        ('["intranet.example.gov.uk"]', 'needs its scheme: "https://intranet.example.gov.uk"'),
        ('["https://intranet.example.gov.uk; script-src *"]', "one origin per entry"),
        ('["https:"]', "write https:// or http://"),
        ('["ftp://intranet.example.gov.uk"]', "write https:// or http://"),
        ('["https://intranet.example.gov.uk:70000"]', "port 70000"),
        ("[\"'self'\"]", "may always frame the map"),
        (
            "https://intranet.example.gov.uk",
            "a JSON list of origins, e.g. '[\"https://intranet.example.gov.uk\"]'",
        ),
        ('{"origin": "https://intranet.example.gov.uk"}', "a JSON list of origins"),
    ],
)
def test_a_bad_setting_is_refused_naming_the_setting_and_the_entry(monkeypatch, value, said):
    monkeypatch.setenv("GEO_CS_FRAME_ANCESTORS", value)
    with pytest.raises(ValidationError) as refused:
        Settings()
    message = str(refused.value)
    assert "GEO_CS_FRAME_ANCESTORS" in message and said in message, message
    entry = json.loads(value)[0] if value.startswith("[") else None
    if entry is not None:
        assert f'"{entry}"' in message, message


def test_origins_are_taken_as_a_browser_compares_them(monkeypatch):
    monkeypatch.setenv(
        "GEO_CS_FRAME_ANCESTORS",
        '["https://Intranet.Example.gov.uk/", "http://127.0.0.1:8080", '
        '"https://*.council.example.gov.uk", "https://intranet.example.gov.uk"]',
    )
    assert Settings().frame_ancestors == [
        "https://intranet.example.gov.uk",
        "http://127.0.0.1:8080",
        "https://*.council.example.gov.uk",
    ]
    monkeypatch.setenv("GEO_CS_FRAME_ANCESTORS", "")
    assert Settings().frame_ancestors == []


def test_a_server_with_a_bad_setting_does_not_start(demo_db):
    """As an operator starts it: the error names the setting and the entry, and nothing serves."""
    env = {
        **os.environ,
        "GEO_CS_DB": str(demo_db),
        "GEO_CS_WARM_MAPS": "0",
        "GEO_CS_FRAME_ANCESTORS": '["https://intranet.example.gov.uk/geo-cs"]',
    }
    done = subprocess.run(
        [sys.executable, "-m", "uvicorn", "geo_cs.api.app:create_app", "--factory", "--port", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert done.returncode != 0
    assert (
        'GEO_CS_FRAME_ANCESTORS: "https://intranet.example.gov.uk/geo-cs" is not an origin: leave out '
        'the path "/geo-cs"'
    ) in done.stderr, done.stderr[-3000:]


def test_under_disclosure_control_the_embed_shows_no_rate_of_a_withheld_area(demo_db):
    """Dundee's data zones with fewer than 10 employment-deprived people in SIMD 2020 (the
    demo's withheld zones, read from the raw observations): no rate in the embed's data, and
    the rule stated under the map; without disclosure control the same zones have rates."""
    query = {"geography": "datazone2011", "indicator": "simd2020.employment_deprived"}
    with Store.open(demo_db, read_only=True) as store:
        small = {
            code
            for (code,) in store.sql(
                "SELECT code FROM observations WHERE set_id = 'datazone2011' AND "
                "indicator_id = 'simd2020.employment_deprived' AND value < 10"
            ).fetchall()
        }
    with TestClient(create_app(Settings(db=demo_db, disclosure_control=True))) as controlled:
        response = controlled.get("/maps/dundee/embed", params=query)
    assert response.status_code == 200
    framed = read_page_config(response.text)
    areas = framed["areas"]
    withheld = [i for i, code in enumerate(areas["code"]) if code in small]
    assert len(withheld) >= 5 and "S01007771" in {areas["code"][i] for i in withheld}  # issue 27's zone
    for i in withheld:
        assert all(v is None for v in areas["values"][i]), (areas["code"][i], areas["values"][i])
        assert areas["worst"][i] in (False, None)
    assert framed["disclosure"] and _escaped(framed["disclosure"]) in response.text
    with TestClient(create_app(Settings(db=demo_db))) as open_:
        plain = read_page_config(open_.get("/maps/dundee/embed", params=query).text)["areas"]
    assert all(plain["values"][i][-1] is not None for i in withheld)


# -- in a browser: another site's page framing the map --------------------------------------------------

SIZES = {
    "desktop": {"viewport": {"width": 1366, "height": 768}, "frame": (600, 450)},
    "phone": {"viewport": {"width": 390, "height": 844}, "frame": (320, 400)},
}
#: Chromium's console message for a frame its Content-Security-Policy refuses: "Refused to
#: frame '…' because an ancestor violates …" in older releases, "Framing '…' violates the
#: following Content Security Policy directive: "frame-ancestors …". The request has been
#: blocked." since.
REFUSED = re.compile(
    r"Refused to frame '[^']*' because an ancestor violates the following Content Security "
    r"Policy directive: \"frame-ancestors |Framing '[^']*' violates the following Content "
    r"Security Policy directive: \"frame-ancestors "
)


@pytest.fixture(scope="module")
def sites(demo_db: Path, tmp_path_factory) -> Iterator[dict[str, str | Path]]:
    """Two other sites on their own ports (origins), serving one folder of pages: ``allowed``
    is in GEO_CS_FRAME_ANCESTORS, ``other`` is not; and the service."""
    folder = tmp_path_factory.mktemp("intranet")
    (folder / "index.html").write_text("<!DOCTYPE html><title>intranet</title>")
    log = tmp_path_factory.mktemp("embed-service") / "uvicorn.log"
    with contextlib.ExitStack() as stack:
        allowed = stack.enter_context(static_host(folder))
        other = stack.enter_context(static_host(folder))
        env = {
            "GEO_CS_DB": str(demo_db),
            "GEO_CS_WARM_MAPS": "0",
            "GEO_CS_FRAME_ANCESTORS": json.dumps([allowed]),
        }
        service = stack.enter_context(running_service(env, log))
        yield {"allowed": allowed, "other": other, "service": service, "folder": folder}


# Chromium, as the staff map's tests launch it (one per module)
browser = test_map_staff.browser


@pytest.fixture(params=list(SIZES))
def page(request, browser):
    """A page at each size (the phone with touch); any console error fails the test, unless
    the test takes it off ``page.console_problems`` as expected."""
    phone = request.param == "phone"
    context = browser.new_context(
        viewport=SIZES[request.param]["viewport"],
        is_mobile=phone,
        has_touch=phone,
        device_scale_factor=2 if phone else 1,
    )
    page = context.new_page()
    page.size = request.param
    page.console_problems = watch_console(page)
    yield page
    problems = page.console_problems
    context.close()
    assert not problems, problems


def intranet_page(sites: dict, name: str, frame_html: str) -> str:
    """A page of another site holding ``frame_html`` (an iframe), as a council intranet page
    would: its own heading and words, the frame at most as wide as the page. Its address on
    the allowed site; the same page is on the other site at the same path."""
    (sites["folder"] / name).write_text(
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1"><link rel="icon" href="data:,">'
        "<title>Employment team</title><style>body { font-family: sans-serif; margin: 16px; max-width: 960px; }"
        " iframe { max-width: 100%; border: 1px solid #b1b4b6; }</style></head><body>"
        "<h1>Employment team</h1><p>Our worst-performing neighbourhoods, from the geo-cs service.</p>"
        f"{frame_html}</body></html>",
        encoding="utf-8",
    )
    return f"/{name}"


def framed(page):
    """The page's one iframe, once its map has drawn its tiles."""
    page.wait_for_selector("iframe")
    frame = page.main_frame.child_frames[0]
    tiles_shown(frame)
    frame.evaluate(
        "() => document.fonts.ready.then(() => new Promise("
        "done => requestAnimationFrame(() => requestAnimationFrame(done))))"
    )
    return frame


def in_frame_view(frame, selector: str, whole: bool = True) -> bool:
    """Whether the element is inside the frame's window, wholly (``whole``) or from its start
    (its first three lines: a long answer scrolls within the frame), and on top there."""
    return frame.evaluate(
        """([sel, whole]) => {
        const e = document.querySelector(sel);
        if (!e || e.offsetParent === null) { return false; }
        const r = e.getBoundingClientRect();
        const bottom = whole ? r.bottom : Math.min(r.bottom, r.top + 48);
        if (r.top < 0 || r.left < 0 || bottom > innerHeight + 0.5 || r.right > innerWidth + 0.5) { return false; }
        const top = document.elementFromPoint(r.left + r.width / 2, r.top + Math.min(r.height / 2, 8));
        return top !== null && (e === top || e.contains(top));
    }""",
        [selector, whole],
    )


AXE = "/static/vendor/axe-core@4.14.1/axe.min.js"


def serious_violations(target, service: str) -> list[dict]:
    """axe-core's serious and critical WCAG 2 A/AA violations of a page or a frame of the
    service (its script from the service: the pages' policy allows their own scripts only)."""
    target.add_script_tag(url=f"{service}{AXE}")
    found = target.evaluate("""async () => {
        const r = await axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21aa']}});
        return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                        nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}));
    }""")
    return [v for v in found if v["impact"] in ("serious", "critical")]


def coloured_share(png: bytes) -> float:
    """The share of a screenshot's pixels in the choropleth's colours: saturated yellows, oranges
    and reds (``geo_cs.palette``, YlOrRd). The base map, the labels and lines are grey, the
    partnership's outline blue, so a map whose tiles are not drawn has next to none."""
    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("HSV")
    hues, saturations = image.getchannel("H").get_flattened_data(), image.getchannel("S").get_flattened_data()
    # hue on 0-255: red to yellow is 0-43 (0-60 degrees), crimson wraps round to 235+; the
    # palette's palest yellow (#ffffcc) has a saturation of 51, greys none
    warm = sum(1 for h, s in zip(hues, saturations, strict=True) if s > 30 and (h < 48 or h > 235))
    return warm / len(hues)


def tiles_shown(frame) -> None:
    """Wait until the frame's map has drawn its tiles and they have faded in (Leaflet fades a
    new tile in over 0.2 s: a picture taken meanwhile shows its colours washed out)."""
    frame.wait_for_selector('body[data-tiles="loaded"]', state="attached", timeout=30_000)
    wait_until(
        lambda: frame.evaluate("""() => Array.from(document.querySelectorAll('.leaflet-tile'))
            .filter(t => t.offsetParent !== null).every(t => getComputedStyle(t).opacity === '1')"""),
        10,
        "the map's tiles to fade in",
        pause=in_page(frame.page),
    )


def tiles_drawn_in_colour(frame) -> float:
    """The share of the frame's map in the classes' colours with one of the partnership's areas
    with a figure filling it (a partnership of six small areas covers 0.1% of its own view);
    the view is put back after."""
    before = frame.evaluate(
        "() => { const c = geoCs.map.getCenter(); return [c.lat, c.lng, geoCs.map.getZoom()]; }"
    )
    frame.evaluate("""() => {
        const c = JSON.parse(document.getElementById('geo-cs-config').textContent);
        const i = c.areas.values.findIndex(v => v[c.start] !== null);
        const b = c.areas.bounds[i];
        geoCs.map.fitBounds([[b[1], b[0]], [b[3], b[2]]], {animate: false});
    }""")
    tiles_shown(frame)
    share = coloured_share(frame.locator("#geo-cs-map").screenshot())
    frame.evaluate("([lat, lon, z]) => geoCs.map.setView([lat, lon], z, {animate: false})", before)
    tiles_shown(frame)
    return share


def check_embedded_map(frame, sites: dict, query: str = "") -> None:
    """The embed in ``frame`` shows its map (tiles drawn in colour), the legend, the answer of
    the same view as the service gives it, the link to the full page and no other control."""
    cfg = json.loads(frame.locator("#geo-cs-config").text_content())
    assert cfg["embed"] is True
    width, height = frame.evaluate("[innerWidth, innerHeight]")
    box = frame.locator("#geo-cs-map").bounding_box()
    assert box["height"] >= 0.35 * height and box["width"] >= 0.6 * width, (box, width, height)
    assert frame.evaluate("document.documentElement.scrollWidth <= innerWidth"), "the embed spills sideways"
    assert tiles_drawn_in_colour(frame) > 0.15, "the tiles are not drawn in the classes' colours"
    # the answer in view, in the full page's words
    assert in_frame_view(frame, "#geo-cs-sentence", whole=False), "the answer is not in view"
    assert frame.locator("#geo-cs-sentence").inner_text() == cfg["sentence"]
    # the legend: every class, reachable in the frame
    classes = frame.locator("#geo-cs-legend .geo-cs-class")
    assert classes.count() == len(cfg["breaks"])
    classes.first.scroll_into_view_if_needed()
    assert in_frame_view(frame, "#geo-cs-legend .geo-cs-class"), "the legend is not in view"
    frame.locator(".geo-cs-attribution").scroll_into_view_if_needed()
    assert OGL_LINE in frame.locator(".geo-cs-attribution").inner_text()
    # the link to the full page of this view, always in view
    link = frame.locator("#geo-cs-full")
    assert in_frame_view(frame, "#geo-cs-full")
    assert link.get_attribute("target") == "_blank" and "noopener" in link.get_attribute("rel")
    path = frame.evaluate("location.pathname").removesuffix("/embed")
    assert link.evaluate("a => a.href") == f"{sites['service']}{path}{query}"
    # no control but zoom (and the one-line credits)
    controls = frame.evaluate("""Array.from(document.querySelectorAll('.leaflet-control'))
                                   .map(c => c.className.split(' ').filter(n => n !== 'leaflet-control').sort().join(' '))""")
    assert sorted(controls) == ["leaflet-bar leaflet-control-zoom", "leaflet-control-attribution"], controls
    assert frame.locator("#geo-cs-panel, #geo-cs-period, #geo-cs-search").count() == 0


@needs_chromium
@pytest.mark.slow
def test_an_allowed_site_shows_the_embedded_map(page, sites):
    width, height = SIZES[page.size]["frame"]
    src = f"{sites['service']}/maps/glasgow/embed"
    path = intranet_page(
        sites,
        f"allowed-{page.size}.html",
        f'<iframe src="{src}" width="{width}" height="{height}" title="Map of Glasgow"></iframe>',
    )
    page.goto(f"{sites['allowed']}{path}")
    frame = framed(page)
    check_embedded_map(frame, sites)
    if page.size == "desktop" and os.environ.get("GEO_CS_WRITE_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        frame.evaluate("document.querySelector('.geo-cs-embed-words').scrollTop = 0")  # as it opens
        frame_box = page.locator("iframe").bounding_box()
        page.screenshot(
            path=str(SCREENSHOTS / "embed-desktop.png"),
            clip={
                "x": 0,
                "y": 0,
                "width": frame_box["x"] + frame_box["width"] + 16,
                "height": frame_box["y"] + frame_box["height"] + 16,
            },
        )
    assert not serious_violations(frame, sites["service"])
    # a click or a tap on an area shows its figure (the embed has no profile to open)
    box = frame.locator("#geo-cs-map").bounding_box()
    x, y = frame.evaluate("""() => {
        const c = JSON.parse(document.getElementById('geo-cs-config').textContent);
        const i = c.areas.worst.findIndex(Boolean);
        const b = c.areas.bounds[i];
        geoCs.map.fitBounds([[b[1], b[0]], [b[3], b[2]]], {animate: false, padding: [40, 40]});
        const p = geoCs.map.latLngToContainerPoint([(b[1] + b[3]) / 2, (b[0] + b[2]) / 2]);
        return [p.x, p.y];
    }""")
    tiles_shown(frame)
    if page.size == "phone":
        page.touchscreen.tap(box["x"] + x, box["y"] + y)
    else:
        page.mouse.click(box["x"] + x, box["y"] + y)
    tip = frame.locator(".leaflet-tooltip")
    tip.wait_for(timeout=10_000)
    assert re.search(r"S01\d{6}", tip.inner_text()) and "%" in tip.inner_text(), tip.inner_text()
    # the link opens the full page in a tab of its own
    with page.context.expect_page() as opened:
        frame.locator("#geo-cs-full").click()
    full = opened.value
    full.wait_for_load_state("domcontentloaded")
    assert full.url == f"{sites['service']}/maps/glasgow"
    full.close()


@needs_chromium
@pytest.mark.slow
def test_a_site_not_allowed_is_refused(page, sites):
    width, height = SIZES[page.size]["frame"]
    src = f"{sites['service']}/maps/glasgow/embed"
    path = intranet_page(
        sites,
        f"refused-{page.size}.html",
        f'<iframe src="{src}" width="{width}" height="{height}" title="Map of Glasgow"></iframe>',
    )
    page.goto(f"{sites['other']}{path}")
    page.wait_for_selector("iframe")
    wait_until(
        lambda: any(REFUSED.search(p) for p in page.console_problems),
        15,
        lambda: f"Chromium's refusal in the console: {page.console_problems}",
        pause=in_page(page),
    )
    refused = [p for p in page.console_problems if REFUSED.search(p)]
    assert f"frame-ancestors 'self' {sites['allowed']}\"" in refused[0], refused
    assert sites["service"] in refused[0], refused
    # that refusal and nothing else
    page.console_problems[:] = [p for p in page.console_problems if not REFUSED.search(p)]
    # the frame shows Chromium's error page, not the map
    frame = page.main_frame.child_frames[0]
    assert not frame.url.startswith(sites["service"]), frame.url
    assert frame.locator("#geo-cs-map").count() == 0
    # the same page on the allowed site shows it
    page.goto(f"{sites['allowed']}{path}")
    framed(page)
    assert not page.console_problems


@needs_chromium
@pytest.mark.slow
def test_the_full_pages_code_works_pasted_into_another_sites_page(page, sites):
    """The code holds the view shown when it is copied — period, threshold, a selected area, the
    zoom and centre the visitor moved to — and pasted into another site's page shows it."""
    service = sites["service"]
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=service)
    asked = "?period=simd2016&threshold=20"
    cfg = read_page_config(page.context.request.get(f"{service}/maps/glasgow{asked}").text())
    chosen = cfg["areas"]["code"][cfg["areas"]["worst"].index(True)]
    page.goto(f"{service}/maps/glasgow{asked}&select={chosen}")
    page.wait_for_selector('body[data-tiles="loaded"]', state="attached", timeout=30_000)
    # the visitor zooms in (the keyboard's +): the address follows
    page.locator("#geo-cs-map").focus()
    page.keyboard.press("Equal")
    search = wait_until(
        lambda: (lambda q: "z=" in q and q)(page.evaluate("location.search")),
        10,
        "the zoom in the address",
        pause=in_page(page),
    )
    for held in ("period=simd2016", "threshold=20", f"select={chosen}", "lat=", "lon="):
        assert held in search, search
    section = page.locator("#geo-cs-embed")
    assert section.evaluate("d => d.open") is False
    # folded, just before the downloads
    assert page.evaluate("""() => {
        const next = document.getElementById('geo-cs-embed').nextElementSibling;
        return next.classList.contains('geo-cs-links') && next.textContent.includes('Download what is shown');
    }""")
    section.locator("summary").scroll_into_view_if_needed()
    section.locator("summary").click()
    code = page.locator("#geo-cs-embed-code")
    expect(code).to_have_value(re.compile("^<iframe "))  # written as the section opens (its toggle event)
    snippet = code.input_value()
    assert snippet == (
        f'<iframe src="{service}/maps/glasgow/embed{search.replace("&", "&amp;")}" width="600" '
        'height="450" title="Map of Glasgow: Employment-deprived people" loading="lazy"></iframe>'
    )
    assert code.get_attribute("readonly") is not None
    assert "GEO_CS_FRAME_ANCESTORS" in section.inner_text()
    assert not serious_violations(page, service)
    if page.size == "phone":
        # where the clipboard API is refused (a page served over http), the text is selected and
        # copied the old way
        page.evaluate(
            "() => { navigator.clipboard.writeText = () => Promise.reject(new DOMException('refused')); }"
        )
    page.locator("#geo-cs-embed-copy").click()
    page.wait_for_selector("body[data-embed-copied]", state="attached")
    assert page.locator("#geo-cs-embed-status").inner_text() == "Copied"
    assert page.locator("#geo-cs-embed-status").get_attribute("aria-live") == "polite"
    assert page.evaluate("navigator.clipboard.readText()") == snippet
    zoom = float(re.search(r"[?&]z=([0-9.]+)", search).group(1))
    # pasted into the intranet's page
    path = intranet_page(sites, f"pasted-{page.size}.html", snippet)
    page.goto(f"{sites['allowed']}{path}")
    frame = framed(page)
    assert frame.evaluate("document.body.dataset.period") == "simd2016"
    assert frame.evaluate("[document.body.dataset.selected, document.body.dataset.highlighted]") == [
        chosen,
        "1",
    ]
    assert abs(frame.evaluate("geoCs.map.getZoom()") - zoom) < 0.01
    check_embedded_map(frame, sites, search)
    # the same view's answer as the full page
    figures = json.loads(page.context.request.get(f"{service}/maps/glasgow/figures.json{asked}").text())
    assert frame.locator("#geo-cs-sentence").inner_text() == figures["sentence"]
    assert "above 20%" in figures["sentence"]


@needs_chromium
@pytest.mark.slow
@pytest.mark.parametrize(("partnership", "query"), VIEWS[2:], ids=VIEW_IDS[2:])
def test_every_kind_of_map_embeds_with_its_answer_and_no_error(page, sites, partnership, query):
    """A rank with no gap, a count with no worst areas, a survey rate whose words follow the
    period, a custom area: each draws in the frame with its legend and the full page's answer."""
    width, height = SIZES[page.size]["frame"]
    search = "".join(f"{'&' if n else '?'}{k}={v}" for n, (k, v) in enumerate(query.items()))
    src = f"{sites['service']}/maps/{partnership}/embed{search}"
    path = intranet_page(
        sites,
        f"{partnership[:40]}-{page.size}.html",
        f'<iframe src="{src.replace("&", "&amp;")}" width="{width}" height="{height}" title="Map"></iframe>',
    )
    page.goto(f"{sites['allowed']}{path}")
    frame = framed(page)
    check_embedded_map(frame, sites, search)
    full = read_page_config(page.context.request.get(f"{sites['service']}/maps/{partnership}{search}").text())
    assert frame.locator("#geo-cs-sentence").inner_text() == full["sentence"]
