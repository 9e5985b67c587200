"""Print-ready choropleth maps: PNG (300 dpi), SVG and PDF, drawn offline with matplotlib.

A map is one partnership (or any set of areas) on one geography in British National Grid
(EPSG:27700), one panel per period with **one legend and one set of class breaks** for all of
them (small multiples compare like with like): title and subtitle, class breaks with no-data,
"estimated" (hatched) and "worst-performing" (outlined) entries, a scale bar in kilometres and a
north arrow, the partnership and district outlines, and the OGL attribution and source line.
No basemap is fetched, so it works on a closed network.

Example
-------
Three square areas (British National Grid, metres) in two periods, the third worst-performing:

>>> import tempfile
>>> from pathlib import Path
>>> import geopandas as gpd
>>> from shapely.geometry import box
>>> squares = gpd.GeoDataFrame({"code": ["A", "B", "C"], "name": ["East", "Middle", "West"]},
...                            geometry=[box(i * 1000, 0, (i + 1) * 1000, 1000) for i in range(3)],
...                            crs="EPSG:27700")
>>> frames = [MapPanel(label, squares.assign(value=values, worst=[False, False, True], estimated_share=0.0))
...           for label, values in (("2019", [8.0, 14.0, 31.0]), ("2022", [7.5, 12.0, 26.0]))]
>>> breaks = [10, 20, 30, 40]
>>> [classify(frame.areas["value"], breaks).tolist() for frame in frames]   # one legend for both
[[0, 1, 3], [0, 1, 2]]
>>> fig = choropleth_figure(frames, breaks, title="Glasgow", unit="%")
>>> folder = tempfile.TemporaryDirectory()
>>> path = save_figure(fig, Path(folder.name) / "glasgow.png", dpi=72)
>>> path.name, path.stat().st_size > 10_000
('glasgow.png', True)
>>> folder.cleanup()
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import shapely
from matplotlib.collections import PathCollection
from matplotlib.figure import Figure, FigureBase
from matplotlib.patches import Patch, Rectangle
from matplotlib.path import Path as MplPath

from geo_cs.analysis import MethodParams
from geo_cs.attribution import OGL_ATTRIBUTION
from geo_cs.disclosure import DisclosureControl
from geo_cs.errors import GeoCsError, InputError
from geo_cs.palette import NO_DATA, palette
from geo_cs.store import Store

BNG = "EPSG:27700"
FORMATS = {".png", ".svg", ".pdf"}


def area_frame(store: Store, set_id: str, codes: list[str]) -> gpd.GeoDataFrame:
    """The areas' EPSG:27700 geometries with code and name."""
    table = store.sql(
        "SELECT code, name, ST_AsWKB(geom_27700) AS wkb FROM areas "
        "WHERE set_id = ? AND list_contains(?, code) AND geom_27700 IS NOT NULL ORDER BY code",
        [set_id, codes]).df()
    geometry = shapely.from_wkb([bytes(w) for w in table.pop("wkb")])
    return gpd.GeoDataFrame(table, geometry=geometry, crs=BNG)


@dataclass
class MapPanel:
    """One period of a map: the areas with their values (columns of :mod:`geo_cs.layers`)."""

    label: str
    areas: gpd.GeoDataFrame      # code, name, geometry, value, worst, estimated_share


def classify(values: pd.Series, breaks: list[float]) -> np.ndarray:
    """Class index per value (-1 for no data): the first break a value does not exceed."""
    out = np.full(len(values), -1)
    data = values.to_numpy(dtype=float)
    ok = np.isfinite(data)
    out[ok] = np.minimum(np.searchsorted(np.asarray(breaks), data[ok], side="left"), len(breaks) - 1)
    return out


def _paths(geoms) -> list[MplPath]:
    """Matplotlib paths of (multi)polygons, holes included.

    Drawn as one collection per layer: geopandas' plot redraws the whole figure on every call,
    which made a three-panel map take seconds.
    """
    paths = []
    for geom in geoms:
        parts = geom.geoms if hasattr(geom, "geoms") else [geom]
        vertices, codes = [], []
        for polygon in parts:
            if polygon.is_empty or polygon.geom_type != "Polygon":
                continue
            for ring in [polygon.exterior, *polygon.interiors]:
                xy = np.asarray(ring.coords)[:, :2]
                vertices.append(xy)
                codes.append([MplPath.MOVETO] + [MplPath.LINETO] * (len(xy) - 2) + [MplPath.CLOSEPOLY])
        if vertices:
            paths.append(MplPath(np.concatenate(vertices), np.concatenate(codes)))
    return paths


def _draw(ax, geoms, **style) -> None:
    ax.add_collection(PathCollection(_paths(geoms), **style))


def _nice_length(span_m: float) -> float:
    """A round scale-bar length (1, 2 or 5 × 10^n metres) near a fifth of the map's width."""
    target = span_m / 5
    base = 10 ** math.floor(math.log10(target))
    return max(m * base for m in (1, 2, 5) if m * base <= target)


def _scale_bar_and_north(ax, bounds: tuple[float, float, float, float]) -> None:
    xmin, ymin, xmax, ymax = bounds
    length = _nice_length(xmax - xmin)
    x0, y0 = xmin + 0.05 * (xmax - xmin), ymin + 0.05 * (ymax - ymin)
    height = 0.012 * (ymax - ymin)
    for i in range(2):
        ax.add_patch(Rectangle((x0 + i * length / 2, y0), length / 2, height,
                               facecolor="black" if i == 0 else "white", edgecolor="black", linewidth=0.6))
    label = f"{length / 1000:g} km"
    ax.text(x0 + length / 2, y0 + 2.2 * height, label, ha="center", va="bottom", fontsize=6)
    ax.text(x0, y0 - 1.2 * height, "0", ha="center", va="top", fontsize=5)
    # British National Grid: grid north, close to true north across Great Britain
    nx, ny = xmax - 0.06 * (xmax - xmin), ymax - 0.16 * (ymax - ymin)
    ax.annotate("N", xy=(nx, ny + 0.1 * (ymax - ymin)), xytext=(nx, ny), ha="center", va="center",
                fontsize=8, fontweight="bold",
                arrowprops={"arrowstyle": "-|>", "color": "black", "linewidth": 1.2})


def choropleth_figure(
    panels: list[MapPanel], breaks: list[float], *, title: str, subtitle: str = "",
    unit: str = "", outline: gpd.GeoSeries | None = None, districts: gpd.GeoSeries | None = None,
    source: str = "", size: tuple[float, float] | None = None, fig: FigureBase | None = None,
    colours: list[str] | None = None, labels: list[str] | None = None,
    legend_title: str = "Classes (all periods)", sentence: str = "",
) -> FigureBase:
    """Small multiples of one choropleth per period, sharing ``breaks`` and one legend.

    ``colours`` and ``labels``: the classes' colours (default :func:`palette`, lightest for the
    lowest values) and words (default ``up to 10.0%``, ``10.0 – 20.0%``); ``sentence``: the
    answer in words, printed under the subtitle. The legend lists worst-performing outlines
    and hatching only when some area has them. ``fig``: draw into this part of a report page
    (the page carries the title and the sentence; the subtitle and source are laid out with the
    map) instead of a new figure."""
    if not panels:
        raise InputError("no periods to map")
    n = len(panels)
    on_page = fig is not None
    cols = (1 if n <= 2 else 2) if on_page else min(n, 3)   # a portrait page: panels one above another
    rows = math.ceil(n / cols)
    size = size or (3.6 * cols + 2.2, 3.9 * rows + 1.2)
    fig = fig if on_page else plt.figure(figsize=size, layout="constrained")
    grid = fig.add_gridspec(rows, cols + 1, width_ratios=[*([1] * cols), 0.55])
    colours = colours or palette(len(breaks))
    bounds = tuple(pd.concat([p.areas.geometry for p in panels]).total_bounds)
    pad = 0.03 * max(bounds[2] - bounds[0], bounds[3] - bounds[1])
    for i, panel in enumerate(panels):
        ax = fig.add_subplot(grid[i // cols, i % cols])
        areas = panel.areas
        classes = classify(areas["value"], breaks)
        face = [colours[c] if c >= 0 else NO_DATA for c in classes]
        _draw(ax, areas.geometry, facecolors=face, edgecolors="white", linewidths=0.15)
        estimated = areas[areas["estimated_share"].fillna(0) > 0]
        if not estimated.empty:
            _draw(ax, estimated.geometry, facecolors="none", edgecolors="#333333", hatch="//////",
                  linewidths=0)
        worst = areas[areas["worst"].fillna(False).astype(bool)]
        if not worst.empty:
            _draw(ax, worst.geometry, facecolors="none", edgecolors="#111111", linewidths=0.7)
        if districts is not None and not districts.empty:
            _draw(ax, districts, facecolors="none", edgecolors="#555555", linewidths=0.5, linestyles=":")
        if outline is not None and not outline.empty:
            _draw(ax, outline, facecolors="none", edgecolors="#1f3a93", linewidths=1.3)
        ax.set_xlim(bounds[0] - pad, bounds[2] + pad)
        ax.set_ylim(bounds[1] - pad, bounds[3] + pad)
        ax.set_aspect("equal")
        ax.set_axis_off()
        ax.set_title(panel.label, fontsize=9)
        if i == 0:
            _scale_bar_and_north(ax, (bounds[0] - pad, bounds[1] - pad, bounds[2] + pad, bounds[3] + pad))
    legend_ax = fig.add_subplot(grid[:, cols])
    legend_ax.set_axis_off()
    handles, low = [], None
    for i, (colour, high) in enumerate(zip(colours, breaks, strict=True)):
        if labels is not None:
            text = labels[i]
        else:
            text = f"up to {high:,.1f}{unit}" if low is None else f"{low:,.1f} – {high:,.1f}{unit}"
        handles.append(Patch(facecolor=colour, edgecolor="#999999", label=text))
        low = high
    handles.append(Patch(facecolor=NO_DATA, edgecolor="#999999", label="No data"))
    # only what the map draws (issue 28: a legend listed outlines and hatching that were not there)
    if any(p.areas["worst"].fillna(False).astype(bool).any() for p in panels):
        handles.append(Patch(facecolor="white", edgecolor="#111111", linewidth=1.2,
                             label="Worst-performing\nneighbourhood"))
    if any((p.areas["estimated_share"].fillna(0) > 0).any() for p in panels):
        handles.append(Patch(facecolor="white", edgecolor="#333333", hatch="//////",
                             label="Estimated through a\nboundary change"))
    handles.append(Patch(facecolor="white", edgecolor="#1f3a93", linewidth=1.3, label="Partnership"))
    if districts is not None and not districts.empty:
        handles.append(Patch(facecolor="white", edgecolor="#555555", linestyle=":", label="Districts"))
    legend_ax.legend(handles=handles, loc="upper left", fontsize=8 if on_page else 6.5, frameon=False,
                     title=legend_title, title_fontsize=8.5 if on_page else 7)
    if on_page:
        import textwrap

        fig.suptitle("\n".join(textwrap.wrap(subtitle, 120)), x=0.0, ha="left", fontsize=8,
                     color="#333333")
        footer = [*textwrap.wrap(source, 130), *textwrap.wrap(OGL_ATTRIBUTION, 130)]
        fig.supxlabel("\n".join(footer), x=0.0, ha="left", fontsize=6.5, color="#444444")
        return fig
    import textwrap

    width_chars = int(fig.get_figwidth() * 72 / (7.5 * 0.55))   # characters of 7.5 pt on a line
    fig.text(0.01, 0.99, title, fontsize=12, ha="left", va="top", fontweight="bold")
    lines = textwrap.wrap(subtitle, width_chars) if subtitle else []
    told = textwrap.wrap(sentence, int(width_chars * 0.85)) if sentence else []   # bold is wider
    line_height = 7.5 * 1.3 / 72 / fig.get_figheight()               # one line, as a share of the height
    top = 0.99 - 16 / 72 / fig.get_figheight()                       # below the 12 pt title
    if lines:
        fig.text(0.01, top, "\n".join(lines), fontsize=7.5, ha="left", va="top", color="#333333")
        top -= line_height * (len(lines) + 0.4)
    if told:
        fig.text(0.01, top, "\n".join(told), fontsize=7.5, ha="left", va="top", color="#111111",
                 fontweight="bold")
        top -= line_height * (len(told) + 0.4)
    fig.get_layout_engine().set(rect=(0, 0.05, 1, min(0.86, top - 0.01)))
    footer = f"{source}\n{OGL_ATTRIBUTION}" if source else OGL_ATTRIBUTION
    fig.text(0.01, 0.005, footer, fontsize=5.5, color="#444444", ha="left", va="bottom", wrap=True)
    return fig


def write_figure(fig: Figure, path: str | Path, dpi: int = 300) -> Path:
    """Write ``fig`` as PNG, SVG or PDF by the file's extension (PNG at ``dpi``), keeping it open
    for another format."""
    path = Path(path)
    if path.suffix.lower() not in FORMATS:
        raise InputError(f"{path}: expected a .png, .svg or .pdf file name")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=dpi, metadata={"Creator": "geo-cs"} if path.suffix != ".png" else None)
    except OSError as exc:
        raise InputError(f"{path}: cannot write the file ({exc.strerror})") from exc
    return path


def figure_bytes(fig: Figure, fmt: str = "png", dpi: int = 150) -> bytes:
    """``fig`` as PNG, SVG or PDF bytes (for a download from the service), then closed."""
    if f".{fmt}" not in FORMATS:
        raise InputError(f"format {fmt!r}: expected png, svg or pdf")
    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format=fmt, dpi=dpi)
    finally:
        plt.close(fig)
    return buffer.getvalue()


def save_figure(fig: Figure, path: str | Path, dpi: int = 300) -> Path:
    """Write ``fig`` as :func:`write_figure` does, then close it."""
    try:
        return write_figure(fig, path, dpi)
    finally:
        plt.close(fig)


def partnership_map(
    store: Store, partnership: str, *, geography: str | None = None, indicator: str | None = None,
    denominator: str | None = None, periods: list[str] | None = None, scheme: str = "quantiles",
    k: int = 5, breaks: list[float] | None = None, baseline: tuple[str, ...] | None = None,
    threshold: float = 25.0, disclosure: DisclosureControl | None = None,
    fig: FigureBase | None = None,
) -> FigureBase:
    """The print map of a partnership: one panel per period (default: the first and the
    latest), classes pooled over every period of the measure, as on the web map; suppressed
    rates (under ``disclosure``) are drawn as no data. ``fig``: draw into this part of a page."""
    inputs = partnership_map_inputs(
        store, partnership, geography=geography, indicator=indicator, denominator=denominator,
        periods=periods, scheme=scheme, k=k, breaks=breaks, baseline=baseline, threshold=threshold,
        disclosure=disclosure)
    return choropleth_figure(**inputs, fig=fig)


def partnership_map_inputs(
    store: Store, partnership: str, *, geography: str | None = None, indicator: str | None = None,
    denominator: str | None = None, periods: list[str] | None = None, scheme: str = "quantiles",
    k: int = 5, breaks: list[float] | None = None, baseline: tuple[str, ...] | None = None,
    threshold: float = 25.0, disclosure: DisclosureControl | None = None,
) -> dict:
    """What :func:`choropleth_figure` draws for :func:`partnership_map` (gathered once, so a
    report can draw the map again for each of its formats): the panels, classes with their
    colours and words (ranks and deciles most deprived darkest, whole-number bounds, as on the
    web map), a human title and subtitle, the answer in words, and the source by name."""
    from geo_cs.layers import (
        area_values,
        class_breaks,
        class_labels,
        is_whole,
        measure_sources,
        partnership_gap,
        resolve_measure,
        sentence_case,
        store_view,
    )
    from geo_cs.narrative import (
        area_words,
        baseline_words,
        gap_sentence,
        gives_gap,
        legend_title,
        low_is_worse,
        no_gap_sentence,
        source_line,
        threshold_hint,
    )
    from geo_cs.palette import class_colours
    from geo_cs.partnerships import get_partnerships, resolve

    found = get_partnerships([partnership])[0]
    name = found.phase_at(None).name
    geography, indicator, denominator = store_view(store, partnership, geography, indicator, denominator)
    measure = resolve_measure(store, geography, indicator, denominator)
    values = area_values(store, measure, baseline=baseline, threshold=threshold, disclosure=disclosure)
    codes = resolve(store, found, geography).codes
    mine = values.frame[values.frame["code"].isin(codes)]
    # the periods that hold the partnership's values (not another nation's edition)
    held = [p for p in values.period_ids if p in set(mine.loc[mine["value"].notna(), "period_id"])]
    held = held or values.period_ids
    chosen = periods or sorted({held[0], held[-1]}, key=values.period_ids.index)
    chosen = [values.check_period(period) for period in chosen]  # 2017-10 -> 2017m10
    areas = area_frame(store, geography, codes)
    unit = "%" if values.unit == "%" else ""
    whole = not unit and is_whole(mine["value"])
    pooled = class_breaks(mine["value"], scheme, k, breaks, whole=whole and scheme != "own")
    if not pooled:
        raise InputError(f"{measure.name} has no values for {name}'s {geography} "
                         "areas: choose another indicator or geography")
    labels = dict(zip(values.periods["period_id"], values.periods["period_label"], strict=True))
    with_gap = gives_gap(values, codes)
    panels = []
    for p in chosen:
        at = values.at(p)[["code", "value", "worst", "estimated_share"]]
        if not with_gap:   # no cohort without a gap: nothing is outlined as worst
            at = at.assign(worst=False)
        panels.append(MapPanel(labels[p], areas.merge(at, on="code", how="left")))
    # generalised boundaries leave hairline gaps between neighbours: close them for the outline
    outline = gpd.GeoSeries([areas.union_all().buffer(5).buffer(-5)], crs=BNG)
    district_set = "lad2013"
    districts = None
    try:
        district_codes = resolve(store, found, district_set).codes
        if len(district_codes) > 1:
            districts = area_frame(store, district_set, district_codes).geometry
    except GeoCsError:  # district outlines are a courtesy: a store without them still maps
        districts = None
    one, many = area_words(geography)
    label = sentence_case(measure.label)
    geography_label = store.sql("SELECT label FROM geography_sets WHERE set_id = ?", [geography]).fetchone()
    geography_label = geography_label[0] if geography_label else geography
    what = label + (", % of working-age people" if unit and measure.kind == "count" else
                    " (%)" if unit and "%" not in label else "")
    when = " and ".join(labels[p] for p in chosen)
    if with_gap:
        cohort = (f"; worst-performing {many} outlined: a rate above {threshold:g}% in the baseline, "
                  f"{baseline_words(values.baseline, labels)}")
        gap = partnership_gap(store, measure, partnership, baseline=values.baseline, threshold=threshold,
                              disclosure=disclosure)
        hint = None
        if int(gap["n_cohort"].max() if len(gap) else 0) == 0:
            hint = threshold_hint(mine.drop_duplicates("code")["baseline_value"], below=threshold)
        sentence = gap_sentence(gap, name, MethodParams(threshold=threshold, baseline=values.baseline), hint,
                                areas=(one, many))
    else:
        cohort = ""
        latest = values.at(chosen[-1])
        latest = areas[["code", "name"]].merge(latest[["code", "value"]], on="code", how="left")
        nations = {c[:1] for c in codes}
        sentence = no_gap_sentence(name, measure.kind, measure.label, values.unit, (one, many), latest,
                                   nation={"E": "England", "W": "Wales", "S": "Scotland"}.get(nations.pop())
                                   if len(nations) == 1 else None, offer=False)
    indicators = [*measure.indicators, *([denominator] if denominator else [])]
    source = source_line(measure_sources(store, geography, indicators, codes, chosen)) or "Source: geo-cs"
    return dict(
        panels=panels, breaks=pooled, title=f"{name}: {label}",
        subtitle=f"{what}, {when}; {geography_label}{cohort}.",
        unit=unit, outline=outline, districts=districts,
        source=source + (f" {disclosure.note}" if disclosure else ""),
        colours=class_colours(len(pooled), low_is_worse(measure.kind, measure.label)),
        labels=class_labels(pooled, unit, float(mine["value"].min()) if whole else None, whole),
        # which way the colours run; and, over several periods, that their classes are shared
        legend_title=legend_title(measure.kind, measure.label, values.unit).split(": ")[-1].capitalize()
        + ("\nClasses (all periods)" if len(held) > 1 else ""),
        sentence=sentence,
    )
