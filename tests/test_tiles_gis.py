"""Vector tiles for GIS officers (issue 30, point 10), checked with the clients they use.

Three traps the issue found, each kept here:

- **Rounding by zoom**: an area's value was 2.4 in a z8 tile, 2.35 at z11 and z14 and 2.3524 in
  the OGC API items. Every tile now carries the items' value, at every zoom.
- **Slivers**: each area was simplified on its own, so neighbours drew apart along their shared
  edges (11% of Manchester's area at z8, 1.3% at z10, as holes in the tiles' union). A set is
  now simplified as one coverage; the holes left are measured here on the tiles themselves, and
  drawn by QGIS.
- **No whole-tileset entry point**: QGIS 3.22 and GDAL 3.6 cannot read TileJSON. A layer's
  tiles download as one MBTiles (or PMTiles) file, with the tiles' values and disclosure
  control, which GDAL's MBTiles driver and QGIS's vector tile layer open.
"""

from __future__ import annotations

import gzip
import json
import re
import sqlite3
import subprocess
from pathlib import Path

import mapbox_vector_tile
import numpy as np
import pytest
import shapely
import shapely.geometry
from fastapi.testclient import TestClient

from geo_cs import tiles
from geo_cs.api.app import create_app
from geo_cs.config import Settings
from geo_cs.ingest import ingest_boundaries
from geo_cs.store import Store
from tests.conftest import SHARED_DATA
from tests.test_clients import DEBIAN_PYTHON, needs_gdal, needs_pyqgis

MEASURE = {"indicator": "employment_deprived", "denominator": "population2019_lsoa11.working_age_population"}
#: Manchester 055D, the issue's example: 2.3524 in the items
AREA = "E01033659"
GM = "greater_manchester"


@pytest.fixture(scope="module")
def client(demo_db):
    with TestClient(create_app(Settings(db=demo_db))) as c:
        yield c


@pytest.fixture(scope="module")
def area_box(demo_db) -> tuple[float, float, float, float]:
    """The Web Mercator bounds of :data:`AREA`'s published rings."""
    with Store.open(demo_db, read_only=True) as store:
        return store.sql("SELECT ST_XMin(geom), ST_YMin(geom), ST_XMax(geom), ST_YMax(geom) FROM tile_geoms "
                         "WHERE set_id = 'lsoa2011' AND code = ? AND band = 4", [AREA]).fetchone()


def _to_mercator(geometry: shapely.Geometry, z: int, x: int, y: int) -> shapely.Geometry:
    size = 2 * tiles.WORLD_HALF / 2**z
    left, top = -tiles.WORLD_HALF + x * size, tiles.WORLD_HALF - y * size
    return shapely.transform(geometry, lambda c: np.column_stack((left + c[:, 0] * size / tiles.EXTENT,
                                                                    top - c[:, 1] * size / tiles.EXTENT)))


def _decoded(tile: bytes, layer: str) -> list[dict]:
    if not tile:
        return []
    return mapbox_vector_tile.decode(tile, default_options={"y_coord_down": True})[layer]["features"]


# -- the same value at every zoom ---------------------------------------------------------------

def test_an_areas_value_is_the_items_value_at_every_zoom(client, area_box):
    """The issue's area at z8, z11 and z14 carries the items' 2.3524 (and interval), and so does
    every Greater Manchester area of the z8 tile: no zoom rounds differently."""
    items = client.get("/collections/lsoa2011/items", params={**MEASURE, "partnership": GM, "limit": 2000})
    assert items.status_code == 200, items.text
    by_code = {f["properties"]["code"]: f["properties"] for f in items.json()["features"]}
    assert by_code[AREA]["value"] == 2.3524
    centre_x, centre_y = (area_box[0] + area_box[2]) / 2, (area_box[1] + area_box[3]) / 2
    lon, lat = tiles._TO_MERCATOR.transform(centre_x, centre_y, direction="INVERSE")
    for z in (8, 11, 14):
        x, y = tiles.lonlat_to_tile(lon, lat, z)
        response = client.get(f"/tiles/lsoa2011/{z}/{x}/{y}.mvt", params=MEASURE)
        assert response.status_code == 200
        features = {f["properties"]["code"]: f["properties"] for f in _decoded(response.content, "lsoa2011")}
        for key in ("value", "value_low", "value_high"):
            assert features[AREA][key] == by_code[AREA][key], (z, key)
        if z == 8:
            compared = 0
            for code, props in features.items():
                if code in by_code:
                    for key in ("value", "value_low", "value_high", "estimated_share"):
                        assert props.get(key) == by_code[code][key], (code, key)
                    compared += 1
            assert compared > 1000   # most of Greater Manchester's 1,673 LSOAs


def test_tile_values_are_rounded_as_pythons_round_rounds_the_items():
    """The items round with Python's ``round(v, 4)``; the tiles' vectorised rounding gives the
    same double for every number, ties and near-ties included."""
    rng = np.random.default_rng(30)
    halves = (rng.integers(0, 10**6, 20_000) + 0.5) / 1e4
    numbers = np.concatenate([rng.uniform(-100, 100, 20_000), halves, np.nextafter(halves, 0),
                              np.nextafter(halves, 1e9), rng.uniform(0, 1e12, 1_000),
                              [0.0, -0.0, 5e-324, 1e300, float("inf"), float("nan")]])
    ours = tiles.rounded_like_items(numbers)
    pythons = [round(float(v), tiles.VALUE_DIGITS) if np.isfinite(v) else None for v in numbers]
    assert [None if np.isnan(v) else v for v in ours.tolist()] == pythons


# -- neighbours that stay touching ------------------------------------------------------------

def _union(polygons: list[shapely.Geometry]) -> shapely.Geometry:
    # a polygon of a tile can be invalid once rounded to the tile's grid
    return shapely.union_all([shapely.make_valid(p) for p in polygons])


def _holes_share(polygons: list[shapely.Geometry], region: shapely.Geometry) -> float:
    """The share of ``region`` inside the holes of the polygons' union: the slivers between
    neighbours (an edge moved where the set has no neighbour makes no hole)."""
    union = _union(polygons)
    parts = [p for p in shapely.get_parts(union) if p.geom_type == "Polygon"]
    filled = shapely.union_all([shapely.Polygon(p.exterior) for p in parts])
    return shapely.area(shapely.intersection(shapely.difference(filled, union), region)) / shapely.area(region)


def _tile_polygons(store: Store, set_id: str, z: int, bounds: tuple[float, ...],
                   index: tiles.TileIndex | None = None) -> list[shapely.Geometry]:
    """Every feature of the tiles over ``bounds`` (Web Mercator) at zoom ``z``, back in Web Mercator."""
    size = 2 * tiles.WORLD_HALF / 2**z
    x0, x1 = (int((b + tiles.WORLD_HALF) // size) for b in (bounds[0], bounds[2]))
    y0, y1 = (int((tiles.WORLD_HALF - b) // size) for b in (bounds[3], bounds[1]))
    out = []
    for x in range(x0, x1 + 1):
        for y in range(y0, y1 + 1):
            report: dict = {}
            tile = tiles.render_tile(store, set_id, z, x, y, index=index, report=report)
            assert report.get("min_area", 0) == 0, "the byte budget left areas out: holes of its own"
            out += [_to_mercator(shapely.geometry.shape(f["geometry"]), z, x, y) for f in _decoded(tile, set_id)]
    return out


def test_neighbours_stay_touching_in_the_tiles_at_z8_and_z10(demo_db):
    """Manchester's LSOAs as the tiles draw them: the holes between neighbours are under 0.02%
    of the district at z8 and z10 (measured: 0.007% and 0.002%, a few cells of the tile's grid
    where rounding to it bends a ring). Simplifying each area on its own at the same zooms (as
    before) leaves over 0.5% (measured: 11% and 1.3%): the measure sees slivers where there are."""
    with Store.open(demo_db, read_only=True) as store:
        rows = store.sql("SELECT name LIKE 'Manchester %', ST_AsWKB(geom) FROM tile_geoms "
                         "WHERE set_id = 'lsoa2011' AND band = 4").fetchall()
        published = shapely.from_wkb([bytes(r[1]) for r in rows])
        district = shapely.union_all(published[[bool(r[0]) for r in rows]])
        near = published[shapely.intersects(published, shapely.box(*district.bounds))]
        index = tiles.tile_index(store, "lsoa2011")
        shares = {}
        for z in (8, 10):
            shares[z] = _holes_share(_tile_polygons(store, "lsoa2011", z, district.bounds, index), district)
            alone = shapely.simplify(near, tiles.zoom_band(z).tolerance_m / 2, preserve_topology=False)
            assert _holes_share(list(alone), district) > 0.005, z
    assert shares[8] < 2e-4 and shares[10] < 2e-4, shares


LAD_TOPOJSON = SHARED_DATA / "boundaries" / "lsoa11_bgc_topo_by_lad"
needs_district_files = pytest.mark.skipif(
    not (LAD_TOPOJSON / "E08000003.json").exists(),
    reason=f"the LSOA 2011 boundaries by district are not in {LAD_TOPOJSON}")


@needs_district_files
def test_a_set_loaded_district_by_district_is_tiled_as_one_and_prepared_alike(tmp_path: Path):
    """Manchester then Trafford, ingested one after the other: the tile geometries are those of
    both ingested at once (the stored neighbours are simplified again with the new areas), the
    seam between them has no hole at any band, and prepared tiles (``geo-cs tiles prepare``)
    draw the same coverage as tiles clipped on the fly."""
    files = [LAD_TOPOJSON / "E08000003.json", LAD_TOPOJSON / "E08000009.json"]

    def tile_geoms(store: Store) -> dict:
        return {(code, band): bytes(wkb) for code, band, wkb in store.sql(
            "SELECT code, band, ST_AsWKB(geom) FROM tile_geoms").fetchall()}

    with Store.open(tmp_path / "once.duckdb") as once, Store.open(tmp_path / "twice.duckdb") as twice:
        ingest_boundaries(once, files)
        ingest_boundaries(twice, files[:1])
        ingest_boundaries(twice, files[1:])
        together = tile_geoms(once)
        assert len(together) > 4 * 400 and tile_geoms(twice) == together
        both = shapely.union_all(shapely.from_wkb([w for (_, band), w in together.items() if band == 4]))
        for band in tiles.ZOOM_BANDS[1:]:
            rings = shapely.from_wkb([w for (_, b), w in together.items() if b == band.band])
            assert _holes_share(list(rings), both) == 0, band
        on_the_fly = {z: _tile_polygons(twice, "lsoa2011", z, both.bounds, tiles.tile_index(twice, "lsoa2011"))
                      for z in (8, 10, 12)}
        tiles.prepare_tiles(twice, "lsoa2011")
        index = tiles.tile_index(twice, "lsoa2011")
        assert index.encoded is not None
        for z, clipped in on_the_fly.items():
            prepared = _tile_polygons(twice, "lsoa2011", z, both.bounds, index)
            assert _holes_share(prepared, both) < 1e-6, z
            assert len(prepared) == len(clipped), z
            assert shapely.area(_union(prepared)) == pytest.approx(shapely.area(_union(clipped)), rel=1e-4), z


def test_a_small_part_is_dropped_only_where_it_touches_no_neighbour():
    """Coverage simplification keeps every ring, so an area's islands under a pixel are left
    out of the coarse bands; a part as small that touches a neighbour stays (leaving it out
    would be a hole)."""
    lon, lat, d = -1.5, 53.8, 0.05
    west = shapely.box(lon - d, lat, lon, lat + d)
    # the east area: a square, a 100 m islet at sea, and a 100 m tab on the west area's edge
    east = shapely.MultiPolygon([shapely.box(lon, lat, lon + d, lat + d),
                                 shapely.box(lon + 0.3, lat, lon + 0.3015, lat + 0.0009)])
    tab = shapely.box(lon - 0.0015, lat + d, lon, lat + d + 0.0009)
    east = shapely.union_all([east, tab])
    rows = tiles.tile_geometries(np.array(["E", "W"]), np.array(["east", "west"], dtype=object),
                                 np.array([east, west])).to_pandas()
    parts = {(r.code, r.band): shapely.get_num_geometries(shapely.from_wkb(r.wkb)) for r in rows.itertuples()}
    assert parts[("E", 4)] == 3 and parts[("W", 4)] == 1
    # at z7-8 a pixel is 611 m: the islet goes, the tab stays
    assert parts[("E", 1)] == 2


def test_an_area_overlapping_another_whole_keeps_its_own_rings():
    """Not every set is a coverage: an area lying over another (a duplicate, another edition)
    would be emptied by the coverage cleaner; it is kept, simplified on its own, and its
    neighbours still form a coverage."""
    lon, lat, d = -1.5, 53.8, 0.05
    west = shapely.Polygon([(lon - d, lat), (lon, lat), (lon + 0.0001, lat + d / 2), (lon, lat + d),
                            (lon - d, lat + d)])
    east = shapely.Polygon([(lon, lat), (lon + d, lat), (lon + d, lat + d), (lon, lat + d),
                            (lon + 0.0001, lat + d / 2)])
    rows = tiles.tile_geometries(np.array(["E", "W", "X"]), np.array(["e", "w", "x"], dtype=object),
                                 np.array([east, west, west])).to_pandas()
    for band in tiles.ZOOM_BANDS[1:]:
        geoms = {r.code: shapely.from_wkb(r.wkb) for r in rows[rows["band"] == band.band].itertuples()}
        assert set(geoms) == {"E", "W", "X"} and all(g.area > 0 for g in geoms.values()), band
        assert shapely.coverage_is_valid(np.array([geoms["E"], geoms["W"]])), band


# -- the whole tileset as one file --------------------------------------------------------------

def _download(client: TestClient, tmp_path: Path, layer: str, archive: str = "mbtiles", **params) -> Path:
    response = client.get(f"/tiles/{layer}/download.{archive}", params=params)
    assert response.status_code == 200, response.text
    name = re.search(r'filename="([^"]+)"', response.headers["content-disposition"]).group(1)
    path = tmp_path / name
    path.write_bytes(response.content)
    return path


def _mbtiles_features(path: Path, layer: str) -> dict[tuple[int, int, int], list[dict]]:
    with sqlite3.connect(path) as con:
        rows = con.execute("SELECT zoom_level, tile_column, tile_row, tile_data FROM tiles").fetchall()
    return {(z, x, 2**z - 1 - row): _decoded(gzip.decompress(data), layer) for z, x, row, data in rows}


def test_an_mbtiles_download_holds_the_services_tiles(client, tmp_path: Path):
    path = _download(client, tmp_path, "lsoa2011", **MEASURE, partnership=GM)
    assert path.name == "lsoa2011_greater_manchester_employment_deprived_imd2025.mbtiles"
    with sqlite3.connect(path) as con:
        meta = dict(con.execute("SELECT name, value FROM metadata").fetchall())
    assert meta["format"] == "pbf" and (meta["minzoom"], meta["maxzoom"]) == ("7", "12")
    assert "Open Government Licence" in meta["attribution"]
    layer = json.loads(meta["json"])["vector_layers"][0]
    assert layer["id"] == "lsoa2011" and {"code", "value", "value_low", "worst", "suppressed"} <= set(layer["fields"])
    west, south, east, north = map(float, meta["bounds"].split(","))
    assert -3 < west < east < -1.8 and 53.2 < south < north < 53.8
    by_tile = _mbtiles_features(path, "lsoa2011")
    assert {z for z, _, _ in by_tile} == set(range(7, 13))
    # each tile is the one the service serves for the same request
    for (z, x, y) in sorted(by_tile)[::9]:
        served = client.get(f"/tiles/lsoa2011/{z}/{x}/{y}.mvt", params=MEASURE).content
        key = lambda f: f["properties"]["code"]  # noqa: E731
        assert sorted(by_tile[(z, x, y)], key=key) == sorted(_decoded(served, "lsoa2011"), key=key)
    values = {f["properties"]["value"] for feats in by_tile.values() for f in feats
              if f["properties"]["code"] == AREA}
    assert values == {2.3524}


def test_a_pmtiles_download_and_a_bbox(client, tmp_path: Path):
    from pmtiles.reader import MmapSource, Reader, all_tiles

    path = _download(client, tmp_path, "lsoa2011", "pmtiles", **MEASURE, partnership=GM, maxzoom=9)
    with path.open("rb") as f:
        reader = Reader(MmapSource(f))
        header, metadata = reader.header(), reader.metadata()
        decoded = [_decoded(gzip.decompress(data), "lsoa2011") for _, data in all_tiles(reader.get_bytes)]
    assert (header["min_zoom"], header["max_zoom"]) == (7, 9)
    assert metadata["vector_layers"][0]["id"] == "lsoa2011"
    assert {f["properties"]["value"] for feats in decoded for f in feats if f["properties"]["code"] == AREA} == {2.3524}
    # a bbox: only the tiles of the areas meeting it, and bounds inside it
    boxed = _download(client, tmp_path, "lsoa2011", bbox="-2.25,53.47,-2.23,53.49", maxzoom=14)
    with sqlite3.connect(boxed) as con:
        meta = dict(con.execute("SELECT name, value FROM metadata").fetchall())
        per_zoom = dict(con.execute("SELECT zoom_level, count(*) FROM tiles GROUP BY 1").fetchall())
    west, south, east, north = map(float, meta["bounds"].split(","))
    assert -2.25 <= west < east <= -2.23 and 53.47 <= south < north <= 53.49
    assert boxed.name == "lsoa2011.mbtiles" and per_zoom[7] == 1 and 1 < per_zoom[14] < 30


@pytest.mark.parametrize(("params", "parameter", "detail"), [
    ({"maxzoom": 12}, "maxzoom", "maxzoom=12: the areas asked for need more than 2,000 tiles from z0 to z11, "
                                 "more than a download may hold; ask for maxzoom=10 or less, or a partnership "
                                 "or a bbox"),
    ({"maxzoom": 15}, "maxzoom", "maxzoom: Input should be less than or equal to 14"),
    ({"minzoom": 9, "maxzoom": 8}, None, "minzoom=9: must not exceed maxzoom=8"),
    ({"bbox": "-2.3,53.4,-2.2"}, None, "bbox: expected 4 numbers"),
])
def test_a_download_too_large_or_malformed_is_refused_naming_the_parameter(client, params, parameter, detail):
    response = client.get("/tiles/wpc2010/download.mbtiles", params=params)
    assert response.status_code == 400 and response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["detail"].startswith(detail), body
    if parameter is not None and "errors" in body:
        assert body["errors"][0]["parameter"] == parameter


def test_a_download_withholds_what_disclosure_control_withholds(demo_db, tmp_path: Path):
    """The issue-27 data zone (8 employment-deprived people) has no value in the download under
    disclosure control, as in the items and tiles; without it, it has one."""
    asked = {"indicator": "simd2020.employment_deprived", "denominator": "simd2020.working_age_population",
             "partnership": "dundee", "minzoom": 11, "maxzoom": 11}
    attacked = "S01007771"
    seen = {}
    for control in (True, False):
        folder = tmp_path / ("controlled" if control else "open")
        folder.mkdir()
        with TestClient(create_app(Settings(db=demo_db, disclosure_control=control))) as c:
            path = _download(c, folder, "datazone2011", **asked)
            item = c.get(f"/collections/datazone2011/items/{attacked}",
                         params={k: asked[k] for k in ("indicator", "denominator")}).json()["properties"]
        features = [f["properties"] for feats in _mbtiles_features(path, "datazone2011").values()
                    for f in feats if f["properties"]["code"] == attacked]
        assert features, control
        seen[control] = (features, item)
    withheld, item = seen[True]
    assert item["value"] is None and item["suppressed"] is True
    assert all("value" not in p and "value_low" not in p and p.get("suppressed") is True for p in withheld)
    shown, item = seen[False]
    assert all(p["value"] == item["value"] is not None for p in shown)


@needs_gdal
def test_gdal_opens_the_mbtiles_download_with_its_fields_and_values(client, tmp_path: Path):
    path = _download(client, tmp_path, "lsoa2011", **MEASURE, partnership=GM)
    summary = subprocess.run(["ogrinfo", "-ro", "-so", str(path), "lsoa2011"], capture_output=True, text=True,
                             timeout=120)
    assert summary.returncode == 0, summary.stderr
    assert "using driver `MBTiles' successful" in summary.stdout or "Geometry: Multi Polygon" in summary.stdout
    for field in ("code: String", "name: String", "value: Real", "value_low: Real", "worst: Integer(Boolean)"):
        assert field in summary.stdout, field
    # the value is the items' at the deepest zoom and at z8
    for zoom in ("12", "8"):
        one = subprocess.run(["ogrinfo", "-ro", "-q", "-oo", f"ZOOM_LEVEL={zoom}", str(path), "lsoa2011",
                              "-where", f"code = '{AREA}'"], capture_output=True, text=True, timeout=120)
        assert one.returncode == 0, one.stderr
        assert re.findall(r"^\s+value \(Real\) = (\S+)$", one.stdout, re.M) == ["2.3524"], (zoom, one.stdout[:500])


# PyQGIS runs in Debian's Python (not the venv): this script loads a downloaded MBTiles file as
# Layer ▸ Add Layer ▸ Add Vector Tile Layer does (``type=mbtiles&url=PATH``), colours every
# feature blue and those an expression picks red, renders an extent without antialiasing and
# counts the pixels: white inside a coverage is a sliver between neighbours.
QGIS_SCRIPT = r"""
import json, os, sys
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
from qgis.core import (QgsApplication, QgsCoordinateReferenceSystem, QgsFillSymbol, QgsMapRendererSequentialJob,
                       QgsMapSettings, QgsRectangle, QgsVectorTileBasicRenderer, QgsVectorTileBasicRendererStyle,
                       QgsVectorTileLayer, QgsWkbTypes)
from qgis.PyQt.QtCore import QSize
from qgis.PyQt.QtGui import QColor

app = QgsApplication([], False)
app.initQgis()
path, layer_name, checks = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
layer = QgsVectorTileLayer(f"type=mbtiles&url={path}", "download")
out = {"valid": layer.isValid(), "source_type": layer.sourceType(),
       "zooms": [layer.sourceMinZoom(), layer.sourceMaxZoom()], "crs": layer.crs().authid(), "renders": []}


def style(name, colour, expression):
    s = QgsVectorTileBasicRendererStyle(name, layer_name, QgsWkbTypes.PolygonGeometry)
    s.setSymbol(QgsFillSymbol.createSimple({"color": colour, "outline_style": "no"}))
    s.setFilterExpression(expression)
    return s


for check in checks if layer.isValid() else []:
    renderer = QgsVectorTileBasicRenderer()
    renderer.setStyles([style("all", "0,0,255,255", ""), style("picked", "255,0,0,255", check["expression"])])
    layer.setRenderer(renderer)
    settings = QgsMapSettings()
    settings.setLayers([layer])
    settings.setDestinationCrs(QgsCoordinateReferenceSystem("EPSG:3857"))
    settings.setExtent(QgsRectangle(*check["extent"]))
    settings.setOutputSize(QSize(check["size"], check["size"]))
    settings.setBackgroundColor(QColor(255, 255, 255))
    settings.setFlag(QgsMapSettings.Antialiasing, False)
    job = QgsMapRendererSequentialJob(settings)
    job.start()
    job.waitForFinished()
    image = job.renderedImage()
    counts = {"red": 0, "blue": 0, "white": 0, "other": 0}
    names = {(255, 0, 0): "red", (0, 0, 255): "blue", (255, 255, 255): "white"}
    for i in range(image.width()):
        for j in range(image.height()):
            c = QColor(image.pixel(i, j))
            counts[names.get((c.red(), c.green(), c.blue()), "other")] += 1
    out["renders"].append(counts)
print(json.dumps(out), flush=True)
os._exit(0)   # PyQGIS 3.22 can crash in its own teardown; what it saw is printed
"""


def _qgis_sees(path: Path, layer: str, checks: list[dict]) -> dict:
    result = subprocess.run([DEBIAN_PYTHON, "-c", QGIS_SCRIPT, str(path), layer, json.dumps(checks)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@needs_pyqgis
def test_qgis_opens_the_mbtiles_download_with_the_items_values_and_no_slivers(client, area_box, tmp_path: Path):
    """QGIS 3.22 loads the download as a vector tile layer and draws it: the issue's area is
    picked by ``"value" = 2.3524`` (the items' value) at the deepest zoom and from z8 tiles,
    never by 2.35; and over 24 km of central Manchester no pixel between neighbours is left
    white, whether drawn from z8 or from z10 tiles (the issue's 7% and 0.8%)."""
    x0, y0, x1, y1 = area_box
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    near = [cx - 3000, cy - 3000, cx + 3000, cy + 3000]
    town = [cx - 12_000, cy - 12_000, cx + 12_000, cy + 12_000]
    exact, rounded = f"\"code\" = '{AREA}' AND \"value\" = 2.3524", f"\"code\" = '{AREA}' AND \"value\" = 2.35"
    full = _download(client, tmp_path, "lsoa2011", **MEASURE, partnership=GM)
    seen = _qgis_sees(full, "lsoa2011", [{"expression": exact, "extent": near, "size": 200},
                                         {"expression": rounded, "extent": near, "size": 200}])
    assert seen["valid"] and seen["source_type"] == "mbtiles" and seen["crs"] == "EPSG:3857", seen
    assert seen["zooms"] == [7, 12]
    picked, not_picked = seen["renders"]
    assert picked["red"] > 500 and not_picked["red"] == 0, seen
    for maxzoom in (8, 10):
        (tmp_path / str(maxzoom)).mkdir()
        coarse = _download(client, tmp_path / str(maxzoom), "lsoa2011", **MEASURE, partnership=GM, maxzoom=maxzoom)
        seen = _qgis_sees(coarse, "lsoa2011", [{"expression": exact, "extent": town, "size": 400}])
        assert seen["zooms"] == [7, maxzoom], seen
        [drawn] = seen["renders"]
        assert drawn["red"] > 0 and drawn["white"] == 0 and drawn["other"] == 0, (maxzoom, drawn)
