"""Where the time goes: the cost of each step of one tile, and of single requests in-process.

Not a benchmark (no peer, no target): the measurements behind the README's "where the time
goes" and the items-page figures, on the GB store of ``_gb_store.gb_store()``:

* one z12 tile of LSOAs over Leeds (-1.55, 53.8): finding its areas, clipping those that cross
  the buffered edge (GEOS overlay in DuckDB spatial), reading the rest, and the whole tile with
  and without the values bound as parameters, clipped on the fly and prepared (``geo-cs tiles
  prepare``, which the GB store has);
* requests through the FastAPI app in this process (``TestClient``, no network): an items page
  by offset, one by bbox, a partnership's map page (cached after its first drawing).

Each figure is the mean of ``--repeat`` runs after one untimed run.

    python bench/profile_breakdown.py [--repeat 20]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from _gb_store import MEASURES, gb_store

from geo_cs import tiles
from geo_cs.layers import area_values, resolve_measure
from geo_cs.store import Store

FILTER = """FROM tile_geoms g WHERE g.set_id = $set_id AND g.band = $band
  AND g.xmax >= $xmin - $buffer AND g.xmin <= $xmax + $buffer
  AND g.ymax >= $ymin - $buffer AND g.ymin <= $ymax + $buffer"""
INSIDE = ("g.xmin >= $xmin - $buffer AND g.xmax <= $xmax + $buffer "
          "AND g.ymin >= $ymin - $buffer AND g.ymax <= $ymax + $buffer")


def mean_ms(run: Callable[[], object], repeat: int) -> float:
    run()
    started = time.perf_counter()
    for _ in range(repeat):
        run()
    return (time.perf_counter() - started) / repeat * 1000


def tile_steps(store: Store, repeat: int) -> None:
    z = 12
    x, y = tiles.lonlat_to_tile(-1.55, 53.8, z)
    xmin, ymin, xmax, ymax = tiles.tile_bounds(z, x, y)
    p = {"set_id": "lsoa2011", "band": tiles.zoom_band(z).band, "xmin": xmin, "ymin": ymin,
         "xmax": xmax, "ymax": ymax, "buffer": (xmax - xmin) * tiles.BUFFER / tiles.EXTENT}
    n_all, n_inside = store.sql(f"SELECT count(*), count(*) FILTER (WHERE {INSIDE}) {FILTER}", p).fetchone()
    indicator, denominator = MEASURES["lsoa2011"]
    values = tiles.tile_values(area_values(store, resolve_measure(store, "lsoa2011", indicator,
                                                                  denominator)).at(None))
    clip = ("SELECT sum(ST_NPoints(ST_Intersection(g.geom, ST_MakeEnvelope($xmin - $buffer, "
            f"$ymin - $buffer, $xmax + $buffer, $ymax + $buffer)))) {FILTER} AND NOT ({INSIDE})")
    affine = f"SELECT sum(ST_NPoints(ST_Affine(g.geom, 1, 0, 0, 1, 0, 0))) {FILTER} AND {INSIDE}"
    index = tiles.tile_index(store, "lsoa2011")
    steps = {
        "find the tile's areas (bbox filter)": lambda: store.sql(f"SELECT count(*) {FILTER}", p).fetchall(),
        f"clip the {n_all - n_inside} crossing the buffered edge (ST_Intersection)":
            lambda: store.sql(clip, p).fetchall(),
        f"read and transform the {n_inside} inside it (ST_Affine)": lambda: store.sql(affine, p).fetchall(),
        "the whole tile without values, clipped on the fly (render_tile)":
            lambda: tiles.render_tile(store, "lsoa2011", z, x, y, prepared=False, index=index),
        "the whole tile with values, clipped on the fly (render_tile)":
            lambda: tiles.render_tile(store, "lsoa2011", z, x, y, values, prepared=False, index=index),
        "the tile's codes from the index in memory (TileIndex.codes)": lambda: index.codes(z, x, y),
        "the whole tile without values, prepared (render_tile)":
            lambda: tiles.render_tile(store, "lsoa2011", z, x, y, index=index),
        "the whole tile with values, prepared (render_tile, as served)":
            lambda: tiles.render_tile(store, "lsoa2011", z, x, y, values, index=index),
    }
    print(f"tile lsoa2011/{z}/{x}/{y}: {n_all} areas, {n_inside} inside the buffered edge")
    for name, run in steps.items():
        print(f"  {mean_ms(run, repeat):7.2f} ms  {name}")


def request_times(db, repeat: int) -> None:
    from fastapi.testclient import TestClient

    from geo_cs.api.app import create_app
    from geo_cs.config import Settings

    urls = {
        "items page by offset (limit 100)": "/collections/lsoa2011/items?limit=100&offset=20000",
        "items page by bbox (limit 100)": "/collections/lsoa2011/items?limit=100&bbox=-1.55,53.79,-1.5,53.82",
        "map page of a partnership (cached)": "/maps/glasgow",
    }
    print("requests in-process (FastAPI TestClient):")
    with TestClient(create_app(Settings(db=db))) as client:
        for name, url in urls.items():
            print(f"  {mean_ms(lambda url=url: client.get(url).content, repeat):7.2f} ms  {name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    db = gb_store()
    with Store.open(db, read_only=True) as store:
        tile_steps(store, args.repeat)
    request_times(db, args.repeat)


if __name__ == "__main__":
    main()
