"""No waste (issue 16, point 14): text compressed, assets cached for good, each tile fetched once.

Headers are checked against the app itself (TestClient on the demo database, and the ASGI
messages of a streamed response); the tile count in Chromium against a running uvicorn, counted
twice over: in the browser (a request that reaches the network carries raw headers, which the
DevTools protocol reports as ``responseReceivedExtraInfo``; one answered by the HTTP cache does
not) and in the server's own access log. Timings are not asserted here: the slider step is
measured by ``bench/bench_map_slider.py``.
"""

from __future__ import annotations

import collections
import hashlib
import json
import re
import zlib
from pathlib import Path
from urllib.parse import unquote, urlsplit

import anyio
import mapbox_vector_tile
import pytest
from fastapi.testclient import TestClient

from geo_cs import tiles
from geo_cs.api.app import create_app
from geo_cs.api.static import IMMUTABLE, SHORT
from geo_cs.config import Settings
from geo_cs.maps import STATIC_DIR, asset_url, split_fingerprint
from geo_cs.maps.page import MapRequest, MapSources, StaticSiteUrls, gather_map, render_map_page
from geo_cs.store import Store
from tests.servers import running_service, wait_until
from tests.test_clients import _launch, in_page, needs_chromium, tiles_drawn, watch_console

GZIP = {"Accept-Encoding": "gzip"}
IDENTITY = {"Accept-Encoding": "identity"}
GLASGOW_TILE = (12, *tiles.lonlat_to_tile(-4.25, 55.86, 12))


@pytest.fixture(scope="module")
def client(demo_db):
    with TestClient(create_app(Settings(db=demo_db))) as c:
        yield c


def _page_assets(html: str) -> list[str]:
    """The /static URLs a page's <script src> and <link href> name."""
    return re.findall(r'(?:src|href)="(/static/[^"]+)"', html)


# -- compression --------------------------------------------------------------------------------

TEXT_URLS = {
    "html": "/maps/glasgow",
    "json": "/collections",
    "openapi": "/api",
    "tilejson": "/tiles/datazone2011/tilejson.json?indicator=employment_deprived",
    "geojson": "/collections/datazone2011/items?limit=200",
    "csv": "/collections/datazone2011/items?limit=200&f=csv",
    "svg": "/maps/glasgow/gap.svg?geography=datazone2011&indicator=employment_deprived",
    "css": "/static/geo-cs/map.css",
    "js": "/static/geo-cs/map.js",
    "vendored js": "/static/vendor/leaflet@1.9.4/dist/leaflet.js",
}


@pytest.mark.parametrize("kind", TEXT_URLS)
def test_every_text_response_is_gzipped_when_the_client_accepts_it(client, kind):
    url = TEXT_URLS[kind]
    plain = client.get(url, headers=IDENTITY)
    packed = client.get(url, headers=GZIP)
    assert plain.status_code == packed.status_code == 200, (plain.status_code, plain.text[:300])
    assert "content-encoding" not in plain.headers
    assert packed.headers["content-encoding"] == "gzip"
    assert "accept-encoding" in packed.headers["vary"].lower()
    assert packed.headers["content-type"] == plain.headers["content-type"]
    # httpx undid the gzip once: the same bytes as the plain answer, in far fewer on the wire
    if kind == "svg":       # matplotlib draws fresh element ids each time
        assert packed.content.startswith(b"<?xml") and packed.content.endswith(b"</svg>\n")
    else:
        assert packed.content == plain.content
    assert packed.num_bytes_downloaded < 0.6 * len(plain.content), (packed.num_bytes_downloaded,
                                                                    len(plain.content))


def test_a_tile_is_gzipped_once_and_only_when_asked(client):
    z, x, y = GLASGOW_TILE
    url = f"/tiles/datazone2011/{z}/{x}/{y}.mvt?indicator=employment_deprived"
    packed = client.get(url, headers=GZIP)
    plain = client.get(url, headers=IDENTITY)
    assert packed.headers["content-encoding"] == "gzip"
    assert "content-encoding" not in plain.headers
    # decoded once by httpx, the body is the tile itself: not a second gzip stream
    assert packed.content[:2] != b"\x1f\x8b"
    assert packed.content == plain.content
    assert int(packed.headers["content-length"]) == packed.num_bytes_downloaded < len(plain.content)
    layer = mapbox_vector_tile.decode(packed.content)["datazone2011"]
    assert len(layer["features"]) > 50


def test_images_and_small_bodies_are_sent_as_they_are(client):
    png = client.get("/static/vendor/leaflet@1.9.4/dist/images/layers.png", headers=GZIP)
    assert png.status_code == 200 and "content-encoding" not in png.headers
    health = client.get("/health", headers=GZIP)       # ~300 bytes: under the threshold
    assert health.status_code == 200 and "content-encoding" not in health.headers


def _asgi_get(client: TestClient, path: str, query: str) -> list[dict]:
    """The ASGI messages the app sends for a GET with ``Accept-Encoding: gzip`` (on the
    TestClient's own event loop, so the app's state from its lifespan is there)."""
    messages: list[dict] = []
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
             "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "",
             "query_string": query.encode(), "headers": [(b"host", b"testserver"),
                                                         (b"accept-encoding", b"gzip")],
             "client": ("127.0.0.1", 1), "server": ("testserver", 80), "state": {}}

    requested = False

    async def receive():
        nonlocal requested
        if requested:                 # the client stays connected until the response ends
            await anyio.sleep_forever()
        requested = True
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        messages.append(message)

    client.portal.call(client.app, scope, receive, send)
    return messages


def test_streamed_geojson_is_compressed_as_it_streams(client):
    messages = _asgi_get(client, "/collections/datazone2011/items", "limit=1500")
    start, bodies = messages[0], [m for m in messages if m["type"] == "http.response.body"]
    headers = {k.decode().lower(): v.decode() for k, v in start["headers"]}
    assert headers["content-encoding"] == "gzip" and "content-length" not in headers
    # several body messages, the first already decodable on its own: the page streams
    assert len(bodies) > 2 and bodies[0]["more_body"] is True
    decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
    first = decoder.decompress(bodies[0]["body"])
    assert first.startswith(b'{"type":"FeatureCollection"') or first.startswith(b'{"type": "FeatureCollection"')
    rest = b"".join(decoder.decompress(b["body"]) for b in bodies[1:]) + decoder.flush()
    assert len(json.loads(first + rest)["features"]) == 1500


def test_the_response_cap_counts_uncompressed_bytes(demo_db):
    """The cap is on what the service makes (JSON), not on what gzip sends: the cut comes at
    1 MB of JSON, sent compressed and left unfinished (tests/test_api_limits.py shows a real
    client reports it incomplete)."""
    with (TestClient(create_app(Settings(db=demo_db, max_response_mb=1))) as capped,
          capped.stream("GET", "/collections/lsoa2011/items?limit=10000", headers=GZIP) as response):
        assert response.headers["content-encoding"] == "gzip"
        raw = b"".join(response.iter_raw())
    decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
    assert len(decoder.decompress(raw)) == 1_000_000
    assert not decoder.eof                      # the gzip stream was not finished: a visible cut
    assert len(raw) < 1_000_000


# -- fingerprinted assets --------------------------------------------------------------------------

def test_the_map_page_names_its_own_assets_by_content_and_they_are_cached_for_a_year(client):
    html = client.get("/maps/glasgow").text
    assets = _page_assets(html)
    own = [a for a in assets if "/geo-cs/" in a]
    assert len(own) == 3, assets          # map.js, map.css and custom.js (your own area, sharing)
    for url in own:
        plain, digest = split_fingerprint(url.removeprefix("/static/"))
        assert digest == hashlib.sha256((STATIC_DIR / plain).read_bytes()).hexdigest()[:12], url
    for url in assets:
        response = client.get(url)
        assert response.status_code == 200, url
        assert response.headers["cache-control"] == IMMUTABLE, url
        # a revalidation (a browser's reload) keeps the lifetime
        again = client.get(url, headers={"If-None-Match": response.headers["etag"]})
        assert again.status_code == 304 and again.headers["cache-control"] == IMMUTABLE, url
    script = next(u for u in own if u.endswith(".js"))
    assert client.get(script).content == (STATIC_DIR / "geo-cs" / "map.js").read_bytes()


def test_plain_and_stale_asset_names_get_a_short_lifetime(client):
    plain = client.get("/static/geo-cs/map.js")
    assert plain.status_code == 200 and plain.headers["cache-control"] == SHORT
    # an older version's name (a page cached before a deployment) still gets the current file,
    # but not for a year: a later page names the right one
    stale = client.get("/static/geo-cs/map.000000000000.js")
    assert stale.status_code == 200 and stale.headers["cache-control"] == SHORT
    assert stale.content == plain.content
    assert client.get("/static/geo-cs/map.js?v=000000000000").headers["cache-control"] == SHORT
    assert client.get(asset_url("geo-cs/map.js", "/static", in_path=False)).headers["cache-control"] \
        == IMMUTABLE
    assert client.get("/static/geo-cs/nothing.0123456789ab.js").status_code == 404
    assert client.get("/static/geo-cs/../../__init__.py").status_code == 404


def test_a_static_site_names_its_assets_by_query_so_any_host_serves_them(demo_db):
    with Store.open(demo_db, read_only=True) as store:
        data = gather_map(MapSources(store), MapRequest("glasgow"))
        html = render_map_page(data, StaticSiteUrls())
    named = re.findall(r'(?:src|href)="(static/geo-cs/[^"]+)"', html)
    assert len(named) == 2, named
    for url in named:
        path, _, query = url.partition("?")
        digest = hashlib.sha256((STATIC_DIR / path.removeprefix("static/")).read_bytes()).hexdigest()
        assert query == f"v={digest[:12]}", url


# -- each tile once, in Chromium -------------------------------------------------------------------

@pytest.fixture(scope="module")
def logged_server(demo_db, tmp_path_factory):
    """uvicorn on the demo database with its access log on: (base URL, log file)."""
    log = tmp_path_factory.mktemp("access") / "uvicorn.log"
    with running_service({"GEO_CS_DB": str(demo_db)}, log, access_log=True) as base:
        yield base, log


def _served(log: Path, start: int) -> collections.Counter:
    """Requests in the access log after byte ``start``, by path and query."""
    text = log.read_bytes()[start:].decode()
    return collections.Counter(unquote(m) for m in re.findall(r'"GET (\S+) HTTP/1\.1" \d{3}', text))


def _path(url: str) -> str:
    parts = urlsplit(url)
    return unquote(parts.path + (f"?{parts.query}" if parts.query else ""))


@needs_chromium
@pytest.mark.slow  # a whole browsing session counted in Chromium and the access log: ~15 s; .ci/run runs it
def test_each_tile_and_asset_reaches_the_network_once_per_view(logged_server):
    """Two layers (colours on canvas, hatching on SVG) draw from the same tile URLs, and the
    slider goes there and back: the page fetches each tile once and shares the decoded tile
    between its layers and periods (``map.js``), and the network sees each tile once."""
    from playwright.sync_api import sync_playwright

    base, log = logged_server
    start = log.stat().st_size
    with sync_playwright() as p:
        browser = _launch(p)
        page = browser.new_page(viewport={"width": 1400, "height": 850})
        console = watch_console(page)
        cdp = page.context.new_cdp_session(page)
        cdp.send("Network.enable")
        url_of: dict[str, str] = {}
        to_network: collections.Counter = collections.Counter()
        asked: collections.Counter = collections.Counter()
        cdp.on("Network.requestWillBeSent", lambda e: url_of.__setitem__(e["requestId"], e["request"]["url"]))
        # raw response headers exist only for a request that went out on the wire
        cdp.on("Network.responseReceivedExtraInfo", lambda e: to_network.update([e["requestId"]]))
        page.on("request", lambda r: asked.update([r.url]))
        page.goto(f"{base}/maps/glasgow")
        tiles_drawn(page)
        periods = ["simd2012", "simd2016", "simd2020"]
        for _ in range(2):                       # there and back again: the second pass is warm
            for index, period in enumerate(periods):
                page.locator("#geo-cs-period").fill(str(index))
                tiles_drawn(page, period=period)
        tile_urls = [u for u in asked if ".mvt" in u]

        def unseen() -> set[str]:
            return set(tile_urls) - {url_of.get(r) for r in to_network}

        # the DevTools events of the last responses may come after the drawing
        wait_until(lambda: not unseen(), 10, lambda: f"the network events of every tile; none for {unseen()}",
                   pause=in_page(page))
        browser.close()
    assert not console, console

    network = collections.Counter(url_of[r] for r in to_network if r in url_of)
    assert len(tile_urls) >= 3 * 12, "every period's tiles were asked for"
    # two layers and two passes over the periods, yet the page asked for each tile once ...
    assert {u: asked[u] for u in tile_urls if asked[u] != 1} == {}
    # ... and each went to the network once (as the browser saw it, and as the server did)
    assert {u: n for u, n in network.items() if n > 1} == {}
    assert all(network[u] == 1 for u in tile_urls), [u for u in tile_urls if network[u] != 1]
    paths = {_path(u) for u in tile_urls}

    def logged() -> collections.Counter:   # each request's line is written after its response
        served = _served(log, start)
        return served if paths <= set(served) else collections.Counter()

    served = wait_until(logged, 10, lambda: f"every tile in the access log; missing {paths - set(_served(log, start))}")
    tiles_served = {u: n for u, n in served.items() if ".mvt" in u}
    assert set(tiles_served) == paths
    assert {u: n for u, n in served.items() if n > 1} == {}, "nothing is fetched twice"
    static = [u for u in served if u.startswith("/static/")]
    assert len(static) >= 5, static
