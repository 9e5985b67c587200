"""A partnership's map as a static site: the same page, its tiles in PMTiles archives.

``geo-cs export site -p glasgow -o site/`` writes ``index.html``, ``static/`` (the page's own
script and the vendored Leaflet, VectorGrid and PMTiles reader), ``tiles/<period>.pmtiles``,
``data/<period>.geojson`` and ``.csv`` with ``data/README.txt`` (source, settings, licence),
``gap.svg``, ``.png`` and ``.csv`` and ``help.html``: copy the folder to any web host or
object store that serves byte ranges (nginx, Apache, S3, GitHub Pages) and the map works with no
Python running.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd

from geo_cs import features, tiles
from geo_cs.attribution import OGL_ATTRIBUTION
from geo_cs.disclosure import DisclosureControl
from geo_cs.errors import InputError
from geo_cs.export.charts import figure_svg, gap_about, gap_chart, gap_csv, gap_title
from geo_cs.export.maps import figure_bytes
from geo_cs.export.pmtiles import write_pmtiles
from geo_cs.layers import sentence_case
from geo_cs.maps import STATIC_DIR
from geo_cs.maps.page import (
    MapData,
    MapRequest,
    MapSources,
    StaticSiteUrls,
    gather_map,
    render_help,
    render_map_page,
    shown_periods,
)
from geo_cs.narrative import baseline_words, gives_gap
from geo_cs.progress import Progress, SilentProgress
from geo_cs.store import Store


def data_readme(store: Store, data: MapData) -> str:
    """``data/README.txt`` beside a site's CSV and GeoJSON files: what they hold, where their
    figures come from, the settings they were made with and the licence (the files themselves
    stay plain tables that GIS tools read as they are)."""
    values = data.values
    about = gap_about(store, values.measure, data.gap if data.gap is not None else pd.DataFrame(), data.codes,
                      values.disclosure)
    labels = dict(zip(values.periods["period_id"], values.periods["period_label"], strict=True))
    lines = [
        f"{data.name}: {sentence_case(values.measure.label)}, "
        f"{data.geography_label or values.measure.set_id}",
        "",
        "One CSV and one GeoJSON file per period, named by the period's code: one row per area of the",
        "partnership with its value (and, for rates, the 95% interval, count and population), whether",
        "it is a worst-performing area (worst, true or false) and the share of its value estimated",
        "through a boundary change.",
        "",
        f"Source: {about['source']}.",
    ]
    if gives_gap(values, data.codes):
        lines.append(f"Worst-performing: a baseline rate above {values.threshold:g}%; "
                     f"baseline: {baseline_words(values.baseline, labels)}.")
    if "disclosure_control" in about:
        lines.append(about["disclosure_control"])
    lines += ["", OGL_ATTRIBUTION, ""]
    return "\n".join(lines)


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
    for period in shown_periods(data):
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
    (out / "data" / "README.txt").write_text(data_readme(store, data), encoding="utf-8")
    written.append(out / "data" / "README.txt")
    if data.gap is not None:
        # the chart as the page shows it, and its downloads (the page's chartDownloads)
        title = gap_title(data.name, values.measure.label)
        (out / "gap.svg").write_text(figure_svg(gap_chart(data.gap, title, web=True), text=True, title=title),
                                     encoding="utf-8")
        (out / "gap.png").write_bytes(figure_bytes(gap_chart(data.gap, title, web=True), "png", dpi=200))
        about = gap_about(store, values.measure, data.gap, codes, values.disclosure)
        (out / "gap.csv").write_text(gap_csv(data.gap, about), encoding="utf-8")
        written += [out / "gap.svg", out / "gap.png", out / "gap.csv"]
    html = render_map_page(data, StaticSiteUrls())
    (out / "index.html").write_text(html, encoding="utf-8")
    written.append(out / "index.html")
    # what the page's words mean and where its data come from (its helpUrl)
    (out / "help.html").write_text(render_help(store, StaticSiteUrls()), encoding="utf-8")
    written.append(out / "help.html")
    return written
