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
import pandas as pd
from matplotlib.figure import Figure, FigureBase, SubFigure

from geo_cs.attribution import OGL_ATTRIBUTION
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


def _footer(fig: FigureBase, notes: list[str] | None = None) -> None:
    """The OGL attribution (and any notes) below the axes, clear of the tick labels."""
    lines = [*(notes or []), OGL_ATTRIBUTION]
    if isinstance(fig, SubFigure):   # on a report page: laid out by the page's engine
        width = fig.bbox.width / 72 if fig.bbox.width > 1 else 7.0
        wrapped = [w for line in lines for w in textwrap.wrap(line, int(width * 72 / (6.5 * 0.6)))]
        fig.supxlabel("\n".join(wrapped), x=0.0, ha="left", fontsize=6.5, color="#444444")
        return
    bottom = 0.035 * (len(lines) + 1)
    fig.get_layout_engine().set(rect=(0, bottom, 1, 1 - bottom))   # left, bottom, width, height
    fig.text(0.01, 0.005, "\n".join(lines), fontsize=4.5, color="#555555", wrap=True, va="bottom")


def gap_chart(table: pd.DataFrame, title: str, highlight: str | None = None,
              size: tuple[float, float] = (5.2, 4.2), fig: FigureBase | None = None) -> FigureBase:
    """Figure 4.7 for one partnership: the worst-performing neighbourhoods' rate and the rest's,
    with 95% intervals, and the gap between them (points) below; ``highlight`` marks a period.
    ``fig``: draw into this (part of a report page) instead of a new figure."""
    fig = _canvas(size, fig)
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 2]})
    x = range(len(table))
    for column, colour, label in (("cohort", COHORT_COLOUR, "Worst-performing neighbourhoods"),
                                  ("rest", REST_COLOUR, "Rest of the partnership")):
        top.plot(x, table[f"{column}_rate"], marker="o", color=colour, label=label)
        top.fill_between(x, table[f"{column}_rate_low"], table[f"{column}_rate_high"],
                         color=colour, alpha=0.2, linewidth=0)
    top.set_ylabel("Rate (%)")
    top.set_title(title, fontsize=10, loc="left")
    top.legend(fontsize=7, frameon=False, loc="best")
    bottom.errorbar(x, table["gap"], yerr=[table["gap"] - table["gap_low"], table["gap_high"] - table["gap"]],
                    color=GAP_COLOUR, marker="s", capsize=3)
    bottom.set_ylabel("Gap (points)")
    labels = table["period_label"].astype(str).tolist()
    bottom.set_xticks(list(x), labels, rotation=30 if len(labels) > 4 else 0, ha="right" if len(labels) > 4
                      else "center", fontsize=7)
    if highlight is not None and highlight in set(table["period_id"]):
        at = table["period_id"].tolist().index(highlight)
        for axis in (top, bottom):
            axis.axvline(at, color="#999999", linestyle=":", linewidth=1)
    for axis in (top, bottom):
        axis.grid(axis="y", color="#e0e0e0", linewidth=0.6)
        axis.spines[["top", "right"]].set_visible(False)
    _footer(fig, table.attrs.get("notes"))
    return fig


def figure_svg(fig: FigureBase) -> str:
    """The figure as SVG text (and closed: servers draw many)."""
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg")
    plt.close(fig)
    return buffer.getvalue()


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
    Population Survey) need an employment-rate series, which none of the shipped sources is
    (SIMD/IMD "employment rates" are deprivation rates): they are not drawn.
    """
    from geo_cs.analysis import partnership_rates
    from geo_cs.layers import measure_panel, partnership_gap, resolve_measure, store_view
    from geo_cs.partnerships import get_partnerships

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
    label = f"{measure.label} ({geography})"
    pretty = rates.assign(partnership=rates["partnership"].map({p.id: p.phase_at(None).name for p in found}))
    pretty.attrs["notes"] = rates.attrs.get("notes", [])
    stem = out / "fig4_3_index_of_count"
    write_csv(rates, stem.with_suffix(".csv"))
    chart = index_chart(pretty, f"{names}: {label}, index")
    written += [stem.with_suffix(".csv"), *save_chart(chart, stem, formats)]
    stem = out / "fig4_5_rate_and_gap_with_gb"
    write_csv(rates, stem.with_suffix(".csv"))
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
        stem = out / f"fig4_7_worst_vs_rest_{p.id}"
        write_csv(table, stem.with_suffix(".csv"))
        written += [stem.with_suffix(".csv"),
                    *save_chart(gap_chart(table, f"{p.phase_at(None).name}: {small.label} ({view[0]})"),
                                stem, formats)]
    return written
