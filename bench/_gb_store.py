"""The Great Britain store the serving benchmarks run on, built once from ``../shared/data``.

All GB small areas: LSOA 2011 (England and Wales, 34,753) and Data Zones 2011 (Scotland, 6,976),
with IMD 2019 employment-deprived counts over the 2019 working-age population on the LSOAs and
SIMD 2016 and 2020 employment deprivation on the data zones, so tiles and items carry values.
Every tiled set is then prepared (``geo-cs tiles prepare``), as a deployment would do; the
preparation's time and size are kept beside the store (:func:`gb_store_info`).
Kept under ``bench/.cache/`` (ignored by git) and rebuilt when this file or the schema changes.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared" / "data"
CACHE = REPO / "bench" / ".cache"

#: The 2013 districts place each partnership's small areas (its map pages in the load runs).
BOUNDARIES = ["boundaries/lsoa11_bgc_topo_by_lad", "boundaries/dz11_scotland.geojson",
              "boundaries/lad13_gb.topojson"]
INDICATORS = ["indicators/imd2019_england_lsoa11_indicators.csv", "indicators/population2019_lsoa11_ew.csv",
              "indicators/simd2016_scotland_dz11_indicators.csv",
              "indicators/simd2020_scotland_dz11_indicators.csv"]
#: What the tiles and items show on each layer (indicator, denominator).
MEASURES = {
    "lsoa2011": ("imd2019_indicators.employment_deprived", "population2019_lsoa11.working_age_population"),
    "datazone2011": ("employment_deprived", None),
}


def _fingerprint() -> str:
    digest = hashlib.sha256(Path(__file__).read_bytes())
    digest.update((REPO / "geo_cs" / "sql" / "schema.sql").read_bytes())
    digest.update((REPO / "geo_cs" / "tiles.py").read_bytes())
    digest.update((REPO / "geo_cs" / "mvt.py").read_bytes())
    return digest.hexdigest()[:12]


def shared_missing(console: Any) -> bool:
    """Whether the shared data the GB store is built from is missing (then says so)."""
    if SHARED.exists():
        return False
    console.print(f"[red]shared data missing:[/] {SHARED} (needed to build the GB store)")
    return True


def gb_store(progress: bool = True) -> Path:
    """Path of the GB store, building it first if missing or stale (about a minute)."""
    if not SHARED.exists():
        raise SystemExit(f"the real data is not at {SHARED}: these benchmarks need it")
    path = CACHE / f"gb-{_fingerprint()}.duckdb"
    if path.exists():
        return path
    from geo_cs.ingest import ingest_boundaries, ingest_indicator
    from geo_cs.progress import RichProgress, SilentProgress
    from geo_cs.store import Store
    from geo_cs.tiles import prepare_tiles, tile_sets

    CACHE.mkdir(parents=True, exist_ok=True)
    for old in [*CACHE.glob("gb-*.duckdb*"), *CACHE.glob("gb-*.json")]:
        old.unlink()
    partial = path.with_suffix(".partial")
    partial.unlink(missing_ok=True)
    reporter = RichProgress() if progress else SilentProgress()
    with Store.open(partial) as store:
        for boundary in BOUNDARIES:
            ingest_boundaries(store, [SHARED / boundary], progress=reporter)
        for indicator in INDICATORS:
            ingest_indicator(store, SHARED / indicator, progress=reporter)
        store.sql("CHECKPOINT")
        before_mb = partial.stat().st_size / 1e6
        prepared = {}
        for set_id in tile_sets(store)["set_id"]:
            t0 = time.perf_counter()
            report = prepare_tiles(store, set_id, progress=reporter)
            prepared[set_id] = {**report.to_dict(), "seconds": round(time.perf_counter() - t0, 1)}
            # the encoded geometry the server loads (geo_cs.mvt), in MB
            prepared[set_id]["encoded_mb"] = round(store.sql(
                "SELECT coalesce(sum(octet_length(geometry)), 0) / 1e6 FROM tile_features WHERE set_id = ?",
                [set_id]).fetchone()[0], 1)
        store.sql("CHECKPOINT")
    info = {"store_mb_before_prepare": round(before_mb, 1),
            "store_mb": round(partial.stat().st_size / 1e6, 1), "prepare_tiles": prepared}
    path.with_suffix(".json").write_text(json.dumps(info, indent=1))
    partial.rename(path)
    return path


def gb_store_info() -> dict[str, Any]:
    """How the GB store was built: its size before and after preparing tiles, and the preparation."""
    info = gb_store().with_suffix(".json")
    return json.loads(info.read_text()) if info.exists() else {}


if __name__ == "__main__":
    print(gb_store())
