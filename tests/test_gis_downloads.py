"""GIS downloads (issue 30, point 8): ``/collections/{id}/download?f=gpkg|shp&crs=…`` gives a
GeoPackage or a zipped shapefile in British National Grid (or EPSG:4326) holding exactly the
items of the same request, under the same disclosure control; checked with the clients GIS
officers use: GDAL's ``ogrinfo`` (Debian's GDAL 3.6) and QGIS 3.22 (PyQGIS, Debian's Python),
and the routes ``docs/gis-downloads.md`` gives for BNG through GDAL and QGIS.

The demo store is copied once for the module with one Welsh LSOA given its Welsh name (the demo's
names are English), so that a non-ASCII name is there to survive the shapefile.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import zipfile
from pathlib import Path

import pyogrio
import pytest
import shapely
from fastapi.testclient import TestClient

from geo_cs.api.app import create_app
from geo_cs.api.routers.downloads import BuiltDownloads
from geo_cs.config import Settings
from geo_cs.export import gis
from geo_cs.store import Store
from tests.servers import running_service
from tests.test_clients import DEBIAN_PYTHON, needs_gdal, needs_pyqgis

#: The map of the employment-deprived rate on LSOAs (2011), by its id of the demo's first
#: release: the service redirects a former id to the id it has now (the map_id fixture)
MAP_FORMER_ID = "lsoa2011_employment_deprived_rate"
MANCHESTER = {"partnership": "greater_manchester"}
#: An Anglesey LSOA (Mon Menai partnership), renamed in the module's copy of the demo
WELSH_CODE, WELSH_NAME = "W01000003", "Ynys Môn 001A"
#: A Dundee data zone whose SIMD 2012 count is under 10: withheld under disclosure control
WITHHELD = "S01007687"
DUNDEE_2012 = {"indicator": "employment_deprived", "period": "simd2012", "partnership": "dundee"}
#: British National Grid's range (metres): Great Britain lies within it
BNG_X, BNG_Y = (0, 700_000), (0, 1_300_000)


@pytest.fixture(scope="module")
def db(demo_db, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("downloads") / "demo.duckdb"
    shutil.copyfile(demo_db, path)
    with Store.open(path) as store:
        store.sql("UPDATE areas SET name = ? WHERE set_id = 'lsoa2011' AND code = ?", [WELSH_NAME, WELSH_CODE])
    return path


@pytest.fixture(scope="module")
def client(db):
    with TestClient(create_app(Settings(db=db))) as c:
        yield c


@pytest.fixture(scope="module")
def map_id(client) -> str:
    """The map collection's id now."""
    response = client.get(f"/collections/{MAP_FORMER_ID}")
    assert response.status_code == 200, response.text
    return response.json()["id"]


@pytest.fixture(scope="module")
def controlled(db):
    with TestClient(create_app(Settings(db=db, disclosure_control=True))) as c:
        yield c


@pytest.fixture(scope="module")
def server(db, tmp_path_factory):
    """The service as users start it (uvicorn on a real port), for clients that read URLs."""
    log = tmp_path_factory.mktemp("downloads-server") / "uvicorn.log"
    with running_service({"GEO_CS_DB": str(db)}, log) as base:
        yield base


def download(client, tmp_path: Path, collection: str, **params) -> Path:
    """The file ``client`` answers for the download, saved under its own name."""
    response = client.get(f"/collections/{collection}/download", params=params)
    assert response.status_code == 200, response.text
    name = re.fullmatch(r'attachment; filename="([A-Za-z0-9_.-]+)"',
                        response.headers["content-disposition"]).group(1)
    path = tmp_path / name
    path.write_bytes(response.content)
    return path


def items(client, collection: str, **params) -> dict:
    response = client.get(f"/collections/{collection}/items", params={"limit": 10_000, **params})
    assert response.status_code == 200, response.text
    return response.json()


def ogrinfo(*args: str) -> str:
    result = subprocess.run(["ogrinfo", "-ro", *args], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return result.stdout


def summary(path: str, layer: str | None = None) -> str:
    """``ogrinfo -so`` of the (only) layer of ``path``."""
    if layer is None:
        listing = ogrinfo(path)
        layers = re.findall(r"^\d+: (\S+)", listing, re.M)
        assert len(layers) == 1, listing
        layer = layers[0]
    return ogrinfo("-so", path, layer)


def epsg_of(info: str) -> int:
    """The EPSG code GDAL identifies a layer's CRS as (the last ID of its WKT)."""
    return int(re.findall(r'ID\["EPSG",(\d+)\]', info)[-1])


def feature_count(info: str) -> int:
    return int(re.search(r"^Feature Count: (\d+)$", info, re.M).group(1))


def extent(info: str) -> tuple[float, float, float, float]:
    x0, y0, x1, y1 = map(float, re.search(
        r"^Extent: \(([-\d.]+), ([-\d.]+)\) - \(([-\d.]+), ([-\d.]+)\)$", info, re.M).groups())
    return x0, y0, x1, y1


def fields(info: str) -> dict[str, str]:
    return dict(re.findall(r"^(\w+): (\w+(?:\(\w+\))?) \(", info, re.M))


# -- the contract ---------------------------------------------------------------------------

def test_shapefile_field_names_are_unique_and_fit_dbase():
    names = list(gis.SHAPEFILE_FIELDS.values())
    assert len(set(names)) == len(names) and all(len(n) <= 10 for n in names)
    assert set(gis.SHAPEFILE_FIELDS) == set(gis.FIELD_TYPES) == set(gis.FIELD_TITLES)
    assert {k: v for k, v in gis.SHAPEFILE_FIELDS.items() if k != v} == {
        "value_low": "val_low", "value_high": "val_high", "denominator": "denom",
        "estimated_share": "est_share", "reliability": "reliab", "resolved_by": "resolved"}


def test_the_module_examples_hold():
    import doctest

    result = doctest.testmod(gis, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 8 and result.failed == 0


def test_every_download_link_answers_with_its_type(map_id, client):
    """The links a collection would carry (rel enclosure, for the OGC routes to add)."""
    links = gis.download_links(f"http://testserver/collections/{map_id}", MANCHESTER)
    assert [(link["rel"], link["type"]) for link in links] == [
        ("enclosure", "application/geopackage+sqlite3"), ("enclosure", "application/geopackage+sqlite3"),
        ("enclosure", "application/zip"), ("enclosure", "application/zip")]
    for link in links:
        response = client.get(link["href"])
        assert response.status_code == 200 and response.headers["content-type"] == link["type"]
        crs = "27700" if "EPSG:27700" in link["title"] else "4326"
        assert response.headers["content-crs"] == f"<http://www.opengis.net/def/crs/EPSG/0/{crs}>"
        assert response.headers["content-disposition"].endswith(
            f'_{"bng" if crs == "27700" else "wgs84"}.{"gpkg" if "GeoPackage" in link["title"] else "shp.zip"}"')


def test_refusals_name_the_parameter_and_what_it_takes(map_id, client):
    url = f"/collections/{map_id}/download"
    kml = client.get(url, params={"f": "kml"})
    assert kml.status_code == 400 and kml.headers["content-type"] == "application/problem+json"
    assert kml.json()["errors"][0]["parameter"] == "f" and "'gpkg' or 'shp'" in kml.json()["detail"]
    for crs in ("EPSG:3857", "EPSG:2770"):
        wrong = client.get(url, params={"crs": crs})
        assert wrong.status_code == 400 and wrong.headers["content-type"] == "application/problem+json"
        assert f"crs='{crs}'" in wrong.json()["detail"] and "EPSG:27700" in wrong.json()["detail"]
        assert "EPSG:4326" in wrong.json()["detail"]
    unknown = client.get(url, params={"limit": 5})
    assert unknown.status_code == 400 and "unknown query parameter limit" in unknown.json()["detail"]
    # the items' limit: a whole LSOA 2021 set of the demo (10,157) is one download too many
    assert items(client, "lsoa2021", limit=1)["numberMatched"] > gis.MAX_FEATURES
    large = client.get("/collections/lsoa2021/download")
    assert large.status_code == 400 and large.headers["content-type"] == "application/problem+json"
    assert "10,157 features" in large.json()["detail"]
    assert "partnership=" in large.json()["detail"] and "filter=" in large.json()["detail"]
    # … and narrowed, it is not
    assert client.get("/collections/lsoa2021/download", params=MANCHESTER).status_code == 200
    assert client.get(url, params={"indicator": "imd_rank"}).status_code == 400   # the map's own
    assert client.get(url, params={"filter": "value >"}).status_code == 400
    assert client.get("/collections/nowhere/download").status_code == 404
    assert client.get(url, params={"partnership": "atlantis"}).status_code == 404
    outlines = "/collections/partnerships/download"
    assert client.get(outlines, params={"filter": "id = 'dundee'"}).status_code == 400
    assert client.get(outlines, params={"indicator": "employment_deprived"}).status_code == 400


def test_file_names_say_what_and_in_which_crs(map_id, client):
    response = client.get(f"/collections/{map_id}/download", params=MANCHESTER)
    assert response.headers["content-type"] == "application/geopackage+sqlite3"
    assert response.headers["content-disposition"] == (
        f'attachment; filename="greater_manchester_{map_id}_imd2025_bng.gpkg"')
    assert response.headers["content-crs"] == "<http://www.opengis.net/def/crs/EPSG/0/27700>"
    response = client.get("/collections/datazone2011/download",
                          params={"f": "shp", "crs": "EPSG:4326", "indicator": "employment_deprived",
                                  "filter": "value > 20"})
    assert response.headers["content-type"] == "application/zip"
    assert response.headers["content-disposition"] == (
        'attachment; filename="datazone2011_employment_deprived_simd2020_filtered_wgs84.shp.zip"')
    assert response.headers["content-crs"] == "<http://www.opengis.net/def/crs/EPSG/0/4326>"


def test_built_files_serve_byte_ranges_and_are_removed(map_id, client, tmp_path, monkeypatch):
    """A download is built once for a client reading it by ranges (GDAL's /vsicurl/), then removed."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    url, params = f"/collections/{map_id}/download", {**MANCHESTER, "f": "shp"}
    files = client.app.state.built_downloads = BuiltDownloads(keep_s=60, max_files=1)
    whole = client.get(url, params=params)
    part = client.get(url, params=params, headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == whole.content[100:200]
    assert part.headers["etag"] == whole.headers["etag"] and len(files) == 1
    # another download takes the one place: the first file is gone from the disk
    (first,) = [p for p in files.root.iterdir()]
    assert client.get(url, params=MANCHESTER).status_code == 200
    assert len(files) == 1 and not first.exists()
    # kept no time: removed once sent, and nothing is left of a refused download either
    files = client.app.state.built_downloads = BuiltDownloads(keep_s=0)
    for f in ("gpkg", "shp"):
        assert client.get(url, params={**MANCHESTER, "f": f}).status_code == 200
    assert client.get("/collections/lsoa2021/download").status_code == 400
    assert len(files) == 0 and list(files.root.iterdir()) == []


def test_a_download_waits_for_memory_as_items_do(map_id, db):
    """A download reserves what writing its file holds (as an items page of as many items); with
    the worker's memory taken and no wait allowed, it is refused as busy (503, Retry-After)."""
    with TestClient(create_app(Settings(db=db, memory_budget_mb=64, memory_queue_s=0))) as c:
        budget = c.app.state.memory_budget
        taken = budget.large_capacity
        assert c.portal.call(budget.reserve, taken)
        try:
            busy = c.get(f"/collections/{map_id}/download", params=MANCHESTER)
        finally:
            c.portal.call(budget.release, taken)
        assert busy.status_code == 503 and busy.headers["retry-after"].isdigit()
        assert "partnership=" in busy.json()["detail"]
        assert c.get(f"/collections/{map_id}/download", params=MANCHESTER).status_code == 200
        assert budget.in_use == 0


# -- the GeoPackage, read by GDAL -----------------------------------------------------------

@needs_gdal
def test_geopackage_in_bng_holds_exactly_the_items(map_id, client, tmp_path):
    matched = items(client, map_id, limit=1, **MANCHESTER)["numberMatched"]
    path = download(client, tmp_path, map_id, **MANCHESTER)
    info = summary(str(path))
    assert epsg_of(info) == 27700 and "Geometry: Multi Polygon" in info
    assert feature_count(info) == matched == 1673
    x0, y0, x1, y1 = extent(info)
    assert BNG_X[0] < x0 < x1 < BNG_X[1] and BNG_Y[0] < y0 < y1 < BNG_Y[1]
    assert x0 > 340_000 and x1 < 420_000      # Greater Manchester, in metres
    assert fields(info) == {
        "code": "String", "name": "String", "nation": "String", "geography": "String",
        "vintage": "Integer", "area_km2": "Real", "indicator": "String", "period": "String",
        "value": "Real", "value_low": "Real", "value_high": "Real", "count": "Real",
        "denominator": "Real", "worst": "Integer(Boolean)", "estimated_share": "Real",
        "suppressed": "Integer(Boolean)"}
    assert "Open Government Licence v3.0" in info   # the layer's description and metadata
    # every feature: the items' properties and the stored BNG geometry, exactly
    expected = {f["id"]: f for f in items(client, map_id, crs="EPSG:27700", **MANCHESTER)["features"]}
    frame = pyogrio.read_dataframe(path)
    assert len(frame) == len(expected)
    for row in frame.itertuples(index=False):
        feature = expected[row.code]
        for key, value in feature["properties"].items():
            got = getattr(row, key)
            got = None if got is None or got != got else got          # NaN is a null
            assert got == value or (isinstance(value, bool) and got == int(value)), (row.code, key)
        assert shapely.equals_exact(row.geometry, shapely.geometry.shape(feature["geometry"]), tolerance=0)


@needs_gdal
def test_geopackage_in_4326_is_longitude_first(client, tmp_path):
    path = download(client, tmp_path, "datazone2011", crs="http://www.opengis.net/def/crs/EPSG/0/4326",
                    partnership="glasgow")
    info = summary(str(path))
    assert epsg_of(info) == 4326 and feature_count(info) == 746
    x0, y0, x1, y1 = extent(info)
    assert -4.7 < x0 < x1 < -4.0 and 55.7 < y0 < y1 < 56.0      # Glasgow: longitude, latitude
    shp = download(client, tmp_path, "datazone2011", f="shp", crs="EPSG:4326", partnership="glasgow")
    info = summary(f"/vsizip/{shp}")
    assert epsg_of(info) == 4326 and feature_count(info) == 746 and extent(info)[0] == pytest.approx(x0)


@needs_gdal
def test_a_filter_and_a_partnership_each_narrow_the_download_as_the_items(map_id, client, tmp_path):
    counts = {}
    for label, params in {"all": {}, "filter": {"filter": "value > 30 AND nation = 'E'"},
                          "partnership": MANCHESTER,
                          "both": {**MANCHESTER, "filter": "value > 30"}}.items():
        matched = items(client, map_id, limit=1, **params)["numberMatched"]
        info = summary(str(download(client, tmp_path, map_id, **params)))
        assert feature_count(info) == matched, label
        counts[label] = matched
    assert counts["all"] > counts["filter"] > counts["both"] > 0
    assert counts["all"] > counts["partnership"] > counts["both"]
    # a spatial filter in BNG metres (filter-crs), as a GIS officer draws one
    box = {"filter": "S_INTERSECTS(geometry, BBOX(380000, 390000, 390000, 400000))",
           "filter-crs": "EPSG:27700", **MANCHESTER}
    matched = items(client, map_id, limit=1, **box)["numberMatched"]
    assert 0 < matched < counts["partnership"]
    assert feature_count(summary(str(download(client, tmp_path, map_id, **box)))) == matched


@needs_gdal
def test_partnership_outlines_download(client, tmp_path):
    matched = items(client, "partnerships", limit=1)["numberMatched"]
    info = summary(str(download(client, tmp_path, "partnerships")))
    assert feature_count(info) == matched == 17 and epsg_of(info) == 27700
    assert fields(info)["members"] == "Integer"
    one = summary(f"/vsizip/{download(client, tmp_path, 'partnerships', f='shp', partnership='dundee')}")
    assert feature_count(one) == 1 and "resolved: String" in one


# -- the shapefile ----------------------------------------------------------------------------

@needs_gdal
def test_zipped_shapefile_names_types_encoding_and_crs(client, tmp_path):
    params = {"f": "shp", "partnership": "mon_menai", "indicator": "employment_deprived", "period": "imd2019"}
    matched = items(client, "lsoa2011", limit=1, **{k: v for k, v in params.items() if k != "f"})["numberMatched"]
    path = download(client, tmp_path, "lsoa2011", **params)
    assert path.name == "mon_menai_lsoa2011_employment_deprived_imd2019_bng.shp.zip"
    with zipfile.ZipFile(path) as archive:
        names = sorted(archive.namelist())
        stem = path.name.removesuffix(".shp.zip")
        assert names == ["README.txt", *sorted(f"{stem}.{ext}" for ext in ("cpg", "dbf", "prj", "shp", "shx"))]
        assert archive.read(f"{stem}.cpg").decode() == "UTF-8"
        readme = archive.read("README.txt").decode("utf-8")
    assert "val_low     lower end of the value's 95% interval  (the GeoPackage and the API call it value_low)" in readme
    assert "EPSG:27700" in readme and "Open Government Licence v3.0" in readme
    info = summary(str(path))        # GDAL opens a .shp.zip as it is
    assert feature_count(summary(f"/vsizip/{path}")) == feature_count(info)
    assert epsg_of(info) == 27700 and feature_count(info) == matched == 117
    x0, y0, x1, y1 = extent(info)
    assert BNG_X[0] < x0 < x1 < BNG_X[1] and BNG_Y[0] < y0 < y1 < BNG_Y[1]
    assert list(fields(info)) == ["code", "name", "nation", "geography", "vintage", "area_km2", "indicator",
                                  "period", "value", "val_low", "val_high", "count", "denom", "worst",
                                  "est_share", "suppressed"]
    assert fields(info)["worst"] == fields(info)["suppressed"] == "Integer"
    features = ogrinfo("-al", "-q", f"/vsizip/{path}")
    flags = re.findall(r"^\s+(?:worst|suppressed) \(Integer\) = (.*)$", features, re.M)
    # IMD covers England only: Mon Menai's LSOAs have no value, so no flag either (null, not 0)
    said = [p[k] for f in items(client, "lsoa2011", **{k: v for k, v in params.items() if k != "f"})["features"]
            for p in [f["properties"]] for k in ("worst", "suppressed")]
    assert flags == ["(null)" if v is None else str(int(v)) for v in said] and len(flags) == 2 * matched
    # the Welsh name, through the .cpg
    assert re.search(rf"^\s+name \(String\) = {WELSH_NAME}$", features, re.M)
    gpkg = ogrinfo("-al", "-q", str(download(client, tmp_path, "lsoa2011", partnership="mon_menai")))
    assert re.search(rf"^\s+name \(String\) = {WELSH_NAME}$", gpkg, re.M)


@needs_gdal
def test_booleans_are_one_and_zero_where_the_items_say_true_and_false(client, tmp_path):
    params = {"indicator": "employment_deprived", "partnership": "glasgow", "period": "simd2012"}
    worst = {f["id"] for f in items(client, "datazone2011", **params)["features"] if f["properties"]["worst"]}
    assert 0 < len(worst) < 746
    path = download(client, tmp_path, "datazone2011", f="shp", **params)
    frame = pyogrio.read_dataframe(f"/vsizip/{path}")
    assert set(frame["worst"].unique()) == {0, 1}
    assert set(frame.loc[frame["worst"] == 1, "code"]) == worst


# -- disclosure control ---------------------------------------------------------------------------

@needs_gdal
def test_a_withheld_area_is_withheld_in_both_files(client, controlled, tmp_path):
    exact = client.get(f"/collections/datazone2011/items/{WITHHELD}", params=DUNDEE_2012).json()["properties"]
    assert exact["value"] is not None and exact["count"] < 10      # what the control must not give away
    published = {f["id"]: f["properties"] for f in items(controlled, "datazone2011", **DUNDEE_2012)["features"]}
    assert published[WITHHELD]["suppressed"] is True and published[WITHHELD]["value"] is None
    withheld = {code for code, p in published.items() if p["suppressed"]}
    for f, field_names in (("gpkg", ("value", "value_low", "count", "denominator")),
                           ("shp", ("value", "val_low", "count", "denom"))):
        path = download(controlled, tmp_path, "datazone2011", f=f, **DUNDEE_2012)
        frame = pyogrio.read_dataframe(f"/vsizip/{path}" if f == "shp" else path)
        assert len(frame) == len(published) == 188
        row = frame.loc[frame["code"] == WITHHELD].iloc[0]
        assert row["suppressed"] == 1 and all(row[name] != row[name] or row[name] is None
                                              for name in field_names), row   # null (NaN)
        assert set(frame.loc[frame["suppressed"] == 1, "code"]) == withheld
        counts = frame.loc[frame["count"].notna(), "count"]
        assert len(counts) and (counts % 5 == 0).all()       # rounded to 5, as the items
    # without the control, the same download gives the value: the test above could fail
    frame = pyogrio.read_dataframe(download(client, tmp_path, "datazone2011", **DUNDEE_2012))
    assert frame.loc[frame["code"] == WITHHELD, "value"].iloc[0] == pytest.approx(exact["value"])


# -- QGIS 3.22 ----------------------------------------------------------------------------------

QGIS_SCRIPT = r"""
import json, os, sys
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
from qgis.core import QgsApplication, QgsCoordinateReferenceSystem, QgsVectorLayer
app = QgsApplication([], False)
app.initQgis()
base, gpkg, shp, layer_id = sys.argv[1:5]
out = {}
def seen(layer):
    features = list(layer.getFeatures())
    boxes = [f.geometry().boundingBox() for f in features]
    return {"valid": layer.isValid(), "crs": layer.crs().authid(), "count": layer.featureCount(),
            "iterated": len(features), "fields": [f.name() for f in layer.fields()],
            "x": [min(b.xMinimum() for b in boxes), max(b.xMaximum() for b in boxes)] if boxes else None,
            "names": sorted({f["name"] for f in features})}
# a downloaded GeoPackage and zipped shapefile, opened as files (Layer > Add Vector Layer)
out["gpkg"] = seen(QgsVectorLayer(gpkg, "gpkg", "ogr"))
out["shp"] = seen(QgsVectorLayer("/vsizip/" + shp, "shp", "ogr"))
# the download link itself (Add Vector Layer > Protocol: HTTP(S)): read by byte ranges
out["link"] = seen(QgsVectorLayer(
    "/vsicurl/" + base + f"/collections/{layer_id}/download?partnership=mon_menai",
    "link", "ogr"))
# the OGC API connection with crs= on its URL and the layer's CRS set to BNG (Set CRS of Layer)
oapif = QgsVectorLayer(f"url='{base}/?partnership=mon_menai&crs=EPSG:27700' "
                       f"typename='{layer_id}' restrictToRequestBBOX='0'", "oapif", "OAPIF")
out["oapif_crs_as_given"] = oapif.crs().authid()
oapif.setCrs(QgsCoordinateReferenceSystem("EPSG:27700"))
out["oapif"] = seen(oapif)
# … with "Only request features overlapping the view extent" ticked, a view in metres meets
# nothing of the collection's extent (degrees): no feature, no error
from qgis.core import QgsFeatureRequest, QgsRectangle
boxed = QgsVectorLayer(f"url='{base}/?partnership=mon_menai&crs=EPSG:27700' "
                       f"typename='{layer_id}' restrictToRequestBBOX='1'", "boxed", "OAPIF")
boxed.setCrs(QgsCoordinateReferenceSystem("EPSG:27700"))
view = QgsRectangle(240000, 370000, 260000, 385000)
out["view_extent_ticked"] = sum(1 for _ in boxed.getFeatures(QgsFeatureRequest().setFilterRect(view)))
out["view_extent_unticked"] = sum(1 for _ in oapif.getFeatures(QgsFeatureRequest().setFilterRect(view)))
print(json.dumps(out), flush=True)
os._exit(0)   # PyQGIS 3.22 can crash in its own teardown; what it saw is printed
"""


@needs_pyqgis
def test_qgis_opens_the_downloads_in_bng(map_id, client, server, tmp_path):
    params = {"partnership": "mon_menai"}
    matched = items(client, map_id, limit=1, **params)["numberMatched"]
    gpkg = download(client, tmp_path, map_id, **params)
    shp = download(client, tmp_path, map_id, f="shp", **params)
    result = subprocess.run([DEBIAN_PYTHON, "-c", QGIS_SCRIPT, server, str(gpkg), str(shp), map_id],
                            capture_output=True, text=True, timeout=300,
                            env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    for way in ("gpkg", "shp", "link", "oapif"):
        layer = seen[way]
        assert layer["valid"] and layer["crs"] == "EPSG:27700", (way, layer)
        assert layer["count"] == layer["iterated"] == matched == 117, (way, layer)
        assert BNG_X[0] < layer["x"][0] < layer["x"][1] < BNG_X[1], (way, layer)
        assert WELSH_NAME in layer["names"], way
    assert "value_low" in seen["gpkg"]["fields"] and "val_low" in seen["shp"]["fields"]
    # QGIS 3.22 labels what crs= returns as WGS 84 until it is told: the documented step
    assert seen["oapif_crs_as_given"] == "EPSG:4326"
    # and the view-extent box must stay unticked (docs/gis-downloads.md)
    assert seen["view_extent_ticked"] == 0 < seen["view_extent_unticked"] < matched


# -- GDAL: the documented routes to BNG -------------------------------------------------------

@needs_gdal
def test_gdal_opens_the_download_links_directly(map_id, client, server):
    matched = items(client, map_id, limit=1, partnership="mon_menai")["numberMatched"]
    link = f"{server}/collections/{map_id}/download?partnership=mon_menai"
    info = summary(f"/vsicurl/{link}")
    assert epsg_of(info) == 27700 and feature_count(info) == matched
    info = summary(f"/vsizip/{{/vsicurl/{link}&f=shp}}")
    assert epsg_of(info) == 27700 and feature_count(info) == matched


@needs_gdal
def test_gdal_oapif_with_crs_needs_the_srs_assigned(map_id, client, server, tmp_path):
    """GDAL 3.6's OAPIF driver has no CRS option: a layer URL's crs=EPSG:27700 brings BNG
    coordinates labelled WGS 84; ogr2ogr's -a_srs EPSG:27700 labels them truly."""
    url = f"OAPIF:{server}/collections/{map_id}?partnership=mon_menai&crs=EPSG:27700"
    as_given = summary(url, map_id)
    assert epsg_of(as_given) == 4326          # the trap: metres called degrees
    out = tmp_path / "bng.gpkg"
    result = subprocess.run(["ogr2ogr", "-f", "GPKG", str(out), url, map_id, "-a_srs", "EPSG:27700"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    info = summary(str(out), map_id)
    assert epsg_of(info) == 27700
    assert feature_count(info) == items(client, map_id, limit=1, partnership="mon_menai")["numberMatched"]
    x0, y0, x1, y1 = extent(info)
    assert BNG_X[0] < x0 < x1 < BNG_X[1] and BNG_Y[0] < y0 < y1 < BNG_Y[1]
    # -spat in metres is sent as a lon/lat bbox (GDAL clamps it to 180/90): refused, never wrong
    spat = subprocess.run(["ogr2ogr", "-f", "GPKG", str(tmp_path / "spat.gpkg"), url, map_id, "-a_srs", "EPSG:27700",
                           "-spat", "240000", "370000", "260000", "385000"], capture_output=True, text=True,
                          timeout=300)
    assert spat.returncode != 0 and "min must not exceed max" in spat.stderr
    # … a BNG box goes on the URL as a filter in filter-crs instead
    box = "filter-crs=EPSG:27700&filter=S_INTERSECTS(geometry,BBOX(240000,370000,260000,385000))"
    boxed = tmp_path / "boxed.gpkg"
    assert subprocess.run(["ogr2ogr", "-f", "GPKG", str(boxed), f"{url}&{box}", map_id, "-a_srs", "EPSG:27700"],
                          capture_output=True, timeout=300).returncode == 0
    within = items(client, map_id, limit=1, partnership="mon_menai", **{"filter-crs": "EPSG:27700",
                   "filter": "S_INTERSECTS(geometry,BBOX(240000,370000,260000,385000))"})["numberMatched"]
    assert 0 < feature_count(summary(str(boxed), map_id)) == within < feature_count(info)
    # the same features as the download's
    mine = pyogrio.read_dataframe(out).set_index("code").sort_index()
    theirs = pyogrio.read_dataframe(download(client, tmp_path, map_id, partnership="mon_menai"))
    theirs = theirs.set_index("code").sort_index()
    assert list(mine.index) == list(theirs.index)
    assert shapely.equals_exact(mine.geometry.values, theirs.geometry.values, tolerance=1e-6).all()
