"""Exact areas of polygon intersections, many pairs at a time, without building the intersections.

A crosswalk needs only *how much* of a source area lies in each target, never the shape of the
overlap. GEOS answers by constructing every intersection (noding, graph, polygon building):
about 40 µs a pair of small areas whatever their size, nearly all of the cost of an overlay of
two small-area geographies. The area alone follows from the boundary of the intersection, which
is made of the pieces of A's edges inside B and the pieces of B's edges inside A; the shoelace
sum over those pieces is the area (Green's theorem). That needs only segment crossings and
point-in-polygon parity, a few microseconds a pair here (:func:`overlap_areas`).

The kernel decides everything from one orientation predicate, so its choices along a ring are
consistent; a pair where a vertex lies on (or within rounding of) the other polygon's boundary,
as with boundaries the two geographies share exactly, is *degenerate* for it and is computed by
GEOS instead. Results therefore equal GEOS's to rounding (the tests compare them on random and
on shared-edge polygons).

Polygons must be valid (as ingest makes them) and in a planar CRS (areas in its units²).

Example
-------
>>> import numpy as np, shapely
>>> a = np.array([shapely.box(0, 0, 2, 2)])
>>> b = np.array([shapely.box(1, 1, 3, 3)])
>>> float(overlap_areas(a, b, np.array([0]), np.array([0])).areas[0])
1.0
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import shapely
from numba import njit

#: A point closer than this share of an edge's length (times its distance scale) to the edge's
#: line counts as on it: the pair goes to GEOS (doubles carry ~16 digits; 1e-12 leaves margin).
_DEGENERATE = 1e-12


@dataclass(frozen=True)
class Rings:
    """Polygons flattened for the kernel: closed rings and their geometries.

    ``ring_start[r]:ring_start[r + 1]`` are ring r's coordinates (first point repeated last);
    ``geom_ring[g]:geom_ring[g + 1]`` are geometry g's rings; ``bounds`` its envelope.
    ``ring_sign`` is +1 for rings wound as the kernel counts them (exteriors anticlockwise,
    holes clockwise) and -1 for the others, whose shoelace terms it negates: cheaper than
    reorienting the polygons.
    """

    x: np.ndarray
    y: np.ndarray
    ring_start: np.ndarray
    ring_sign: np.ndarray
    geom_ring: np.ndarray
    bounds: np.ndarray
    #: the shapely geometries, for the pairs GEOS must compute
    geoms: np.ndarray

    @classmethod
    def from_wkb(cls, wkb: pa.Array | pa.ChunkedArray) -> Rings:
        """Rings straight from little-endian 2D WKB polygons and multipolygons (as DuckDB's
        ``ST_AsWKB`` writes them), read in one pass; any other WKB goes through shapely."""
        wkb = wkb.combine_chunks() if isinstance(wkb, pa.ChunkedArray) else wkb
        wkb = wkb.cast(pa.large_binary())
        _, offsets_buffer, data_buffer = wkb.buffers()
        offsets = np.frombuffer(offsets_buffer, dtype=np.int64)[wkb.offset: wkb.offset + len(wkb) + 1]
        data = (np.frombuffer(data_buffer, dtype=np.uint8) if data_buffer is not None
                else np.zeros(0, dtype=np.uint8))
        geoms = shapely.from_wkb(wkb.to_numpy(zero_copy_only=False))
        if wkb.null_count or len(wkb) == 0:
            return cls.from_geometries(geoms)
        sizes = _wkb_sizes(data, offsets)
        if sizes[0] < 0:  # not little-endian 2D polygons
            return cls.from_geometries(geoms)
        x, y = np.empty(sizes[0]), np.empty(sizes[0])
        ring_start = np.empty(sizes[1] + 1, dtype=np.int64)
        exterior = np.zeros(sizes[1], dtype=np.bool_)
        geom_ring = np.empty(len(offsets), dtype=np.int64)
        bounds = np.empty((len(offsets) - 1, 4))
        _wkb_read(data, offsets, x, y, ring_start, exterior, geom_ring, bounds)
        return cls(x=x, y=y, ring_start=ring_start,
                   ring_sign=_ring_signs(x, y, ring_start, exterior), geom_ring=geom_ring, bounds=bounds,
                   geoms=geoms)

    @classmethod
    def from_geometries(cls, geoms: np.ndarray) -> Rings:
        """Rings of shapely polygons and multipolygons (flattened by shapely)."""
        geoms = np.asarray(geoms, dtype=object)
        if not set(shapely.get_type_id(geoms).tolist()) <= {3, 6}:
            raise ValueError("overlap areas need Polygon or MultiPolygon geometries")
        _, coords, offsets = shapely.to_ragged_array(geoms)
        if len(offsets) == 2:  # polygons only
            ring_start, geom_ring = offsets
            part_ring = geom_ring
        else:  # multipolygons (polygons among them promoted)
            ring_start, part_ring, geom_part = offsets
            geom_ring = part_ring[geom_part]
        x, y = np.ascontiguousarray(coords[:, 0]), np.ascontiguousarray(coords[:, 1])
        exterior = np.zeros(len(ring_start) - 1, dtype=bool)
        exterior[part_ring[:-1][part_ring[:-1] < len(exterior)]] = True
        ring_start = ring_start.astype(np.int64)
        return cls(x=x, y=y, ring_start=ring_start, ring_sign=_ring_signs(x, y, ring_start, exterior),
                   geom_ring=geom_ring.astype(np.int64), bounds=shapely.bounds(geoms), geoms=geoms)


@njit(cache=True, nogil=True)
def _ring_signs(x: np.ndarray, y: np.ndarray, ring_start: np.ndarray, exterior: np.ndarray) -> np.ndarray:
    """+1 for exteriors wound anticlockwise and holes clockwise, -1 for the others (shoelace
    about each ring's first point, so that grid coordinates of ~1e6 do not swamp small rings)."""
    signs = np.empty(len(ring_start) - 1)
    for r in range(len(ring_start) - 1):
        s, e = ring_start[r], ring_start[r + 1]
        area = 0.0
        for k in range(s, e - 1):
            area += (x[k] - x[s]) * (y[k + 1] - y[s]) - (x[k + 1] - x[s]) * (y[k] - y[s])
        signs[r] = 1.0 if (area > 0.0) == exterior[r] else -1.0
    return signs


@dataclass(frozen=True)
class OverlapAreas:
    """Areas of ``left[i[k]] ∩ right[j[k]]``; ``by_geos`` marks the pairs GEOS computed."""

    areas: np.ndarray
    by_geos: np.ndarray


def overlap_areas(left: np.ndarray | Rings, right: np.ndarray | Rings, i: np.ndarray, j: np.ndarray,
                  workers: int | None = None) -> OverlapAreas:
    """Area of ``left[i[k]] ∩ right[j[k]]`` for every k (polygons; planar coordinates).

    ``left`` and ``right``: arrays of shapely polygons, or :class:`Rings` (read from WKB they
    skip shapely's flattening, most of the cost outside the kernel). Pairs run on ``workers``
    threads (default: one per core; the kernel releases the GIL); degenerate pairs (boundaries
    touching or shared) are computed by GEOS.
    """
    i = np.asarray(i, dtype=np.int64)
    j = np.asarray(j, dtype=np.int64)
    if len(i) == 0:
        return OverlapAreas(np.zeros(0), np.zeros(0, dtype=bool))
    a = left if isinstance(left, Rings) else Rings.from_geometries(left)
    b = right if isinstance(right, Rings) else Rings.from_geometries(right)
    areas = np.empty(len(i))
    degenerate = np.zeros(len(i), dtype=np.bool_)
    workers = workers or os.cpu_count() or 1
    # more chunks than threads: a chunk of large rural areas does not leave a thread idle
    chunks = [c for c in np.array_split(np.arange(len(i)), workers * 8) if len(c)]

    def run(chunk: np.ndarray) -> None:
        lo, hi = chunk[0], chunk[-1] + 1
        _pair_areas(a.x, a.y, a.ring_start, a.ring_sign, a.geom_ring, a.bounds,
                    b.x, b.y, b.ring_start, b.ring_sign, b.geom_ring, b.bounds,
                    i[lo:hi], j[lo:hi], areas[lo:hi], degenerate[lo:hi])

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(run, chunks))
    if degenerate.any():
        picked = np.flatnonzero(degenerate)
        areas[picked] = shapely.area(shapely.intersection(a.geoms[i[picked]], b.geoms[j[picked]]))
    return OverlapAreas(areas, degenerate)


# -- reading WKB ------------------------------------------------------------------------------


@njit(cache=True, nogil=True, inline="always")
def _u32(data: np.ndarray, p: int) -> int:
    return (np.int64(data[p]) | (np.int64(data[p + 1]) << 8) | (np.int64(data[p + 2]) << 16)
            | (np.int64(data[p + 3]) << 24))


@njit(cache=True, nogil=True, inline="always")
def _f64(data: np.ndarray, p: int, word: np.ndarray, value: np.ndarray) -> float:
    """The little-endian double at byte p (WKB coordinates are not aligned)."""
    bits = np.uint64(0)
    for b in range(8):
        bits |= np.uint64(data[p + b]) << np.uint64(8 * b)
    word[0] = bits
    return value[0]


@njit(cache=True, nogil=True)
def _wkb_sizes(data: np.ndarray, offsets: np.ndarray) -> tuple[int, int]:
    """(coordinates, rings) in WKB polygons/multipolygons; (-1, -1) for anything else
    (big-endian, Z/M, other types): the caller then falls back to shapely."""
    n_coords = 0
    n_rings = 0
    for g in range(len(offsets) - 1):
        p = offsets[g]
        if data[p] != 1:
            return -1, -1
        kind = _u32(data, p + 1)
        if kind == 3:
            n_parts = 1
        elif kind == 6:
            n_parts = _u32(data, p + 5)
            p += 9
        else:
            return -1, -1
        for _ in range(n_parts):
            if kind == 6 and (data[p] != 1 or _u32(data, p + 1) != 3):
                return -1, -1
            rings = _u32(data, p + 5)
            p += 9
            for _ in range(rings):
                points = _u32(data, p)
                p += 4 + 16 * points
                n_coords += points
                n_rings += 1
        if p != offsets[g + 1]:
            return -1, -1
    return n_coords, n_rings


@njit(cache=True, nogil=True)
def _wkb_read(data: np.ndarray, offsets: np.ndarray, x: np.ndarray, y: np.ndarray, ring_start: np.ndarray,
              exterior: np.ndarray, geom_ring: np.ndarray, bounds: np.ndarray) -> None:
    """Fill the flat arrays of :class:`Rings` from WKB checked by :func:`_wkb_sizes`."""
    word = np.empty(1, dtype=np.uint64)
    value = word.view(np.float64)
    c = 0
    r = 0
    for g in range(len(offsets) - 1):
        p = offsets[g]
        geom_ring[g] = r
        kind = _u32(data, p + 1)
        n_parts = 1
        if kind == 6:
            n_parts = _u32(data, p + 5)
            p += 9
        xmin, ymin, xmax, ymax = np.inf, np.inf, -np.inf, -np.inf
        for _part in range(n_parts):
            rings = _u32(data, p + 5)
            p += 9
            for k in range(rings):
                points = _u32(data, p)
                p += 4
                ring_start[r] = c
                exterior[r] = k == 0
                r += 1
                for _point in range(points):
                    px = _f64(data, p, word, value)
                    py = _f64(data, p + 8, word, value)
                    p += 16
                    x[c], y[c] = px, py
                    c += 1
                    xmin, xmax = min(xmin, px), max(xmax, px)
                    ymin, ymax = min(ymin, py), max(ymax, py)
        bounds[g, 0], bounds[g, 1], bounds[g, 2], bounds[g, 3] = xmin, ymin, xmax, ymax
    geom_ring[len(offsets) - 1] = r
    ring_start[r] = c


# -- the kernel --------------------------------------------------------------------------------


@njit(cache=True, nogil=True, inline="always")
def _orient(ux: float, uy: float, vx: float, vy: float, px: float, py: float) -> float:
    """Twice the signed area of (u, v, p): > 0 when p is left of u→v."""
    return (vx - ux) * (py - uy) - (vy - uy) * (px - ux)


@njit(cache=True, nogil=True, inline="always")
def _near(o: float, ux: float, uy: float, vx: float, vy: float, px: float, py: float) -> bool:
    """Whether p is within rounding of the line u→v (|o| tiny against the lengths involved)."""
    scale = (abs(vx - ux) + abs(vy - uy)) * (abs(px - ux) + abs(py - uy) + abs(px - vx) + abs(py - vy))
    return abs(o) <= _DEGENERATE * scale


@njit(cache=True, nogil=True)
def _inside(px: float, py: float, x: np.ndarray, y: np.ndarray, ring_start: np.ndarray,
            r0: int, r1: int) -> int:
    """Even-odd parity of p in rings r0..r1: 1 inside, 0 outside, -1 on (or within rounding of)
    the boundary. Uses the crossing predicate's orientation, so it agrees with it."""
    inside = False
    for r in range(r0, r1):
        for k in range(ring_start[r], ring_start[r + 1] - 1):
            ux, uy, vx, vy = x[k], y[k], x[k + 1], y[k + 1]
            if (uy > py) != (vy > py):
                o = _orient(ux, uy, vx, vy, px, py)
                if o == 0.0 or _near(o, ux, uy, vx, vy, px, py):
                    return -1
                # an upward edge with p on its left, or a downward one with p on its right, is
                # crossed by the ray from p towards +x
                if (o > 0.0) == (vy > uy):
                    inside = not inside
            elif uy == py and vy == py and min(ux, vx) <= px <= max(ux, vx):
                return -1
    return 1 if inside else 0


@njit(cache=True, nogil=True)
def _edges_near(x: np.ndarray, y: np.ndarray, ring: np.ndarray, r0: int, r1: int,
                xmin: float, ymin: float, xmax: float, ymax: float, out: np.ndarray) -> int:
    """Into ``out``, the edges (index of their first point) of rings r0..r1 meeting a box; their number."""
    n = 0
    for r in range(r0, r1):
        for m in range(ring[r], ring[r + 1] - 1):
            if not (max(x[m], x[m + 1]) < xmin or min(x[m], x[m + 1]) > xmax
                    or max(y[m], y[m + 1]) < ymin or min(y[m], y[m + 1]) > ymax):
                out[n] = m
                n += 1
    return n


@njit(cache=True, nogil=True)
def _edges_inside(ax: np.ndarray, ay: np.ndarray, a_ring: np.ndarray, a_sign: np.ndarray, ar0: int, ar1: int,
                  bx: np.ndarray, by: np.ndarray, b_ring: np.ndarray, br0: int, br1: int,
                  b_near: np.ndarray, n_near: int,
                  bxmin: float, bymin: float, bxmax: float, bymax: float,
                  ox: float, oy: float, ts: np.ndarray) -> tuple[float, bool]:
    """Shoelace sum over the pieces of A's edges strictly inside B (coordinates less ``o``);
    second value True when the pair is degenerate (the sum is then meaningless).

    ``b_near[:n_near]``: B's edges that meet A's envelope, the only ones A's edges can cross."""
    total = 0.0
    for r in range(ar0, ar1):
        ring_total = 0.0
        first = a_ring[r]
        status = _inside(ax[first], ay[first], bx, by, b_ring, br0, br1)
        if status < 0:
            return 0.0, True
        inside = status == 1
        for k in range(first, a_ring[r + 1] - 1):
            x0, y0, x1, y1 = ax[k], ay[k], ax[k + 1], ay[k + 1]
            n = 0
            # an edge clear of B's envelope crosses none of its edges
            if not (max(x0, x1) < bxmin or min(x0, x1) > bxmax
                    or max(y0, y1) < bymin or min(y0, y1) > bymax):
                for e in range(n_near):
                    m = b_near[e]
                    ux, uy, vx, vy = bx[m], by[m], bx[m + 1], by[m + 1]
                    if (max(ux, vx) < min(x0, x1) or min(ux, vx) > max(x0, x1)
                            or max(uy, vy) < min(y0, y1) or min(uy, vy) > max(y0, y1)):
                        continue
                    o1 = _orient(ux, uy, vx, vy, x0, y0)
                    o2 = _orient(ux, uy, vx, vy, x1, y1)
                    if (o1 > 0.0 and o2 > 0.0) or (o1 < 0.0 and o2 < 0.0):
                        continue
                    o3 = _orient(x0, y0, x1, y1, ux, uy)
                    o4 = _orient(x0, y0, x1, y1, vx, vy)
                    if (o3 > 0.0 and o4 > 0.0) or (o3 < 0.0 and o4 < 0.0):
                        continue
                    if (o1 == 0.0 or o2 == 0.0 or o3 == 0.0 or o4 == 0.0
                            or _near(o1, ux, uy, vx, vy, x0, y0) or _near(o2, ux, uy, vx, vy, x1, y1)
                            or _near(o3, x0, y0, x1, y1, ux, uy) or _near(o4, x0, y0, x1, y1, vx, vy)):
                        return 0.0, True
                    ts[n] = o1 / (o1 - o2)
                    n += 1
            # crossings in order along the edge (few: insertion sort)
            for p in range(1, n):
                t = ts[p]
                q = p - 1
                while q >= 0 and ts[q] > t:
                    ts[q + 1] = ts[q]
                    q -= 1
                ts[q + 1] = t
            dx, dy = x1 - x0, y1 - y0
            prev = 0.0
            for p in range(n + 1):
                nxt = ts[p] if p < n else 1.0
                if inside:
                    sx, sy = x0 + prev * dx - ox, y0 + prev * dy - oy
                    ex, ey = x0 + nxt * dx - ox, y0 + nxt * dy - oy
                    ring_total += sx * ey - ex * sy
                if p < n:
                    inside = not inside
                    prev = nxt
        total += a_sign[r] * ring_total
    return total, False


@njit(cache=True, nogil=True)
def _pair_areas(ax: np.ndarray, ay: np.ndarray, a_ring: np.ndarray, a_sign: np.ndarray, a_geom: np.ndarray,
                a_bounds: np.ndarray,
                bx: np.ndarray, by: np.ndarray, b_ring: np.ndarray, b_sign: np.ndarray, b_geom: np.ndarray,
                b_bounds: np.ndarray,
                i: np.ndarray, j: np.ndarray, out: np.ndarray, degenerate: np.ndarray) -> None:
    # room for every crossing of one edge: at most one per edge of the other polygon
    ts = np.empty(max(len(ax), len(bx)))
    a_near = np.empty(len(ax), dtype=np.int64)
    b_near = np.empty(len(bx), dtype=np.int64)
    for k in range(len(i)):
        g, h = i[k], j[k]
        axmin, aymin, axmax, aymax = a_bounds[g, 0], a_bounds[g, 1], a_bounds[g, 2], a_bounds[g, 3]
        bxmin, bymin, bxmax, bymax = b_bounds[h, 0], b_bounds[h, 1], b_bounds[h, 2], b_bounds[h, 3]
        if axmax < bxmin or bxmax < axmin or aymax < bymin or bymax < aymin:
            out[k] = 0.0
            continue
        # a local origin keeps the shoelace terms small (British National Grid metres are ~1e5-1e6)
        ox, oy = max(axmin, bxmin), max(aymin, bymin)
        na = _edges_near(ax, ay, a_ring, a_geom[g], a_geom[g + 1], bxmin, bymin, bxmax, bymax, a_near)
        nb = _edges_near(bx, by, b_ring, b_geom[h], b_geom[h + 1], axmin, aymin, axmax, aymax, b_near)
        from_a, bad = _edges_inside(ax, ay, a_ring, a_sign, a_geom[g], a_geom[g + 1],
                                    bx, by, b_ring, b_geom[h], b_geom[h + 1], b_near, nb,
                                    bxmin, bymin, bxmax, bymax, ox, oy, ts)
        if not bad:
            from_b, bad = _edges_inside(bx, by, b_ring, b_sign, b_geom[h], b_geom[h + 1],
                                        ax, ay, a_ring, a_geom[g], a_geom[g + 1], a_near, na,
                                        axmin, aymin, axmax, aymax, ox, oy, ts)
        if bad:
            degenerate[k] = True
            out[k] = np.nan
        else:
            # rounding can leave a hair below zero where the polygons only touch
            out[k] = max(0.5 * (from_a + from_b), 0.0)
