"""Every route of the web service on the demo database: OGC API Features, tiles, maps, errors."""

from __future__ import annotations

import gzip
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

import mapbox_vector_tile
import pytest
from fastapi.testclient import TestClient

from geo_cs import tiles
from geo_cs.api.app import create_app
from geo_cs.config import Settings
from geo_cs.features import CRS84, EPSG4326, EPSG27700
from geo_cs.maps.page import read_page_config
from tests.test_map_page import SIMD, SIMD_LABELS, glasgow_gap_by_hand

GLASGOW_TILE = (12, *tiles.lonlat_to_tile(-4.25, 55.86, 12))
MEASURE = {"indicator": "employment_deprived"}


@pytest.fixture(scope="module")
def client(demo_db):
    with TestClient(create_app(Settings(db=demo_db))) as c:
        yield c


def problem(response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status and body["detail"]
    assert "Traceback" not in response.text
    return body


# -- OGC API - Features -----------------------------------------------------------------------

def test_landing_page_links_to_api_conformance_collections_and_map(client):
    body = client.get("/").json()
    rels = {link["rel"]: link["href"] for link in body["links"]}
    assert {"self", "service-desc", "service-doc", "conformance", "data"} <= set(rels)
    assert rels["data"].endswith("/collections")
    assert "Open Government Licence v3.0" in body["attribution"]


def test_conformance_declares_core_geojson_and_crs(client):
    classes = client.get("/conformance").json()["conformsTo"]
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core" in classes
    assert "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs" in classes


def test_openapi_publishes_the_default_and_maximum_limit(client):
    response = client.get("/api")
    assert response.headers["content-type"].startswith("application/vnd.oai.openapi+json")
    items = response.json()["paths"]["/collections/{collectionId}/items"]["get"]
    limit = next(p for p in items["parameters"] if p["name"] == "limit")
    assert (limit["schema"]["default"], limit["schema"]["maximum"]) == (1000, 10_000)   # issue 20: large pages


def test_collections_are_geography_vintages_and_the_partnerships_layer(client):
    body = client.get("/collections").json()
    ids = [c["id"] for c in body["collections"]]
    assert {"lsoa2011", "lsoa2021", "datazone2001", "datazone2011", "wpc2010", "partnerships"} <= set(ids)
    lsoa = client.get("/collections/lsoa2011").json()
    assert lsoa["storageCrs"] == EPSG27700 and set(lsoa["crs"]) == {CRS84, EPSG4326, EPSG27700}
    west, south, east, north = lsoa["extent"]["spatial"]["bbox"][0]
    assert -6 < west < east < 2 and 49 < south < north < 56


def test_items_page_with_counts_and_next_prev_links(client):
    first = client.get("/collections/lsoa2011/items", params={"limit": 5})
    assert first.headers["content-type"] == "application/geo+json"
    assert first.headers["content-crs"] == f"<{CRS84}>"
    body = first.json()
    assert body["numberMatched"] == 9941 and body["numberReturned"] == 5 and len(body["features"]) == 5
    links = {link["rel"]: link["href"] for link in body["links"]}
    assert "prev" not in links and "offset=5" in links["next"]
    second = client.get(links["next"]).json()
    assert {link["rel"] for link in second["links"]} >= {"next", "prev"}
    codes = [f["id"] for f in body["features"] + second["features"]]
    assert codes == sorted(codes) and len(set(codes)) == 10
    last = client.get("/collections/lsoa2011/items", params={"limit": 5, "offset": 9940}).json()
    assert last["numberReturned"] == 1 and "next" not in {link["rel"] for link in last["links"]}


def test_bbox_in_each_crs_selects_the_same_areas(client):
    # central Glasgow, a few hundred metres across
    lonlat = client.get("/collections/datazone2011/items",
                        params={"bbox": "-4.26,55.855,-4.245,55.865", "limit": 1000}).json()
    latlon = client.get("/collections/datazone2011/items",
                        params={"bbox": "55.855,-4.26,55.865,-4.245", "bbox-crs": EPSG4326,
                                "limit": 1000}).json()
    codes = {f["id"] for f in lonlat["features"]}
    assert 5 < len(codes) < 100 and codes == {f["id"] for f in latlon["features"]}
    bng = client.get("/collections/datazone2011/items",
                     params={"bbox": "258500,664800,259500,665500", "bbox-crs": "EPSG:27700",
                             "limit": 1000}).json()
    assert 0 < bng["numberMatched"] < lonlat["numberMatched"] + 50


def test_output_crs_27700_and_4326_axis_order(client):
    code = "S01010222"
    bng = client.get(f"/collections/datazone2011/items/{code}", params={"crs": EPSG27700})
    assert bng.headers["content-crs"] == f"<{EPSG27700}>"
    x, y = _first_coordinate(bng.json())
    assert 250_000 < x < 270_000 and 660_000 < y < 670_000
    lat, lon = _first_coordinate(client.get(f"/collections/datazone2011/items/{code}",
                                            params={"crs": EPSG4326}).json())
    assert 55 < lat < 56 and -5 < lon < -4


def _first_coordinate(feature: dict) -> list[float]:
    coords = feature["geometry"]["coordinates"]
    while isinstance(coords[0], list):
        coords = coords[0]
    return coords


def test_indicator_period_partnership_and_property_selection(client):
    body = client.get("/collections/datazone2011/items", params={
        **MEASURE, "period": "simd2012", "partnership": "glasgow", "limit": 10_000,
        "properties": "code,value,value_low,value_high,worst,estimated_share"}).json()
    assert body["numberMatched"] == 746          # Glasgow's 2011 data zones
    props = [f["properties"] for f in body["features"]]
    assert set(props[0]) == {"code", "value", "value_low", "value_high", "worst", "estimated_share"}
    assert all(p["value_low"] <= p["value"] <= p["value_high"] for p in props)
    # SIMD 2012 was carried from 2001 zones: a share of it is estimated
    assert 0.2 < sum(p["estimated_share"] > 0 for p in props) / len(props) < 0.9
    assert 100 < sum(bool(p["worst"]) for p in props) < 400


def test_csv_of_the_same_selection(client):
    params = {**MEASURE, "period": "simd2020", "partnership": "glasgow", "limit": 10_000}
    geojson = client.get("/collections/datazone2011/items", params=params).json()
    csv = client.get("/collections/datazone2011/items", params={**params, "f": "csv"})
    assert csv.headers["content-type"].startswith("text/csv")
    lines = csv.text.strip().splitlines()
    assert lines[0].startswith("code,name,nation,geography,vintage,area_km2,indicator,period,value")
    assert len(lines) - 1 == geojson["numberMatched"]


def test_one_item_by_code_and_partnership_outlines(client):
    # a Hounslow LSOA of the demo bundle, by its code
    item = client.get("/collections/lsoa2021/items/E01033000")
    assert item.status_code == 200 and item.json()["id"] == "E01033000"
    assert problem(client.get("/collections/lsoa2021/items/E01999999"), 404)["detail"].startswith(
        "no item 'E01999999'")
    code = client.get("/collections/lsoa2021/items", params={"limit": 1}).json()["features"][0]["id"]
    feature = client.get(f"/collections/lsoa2021/items/{code}").json()
    assert feature["id"] == code and feature["properties"]["geography"] == "lsoa"
    outlines = client.get("/collections/partnerships/items", params={"limit": 20}).json()
    assert outlines["numberMatched"] == 17
    glasgow = client.get("/collections/partnerships/items/glasgow").json()
    assert glasgow["properties"]["name"] == "Glasgow" and glasgow["geometry"]["type"] in (
        "Polygon", "MultiPolygon")


def test_partnership_outlines_by_bbox_with_chosen_properties_and_as_csv(client):
    url = "/collections/partnerships/items"
    around_glasgow = {"bbox": "-4.4,55.8,-4.1,55.95"}
    page = client.get(url, params={**around_glasgow, "properties": "id,name,areas"}).json()
    ids = [f["id"] for f in page["features"]]
    assert "glasgow" in ids and "east_london" not in ids and page["numberMatched"] == len(ids)
    assert set(page["features"][0]["properties"]) == {"id", "name", "areas"}
    # the same box in British National Grid
    bng = client.get(url, params={"bbox": "245000,660000,265000,670000",
                                  "bbox-crs": EPSG27700}).json()
    assert "glasgow" in [f["id"] for f in bng["features"]]
    two = client.get(url, params={"limit": 2}).json()
    assert two["numberReturned"] == 2 and any(link["rel"] == "next" for link in two["links"])
    table = client.get(url, params={**around_glasgow, "f": "csv", "properties": "id,areas"})
    assert table.headers["content-type"].startswith("text/csv")
    lines = table.text.splitlines()
    assert lines[0] == "id,areas" and any(line.startswith("glasgow,") for line in lines[1:])
    problem(client.get(url, params={"properties": "id,colour"}), 400)


# -- vector tiles -----------------------------------------------------------------------------

def test_tilejson_describes_the_layer_and_its_fields(client):
    body = client.get("/tiles/datazone2011/tilejson.json", params=MEASURE).json()
    # data zones are mostly under a pixel at z6: the layer is worth drawing from z7
    assert body["tilejson"] == "3.0.0" and (body["minzoom"], body["maxzoom"]) == (7, 14)
    assert client.get("/tiles/wpc2010/tilejson.json").json()["minzoom"] == 0
    assert body["tiles"][0].endswith("/tiles/datazone2011/{z}/{x}/{y}.mvt?indicator=employment_deprived"
                                     "&period=simd2020")
    layer = body["vector_layers"][0]
    assert layer["id"] == "datazone2011" and layer["fields"]["worst"] == "Boolean"
    assert "Open Government Licence" in body["attribution"]


def test_tile_decodes_with_values_gzip_and_etag(client):
    z, x, y = GLASGOW_TILE
    url = f"/tiles/datazone2011/{z}/{x}/{y}.mvt"
    plain = client.get(url, params={**MEASURE, "period": "simd2016"}, headers={"Accept-Encoding": "identity"})
    assert plain.headers["content-type"] == "application/vnd.mapbox-vector-tile"
    features = mapbox_vector_tile.decode(plain.content)["datazone2011"]["features"]
    assert len(features) > 50
    props = features[0]["properties"]
    assert {"code", "name", "value", "value_low", "value_high", "worst", "estimated_share"} <= set(props)
    raw = client.get(url, params={**MEASURE, "period": "simd2016"}, headers={"Accept-Encoding": "gzip"})
    # httpx undoes the transfer gzip; the header says it was used
    assert raw.headers["content-encoding"] == "gzip" and raw.content == plain.content
    etag = plain.headers["etag"]
    again = client.get(url, params={**MEASURE, "period": "simd2016"}, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    other = client.get(url, params={**MEASURE, "period": "simd2020"})
    assert other.headers["etag"] != etag and other.content != plain.content


def test_low_zoom_tile_of_every_area_stays_small(client):
    z, x, y = (5, *tiles.lonlat_to_tile(-1.5, 53.5, 5))
    response = client.get(f"/tiles/lsoa2011/{z}/{x}/{y}.mvt", params={**MEASURE,
                          "denominator": "population2019_lsoa11.working_age_population"})
    assert response.status_code == 200 and len(response.content) < 500_000
    assert len(gzip.compress(response.content)) < 250_000


def test_empty_tile_is_204(client):
    assert client.get("/tiles/datazone2011/10/0/0.mvt").status_code == 204


# -- errors -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("url", "params", "status", "names"), [
    ("/collections/nope", {}, 404, "lsoa2011"),
    ("/collections/nope/items", {}, 404, "datazone2011"),
    ("/collections/datazone2011/items", {"indicator": "nope"}, 404, "employment_deprived"),
    ("/collections/datazone2011/items", {**MEASURE, "period": "2001"}, 404, "simd2012, simd2016, simd2020"),
    ("/collections/datazone2011/items", {"partnership": "nope"}, 404, "glasgow"),
    ("/collections/datazone2011/items", {"limit": 10_001}, 400, "limit"),
    ("/collections/datazone2011/items", {"bbox": "1,2,x,4"}, 400, "bbox"),
    ("/collections/datazone2011/items", {"bbox": "1,2,3"}, 400, "4 numbers"),
    ("/collections/datazone2011/items", {"bbox": "10,60,5,50"}, 400, "min must not exceed max"),
    ("/collections/datazone2011/items", {"crs": "EPSG:3857"}, 400, "EPSG/0/27700"),
    ("/collections/datazone2011/items", {"properties": "code,secret"}, 400, "unknown secret"),
    ("/collections/lsoa2011/items/E00000000", {}, 404, "E00000000"),
    ("/tiles/nope/5/15/10.mvt", {}, 404, "datazone2011"),
    ("/tiles/datazone2011/15/0/0.mvt", {}, 400, "z"),
    ("/tiles/datazone2011/3/8/0.mvt", {}, 400, "x and y run 0-7"),
    ("/tiles/datazone2011/12/2000/1278.mvt", {"indicator": "nope"}, 404, "employment_deprived"),
    ("/maps/nope", {}, 404, "glasgow"),
])
def test_errors_are_problem_json_naming_what_is_valid(client, url, params, status, names):
    body = problem(client.get(url, params=params), status)
    assert names in body["detail"]


def test_static_paths_cannot_escape_their_folder(client):
    for path in ("/static/../api/app.py", "/static/%2e%2e/%2e%2e/api/app.py", "/static/..%2f..%2fpyproject.toml"):
        response = client.get(path)
        assert response.status_code == 404 and "create_app" not in response.text


# -- the web map ------------------------------------------------------------------------------

def test_map_index_lists_every_partnership(client):
    html = client.get("/maps/").text
    partnerships = set(re.findall(r'href="/maps/([a-z_]+)"', html)) - {"help"}
    assert len(partnerships) == 17 and "Open Government Licence" in html
    assert 'href="/maps/help"' in html       # the help page, linked from every page


@pytest.mark.slow
def test_map_page_uses_only_the_apps_own_assets(client):
    response = client.get("/maps/glasgow")
    assert response.status_code == 200
    html = response.text
    external = set(re.findall(r"""(?:src|href)=["'](https?:)?//[^"']+""", html))
    assert not external, f"external assets: {external}"
    for asset in re.findall(r"""(?:src|href)=["'](/static/[^"']+)["']""", html):
        assert client.get(asset).status_code == 200, asset
    config = read_page_config(html)
    assert config["layer"] == "datazone2011" and [p["id"] for p in config["periods"]] == [
        "simd2012", "simd2016", "simd2020"]
    assert len(config["breaks"]) == 5 and config["breaks"] == sorted(config["breaks"])
    assert len(config["codes"]) == 746 and "Open Government Licence" in html


def test_english_partnership_map_defaults_to_lsoas_with_a_population_denominator(client):
    html = client.get("/maps/nottingham").text
    config = read_page_config(html)
    assert config["layer"] == "lsoa2011" and config["unit"] == "%"
    assert "denominator=population2019_lsoa11.working_age_population" in config["periods"][0]["tiles"]


SVG = "{http://www.w3.org/2000/svg}"


@dataclass
class Axes:
    """One panel of a matplotlib chart read back from its SVG: the y axis's label, the x ticks'
    (position, label), the dotted vertical lines' positions, and each plotted series (a line
    with markers) as (x position, value), its values read off the y axis's ticks."""

    ylabel: str
    xticks: list[tuple[float, str]]
    dotted: list[float]
    series: dict[str, list[tuple[float, float]]] = field(default_factory=dict)


def _words(element: ET.Element) -> str:
    return " ".join(" ".join(t.itertext()).strip() for t in element.iter(f"{SVG}text")).strip()


def _stroke(element: ET.Element | None) -> str | None:
    found = re.search(r"stroke: (#[0-9a-f]{6})", element.get("style", "")) if element is not None else None
    return found and found[1]


def read_chart(svg: str) -> tuple[str, list[str], list[Axes]]:
    """A gap chart (gap.svg, drawn by matplotlib with words as text) as it reads: its title, every
    line of text, and its panels with their series, named by the chart's key where it has one
    (else by colour). Values come from the pixels through the tick labels, as a reader's eye
    takes them: nothing of the chart's own code is used."""
    root = ET.fromstring(svg)
    figure = root.find(f"{SVG}g[@id='figure_1']")
    legend = figure.find(f"{SVG}g[@id='legend_1']")
    key = {}
    if legend is not None:
        entries = list(legend)
        key = {_stroke(line.find(f"{SVG}path")): _words(label) for line, label in zip(entries[::2], entries[1::2],
                                                                                      strict=True)}
    panels = []
    for axes in (g for g in figure.findall(f"{SVG}g") if g.get("id", "").startswith("axes_")):
        x_axis, y_axis = (g for g in axes.findall(f"{SVG}g") if g.get("id", "").startswith("matplotlib.axis"))
        ticks = [(float(t.find(f".//{SVG}use").get("y")), float(_words(t).replace("\u2212", "-")))
                 for t in y_axis.findall(f"{SVG}g") if t.get("id", "").startswith("ytick")]
        (y0, v0), (y1, v1) = ticks[0], ticks[-1]
        value = lambda y, y0=y0, v0=v0, y1=y1, v1=v1: v0 + (y - y0) * (v1 - v0) / (y1 - y0)  # noqa: E731
        for y, v in ticks:                                   # a linear axis: every tick on the line
            assert value(y) == pytest.approx(v, abs=1e-6 * max(1.0, abs(v)))
        ylabel = _words(next(g for g in y_axis.findall(f"{SVG}g") if g.get("id", "").startswith("text")))
        xticks = [(float(t.find(f".//{SVG}use").get("x")), _words(t))
                  for t in x_axis.findall(f"{SVG}g") if t.get("id", "").startswith("xtick")]
        panel = Axes(ylabel, xticks, [])
        for line in (g for g in axes.findall(f"{SVG}g") if g.get("id", "").startswith("line2d")):
            path = line.find(f"{SVG}path")
            if path is None or path.get("clip-path") is None:
                continue                                     # tick marks, error bar caps
            points = [(float(x), float(y)) for x, y in re.findall(r"[ML] (-?[\d.]+) (-?[\d.]+)", path.get("d"))]
            if "stroke-dasharray" in path.get("style", "") and len({x for x, _ in points}) == 1:
                panel.dotted.append(points[0][0])
            elif line.find(f".//{SVG}use") is not None:      # a line with markers: a series
                colour = _stroke(path)
                panel.series[key.get(colour, colour)] = [(x, value(y)) for x, y in points]
        panels.append(panel)
    return root.findtext(f"{SVG}title"), [_words(t) for t in figure.iter(f"{SVG}g") if t.get("id", "").startswith(
        "text")], panels


def test_gap_chart_plots_each_periods_rates_and_gap_with_attribution(client, demo_db):
    """The panel's chart plots what the figures are, read back from the SVG's pixels: the worst-
    performing neighbourhoods' rate, the rest's and the gap in each SIMD edition (worked out by
    hand on the demo's rows), one point per edition at its labelled tick, the edition asked for
    marked; its title names the partnership and the measure, and the source is credited."""
    response = client.get("/maps/glasgow/gap.svg", params={"geography": "datazone2011", **MEASURE,
                                                            "highlight": "simd2016"})
    assert response.status_code == 200 and response.headers["content-type"] == "image/svg+xml"
    title, texts, (rates, gaps) = read_chart(response.text)
    assert title == "Glasgow: Employment-deprived people (%): worst-performing areas against the rest of the partnership"
    assert "Glasgow: Employment-deprived people (%)" in texts
    assert any("Open Government Licence" in t for t in texts)
    expected = glasgow_gap_by_hand(demo_db)
    assert (rates.ylabel, gaps.ylabel) == ("Rate (%)", "Gap (points)")
    # the editions named under the gap, the panel above on the same ticks
    assert [label for _, label in gaps.xticks] == [SIMD_LABELS[p] for p in SIMD]
    where = [x for x, _ in gaps.xticks]
    assert [x for x, _ in rates.xticks] == pytest.approx(where)
    assert set(rates.series) == {"Worst-performing neighbourhoods", "Rest of the partnership"}
    plotted = {**rates.series, "gap": next(iter(gaps.series.values()))}
    assert len(gaps.series) == 1
    for name, by_hand in (("Worst-performing neighbourhoods", expected.cohort_rate),
                          ("Rest of the partnership", expected.rest_rate), ("gap", expected.gap)):
        points = plotted[name]
        assert [x for x, _ in points] == pytest.approx(where), name        # one point per edition
        assert [v for _, v in points] == pytest.approx([by_hand[p] for p in SIMD], abs=0.01), name
    # SIMD 2016 is marked in both panels
    assert rates.dotted == pytest.approx([where[1]]) and gaps.dotted == pytest.approx([where[1]])


def test_values_are_built_once_however_many_requests_miss_them_together():
    import threading
    import time

    from geo_cs.api.deps import LRUCache

    cache, calls = LRUCache(10), []

    def make():
        calls.append(1)
        time.sleep(0.2)
        return "values"

    results = []
    threads = [threading.Thread(target=lambda: results.append(cache.get_or_make(("k",), make)))
               for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == ["values"] * 8 and len(calls) == 1


def test_the_tile_cache_stays_under_its_byte_budget():
    from geo_cs.api.deps import LRUCache

    cache = LRUCache(100, max_bytes=1000, size_of=len)
    for i in range(10):
        cache.put((i,), b"x" * 300)
    assert cache.bytes <= 1000 and cache.get((9,)) is not None and cache.get((0,)) is None


def test_the_values_cache_counts_what_it_holds_against_its_byte_budget(demo_db):
    from geo_cs.api.deps import approx_bytes

    with TestClient(create_app(Settings(db=demo_db, values_cache_mb=1))) as small:
        for period in ("simd2012", "simd2016", "simd2020"):
            assert small.get("/collections/datazone2011/items",
                             params={**MEASURE, "period": period, "limit": 5}).status_code == 200
        assert small.get("/maps/glasgow").status_code == 200
        cache = small.app.state.values_cache
        assert 0 < cache.bytes <= 1_000_000
        assert cache.bytes == sum(approx_bytes(v) for v in cache._items.values())
    # a measure's values on every data zone are counted in megabytes, not as one item
    with TestClient(create_app(Settings(db=demo_db))) as roomy:
        roomy.get("/collections/datazone2011/items", params={**MEASURE, "limit": 5})
        sizes = [approx_bytes(v) for v in roomy.app.state.values_cache._items.values()]
        assert max(sizes) > 200_000


def test_cors_is_off_unless_origins_are_configured(demo_db):
    origin = {"Origin": "https://maps.example.gov.uk"}
    with TestClient(create_app(Settings(db=demo_db))) as closed:
        assert "access-control-allow-origin" not in closed.get("/collections", headers=origin).headers
    with TestClient(create_app(Settings(db=demo_db, cors_origins=[origin["Origin"]]))) as open_:
        response = open_.get("/tiles/datazone2011/tilejson.json", headers=origin)
        assert response.headers["access-control-allow-origin"] == origin["Origin"]
        other = open_.get("/collections", headers={"Origin": "https://elsewhere.example"})
        assert "access-control-allow-origin" not in other.headers


def test_a_page_from_the_cached_selection_is_the_page_the_database_finds(demo_db):
    from geo_cs.features import ItemQuery, count_items, iter_features, selection_codes, with_page_of
    from geo_cs.store import Store

    with Store.open(demo_db, read_only=True) as store:
        for offset in (0, 250, 1530):
            searched = ItemQuery("datazone2011", limit=100, offset=offset)
            given = with_page_of(searched, selection_codes(store, "datazone2011"))
            assert list(iter_features(store, given)) == list(iter_features(store, searched))
            assert count_items(store, given) == count_items(store, searched)
        # a bbox's page and count come from one search of its codes
        for bbox in [(-4.26, 55.85, -4.2, 55.88), (-4.4, 55.8, -4.1, 55.95), (0.0, 50.0, 0.1, 50.1)]:
            searched = ItemQuery("datazone2011", limit=20, offset=10, bbox=bbox)
            given = with_page_of(searched, selection_codes(store, "datazone2011", bbox=bbox))
            assert list(iter_features(store, given)) == list(iter_features(store, searched))
            assert count_items(store, given) == count_items(store, searched)
        assert count_items(store, given) == 0


def test_a_given_page_carries_the_values_the_database_join_gives(demo_db):
    """A page from a selection gets its measure's values by code in Python; a page found in
    the database joins them there: the same features and the same CSV, areas without a value
    included (the demo's LSOAs outside the published ones)."""
    from geo_cs.features import ItemQuery, iter_csv, iter_features, selection_codes, with_page_of
    from geo_cs.layers import area_values, resolve_measure
    from geo_cs.store import Store

    with Store.open(demo_db, read_only=True) as store:
        for set_id, indicator in [("datazone2011", "employment_deprived"),
                                  ("lsoa2011", "imd2019_indicators.employment_deprived")]:
            values = area_values(store, resolve_measure(store, set_id, indicator))
            period = values.check_period(None)
            at = values.at(period)
            codes = selection_codes(store, set_id)
            # the selection holds areas without a value: in SIMD 2020 the three data zones with no
            # working-age people, and the demo's LSOAs outside its IMD 2019 ones
            missing = set(codes) - set(at.loc[at["value"].notna(), "code"])
            assert missing, set_id
            if set_id == "datazone2011":
                assert missing == {"S01010206", "S01010226", "S01010227"}, sorted(missing)
            for offset in (0, 37, len(codes) - 5):
                searched = ItemQuery(set_id, limit=50, offset=offset, values=at, indicator=indicator,
                                     period=period)
                given = with_page_of(searched, codes)
                features_given = list(iter_features(store, given))
                assert features_given == list(iter_features(store, searched))
                assert "".join(iter_csv(store, given)) == "".join(iter_csv(store, searched))
                assert any('"value":' in f and '"value":null' not in f for f in features_given)


@pytest.mark.parametrize("order", ["forwards", "backwards"])
def test_items_values_follow_the_period_and_threshold_asked_in_either_order(demo_db, order):
    """Items' values are cached per period and measure (with where each code is in them): two
    requests that differ in one parameter get their own figures, whichever came first, and a
    refused one before them leaves nothing behind."""
    url = "/collections/datazone2011/items"
    base = {"indicator": "employment_deprived", "limit": 50, "offset": 100, "f": "csv"}
    asks = [{**base, "period": "simd2012"}, {**base, "period": "simd2020"},
            {**base, "period": "simd2020", "threshold": 10}]
    with TestClient(create_app(Settings(db=demo_db))) as fresh:
        expected = [fresh.get(url, params=a).text for a in asks]
    assert len(set(expected)) == 3   # each parameter changes the answer
    with TestClient(create_app(Settings(db=demo_db))) as c:
        problem(c.get(url, params={**base, "period": "simd1999"}), 404)
        for i in (range(3) if order == "forwards" else reversed(range(3))):
            assert c.get(url, params=asks[i]).text == expected[i]
