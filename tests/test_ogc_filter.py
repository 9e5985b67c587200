"""OGC API - Features Part 3 on the demo store: queryables as JSON Schema, CQL2 text filters
checked against the same selection filtered in Python, sortby, pages pinned to one data version
across an update, downloads named for what they hold, and bad filters answered 400 naming the
problem (never 500). GDAL's and QGIS's view of the same is in ``test_clients.py``."""

from __future__ import annotations

import re
import shutil
import time
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shapely.geometry import box, shape

from geo_cs.api.app import create_app
from geo_cs.config import Settings
from geo_cs.store import updating

MEASURE = "/collections/datazone2011_employment_rate"
ITEMS = f"{MEASURE}/items"
AREAS = "/collections/datazone2011/items"
GLASGOW_BOX = (-4.30, 55.84, -4.22, 55.88)


@pytest.fixture(scope="module")
def client(demo_db):
    with TestClient(create_app(Settings(db=demo_db))) as c:
        yield c


@pytest.fixture(scope="module")
def every_item(client) -> list[dict]:
    """Every item of the measure collection, unfiltered (the reference for the filters)."""
    body = client.get(ITEMS, params={"limit": 10000}).json()
    assert body["numberMatched"] == len(body["features"]) == 1535
    return body["features"]


def _get(client, url: str = ITEMS, **params) -> dict:
    response = client.get(url, params={"limit": 10000, **params})
    assert response.status_code == 200, response.text
    return response.json()


def _codes(body: dict) -> list[str]:
    return [f["properties"]["code"] for f in body["features"]]


# -- queryables and conformance --------------------------------------------------------------

def test_queryables_are_a_json_schema_of_typed_properties(client):
    response = client.get(f"{MEASURE}/queryables")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/schema+json"
    schema = response.json()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"].endswith(f"{MEASURE}/queryables") and schema["type"] == "object"
    props = schema["properties"]
    assert {k: props[k]["type"] for k in ("code", "name", "vintage", "value", "worst")} == {
        "code": "string", "name": "string", "vintage": "integer", "value": "number", "worst": "boolean"}
    assert props["geometry"]["format"] == "geometry-multipolygon"
    # a boundary set's items carry no measure: nor do its queryables, unless indicator= is given
    assert "value" not in client.get("/collections/datazone2011/queryables").json()["properties"]
    assert "value" in client.get("/collections/datazone2011/queryables",
                                 params={"indicator": "employment_deprived"}).json()["properties"]
    assert client.get("/collections/partnerships/queryables").json()["properties"] == {}
    # a client that accepts only application/json (GDAL 3.6) gets the same document as that
    as_json = client.get(f"{MEASURE}/queryables", headers={"Accept": "application/json"})
    assert as_json.headers["content-type"] == "application/json" and as_json.json() == schema


def test_conformance_and_collections_advertise_filtering(client):
    classes = client.get("/conformance").json()["conformsTo"]
    for cls in ("ogcapi-features-3/1.0/conf/queryables", "ogcapi-features-3/1.0/conf/filter",
                "ogcapi-features-3/1.0/conf/features-filter", "cql2/1.0/conf/cql2-text",
                "cql2/1.0/conf/basic-cql2", "cql2/1.0/conf/advanced-comparison-operators",
                "cql2/1.0/conf/basic-spatial-functions"):
        assert f"http://www.opengis.net/spec/{cls}" in classes
    links = client.get(MEASURE).json()["links"]
    queryables = [link for link in links if link["rel"] == "http://www.opengis.net/def/rel/ogc/1.0/queryables"]
    assert queryables and queryables[0]["href"].endswith(f"{MEASURE}/queryables")
    assert queryables[0]["type"] == "application/schema+json"
    parameters = {p["name"]: p for p in client.get("/api").json()["paths"][
        "/collections/{collectionId}/items"]["get"]["parameters"]}
    assert {"filter", "filter-lang", "filter-crs", "sortby"} <= set(parameters)
    assert "cql2-text" in parameters["filter-lang"]["schema"]["enum"]


# -- filters: the same selection as Python finds ---------------------------------------------

def _v(f: dict) -> float | None:
    return f["properties"]["value"]


CASES = [
    ("value > 20", lambda f: _v(f) is not None and _v(f) > 20),
    ("value >= 20 AND value < 30", lambda f: _v(f) is not None and 20 <= _v(f) < 30),
    ("value BETWEEN 10 AND 15", lambda f: _v(f) is not None and 10 <= _v(f) <= 15),
    ("NOT (value BETWEEN 10 AND 15)", lambda f: _v(f) is not None and not 10 <= _v(f) <= 15),
    ("value < 2 OR value > 40", lambda f: _v(f) is not None and (_v(f) < 2 or _v(f) > 40)),
    ("worst", lambda f: f["properties"]["worst"] is True),
    ("worst = 1", lambda f: f["properties"]["worst"] is True),    # as GDAL writes it (Integer(Boolean))
    ("worst = FALSE AND value > 25", lambda f: f["properties"]["worst"] is False and _v(f) > 25),
    ("code IN ('S01010206', 'S01010207', 'S01009999')",
     lambda f: f["properties"]["code"] in ("S01010206", "S01010207", "S01009999")),
    ("code NOT IN ('S01010206')", lambda f: f["properties"]["code"] != "S01010206"),
    ("name LIKE 'Govan%'", lambda f: (f["properties"]["name"] or "").startswith("Govan")),
    ("CASEI(name) LIKE 'govan%'", lambda f: (f["properties"]["name"] or "").lower().startswith("govan")),
    # GDAL sends OGR SQL's ILIKE as it is: taken as CASEI(name) LIKE CASEI('govan%')
    ("name ILIKE 'GOVAN%'", lambda f: (f["properties"]["name"] or "").lower().startswith("govan")),
    ("name LIKE '% - 0_'", lambda f: re.fullmatch(r".* - 0.", f["properties"]["name"] or "") is not None),
    ("value IS NULL", lambda f: _v(f) is None),
    ("NOT value IS NULL AND area_km2 > 1", lambda f: _v(f) is not None and f["properties"]["area_km2"] > 1),
    ("vintage = 2011 AND nation = 'S'", lambda f: True),
    ("S_INTERSECTS(geometry, BBOX({}, {}, {}, {}))".format(*GLASGOW_BOX),
     lambda f: shape(f["geometry"]).intersects(box(*GLASGOW_BOX))),
    ("S_INTERSECTS(geometry, POLYGON((-4.30 55.84, -4.22 55.84, -4.26 55.88, -4.30 55.84)))",
     lambda f: shape(f["geometry"]).intersects(shape({"type": "Polygon", "coordinates": [[
         (-4.30, 55.84), (-4.22, 55.84), (-4.26, 55.88), (-4.30, 55.84)]]}))),
    ("S_INTERSECTS(geometry, POINT(-4.25 55.86)) OR code = 'S01010206'",
     lambda f: shape(f["geometry"]).intersects(shape({"type": "Point", "coordinates": (-4.25, 55.86)}))
     or f["properties"]["code"] == "S01010206"),
    ("S_WITHIN(geometry, BBOX({}, {}, {}, {}))".format(*GLASGOW_BOX),
     lambda f: shape(f["geometry"]).within(box(*GLASGOW_BOX))),
]


@pytest.mark.parametrize(("text", "keep"), CASES, ids=[c[0][:40] for c in CASES])
def test_a_filter_selects_what_python_selects(client, every_item, text, keep):
    body = _get(client, filter=text)
    expected = [f["properties"]["code"] for f in every_item if keep(f)]
    assert _codes(body) == expected
    assert body["numberMatched"] == len(expected)
    assert len(expected) > 0 or text == "value IS NULL"


def test_filters_that_select_nothing_or_everything_are_not_errors(client):
    assert _get(client, filter="value > 1000")["numberMatched"] == 0
    assert _get(client, filter="code LIKE 'S01%'")["numberMatched"] == 1535
    # a backslash makes a wildcard literal: no name holds an underscore
    named = _get(client, filter="NOT name IS NULL")["numberMatched"]
    assert _get(client, filter="name LIKE '%_%'")["numberMatched"] == named > 1000
    assert _get(client, filter="name LIKE '%\\_%'")["numberMatched"] == 0


def test_a_filter_combines_with_bbox_partnership_and_paging(client):
    base = {"filter": "value > 15", "bbox": ",".join(map(str, GLASGOW_BOX)), "partnership": "glasgow"}
    whole = _get(client, **base)
    assert 0 < whole["numberMatched"] < 1535
    assert all(f["properties"]["value"] > 15 for f in whole["features"])
    seen, url = [], None
    page = client.get(ITEMS, params={**base, "limit": 7}).json()
    while True:
        seen += _codes(page)
        url = next((link["href"] for link in page["links"] if link["rel"] == "next"), None)
        if url is None:
            break
        assert "filter=value" in url
        page = client.get(url).json()
    assert seen == _codes(whole)


def test_filter_crs_gives_the_same_areas_in_every_crs(client):
    west, south, east, north = GLASGOW_BOX
    lonlat = _codes(_get(client, filter=f"S_INTERSECTS(geometry, BBOX({west},{south},{east},{north}))"))
    latlon = _codes(_get(client, **{"filter": f"S_INTERSECTS(geometry, BBOX({south},{west},{north},{east}))",
                                   "filter-crs": "http://www.opengis.net/def/crs/EPSG/0/4326"}))
    assert lonlat and latlon == lonlat
    # a British National Grid box around the same place: most of the same areas
    bng = _codes(_get(client, **{"filter": "S_INTERSECTS(geometry, BBOX(255000,663000,260000,667000))",
                                "filter-crs": "EPSG:27700"}))
    assert bng and set(bng) & set(lonlat)


def test_csv_takes_the_same_filter(client):
    response = client.get(ITEMS, params={"filter": "value > 30", "f": "csv", "limit": 10000})
    assert response.status_code == 200
    rows = response.text.strip().splitlines()[1:]
    assert len(rows) == _get(client, filter="value > 30")["numberMatched"]


# -- sortby -----------------------------------------------------------------------------------

def test_sortby_orders_pages_and_breaks_ties_by_code(client, every_item):
    body = _get(client, sortby="-value,name")
    values = [f["properties"]["value"] for f in body["features"]]
    present = [v for v in values if v is not None]
    assert present == sorted(present, reverse=True)
    assert values[len(present):] == [None] * (len(values) - len(present))   # nulls last
    # + arrives as a space in a query string: both mean ascending
    up = _codes(_get(client, sortby="+area_km2"))
    assert up == _codes(_get(client, sortby=" area_km2")) == _codes(_get(client, sortby="area_km2"))
    areas = {f["properties"]["code"]: f["properties"]["area_km2"] for f in every_item}
    assert up == sorted(areas, key=lambda c: (areas[c], c))
    # ties (every area is vintage 2011) fall back to the code: pages never overlap
    paged = []
    for offset in range(0, 1535, 400):
        paged += _codes(client.get(ITEMS, params={"sortby": "vintage", "limit": 400, "offset": offset}).json())
    assert paged == sorted(areas)


def test_sortby_with_filter_on_a_boundary_set(client):
    body = _get(client, AREAS, filter="name LIKE 'G%'", sortby="-code")
    codes = _codes(body)
    assert codes == sorted(codes, reverse=True) and len(codes) > 10


# -- bad filters: 400 naming the problem --------------------------------------------------------

BAD = [
    ({"filter": "colour = 'red'"}, "unknown property 'colour'; queryables: code, name"),
    ({"filter": "value > 20"}, None),   # fine on the measure: see below for the boundary set
    ({"filter": "value >"}, "not CQL2 text at line 1, column 8"),
    ({"filter": "code = 3"}, "= compares a string with a number"),
    ({"filter": "value LIKE 'x%'"}, "LIKE compares strings"),
    ({"filter": "value"}, "property 'value' is a number, not a condition"),
    ({"filter": "value + 1 > 2"}, "'+' is not supported here"),
    ({"filter": "T_AFTER(value, DATE('2020-01-01'))"}, "operator 't_after' is not supported"),
    ({"filter": "S_INTERSECTS(geometry, POLYGON((0 0, 1 1)))"}, "Polygon literal is not a geometry"),
    ({"filter": "S_INTERSECTS(geometry, POLYGON((0 0, 1 1, 1 0, 0 1, 0 0)))"}, "not a valid geometry"),
    ({"filter": "S_INTERSECTS(geometry, BBOX(1, 2))"}, "BBOX takes 4 (or 6) finite numbers"),
    ({"filter": "S_INTERSECTS(geometry, BBOX(2, 2, 1, 1))"}, "min must not exceed max"),
    ({"filter": "S_INTERSECTS(value, BBOX(1, 2, 3, 4))"}, "takes the geometry property and one literal"),
    ({"filter": "geometry = 1"}, "geometry is compared only by spatial predicates"),
    ({"filter": "value > 1e999"}, "the number is not finite"),
    ({"filter": "(" * 60 + "value > 1" + ")" * 60}, "nested 60 deep; at most 40"),
    ({"filter": "NOT " * 100 + "worst"}, "100 NOTs; at most 40"),
    ({"filter": "-" * 3000 + "1 < value"}, "a run of minus signs"),
    ({"filter": " "}, "filter: empty"),
    ({"filter": "value > 1", "filter-lang": "cql2-json"}, "filter-lang"),
    ({"filter": "value > 1", "filter-crs": "EPSG:3857"}, "filter-crs='EPSG:3857': expected one of"),
    ({"filter-crs": "EPSG:27700"}, "filter-crs needs a filter"),
    ({"sortby": "colour"}, "sortby: unknown property 'colour'; sortable queryables: code, name"),
    ({"sortby": "geometry"}, "sortby: unknown property 'geometry'"),
    ({"sortby": "value,,name"}, "an empty name"),
    ({"sortby": "value,-value"}, "a property named twice"),
]


@pytest.mark.parametrize(("params", "says"), BAD, ids=[str(p)[:50] for p, _ in BAD])
def test_a_bad_filter_or_sortby_is_a_400_saying_why(client, params, says):
    response = client.get(ITEMS, params={"limit": 1, **params})
    if says is None:
        assert response.status_code == 200
        return
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert says in response.json()["detail"]


def test_nesting_that_would_overflow_the_parser_is_refused_before_it(client):
    """cql2 0.6 recurses: ~2,000 nested parentheses overflow its stack and kill the process
    (measured). Parentheses need no escaping in a URL, so 2,500 fit in the 8 KB limit."""
    response = client.get(f"{ITEMS}?filter={'(' * 2500}value>1{')' * 2500}")
    assert response.status_code == 400 and "nested 2500 deep" in response.json()["detail"]
    assert client.get(f"{ITEMS}?filter={'(' * 40}value>1{')' * 40}&limit=1").status_code == 200


def test_a_measure_property_on_a_boundary_set_lists_its_queryables(client):
    detail = client.get(AREAS, params={"filter": "value > 20"}).json()["detail"]
    assert detail == ("filter: unknown property 'value'; queryables: code, name, nation, geography, "
                      "vintage, area_km2, geometry")
    assert client.get(AREAS, params={"filter": "value > 20", "indicator": "employment_deprived",
                                     "limit": 1}).status_code == 200


def test_partnerships_take_no_filter(client):
    response = client.get("/collections/partnerships/items", params={"filter": "name = 'x'"})
    assert response.status_code == 400 and "takes no filter or sortby" in response.json()["detail"]


# Words and symbols a filter is made of, shuffled: whatever comes of it is a 200 or a 400.
_TOKENS = ["value", "name", "code", "worst", "geometry", "colour", "AND", "OR", "NOT", "IN", "LIKE",
           "BETWEEN", "IS", "NULL", "TRUE", "S_INTERSECTS", "BBOX", "POINT", "POLYGON", "CASEI",
           "(", ")", ",", "=", "<>", "<", ">=", "+", "-", "'S01%'", "'x''y'", "''", "1", "-4.25",
           "55.8", "1e308", "20", "\"value\"", "DATE('2020-01-01')", "[", "]", "%", "\\", "é"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tokens=st.lists(st.sampled_from(_TOKENS), min_size=1, max_size=14))
def test_any_filter_made_of_cql2_words_is_answered_200_or_400(client, tokens):
    response = client.get(ITEMS, params={"filter": " ".join(tokens), "limit": 2})
    assert response.status_code in (200, 400), (tokens, response.text)
    if response.status_code == 400:
        assert response.json()["detail"].startswith("filter")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(min_size=1, max_size=60))
def test_any_text_as_filter_or_sortby_is_never_a_500(client, text):
    for name in ("filter", "sortby"):
        response = client.get(ITEMS, params={name: text, "limit": 1})
        assert response.status_code in (200, 400), (name, text, response.text)


# -- downloads named for what they hold -------------------------------------------------------

@pytest.mark.parametrize(("url", "params", "disposition"), [
    (ITEMS, {"f": "csv", "period": "simd2016"}, 'attachment; filename="datazone2011_employment_rate_simd2016.csv"'),
    # a partnership's areas: named as the map page names the same download
    (ITEMS, {"f": "geojson", "filter": "value > 20", "partnership": "glasgow"},
     'attachment; filename="glasgow_simd2020_employment_deprived_filtered.geojson"'),
    (AREAS, {"f": "csv", "indicator": "employment_deprived", "partnership": "glasgow"},
     'attachment; filename="glasgow_simd2020_employment_deprived.csv"'),
    (ITEMS, {"f": "geojson", "offset": 1000},
     'attachment; filename="datazone2011_employment_rate_simd2020_from1001.geojson"'),
    (AREAS, {"f": "csv", "indicator": "simd2016.employment_deprived"},
     'attachment; filename="datazone2011_simd2016-employment_deprived_simd2016.csv"'),
    (AREAS, {"f": "geojson"}, 'attachment; filename="datazone2011.geojson"'),
    (AREAS, {}, None),     # GeoJSON for GIS clients (f=json, the default) is not a download
])
def test_downloads_are_named_for_what_they_hold(client, url, params, disposition):
    response = client.get(url, params={"limit": 5, **params})
    assert response.status_code == 200, response.text
    assert response.headers.get("content-disposition") == disposition


# -- paging pinned to a data version ------------------------------------------------------------

def _next(body: dict) -> str | None:
    return next((link["href"] for link in body["links"] if link["rel"] == "next"), None)


def test_a_next_link_gives_the_same_page_after_an_update_lands(demo_db, tmp_path):
    db = tmp_path / "served.duckdb"
    shutil.copy(demo_db, db)
    with TestClient(create_app(Settings(db=db))) as client:
        params = {"limit": 100, "sortby": "code", "filter": "nation = 'S'"}
        first = client.get(ITEMS, params=params).json()
        version = int(parse_qs(urlsplit(_next(first)).query)["version"][0])
        second_before = client.get(_next(first)).json()
        assert _codes(second_before) != _codes(first)
        # an update lands between two pages: the first 50 data zones go (every later one moves
        # up by 50 places at the same offset)
        gone = _codes(first)[:50]
        with updating(db) as store:
            store.sql("DELETE FROM areas WHERE set_id = 'datazone2011' AND list_contains(?, code)", [gone])
            store.bump_data_version()
        deadline = time.monotonic() + 10
        while client.get("/health").json()["data_version"] == version and time.monotonic() < deadline:
            time.sleep(0.2)
        assert client.get("/health").json()["data_version"] == version + 1
        # the link names the version it was made on: the same page as before the update
        second_after = client.get(_next(first)).json()
        assert _codes(second_after) == _codes(second_before)
        assert second_after["numberMatched"] == first["numberMatched"] == 1535
        # while a page without version= sees the new data: that page has moved
        fresh = client.get(ITEMS, params={**params, "offset": 100}).json()
        assert fresh["numberMatched"] == 1485 and _codes(fresh)[0] != _codes(second_before)[0]
        assert f"version={version + 1}" in _next(fresh)
        # a version no longer kept is a 410 saying to start again
        gone_page = client.get(ITEMS, params={**params, "version": version - 1})
        assert gone_page.status_code == 410
        assert re.search(r"version=\d+: this data version is no longer served", gone_page.json()["detail"])


def test_a_superseded_version_stays_while_it_is_paged_and_goes_after(tmp_path):
    """ServedStore keeps the superseded version a minute past its last pinned page (not just a
    minute past the swap), and closes it once nobody has paged it for a minute."""
    from geo_cs.api.deps import ServedStore
    from geo_cs.store import Store

    db = tmp_path / "served.duckdb"
    with Store.open(db) as store:
        store.sql("CREATE TABLE t AS SELECT 1 AS i")
        first = store.data_version()
    served = ServedStore(db, check_seconds=0)
    try:
        with updating(db) as store:
            store.bump_data_version()
        assert served.current().data_version == first + 1
        old = served.pinned(first)
        assert old is not None and old.data_version == first
        # the swap was two minutes ago, but a page was asked 30 s ago: kept
        old.retired_at, old.last_pinned = time.monotonic() - 120, time.monotonic() - 30
        served.current()
        assert served.pinned(first) is old
        # nobody has paged it for two minutes: closed, and a link to it is then a 410
        old.retired_at = old.last_pinned = time.monotonic() - 120
        served.current()
        assert served.pinned(first) is None
        assert served.pinned(first + 1) is served.snapshot
    finally:
        served.close()
