"""Real clients against the running service: GDAL (OGC API Features and MVT drivers) and Chromium.

The server is started as users start it (uvicorn on the demo database, a real port). GDAL's
``ogrinfo`` comes from Debian's gdal-bin and the browser is Debian's chromium driven by
Playwright; each test is skipped, saying why, where its client is not installed (``.ci/run``
installs both).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import httpx
import mapbox_vector_tile
import pytest

from geo_cs import tiles
from tests.servers import running_service, static_host, wait_until

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
needs_gdal = pytest.mark.skipif(shutil.which("ogrinfo") is None,
                                reason="GDAL's ogrinfo not installed (Debian gdal-bin)")
needs_chromium = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                    reason="Debian chromium not installed (apt-get install chromium)")


DEBIAN_PYTHON = "/usr/bin/python3"


def _has_pyqgis() -> bool:
    if not Path(DEBIAN_PYTHON).exists():
        return False
    return subprocess.run([DEBIAN_PYTHON, "-c", "import qgis.core"], capture_output=True).returncode == 0


needs_pyqgis = pytest.mark.skipif(not _has_pyqgis(), reason="PyQGIS not installed for Debian's python3 "
                                                            "(apt-get install python3-qgis qgis-providers)")


@pytest.fixture(scope="module")
def logged_server(demo_db, tmp_path_factory):
    """``uvicorn geo_cs.api.app:create_app --factory`` on the demo database with its access log on:
    yields (base URL, the log's path). One server for the file: a start is seconds of imports."""
    log = tmp_path_factory.mktemp("logged") / "uvicorn.log"
    with running_service({"GEO_CS_DB": str(demo_db)}, log, access_log=True) as base:
        yield base, log


@pytest.fixture(scope="module")
def server(logged_server) -> str:
    """The service's base URL."""
    return logged_server[0]


def _requests_since(log: Path, mark: int, path: str) -> list[str]:
    """The request lines for ``path`` the access log has gained since it was ``mark`` bytes."""
    text = log.read_bytes()[mark:].decode()
    return re.findall(rf'"GET ({re.escape(path)}[^ ]*) HTTP', text)


def _ogrinfo(*args: str) -> str:
    result = subprocess.run(["ogrinfo", "-ro", *args], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return result.stdout


# -- GDAL -------------------------------------------------------------------------------------

@needs_gdal
def test_gdal_lists_the_collections(server):
    listing = _ogrinfo("-so", f"OAPIF:{server}")
    for layer in ("lsoa2011", "datazone2011", "wpc2010", "partnerships"):
        assert re.search(rf"^\d+: {layer} \(title: ", listing, re.M), listing


@needs_gdal
def test_gdal_pages_through_every_item_with_attributes(server):
    summary = _ogrinfo("-so", f"OAPIF:{server}", "datazone2011")
    assert "Feature Count: 1535" in summary
    for field in ("code: String", "name: String", "vintage: Integer", "area_km2: Real"):
        assert field in summary
    # a small page size makes GDAL follow many `next` links to the end
    features = _ogrinfo("-al", "-q", "-oo", "PAGE_SIZE=200", f"OAPIF:{server}", "datazone2011")
    codes = re.findall(r"^\s+code \(String\) = (S01\d{6})$", features, re.M)
    assert len(codes) == 1535 and len(set(codes)) == 1535
    assert features.count("MULTIPOLYGON") + features.count("POLYGON ((") >= 1535


@needs_gdal
def test_gdal_reads_indicator_values_for_a_partnership(server):
    url = (f"OAPIF:{server}/collections/datazone2011?indicator=employment_deprived"
           "&period=simd2012&partnership=glasgow")
    features = _ogrinfo("-al", "-q", "-oo", "PAGE_SIZE=500", url)
    values = [float(v) for v in re.findall(r"^\s+value \(Real\) = ([\d.]+)$", features, re.M)]
    assert len(values) == 746 and all(0 <= v <= 100 for v in values)
    assert re.search(r"^\s+worst \(Integer\(Boolean\)\) = 1$", features, re.M)


@needs_gdal
def test_gdal_lists_one_layer_per_map_and_types_them_truthfully(server, tmp_path):
    listing = _ogrinfo("-so", f"OAPIF:{server}")
    assert re.search(r"^\d+: lsoa2011_employment_rate \(title: LSOA 2011: "
                     r"Employment-deprived people, % of working-age population \(16-64\)\)", listing, re.M)
    summary = _ogrinfo("-so", f"OAPIF:{server}", "datazone2011_employment_rate")
    assert "Geometry: Multi Polygon" in summary and "value: Real" in summary
    # a GeoPackage written from it: no "MULTIPOLYGON inserted into layer of type POLYGON"
    gpkg = tmp_path / "glasgow.gpkg"
    result = subprocess.run(["ogr2ogr", "-f", "GPKG", str(gpkg), "-oo", "PAGE_SIZE=1000",
                             f"OAPIF:{server}/collections/datazone2011_employment_rate?partnership=glasgow"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and "inserted into layer of type" not in result.stderr, result.stderr
    info = _ogrinfo("-so", str(gpkg))
    assert "Multi Polygon" in info
    assert "Feature Count: 746" in _ogrinfo("-so", str(gpkg), "datazone2011_employment_rate")


@needs_pyqgis
def test_qgis_adds_a_map_layer_from_the_list_and_the_vector_tiles(server):
    import json

    result = subprocess.run([DEBIAN_PYTHON, str(Path(__file__).with_name("qgis_client.py")), server],
                            capture_output=True, text=True, timeout=300,
                            env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["valid"] and seen["features"] == 1535
    assert seen["wkb_type"] == 6, "QGIS must see MultiPolygon (6)"
    assert {"code", "name", "value", "worst", "period"} <= set(seen["fields"])
    assert seen["values"] > 1500 and 0 < seen["max_value"] <= 100
    assert seen["tiles_valid"]
    # a filtered layer holds what the server's own CQL2 filter selects
    body = httpx.get(f"{server}/collections/datazone2011_employment_rate/items",
                     params={"filter": "value > 20 AND nation = 'S'", "limit": 10000}, timeout=60).json()
    assert seen["subset_ok"] and seen["subset_codes"] == sorted(f["id"] for f in body["features"])
    assert 100 < len(seen["subset_codes"]) < 1535


@needs_gdal
def test_gdal_sends_a_where_to_the_server_as_a_cql2_filter(logged_server, tmp_path):
    """GDAL 3.6 reads the filter-lang enum in /api and the queryables, then turns -where into
    filter=…&filter-lang=cql-text: the server, not GDAL, picks the features."""
    base, log = logged_server
    items = "/collections/datazone2011_employment_rate/items"
    where = "value > 20 AND nation = 'S'"
    before = log.stat().st_size
    matched = httpx.get(f"{base}{items}", params={"filter": where, "limit": 1}, timeout=60).json()["numberMatched"]
    assert 100 < matched < 1535
    # GDAL's requests are those logged after this one's line (written after its response)
    wait_until(lambda: any(r.endswith("limit=1") for r in _requests_since(log, before, items)), 10,
               "the count's request in the access log")
    mark = log.stat().st_size
    features = _ogrinfo("-al", "-q", "-oo", "PAGE_SIZE=200", f"OAPIF:{base}", "datazone2011_employment_rate",
                        "-where", where)
    values = [float(v) for v in re.findall(r"^\s+value \(Real\) = ([\d.]+)$", features, re.M)]
    assert len(values) == matched and min(values) > 20
    pages = -(-matched // 200)

    def logged() -> list[str]:   # each request's line is written after its response
        asked = _requests_since(log, mark, items)
        return asked if sum("filter=" in r for r in asked) >= pages else []

    asked = wait_until(logged, 10, lambda: f"{pages} filtered pages in the access log, which has: "
                                           f"{_requests_since(log, mark, items)}")
    filtered = [r for r in asked if "filter=" in r]
    assert filtered and all("filter-lang=cql-text" in r for r in filtered), asked
    # every page GDAL read was a filtered one: the features it dropped never left the server
    paged = [r for r in asked if "offset=" in r or "filter=" in r]
    assert len(filtered) == pages and set(paged) == set(filtered), asked
    # ... and the pages after the first are pinned to the data version of the first
    assert all("version=" in r for r in filtered[1:])
    # OGR SQL's ILIKE, which GDAL sends as it is (not CQL2), is understood too
    mark = log.stat().st_size
    govan = _ogrinfo("-al", "-q", "-oo", "PAGE_SIZE=1000", f"OAPIF:{base}", "datazone2011_employment_rate",
                     "-where", "name ILIKE 'govan%'")
    names = re.findall(r"^\s+name \(String\) = (.*)$", govan, re.M)
    assert len(names) == 19 and all(n.lower().startswith("govan") for n in names)
    wait_until(lambda: any("ILIKE" in r for r in _requests_since(log, mark, items)), 10,
               lambda: f"GDAL's ILIKE request in the access log: {_requests_since(log, mark, items)}")
    # the same where with ogr2ogr into a GeoPackage
    gpkg = tmp_path / "worst.gpkg"
    result = subprocess.run(["ogr2ogr", "-f", "GPKG", str(gpkg), "-oo", "PAGE_SIZE=1000", f"OAPIF:{base}",
                             "datazone2011_employment_rate", "-where", where],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert f"Feature Count: {matched}" in _ogrinfo("-so", str(gpkg), "datazone2011_employment_rate")


@needs_gdal
def test_gdal_reads_over_vsicurl_which_asks_head_first(server):
    url = f"/vsicurl/{server}/collections/datazone2011/items?limit=5&f=json"
    listing = _ogrinfo("-al", "-so", url)
    assert "Feature Count: 5" in listing


@needs_gdal
def test_gdal_mvt_driver_decodes_a_tile(server, tmp_path):
    z, x, y = 12, *tiles.lonlat_to_tile(-4.25, 55.86, 12)
    response = httpx.get(f"{server}/tiles/datazone2011/{z}/{x}/{y}.mvt",
                         params={"indicator": "employment_deprived"}, timeout=60)
    assert response.status_code == 200
    # GDAL georeferences a lone tile from its z/x/y path
    path = tmp_path / str(z) / str(x) / f"{y}.pbf"
    path.parent.mkdir(parents=True)
    path.write_bytes(response.content)
    # CLIP=NO: GDAL would otherwise drop the areas in the tile's buffer, which MVT tiles carry
    listing = _ogrinfo("-al", "-q", "-oo", "CLIP=NO", str(path))
    expected = len(mapbox_vector_tile.decode(response.content)["datazone2011"]["features"])
    assert listing.count("OGRFeature(datazone2011)") == expected > 50
    assert re.search(r"code \(String\) = S01\d{6}", listing) and "value (Real)" in listing
    west, south, east, north = tiles.tile_bounds(z, x, y)
    points = [tuple(map(float, p.split())) for p in re.findall(r"\(\(?([-\d.]+ [-\d.]+)", listing)]
    inside = [west - 1e4 <= px <= east + 1e4 and south - 1e4 <= py <= north + 1e4 for px, py in points]
    assert points and all(inside), "MVT features must land in the tile's Web Mercator extent"


# -- the web map in Chromium ------------------------------------------------------------------

def _launch(p):
    return p.chromium.launch(executable_path=CHROMIUM, args=[
        "--no-sandbox", "--disable-gpu", "--disable-background-networking"])


def watch_console(page) -> list[str]:
    """Every console error and uncaught exception of ``page`` (a CSP violation is one): a test
    that uses this fails on any of them."""
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"console.{m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"pageerror: {e}"))
    return problems


def in_page(page) -> Callable[[float], None]:
    """A pause for :func:`tests.servers.wait_until` that lets Playwright dispatch ``page``'s
    events meanwhile (its console messages, its requests): a plain sleep would hold them."""
    return lambda seconds: page.wait_for_timeout(seconds * 1000)


def tiles_drawn(page, period: str | None = None, timeout: float = 30_000) -> None:
    """Wait until the map's tiles (of ``period``) are drawn. A selector, not wait_for_function:
    that evaluates a string in the page, which the page's Content-Security-Policy forbids."""
    wanted = f'[data-period="{period}"]' if period else ""
    page.wait_for_selector(f'body{wanted}[data-tiles="loaded"]', state="attached", timeout=timeout)


@needs_chromium
def test_map_draws_tiles_shows_tooltips_and_follows_the_period_slider(server, tmp_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = _launch(p)
        page = browser.new_page(viewport={"width": 1400, "height": 850})
        console = watch_console(page)
        failures: list[str] = []
        page.on("requestfailed", lambda r: failures.append(r.url))
        page.on("response", lambda r: failures.append(f"{r.status} {r.url}") if r.status >= 400 else None)
        page.goto(f"{server}/maps/glasgow")
        tiles_drawn(page)
        map_box = page.locator("#geo-cs-map").bounding_box()
        before = page.locator("#geo-cs-map").screenshot()

        # hover the middle of the city: the tooltip names a data zone with its rate and interval
        page.mouse.move(map_box["x"] + map_box["width"] / 2 - 20, map_box["y"] + map_box["height"] / 2 - 20)
        page.mouse.move(map_box["x"] + map_box["width"] / 2, map_box["y"] + map_box["height"] / 2, steps=5)
        tooltip = page.locator(".leaflet-tooltip")
        tooltip.wait_for(timeout=10_000)
        text = tooltip.inner_text()
        assert re.search(r"S01\d{6}", text) and "%" in text and "95% interval" in text, text
        # a click on an area selects it (VectorGrid 1.3 calls L.DomEvent.fakeStop, gone from
        # Leaflet 1.9: the click then throws instead)
        page.mouse.click(map_box["x"] + map_box["width"] / 2, map_box["y"] + map_box["height"] / 2)
        selected = wait_until(lambda: console or page.evaluate("document.body.dataset.selected"), 10,
                              "the clicked area to be selected", pause=in_page(page))
        assert not console, console
        assert re.fullmatch(r"S01\d{6}", selected), selected

        # move the slider to the first edition: new tiles, new colours, new figures, new address
        page.mouse.move(5, 5)
        page.locator("#geo-cs-period").fill("0")
        tiles_drawn(page, period="simd2012")
        wait_until(lambda: page.locator("#geo-cs-map").screenshot() != before, 10,
                   "the map redrawn in SIMD 2012's colours", pause=in_page(page))
        assert page.locator("#geo-cs-period-label").inner_text().startswith("SIMD 2012")
        assert "csv" in page.locator("#geo-cs-csv").get_attribute("href")
        assert "Open Government Licence" in page.locator(".geo-cs-attribution").inner_text()
        # the address holds the period and the selected area (a click that moved nothing adds no zoom)
        address = urlparse(page.url)
        assert address.path == "/maps/glasgow", page.url
        assert parse_qs(address.query) == {"period": ["simd2012"], "select": [selected]}, page.url
        page.screenshot(path=str(tmp_path / "glasgow-map.png"))

        # the address, shared, opens what the sender saw: same period, same figures
        summary = page.locator("#geo-cs-summary").inner_text()
        other = browser.new_page(viewport={"width": 1400, "height": 850})
        other_console = watch_console(other)
        other.goto(page.url)
        tiles_drawn(other)
        assert other.evaluate("document.body.dataset.period") == "simd2012"
        assert other.locator("#geo-cs-period").input_value() == "0"
        assert other.locator("#geo-cs-summary").inner_text() == summary
        assert not other_console, other_console
        browser.close()
    assert not console, console
    assert not [f for f in failures if "favicon" not in f], failures
    assert (tmp_path / "glasgow-map.png").stat().st_size > 50_000


@needs_chromium
@pytest.mark.slow  # a Chromium session entering breaks: ~10 s; .ci/run runs it
def test_own_breaks_entered_on_the_page_and_a_bad_one_explained(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = _launch(p)
        page = browser.new_page(viewport={"width": 1400, "height": 850})
        console = watch_console(page)
        page.goto(f"{server}/maps/glasgow")
        tiles_drawn(page)
        page.locator("#geo-cs-style summary").click()    # class settings are folded: "Map style"
        page.fill("input[name=breaks]", "10,20,40")
        page.get_by_role("button", name="Apply").click()
        tiles_drawn(page)
        assert "breaks=10%2C20%2C40" in page.url
        legend = page.locator("#geo-cs-legend").inner_text()
        assert "up to 10.0%" in legend and "20.0 – 40.0%" in legend, legend
        page.fill("input[name=breaks]", "10,10,10")
        page.get_by_role("button", name="Apply").click()
        page.wait_for_load_state()
        # a sentence about the person's task, not the parameter check's own words
        assert "each larger than the one before" in page.locator("[role=alert]").inner_text()
        page.get_by_role("link", name="Back to the map as it first opens").click()
        tiles_drawn(page)
        # the 400 is the error page's own status: the only console line it leaves is the browser's
        # note of it, which is not a script error
        assert all("status of 400" in c for c in console), console
        browser.close()


@needs_chromium
@pytest.mark.slow  # a Chromium session over two maps: ~11 s; .ci/run runs it
def test_changing_the_indicator_takes_its_own_denominator(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = _launch(p)
        page = browser.new_page(viewport={"width": 1400, "height": 850})
        console = watch_console(page)
        page.goto(f"{server}/maps/nottingham")
        tiles_drawn(page)
        assert page.locator("#geo-cs-denominator").count() == 1
        # the picker speaks in words; the working-age denominator stays with the measure it was for
        options = page.locator("#geo-cs-view option").all_inner_texts()
        assert "Employment-deprived people, % of working-age population (16-64)" in options
        assert not [o for o in options if re.search(r"\w+\.\w+", o)], "raw indicator ids in the picker"
        page.select_option("#geo-cs-view", label="Total population (number)")
        tiles_drawn(page)
        assert "indicator=total_population" in page.url and "denominator" not in page.url
        assert page.locator(".geo-cs-note").count() == 0
        assert "157.8" not in page.locator("#geo-cs-summary").inner_text()
        browser.close()
    assert not console, console


@pytest.mark.slow
@needs_chromium
def test_static_site_works_from_pmtiles_with_no_geo_cs_server(demo_db, tmp_path):
    """`geo-cs export site` output, served by a plain static file server (byte ranges, nothing
    else): the page draws its tiles from the PMTiles archives and shows tooltips."""
    from playwright.sync_api import sync_playwright

    site = tmp_path / "site"
    result = subprocess.run([sys.executable, "-m", "geo_cs.cli", "--db", str(demo_db), "-q", "export", "site",
                             "-p", "glasgow", "-o", str(site)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (site / "tiles").iterdir()) == [
        "simd2012.pmtiles", "simd2016.pmtiles", "simd2020.pmtiles"]
    with static_host(site) as host, sync_playwright() as p:
        browser = _launch(p)
        page = browser.new_page(viewport={"width": 1400, "height": 850})
        console = watch_console(page)
        requests: list[str] = []
        page.on("request", lambda r: requests.append(r.url))
        page.goto(f"{host}/index.html")
        tiles_drawn(page)
        box = page.locator("#geo-cs-map").bounding_box()
        page.mouse.move(box["x"] + box["width"] / 2 - 20, box["y"] + box["height"] / 2 - 20)
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2, steps=5)
        page.locator(".leaflet-tooltip").wait_for(timeout=10_000)
        assert re.search(r"S01\d{6}", page.locator(".leaflet-tooltip").inner_text())
        assert not console, console
        browser.close()
    assert any(url.endswith(".pmtiles") for url in requests)
    assert all(url.startswith(f"{host}/") for url in requests), "only the static host"
