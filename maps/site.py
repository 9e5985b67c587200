"""A partnership's map as a static site: the same page, its tiles in PMTiles archives.

``geo-cs export site -p glasgow -o site/`` writes ``index.html``, ``static/`` (the page's own
script and the vendored Leaflet, VectorGrid and PMTiles reader), ``tiles/<period>.pmtiles``,
``data/<period>.geojson`` and ``.csv``, ``gap.svg`` and ``help.html``: copy the folder to any web host or
object store that serves byte ranges (nginx, Apache, S3, GitHub Pages) and the map works with no
Python running.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from geo_cs import features, tiles
from geo_cs.disclosure import DisclosureControl
from geo_cs.errors import InputError
from geo_cs.export.charts import figure_svg, gap_chart
from geo_cs.export.pmtiles import write_pmtiles
from geo_cs.progress import Progress, SilentProgress
from geo_cs.store import Store
from maps import STATIC_DIR
from maps.page import MapRequest, MapSources, StaticSiteUrls, gather_map, render_help, render_map_page


def export_site(store: Store, req: MapRequest, out_dir: str | Path, *, maxzoom: int = tiles.MAX_ZOOM,
                disclosure: DisclosureControl | None = None,
                progress: Progress | None = None) -> list[Path]:
    """Write the static site of ``req``'s map into ``out_dir``; return the files written.

    With ``disclosure``, every figure in it (tiles, GeoJSON, CSV, chart) is under that control.
    """
    progress = progress or SilentProgress()
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"{out}: cannot create the site folder ({exc.strerror})") from exc
    data = gather_map(MapSources(store, disclosure), req)
    req, values, codes = data.req, data.values, data.codes
    geography, indicator = req.geography, req.indicator
    written: list[Path] = []
    shutil.copytree(STATIC_DIR, out / "static", dirs_exist_ok=True)
    (out / "tiles").mkdir(exist_ok=True)
    (out / "data").mkdir(exist_ok=True)
    for period in values.period_ids:
        progress.note(f"tiles and data for {period}")
        period_values = values.at(period)
        report = write_pmtiles(store, geography, out / "tiles" / f"{period}.pmtiles", minzoom=data.min_zoom,
                               maxzoom=maxzoom, values=period_values, codes=codes,
                               description=f"{data.name}: {values.measure.label}, {period}",
                               progress=progress)
        written.append(Path(report.path))
        query = features.ItemQuery(geography, limit=features.MAX_LIMIT, codes=tuple(codes),
                                   values=period_values, indicator=indicator, period=period)
        geojson = out / "data" / f"{period}.geojson"
        geojson.write_text("".join(features.feature_collection(store, query, [])), encoding="utf-8")
        csv = out / "data" / f"{period}.csv"
        csv.write_text("".join(features.iter_csv(store, query)), encoding="utf-8")
        written += [geojson, csv]
    if data.gap is not None:
        title = f"{data.name}: {values.measure.label}"
        (out / "gap.svg").write_text(figure_svg(gap_chart(data.gap, title)), encoding="utf-8")
        written.append(out / "gap.svg")
    html = render_map_page(data, StaticSiteUrls())
    (out / "index.html").write_text(html, encoding="utf-8")
    written.append(out / "index.html")
    # what the page's words mean and where its data come from (its helpUrl)
    (out / "help.html").write_text(render_help(store, StaticSiteUrls()), encoding="utf-8")
    written.append(out / "help.html")
    return written
