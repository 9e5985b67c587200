"""Layers that arrive described, one per thing a user would map, and zoom to what they hold
(issue 30, points 5-7, and the styles linked from each map collection).

5. Every collection carries its licence (``license`` link: the OGL), a ``describedby`` page,
   its periods (``extent.temporal`` with each period's id and words) and a description of how
   its value is made: source, definition, denominator, coverage by nation with the null areas
   counted (IMD 2025 covers England only), the boundaries' generalisation and what ``worst``
   means. QGIS 3.22 reads the licence link's title into the layer's metadata and the
   description into its abstract; GDAL shows the description.
6. One collection per measure: a published rate giving the same figure as a count over its
   population is folded into that rate (whose items carry count, denominator and interval);
   ids follow one pattern across vintages (``lsoa2011_employment_rate``,
   ``lsoa2021_employment_rate``); the former ids answer with a redirect (308, same query),
   which QGIS and GDAL follow; the partnerships' items carry ``code``.
7. The collection document reports the extent of what the request selects (``partnership=``,
   ``filter=``, ``bbox=``, which QGIS repeats from its connection URL): QGIS's "Zoom to layer"
   goes to the partnership.

With FastAPI's client, then GDAL (``ogrinfo``) and PyQGIS (Debian's Python) against the
service as users start it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import textwrap

import httpx
import pytest
from fastapi.testclient import TestClient
from shapely.geometry import shape

from geo_cs.api.app import create_app
from geo_cs.attribution import OGL_ATTRIBUTION
from geo_cs.config import Settings
from geo_cs.features import OGL_NAME, OGL_URL
from tests.servers import running_service
from tests.test_clients import DEBIAN_PYTHON, needs_gdal, needs_pyqgis

STYLES_REL = "http://www.opengis.net/def/rel/ogc/1.0/styles"
#: Former ids (before issue 30) and the collection each leads to now.
RENAMED = {
    "lsoa2011_employment_deprived_rate": "lsoa2011_employment_rate",
    "datazone2011_employment_deprived": "datazone2011_employment_rate",
    "datazone2001_employment_deprived": "datazone2001_employment_rate",
    "wpc2010_claimants": "wpc2010_claimant_rate",
    "wpc2010_claimants_monthly": "wpc2010_claimant_rate_monthly",
}
GLASGOW = {"partnership": "glasgow"}


@pytest.fixture(scope="module")
def client(demo_db):
    with TestClient(create_app(Settings(db=demo_db))) as c:
        yield c


@pytest.fixture(scope="module")
def collections(client) -> dict[str, dict]:
    return {c["id"]: c for c in client.get("/collections").json()["collections"]}


def _link(collection: dict, rel: str) -> dict:
    return next(link for link in collection["links"] if link["rel"] == rel)


def _items(client, collection: str, **params) -> list[dict]:
    """Every item the query selects, page after page."""
    features: list[dict] = []
    while True:
        body = client.get(f"/collections/{collection}/items",
                          params={"limit": 10_000, "offset": len(features), **params}).json()
        features += body["features"]
        if len(features) >= body["numberMatched"]:
            return features


def _bounds(features: list[dict]) -> tuple[float, float, float, float]:
    boxes = [shape(f["geometry"]).bounds for f in features]
    return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes),
            max(b[3] for b in boxes))


# -- 5: licence, description, periods ---------------------------------------------------------

def test_every_collection_carries_its_licence_a_describing_page_and_a_description(client, collections):
    for cid, c in collections.items():
        licence = _link(c, "license")
        assert licence == {"href": OGL_URL, "rel": "license", "type": "text/html", "title": OGL_NAME}, cid
        described = _link(c, "describedby")
        assert described["type"] == "text/html"
        page = client.get(described["href"].replace("http://testserver", "").split("#")[0])
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        # the anchor the link names is on the page
        assert f'id="{described["href"].split("#")[1]}"' in page.text, cid
        assert c["attribution"] == OGL_ATTRIBUTION
        assert f"Licence: {OGL_NAME}" in c["description"] and OGL_ATTRIBUTION in c["description"], cid
        assert "Boundaries:" in c["description"], cid
        assert len(c["title"]) <= 80, c["title"]
    assert _link(client.get("/collections").json(), "license")["href"] == OGL_URL


def test_a_measure_collection_lists_its_periods_with_their_words(client, collections):
    measures = {cid: c for cid, c in collections.items()
                if any(link["rel"] == STYLES_REL for link in c["links"])}
    assert len(measures) > 20
    for cid, c in measures.items():
        temporal = c["extent"]["temporal"]
        periods = temporal["periods"]
        assert periods and temporal["trs"] == "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian"
        assert temporal["interval"] == [[f"{periods[0]['start']}T00:00:00Z", f"{periods[-1]['end']}T23:59:59Z"]]
        assert [p["start"] for p in periods] == sorted(p["start"] for p in periods), cid
    # the periods are those items take (period=), and datetime= meets each one's first day
    dz = collections["datazone2011_employment_rate"]["extent"]["temporal"]["periods"]
    assert [(p["id"], p["label"]) for p in dz] == [
        ("simd2012", "SIMD 2012 (2010 data)"), ("simd2016", "SIMD 2016 (2014 data)"),
        ("simd2020", "SIMD 2020 (2017 data)")]
    for p in dz:
        one = client.get("/collections/datazone2011_employment_rate/items",
                         params={"datetime": p["start"], "limit": 1}).json()
        assert one["features"][0]["properties"]["period"] == p["id"]
    # a boundary set has no time of its own
    assert "temporal" not in collections["lsoa2011"]["extent"]


def test_coverage_by_nation_counts_the_null_areas(client, collections):
    """IMD 2025 covers England only: the Welsh LSOAs are null, and the description says so,
    with the number the items show."""
    for cid, period in (("lsoa2021_employment_rate", "imd2025"), ("lsoa2011_employment_rate", "imd2025")):
        welsh = [f for f in _items(client, cid, period=period) if f["properties"]["nation"] == "W"]
        assert welsh and all(f["properties"]["value"] is None for f in welsh)
        assert (f"Wales ({len(welsh):,} areas): null in every period — the source held covers no "
                "area there") in collections[cid]["description"], cid
    # England's few null areas are counted per period, as the items have them
    english = [f for f in _items(client, "lsoa2011_employment_rate", period="imd2019")
               if f["properties"]["nation"] == "E"]
    null = sum(f["properties"]["value"] is None for f in english)
    assert null > 0
    assert (f"England: of {len(english):,} areas, with a value in IMD 2019 (2015 data) "
            f"{len(english) - null:,} ({null} null)") in collections["lsoa2011_employment_rate"]["description"]
    assert "Scotland: all 1,535 areas in every period" in collections["datazone2011_employment_rate"]["description"]


def test_the_description_says_how_the_value_is_made(collections):
    rate = collections["lsoa2011_employment_rate"]["description"]
    for said in ("the rate computed here from the counts, value = count / denominator × 100",
                 "working-age population (16-64) from the ONS mid-2019 small area population estimates",
                 "95% Wilson interval",
                 "Source: English Indices of Deprivation 2019, underlying indicators (Ministry of Housing",
                 "harmonised from another boundary set",
                 "Periods: imd2019 (IMD 2019 (2015 data)), imd2025 (IMD 2025 (2022 data))",
                 # what worst means, with the baseline it is fixed on
                 "worst: true where the area's mean rate over the baseline (IMD 2019 (2015 data)) "
                 "exceeds 25%",
                 # the demo's LSOA 2011 files were cut from ONS's generalised (BGC) ones
                 "Boundaries: generalised to 20 m, clipped to the coastline (BGC), as the source "
                 "files are named (lsoa11_bgc_topo_by_lad)"):
        assert said in rate, said
    claimants = collections["wpc2010_claimant_rate"]["description"]
    assert "derived as count / ConstRate × 100 from the published rate, rounded to 0.1 points" in claimants
    assert "baseline (May 2010, August 2010, November 2010, February 2011)" in claimants
    # no cohort, no word of worst; a generalisation the files do not state is said to be unknown
    rank = collections["lsoa2011_employment_rank"]["description"]
    assert "worst" not in rank and "the rank as published, not a rate" in rank
    assert "generalisation (full resolution BFC, generalised BGC, super generalised BSC…) is not stated" \
        in collections["wpc2010"]["description"]
    survey = collections["lad2021_employment_rate"]["description"]
    assert "the survey estimate as published, with its published 95% interval" in survey
    assert "Periods: 77, from 2004y12 (Jan 2004-Dec 2004) to 2023y12 (Jan 2023-Dec 2023)" in survey


def test_worst_is_explained_exactly_where_items_carry_it(client, collections):
    for cid in ("lsoa2011_employment_rate", "datazone2011_employment_rate", "wpc2010_claimant_rate",
                "lsoa2021_employment_rate", "lsoa2011_employment_deprived", "lsoa2011_employment_rank",
                "lad2021_employment_rate"):
        flags = {f["properties"]["worst"] for f in _items(client, cid)}
        assert (flags != {None}) == ("worst: true where" in collections[cid]["description"]), cid


# -- 6: which layer ---------------------------------------------------------------------------

def test_one_collection_per_measure_with_one_id_pattern(collections):
    measures = [c for c in collections.values() if c["id"].count("_") and c["id"] != "partnerships"]
    # the same measure has the same id on every vintage
    assert {"lsoa2011_employment_rate", "lsoa2021_employment_rate", "datazone2001_employment_rate",
            "datazone2011_employment_rate"} <= set(collections)
    assert not set(RENAMED) & set(collections)
    assert not [c["id"] for c in measures if c["id"].endswith("_deprived_rate")]
    # the published rates folded into the rates from counts are not layers of their own
    tiles = [_link(c, "tiles")["href"] for c in measures]
    assert not [t for t in tiles if "/datazone2011/" in t and "indicator=employment_rate" in t]
    assert not [t for t in tiles if "/wpc2010/" in t and "indicator=claimant_rate" in t]
    assert len(tiles) == len(set(tiles)), "two collections of one measure"
    assert len(collections) == 37


def test_descriptions_tell_near_neighbours_apart(client, collections):
    """S01007682: 3.3688 from the counts (with interval), 3 as SIMD publishes it (rounded)."""
    dz = collections["datazone2011_employment_rate"]["description"]
    assert "The publisher's own rate (employment_rate: Employment deprivation rate" in dz
    assert "/collections/datazone2011/items?indicator=employment_rate serves it" in dz
    computed = client.get("/collections/datazone2011_employment_rate/items/S01007682").json()["properties"]
    assert computed["value"] == 3.3688 and computed["count"] == 19 and computed["denominator"] == 564
    assert computed["value_low"] < computed["value"] < computed["value_high"]
    published = client.get("/collections/datazone2011/items/S01007682",
                           params={"indicator": "employment_rate"}).json()["properties"]
    # ... its count worked back from the rounded rate (3% of 564: 16.92 people)
    assert published["value"] == 3.0 and published["count"] != computed["count"]
    # DWP's published rate and the rate from its counts give the same figure: one layer, the
    # one carrying count, denominator and interval
    one = _items(client, "wpc2010_claimant_rate", period="2011-02")[0]["properties"]
    same = client.get(f"/collections/wpc2010/items/{one['code']}",
                      params={"indicator": "claimant_rate", "period": "2011-02"}).json()["properties"]
    assert round(one["value"], 1) == same["value"]
    assert None not in (one["count"], one["denominator"], one["value_low"], one["value_high"])
    # the number and the rate say which is which
    assert ("lsoa2011_employment_deprived is the same count as a number of people, not a rate"
            in collections["lsoa2011_employment_rate"]["description"])
    assert ("lsoa2011_employment_rate is the rate, with its interval, count and denominator"
            in collections["lsoa2011_employment_deprived"]["description"])
    published = collections["lsoa2021_employment_rate"]["description"]
    assert "lsoa2021_employment_deprived is the count, as a number of people" in published
    assert "the rate as published; the items have no count, denominator or interval" in published
    item = _items(client, "lsoa2021_employment_rate")[0]["properties"]
    assert item["value"] is not None and item["count"] is item["value_low"] is item["denominator"] is None


@pytest.mark.parametrize(("old", "new"), RENAMED.items())
def test_a_former_id_redirects_to_the_same_request_on_its_id_now(client, old, new):
    for path, params in (("", {}), ("/items", {"limit": "3", "offset": "2"}), ("/queryables", {}),
                         ("", GLASGOW if old.startswith("datazone2011") else {})):
        response = client.get(f"/collections/{old}{path}", params=params, follow_redirects=False)
        assert response.status_code == 308, (old, path)
        location = response.headers["location"]
        assert location.startswith(f"http://testserver/collections/{new}{path}")
        assert dict(httpx.URL(location).params) == params
        followed = client.get(f"/collections/{old}{path}", params=params)
        direct = client.get(f"/collections/{new}{path}", params=params)
        assert followed.status_code == 200 and followed.json() == direct.json()


@pytest.mark.parametrize("path", ["/styles", "/styles/web-map?f=qml", "/download?partnership=leicester"])
def test_a_former_id_redirects_on_the_styles_and_download_routes_too(client, path):
    old, new = "lsoa2011_employment_deprived_rate", "lsoa2011_employment_rate"
    response = client.get(f"/collections/{old}{path}", follow_redirects=False)
    assert response.status_code == 308
    assert response.headers["location"] == f"http://testserver/collections/{new}{path}"
    assert client.get(f"/collections/{old}{path}").status_code == 200


def test_an_unknown_id_is_still_a_404_naming_the_valid_ones(client):
    response = client.get("/collections/lsoa2011_nothing/items")
    assert response.status_code == 404 and "lsoa2011_employment_rate" in response.json()["detail"]


def test_partnership_items_have_a_code_like_every_other_collection(client):
    features = client.get("/collections/partnerships/items").json()["features"]
    assert len(features) == 17
    assert all(f["properties"]["code"] == f["properties"]["id"] == f["id"] for f in features)
    csv = client.get("/collections/partnerships/items", params={"f": "csv", "properties": "code,name"}).text
    assert csv.splitlines()[0] == "code,name" and "\nglasgow," in csv
    one = client.get("/collections/partnerships/items/glasgow").json()["properties"]
    assert one["code"] == one["id"] == "glasgow"


# -- 7: the extent of what the request selects ----------------------------------------------

def test_the_extent_is_that_of_the_partnership_or_filter_asked_for(client, collections):
    url = "/collections/datazone2011_employment_rate"
    whole = collections["datazone2011_employment_rate"]["extent"]["spatial"]["bbox"][0]
    glasgow = client.get(url, params=GLASGOW).json()
    box = glasgow["extent"]["spatial"]["bbox"][0]
    assert box == pytest.approx(_bounds(_items(client, "datazone2011_employment_rate", **GLASGOW)), abs=1e-6)
    assert box != pytest.approx(whole) and whole[0] <= box[0] and box[2] <= whole[2]
    assert glasgow["extentOf"] == "partnership=glasgow"
    # its style links are the partnership's map's
    assert all("partnership=glasgow" in link["href"] for link in glasgow["links"] if link["rel"] == "stylesheet")
    # a filter (QGIS repeats a connection URL's): the extent of the features it selects
    worst = {**GLASGOW, "filter": "value > 30 AND worst = true"}
    selected = _items(client, "datazone2011_employment_rate", **worst)
    assert 0 < len(selected) < 746
    box = client.get(url, params=worst).json()["extent"]["spatial"]["bbox"][0]
    assert box == pytest.approx(_bounds(selected), abs=1e-6)
    bbox = {"bbox": "-4.30,55.84,-4.22,55.88"}
    assert client.get(url, params=bbox).json()["extent"]["spatial"]["bbox"][0] == pytest.approx(
        _bounds(_items(client, "datazone2011_employment_rate", **bbox)), abs=1e-6)
    # nothing selected: no spatial extent (the periods stay)
    none = client.get(url, params={"filter": "value > 100"}).json()
    assert "spatial" not in none["extent"] and none["extent"]["temporal"]
    # what the items would refuse is not refused here (QGIS would show only "Bad Request"):
    # the whole extent, as without it
    for refused in ({"filter": "value >"}, {"partnership": "greater_manchester"}):
        assert client.get(f"{url}/items", params=refused).status_code == 400
        body = client.get(url, params=refused)
        assert body.status_code == 200 and body.json()["extent"]["spatial"]["bbox"][0] == whole
    # a boundary set with the measure in the URL, as a GDAL layer URL has it
    areas = client.get("/collections/datazone2011", params={**GLASGOW, "indicator": "employment_deprived",
                                                           "filter": "worst = true"}).json()
    assert areas["extent"]["spatial"]["bbox"][0] == pytest.approx(_bounds(_items(
        client, "datazone2011", **GLASGOW, indicator="employment_deprived", filter="worst = true")), abs=1e-6)


def test_the_list_of_collections_gives_the_partnerships_extents(client, collections):
    listed = {c["id"]: c for c in client.get("/collections", params=GLASGOW).json()["collections"]}
    assert listed.keys() == collections.keys()
    one = client.get("/collections/datazone2011_employment_rate", params=GLASGOW).json()
    assert listed["datazone2011_employment_rate"]["extent"] == one["extent"]
    # a set the partnership has no areas in: no spatial extent; an unknown partnership: as without
    assert "spatial" not in listed["lsoa2011_employment_rate"]["extent"]
    unknown = client.get("/collections", params={"partnership": "atlantis"}).json()["collections"]
    assert {c["id"]: c["extent"] for c in unknown} == {cid: c["extent"] for cid, c in collections.items()}


# -- the styles, linked from each map collection --------------------------------------------

def test_every_map_collection_links_its_styles_and_they_resolve(client, collections):
    formats = {"qml": "application/vnd.qgis.qml", "sld": "application/vnd.ogc.sld+xml;version=1.0",
               "mapbox": "application/vnd.mapbox.style+json"}
    measures = [c for c in collections.values()
                if any(link["rel"] == "tiles" and "indicator=" in link["href"] for link in c["links"])]
    assert len(measures) == 27
    for c in measures:
        listing = _link(c, STYLES_REL)
        assert listing["href"] == f"http://testserver/collections/{c['id']}/styles"
        assert listing["type"] == "application/json" and client.get(listing["href"]).status_code == 200
        sheets = [link for link in c["links"] if link["rel"] == "stylesheet"]
        assert [link["type"] for link in sheets] == list(formats.values()), c["id"]
        for link in sheets:
            response = client.get(link["href"])
            assert response.status_code == 200, (link["href"], response.text[:200])
            assert response.headers["content-type"].startswith(link["type"].split(";")[0]), link["href"]
    # boundary sets and the partnerships' outlines have no style of their own
    for cid in ("lsoa2011", "partnerships"):
        assert not [link for link in collections[cid]["links"] if link["rel"] in (STYLES_REL, "stylesheet")]


# -- the real clients ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def server(demo_db, tmp_path_factory):
    log = tmp_path_factory.mktemp("metadata") / "uvicorn.log"
    with running_service({"GEO_CS_DB": str(demo_db)}, log) as base:
        yield base


def _ogrinfo(*args: str) -> str:
    result = subprocess.run(["ogrinfo", "-ro", *args], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return result.stdout


def _gdal_extent(summary: str) -> tuple[float, ...]:
    match = re.search(r"^Extent: \(([-\d.]+), ([-\d.]+)\) - \(([-\d.]+), ([-\d.]+)\)$", summary, re.M)
    assert match, summary
    return tuple(float(v) for v in match.groups())


@needs_gdal
def test_gdal_shows_the_description_zooms_to_the_partnership_and_follows_a_former_id(server):
    summary = _ogrinfo("-so", f"OAPIF:{server}", "lsoa2021_employment_rate")
    assert "Wales (926 areas): null in every period" in summary
    assert "TITLE=LSOA 2021: Employment deprivation rate (% of working-age people)" in summary
    whole = httpx.get(f"{server}/collections/datazone2011_employment_rate", timeout=60).json()
    glasgow = httpx.get(f"{server}/collections/datazone2011_employment_rate", params=GLASGOW,
                        timeout=60).json()["extent"]["spatial"]["bbox"][0]
    layer = f"OAPIF:{server}/collections/datazone2011_employment_rate?partnership=glasgow"
    assert _gdal_extent(_ogrinfo("-so", layer, "datazone2011_employment_rate")) == pytest.approx(glasgow, abs=1e-5)
    assert glasgow != pytest.approx(whole["extent"]["spatial"]["bbox"][0], abs=1e-5)
    # a former id: GDAL follows the redirect, every page of it
    old = _ogrinfo("-al", "-q", "-oo", "PAGE_SIZE=200",
                   f"OAPIF:{server}/collections/datazone2011_employment_deprived?partnership=glasgow")
    assert len(re.findall(r"^\s+code \(String\) = (S01\d{6})$", old, re.M)) == 746


#: Run by Debian's Python (PyQGIS 3.22): what QGIS makes of the layers, as JSON.
QGIS_SCRIPT = textwrap.dedent("""
    import json, os, sys
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from qgis.core import QgsApplication, QgsMapLayer, QgsVectorLayer
    app = QgsApplication([], False)
    app.initQgis()
    base, qml = sys.argv[1], sys.argv[2]
    out = {}
    for name, url, typename in (("whole", base, "datazone2011_employment_rate"),
                                ("glasgow", base + "?partnership=glasgow", "datazone2011_employment_rate"),
                                ("former", base, "datazone2011_employment_deprived"),
                                ("welsh", base, "lsoa2021_employment_rate")):
        layer = QgsVectorLayer(f"url='{url}' typename='{typename}' restrictToRequestBBOX='0' pageSize='1000'",
                               name, "OAPIF")
        meta = layer.metadata()
        e = layer.extent()
        out[name] = {"valid": layer.isValid(), "licenses": meta.licenses(), "rights": meta.rights(),
                     "abstract": meta.abstract(), "title": meta.title(),
                     "links": sorted({link.name for link in meta.links()}),
                     "temporal": len(meta.extent().temporalExtents()),
                     "extent": [e.xMinimum(), e.yMinimum(), e.xMaximum(), e.yMaximum()],
                     "count": layer.featureCount()}
        if name == "whole":
            # the collection's QML: Layer Properties > Symbology > Style > Load Style, then
            # > Metadata > Load Metadata (QGIS 3.22's Load Style reads no metadata from it)
            message, ok = layer.loadNamedStyle(qml, QgsMapLayer.AllStyleCategories)
            styled = {"ok": ok, "renderer": layer.renderer().type(), "rights": layer.metadata().rights()}
            message, ok = layer.loadNamedMetadata(qml)
            out["styled"] = {**styled, "metadata_ok": ok, "rights_after": layer.metadata().rights(),
                             "licenses_after": layer.metadata().licenses()}
    print(json.dumps(out), flush=True)
    os._exit(0)
""")


@needs_pyqgis
def test_qgis_fills_the_layer_metadata_and_zooms_to_the_partnership(server, tmp_path):
    qml = tmp_path / "dz.qml"
    qml.write_text(httpx.get(f"{server}/collections/datazone2011_employment_rate/styles/web-map",
                             params={"f": "qml"}, timeout=60).text, encoding="utf-8")
    script = tmp_path / "qgis_metadata.py"
    script.write_text(QGIS_SCRIPT, encoding="utf-8")
    result = subprocess.run([DEBIAN_PYTHON, str(script), server, str(qml)], capture_output=True, text=True,
                            timeout=300, env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    collection = httpx.get(f"{server}/collections/datazone2011_employment_rate", timeout=60).json()
    whole = seen["whole"]
    assert whole["valid"] and whole["licenses"] == [OGL_NAME]
    assert whole["abstract"] == collection["description"] and whole["title"] == collection["title"]
    assert {"license", "describedby", "stylesheet", STYLES_REL} <= set(whole["links"])
    assert whole["temporal"] == 1
    # QGIS 3.22's OAPIF provider reads no rights from a collection (no member of it says them):
    # they are in the collection's QML, whose metadata QGIS reads with Load Metadata (its
    # Load Style applies the classes, not the metadata)
    assert whole["rights"] == []
    styled = seen["styled"]
    assert styled["ok"] and styled["renderer"] == "graduatedSymbol" and styled["rights"] == []
    assert styled["metadata_ok"] and styled["rights_after"] == [OGL_ATTRIBUTION]
    assert styled["licenses_after"] == [OGL_NAME]
    # Zoom to layer: a partnership's connection gives the partnership's extent, not Scotland's
    glasgow = httpx.get(f"{server}/collections/datazone2011_employment_rate", params=GLASGOW,
                        timeout=60).json()["extent"]["spatial"]["bbox"][0]
    assert seen["glasgow"]["valid"] and seen["glasgow"]["count"] == 746
    assert seen["glasgow"]["extent"] == pytest.approx(glasgow, abs=1e-6)
    assert whole["extent"] == pytest.approx(collection["extent"]["spatial"]["bbox"][0], abs=1e-6)
    assert seen["glasgow"]["extent"][2] - seen["glasgow"]["extent"][0] < 0.3 * (
        whole["extent"][2] - whole["extent"][0])
    # a project saved with a former id still opens the layer, with every feature
    assert seen["former"]["valid"] and seen["former"]["count"] == 1535
    assert "Wales (926 areas): null in every period" in seen["welsh"]["abstract"]


def test_a_collection_links_its_downloads_where_they_would_be_served(client):
    chosen = client.get("/collections/lsoa2011_employment_rate",
                        params={"partnership": "greater_manchester"}).json()
    enclosures = [link for link in chosen["links"] if link["rel"] == "enclosure"]
    assert sorted(link["type"] for link in enclosures) == ["application/geopackage+sqlite3"] * 2 + [
        "application/zip"] * 2
    assert all("partnership=greater_manchester" in link["href"] for link in enclosures)
    first = client.get(enclosures[0]["href"].removeprefix("http://testserver"))
    assert first.status_code == 200 and first.headers["content-type"] == enclosures[0]["type"]
    # a whole set over the download limit (10,157 LSOAs of 2021 in the demo) is not offered
    whole = client.get("/collections/lsoa2021").json()
    assert not [link for link in whole["links"] if link["rel"] == "enclosure"]
