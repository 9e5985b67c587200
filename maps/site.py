"""A partnership's map as a static site: the same page, its tiles in PMTiles archives.

``geo-cs export site -p glasgow -o site/`` writes ``index.html``, ``static/`` (the page's own
script and the vendored Leaflet, VectorGrid and PMTiles reader), ``tiles/<period>.pmtiles``,
``data/<period>.geojson`` and ``.csv`` and ``gap.svg``: copy the folder to any web host or
object store that serves byte ranges (nginx, Apache, S3, GitHub Pages) and the map works with no
Python running.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from geo_cs import features, layers, tiles
from geo_cs.errors import InputError
from geo_cs.export.charts import figure_svg, gap_chart
from geo_cs.export.pmtiles import write_pmtiles
from geo_cs.partnerships import get_partnerships, resolve
from geo_cs.progress import Progress, SilentProgress
from geo_cs.store import Store
from maps import STATIC_DIR
from maps.page import MapRequest, StaticSiteUrls, render_map_page


def export_site(store: Store, req: MapRequest, out_dir: str | Path, *, maxzoom: int = tiles.MAX_ZOOM,
                progress: Progress | None = None) -> list[Path]:
    """Write the static site of ``req``'s map into ``out_dir``; return the files written."""
    progress = progress or SilentProgress()
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"{out}: cannot create the site folder ({exc.strerror})") from exc
    found = get_partnerships([req.partnership])[0]
    geography, indicator, denominator = layers.store_view(store, req.partnership, req.geography,
                                                          req.indicator, req.denominator)
    req = MapRequest(req.partnership, geography, indicator, denominator, req.period, req.scheme, req.k,
                     req.breaks, req.baseline, req.threshold)
    measure = layers.resolve_measure(store, geography, indicator, denominator)
    values = layers.area_values(store, measure, baseline=req.baseline, threshold=req.threshold)
    codes = resolve(store, found, geography).codes
    outline = features.partnership_outline(store, req.partnership)
    gap = None
    if measure.is_rate and values.unit == "%" and values.frame["code"].isin(codes).any():
        gap = layers.partnership_gap(store, measure, req.partnership, baseline=req.baseline,
                                     threshold=req.threshold)
    sets = tiles.tile_sets(store)
    minzoom = int(sets.loc[sets["set_id"] == geography, "minzoom"].iloc[0])
    written: list[Path] = []
    shutil.copytree(STATIC_DIR, out / "static", dirs_exist_ok=True)
    (out / "tiles").mkdir(exist_ok=True)
    (out / "data").mkdir(exist_ok=True)
    for period in values.period_ids:
        progress.note(f"tiles and data for {period}")
        period_values = values.at(period)
        report = write_pmtiles(store, geography, out / "tiles" / f"{period}.pmtiles", minzoom=minzoom,
                               maxzoom=maxzoom, values=period_values, codes=codes,
                               description=f"{found.phase_at(None).name}: {measure.label}, {period}",
                               progress=progress)
        written.append(Path(report.path))
        query = features.ItemQuery(geography, limit=features.MAX_LIMIT, codes=tuple(codes),
                                   values=period_values, indicator=indicator, period=period)
        geojson = out / "data" / f"{period}.geojson"
        geojson.write_text("".join(features.feature_collection(store, query, [])), encoding="utf-8")
        csv = out / "data" / f"{period}.csv"
        csv.write_text("".join(features.iter_csv(store, query)), encoding="utf-8")
        written += [geojson, csv]
    if gap is not None:
        title = f"{found.phase_at(None).name}: {measure.label}"
        (out / "gap.svg").write_text(figure_svg(gap_chart(gap, title)), encoding="utf-8")
        written.append(out / "gap.svg")
    html = render_map_page(req, values, codes, outline, gap, found.phase_at(None).name, [indicator],
                           minzoom, StaticSiteUrls())
    (out / "index.html").write_text(html, encoding="utf-8")
    written.append(out / "index.html")
    return written
