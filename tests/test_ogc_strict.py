"""OGC API answers that do not mislead: unknown parameters refused, ``datetime`` choosing a
period, ``HEAD`` wherever ``GET``, one bbox rule for every CRS, the URN forms of the CRSs,
absolute links from a configured base URL, an offline ``/docs``, truthful geometry types, and
one collection per map a GIS officer would choose. GDAL's view of the same is in
``test_clients.py``."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from geo_cs.api.app import create_app
from geo_cs.config import Settings
from geo_cs.features import EPSG27700

ITEMS = "/collections/datazone2011/items"
MEASURE = {"indicator": "employment_deprived"}


@pytest.fixture(scope="module")
def client(demo_db):
    with TestClient(create_app(Settings(db=demo_db))) as c:
        yield c


@pytest.mark.parametrize(("url", "params", "named"), [
    (ITEMS, {"code": "S01010206"}, "code"),
    (ITEMS, {"foo": "1", "bar": "2"}, "bar, foo"),
    # filter and sortby are items' own, but accepted on every route: QGIS and GDAL repeat the
    # connection URL's parameters everywhere (issue 30, point 9; tests/test_gis_traps.py)
    ("/collections/datazone2011", {"code": "x"}, "code"),
    ("/", {"q": "x"}, "q"),
])
def test_unknown_query_parameters_are_refused_by_name(client, url, params, named):
    response = client.get(url, params=params)
    assert response.status_code == 400, response.text
    detail = response.json()["detail"]
    assert f"unknown query parameter{'s' if ',' in named else ''} {named};" in detail
    assert "accepts:" in detail


def test_known_parameters_and_f_are_still_accepted(client):
    assert client.get("/", params={"f": "json"}).status_code == 200
    # GDAL and QGIS repeat a layer URL's query on every request: the items' parameters are
    # known to the whole API
    layer = {"indicator": "employment_deprived", "period": "simd2012", "partnership": "glasgow"}
    for url in ("/", "/api", "/collections", "/collections/datazone2011"):
        assert client.get(url, params=layer).status_code == 200, url
    assert client.get(ITEMS, params={"limit": 1, "f": "json", **MEASURE, "period": "simd2016"}).status_code == 200


@pytest.mark.parametrize(("when", "period"), [
    ("2014-06-01", "simd2016"),                      # SIMD 2016 holds 2014 data
    ("2017-12-31T23:00:00Z", "simd2020"),
    ("2009-07-01/2011-01-01", "simd2012"),
    ("../2010-06-30", "simd2012"),
])
def test_datetime_chooses_the_period_it_meets(client, when, period):
    body = client.get(ITEMS, params={**MEASURE, "datetime": when, "limit": 3}).json()
    assert {f["properties"]["period"] for f in body["features"]} == {period}


@pytest.mark.parametrize(("when", "status", "says"), [
    ("2000-01-01/..", 400, "meets 3 periods (simd2012, simd2016, simd2020)"),
    ("1999-01-01", 404, "meets no period"),
    ("last tuesday", 400, "expected an RFC 3339 date"),
])
def test_datetime_that_meets_no_single_period_is_refused(client, when, status, says):
    response = client.get(ITEMS, params={**MEASURE, "datetime": when})
    assert response.status_code == status and says in response.json()["detail"]
    assert client.get(ITEMS, params={"datetime": "2014-06-01"}).status_code == 400   # no indicator
    assert client.get(ITEMS, params={**MEASURE, "datetime": "2014-06-01", "period": "simd2016"}).status_code == 400


@pytest.mark.parametrize("url", ["/", "/conformance", "/collections", "/collections/datazone2011",
                                 f"{ITEMS}?limit=2", f"{ITEMS}?limit=2&f=csv", "/maps/", "/maps/glasgow",
                                 "/tiles/datazone2011/tilejson.json", "/health", "/docs", "/api"])
def test_head_is_answered_wherever_get_is(client, url):
    got, head = client.get(url), client.head(url)
    assert head.status_code == got.status_code == 200
    assert head.content == b""
    assert head.headers["content-type"] == got.headers["content-type"]
    if "content-length" in got.headers:
        assert head.headers["content-length"] == got.headers["content-length"]


def test_one_bbox_rule_for_every_crs_and_the_urn_forms(client):
    inverted = {"EPSG:27700": "300000,700000,200000,600000", "CRS84": "-3,56,-4,55"}
    for crs, bbox in inverted.items():
        response = client.get(ITEMS, params={"bbox": bbox, "bbox-crs": crs})
        assert response.status_code == 400 and "min must not exceed max" in response.json()["detail"], crs
    for form in ("urn:ogc:def:crs:EPSG::27700", "http://www.opengis.net/def/crs/EPSG/0/27700", "EPSG:27700",
                 "https://www.opengis.net/def/crs/EPSG/0/27700"):
        response = client.get(ITEMS, params={"bbox": "250000,650000,260000,660000", "bbox-crs": form,
                                             "crs": form, "limit": 1})
        assert response.status_code == 200, (form, response.text)
        assert response.headers["content-crs"] == f"<{EPSG27700}>"
        x, y = response.json()["features"][0]["geometry"]["coordinates"][0][0][0]
        assert 200_000 < x < 300_000 and 600_000 < y < 700_000     # metres, British National Grid


def test_links_come_from_the_configured_base_url_not_the_host_header(demo_db, client):
    forged = {"host": "evil.example"}
    # without a base URL the service can only reflect the address it was reached at
    assert client.get("/", headers=forged).json()["links"][0]["href"].startswith("http://evil.example/")
    base = "https://maps.example.gov.uk/geo-cs"
    with TestClient(create_app(Settings(db=demo_db, base_url=base))) as behind_proxy:
        for url in ("/", "/collections", f"{ITEMS}?limit=1", "/tiles/datazone2011/tilejson.json"):
            text = behind_proxy.get(url, headers=forged).text
            assert "evil.example" not in text and base in text, url
    with pytest.raises(ValueError):
        Settings(db=demo_db, base_url="javascript:alert(1)")


def test_docs_work_offline_under_the_pages_policy(client):
    response = client.get("/docs")
    assert response.status_code == 200 and "content-security-policy" in response.headers
    html = response.text
    assert not re.search(r"""(?:src|href)=["']https?://""", html), "fetches from outside"
    assert "<script" not in html
    assert "/collections/{collectionId}/items" in html and "datetime" in html and "bbox-crs" in html


def test_every_feature_is_a_multipolygon_and_collections_say_so(client):
    for crs in ("CRS84", "EPSG:27700", "EPSG:4326"):
        body = client.get(ITEMS, params={"limit": 2000, "crs": crs}).json()
        assert {f["geometry"]["type"] for f in body["features"]} == {"MultiPolygon"}, crs
    assert client.get("/collections/datazone2011").json()["geometryType"] == "MultiPolygon"
    outline = client.get("/collections/partnerships/items/glasgow").json()
    assert outline["geometry"]["type"] == "MultiPolygon"


def test_one_collection_per_map_with_its_indicator_fixed(client):
    collections = {c["id"]: c for c in client.get("/collections").json()["collections"]}
    rate = collections["lsoa2011_employment_rate"]
    assert rate["title"] == "LSOA 2011: Employment-deprived people, % of working-age population (16-64)"
    assert "datazone2011_employment_rate" in collections
    body = client.get("/collections/lsoa2011_employment_rate/items",
                      params={"limit": 5, "period": "imd2019"}).json()
    same = client.get("/collections/lsoa2011/items", params={
        "limit": 5, "period": "imd2019", "indicator": "employment_deprived",
        "denominator": "population2019_lsoa11.working_age_population"}).json()
    assert [f["properties"] for f in body["features"]] == [f["properties"] for f in same["features"]]
    assert all("indicator=" not in link["href"] for link in body["links"])
    refused = client.get("/collections/lsoa2011_employment_rate/items", params=MEASURE)
    assert refused.status_code == 400 and "takes no indicator=" in refused.json()["detail"]
    csv = client.get("/collections/lsoa2011_employment_rate/items", params={"f": "csv", "limit": 1})
    assert 'filename="lsoa2011_employment_rate_imd2025.csv"' in csv.headers["content-disposition"]


def test_the_api_advertises_large_pages_for_gis_clients(client):
    """A client that does not choose gets pages of 1,000; GDAL 3.8+ pages by the maximum the API
    definition gives. (QGIS 3.22 pages by its connection's own page size, 100 unless set: the
    README says where to set it; GDAL 3.6 by PAGE_SIZE, default 10.)"""
    limit = next(p for p in client.get("/api").json()["paths"]["/collections/{collectionId}/items"]["get"][
        "parameters"] if p["name"] == "limit")
    assert limit["schema"]["default"] == 1000 and limit["schema"]["maximum"] == 10_000
    assert client.get(ITEMS).json()["numberReturned"] == 1000
