"""The exact overlap-area kernel (geo_cs.overlay) against GEOS.

Every case is checked against ``shapely.area(shapely.intersection(a, b))``: random polygons
(hypothesis), holes and multipolygons, and the shared-edge cases the kernel must hand to GEOS.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely import affinity

from geo_cs.overlay import Rings, overlap_areas


def geos_areas(left, right, i, j) -> np.ndarray:
    return shapely.area(shapely.intersection(np.asarray(left)[i], np.asarray(right)[j]))


def all_pairs(left, right) -> tuple[np.ndarray, np.ndarray]:
    i, j = np.meshgrid(np.arange(len(left)), np.arange(len(right)), indexing="ij")
    return i.ravel(), j.ravel()


def test_squares_by_hand():
    a = np.array([shapely.box(0, 0, 2, 2)])
    b = np.array([shapely.box(1, 1, 3, 3), shapely.box(5, 5, 6, 6), shapely.box(0.5, 0.5, 1.5, 1.5),
                  shapely.box(-1, -1, 3, 3), shapely.box(1.5, -1, 1.75, 3)])
    result = overlap_areas(a, b, np.zeros(5, dtype=int), np.arange(5))
    # overlap, disjoint, b inside a, a inside b, a strip across a
    np.testing.assert_allclose(result.areas, [1.0, 0.0, 1.0, 4.0, 0.5], rtol=1e-12)
    assert not result.by_geos.any()


def test_holes_multipolygons_and_either_winding():
    ring = shapely.Polygon([(0, 0), (10, 0), (10, 10), (0, 10)], holes=[[(3, 3), (7, 3), (7, 7), (3, 7)]])
    reversed_ring = shapely.reverse(ring)  # clockwise exterior: the kernel orients its input itself
    islands = shapely.MultiPolygon([shapely.box(0.5, 0.5, 2.5, 2.5), shapely.box(4.5, 4.5, 5.5, 5.5),
                                    shapely.box(8.2, 1.1, 12.3, 2.2)])
    left = np.array([ring, reversed_ring])
    right = np.array([islands, shapely.box(1.1, 2.2, 8.8, 7.7), shapely.Point(5, 5).buffer(4.1)])
    i, j = all_pairs(left, right)
    result = overlap_areas(left, right, i, j)
    np.testing.assert_allclose(result.areas, geos_areas(left, right, i, j), rtol=1e-12, atol=1e-12)
    # the island in the hole adds nothing; the one across the edge adds its part inside
    assert result.areas[0] == pytest.approx(4.0 + 1.8 * 1.1, rel=1e-12)


def test_shared_edges_go_to_geos_and_agree():
    # a grid and a coarser grid on the same lines: every boundary the two share is exact
    fine = np.array([shapely.box(x, y, x + 1, y + 1) for x in range(4) for y in range(4)])
    coarse = np.array([shapely.box(x, y, x + 2, y + 2) for x in (0, 2) for y in (0, 2)])
    i, j = all_pairs(fine, coarse)
    result = overlap_areas(fine, coarse, i, j)
    np.testing.assert_allclose(result.areas, geos_areas(fine, coarse, i, j), atol=1e-12)
    assert result.by_geos.any()
    assert result.areas.sum() == 16.0
    # identical polygons are the extreme case
    same = overlap_areas(coarse, coarse, np.arange(4), np.arange(4))
    assert same.by_geos.all() and (same.areas == 4.0).all()


def test_real_coordinates_keep_their_precision():
    # British National Grid metres: terms of ~1e11 m² would swamp a 1 m² overlap without the
    # kernel's local origin
    a = np.array([shapely.box(530000.0, 180000.0, 530001.0, 180001.0)])
    b = np.array([shapely.box(530000.5, 180000.25, 530002.0, 180000.75)])
    assert overlap_areas(a, b, [0], [0]).areas[0] == 0.25


def test_empty_pair_list():
    result = overlap_areas(np.array([shapely.box(0, 0, 1, 1)]), np.array([shapely.box(0, 0, 1, 1)]), [], [])
    assert len(result.areas) == 0


def _polygon(draw, cx: float, cy: float) -> shapely.Polygon:
    """A star-shaped polygon round (cx, cy): random radii at sorted random angles (always valid)."""
    n = draw(st.integers(3, 12))
    angles = np.sort(np.array(draw(st.lists(st.floats(0, 2 * np.pi, exclude_max=True),
                                            min_size=n, max_size=n, unique=True))))
    radii = np.array(draw(st.lists(st.floats(0.2, 3.0), min_size=n, max_size=n)))
    return shapely.Polygon(np.column_stack([cx + radii * np.cos(angles), cy + radii * np.sin(angles)]))


@st.composite
def polygon_pairs(draw) -> tuple[shapely.Geometry, shapely.Geometry]:
    a = _polygon(draw, 0.0, 0.0)
    b = _polygon(draw, draw(st.floats(-4, 4)), draw(st.floats(-4, 4)))
    return a, b


@settings(max_examples=300, deadline=None)
@given(pairs=st.lists(polygon_pairs(), min_size=1, max_size=8), offset=st.sampled_from([0.0, 4.0e5]))
def test_random_polygons_match_geos(pairs, offset):
    left = np.array([affinity.translate(a, offset, offset) for a, _ in pairs])
    right = np.array([affinity.translate(b, offset, offset) for _, b in pairs])
    valid = shapely.is_valid(left) & shapely.is_valid(right)
    left, right = left[valid], right[valid]
    idx = np.arange(len(left))
    result = overlap_areas(left, right, idx, idx)
    expected = geos_areas(left, right, idx, idx)
    np.testing.assert_allclose(result.areas, expected, rtol=1e-9, atol=1e-9)
    assert (result.areas >= 0).all()


def test_rings_read_from_wkb_equal_shapely_flattening():
    geoms = np.array([
        shapely.Polygon([(0, 0), (10, 0), (10, 10), (0, 10)], holes=[[(3, 3), (7, 3), (7, 7), (3, 7)]]),
        shapely.MultiPolygon([shapely.box(20, 0, 21, 1), shapely.reverse(shapely.box(22, 0, 25, 3))]),
        shapely.box(530000.0, 180000.0, 530100.0, 180050.0),
    ])
    from_wkb = Rings.from_wkb(pa.array(shapely.to_wkb(geoms).tolist(), pa.binary()))
    flattened = Rings.from_geometries(geoms)
    for field in ("x", "y", "ring_start", "ring_sign", "geom_ring", "bounds"):
        np.testing.assert_array_equal(getattr(from_wkb, field), getattr(flattened, field), err_msg=field)
    # the hole is wound anticlockwise here and the second island clockwise: both counted negated
    assert from_wkb.ring_sign.tolist() == [1.0, -1.0, 1.0, -1.0, 1.0]
    # big-endian WKB is read by shapely instead, to the same rings
    big = Rings.from_wkb(pa.array(shapely.to_wkb(geoms, byte_order=0).tolist(), pa.binary()))
    np.testing.assert_array_equal(big.x, flattened.x)
    i, j = all_pairs(geoms, geoms)
    np.testing.assert_allclose(overlap_areas(from_wkb, from_wkb, i, j).areas, geos_areas(geoms, geoms, i, j))
