"""The report's charts, drawn with matplotlib (no display, no network).

Example
-------
>>> import pandas as pd
>>> table = pd.DataFrame({"period_label": ["SIMD 2012", "SIMD 2016"], "period_id": ["a", "b"],
...     "cohort_rate": [40.0, 35.0], "cohort_rate_low": [39.0, 34.0], "cohort_rate_high": [41.0, 36.0],
...     "rest_rate": [12.0, 11.0], "rest_rate_low": [11.8, 10.8], "rest_rate_high": [12.2, 11.2],
...     "gap": [28.0, 24.0], "gap_low": [27.0, 23.0], "gap_high": [29.0, 25.0]})
>>> svg = figure_svg(gap_chart(table, "Glasgow"))
>>> svg.startswith("<?xml")
True
"""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on servers; must precede pyplot

import textwrap

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure, FigureBase, SubFigure

from geo_cs.attribution import OGL_ATTRIBUTION
from geo_cs.custom_areas import file_stem
from geo_cs.disclosure import DisclosureControl
from geo_cs.errors import GeoCsError, InputError
from geo_cs.export.maps import write_figure
from geo_cs.spreadsheet import write_csv
from geo_cs.store import Store

COHORT_COLOUR = "#b2182b"
REST_COLOUR = "#2166ac"
GAP_COLOUR = "#4d4d4d"
#: Okabe-Ito: told apart with any colour vision (the cohort and the rest above are ColorBrewer's
#: RdBu ends, which are too); the lines also differ by marker.
SERIES_COLOURS = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#56B4E9", "#000000", "#F0E442"]
SERIES_MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]


def _canvas(size: tuple[float, float], fig: FigureBase | None) -> FigureBase:
    """A new stand-alone figure, or the part of a report page given (``fig``) to draw into."""
    return plt.figure(figsize=size, layout="constrained") if fig is None else fig


def _footer(fig: FigureBase, notes: list[str] | None = None, fontsize: float | None = None,
            top: float = 0.0) -> None:
    """The OGL attribution (and any notes) below the axes, clear of the tick labels.
    ``fontsize``: of a chart drawn for a screen, wrapped to its width (default: a print chart's
    small print); ``top``: the share of the height kept free above the axes."""
    lines = [*(notes or []), OGL_ATTRIBUTION]
    if isinstance(fig, SubFigure):   # on a report page: laid out by the page's engine
        width = width_inches(fig)
        wrapped = [w for line in lines for w in textwrap.wrap(line, int(width * 72 / (6.5 * 0.6)))]
        fig.supxlabel("\n".join(wrapped), x=0.0, ha="left", fontsize=6.5, color="#444444")
        return
    if fontsize is not None:
        chars = int(fig.get_figwidth() * 72 / (fontsize * 0.55))
        # the licence's name on one line, so it can be found as written
        keep = "Open Government Licence v3.0."
        lines = [w.replace("\x00", " ") for line in lines
                 for w in textwrap.wrap(line.replace(keep, keep.replace(" ", "\x00")), chars)]
        bottom = (len(lines) * fontsize * 1.25 + 6) / 72 / fig.get_figheight()
        fig.get_layout_engine().set(rect=(0, bottom, 1, 1 - bottom - top))
        fig.text(0.01, 0.005, "\n".join(lines), fontsize=fontsize, color="#444444", va="bottom")
        return
    bottom = 0.035 * (len(lines) + 1)
    fig.get_layout_engine().set(rect=(0, bottom, 1, 1 - bottom))   # left, bottom, width, height
    fig.text(0.01, 0.005, "\n".join(lines), fontsize=4.5, color="#555555", wrap=True, va="bottom")


#: The web chart: drawn this size (inches) and shown at the panel's width (~340 px), where a
#: point is about 1.3 px, so its smallest text (8.5 pt) reads at 11 px (issue 28: a 5.2 in chart
#: squeezed to 290 px had 5-7 px labels).
WEB_SIZE = (3.6, 3.9)
WEB_TEXT = 8.5


def has_cohort(table: pd.DataFrame) -> bool:
    """Whether a gap table has a gap to draw: worst-performing areas with a rate in some period."""
    return not table.empty and "gap" in table and bool(table["gap"].notna().any())


def width_inches(fig: FigureBase) -> float:
    """The width of a figure, or of the part of a report page a chart is drawn in (a
    ``SubFigure``, which has no size of its own: its box is in pixels at the page's dpi)."""
    if isinstance(fig, SubFigure):
        return fig.bbox.width / fig.figure.dpi if fig.bbox.width > 1 else 7.0
    return fig.get_figwidth()


def _empty(fig: FigureBase, title: str, words: str, fontsize: float) -> FigureBase:
    """A chart with nothing to draw, said in words instead of blank axes (a partnership with no
    worst-performing neighbourhoods has no gap to chart), on its own or on a report page."""
    ax = fig.subplots()
    ax.set_axis_off()
    width = width_inches(fig)
    ax.set_title("\n".join(textwrap.wrap(title, int(width * 72 / (fontsize + 1.5) / 0.55))),
                 fontsize=fontsize + 1.5, loc="left")
    ax.text(0.0, 0.8, "\n".join(textwrap.wrap(words, int(width * 72 / fontsize / 0.55))),
            fontsize=fontsize, va="top", ha="left", transform=ax.transAxes)
    return fig


def _honest(axis, low: float, high: float) -> None:
    """Limits that include zero (issue 28: a rate axis from 12.6 to 13.4 made noise look like a
    trend), with a little room above the highest value and below a negative lowest."""
    low, high = min(0.0, low), max(0.0, high)
    span = (high - low) or 1.0
    axis.set_ylim(low - (0.06 * span if low < 0 else 0), high + 0.08 * span)


def gap_chart(table: pd.DataFrame, title: str, highlight: str | None = None,
              size: tuple[float, float] = (5.2, 4.2), fig: FigureBase | None = None, *,
              web: bool = False, source: bool = True, source_line: str | None = None,
              rest_label: str = "Rest of the partnership") -> FigureBase:
    """Figure 4.7 for one partnership: the worst-performing neighbourhoods' rate and the rest's,
    with 95% intervals, and the gap between them (points) below; ``highlight`` marks a period.
    Both axes start at zero, so a small change looks small. A table with no worst-performing
    areas gives a chart that says so in words. ``web``: drawn for the map's panel
    (:data:`WEB_SIZE`, text of at least :data:`WEB_TEXT` points). ``fig``: draw into this (part
    of a report page) instead of a new figure. ``source=False``: without the attribution under
    it, for a page that carries it once itself (the map's panel: printed, it showed twice).
    ``source_line``: where the figures come from, above the attribution (a downloaded chart
    stands alone); ``rest_label``: what the worst areas are compared with (a custom area's
    rest, or the rest of the partnership it lies in)."""
    from geo_cs.narrative import area_words

    text = WEB_TEXT if web else 7.0
    fig = _canvas(WEB_SIZE if web else size, fig)
    many = area_words(str(table["geography"].iloc[0]))[1] if "geography" in table and len(table) else (
        "neighbourhoods")
    if not has_cohort(table):
        threshold = _threshold_of(table)
        at = f" above {threshold:g}%" if threshold is not None else ""
        _empty(fig, title, f"No worst-performing {many}: no area's baseline rate is{at}, so there is no gap "
                           "to chart. A lower threshold would pick some.", text + 1)
        if source:
            _footer(fig, _foot_lines(table, web, source_line), text - 1 if web else None)
        return fig
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 2]})
    x = range(len(table))
    for column, colour, label in (("cohort", COHORT_COLOUR, f"Worst-performing {many}"),
                                  ("rest", REST_COLOUR, rest_label)):
        top.plot(x, table[f"{column}_rate"], marker="o", color=colour, label=label)
        top.fill_between(x, table[f"{column}_rate_low"], table[f"{column}_rate_high"],
                         color=colour, alpha=0.2, linewidth=0)
    _honest(top, float(table[["cohort_rate_low", "rest_rate_low"]].min().min()),
            float(table[["cohort_rate_high", "rest_rate_high"]].max().max()))
    top.set_ylabel("Rate (%)", fontsize=text + 1 if web else None)
    reserved = 0.0   # the share of the height above the axes, for the title and the key
    if web:
        # the title across the whole chart, and the key under it, above the lines, never over them
        lines = textwrap.wrap(title, int(WEB_SIZE[0] * 72 / ((text + 1.5) * 0.62)))
        height = fig.get_figheight() * 72
        title_h = len(lines) * (text + 1.5) * 1.25 + 4
        fig.text(0.02, 1 - 3 / height, "\n".join(lines), fontsize=text + 1.5, ha="left", va="top")
        fig.legend(*top.get_legend_handles_labels(), fontsize=text, frameon=False, loc="upper left",
                   bbox_to_anchor=(0.0, 1 - title_h / height), bbox_transform=fig.transFigure,
                   borderaxespad=0.2, handlelength=1.6)
        reserved = (title_h + 2 * text * 1.5 + 8) / height
    else:
        top.set_title(title, fontsize=10, loc="left")
        top.legend(fontsize=7, frameon=False, loc="best")
    bottom.errorbar(x, table["gap"], yerr=[table["gap"] - table["gap_low"], table["gap_high"] - table["gap"]],
                    color=GAP_COLOUR, marker="s", capsize=3)
    _honest(bottom, float(table["gap_low"].min()), float(table["gap_high"].max()))
    bottom.axhline(0, color="#999999", linewidth=0.8)
    bottom.set_ylabel("Gap (points)", fontsize=text + 1 if web else None)
    labels = table["period_label"].astype(str).tolist()
    # at most five labels on a screen's chart, evenly spread, the first and last always
    named = ({round(i) for i in np.linspace(0, len(labels) - 1, min(len(labels), 5))} if web
             else set(range(len(labels))))
    shown = [label if i in named else "" for i, label in enumerate(labels)]
    if web and len(named) <= 4:   # a few long labels ("SIMD 2012 (2010 data)"): two lines, level
        shown = ["\n".join(textwrap.wrap(label, 12)) for label in shown]
        rotate = False
    else:
        rotate = len(labels) > 4
    bottom.set_xticks(list(x), shown, rotation=30 if rotate else 0, ha="right" if rotate else "center",
                      fontsize=text)
    if highlight is not None and highlight in set(table["period_id"]):
        at = table["period_id"].tolist().index(highlight)
        for axis in (top, bottom):
            axis.axvline(at, color="#999999", linestyle=":", linewidth=1)
    for axis in (top, bottom):
        axis.grid(axis="y", color="#e0e0e0", linewidth=0.6)
        axis.spines[["top", "right"]].set_visible(False)
        if web:
            axis.tick_params(axis="y", labelsize=text)
    # a screen's chart keeps to the attribution: the caveats are in its CSV and the report
    if source:
        _footer(fig, _foot_lines(table, web, source_line), text - 1 if web else None, reserved)
    return fig


def _foot_lines(table: pd.DataFrame, web: bool, source_line: str | None) -> list[str]:
    """What a gap chart prints above its attribution: its source when given, and, on paper,
    the table's caveats (a screen's chart keeps to the source: caveats are in its CSV)."""
    return [*([source_line] if source_line else []), *([] if web else table.attrs.get("notes", []))]


def _threshold_of(table: pd.DataFrame) -> float | None:
    """The threshold a gap table was made with, if it says."""
    method = _method_of(table)
    return float(method["threshold"]) if "threshold" in method else None


def gap_title(partnership_name: str, measure_label: str) -> str:
    """The gap chart's title: the partnership and the measure, in words."""
    from geo_cs.layers import sentence_case

    label = sentence_case(measure_label)
    return f"{partnership_name}: {label}" + ("" if "%" in label else " (%)")


def _method_of(table: pd.DataFrame) -> dict:
    """The settings a gap table was made with (its ``method`` column: threshold, baseline...)."""
    import json

    if "method" not in table or table.empty:
        return {}
    try:
        return dict(json.loads(str(table["method"].iloc[0])))
    except (ValueError, TypeError):
        return {}


def gap_about(store: Store, measure, table: pd.DataFrame, codes: list[str],
              disclosure: DisclosureControl | None = None) -> dict[str, str]:
    """Where a gap table's figures come from and the settings they were made with, for its
    CSV: the measure, threshold, baseline, source and attribution (and the disclosure control
    when applied), each as a column of its own (:func:`geo_cs.spreadsheet.about_columns`)."""
    from geo_cs.layers import measure_sources
    from geo_cs.narrative import baseline_words, source_line

    method = _method_of(table)
    labels = (dict(zip(table["period_id"], table["period_label"], strict=True))
              if {"period_id", "period_label"} <= set(table.columns) else {})
    indicators = [*measure.indicators, *([measure.denominator] if measure.denominator else [])]
    source = source_line(measure_sources(store, measure.set_id, indicators, codes))
    about = {
        "measure": measure.label,
        "threshold_pct": f"{float(method['threshold']):g}" if "threshold" in method else "",
        "baseline": baseline_words(method.get("baseline") or (), labels),
        "source": source.removeprefix("Source: ").removesuffix("."),
        "attribution": OGL_ATTRIBUTION,
    }
    if disclosure is not None:
        about["disclosure_control"] = disclosure.note
    return {**about, **gap_notes(table)}


def gap_notes(table: pd.DataFrame) -> dict[str, str]:
    """The gap table's caveats (areas straddling the partnership's boundary...) as one column."""
    notes = table.attrs.get("notes") or []
    return {"notes": " ".join(notes)} if notes else {}


def figure_svg(fig: FigureBase, text: bool = False, title: str | None = None) -> str:
    """The figure as SVG text (and closed: servers draw many). ``text``: words as text (found
    by search and screen readers, sharp at any size) rather than outlines. ``title``: the
    image's accessible name, as the SVG's ``<title>``. The SVG keeps its ``viewBox``, so it
    scales to the width it is shown at."""
    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none"} if text else {}):
        fig.savefig(buffer, format="svg")
    plt.close(fig)
    svg = buffer.getvalue()
    if title:
        from xml.sax.saxutils import escape

        root_end = svg.index(">", svg.index("<svg")) + 1
        svg = f"{svg[:root_end]}\n <title>{escape(title)}</title>{svg[root_end:]}"
    return svg


#: The gap table's columns for a person's spreadsheet, in words.
GAP_CSV_COLUMNS = {
    "period_label": "period", "period_id": "period_code",
    "cohort_rate": "worst_performing_rate_pct", "cohort_rate_low": "worst_performing_rate_low_95",
    "cohort_rate_high": "worst_performing_rate_high_95",
    "rest_rate": "rest_of_partnership_rate_pct", "rest_rate_low": "rest_rate_low_95",
    "rest_rate_high": "rest_rate_high_95",
    "gap": "gap_points", "gap_low": "gap_low_95", "gap_high": "gap_high_95",
    "n_cohort": "worst_performing_areas", "n_rest": "other_areas",
    "cohort_share": "worst_performing_share_of_working_age_people_pct",
    "cohort_small": "worst_performing_small_numbers", "rest_small": "rest_small_numbers",
}


def gap_csv(table: pd.DataFrame, about: dict[str, str]) -> str:
    """The gap chart's figures as CSV for a report: columns in words, rates rounded to 0.01,
    booleans as true/false, and ``about`` (source, threshold, baseline, attribution...) as
    columns of their own on every row, so the file says where its figures come from wherever
    it is copied and still reads as one plain table."""
    from geo_cs.spreadsheet import about_columns, csv_text

    columns = [c for c in GAP_CSV_COLUMNS if c in table]
    frame = table[columns].copy()
    if "cohort_share" in frame:
        frame["cohort_share"] = 100 * frame["cohort_share"]
    numeric = [c for c in columns if c not in ("period_label", "period_id", "cohort_small", "rest_small",
                                               "n_cohort", "n_rest")]
    frame[numeric] = frame[numeric].astype(float).round(2)
    return csv_text(about_columns(frame.rename(columns=GAP_CSV_COLUMNS), about))


def _axes_for_periods(ax, labels: list[str]) -> None:
    ax.set_xticks(range(len(labels)), labels, rotation=30 if len(labels) > 4 else 0,
                  ha="right" if len(labels) > 4 else "center", fontsize=7)
    ax.grid(axis="y", color="#e0e0e0", linewidth=0.6)
    ax.spines[["top", "right"]].set_visible(False)


def _series(table: pd.DataFrame) -> tuple[list[str], dict[str, pd.DataFrame]]:
    labels = list(dict.fromkeys(table["period_label"].astype(str)))
    return labels, {pid: rows.set_index("period_label").reindex(labels)
                    for pid, rows in table.groupby("partnership", sort=False)}


def index_chart(table: pd.DataFrame, title: str, size: tuple[float, float] = (6.4, 4.0),
                fig: FigureBase | None = None) -> FigureBase:
    """Figures 4.3-4.4: the count as an index of the base period (= 100), with 95% intervals."""
    labels, series = _series(table)
    fig = _canvas(size, fig)
    ax = fig.subplots()
    x = range(len(labels))
    for i, (name, rows) in enumerate(series.items()):
        line = ax.plot(x, rows["index"], marker=SERIES_MARKERS[i % 8], markersize=3, label=name,
                       color=SERIES_COLOURS[i % 8])[0]
        ax.fill_between(x, rows["index_low"], rows["index_high"], color=line.get_color(), alpha=0.15,
                        linewidth=0)
    ax.axhline(100, color="#999999", linewidth=0.8)
    base = table["index_base"].iloc[0] if "index_base" in table else ""
    ax.set_ylabel(f"Index of the count ({base} = 100)")
    ax.set_title(title, fontsize=10, loc="left")
    ax.legend(fontsize=7, frameon=False)
    _axes_for_periods(ax, labels)
    _footer(fig, table.attrs.get("notes"))
    return fig


def rate_gap_chart(table: pd.DataFrame, title: str, size: tuple[float, float] = (6.4, 5.2),
                   fig: FigureBase | None = None) -> FigureBase:
    """Figures 4.5-4.6: each partnership's rate against the reference (Great Britain), and the
    gap between them in points, with 95% intervals."""
    labels, series = _series(table)
    fig = _canvas(size, fig)
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 2]})
    x = range(len(labels))
    reference = None
    for i, (name, rows) in enumerate(series.items()):
        line = top.plot(x, rows["rate"], marker=SERIES_MARKERS[i % 8], markersize=3, label=name,
                        color=SERIES_COLOURS[i % 8])[0]
        top.fill_between(x, rows["rate_low"], rows["rate_high"], color=line.get_color(), alpha=0.15,
                         linewidth=0)
        bottom.errorbar(x, rows["gap"], yerr=[rows["gap"] - rows["gap_low"], rows["gap_high"] - rows["gap"]],
                        color=line.get_color(), marker=SERIES_MARKERS[i % 8], markersize=3, capsize=2,
                        label=name)
        reference = rows
    if reference is not None and "reference_rate" in reference:
        name = str(table["reference"].iloc[0]).upper() if "reference" in table else "reference"
        top.plot(x, reference["reference_rate"], color="black", linestyle="--", label=name)
    top.set_ylabel("Rate (%)")
    top.set_title(title, fontsize=10, loc="left")
    top.legend(fontsize=7, frameon=False)
    bottom.axhline(0, color="#999999", linewidth=0.8)
    bottom.set_ylabel("Gap (points)")
    _axes_for_periods(top, labels)
    _axes_for_periods(bottom, labels)
    _footer(fig, table.attrs.get("notes"))
    return fig


CHART_FORMATS = ("png", "svg", "pdf")


def save_chart(fig: Figure, stem: Path, formats: tuple[str, ...] = CHART_FORMATS,
               dpi: int = 300) -> list[Path]:
    """Write the chart as each format (``stem`` without extension); return the files."""
    try:
        for fmt in formats:
            if fmt not in CHART_FORMATS:
                raise InputError(f"format {fmt!r}: expected one of {', '.join(CHART_FORMATS)}")
        return [write_figure(fig, stem.with_suffix(f".{fmt}"), dpi) for fmt in formats]
    finally:
        plt.close(fig)


def partnership_charts(
    store: Store, partnerships: list[str], out_dir: str | Path, *, formats: tuple[str, ...] = CHART_FORMATS,
    geography: str = "wpc2010", indicator: str = "claimants", denominator: str | None = None,
    reference: str = "gb", small_areas: tuple[str | None, str | None, str | None] = (None, None, None),
    disclosure: DisclosureControl | None = None,
) -> list[Path]:
    """The report's charts for the partnerships, each with the CSV behind it, in ``out_dir``.

    Figures 4.3-4.6 come from ``indicator`` on ``geography`` (default the DWP out-of-work benefit
    series on constituencies, which has published Great Britain figures); figure 4.7 from the
    partnership's own small areas (:func:`geo_cs.layers.store_view`, or ``small_areas`` =
    geography, indicator, denominator). Figures 4.1-4.2 (the employment rate from the Annual
    Population Survey) are :func:`geo_cs.export.survey_charts.survey_charts` (``geo-cs export
    charts`` draws both).
    """
    from geo_cs.analysis import partnership_rates
    from geo_cs.layers import (
        measure_panel,
        measure_sources,
        partnership_gap,
        resolve_measure,
        sentence_case,
        store_view,
    )
    from geo_cs.narrative import source_line
    from geo_cs.partnerships import get_partnerships, resolve

    found = get_partnerships(partnerships)
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"{out}: cannot create the output folder ({exc.strerror})") from exc
    written: list[Path] = []
    measure = resolve_measure(store, geography, indicator, denominator)
    panel = measure_panel(store, measure)
    try:
        rates = partnership_rates(store, panel, found, reference=reference)
    finally:
        panel.drop()
    if disclosure is not None:
        rates = disclosure.rate_table(rates)
    names = ", ".join(p.phase_at(None).name for p in found)
    geography_label = store.sql("SELECT label FROM geography_sets WHERE set_id = ?", [geography]).fetchone()
    label = f"{sentence_case(measure.label)} ({geography_label[0] if geography_label else geography})"
    pretty = rates.assign(partnership=rates["partnership"].map({p.id: p.phase_at(None).name for p in found}))
    pretty.attrs["notes"] = rates.attrs.get("notes", [])
    # where the figures come from, on every row of the CSVs (issue 28: they had no source)
    sources = measure_sources(store, geography, [*measure.indicators,
                                                 *([measure.denominator] if measure.denominator else [])])
    about = {"measure": measure.label, "reference": reference.upper(),
             "source": source_line(sources).removeprefix("Source: ").removesuffix("."),
             "attribution": OGL_ATTRIBUTION,
             **({"disclosure_control": disclosure.note} if disclosure is not None else {})}
    stem = out / "fig4_3_index_of_count"
    write_csv(rates, stem.with_suffix(".csv"), about)
    chart = index_chart(pretty, f"{names}: {label}, index")
    written += [stem.with_suffix(".csv"), *save_chart(chart, stem, formats)]
    stem = out / "fig4_5_rate_and_gap_with_gb"
    write_csv(rates, stem.with_suffix(".csv"), about)
    written += [stem.with_suffix(".csv"),
                *save_chart(rate_gap_chart(pretty, f"{names}: {label} and the gap with {reference.upper()}"),
                            stem, formats)]
    for p in found:
        try:
            view = store_view(store, p.id, *small_areas)
        except GeoCsError:
            continue  # no small-area measure for this partnership: no figure 4.7
        small = resolve_measure(store, *view)
        if not small.is_rate:
            continue
        table = partnership_gap(store, small, p.id, disclosure=disclosure)
        stem = out / f"fig4_7_worst_vs_rest_{file_stem(p.id)}"
        write_csv(table, stem.with_suffix(".csv"),
                  gap_about(store, small, table, resolve(store, p, view[0]).codes, disclosure))
        chart = gap_chart(table, gap_title(p.phase_at(None).name, small.label))
        written += [stem.with_suffix(".csv"), *save_chart(chart, stem, formats)]
    return written


# -- compare places ----------------------------------------------------------------------------

#: The compare page's chart: as wide as the map panel's (:data:`WEB_SIZE`), its height grown
#: by the key and the source lines under it, so the axes keep their room.
COMPARE_WEB_WIDTH = 3.6
COMPARE_AXES_HEIGHT = 2.5


def _wrapped_lines(lines: list[str], width_in: float, fontsize: float) -> int:
    chars = int(width_in * 72 / (fontsize * 0.55))
    return sum(len(textwrap.wrap(line, chars)) or 1 for line in lines)


def compare_title(comparison) -> str:
    """The compare chart's title: the measure as a rate, in words."""
    from geo_cs.layers import sentence_case

    label = comparison.label or sentence_case(comparison.measure.label)
    return label if "%" in label else f"{label} (%)"


def compare_chart(comparison, title: str | None = None, highlight: str | None = None,
                  size: tuple[float, float] = (6.4, 4.4), fig: FigureBase | None = None, *,
                  web: bool = False, source: bool = True, source_line: str | None = None,
              rest_label: str = "Rest of the partnership") -> FigureBase:
    """Two to four places' rates per period (:class:`geo_cs.compare.Comparison`), each with its
    95% interval as a band (and as bars where there are few periods), the axis from zero;
    ``highlight`` marks the period whose differences are shown. Under it the source line, the
    disclosure control when applied, and the attribution (``source=False`` leaves them off).
    ``web``: drawn for a page as the gap chart is (:data:`WEB_TEXT` points at the panel's
    width), the title and the key above the axes, its height grown to hold them."""
    text = WEB_TEXT if web else 7.0
    title = title or compare_title(comparison)
    notes = [n for n in (comparison.source,
                         comparison.disclosure.note if comparison.disclosure is not None else "") if n]
    names = [p.name for p in comparison.places]
    if web:
        title_lines = textwrap.wrap(title, int(COMPARE_WEB_WIDTH * 72 / ((text + 1.5) * 0.62)))
        key_lines = sum(len(textwrap.wrap(n, 44)) for n in names)
        foot = _wrapped_lines([*notes, OGL_ATTRIBUTION], COMPARE_WEB_WIDTH, text - 1) if source else 0
        height_pt = (COMPARE_AXES_HEIGHT * 72 + len(title_lines) * (text + 1.5) * 1.25 + 4
                     + key_lines * text * 1.45 + 8 + foot * (text - 1) * 1.25 + 6)
        fig = _canvas((COMPARE_WEB_WIDTH, height_pt / 72), fig)
    else:
        fig = _canvas(size, fig)
    ax = fig.subplots()
    period_ids = comparison.period_ids
    labels = comparison.periods["period_label"].astype(str).tolist()
    x = np.arange(len(period_ids), dtype=float)
    few = len(period_ids) <= 4
    rates = comparison.rates
    for i, place in enumerate(comparison.places):
        rows = rates[rates["place"] == place.id].set_index("period_id").reindex(period_ids)
        colour, marker = SERIES_COLOURS[i % 8], SERIES_MARKERS[i % 8]
        # a few periods: the places side by side at each, so their bars do not hide each other
        at = x + ((i - (len(names) - 1) / 2) * 0.08 if few else 0.0)
        label = "\n".join(textwrap.wrap(place.name, 44)) if web else place.name
        ax.plot(at, rows["rate"], marker=marker, markersize=4, color=colour, label=label)
        if len(period_ids) > 1:
            ax.fill_between(at, rows["low"], rows["high"], color=colour, alpha=0.15, linewidth=0)
        if few:
            ax.errorbar(at, rows["rate"], yerr=[rows["rate"] - rows["low"], rows["high"] - rows["rate"]],
                        fmt="none", ecolor=colour, capsize=3, linewidth=1)
    low, high = rates["low"].min(), rates["high"].max()
    _honest(ax, float(low) if np.isfinite(low) else 0.0, float(high) if np.isfinite(high) else 1.0)
    ax.set_ylabel("Rate (%)", fontsize=text + 1 if web else None)
    reserved = 0.0
    if web:
        height = fig.get_figheight() * 72
        title_h = len(title_lines) * (text + 1.5) * 1.25 + 4
        fig.text(0.02, 1 - 3 / height, "\n".join(title_lines), fontsize=text + 1.5, ha="left", va="top")
        fig.legend(*ax.get_legend_handles_labels(), fontsize=text, frameon=False, loc="upper left",
                   bbox_to_anchor=(0.0, 1 - title_h / height), bbox_transform=fig.transFigure,
                   borderaxespad=0.2, handlelength=1.6)
        reserved = (title_h + key_lines * text * 1.45 + 8) / height
    else:
        ax.set_title(title, fontsize=10, loc="left")
        ax.legend(fontsize=7, frameon=False, loc="best")
    named = ({round(i) for i in np.linspace(0, len(labels) - 1, min(len(labels), 5))} if web
             else set(range(len(labels))))
    shown = [label if i in named else "" for i, label in enumerate(labels)]
    rotate = len(labels) > 4
    if web and len(named) <= 4:   # a few long labels ("SIMD 2012 (2010 data)"): two lines, level
        shown = ["\n".join(textwrap.wrap(label, 12)) for label in shown]
        rotate = False
    ax.set_xticks(list(x), shown, rotation=30 if rotate else 0, ha="right" if rotate else "center",
                  fontsize=text)
    if few:
        ax.set_xlim(-0.5, len(labels) - 0.5)
    if highlight is not None and highlight in period_ids:
        ax.axvline(period_ids.index(highlight), color="#999999", linestyle=":", linewidth=1)
    ax.grid(axis="y", color="#e0e0e0", linewidth=0.6)
    ax.spines[["top", "right"]].set_visible(False)
    if web:
        ax.tick_params(axis="y", labelsize=text)
    if source:
        _footer(fig, notes, text - 1 if web else None, reserved)
    return fig


#: A comparison's CSV columns, in words: the places' rates, then the pairs' differences.
COMPARE_CSV_COLUMNS = [
    "row", "place", "place_id", "period", "period_code", "count", "denominator", "rate_pct",
    "rate_low_95", "rate_high_95", "areas_counted", "areas_withheld", "areas_without_figure",
    "compared_with", "compared_with_id", "shared_areas", "difference_points", "difference_low_95",
    "difference_high_95", "difference_is",
]


def compare_about(comparison, period: str | None = None) -> dict[str, str]:
    """Where a comparison's figures come from, for every row of its CSV: the measure, the
    geography, the source, the attribution, the disclosure control when applied and the notes
    of ``period`` (places sharing areas, withheld areas)."""
    about = {"measure": comparison.label or comparison.measure.label,
             "geography": comparison.geography_label or comparison.measure.set_id,
             "source": comparison.source.removeprefix("Source: ").removesuffix("."),
             "attribution": OGL_ATTRIBUTION}
    if comparison.disclosure is not None:
        about["disclosure_control"] = comparison.disclosure.note
    notes = comparison.notes(period)
    return {**about, **({"notes": " ".join(notes)} if notes else {})}


def compare_csv(comparison, about: dict[str, str]) -> str:
    """A comparison as one plain table: a row per place and period (count, denominator, rate
    and its 95% interval, its areas counted, withheld and without a figure), then a row per
    pair and period (the difference in points, its interval and whether it is real or within
    noise), with ``about`` as columns on every row, as :func:`gap_csv` does."""
    from geo_cs.spreadsheet import about_columns, csv_text

    r = comparison.rates
    rates = pd.DataFrame({
        "row": "rate", "place": r["name"], "place_id": r["place"], "period": r["period_label"],
        "period_code": r["period_id"], "count": r["count"].round(2), "denominator": r["denominator"].round(2),
        "rate_pct": r["rate"].round(2), "rate_low_95": r["low"].round(2), "rate_high_95": r["high"].round(2),
        "areas_counted": r["n_areas"], "areas_withheld": r["n_withheld"],
        "areas_without_figure": r["n_missing"]})
    d = comparison.differences
    diffs = pd.DataFrame({
        "row": "difference", "place": d["name_a"], "place_id": d["place_a"], "period": d["period_label"],
        "period_code": d["period_id"], "compared_with": d["name_b"], "compared_with_id": d["place_b"],
        "shared_areas": d["shared_areas"], "difference_points": d["difference"].round(2),
        "difference_low_95": d["low"].round(2), "difference_high_95": d["high"].round(2),
        "difference_is": d["verdict"].fillna("no figure")})
    table = pd.concat([rates, diffs], ignore_index=True).reindex(columns=COMPARE_CSV_COLUMNS)
    for column in ("areas_counted", "areas_withheld", "areas_without_figure", "shared_areas"):
        table[column] = table[column].astype("Int64")
    return csv_text(about_columns(table, about))
