"""The traps that gave GIS officers wrong results with no error (issue 30, points 1-3 and 9),
each shown with the real client against the service as users start it: QGIS 3.22 (PyQGIS, run
by Debian's Python through ``qgis_client.py``) and GDAL 3.6 (``ogrinfo``/``ogr2ogr``), and the
server's side of it with FastAPI's client. ``docs/gis.md`` is the guide that these tests keep
honest.

1. QGIS's *Max. number of features* (``maxNumFeatures``) stops a layer short while its feature
   count says all; *Page size* (``pageSize``) fetches all.
2. A GDAL ``-where`` means over the service what it means in GDAL (OGR SQL: string comparisons
   ignore ASCII case, LIKE respects it), whatever part of it GDAL sends.
3. QGIS 3.22's Query Builder filter on a boolean field (``worst``) counts one number and draws
   another, from its own cache, with the server's answers the same as without it; a filter on
   the connection URL, applied by the server, holds.
9. The items' parameters (``filter`` and ``filter-lang`` too) on a connection URL are accepted
   by every route QGIS repeats them on, and applied to the items.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from geo_cs.api.app import create_app
from geo_cs.config import Settings
from tests.servers import running_service
from tests.test_clients import DEBIAN_PYTHON, needs_gdal, needs_pyqgis

LAYER = "lsoa2011_employment_rate"
COLLECTION = f"/collections/{LAYER}"
ITEMS = f"{COLLECTION}/items"
MANCHESTER = {"partnership": "greater_manchester"}
#: Greater Manchester's LSOAs (2011) in the demo, and those above 30% that are worst-performing
ALL_AREAS, WORST_ABOVE_30 = 1673, 79


@pytest.fixture(scope="module")
def client(demo_db):
    with TestClient(create_app(Settings(db=demo_db))) as c:
        yield c


@pytest.fixture(scope="module")
def logged_server(demo_db, tmp_path_factory):
    """The service (uvicorn, a real port) with its access log: (base URL, the log's path)."""
    log = tmp_path_factory.mktemp("traps") / "uvicorn.log"
    with running_service({"GEO_CS_DB": str(demo_db)}, log, access_log=True) as base:
        yield base, log


def _matched(base: str, **params: str) -> int:
    body = httpx.get(f"{base}{ITEMS}", params={**MANCHESTER, "limit": 1, **params}, timeout=60).json()
    return body["numberMatched"]


def _requests_since(log: Path, mark: int) -> list[str]:
    """The paths and queries of the GET requests the access log has gained since ``mark``."""
    time.sleep(0.5)    # the access log is written after the response
    return re.findall(r'"GET ([^ ]+) HTTP/1.1" (\d+)', log.read_bytes()[mark:].decode())


# -- 9: the items' parameters on a connection URL --------------------------------------------

#: What a GIS officer may put on a connection URL: a partnership, a filter, a sort…
CONNECTION_QUERY = {**MANCHESTER, "filter": "value > 30 AND worst = true", "filter-lang": "cql2-text",
                    "filter-crs": "EPSG:27700", "sortby": "-value"}
REPEATED_ON = ["/", "/conformance", "/api", "/collections", COLLECTION, f"{COLLECTION}/queryables"]


@pytest.mark.parametrize("url", REPEATED_ON)
def test_every_route_qgis_repeats_a_connection_url_on_accepts_the_items_parameters(client, url):
    assert client.get(url, params=CONNECTION_QUERY).status_code == 200
    # a filter is read where items are fetched, never here: a malformed one is no reason to
    # refuse the landing page (QGIS would show only "Bad Request")
    assert client.get(url, params={**CONNECTION_QUERY, "filter": "value >"}).status_code == 200
    # a parameter no route knows is still refused, by name
    refused = client.get(url, params={**CONNECTION_QUERY, "colour": "red"})
    assert refused.status_code == 400 and "unknown query parameter colour" in refused.json()["detail"]


def test_items_apply_a_connection_url_filter_and_name_a_malformed_one(client):
    body = client.get(ITEMS, params={**CONNECTION_QUERY, "limit": 100}).json()
    assert body["numberMatched"] == WORST_ABOVE_30
    values = [f["properties"]["value"] for f in body["features"]]
    assert values == sorted(values, reverse=True) and min(values) > 30
    assert all(f["properties"]["worst"] for f in body["features"])
    for bad, named in (({"filter": "value >"}, "filter: not CQL2 text at line 1, column 8"),
                       ({"filter": "colour = 'red'"}, "filter: unknown property 'colour'"),
                       ({"filter": "value > 1", "filter-lang": "cql2-json"}, "filter-lang")):
        response = client.get(ITEMS, params={**MANCHESTER, **bad})
        assert response.status_code == 400 and response.headers["content-type"] == "application/problem+json"
        assert named in response.json()["detail"], response.text


def test_a_filter_given_twice_selects_what_both_select(client):
    """GDAL sends its -where's filter and then repeats its layer URL's own; it repeats the URL's
    again after the next links it follows. Each page holds what both select."""
    query = f"{ITEMS}?partnership=greater_manchester&limit=50&filter=worst%20%3D%20true&filter=value%20%3E%2030"
    first = client.get(query).json()
    assert first["numberMatched"] == WORST_ABOVE_30
    next_href = next(link["href"] for link in first["links"] if link["rel"] == "next")
    # followed as GDAL does, with the layer URL's filter added once more
    second = client.get(next_href.replace("http://testserver", "") + "&filter=value%20%3E%2030").json()
    assert second["numberMatched"] == WORST_ABOVE_30 and len(second["features"]) == WORST_ABOVE_30 - 50
    codes = [f["id"] for f in first["features"] + second["features"]]
    assert len(set(codes)) == WORST_ABOVE_30
    clash = client.get(f"{query}&filter-lang=cql-text&filter-lang=cql2-text")
    assert clash.status_code == 400 and "filter-lang given as cql-text and cql2-text" in clash.json()["detail"]


# -- 2: what a filter means -------------------------------------------------------------------

@pytest.mark.parametrize(("text", "cql2", "gdal"), [
    # CQL2 (cql2-text) respects case in = and LIKE; CASEI ignores it
    ("name LIKE 'manchester%'", 0, 0),
    ("name LIKE 'Manchester%'", 282, 282),
    ("CASEI(name) LIKE CASEI('manchester%')", 282, 282),
    ("name ILIKE 'manchester%'", 282, 282),            # OGR SQL's, as GDAL sends it
    # GDAL's cql-text is read as OGR SQL reads a -where: string comparisons ignore ASCII case
    ("name = 'manchester 001a'", 0, 1),
    ("name <> 'MANCHESTER 001A'", ALL_AREAS, ALL_AREAS - 1),
    ("nation = 'e' AND value > 30", 0, 220),
    ("code IN ('e01004766', 'E01004767')", 1, 2),
])
def test_cql2_keeps_its_case_rules_and_gdal_s_cql_text_reads_strings_as_gdal_does(client, text, cql2, gdal):
    def matched(lang: str) -> int:
        response = client.get(ITEMS, params={**MANCHESTER, "limit": 1, "filter": text, "filter-lang": lang})
        assert response.status_code == 200, response.text
        return response.json()["numberMatched"]

    assert (matched("cql2-text"), matched("cql-text")) == (cql2, gdal)


def _count(*args: str) -> int:
    """How many features ``ogrinfo`` lists for ``args`` (a data source, a layer, a -where…)."""
    result = subprocess.run(["ogrinfo", "-ro", "-al", "-q", "-geom=NO", *args],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return result.stdout.count("OGRFeature(")


@needs_gdal
@pytest.mark.slow  # two exports and 20 ogrinfo runs: ~30 s; .ci/run runs it
def test_a_gdal_where_selects_over_the_service_what_it_selects_in_gdal(logged_server, tmp_path):
    """ogrinfo -where over the service against the same data exported by ogr2ogr: a GeoJSON
    file, which GDAL filters with OGR SQL as its OAPIF driver does whatever it cannot send, and
    a GeoPackage, which hands the -where to SQLite."""
    base, log = logged_server
    url = f"OAPIF:{base}{COLLECTION}?partnership=greater_manchester"
    files = {}
    for driver, name in (("GeoJSON", "gm.geojson"), ("GPKG", "gm.gpkg")):
        files[driver] = tmp_path / name
        result = subprocess.run(["ogr2ogr", "-f", driver, str(files[driver]), "-oo", "PAGE_SIZE=1000", url],
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr
    wheres = {
        "name LIKE 'Manchester%'": 282,
        "name LIKE 'manchester%'": 0,            # OGR SQL's LIKE respects case since GDAL 3.1
        "name ILIKE 'manchester%'": 282,
        "name = 'manchester 001a'": 1,           # ... and its = ignores it
        "name = 'manchester 001a' OR code IN ('E00000000')": 1,   # all evaluated by GDAL itself
        "nation = 'e' AND value > 30": 220,
        "name BETWEEN 'manchester' AND 'manchester 010'": 48,
        "value > 30 AND worst = 1": WORST_ABOVE_30,
    }
    mark = log.stat().st_size
    seen = {where: _count("-oo", "PAGE_SIZE=1000", url, "-where", where) for where in wheres}
    on_file = {where: _count(str(files["GeoJSON"]), LAYER, "-where", where) for where in wheres}
    assert seen == on_file == wheres
    # the string comparisons reached the server, in GDAL's language: the server chose the
    # features, with GDAL's meaning
    sent = [path for path, _ in _requests_since(log, mark) if path.startswith(ITEMS)]
    assert any("filter=name%20%3D%20'manchester%20001a'&filter-lang=cql-text" in p for p in sent), sent
    assert any("filter=(nation%20%3D%20'e')%20AND%20(value%20%3E%2030)&filter-lang=cql-text" in p
               for p in sent), sent
    # the GeoPackage agrees where SQLite and OGR SQL do (> 0 both ways) ...
    gpkg = str(files["GPKG"])
    for where in ("name LIKE 'Manchester%'", "value > 30 AND worst = 1"):
        assert _count(gpkg, LAYER, "-where", where) == seen[where] > 0
    # ... and not where SQLite's LIKE ignores ASCII case and its = respects it (docs/gis.md)
    assert _count(gpkg, LAYER, "-where", "name LIKE 'manchester%'") == 282
    assert _count(gpkg, LAYER, "-where", "name = 'manchester 001a'") == 0


@needs_gdal
def test_gdal_reads_a_layer_url_with_a_filter_and_a_where_page_after_page(logged_server):
    base, log = logged_server
    url = f"OAPIF:{base}{COLLECTION}?partnership=greater_manchester&filter=value%20%3E%2030"
    assert _count("-oo", "PAGE_SIZE=200", url) == 220
    mark = log.stat().st_size
    assert _count("-oo", "PAGE_SIZE=50", url, "-where", "worst = 1") == WORST_ABOVE_30
    asked = _requests_since(log, mark)
    assert all(status == "200" for _, status in asked), asked
    # (GDAL's first request, which learns the fields, has the URL's filter alone)
    pages = [path for path, _ in asked if path.startswith(ITEMS) and "worst" in path]
    assert len(pages) == 2 and "offset=50" in pages[1] and all(p.count("filter=") == 2 for p in pages), pages


# -- 1, 3 and 9 in QGIS ------------------------------------------------------------------------

def _qgis(base: str, layers: list[dict], home: Path) -> list[dict]:
    """What QGIS 3.22 sees of ``layers`` (``qgis_client.probe``). HOME is a fresh folder: the
    OAPIF provider keeps its feature cache in the profile, and the client leaves without
    QGIS's teardown."""
    result = subprocess.run([DEBIAN_PYTHON, str(Path(__file__).with_name("qgis_client.py")), base,
                             json.dumps(layers)], capture_output=True, text=True, timeout=600,
                            env={**os.environ, "QT_QPA_PLATFORM": "offscreen", "HOME": str(home)})
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@needs_pyqgis
def test_qgis_page_size_fetches_every_area_and_max_features_stops_short_unsaid(logged_server, tmp_path):
    base, log = logged_server
    assert _matched(base) == ALL_AREAS
    connection = {"query": "/?partnership=greater_manchester", "typename": LAYER}
    mark = log.stat().st_size
    paged, capped = _qgis(base, [{**connection, "uri": {"pageSize": "100"}},
                                 {**connection, "uri": {"pageSize": "100", "maxNumFeatures": "1000"}}],
                          tmp_path)
    # Page size: every area, 17 pages of 100
    assert paged["valid"] and paged["feature_count"] == paged["iterated"] == paged["distinct_codes"] == ALL_AREAS
    pages = [p for p, _ in _requests_since(log, mark) if p.startswith(ITEMS) and "limit=100" in p]
    assert len(pages) >= -(-ALL_AREAS // 100), pages
    # Max. number of features: 1,000 drawn and exported while the layer still says 1,673
    assert capped["valid"] and capped["feature_count"] == capped["feature_count_after"] == ALL_AREAS
    assert capped["iterated"] == capped["iterated_again"] == 1000


@needs_pyqgis
def test_qgis_query_builder_on_a_boolean_disagrees_and_a_connection_url_filter_holds(logged_server, tmp_path):
    base, log = logged_server
    cql2 = "value > 30 AND worst = true"
    assert _matched(base, filter=cql2) == WORST_ABOVE_30
    assert _matched(base, filter="value > 30") == 220
    mark = log.stat().st_size
    manchester = {"query": "/?partnership=greater_manchester", "typename": LAYER, "uri": {"pageSize": "1000"}}
    builder, numeric, most, connection = _qgis(base, [
        {**manchester, "subset": '"value" > 30 AND "worst" = true'},
        {**manchester, "subset": '"value" > 30'},
        {**manchester, "subset": '"value" > 0'},
        {"query": f"/?partnership=greater_manchester&filter={cql2}", "typename": LAYER,
         "uri": {"pageSize": "1000"}},
    ], tmp_path)
    asked = _requests_since(log, mark)
    # QGIS 3.22 sends nothing of a Query Builder filter: the server answered the same pages as
    # for the layer without it, so its answers cannot be the cause ...
    builder_pages = [p for p, _ in asked if p.startswith(ITEMS) and "filter=" not in p]
    assert builder_pages and all("partnership=greater_manchester" in p for p in builder_pages)
    # ... and QGIS disagrees with itself on the boolean: it stores worst as text in its
    # SpatiaLite cache and compares the text with true there (docs/gis.md: if this fails, QGIS
    # no longer does, and the guide's warning should go)
    assert builder["worst_type"] == "Boolean" and builder["subset_ok"]
    assert (builder["feature_count"], builder["iterated"]) != (WORST_ABOVE_30, WORST_ABOVE_30), builder
    # a Query Builder filter on numbers alone gives the right features, but its count stops at
    # 1,000 (docs/gis.md)
    assert numeric["feature_count"] == numeric["iterated"] == numeric["iterated_again"] == 220
    assert most["iterated"] == _matched(base, filter="value > 0") > 1000 == most["feature_count"]
    # the filter on the connection URL: every route QGIS asked answered 200, the server chose
    # the features, and count and features agree with numberMatched
    filtered = [(p, s) for p, s in asked if "filter=value%20%3E%2030" in p]
    assert {p.split("?")[0] for p, _ in filtered} >= {"/", "/api", COLLECTION, ITEMS}
    assert all(s == "200" for _, s in filtered), filtered
    assert connection["valid"]
    assert connection["feature_count"] == connection["iterated"] == connection["iterated_again"] == WORST_ABOVE_30
