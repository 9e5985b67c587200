"""Tiles written without a query: geometry encoded in numba, properties per request.

A tile's geometry is what costs: clipping, moving to tile units and encoding its rings as MVT
commands. It depends only on the layer and the tile address, never on the indicator or period.
:func:`encode_wkb` encodes polygons given as WKB: moved to tile units, cut to the tile's integer
grid (truncated, as ``ST_AsMVT`` does), with the commands MVT asks for: no repeated point, no
ring that collapsed to the grid, exteriors wound with positive area and holes the other way,
checked after the cut (``ST_AsMVT`` encodes the rings as they come: a sliver that truncation
turns over made its area's other rings holes). It serves both kinds of layer:

- **prepared** (``geo-cs tiles prepare``): :func:`encode_prepared` encodes every tile's pieces
  once and stores each feature's encoded geometry with its code and area (``tile_features``: one
  row per tile); a server loads a layer's rows zoom by zoom into flat arrays
  (:class:`EncodedTiles`, kept with the layer's :class:`~geo_cs.tiles.TileIndex`);
- **not prepared** (any layer after its boundary ingest, the demo's): the layer's
  :class:`~geo_cs.tiles.TileIndex` holds its band geometries and clips a tile's areas with GEOS,
  then encodes them per tile (:meth:`geo_cs.tiles.TileIndex.render`).

Either way :class:`LayerWriter` writes the tile: the feature's code and name and the period's
values — whatever indicator, period, denominator, baseline or threshold the request asks for,
from the values the API already holds — become the MVT keys, values and tags around the
geometry bytes. No SQL runs per tile, which is what DuckDB's fixed cost per query (parse, plan,
bind, encode: about 1.5 ms) made the sparse tiles of z12-z14 pay. A new period or indicator
needs nothing prepared: its values are attached like any other's.

The MVT written is what ``ST_AsMVT`` writes (version 2, extent 4096, the same property types:
strings, doubles and booleans; a NULL property left out; the geometry to the unit, less its
repeated points and collapsed rings), so a tile is the same whether it comes from here or from
the database (``tests/test_tiles_layers.py``, ``tests/test_tiles_default_path.py``).

Example
-------
>>> _varint(300)
b'\\xac\\x02'
"""

from __future__ import annotations

import math
import threading

import numpy as np
import pyarrow as pa
from numba import njit

from geo_cs.store import Store

#: The properties of a tile's features, in the order of the layer's keys (values come from
#: :class:`geo_cs.tiles.TileValues`).
KEYS = ("code", "name", "value", "value_low", "value_high", "worst", "estimated_share", "suppressed")
_NUMBER_KEYS = {"value": 2, "value_low": 3, "value_high": 4, "estimated_share": 6}
_MAX_TAGS = 2 * len(KEYS)
EXTENT = 4096


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(tag: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field."""
    return bytes([tag]) + _varint(len(payload)) + payload


def _string_value(text: str) -> bytes:
    """A layer's ``values`` entry (field 4) holding a string."""
    return _field(0x22, _field(0x0A, text.encode("utf-8")))


_KEYS_BYTES = b"".join(_field(0x1A, key.encode()) for key in KEYS)
_EXTENT_BYTES = b"\x28" + _varint(EXTENT)
_VERSION_BYTES = b"\x78\x02"
_TRUE, _FALSE = b"\x22\x02\x38\x01", b"\x22\x02\x38\x00"


# -- preparing: every tile's geometry encoded once -------------------------------------------

# A zoom's pieces in tile order; a feature's code id is its code's position in the set's codes
_ZOOM_PIECES = """
SELECT x, y, code, area_m2, ST_AsWKB(geom) AS wkb FROM tile_pieces
WHERE set_id = $set_id AND z = $z ORDER BY x, y, code
"""

_INSERT_FEATURES = """
INSERT INTO tile_features SELECT $set_id, $z, x, y, code_ids, areas, geometry, ends FROM geo_cs_new_features
"""


def set_codes(store: Store, set_id: str) -> np.ndarray:
    """The codes of ``set_id``'s tile geometries, sorted (by Python, as
    :class:`geo_cs.tiles.TileIndex` sorts them): a feature's code id is its position."""
    rows = store.sql("SELECT DISTINCT code FROM tile_geoms WHERE set_id = ?", [set_id]).fetchall()
    return np.array(sorted(r[0] for r in rows), dtype=object)


def wkb_buffer(column: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A binary column of WKB as one buffer ending in :data:`WKB_PADDING` spare bytes, and each
    value's start and end in it (for :func:`encode_wkb`)."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    column = column.cast(pa.large_binary())
    _, offset_buffer, data_buffer = column.buffers()
    offsets = np.frombuffer(offset_buffer, dtype=np.int64)[column.offset:][:len(column) + 1]
    wkb = np.zeros(offsets[-1] - offsets[0] + WKB_PADDING, dtype=np.uint8)
    if offsets[-1] > offsets[0]:
        wkb[:-WKB_PADDING] = np.frombuffer(data_buffer, dtype=np.uint8)[offsets[0]:offsets[-1]]
    return wkb, offsets[:-1] - offsets[0], offsets[1:] - offsets[0]


def encode_prepared(store: Store, set_id: str, zooms: list[int]) -> int:
    """Encode the geometry of every prepared tile of ``set_id`` (``tile_pieces``, in tile units)
    into ``tile_features`` by :func:`encode_wkb`, replacing the set's earlier rows; return the
    features written. A piece whose rings all collapse to the tile's grid is kept with no
    geometry (it counts for the byte budget, as on a layer not prepared, and is not drawn).
    Runs inside :func:`geo_cs.tiles.prepare_tiles`'s transaction."""
    store.sql("DELETE FROM tile_features WHERE set_id = ?", [set_id])
    codes = set_codes(store, set_id)
    written = 0
    for z in zooms:
        table = store.sql(_ZOOM_PIECES, {"set_id": set_id, "z": z}).arrow()
        if hasattr(table, "read_all"):
            table = table.read_all()
        if not table.num_rows:
            continue
        wkb, starts, ends = wkb_buffer(table["wkb"])
        # pieces are in tile units, y down: no move, no flip
        geometry, g_start, g_end, _ = encode_wkb(wkb, starts, ends, 0.0, 0.0, 1.0, y_down=True)
        keys = (table["x"].to_numpy().astype(np.int64) << 32) | table["y"].to_numpy().astype(np.int64)
        first = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
        bounds = np.r_[first, len(keys)]
        # features are encoded one after the other: a tile's are contiguous in ``geometry``
        tile_start = g_start[first]
        offsets = np.r_[tile_start, len(geometry)].astype(np.int64)
        relative_ends = (g_end - np.repeat(tile_start, np.diff(bounds))).astype(np.int32)
        code_ids = np.searchsorted(codes, table["code"].to_numpy(zero_copy_only=False).astype(object))
        list_offsets = pa.array(bounds.astype(np.int32))
        features = pa.table({
            "x": pa.array(table["x"].to_numpy()[first], pa.int32()),
            "y": pa.array(table["y"].to_numpy()[first], pa.int32()),
            "code_ids": pa.ListArray.from_arrays(list_offsets, pa.array(code_ids.astype(np.int32))),
            "areas": pa.ListArray.from_arrays(list_offsets, pa.array(table["area_m2"].to_numpy())),
            "geometry": pa.LargeBinaryArray.from_buffers(pa.large_binary(), len(first), [
                None, pa.py_buffer(offsets), pa.py_buffer(geometry)]).cast(pa.binary()),
            "ends": pa.ListArray.from_arrays(list_offsets, pa.array(relative_ends)),
        })
        store.con.register("geo_cs_new_features", features)
        try:
            store.sql(_INSERT_FEATURES, {"set_id": set_id, "z": z})
        finally:
            store.con.unregister("geo_cs_new_features")
        written += table.num_rows
    return written


def has_encoded(store: Store, set_id: str) -> bool:
    """Whether ``set_id``'s prepared tiles have their geometry encoded (``tile_features``)."""
    return store.holds_rows("tile_features", set_id)


# -- serving ------------------------------------------------------------------------------------

class _Zoom:
    """One zoom's encoded tiles as flat arrays: tiles sorted by (x, y), features by tile."""

    def __init__(self, frame: pa.Table) -> None:
        n = frame.num_rows
        self.keys = (frame["x"].to_numpy().astype(np.int64) << 32) | frame["y"].to_numpy().astype(np.int64)
        ids = frame["code_ids"].combine_chunks()
        #: tile t's features are first[t]..first[t + 1]
        self.first = ids.offsets.to_numpy().astype(np.int64)
        self.code_ids = ids.values.to_numpy().astype(np.int64)
        self.areas = frame["areas"].combine_chunks().values.to_numpy().astype(np.float64)
        geometry = frame["geometry"].combine_chunks().cast(pa.large_binary())
        _, offset_buffer, data_buffer = geometry.buffers()
        offsets = np.frombuffer(offset_buffer, dtype=np.int64)[geometry.offset:geometry.offset + n + 1]
        self.geometry = np.frombuffer(data_buffer, dtype=np.uint8)[offsets[0]:offsets[-1]]
        tile_start = offsets[:-1] - offsets[0]
        ends = frame["ends"].combine_chunks().values.to_numpy().astype(np.int64)
        # each feature's geometry is g_start..g_end in the zoom's buffer
        counts = np.diff(self.first)
        base = np.repeat(tile_start, counts)
        rel_start = np.concatenate([[0], ends[:-1]]).astype(np.int64)
        rel_start[self.first[:-1][counts > 0]] = 0
        self.g_start, self.g_end = base + rel_start, base + ends
        self.nbytes = self.geometry.nbytes + 40 * len(ends) + 24 * n

    def features(self, x: int, y: int) -> tuple[int, int] | None:
        key = (x << 32) | y
        i = int(np.searchsorted(self.keys, key))
        if i == len(self.keys) or self.keys[i] != key:
            return None
        return int(self.first[i]), int(self.first[i + 1])


class LayerWriter:
    """Writes a layer's tiles from encoded feature geometry (type and geometry fields, as
    :func:`split_features` gives them) and the period's values: the pre-encoded MVT values of
    the layer's codes and, per band, names. Shared by :class:`EncodedTiles` (geometry encoded
    at preparation) and :class:`geo_cs.tiles.TileIndex` (geometry clipped and encoded per
    tile, :func:`encode_wkb`)."""

    def __init__(self, set_id: str, codes: np.ndarray, names_by_band: dict[int, np.ndarray]) -> None:
        self.set_id = set_id
        self.codes = codes
        self._code_values = [_string_value(c) for c in codes]
        self._name_values = {band: [None if n is None else _string_value(n) for n in names]
                             for band, names in names_by_band.items()}
        self._layer_name = _field(0x0A, set_id.encode())

    def write(self, code_ids: np.ndarray, areas: np.ndarray, band: int, g_start: np.ndarray,
              g_end: np.ndarray, geometry: np.ndarray, values, max_bytes: int,
              report: dict | None = None) -> bytes:
        """The tile of features ``code_ids`` (their geometry ``geometry[g_start:g_end]``, a
        feature whose geometry is empty left out) with ``values`` (a
        :class:`geo_cs.tiles.TileValues` or None); empty bytes when it has no feature. A tile
        over ``max_bytes`` leaves out its smallest ``areas`` (by the same rule as the
        database's tiles) until it fits."""
        if not len(code_ids):
            if report is not None:
                report.update(renders=0, min_area=0.0)
            return b""
        numbers, flags = (values.for_codes(self.codes, code_ids) if values is not None
                          else (None, None))
        # the areas in the tile, and those of them drawn: an area whose rings all collapse to
        # the tile's grid is still counted by the budget's quantile, as a prepared piece is
        present = np.ones(len(code_ids), dtype=bool)
        drawn = g_end > g_start
        tile = self._encode(code_ids, band, g_start, g_end, geometry, numbers, flags, drawn)
        renders, min_area = 1, 0.0
        while len(tile) > max_bytes:
            share = min(0.95, math.ceil(20 * (1 - 0.9 * max_bytes / len(tile))) / 20)
            # quantile_cont over the areas still kept, as the database's tiles do
            min_area = float(np.quantile(areas[present], share))
            present &= areas >= min_area
            tile = self._encode(code_ids, band, g_start, g_end, geometry, numbers, flags, drawn & present)
            renders += 1
        if report is not None:
            report.update(renders=renders, min_area=min_area)
        return tile

    def _encode(self, code_ids: np.ndarray, band: int, g_start: np.ndarray, g_end: np.ndarray,
                geometry: np.ndarray, numbers: dict[str, np.ndarray] | None,
                flags: dict[str, np.ndarray] | None, keep: np.ndarray) -> bytes:
        picked = np.flatnonzero(keep)
        n = len(picked)
        if n == 0:
            return b""
        ids = code_ids[picked]
        tags = np.full((n, _MAX_TAGS), -1, dtype=np.int64)
        tags[:, 0] = 0
        tags[:, 1] = np.arange(n)
        parts = [_VERSION_BYTES, self._layer_name, None, _KEYS_BYTES]
        parts += [self._code_values[i] for i in ids.tolist()]
        next_value = n
        names = self._name_values.get(band)
        if names is not None:
            named = [names[i] for i in ids.tolist()]
            has = np.array([v is not None for v in named], dtype=bool)
            if has.any():
                tags[has, 2] = 1
                tags[has, 3] = next_value + np.arange(int(has.sum()))
                parts += [v for v in named if v is not None]
                next_value += int(has.sum())
        if numbers is not None:
            stacked = np.stack([numbers[k][picked] for k in _NUMBER_KEYS])
            present = ~np.isnan(stacked)
            if present.any():
                unique, inverse = np.unique(stacked[present], return_inverse=True)
                index = np.full(stacked.shape, -1, dtype=np.int64)
                index[present] = next_value + inverse
                for row, key in enumerate(_NUMBER_KEYS.values()):
                    column = index[row]
                    has = column >= 0
                    tags[has, 2 * key] = key
                    tags[has, 2 * key + 1] = column[has]
                encoded = np.empty((len(unique), 11), dtype=np.uint8)
                encoded[:, :3] = (0x22, 0x09, 0x19)
                encoded[:, 3:] = unique.astype("<f8").view(np.uint8).reshape(-1, 8)
                parts.append(encoded.tobytes())
                next_value += len(unique)
            true_at, false_at = next_value, next_value + 1
            used_bool = False
            for key_name, key in (("worst", 5), ("suppressed", 7)):
                column = flags[key_name][picked]  # 1 true, 0 false, -1 absent
                has = column >= 0
                if has.any():
                    used_bool = True
                    tags[has, 2 * key] = key
                    tags[has, 2 * key + 1] = np.where(column[has] == 1, true_at, false_at)
            if used_bool:
                parts += [_TRUE, _FALSE]
        parts.append(_EXTENT_BYTES)
        parts[2] = _features(tags, g_start[picked], g_end[picked], geometry).tobytes()
        layer = b"".join(parts)
        return b"\x1a" + _varint(len(layer)) + layer


class EncodedTiles(LayerWriter):
    """A layer's encoded tiles (``tile_features``), loaded zoom by zoom on first use, and the
    pre-encoded MVT values of its codes and names. Shared by a server's threads."""

    def __init__(self, store: Store, set_id: str, codes: np.ndarray,
                 names_by_band: dict[int, np.ndarray]) -> None:
        super().__init__(set_id, codes, names_by_band)
        self._zooms: dict[int, _Zoom | None] = {}
        self._lock = threading.Lock()
        self.nbytes = int(store.sql(
            "SELECT coalesce(sum(octet_length(geometry)) + 60 * sum(len(code_ids)), 0) FROM tile_features "
            "WHERE set_id = ?", [set_id]).fetchone()[0]) + 80 * len(codes)

    def _zoom(self, store: Store, z: int) -> _Zoom | None:
        if z in self._zooms:
            return self._zooms[z]
        with self._lock:
            if z not in self._zooms:
                frame = store.sql("SELECT x, y, code_ids, areas, geometry, ends FROM tile_features "
                                  "WHERE set_id = ? AND z = ? ORDER BY x, y", [self.set_id, z]).arrow()
                if hasattr(frame, "read_all"):
                    frame = frame.read_all()
                self._zooms[z] = _Zoom(frame) if frame.num_rows else None
        return self._zooms[z]

    def load(self, store: Store) -> None:
        """Load every zoom now (a server loads each on its first tile)."""
        for z in range(15):
            self._zoom(store, z)

    def render(self, store: Store, z: int, x: int, y: int, band: int, values,
               max_bytes: int, report: dict | None = None) -> bytes:
        """Tile z/x/y with ``values`` (a :class:`geo_cs.tiles.TileValues` or None) as an MVT;
        empty bytes when no area touches it. A tile over ``max_bytes`` leaves out its smallest
        areas (by the same rule as the database's tiles) until it fits."""
        zoom = self._zoom(store, z)
        span = zoom.features(x, y) if zoom is not None else None
        if span is None:
            if report is not None:
                report.update(renders=0, min_area=0.0)
            return b""
        f0, f1 = span
        return self.write(zoom.code_ids[f0:f1], zoom.areas[f0:f1], band, zoom.g_start[f0:f1],
                          zoom.g_end[f0:f1], zoom.geometry, values, max_bytes, report)


@njit(cache=True, nogil=True, inline="always")
def _varint_len(v: int) -> int:
    n = 1
    while v >= 0x80:
        v >>= 7
        n += 1
    return n


@njit(cache=True, nogil=True, inline="always")
def _put_varint(out: np.ndarray, i: int, v: int) -> int:
    while v >= 0x80:
        out[i] = (v & 0x7F) | 0x80
        v >>= 7
        i += 1
    out[i] = v
    return i + 1


@njit(cache=True, nogil=True)
def _features(tags: np.ndarray, g_start: np.ndarray, g_end: np.ndarray, geometry: np.ndarray) -> np.ndarray:
    """The layer's features (field 2 each): tags (field 2, packed; -1 entries skipped) and the
    stored type and geometry fields."""
    n, width = tags.shape
    tag_len = np.zeros(n, dtype=np.int64)
    total = 0
    for f in range(n):
        t = 0
        for k in range(width):
            if tags[f, k] >= 0:
                t += _varint_len(tags[f, k])
        tag_len[f] = t
        body = 1 + _varint_len(t) + t + (g_end[f] - g_start[f])
        total += 1 + _varint_len(body) + body
    out = np.empty(total, dtype=np.uint8)
    i = 0
    for f in range(n):
        t = tag_len[f]
        body = 1 + _varint_len(t) + t + (g_end[f] - g_start[f])
        out[i] = 0x12
        i = _put_varint(out, i + 1, body)
        out[i] = 0x12
        i = _put_varint(out, i + 1, t)
        for k in range(width):
            if tags[f, k] >= 0:
                i = _put_varint(out, i, tags[f, k])
        for b in range(g_start[f], g_end[f]):
            out[i] = geometry[b]
            i += 1
    return out


# -- geometry encoded per tile (layers not prepared) -------------------------------------------

#: Bytes a WKB buffer carries after its last geometry, so that :func:`wkb_views` reaches it.
WKB_PADDING = 8


def wkb_views(wkb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A WKB buffer (ending in :data:`WKB_PADDING` spare bytes) seen as doubles and as 32-bit
    integers from each of its first bytes: the number at byte ``p`` is ``doubles[p % 8, p // 8]``
    (``integers[p % 4, p // 4]``). WKB's numbers are not aligned; a slice viewed per number is
    ten times slower, a tuple of views as slow (numba counts references at each look-up)."""
    doubles = np.ndarray(shape=(8, max(0, (len(wkb) - 7) // 8)), dtype=np.float64, buffer=wkb,
                         strides=(1, 8))
    integers = np.ndarray(shape=(4, max(0, (len(wkb) - 3) // 4)), dtype=np.uint32, buffer=wkb,
                          strides=(1, 4))
    return doubles, integers


@njit(cache=True, nogil=True, inline="always")
def _u32(integers: np.ndarray, p: int) -> int:
    return int(integers[p & 3, p >> 2])


@njit(cache=True, nogil=True, inline="always")
def _f64(doubles: np.ndarray, p: int) -> float:
    return doubles[p & 7, p >> 3]


@njit(cache=True, nogil=True, inline="always")
def _zigzag(v: int) -> int:
    return (v << 1) ^ (v >> 63)


@njit(cache=True, nogil=True, inline="always")
def _grid(v: float) -> int:
    """A coordinate in tile units on the tile's integer grid: truncated, as ``ST_AsMVT`` does,
    after a value within a millionth of a unit of an integer is taken as that integer (the
    buffered square's edge, cut in Web Mercator, is 4,160 units less a rounding error: it
    must not truncate to 4,159)."""
    t = int(v)
    d = v - t
    if d > 1 - 1e-6:
        return t + 1
    if d < -1 + 1e-6:
        return t - 1
    return t


@njit(cache=True, nogil=True, inline="always")
def _outcode(x: float, y: float, lo: float, hi: float) -> int:
    """Where a point lies against the square [lo, hi]²: 0 inside (edges included), else bits for
    left, right, above and below (Cohen-Sutherland)."""
    code = 0
    if x < lo:
        code |= 1
    elif x > hi:
        code |= 2
    if y < lo:
        code |= 4
    elif y > hi:
        code |= 8
    return code


@njit(cache=True, nogil=True)
def _half_plane(xs: np.ndarray, ys: np.ndarray, m: int, ox: np.ndarray, oy: np.ndarray, axis: int,
                bound: float, above: bool) -> int:
    """Sutherland-Hodgman: the closed ring ``xs[:m], ys[:m]`` cut to the half-plane where the
    ``axis`` coordinate is >= ``bound`` (``above``) or <= it, into ``ox, oy``; the points written
    (at most 2m). A crossing lands exactly on ``bound``."""
    if m == 0:
        return 0
    k = 0
    sx, sy = xs[m - 1], ys[m - 1]
    sv = sx if axis == 0 else sy
    s_in = sv >= bound if above else sv <= bound
    for i in range(m):
        ex, ey = xs[i], ys[i]
        ev = ex if axis == 0 else ey
        e_in = ev >= bound if above else ev <= bound
        if e_in != s_in:
            t = (bound - sv) / (ev - sv)
            if axis == 0:
                ox[k], oy[k] = bound, sy + t * (ey - sy)
            else:
                ox[k], oy[k] = sx + t * (ex - sx), bound
            k += 1
        if e_in:
            ox[k], oy[k] = ex, ey
            k += 1
        sx, sy, sv, s_in = ex, ey, ev, e_in
    return k


@njit(cache=True, nogil=True, inline="always")
def _on_edges(x: float, y: float, lo: float, hi: float) -> int:
    """The square's edges a point lies on, as bits (x = lo, x = hi, y = lo, y = hi)."""
    return int(x == lo) | (int(x == hi) << 1) | (int(y == lo) << 2) | (int(y == hi) << 3)


@njit(cache=True, nogil=True)
def _along_edges(xs: np.ndarray, ys: np.ndarray, m: int, lo: float, hi: float, ox: np.ndarray,
                 oy: np.ndarray) -> int:
    """A ring cut by Sutherland-Hodgman, into ``ox, oy``, without the points it laid along an
    edge of the square between the first and last of each run: what it projected there of the
    ring outside the square goes back and forth along the edge (a spike with no area). Returns
    the points left."""
    if m < 3:
        for i in range(m):
            ox[i], oy[i] = xs[i], ys[i]
        return m
    # start at a point off the edges, or at a corner: it stays, so the ring closes cleanly
    start = 0
    for i in range(m):
        on = _on_edges(xs[i], ys[i], lo, hi)
        if on == 0:
            start = i
            break
        if on == 5 or on == 6 or on == 9 or on == 10:
            start = i
    k = 0
    for j in range(m):
        i = (start + j) % m
        on = _on_edges(xs[i], ys[i], lo, hi)
        # the last point kept lies on an edge with the one before it and this one: it goes
        while k >= 2 and (_on_edges(ox[k - 2], oy[k - 2], lo, hi) & _on_edges(ox[k - 1], oy[k - 1], lo, hi)
                          & on) != 0:
            k -= 1
        ox[k], oy[k] = xs[i], ys[i]
        k += 1
    on = _on_edges(ox[0], oy[0], lo, hi)
    while k >= 3 and (_on_edges(ox[k - 2], oy[k - 2], lo, hi) & _on_edges(ox[k - 1], oy[k - 1], lo, hi)
                      & on) != 0:
        k -= 1
    return k


@njit(cache=True, nogil=True)
def _bridged(xs: np.ndarray, ys: np.ndarray, m: int, lo: float, hi: float, hole: bool) -> bool:
    """Whether a ring cut by Sutherland-Hodgman (then :func:`_along_edges`) is not the exact cut:
    two of its stretches along one edge of the square overlap (the cut is in pieces, which it
    joins by a path there and back along the edge), or it is a hole with a stretch along an
    edge (the hole opens onto the exterior)."""
    lines = np.empty(64, dtype=np.int64)
    a = np.empty(64, dtype=np.float64)
    b = np.empty(64, dtype=np.float64)
    k = 0
    for i in range(m):
        j = i + 1 if i + 1 < m else 0
        common = _on_edges(xs[i], ys[i], lo, hi) & _on_edges(xs[j], ys[j], lo, hi)
        if common == 0:
            continue
        if common & 3:
            line, u, v = common & 3, ys[i], ys[j]
        else:
            line, u, v = common, xs[i], xs[j]
        if u == v:
            continue
        if hole or k == 64:
            return True
        lines[k], a[k], b[k] = line, min(u, v), max(u, v)
        k += 1
    for i in range(k):
        for j in range(i + 1, k):
            if lines[i] == lines[j] and min(b[i], b[j]) > max(a[i], a[j]):
                return True
    return False


#: What :func:`encode_wkb` says of each polygon it was asked to cut to the tile's square
DRAWN, OUTSIDE, TOO_COMPLEX = 0, 1, 2


@njit(cache=True, nogil=True)
def _encode_wkb(wkb: np.ndarray, doubles, integers, starts: np.ndarray, ends: np.ndarray, left: float,
                top: float, scale: float, y_scale: float, clip: bool, lo: float,
                hi: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    n = len(starts)
    capacity = 64
    for f in range(n):
        capacity += ends[f] - starts[f] + 16
    out = np.empty(capacity, dtype=np.uint8)
    g_start = np.zeros(n, dtype=np.int64)
    g_end = np.zeros(n, dtype=np.int64)
    status = np.zeros(n, dtype=np.int8)
    qx = np.empty(256, dtype=np.int64)
    qy = np.empty(256, dtype=np.int64)
    ax = np.empty(256, dtype=np.float64)
    ay = np.empty(256, dtype=np.float64)
    bx = np.empty(512, dtype=np.float64)
    by = np.empty(512, dtype=np.float64)
    at = 0
    for f in range(n):
        g_start[f] = at
        g_end[f] = at
        p = starts[f]
        if wkb[p] != 1:
            status[f] = OUTSIDE
            continue  # big-endian WKB: never written here
        kind = _u32(integers, p + 1) % 1000
        p += 5
        if kind == 3:
            polygons, multi = 1, False
        elif kind == 6:
            polygons, multi = _u32(integers, p), True
            p += 4
        else:
            status[f] = OUTSIDE
            continue
        # cut to the square only a polygon with a point outside it (a square is convex: the
        # edges between points inside it are inside it)
        cut = False
        if clip:
            first = p
            for _ in range(polygons):
                if multi:
                    p += 5
                rings = _u32(integers, p)
                p += 4
                for _ in range(rings):
                    points = _u32(integers, p)
                    p += 4
                    for i in range(points):
                        q = p + 16 * i
                        if _outcode((_f64(doubles, q) - left) * scale, (_f64(doubles, q + 8) - top) * y_scale,
                                    lo, hi):
                            cut = True
                            break
                    p += 16 * points
            p = first
        # the commands are written from 8 bytes on, the type and the length in front of them after
        body = at + 8
        w = body
        cx = 0
        cy = 0
        drawn = not cut
        too_complex = False
        for _ in range(polygons):
            if too_complex:
                break
            if multi:
                p += 5
            rings = _u32(integers, p)
            p += 4
            exterior_kept = False
            for r in range(rings):
                points = _u32(integers, p)
                p += 4
                if points > len(ax):
                    ax = np.empty(2 * points, dtype=np.float64)
                    ay = np.empty(2 * points, dtype=np.float64)
                # in tile units, without the closing point
                m = max(points - 1, 0)
                for i in range(m):
                    q = p + 16 * i
                    ax[i] = (_f64(doubles, q) - left) * scale
                    ay[i] = (_f64(doubles, q + 8) - top) * y_scale
                p += 16 * points
                in_b = False  # the ring is in (ax, ay), or after a pass in (bx, by)
                if cut:
                    # x >= lo, x <= hi, y >= lo, y <= hi, each pass into the other buffer
                    for side in range(4):
                        need = 2 * m + 8
                        if need > len(ax) or need > len(bx):
                            size = max(need, 2 * len(bx))
                            new_x, new_y = np.empty(size, dtype=np.float64), np.empty(size, dtype=np.float64)
                            new_x[:m] = bx[:m] if in_b else ax[:m]
                            new_y[:m] = by[:m] if in_b else ay[:m]
                            ax, ay = new_x, new_y
                            bx, by = np.empty(size, dtype=np.float64), np.empty(size, dtype=np.float64)
                            in_b = False
                        bound = lo if side % 2 == 0 else hi
                        if in_b:
                            m = _half_plane(bx, by, m, ax, ay, side // 2, bound, side % 2 == 0)
                        else:
                            m = _half_plane(ax, ay, m, bx, by, side // 2, bound, side % 2 == 0)
                        in_b = not in_b
                xs, ys = (bx, by) if in_b else (ax, ay)
                if cut:
                    # into the other buffer (each holds 2m + 8 points after the last pass)
                    ox, oy = (ax, ay) if in_b else (bx, by)
                    m = _along_edges(xs, ys, m, lo, hi, ox, oy)
                    xs, ys = ox, oy
                    if _bridged(xs, ys, m, lo, hi, r > 0):
                        too_complex = True
                        break
                    if r == 0 and m >= 3:
                        twice = 0.0
                        for i in range(m):
                            j = i + 1 if i + 1 < m else 0
                            twice += xs[i] * ys[j] - xs[j] * ys[i]
                        drawn |= twice != 0.0
                if points > len(qx):
                    qx = np.empty(2 * points + 8, dtype=np.int64)
                    qy = np.empty(2 * points + 8, dtype=np.int64)
                if m > len(qx):
                    qx = np.empty(2 * m, dtype=np.int64)
                    qy = np.empty(2 * m, dtype=np.int64)
                # to the tile's integer grid as ST_AsMVT does (truncated), without a point
                # repeating the one before
                k = 0
                px = -(1 << 62)
                py = 0
                for i in range(m):
                    x = _grid(xs[i])
                    y = _grid(ys[i])
                    if x != px or y != py:
                        qx[k] = x
                        qy[k] = y
                        px, py = x, y
                        k += 1
                m = k
                while m > 1 and qx[m - 1] == qx[0] and qy[m - 1] == qy[0]:
                    m -= 1
                if r > 0 and not exterior_kept:
                    continue  # the holes of an exterior that collapsed
                twice_area = 0
                if m >= 3:
                    for i in range(m - 1):
                        twice_area += qx[i] * qy[i + 1] - qx[i + 1] * qy[i]
                    twice_area += qx[m - 1] * qy[0] - qx[0] * qy[m - 1]
                if twice_area == 0:
                    continue  # a ring collapsed to the grid: no area to draw
                if r == 0:
                    exterior_kept = True
                # MVT: exteriors positive (surveyor's formula, y down), holes negative
                reverse = twice_area < 0 if r == 0 else twice_area > 0
                need = w + 10 * m + 24
                if need > len(out):
                    grown_out = np.empty(2 * need, dtype=np.uint8)
                    grown_out[:w] = out[:w]
                    out = grown_out
                out[w] = 9  # MoveTo, one point
                w = _put_varint(out, w + 1, _zigzag(qx[0] - cx))
                w = _put_varint(out, w, _zigzag(qy[0] - cy))
                w = _put_varint(out, w, 2 | ((m - 1) << 3))  # LineTo
                cx, cy = qx[0], qy[0]
                for j in range(1, m):
                    i = m - j if reverse else j
                    w = _put_varint(out, w, _zigzag(qx[i] - cx))
                    w = _put_varint(out, w, _zigzag(qy[i] - cy))
                    cx, cy = qx[i], qy[i]
                out[w] = 15  # ClosePath
                w += 1
        if too_complex:
            status[f] = TOO_COMPLEX
            continue
        if not drawn:
            status[f] = OUTSIDE  # it meets the square along its edge at most
            continue
        if w == body:
            continue  # nothing left to draw: the feature is left out
        length = w - body
        out[at] = 0x18  # type: polygon
        out[at + 1] = 3
        out[at + 2] = 0x22  # geometry, packed
        head = _put_varint(out, at + 3, length)
        for k in range(length):
            out[head + k] = out[body + k]
        at = head + length
        g_end[f] = at
    return out[:at], g_start, g_end, status


def encode_wkb(wkb: np.ndarray, starts: np.ndarray, ends: np.ndarray, left: float, top: float,
               scale: float, views: tuple | None = None, y_down: bool = False,
               clip: tuple[float, float] | None = None,
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """MVT geometry (type and geometry fields) of polygons given as little-endian WKB,
    ``wkb[starts[k]:ends[k]]`` (``wkb`` ending in :data:`WKB_PADDING` spare bytes), in Web
    Mercator: moved to a tile's units (``left``, ``top``: its corner; ``scale``: units per
    metre, y down), cut to its integer grid as ``ST_AsMVT`` does (truncated), repeated points
    dropped, rings that collapse to the grid left out (and the holes of an exterior that does),
    exteriors wound with MVT's positive area and holes the other way. ``views``:
    :func:`wkb_views` of ``wkb``, if kept. ``y_down``: the polygons' y grows down already
    (prepared pieces, in tile units).

    ``clip`` = (lo, hi): each polygon is first cut to the square [lo, hi]² of tile units by
    Sutherland-Hodgman, with the spikes it leaves along the square's edges removed, where that
    is the exact cut: each exterior's cut in one piece, and no hole reaching the square's edge.
    Another (an area leaving the square and coming back into it in two pieces, a hole on its
    edge) is left to the caller (GEOS).

    Returns (bytes, start, end, status) per polygon: its geometry is ``bytes[start:end]``,
    empty where nothing is left to draw; ``status`` :data:`DRAWN` (something of it is in the
    square: drawn, or collapsed to the grid), :data:`OUTSIDE` (nothing of it is, or it only
    touches the square) or :data:`TOO_COMPLEX` (not encoded).

    >>> import shapely
    >>> wkb = np.frombuffer(shapely.to_wkb(shapely.box(0, 0, 10, 10)) + bytes(WKB_PADDING), dtype=np.uint8)
    >>> end = np.array([len(wkb) - WKB_PADDING])
    >>> geometry, start, end_, status = encode_wkb(wkb, np.array([0]), end, 0, 10, 1)
    >>> geometry.tobytes().hex()
    '1803220b0914141a1300001314000f'
    >>> geometry, *_ = encode_wkb(wkb, np.array([0]), end, 0, 10, 1, clip=(2.0, 5.0))
    >>> geometry.tobytes().hex()   # the square 2-5 of it
    '1803220b090a041a0006050000050f'
    """
    doubles, integers = views if views is not None else wkb_views(wkb)
    lo, hi = clip if clip is not None else (0.0, 0.0)
    # (top - y) * scale, written (y - top) * -scale: the same double
    return _encode_wkb(wkb, doubles, integers, np.asarray(starts, dtype=np.int64),
                       np.asarray(ends, dtype=np.int64), float(left), float(top), float(scale),
                       float(scale) if y_down else -float(scale), clip is not None, float(lo), float(hi))
