"""Pages by bbox (issue 32 point 5): an area's bounds decide whether it meets a bbox wherever
they can, and its full geometry only where they cannot (``geo_cs.features._MEETS_BOX``). The
areas selected must be exactly those the full-geometry test selects — ``ST_Intersects`` of every
area's ``geom_4326`` with the box, no shortcut — on every boundary set of the demo, for random
boxes (Hypothesis), a seeded grid over each set, and boxes along area edges: boxes that are an
area's bounds, one ulp in or out of them, touch an area from outside at its extreme vertex,
have a corner or an edge through a vertex (shared between neighbours), or are zero-width
lines and points on vertices. Every path that takes a bbox is checked: the page's selection
(``selection_codes``, with and without a partnership's codes), ``numberMatched``
(``count_items``), the extent (``selection_extent``), a page chosen by ``sortby`` (searched in
the database) and the API's pages."""

from __future__ import annotations

import random

import numpy as np
import pandas as pd
import pytest
import shapely
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from geo_cs import features, filters
from geo_cs.api.app import create_app
from geo_cs.config import Settings
from geo_cs.store import Store

#: The reference: the full geometry of every area of the set against each box (DuckDB plans it
#: as a spatial join: an R-tree of the boxes, then ST_Intersects on the geometries).
FULL_GEOMETRY_SQL = """
SELECT b.i, a.code FROM geo_cs_test_boxes b JOIN areas a
  ON a.set_id = $set_id AND a.geom_4326 IS NOT NULL
 AND ST_Intersects(a.geom_4326, ST_MakeEnvelope(b.west, b.south, b.east, b.north))
ORDER BY b.i, a.code
"""

#: geo_cs.features' test of an area against a box, with each box's sides as columns in place of
#: the parameters: many boxes in one query.
SHORTCUT_SQL = """
SELECT b.i, a.code FROM geo_cs_test_boxes b JOIN areas a
  ON a.set_id = $set_id AND a.xmin IS NOT NULL AND {meets}
ORDER BY b.i, a.code
""".format(meets=features._MEETS_BOX.format(west="b.west", south="b.south", east="b.east",
                                            north="b.north"))

Box = tuple[float, float, float, float]
SIDES = ("west", "south", "east", "north")


class DemoSets:
    """The demo's boundary sets with geometry: per set its areas' codes, bounds, geometries and
    a pool of their vertices (for boxes along edges)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.sets = [r[0] for r in store.sql(
            "SELECT DISTINCT set_id FROM areas WHERE xmin IS NOT NULL ORDER BY 1").fetchall()]
        self.codes: dict[str, list[str]] = {}
        self.bounds: dict[str, np.ndarray] = {}
        self.geoms: dict[str, np.ndarray] = {}
        self.vertices: dict[str, np.ndarray] = {}
        for set_id in self.sets:
            rows = store.sql("SELECT code, xmin, ymin, xmax, ymax, ST_AsWKB(geom_4326) FROM areas "
                             "WHERE set_id = ? AND xmin IS NOT NULL ORDER BY code", [set_id]).fetchall()
            self.codes[set_id] = [r[0] for r in rows]
            self.bounds[set_id] = np.array([r[1:5] for r in rows], dtype=float)
            self.geoms[set_id] = shapely.from_wkb([bytes(r[5]) for r in rows])
            self.vertices[set_id] = shapely.get_coordinates(self.geoms[set_id])

    def extent(self, set_id: str) -> Box:
        b = self.bounds[set_id]
        return b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max()

    def selected(self, set_id: str, boxes: list[Box], sql: str = FULL_GEOMETRY_SQL) -> list[tuple[str, ...]]:
        """Per box, the codes of the areas of ``set_id`` it selects by ``sql``, in code order."""
        frame = pd.DataFrame([tuple(map(float, b)) for b in boxes], columns=list(SIDES))
        frame["i"] = range(len(frame))
        self.store.con.register("geo_cs_test_boxes", frame)
        try:
            rows = self.store.sql(sql, {"set_id": set_id}).fetchall()
        finally:
            self.store.con.unregister("geo_cs_test_boxes")
        out: list[list[str]] = [[] for _ in boxes]
        for i, code in rows:
            out[i].append(code)
        return [tuple(codes) for codes in out]


@pytest.fixture(scope="module")
def demo(demo_db) -> DemoSets:
    with Store.open(demo_db, read_only=True) as store:
        yield DemoSets(store)


def check_boxes(demo: DemoSets, set_id: str, boxes: list[Box], each: int = 1, every_path: int = 10) -> int:
    """The shortcut selects what the full geometry does for every box, in one query each; and
    so do geo_cs.features' functions, called for every ``each``-th box (every bbox path for
    every ``every_path``-th). Returns how many areas the boxes selected."""
    expected = demo.selected(set_id, boxes)
    shortcut = demo.selected(set_id, boxes, SHORTCUT_SQL)
    for box, want, got in zip(boxes, expected, shortcut, strict=True):
        assert got == want, (set_id, box, sorted(set(got) ^ set(want)))
    for k in range(0, len(boxes), each):
        check_paths(demo, set_id, boxes[k], expected[k], every_path=k % every_path == 0)
    return sum(map(len, expected))


def check_paths(demo: DemoSets, set_id: str, box: Box, expected: tuple[str, ...],
                every_path: bool = True) -> None:
    """Every bbox path of geo_cs.features selects ``expected`` (the full geometry's)."""
    box = tuple(float(v) for v in box)
    assert features.selection_codes(demo.store, set_id, None, box) == expected, (set_id, box)
    if not every_path:
        return
    q = features.ItemQuery(set_id, limit=10, bbox=box)
    assert features.count_items(demo.store, q) == len(expected), (set_id, box)
    extent, n = features.selection_extent(demo.store, q)
    assert n == len(expected), (set_id, box)
    if expected:
        b = demo.bounds[set_id][np.isin(demo.codes[set_id], expected)]
        assert extent == (b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max())
    # a page chosen by a sort is searched in the database (the filter path's bbox clause)
    by_name = features.ItemQuery(set_id, limit=features.MAX_LIMIT, bbox=box,
                                 sort=(filters.SortKey(filters.queryables(False)["name"]),))
    assert features.count_items(demo.store, by_name) == len(expected)
    page = [row["code"] for row in features._rows(demo.store, by_name, with_geometry=False)]
    assert sorted(page) == list(expected), (set_id, box)
    # among a partnership's codes: every other area of the set
    some = tuple(demo.codes[set_id][::2])
    assert features.selection_codes(demo.store, set_id, some, box) == tuple(
        c for c in expected if c in set(some))


# -- the rule itself: bounds decide only what the geometry would ---------------------------------

def test_the_bounds_are_the_geometry_s_own(demo):
    """The shortcut rests on xmin… being exactly the least and greatest coordinates."""
    for set_id in demo.sets:
        assert np.array_equal(demo.bounds[set_id], shapely.bounds(demo.geoms[set_id])), set_id


def test_the_bounds_decide_where_they_can_and_the_geometry_elsewhere(store):
    """An area whose stored geometry lies elsewhere than its bounds (never so in a real store)
    shows which test decides: bounds with a side wholly in the box select it without reading
    the geometry; bounds over a corner of the box, or larger than the box, leave it to the
    geometry."""
    store.sql("INSERT INTO areas (set_id, code, geography, vintage, geom_4326, xmin, ymin, xmax, "
              "ymax, source, ingest_id) VALUES ('t', 'A', 'lsoa', 2011, "
              "ST_GeomFromText('POLYGON((10 10, 11 10, 11 11, 10 11, 10 10))'), 0, 0, 1, 1, 'x', 0)")
    decided_by_bounds = [(-1, -1, 2, 2), (0, 0, 1, 1), (0.5, -1, 2, 2), (-1, 0.5, 2, 2),
                         (1, 0, 3, 1), (-3, 1, 3, 1)]
    left_to_geometry = [(0.5, 0.5, 2, 2), (-1, -1, 0.5, 0.5), (0.2, 0.2, 0.4, 0.4),
                        (0.2, -1, 0.4, 0.5), (0.2, -5, 0.4, 5)]   # a corner, inside, a strip
    for box in decided_by_bounds:
        assert features.selection_codes(store, "t", None, box) == ("A",), box
    for box in left_to_geometry:
        assert features.selection_codes(store, "t", None, box) == (), box
    assert features.selection_codes(store, "t", None, (9, 9, 10.5, 10.5)) == ()   # bounds first
    assert features.selection_codes(store, "t", None, (1.5, 1.5, 2, 2)) == ()


# -- the demo's sets: seeded grid, boxes along edges, random boxes -----------------------------

def test_a_seeded_grid_of_boxes_over_every_set_selects_what_the_full_geometry_does(demo):
    rng = random.Random(32)
    checked = selected = 0
    for set_id in demo.sets:
        west, south, east, north = demo.extent(set_id)
        boxes: list[Box] = []
        for side in (0.004, 0.02, 0.1, 0.6):   # degrees: a street to a county
            nx = max(2, min(8, int((east - west) / side)))
            ny = max(2, min(8, int((north - south) / side)))
            for i in range(nx):
                for j in range(ny):
                    x = west + (east - west) * (i + rng.random()) / nx
                    y = south + (north - south) * (j + rng.random()) / ny
                    w, h = side * rng.uniform(0.5, 2), side * rng.uniform(0.5, 2)
                    boxes.append((x - w / 2, y - h / 2, x + w / 2, y + h / 2))
        selected += check_boxes(demo, set_id, boxes, each=16, every_path=64)
        checked += len(boxes)
    assert checked > 1000 and selected > 10_000   # the grid meets areas, not only empty sea


def _edge_boxes(demo: DemoSets, set_id: str, rng: random.Random, n: int) -> list[Box]:
    """Boxes along the edges of ``n`` random areas of ``set_id``."""
    bounds, vertices = demo.bounds[set_id], demo.vertices[set_id]
    boxes: list[Box] = []
    up, down = np.inf, -np.inf
    for k in rng.sample(range(len(bounds)), min(n, len(bounds))):
        w, s, e, nn = (float(v) for v in bounds[k])
        d = max(e - w, nn - s) * rng.uniform(0.05, 1.5)
        boxes += [
            (w, s, e, nn),                                                   # the bounds
            tuple(np.nextafter([w, s, e, nn], [up, up, down, down])),        # one ulp inside
            tuple(np.nextafter([w, s, e, nn], [down, down, up, up])),        # one ulp outside
            (e, s, e + d, nn), (w - d, s, w, nn), (w, nn, e, nn + d), (w, s - d, e, s),  # touching
            (float(np.nextafter(e, up)), s, e + d, nn),                      # one ulp off the east
            (w - d, float(np.nextafter(s, up)), float(np.nextafter(w, up)), nn),
            (w, s, w, nn), (e, s - d, e, nn + d), (w, s, e, s), (w - d, nn, e, nn),  # sides as lines
            (w, s, w, s), (e, nn, e, nn),                                    # corners as points
        ]
        area_vertices = shapely.get_coordinates(demo.geoms[set_id][k])
        for vx, vy in (area_vertices[rng.randrange(len(area_vertices))] for _ in range(3)):
            vx, vy = float(vx), float(vy)
            boxes += [
                (vx, vy, vx + d, vy + d), (vx - d, vy - d, vx, vy),          # a corner on a vertex
                (vx - d, vy, vx + d, vy + d), (vx, vy - d, vx + d, vy + d),   # an edge through one
                (vx, vy, vx, vy),                                            # the vertex itself
                (vx, vy - d, vx, vy + d), (vx - d, vy, vx + d, vy),          # lines through it
                (float(np.nextafter(vx, up)), vy, vx + d, vy + d),            # one ulp past it
            ]
    # strips across a multi-part area between its parts: its bounds overhang the strip on both
    # sides, yet it does not meet it (a rule that took an area to be in one piece would say so)
    parts = shapely.get_num_geometries(demo.geoms[set_id])
    for k in [i for i in np.flatnonzero(parts > 1) if shapely.get_type_id(demo.geoms[set_id][i]) == 6][:n]:
        w, s, e, nn = (float(v) for v in bounds[k])
        part_bounds = shapely.bounds(shapely.get_parts(demo.geoms[set_id][k]))
        for axis, (lo, hi) in ((0, (s, nn)), (1, (w, e))):
            spans = sorted(map(tuple, part_bounds[:, [axis, axis + 2]]))
            reach = spans[0][1]
            for start, end in spans[1:]:
                if start > reach:   # a gap between parts along this axis
                    a, b = reach + (start - reach) / 3, start - (start - reach) / 3
                    boxes.append((a, lo - 1e-3, b, hi + 1e-3) if axis == 0 else (lo - 1e-3, a, hi + 1e-3, b))
                    break
                reach = max(reach, end)
    # corners on vertices anywhere in the set (neighbours' shared vertices among them)
    for _ in range(n):
        vx, vy = (float(v) for v in vertices[rng.randrange(len(vertices))])
        ux, uy = (float(v) for v in vertices[rng.randrange(len(vertices))])
        boxes.append((min(vx, ux), min(vy, uy), max(vx, ux), max(vy, uy)))
    return boxes


def test_boxes_along_area_edges_and_vertices_select_what_the_full_geometry_does(demo):
    rng = random.Random(320)
    for set_id in demo.sets:
        check_boxes(demo, set_id, _edge_boxes(demo, set_id, rng, 40), each=50, every_path=200)


def _random_box(draw, demo: DemoSets) -> tuple[str, Box]:
    """A set and a box: anywhere in the set, a street to a region across; or with its sides
    through vertices of the set's areas (edges shared by neighbours) and their bounds."""
    set_id = draw(st.sampled_from(demo.sets))
    if draw(st.booleans()):
        west, south, east, north = demo.extent(set_id)
        x, y = draw(st.floats(west, east)), draw(st.floats(south, north))
        w = 10 ** draw(st.floats(-4, 0.5))
        h = w * draw(st.floats(0.2, 5))
        return set_id, (x - w / 2, y - h / 2, x + w / 2, y + h / 2)
    vertices, bounds = demo.vertices[set_id], demo.bounds[set_id]
    first = vertices[draw(st.integers(0, len(vertices) - 1))]
    if draw(st.booleans()):
        other = vertices[draw(st.integers(0, len(vertices) - 1))]
    else:   # a corner of an area's bounds
        b = bounds[draw(st.integers(0, len(bounds) - 1))]
        other = (b[draw(st.sampled_from([0, 2]))], b[draw(st.sampled_from([1, 3]))])
    xs = sorted([float(first[0]), float(other[0])])
    ys = sorted([float(first[1]), float(other[1])])
    return set_id, (xs[0], ys[0], xs[1], ys[1])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_random_boxes_select_what_the_full_geometry_does(demo, data):
    set_id, box = _random_box(data.draw, demo)
    check_paths(demo, set_id, box, demo.selected(set_id, [box])[0], every_path=False)


# -- the API: pages by bbox, numberMatched and next links ----------------------------------------

def test_api_pages_by_bbox_hold_what_the_full_geometry_selects(demo, demo_db):
    rng = random.Random(3200)
    with TestClient(create_app(Settings(db=demo_db))) as client:
        for set_id in ("lsoa2011", "datazone2011", "lad2013"):
            bounds = demo.bounds[set_id]
            for _ in range(4):
                k = rng.randrange(len(bounds))
                x, y = (bounds[k, 0] + bounds[k, 2]) / 2, (bounds[k, 1] + bounds[k, 3]) / 2
                half = rng.uniform(0.005, 0.05)
                box = (x - half, y - half, x + half, y + half)
                expected = demo.selected(set_id, [box])[0]
                got: list[str] = []
                url = (f"/collections/{set_id}/items?limit=7&bbox="
                       + ",".join(repr(float(v)) for v in box))
                while url:
                    body = client.get(url).json()
                    assert body["numberMatched"] == len(expected)
                    got += [f["id"] for f in body["features"]]
                    url = next((link["href"] for link in body["links"] if link["rel"] == "next"), None)
                assert tuple(got) == expected, (set_id, box)
