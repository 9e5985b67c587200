"""The default path of vector tiles: a layer not prepared, drawn in memory (issue 32, point 1).

Every boundary ingest leaves its set's tiles unprepared, and so does the demo: the tiles a user
gets without any extra command are drawn by the layer's :class:`geo_cs.tiles.TileIndex` from
the band geometries it holds (clipped by GEOS, encoded by :mod:`geo_cs.mvt`), with no query.
They must be the tiles the other paths give: the database's, clipped in SQL (``ST_Intersection``
and ``ST_AsMVT``), and the prepared ones (``geo-cs tiles prepare``), read from the database or
written from their encoded geometry — the same features with the same properties, the same
shapes to the unit of the tile's grid, at every zoom, on tile edges, with the byte budget and
where a tile is empty. Where they differ it is on purpose: an area whose rings all collapse to
the grid is left out (the database keeps it, with no area), a repeated point is not written,
and windings are set after the cut to the grid (MVT: exteriors positive, holes negative).
"""

from __future__ import annotations

from pathlib import Path

import mapbox_vector_tile
import numpy as np
import pandas as pd
import pytest
import shapely
import shapely.geometry

from geo_cs import tiles
from geo_cs.ingest import ingest_boundaries
from geo_cs.store import Store
from tests.conftest import GRID_CODES, ORIGIN

LAYER = "lsoa2011"
SHAPES = "shapes"


def _values(codes: list[str]) -> tiles.TileValues:
    """A period's values: rates with intervals, one area withheld, one without a value."""
    rng = np.random.default_rng(32)
    value = rng.uniform(5, 60, len(codes)).round(6)
    frame = pd.DataFrame({"code": codes, "value": value, "value_low": value - 2.123456,
                          "value_high": value + 2.654321,
                          "worst": pd.array([i % 2 == 0 for i in range(len(codes))], dtype="boolean"),
                          "estimated_share": np.linspace(0, 1, len(codes)),
                          "suppressed": [i == 1 for i in range(len(codes))]})
    frame.loc[1, ["value", "value_low", "value_high"]] = np.nan
    return tiles.tile_values(frame.iloc[[i for i in range(len(codes)) if i != 2]])


@pytest.fixture
def grid_store(tmp_path: Path, grid, test_registry) -> Store:
    path = tmp_path / "grid.geojson"
    grid.to_file(path)
    store = Store.open(tmp_path / "grid.duckdb")
    ingest_boundaries(store, [path])
    yield store
    store.close()


def _addresses(store: Store, set_id: str, zooms: range) -> list[tuple[int, int, int]]:
    """Every tile over the set's areas at ``zooms``, and one beyond on every side (areas reach
    into a neighbour through the buffer only)."""
    west, south, east, north = store.sql(
        "SELECT min(xmin), min(ymin), max(xmax), max(ymax) FROM tile_geoms WHERE set_id = ?", [set_id]).fetchone()
    size = lambda z: 2 * tiles.WORLD_HALF / 2**z  # noqa: E731
    out = []
    for z in zooms:
        x0, x1 = (int((v + tiles.WORLD_HALF) // size(z)) for v in (west, east))
        y0, y1 = (int((tiles.WORLD_HALF - v) // size(z)) for v in (north, south))
        out += [(z, x, y) for x in range(x0 - 1, x1 + 2) for y in range(y0 - 1, y1 + 2)
                if 0 <= x < 2**z and 0 <= y < 2**z]
    return out


#: The buffered square less its outermost unit: the paths that cut in tile units (the prepared
#: pieces) and in Web Mercator (the default path, snapping to the grid what is within a hair of
#: it) draw the same there.
_INNER = shapely.box(-tiles.BUFFER + 1, -tiles.BUFFER + 1, tiles.EXTENT + tiles.BUFFER - 1,
                     tiles.EXTENT + tiles.BUFFER - 1)
#: The tile less its outermost unit. The database truncates to the grid what is a hair short of
#: a line of it: its overlay lands the buffered edge on 4,159 where the others draw 4,160 (which
#: moves the slanted edges of what crosses it by a few units, in the buffer), and an area whose
#: edge runs along the tile's (4,095.99999 in tile units) gets a sliver one unit wide inside it.
_TILE = shapely.box(1, 1, tiles.EXTENT - 1, tiles.EXTENT - 1)


def _features(tile: bytes, layer: str, region: shapely.Geometry = _INNER) -> dict[str, tuple[dict, shapely.Geometry]]:
    """The features drawn (with some area in ``region``), by code: properties and shape in
    ``region`` (tile units, y down)."""
    if not tile:
        return {}
    decoded = mapbox_vector_tile.decode(tile, default_options={"y_coord_down": True})
    out = {}
    for f in decoded[layer]["features"]:
        shape = shapely.make_valid(shapely.geometry.shape(f["geometry"])).intersection(region)
        if shape.area > 0:
            out[f["properties"]["code"]] = (f["properties"], shape)
    return out


def _same_tiles(ours: bytes, theirs: bytes, layer: str, address: tuple, unit: float = 1.5,
                region: shapely.Geometry = _TILE) -> int:
    """Assert the two tiles draw the same areas in ``region`` (default: the tile, as the
    database draws it) with the same properties and shapes within ``unit`` of the tile's grid
    (a point truncated the other way in x and in y: 1.4); return the number of areas."""
    a, b = _features(ours, layer, region), _features(theirs, layer, region)
    assert set(a) == set(b), (address, sorted(set(a) ^ set(b)))
    for code, (properties, shape) in b.items():
        assert a[code][0] == properties, (address, code)
        distance = shapely.hausdorff_distance(a[code][1], shape)
        assert distance <= unit, (address, code, distance)
    return len(a)


def _same_as_prepared(ours: bytes, theirs: bytes, layer: str, address: tuple) -> int:
    """:func:`_same_tiles` against a prepared tile: in the buffer too, to the unit."""
    return _same_tiles(ours, theirs, layer, address, unit=1.0, region=_INNER)


# -- the raw geometry commands: windings, repeated points ---------------------------------------

def _varint(buf: bytes, i: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        byte = buf[i]
        i += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, i
        shift += 7


def _messages(buf: bytes, field: int) -> list[bytes]:
    """The length-delimited fields numbered ``field`` of a protobuf message (others skipped)."""
    out, i = [], 0
    while i < len(buf):
        key, i = _varint(buf, i)
        wire = key & 7
        if wire == 0:
            _, i = _varint(buf, i)
        elif wire == 2:
            length, i = _varint(buf, i)
            if key >> 3 == field:
                out.append(buf[i:i + length])
            i += length
        elif wire in (1, 5):
            i += 8 if wire == 1 else 4
    return out


def _raw_rings(tile: bytes) -> dict[str, list[list[tuple[int, int]]]]:
    """Per feature (by code), its rings as written: the points of each MoveTo/LineTo run."""
    [layer] = _messages(tile, 3)
    keys = [k.decode() for k in _messages(layer, 3)]
    values = [_messages(v, 1) for v in _messages(layer, 4)]
    out = {}
    for feature in _messages(layer, 2):
        [tags] = _messages(feature, 2)
        ints, i = [], 0
        while i < len(tags):
            v, i = _varint(tags, i)
            ints.append(v)
        props = {keys[k]: values[v] for k, v in zip(ints[::2], ints[1::2], strict=True)}
        [geometry] = _messages(feature, 4)
        words, i = [], 0
        while i < len(geometry):
            v, i = _varint(geometry, i)
            words.append(v)
        rings, x, y, k = [], 0, 0, 0
        while k < len(words):
            command, count = words[k] & 7, words[k] >> 3
            k += 1
            if command == 7:
                continue
            for _ in range(count):
                dx, dy = words[k], words[k + 1]
                x += (dx >> 1) ^ -(dx & 1)
                y += (dy >> 1) ^ -(dy & 1)
                k += 2
                if command == 1:
                    rings.append([])
                rings[-1].append((x, y))
        out[props["code"][0].decode()] = rings
    return out


def _twice_area(ring: list[tuple[int, int]]) -> int:
    return sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(ring, ring[1:] + ring[:1], strict=True))


def _check_rings(tile: bytes) -> None:
    """MVT's rules for polygons, as written: no point repeating the one before (nor the first
    at the end), at least 3 points and an area in every ring, the first ring of a feature an
    exterior (positive, y down)."""
    for code, rings in _raw_rings(tile).items():
        assert rings and _twice_area(rings[0]) > 0, code
        for ring in rings:
            assert len(ring) >= 3 and _twice_area(ring) != 0, code
            assert all(p != q for p, q in zip(ring, ring[1:] + ring[:1], strict=True)), code


# -- the grid: every zoom, tile edges, values ---------------------------------------------------

def test_the_default_path_draws_what_the_database_and_the_prepared_tiles_draw(grid_store: Store):
    """Every tile over the grid and around it, z5-z14, with values: the tile a layer not
    prepared gets from its index equals the database's, clipped in SQL, and once the layer is
    prepared the prepared one, read from the pieces or written from its encoded geometry."""
    values = _values(GRID_CODES)
    addresses = _addresses(grid_store, LAYER, range(5, 15))
    index = tiles.tile_index(grid_store, LAYER)
    assert not index.prepared and index.encoded is None
    default = {a: tiles.render_tile(grid_store, LAYER, *a, values, index=index) for a in addresses}
    sql = {a: tiles.render_tile(grid_store, LAYER, *a, values, prepared=False) for a in addresses}
    tiles.prepare_tiles(grid_store, LAYER)
    prepared_index = tiles.tile_index(grid_store, LAYER)
    assert prepared_index.encoded is not None
    drawn = crossed = 0
    for a in addresses:
        encoded = tiles.render_tile(grid_store, LAYER, *a, values, index=prepared_index)
        pieces = tiles.render_tile(grid_store, LAYER, *a, values, prepared=True)
        n = _same_tiles(default[a], sql[a], LAYER, a)
        # the prepared tiles: the same encoder, from pieces cut in tile units
        for other in (encoded, pieces):
            _same_as_prepared(default[a], other, LAYER, a)
        if default[a]:
            _check_rings(default[a])
            _check_rings(encoded)
        drawn += n > 0
        crossed += 0 < n < len(GRID_CODES)
    assert drawn >= 20 and crossed >= 8  # tiles that cut through the grid were compared


def test_properties_are_the_values_as_the_items_round_them(grid_store: Store):
    z, x, y = 12, *tiles.lonlat_to_tile(ORIGIN[0] + 0.02, ORIGIN[1] + 0.009, 12)
    values = _values(GRID_CODES)
    index = tiles.tile_index(grid_store, LAYER)
    props = {c: p for c, (p, _) in _features(tiles.render_tile(grid_store, LAYER, z, x, y, values,
                                                                 index=index), LAYER).items()}
    assert set(props) == set(GRID_CODES)
    picked, _ = values.for_codes(np.array(GRID_CODES, dtype=object), np.arange(len(GRID_CODES)))
    for i, code in enumerate(GRID_CODES):
        if i in (1, 2):
            continue
        assert props[code]["value"] == picked["value"][i]
    # withheld: no value, flagged; without a value: neither
    assert "value" not in props[GRID_CODES[1]] and props[GRID_CODES[1]]["suppressed"] is True
    assert "value" not in props[GRID_CODES[2]] and "suppressed" not in props[GRID_CODES[2]]
    assert all("name" in p for p in props.values())  # from z9
    # boundaries only: code and name
    plain = _features(tiles.render_tile(grid_store, LAYER, z, x, y, index=index), LAYER)
    assert {frozenset(p) for p, _ in plain.values()} == {frozenset({"code", "name"})}


def test_an_empty_tile_is_no_bytes_and_says_so(grid_store: Store):
    index = tiles.tile_index(grid_store, LAYER)
    report: dict = {}
    assert tiles.render_tile(grid_store, LAYER, 10, 0, 0, _values(GRID_CODES), index=index, report=report) == b""
    assert report == {"renders": 0, "min_area": 0.0}
    # below the band's areas: the grid's squares are under a pixel at z0-6
    z, x, y = 5, *tiles.lonlat_to_tile(*ORIGIN, 5)
    assert tiles.render_tile(grid_store, LAYER, z, x, y, index=index) == b""
    assert tiles.render_tile(grid_store, LAYER, z, x, y, prepared=False) == b""


def test_a_tile_over_its_budget_leaves_out_the_same_areas_on_every_path(grid_store: Store):
    # make the squares different sizes in the tile table, as the test of the database's budget does
    grid_store.sql("UPDATE tile_geoms SET area_m2 = area_m2 * (1 + position(right(code, 1) IN '1235610'))")
    z, x, y = 12, *tiles.lonlat_to_tile(ORIGIN[0] + 0.02, ORIGIN[1] + 0.009, 12)
    values = _values(GRID_CODES)
    index = tiles.tile_index(grid_store, LAYER)
    full = tiles.render_tile(grid_store, LAYER, z, x, y, values, index=index)
    budget = len(full) // 2
    reports: dict[str, dict] = {"default": {}, "sql": {}, "prepared": {}}
    cut = {"default": tiles.render_tile(grid_store, LAYER, z, x, y, values, index=index, max_bytes=budget,
                                        report=reports["default"]),
           "sql": tiles.render_tile(grid_store, LAYER, z, x, y, values, prepared=False, max_bytes=budget,
                                    report=reports["sql"])}
    tiles.prepare_tiles(grid_store, LAYER)
    cut["prepared"] = tiles.render_tile(grid_store, LAYER, z, x, y, values, index=tiles.tile_index(grid_store, LAYER),
                                        max_bytes=budget, report=reports["prepared"])
    kept = {path: set(_features(tile, LAYER)) for path, tile in cut.items()}
    assert len(cut["default"]) <= budget and reports["default"]["renders"] >= 2
    assert 0 < len(kept["default"]) < len(GRID_CODES)
    assert kept["default"] == kept["sql"] == kept["prepared"]
    assert reports["default"] == reports["prepared"]
    assert reports["default"]["min_area"] == pytest.approx(reports["sql"]["min_area"])
    areas = dict(grid_store.sql("SELECT code, area_m2 FROM tile_geoms WHERE band = ?",
                                [tiles.zoom_band(z).band]).fetchall())
    assert all(areas[c] >= reports["default"]["min_area"] for c in kept["default"])
    assert all(areas[c] < reports["default"]["min_area"] for c in set(GRID_CODES) - kept["default"])
    _same_tiles(cut["default"], cut["sql"], LAYER, (z, x, y))


def test_the_default_path_runs_no_query_once_the_index_is_built(grid_store: Store, monkeypatch):
    index = tiles.tile_index(grid_store, LAYER)
    z, x, y = 13, *tiles.lonlat_to_tile(ORIGIN[0] + 0.02, ORIGIN[1] + 0.009, 13)
    expected = tiles.render_tile(grid_store, LAYER, z, x, y, _values(GRID_CODES), index=index)

    def no_query(*args, **kwargs):
        raise AssertionError("a query per tile")

    monkeypatch.setattr(grid_store, "sql", no_query)
    assert tiles.render_tile(grid_store, LAYER, z, x, y, _values(GRID_CODES), index=index) == expected


def test_a_prepared_layer_drawn_on_the_fly_loads_its_geometry_once(grid_store: Store):
    tiles.prepare_tiles(grid_store, LAYER)
    index = tiles.tile_index(grid_store, LAYER)
    before = index.nbytes
    z, x, y = 11, *tiles.lonlat_to_tile(ORIGIN[0] + 0.02, ORIGIN[1] + 0.009, 11)
    fly = tiles.render_tile(grid_store, LAYER, z, x, y, index=index, prepared=False)
    assert index.nbytes > before and index.encoded is not None
    _same_as_prepared(fly, tiles.render_tile(grid_store, LAYER, z, x, y, index=index), LAYER, (z, x, y))
    assert tiles.render_tile(grid_store, LAYER, z, x, y, index=index, prepared=False) == fly


# -- shapes: holes, islands, multipolygons, slivers, a tiny area --------------------------------

def _from_mercator(geometry: shapely.Geometry) -> shapely.Geometry:
    return shapely.transform(geometry, lambda c: np.column_stack(
        tiles._TO_MERCATOR.transform(c[:, 0], c[:, 1], direction="INVERSE")))


@pytest.fixture
def shapes_store(tmp_path: Path) -> tuple[Store, tuple[int, int, int]]:
    """A set of awkward shapes around the top edge of one z12 tile: a square with a hole and an
    island in it, an area in two parts, a U whose arms cross the tile's edge (its clip is two
    pieces), an area with a long sliver along the tile's buffered edge, and a 20 m square
    (under a unit of the grid below z9)."""
    z = 12
    x, y = tiles.lonlat_to_tile(-1.5, 53.8, z)
    xmin, _, xmax, ymax = tiles.tile_bounds(z, x, y)
    size = xmax - xmin
    unit = size / tiles.EXTENT
    cx, top = xmin + size / 2, ymax
    donut = shapely.box(cx - 0.3 * size, top - 0.5 * size, cx - 0.1 * size, top - 0.3 * size).difference(
        shapely.box(cx - 0.25 * size, top - 0.45 * size, cx - 0.15 * size, top - 0.35 * size))
    island = shapely.box(cx - 0.22 * size, top - 0.42 * size, cx - 0.18 * size, top - 0.38 * size)
    parts = shapely.MultiPolygon([shapely.box(cx, top - 0.6 * size, cx + 0.1 * size, top - 0.5 * size),
                                  shapely.box(cx + 0.2 * size, top - 0.6 * size, cx + 0.3 * size, top - 0.5 * size)])
    # a U upside down: its arms reach below the top edge into the tile, its bar above the buffer
    u = shapely.Polygon([(cx + 0.1 * size, top - 0.2 * size), (cx + 0.15 * size, top - 0.2 * size),
                         (cx + 0.15 * size, top + 0.1 * size), (cx + 0.25 * size, top + 0.1 * size),
                         (cx + 0.25 * size, top - 0.2 * size), (cx + 0.3 * size, top - 0.2 * size),
                         (cx + 0.3 * size, top + 0.2 * size), (cx + 0.1 * size, top + 0.2 * size)])
    # a sliver a third of a unit deep just inside the buffered edge on the right
    edge = xmax + tiles.BUFFER * unit
    sliver = shapely.Polygon([(edge - 0.3 * unit, top - 0.8 * size), (edge + 5 * unit, top - 0.8 * size),
                              (edge + 5 * unit, top - 0.7 * size), (edge - 0.3 * unit, top - 0.7 * size)])
    tiny = shapely.box(cx - 0.45 * size, top - 0.9 * size, cx - 0.45 * size + 20, top - 0.9 * size + 20)
    codes = np.array(["D", "I", "M", "U", "S", "T"], dtype=object)
    geoms = np.array([_from_mercator(g) for g in (donut, island, parts, u, sliver, tiny)])
    store = Store.open(tmp_path / "shapes.duckdb")
    tiles.write_tile_geometries(store, SHAPES, tiles.tile_geometries(codes, codes.copy(), geoms))
    yield store, (z, x, y)
    store.close()


def test_holes_islands_parts_and_edges_are_drawn_as_the_database_draws_them(shapes_store):
    store, (z, x, y) = shapes_store
    index = tiles.tile_index(store, SHAPES)
    addresses = _addresses(store, SHAPES, range(7, 15))
    default = {a: tiles.render_tile(store, SHAPES, *a, index=index) for a in addresses}
    for a in addresses:
        _same_tiles(default[a], tiles.render_tile(store, SHAPES, *a, prepared=False), SHAPES, a)
        if default[a]:
            _check_rings(default[a])
    tiles.prepare_tiles(store, SHAPES)
    prepared = tiles.tile_index(store, SHAPES)
    for a in addresses:
        _same_as_prepared(default[a], tiles.render_tile(store, SHAPES, *a, index=prepared), SHAPES, a)
    # the tile on whose edge they stand: the hole is a hole, the island inside it, the U's
    # arms two parts, the two-part area two exteriors
    rings = _raw_rings(default[(z, x, y)])
    assert [_twice_area(r) > 0 for r in rings["D"]] == [True, False]
    assert [_twice_area(r) > 0 for r in rings["U"]] == [True, True]
    assert [_twice_area(r) > 0 for r in rings["M"]] == [True, True]
    drawn = _features(default[(z, x, y)], SHAPES)
    donut, island = drawn["D"][1], drawn["I"][1]
    assert shapely.Polygon(donut.exterior).contains(island) and donut.intersection(island).area == 0
    # the sliver a third of a unit inside the buffered edge: the default path cuts it in Web
    # Mercator, the prepared pieces in tile units; both land the edge on the grid's last line
    ours = _raw_rings(default[(z, x, y)])["S"]
    theirs = _raw_rings(tiles.render_tile(store, SHAPES, z, x, y, index=prepared))["S"]
    assert [shapely.normalize(shapely.Polygon(r)) for r in ours] == \
        [shapely.normalize(shapely.Polygon(r)) for r in theirs]
    assert {x for ring in ours for x, _ in ring} == {4159, 4160}


def test_an_area_under_a_unit_of_the_grid_is_left_out_and_drawn_when_it_is_not(shapes_store):
    """The 20 m square is under a unit at z7-z8 (300 and 150 m): its ring collapses to the grid.
    The database's tile keeps it with no area; the default path leaves it out. From z13 (a
    unit is 2.4 m at z14) both draw it."""
    store, _ = shapes_store
    index = tiles.tile_index(store, SHAPES)

    def address(z: int) -> tuple[int, int, int]:
        xmin, ymin = store.sql("SELECT xmin, ymin FROM tile_geoms WHERE code = 'T' AND band = ?",
                               [tiles.zoom_band(z).band]).fetchone()
        size = 2 * tiles.WORLD_HALF / 2**z
        return z, int((xmin + tiles.WORLD_HALF) // size), int((tiles.WORLD_HALF - ymin) // size)

    low = tiles.render_tile(store, SHAPES, *address(7), index=index)
    assert low and "T" not in _raw_rings(low)
    database = mapbox_vector_tile.decode(tiles.render_tile(store, SHAPES, *address(7), prepared=False))
    [t] = [f for f in database[SHAPES]["features"] if f["properties"]["code"] == "T"]
    assert shapely.geometry.shape(t["geometry"]).area == 0
    for z in (13, 14):
        high = tiles.render_tile(store, SHAPES, *address(z), index=index)
        assert "T" in _raw_rings(high)
        _same_tiles(high, tiles.render_tile(store, SHAPES, *address(z), prepared=False), SHAPES, address(z))


# -- the demo's real boundaries -------------------------------------------------------------------

def test_the_demos_tiles_are_the_databases(demo_db):
    """The demo is not prepared: its tiles are the default path's. Over Manchester's LSOAs and
    the constituencies, a tile at every zoom and its neighbours (tile edges through real areas):
    the same areas, properties and shapes as the database's tiles clipped in SQL."""
    with Store.open(demo_db, read_only=True) as store:
        compared = 0
        for layer, (lon, lat), zooms in (("lsoa2011", (-2.2426, 53.4808), range(8, 15)),
                                         ("wpc2010", (-2.2426, 53.4808), range(5, 12))):
            index = tiles.tile_index(store, layer)
            assert not index.prepared
            for z in zooms:
                x, y = tiles.lonlat_to_tile(lon, lat, z)
                for a in ((z, x, y), (z, x + 1, y), (z, x, y + 1)):
                    ours = tiles.render_tile(store, layer, *a, index=index)
                    compared += _same_tiles(ours, tiles.render_tile(store, layer, *a, prepared=False), layer, a)
                    if ours:
                        _check_rings(ours)
        assert compared > 200


# -- the cut to the buffered square, against GEOS ------------------------------------------------

def _star(rng: np.random.Generator, centre: tuple[float, float], radius: float, points: int) -> shapely.Polygon:
    """A random star-shaped ring around ``centre``: concave, simple."""
    angles = np.sort(rng.uniform(0, 2 * np.pi, points))
    radii = radius * rng.uniform(0.3, 1.0, points)
    return shapely.Polygon(np.column_stack([centre[0] + radii * np.cos(angles), centre[1] + radii * np.sin(angles)]))


def _decoded_rings(geometry: np.ndarray, start: int, end: int) -> shapely.Geometry:
    """One encoded feature (type and geometry fields) as a shapely geometry, rings assembled
    by their winding (exterior positive, y down)."""
    tile = tiles.LayerWriter("t", np.array(["A"], dtype=object), {}).write(
        np.array([0]), np.array([1.0]), 0, np.array([start]), np.array([end]), geometry, None, 10**9)
    if not tile:
        return shapely.Polygon()
    polygons, current = [], None
    for ring in _raw_rings(tile)["A"]:
        if _twice_area(ring) > 0:
            current = [ring, []]
            polygons.append(current)
        else:
            current[1].append(ring)
    return shapely.MultiPolygon([shapely.Polygon(e, holes) for e, holes in polygons])


def test_the_cut_to_the_square_is_geos_cut_where_it_is_done_in_place():
    """Random concave areas, some with a hole, around the buffered square's edges and corners:
    where the encoder cuts an area itself (Sutherland-Hodgman, its spikes along the edges
    removed) the result is GEOS's ``clip_by_rect`` to the grid's unit and a valid polygon; an
    area whose cut is in pieces, or whose hole reaches the edge, it leaves to GEOS; one that only
    touches the square or misses it, it says so."""
    from geo_cs.mvt import DRAWN, OUTSIDE, TOO_COMPLEX, WKB_PADDING, encode_wkb

    rng = np.random.default_rng(32)
    # in thousandths of a unit: the grid's unit too small to bend a ring, so that what is
    # checked is the cut
    lo, hi = -tiles.BUFFER * 1000, (tiles.EXTENT + tiles.BUFFER) * 1000
    seen = {DRAWN: 0, OUTSIDE: 0, TOO_COMPLEX: 0}
    for case in range(400):
        centre = (rng.choice([lo, hi, 2.048e6]) + rng.normal(0, 3e5), rng.choice([lo, hi, 2.048e6]) + rng.normal(0, 3e5))
        polygon = _star(rng, centre, rng.uniform(1e5, 3e6), int(rng.integers(5, 80)))
        if case % 4 == 0:
            hole = shapely.affinity.scale(polygon, 0.3, 0.3, origin=polygon.centroid)
            if polygon.contains(hole):
                polygon = shapely.Polygon(polygon.exterior, [hole.exterior])
        if not polygon.is_valid:
            continue
        wkb = np.frombuffer(shapely.to_wkb(polygon, byte_order=1) + bytes(WKB_PADDING), dtype=np.uint8)
        ends = np.array([len(wkb) - WKB_PADDING])
        geometry, start, end, status = encode_wkb(wkb, np.array([0]), ends, 0, 0, 1, y_down=True, clip=(lo, hi))
        seen[int(status[0])] += 1
        geos = tiles._polygonal_parts(np.array([shapely.clip_by_rect(polygon, lo, lo, hi, hi)], dtype=object))[0]
        if status[0] == OUTSIDE:
            assert geos is None or geos.area == 0, case
            continue
        if status[0] == TOO_COMPLEX:
            assert geos is not None and (shapely.get_num_geometries(geos) > 1 or any(
                shapely.get_num_interior_rings(p) for p in shapely.get_parts(geos))
                or len(polygon.interiors) > 0), case
            continue
        ours = _decoded_rings(geometry, start[0], end[0])
        assert geos is not None and shapely.is_valid(ours), (case, shapely.is_valid_reason(ours))
        # the grid (a thousandth here) moves an edge by less than a unit
        assert shapely.symmetric_difference(ours, geos).area <= 1.5 * geos.length + 4, case
    assert seen[DRAWN] > 150 and seen[TOO_COMPLEX] > 10 and seen[OUTSIDE] > 0, seen
