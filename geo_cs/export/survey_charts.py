"""Figures 4.1 and 4.2 of DWP RR 783: the employment rate from the Annual Population Survey,
with its published uncertainty, as charts (PNG, SVG, PDF and the CSV behind each) and as the
report's section "Employment rate (Annual Population Survey)".

Every figure is drawn from :func:`geo_cs.survey.employment_rates` as it comes: no arithmetic is
done here, so a chart, its CSV, the report and ``geo-cs analyse employment`` agree to the digit.

* **Figure 4.1** (:func:`employment_series_chart`): one partnership's rate over the rolling
  years of one district edition, against the benchmark (Great Britain, or the nearest the file
  holds) as a second line; 95% intervals shaded where the file publishes them ("no interval
  published" in the subtitle where it does not), and the gap with the benchmark below. A file
  of one period (the 2019 web download) draws points with whiskers.
* **Figure 4.2** (:func:`employment_partnerships_chart`): every partnership the file covers in
  one period (default the latest), as bars with interval whiskers sorted by rate, the benchmark
  as a dashed reference line; a filled bar is a real difference with the benchmark (the gap's
  95% interval leaves out zero), a hollow one is not, a hatched one has no interval to tell.

:func:`survey_charts` writes them for ``geo-cs export charts``; :func:`survey_report_blocks`
gives the report's section (figures, a small table, the notes in words and the method).

Example
-------
The 2019 Nomis download in the demo bundle (the list of district changes dates its codes):

>>> import tempfile
>>> from pathlib import Path
>>> from geo_cs import Store
>>> from geo_cs.config import boundaries_dir
>>> from geo_cs.ingest import ingest_lookup
>>> from geo_cs.ingest.survey import ingest_survey
>>> from geo_cs.survey import employment_rates
>>> demo = boundaries_dir() / "demo"
>>> store = Store.open(":memory:")
>>> _ = ingest_lookup(store, demo / "lookups" / "lad_changes_2014_2025.csv")
>>> _ = ingest_survey(store, demo / "indicators" / "aps_employment_rate_la_2019.csv")
>>> table = employment_rates(store, set_id="lad2020")
>>> fig = employment_series_chart(table, "greater_manchester")
>>> folder = tempfile.TemporaryDirectory()
>>> files, notes = survey_charts(store, ["greater_manchester"], folder.name, formats=("svg",))
>>> print("\\n".join(sorted(Path(f).name for f in files)))
fig4_1_employment_rate_greater_manchester_lad2020.csv
fig4_1_employment_rate_greater_manchester_lad2020.svg
fig4_2_employment_rate_partnerships_lad2020_2019y12.csv
fig4_2_employment_rate_partnerships_lad2020_2019y12.svg
>>> store.close(); folder.cleanup()
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on servers; must precede pyplot

import numpy as np
import pandas as pd
from matplotlib.figure import FigureBase
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.transforms import offset_copy

from geo_cs.attribution import OGL_ATTRIBUTION
from geo_cs.disclosure import DisclosureControl
from geo_cs.errors import InputError, NotFoundError
from geo_cs.export.charts import (
    CHART_FORMATS,
    SERIES_COLOURS,
    _canvas,
    _empty,
    _footer,
    _honest,
    save_chart,
)
from geo_cs.export.document import Block, Bullets, FigureBlock, Heading, Paragraph, TableBlock
from geo_cs.spreadsheet import write_csv
from geo_cs.store import Store
from geo_cs.survey import DEFAULT_INDICATOR, NO_INTERVAL, employment_rates, survey_sets

#: Where the figures come from, in words (the file names follow it on every chart and CSV).
SURVEY_SOURCE = "Annual Population Survey, ONS via Nomis"
SECTION_TITLE = "Employment rate (Annual Population Survey)"
PARTNERSHIP_COLOUR = SERIES_COLOURS[0]     # Okabe-Ito blue
HIGHLIGHT_COLOUR = SERIES_COLOURS[4]       # Okabe-Ito vermilion: the report's own partnership
BENCHMARK_COLOUR = "#000000"
#: Footer text of a stand-alone chart (points): the source line on one line at 6.4 inches.
FOOTER_PT = 5.5
#: How the intervals are combined and what that assumes, in words (the report's method).
METHOD = (
    "How the survey intervals are combined: a partnership's rate is the sum of its districts' "
    "numerators over the sum of their denominators (never a mean of rates). Its 95% interval "
    "combines the districts' published intervals as if each district were an independent sample: "
    "half-width = √Σ(wᵢ·cᵢ)², where cᵢ is a district's published half-width and wᵢ its share of "
    "the partnership's denominator, taken as fixed. This assumes that the districts' samples are "
    "independent of one another, that each published interval is a symmetric (normal) 95% "
    "interval, and that the weights are known exactly: any uncertainty in the denominators "
    "themselves is not in the interval. "
    "The gap with the benchmark counts each district once (a partnership's districts are part of "
    "the benchmark) and is called real only when its interval leaves out zero. Where the file "
    "publishes no intervals, none is invented: the figures say \"no interval published\".")


# -- where the figures come from ---------------------------------------------------------------

_FILES_SQL = """
SELECT DISTINCT unnest(g.sources) AS source
FROM survey_estimates s JOIN ingests g USING (ingest_id)
WHERE s.indicator_id = $indicator AND s.set_id = $set_id
  AND ($periods IS NULL OR list_contains($periods, s.period_id))
ORDER BY 1
"""


def survey_files(store: Store, set_id: str, indicator: str = DEFAULT_INDICATOR,
                 periods: list[str] | None = None) -> list[str]:
    """The names of the files the stored estimates of ``indicator`` on ``set_id`` (in
    ``periods``) were ingested from."""
    rows = store.sql(_FILES_SQL, {"indicator": indicator, "set_id": set_id,
                                  "periods": list(periods) if periods is not None else None}).fetchall()
    return list(dict.fromkeys(os.path.basename(str(r[0])) for r in rows))


def survey_source_line(store: Store, set_id: str, indicator: str = DEFAULT_INDICATOR,
                       periods: list[str] | None = None) -> str:
    """``Source: Annual Population Survey, ONS via Nomis (aps_employment_rate_la_2019.csv).``"""
    files = survey_files(store, set_id, indicator, periods)
    return f"Source: {SURVEY_SOURCE}" + (f" ({', '.join(files)})." if files else ".")


# -- words ---------------------------------------------------------------------------------------

def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA


def _pct(value) -> str:
    return "no figure" if _missing(value) else f"{float(value):.1f}%"


def _interval(low, high, unit: str = "%") -> str:
    if _missing(low) or _missing(high):
        return NO_INTERVAL
    return f"{float(low):.1f}{unit} to {float(high):.1f}{unit}"


def _real(value) -> str:
    """The gap's verdict in a word or three: yes, no, or no interval published."""
    if _missing(value):
        return NO_INTERVAL
    return "yes" if bool(value) else "no"


def _periods(table: pd.DataFrame) -> tuple[list[str], list[str]]:
    """The table's period ids and labels, oldest first (its rows are in period order)."""
    bench = table[table["group_kind"] == "benchmark"]
    frame = bench if not bench.empty else table
    ids = list(dict.fromkeys(frame["period_id"].astype(str)))
    labels = dict(zip(frame["period_id"].astype(str), frame["period_label"].astype(str), strict=True))
    return ids, [labels[i] for i in ids]


def benchmark_name(table: pd.DataFrame) -> str:
    """The benchmark the table's gaps are with (Great Britain, or the nearest the file holds)."""
    if table.attrs.get("benchmark"):
        return str(table.attrs["benchmark"])
    bench = table[table["group_kind"] == "benchmark"]
    return str(bench["name"].iloc[0]) if not bench.empty else "the benchmark"


def _period_span(labels: list[str]) -> str:
    if not labels:
        return ""
    return labels[0] if len(labels) == 1 else f"{labels[0]} to {labels[-1]}"


def _interval_words(rows: pd.DataFrame, *, single: bool) -> str:
    """How the chart shows the uncertainty, for its subtitle."""
    has = rows["half_width"].notna()
    if not has.any():
        return f"{NO_INTERVAL} in this file, so no interval is drawn"
    how = "95% intervals as whiskers" if single else "95% intervals shaded"
    if not has.all():
        return f"{how} where published ({NO_INTERVAL} for some periods)"
    return how


def chart_notes(table: pd.DataFrame, partnership: str | None = None, limit: int = 6) -> list[str]:
    """The caveats of the rows a chart draws, in words, each once: the partnership's (unreliable
    or missing districts), the benchmark's coverage, derived denominators, and the table's notes
    about ``partnership`` (districts not in the file...)."""
    notes: list[str] = []
    parts = table[table["group_kind"] == "partnership"]
    if partnership is not None:
        parts = parts[parts["group"] == partnership]
    bench = table[table["group_kind"] == "benchmark"]
    derived = False
    for rows in (parts, bench):
        for name, note in zip(rows["name"], rows["note"].fillna(""), strict=True):
            for piece in str(note).split("; "):
                if not piece:
                    continue
                if piece.startswith("denominators derived"):
                    derived = True
                    continue
                line = f"{name}: {piece}."
                if line not in notes:
                    notes.append(line)
    for note in table.attrs.get("notes", []):
        mine = partnership is not None and note.startswith(f"{partnership}:")
        if note.startswith("the file holds") or mine:
            line = note[0].upper() + note[1:] + "."
            if line not in notes:
                notes.append(line)
    if derived:
        notes.append("The file publishes no denominators: each district's is derived as its numerator "
                     "÷ its rate × 100.")
    if len(notes) > limit:
        notes = [*notes[:limit - 1], f"And {len(notes) - limit + 1} more notes in the CSV and the report."]
    return notes


# -- figure 4.1 ----------------------------------------------------------------------------------

def _shown_ticks(ids: list[str], most: int = 10) -> list[int]:
    """Which periods get a label: all of a few; of many, the calendar years (Jan-Dec), thinned
    evenly to at most ``most``, the first and last always."""
    if len(ids) <= most:
        return list(range(len(ids)))
    years = [i for i, pid in enumerate(ids) if pid.endswith("y12")] or list(range(len(ids)))
    picked = {years[round(k)] for k in np.linspace(0, len(years) - 1, min(most, len(years)))}
    return sorted(picked)


def employment_series_chart(table: pd.DataFrame, partnership: str, *, title: str | None = None,
                            source: str = "", size: tuple[float, float] = (6.4, 5.4),
                            fig: FigureBase | None = None) -> FigureBase:
    """Figure 4.1 for ``partnership`` from an :func:`~geo_cs.survey.employment_rates` table:
    its rate in each period against the benchmark's (dashed), with the published 95% intervals
    shaded (whiskers when the table has one period), and the gap with the benchmark in points
    below. ``source``: the source line under it (with the OGL attribution and the notes)."""
    mine = table[(table["group_kind"] == "partnership") & (table["group"] == partnership)]
    bench_rows = table[table["group_kind"] == "benchmark"]
    bname = benchmark_name(table)
    fig = _canvas(size, fig)
    name = str(mine["name"].iloc[0]) if not mine.empty else partnership
    title = title or f"{name}: employment rate (Annual Population Survey)"
    footer = [source] if source else []
    if mine.empty:
        why = [n for n in table.attrs.get("notes", []) if n.startswith(f"{partnership}:")]
        words = (why[0].split(": ", 1)[1] if why else "the file holds none of its districts")
        _empty(fig, title, f"No survey figure for {name}: {words}.", 8)
        _footer(fig, footer, None if _sub(fig) else FOOTER_PT)
        return fig
    ids, labels = _periods(table)
    mine = _by_period(mine, ids)
    bench = _by_period(bench_rows, ids)
    single = len(ids) == 1
    how = _interval_words(pd.concat([mine, bench]), single=single)
    subtitle = f"{_period_span(labels)}, against {bname}; {how}"
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 2]})
    x = np.arange(len(ids), dtype=float)
    small = len(ids) > 20
    series = ((mine, PARTNERSHIP_COLOUR, name, "o", "-", -0.05),
              (bench, BENCHMARK_COLOUR, bname, "s", "--", 0.05))
    for rows, colour, label, marker, style, offset in series:
        label = "\n".join(textwrap.wrap(label, 48))
        if single:
            yerr = None if rows["half_width"].isna().all() else [rows["half_width"], rows["half_width"]]
            top.errorbar(x + offset, rows["rate"], yerr=yerr, fmt=marker, color=colour, capsize=4,
                         markersize=5, label=label)
            r = rows.iloc[0]
            if not _missing(r["rate"]):
                words = f"{r['rate']:.1f}%" + ("" if _missing(r["half_width"]) else
                                                f"\n({r['rate_low']:.1f} to {r['rate_high']:.1f})")
                top.annotate(words, (offset, r["rate"]), xytext=(-8 if offset < 0 else 8, 0),
                             textcoords="offset points", ha="right" if offset < 0 else "left",
                             va="center", fontsize=7, color=colour)
        else:
            top.plot(x, rows["rate"], color=colour, linestyle=style, marker=marker,
                     markersize=2 if small else 3.5, linewidth=1.2, label=label)
            if rows["half_width"].notna().any():
                top.fill_between(x, rows["rate_low"], rows["rate_high"], color=colour,
                                 alpha=0.22 if colour != BENCHMARK_COLOUR else 0.12, linewidth=0)
    values = pd.concat([mine[["rate", "rate_low", "rate_high"]], bench[["rate", "rate_low", "rate_high"]]])
    numbers = values.to_numpy(dtype=float)
    _honest(top, float(np.nanmin(numbers)), float(np.nanmax(numbers)))
    top.set_ylabel("Employment rate (%)")
    top.set_title("\n".join([*textwrap.wrap(title, 80), *textwrap.wrap(subtitle, 100)]), fontsize=8.5,
                  loc="left")
    top.legend(fontsize=7, frameon=False, loc="lower left")
    gap = mine["gap"]
    if single:
        yerr = None if mine["gap_low"].isna().all() else [gap - mine["gap_low"], mine["gap_high"] - gap]
        bottom.errorbar(x, gap, yerr=yerr, fmt="D", color=SERIES_COLOURS[2], capsize=4, markersize=5)
        g = mine.iloc[0]
        if not _missing(g["gap"]):
            words = f"{g['gap']:.1f}" + ("" if _missing(g["gap_low"]) else
                                         f" ({g['gap_low']:.1f} to {g['gap_high']:.1f}): "
                                         + ("a real difference" if _real(g["gap_real"]) == "yes"
                                            else "not clearly a difference"))
            bottom.annotate(words, (0, g["gap"]), xytext=(9, 0), textcoords="offset points", ha="left",
                            va="center", fontsize=7, color=SERIES_COLOURS[2])
    else:
        bottom.plot(x, gap, color=SERIES_COLOURS[2], marker="D", markersize=2 if small else 3.5,
                    linewidth=1.2)
        if mine["gap_low"].notna().any():
            bottom.fill_between(x, mine["gap_low"], mine["gap_high"], color=SERIES_COLOURS[2], alpha=0.22,
                                linewidth=0)
    gaps = mine[["gap", "gap_low", "gap_high"]].to_numpy(dtype=float)
    _honest(bottom, float(np.nanmin(gaps)), float(np.nanmax(gaps)))
    bottom.axhline(0, color="#999999", linewidth=0.8)
    bottom.set_ylabel("Points")
    bottom.set_title("\n".join(textwrap.wrap(f"Gap with {bname} (points)", 90)), fontsize=8, loc="left")
    shown = _shown_ticks(ids)
    rotate = len(shown) > 3
    bottom.set_xticks([x[i] for i in shown], [labels[i] for i in shown], rotation=30 if rotate else 0,
                      ha="right" if rotate else "center", fontsize=7)
    if single:
        bottom.set_xlim(-0.6, 0.6)
    for axis in (top, bottom):
        axis.grid(axis="y", color="#e0e0e0", linewidth=0.6)
        axis.spines[["top", "right"]].set_visible(False)
    _footer(fig, [*footer, *chart_notes(table, partnership)], None if _sub(fig) else FOOTER_PT)
    return fig


def _by_period(rows: pd.DataFrame, ids: list[str]) -> pd.DataFrame:
    """``rows`` indexed by period id, one row per id of ``ids`` (empty where it has none)."""
    return rows.assign(period_id=rows["period_id"].astype(str)).set_index("period_id").reindex(ids)


def _sub(fig: FigureBase) -> bool:
    """Whether ``fig`` is part of a report page (its footer is laid out by the page)."""
    from matplotlib.figure import SubFigure

    return isinstance(fig, SubFigure)


# -- figure 4.2 ----------------------------------------------------------------------------------

def latest_period(table: pd.DataFrame) -> str:
    """The table's latest period id."""
    ids, _ = _periods(table)
    if not ids:
        raise NotFoundError("the survey table has no periods")
    return ids[-1]


def partnerships_in_period(table: pd.DataFrame, period: str) -> pd.DataFrame:
    """Figure 4.2's rows: the partnerships in ``period``, lowest rate first (drawn bottom up,
    so the highest is at the top), then the benchmark's row."""
    parts = table[(table["group_kind"] == "partnership") & (table["period_id"].astype(str) == period)]
    bench = table[(table["group_kind"] == "benchmark") & (table["period_id"].astype(str) == period)]
    return pd.concat([parts.sort_values(["rate", "name"], kind="stable"), bench], ignore_index=True)


def employment_partnerships_chart(table: pd.DataFrame, period: str | None = None, *,
                                  highlight: tuple[str, ...] | list[str] = (), title: str | None = None,
                                  source: str = "", size: tuple[float, float] | None = None,
                                  fig: FigureBase | None = None) -> FigureBase:
    """Figure 4.2 from an :func:`~geo_cs.survey.employment_rates` table: each partnership's rate
    in ``period`` (default the latest) as a bar with its 95% interval, sorted by rate, against
    the benchmark (dashed line, its interval shaded). A filled bar's gap with the benchmark is
    real, a hollow one's is not, a hatched one has no interval; ``highlight``: partnerships
    drawn in another colour (the report's own)."""
    period = period or latest_period(table)
    ids, labels = _periods(table)
    if period not in ids:
        raise NotFoundError(f"period {period} not in the survey table; valid: {', '.join(ids)}")
    label = labels[ids.index(period)]
    rows = partnerships_in_period(table, period)
    parts = rows[rows["group_kind"] == "partnership"].reset_index(drop=True)
    bench = rows[rows["group_kind"] == "benchmark"]
    bname = benchmark_name(table)
    n = len(parts)
    fig = _canvas(size or (6.4, 2.9 + 0.27 * max(n, 1)), fig)
    title = title or f"Employment rate by partnership, {label} (Annual Population Survey)"
    footer = [source] if source else []
    if parts.empty:
        _empty(fig, title, "No partnership's districts are in this file, so there is nothing to compare.", 8)
        _footer(fig, footer, None if _sub(fig) else FOOTER_PT)
        return fig
    ax = fig.subplots()
    y = np.arange(n)
    highlight = set(highlight)
    kinds: set[str] = set()
    top = float(np.nanmax(parts[["rate", "rate_high"]].to_numpy(dtype=float)))
    for i, r in parts.iterrows():
        colour = HIGHLIGHT_COLOUR if r["group"] in highlight else PARTNERSHIP_COLOUR
        verdict = _real(r["gap_real"])
        kinds.add(verdict)
        face = colour if verdict == "yes" else "white"
        ax.barh(i, r["rate"], height=0.62, color=face, edgecolor=colour, linewidth=1.1,
                hatch="////" if verdict == NO_INTERVAL else None)
        if not _missing(r["half_width"]):
            ax.errorbar(r["rate"], i, xerr=r["half_width"], color="#222222", capsize=2.5, linewidth=0.9)
        # the figure inside the bar's foot: clear of the whiskers and the benchmark's line
        ax.text(0.012 * top, i, f"{r['rate']:.1f}%", va="center", ha="left", fontsize=6.5,
                fontweight="bold" if r["group"] in highlight else "normal",
                bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.8})
    handles: list = []
    if not bench.empty:
        b = bench.iloc[0]
        if not _missing(b["half_width"]):
            ax.axvspan(b["rate_low"], b["rate_high"], color="#999999", alpha=0.25, linewidth=0)
        ax.axvline(b["rate"], color=BENCHMARK_COLOUR, linestyle="--", linewidth=1)
        words = f"{bname}: {b['rate']:.1f}%"
        if not _missing(b["half_width"]):
            words += f" (95% interval {b['rate_low']:.1f}% to {b['rate_high']:.1f}%)"
        short = "\n".join(textwrap.wrap(words, 80))
        handles.append(Line2D([], [], color=BENCHMARK_COLOUR, linestyle="--", label=short))
    against = "the benchmark" if len(bname) > 30 else bname
    legend_words = {
        "yes": (PARTNERSHIP_COLOUR, None,
                f"Filled bar: a real difference from {against} (the 95% interval of the gap leaves out "
                "zero)"),
        "no": ("white", None,
               f"Hollow bar: not clearly different from {against} (the gap's 95% interval includes zero)"),
        NO_INTERVAL: ("white", "////", f"Hatched bar: {NO_INTERVAL}, so no telling whether the gap is real"),
    }
    for verdict in ("yes", "no", NO_INTERVAL):
        if verdict in kinds:
            face, hatch, words = legend_words[verdict]
            handles.append(Patch(facecolor=face, edgecolor=PARTNERSHIP_COLOUR, hatch=hatch,
                                 label="\n".join(textwrap.wrap(words, 80))))
    if parts["half_width"].notna().any():
        handles.append(Line2D([], [], color="#222222", marker="|", markersize=6, linewidth=0.9,
                              label="Whiskers: the partnership's 95% interval"))
    chosen = [str(nm) for g, nm in zip(parts["group"], parts["name"], strict=True) if g in highlight]
    if chosen:
        handles.append(Patch(facecolor=HIGHLIGHT_COLOUR, edgecolor=HIGHLIGHT_COLOUR,
                             label="\n".join(textwrap.wrap(f"In colour: {', '.join(chosen)}", 80))))
    ax.set_yticks(y, ["\n".join(textwrap.wrap(str(nm), 34)) for nm in parts["name"]], fontsize=6.5)
    for tick, group in zip(ax.get_yticklabels(), parts["group"], strict=True):
        if group in highlight:
            tick.set_fontweight("bold")
    ax.set_ylim(-0.6, n - 0.4)
    ax.set_xlim(0, max(top, float(bench["rate"].max()) if not bench.empty else top) * 1.12)
    ax.set_xlabel("Employment rate (%)")
    # across the whole chart, not over the axes only (the names take the left third)
    fig.suptitle("\n".join(textwrap.wrap(title, 90)), x=0.02, ha="left", fontsize=9)
    ax.grid(axis="x", color="#e0e0e0", linewidth=0.6)
    ax.set_axisbelow(True)
    ax.spines[["top", "right"]].set_visible(False)
    # below the x axis's label (its ticks and label take some 36 points), laid out with the axes
    below = offset_copy(ax.transAxes, fig=fig, y=-38, units="points")
    ax.legend(handles=handles, fontsize=6.5, frameon=False, loc="upper left", bbox_to_anchor=(0.0, 0.0),
              bbox_transform=below, borderaxespad=0.0)
    _footer(fig, [*footer, *chart_notes(table[table["period_id"].astype(str) == period])],
            None if _sub(fig) else FOOTER_PT)
    return fig


# -- the files of geo-cs export charts -----------------------------------------------------------

def _about(table: pd.DataFrame, source: str, figure: str, partnership: str | None = None) -> dict[str, str]:
    notes = chart_notes(table, partnership, limit=50)
    return {"figure": figure, "source": source.removeprefix("Source: ").removesuffix("."),
            "attribution": OGL_ATTRIBUTION, **({"notes": " ".join(notes)} if notes else {})}


def series_rows(table: pd.DataFrame, partnership: str) -> pd.DataFrame:
    """Figure 4.1's rows: the partnership's and the benchmark's, in period order."""
    rows = table[((table["group_kind"] == "partnership") & (table["group"] == partnership))
                 | (table["group_kind"] == "benchmark")]
    return rows.reset_index(drop=True)


def survey_charts(store: Store, partnerships: list[str], out_dir: str | Path, *,
                  formats: tuple[str, ...] = CHART_FORMATS, set_ids: list[str] | None = None,
                  period: str | None = None, indicator: str = DEFAULT_INDICATOR,
                  disclosure: DisclosureControl | None = None,
                  ) -> tuple[list[Path], list[str]]:
    """Figures 4.1 (each of ``partnerships``) and 4.2 (every partnership the file covers, the
    chosen ones in colour) for each district edition of the survey held (``set_ids``: only
    these), each as ``formats`` with the CSV behind it, in ``out_dir``:

    * ``fig4_1_employment_rate_<partnership>_<set>.{png,svg,pdf,csv}``
    * ``fig4_2_employment_rate_partnerships_<set>_<period>.{png,svg,pdf,csv}``

    Returns the files written and notes on what was not drawn (a partnership whose districts
    the edition does not hold). An edition that holds none of ``partnerships`` is skipped
    unless asked for by ``set_ids``."""
    held = survey_sets(store, indicator)
    if not held:
        raise NotFoundError(f"no survey estimates of {indicator!r} in the store: ingest a Nomis download of "
                            "the Annual Population Survey (geo-cs ingest indicator FILE)")
    chosen_sets = list(set_ids) if set_ids else held
    unknown = [s for s in chosen_sets if s not in held]
    if unknown:
        raise NotFoundError(f"no survey estimates of {indicator} on {', '.join(unknown)}; held on: "
                            f"{', '.join(held)}")
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"{out}: cannot create the output folder ({exc.strerror})") from exc
    written: list[Path] = []
    notes: list[str] = []
    drawn: set[str] = set()
    tables = {set_id: employment_rates(store, indicator, set_id=set_id, disclosure=disclosure)
              for set_id in chosen_sets}
    periods_seen = {p for table in tables.values() for p in _periods(table)[0]}
    if period is not None and period not in periods_seen:   # before anything is written
        raise NotFoundError(f"period {period} not in the survey estimates on {', '.join(chosen_sets)}; "
                            f"valid: {', '.join(sorted(periods_seen))}")
    for set_id, table in tables.items():
        ids, _ = _periods(table)
        covered = set(table.loc[table["group_kind"] == "partnership", "group"])
        mine = [p for p in partnerships if p in covered]
        if not mine and not set_ids:
            continue
        for p in mine:
            rows = series_rows(table, p)
            source = survey_source_line(store, set_id, indicator)
            stem = out / f"fig4_1_employment_rate_{p}_{set_id}"
            write_csv(rows, stem.with_suffix(".csv"), _about(table, source, "4.1", p))
            chart = employment_series_chart(table, p, source=source)
            written += [stem.with_suffix(".csv"), *save_chart(chart, stem, formats)]
            drawn.add(p)
        if period is not None and period not in ids:
            continue
        when = period or latest_period(table)
        source = survey_source_line(store, set_id, indicator, [when])
        stem = out / f"fig4_2_employment_rate_partnerships_{set_id}_{when}"
        write_csv(partnerships_in_period(table, when), stem.with_suffix(".csv"),
                  _about(table[table["period_id"].astype(str) == when], source, "4.2"))
        chart = employment_partnerships_chart(table, when, highlight=mine, source=source)
        written += [stem.with_suffix(".csv"), *save_chart(chart, stem, formats)]
    for p in partnerships:
        if p not in drawn:
            notes.append(f"{p}: no survey employment rate (figure 4.1): none of the district editions "
                         f"held ({', '.join(chosen_sets)}) has its districts")
    return written, notes


# -- the report's section -------------------------------------------------------------------------

def _edition_words(table: pd.DataFrame, files: list[str]) -> str:
    _, labels = _periods(table)
    span = _period_span(labels)
    return f"{span} ({', '.join(files)})" if files else span


def _sentence(rows: pd.DataFrame, bname: str, age: str) -> str:
    """The latest period in words: the rate, the benchmark's, the gap and whether it is real."""
    last = rows.iloc[-1]
    what = f"employment rate ({age})" if age else "employment rate"
    line = f"In {last['period_label']}, the {what} of {last['name']} was {_pct(last['rate'])}"
    if not _missing(last["half_width"]):
        line += f" (95% interval {_interval(last['rate_low'], last['rate_high'])})"
    line += f", against {_pct(last['benchmark_rate'])} for {bname}: a gap of {last['gap']:.1f} points"
    verdict = _real(last["gap_real"])
    if verdict == "yes":
        line += (f" (95% interval {_interval(last['gap_low'], last['gap_high'], '')}), a real difference: "
                 "its interval leaves out zero.")
    elif verdict == "no":
        line += (f" (95% interval {_interval(last['gap_low'], last['gap_high'], '')}), not clearly a "
                 "difference: its interval includes zero.")
    else:
        line += f"; {NO_INTERVAL}, so this file cannot tell whether the gap is real."
    return line


#: A table's cell where the file publishes no interval (the note under the table says so).
NOT_PUBLISHED = "not published"


def _table(rows: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """The section's table (as text) and the note under it: what an empty interval means, and
    that only the calendar years are shown of a long series."""
    notes = []
    if len(rows) > 12:
        years = rows[rows["period_id"].astype(str).str.endswith("y12")]
        if len(years):
            notes.append(f"Calendar years (Jan-Dec) only: {len(years)} of the {len(rows)} rolling years; "
                         "every one is in the CSV behind figure 4.1 (geo-cs export charts).")
            rows = years
    if rows["half_width"].isna().any() or rows["gap_low"].isna().any():
        notes.insert(0, f"{NOT_PUBLISHED[0].upper()}{NOT_PUBLISHED[1:]}: {NO_INTERVAL} by the file, so "
                        "whether the gap is real cannot be told.")

    def interval(low, high, unit: str = "%") -> str:
        words = _interval(low, high, unit)
        return NOT_PUBLISHED if words == NO_INTERVAL else words

    frame = pd.DataFrame({
        "Period": rows["period_label"].astype(str),
        "Rate": rows["rate"].map(_pct),
        "95% interval": [interval(lo, hi) for lo, hi in zip(rows["rate_low"], rows["rate_high"],
                                                            strict=True)],
        "Benchmark\nrate": rows["benchmark_rate"].map(_pct),
        "Gap\n(points)": rows["gap"].map(lambda v: "" if _missing(v) else f"{v:.1f}"),
        "Gap's 95%\ninterval": [interval(lo, hi, "") for lo, hi in zip(rows["gap_low"], rows["gap_high"],
                                                                       strict=True)],
        "Real\ndifference?": [NOT_PUBLISHED if v == NO_INTERVAL else v for v in rows["gap_real"].map(_real)],
    })
    return frame.reset_index(drop=True), " ".join(notes)


def _series_alt(rows: pd.DataFrame, bname: str) -> str:
    first, last = rows.iloc[0], rows.iloc[-1]
    name = last["name"]
    if len(rows) == 1:
        return (f"Chart of {name}'s employment rate in {last['period_label']}, {_pct(last['rate'])} "
                f"({_interval(last['rate_low'], last['rate_high'])}), as a point with whiskers beside "
                f"{bname}'s {_pct(last['benchmark_rate'])}; below, the gap of {last['gap']:.1f} points "
                f"({_interval(last['gap_low'], last['gap_high'], ' points')}).")
    band = ("with 95% intervals shaded" if rows["half_width"].notna().any() else
            f"with {NO_INTERVAL}, so no band")
    return (f"Line chart in two panels. Top: {name}'s employment rate went from {_pct(first['rate'])} in "
            f"{first['period_label']} to {_pct(last['rate'])} in {last['period_label']}, against "
            f"{bname}'s {_pct(first['benchmark_rate'])} and {_pct(last['benchmark_rate'])} (dashed), "
            f"{band}. Bottom: the gap with {bname}, {first['gap']:.1f} then {last['gap']:.1f} points.")


def _partnerships_alt(table: pd.DataFrame, period: str, name: str, bname: str) -> str:
    rows = partnerships_in_period(table, period)
    parts = rows[rows["group_kind"] == "partnership"]
    bench = rows[rows["group_kind"] == "benchmark"]
    label = parts["period_label"].iloc[0] if len(parts) else period
    order = list(parts["name"])[::-1]
    place = (f"{name} is {order.index(name) + 1} of {len(order)}" if name in order else
             f"{name} is not among them")
    real = int(parts["gap_real"].map(_real).eq("yes").sum())
    at = _pct(bench["rate"].iloc[0] if len(bench) else None)
    return (f"Bar chart of the employment rate of {len(parts)} partnerships in {label}, highest first, "
            f"from {_pct(parts['rate'].max())} to {_pct(parts['rate'].min())}, with 95% intervals as "
            f"whiskers where published, against {bname} at {at} "
            f"(dashed line). {place}. {real} of them differ from it by more than the intervals allow "
            "(filled bars); hollow bars do not, hatched ones have no interval.")


def _notes_in_words(table: pd.DataFrame, partnership: str) -> list[str]:
    """The section's notes: the partnership's districts marked unreliable or missing, the
    benchmark's coverage, derived denominators, and what the table says of the partnership."""
    mine = table[(table["group_kind"] == "partnership") & (table["group"] == partnership)]
    bench = table[table["group_kind"] == "benchmark"]
    bname = benchmark_name(table)
    out: list[str] = []
    for note in dict.fromkeys(n for n in mine["note"].fillna("") if n):
        for piece in str(note).split("; "):
            if piece and not piece.startswith("denominators derived"):
                line = f"{mine['name'].iloc[0]}: {piece}."
                if line not in out:
                    out.append(line)
    last = bench.iloc[-1] if not bench.empty else None
    if last is not None and (last["missing"] or last["unreliable"]
                             or last["districts_in_figure"] != last["districts"]):
        cover = (f"{bname}, in {last['period_label']}: made from the {int(last['districts_in_figure'])} of "
                 f"the file's {int(last['districts'])} districts that have a figure")
        if last["missing"]:
            cover += f" (left out: {last['missing']})"
        if last["unreliable"]:
            cover += ("; marked unreliable (survey sample of 3 to 9), in its rate but not in its interval: "
                      f"{last['unreliable']}")
        out.append(cover + ".")
    for note in table.attrs.get("notes", []):
        if note.startswith("the file holds") or note.startswith(f"{partnership}:"):
            text = note.removeprefix(f"{partnership}: ")
            out.append(text[0].upper() + text[1:] + ".")
    if mine["note"].fillna("").str.contains("denominators derived").any():
        out.append("The file publishes no denominators: each district's was derived as its numerator ÷ its "
                   "rate × 100. The published rates are rounded, so these denominators, and the weights "
                   "built from them, are approximate.")
    return out


def survey_report_blocks(store: Store, partnership: str, *, indicator: str = DEFAULT_INDICATOR,
                         tables: dict[str, pd.DataFrame] | None = None,
                         disclosure: DisclosureControl | None = None) -> list[Block]:
    """The report's section "Employment rate (Annual Population Survey)" for ``partnership``:
    per district edition held that covers it, the latest figure in words, figure 4.1, a table
    (period, rate, interval, the benchmark's rate, the gap and its interval, whether it is real)
    and figure 4.2; then the notes and the method in words. ``[]`` when the store holds no
    survey estimates. ``tables``: :func:`~geo_cs.survey.employment_rates` tables by edition,
    when already made (a batch of reports)."""
    sets = survey_sets(store, indicator)
    if not sets:
        return []
    label = store.sql("SELECT any_value(label) FROM indicators WHERE indicator_id = ?",
                      [indicator]).fetchone()
    age = str(label[0]).split(" - ", 1)[1] if label and label[0] and " - " in str(label[0]) else ""
    blocks: list[Block] = [Heading(SECTION_TITLE)]
    sentences: list[str] = []
    parts: list[Block] = []
    notes: list[str] = []
    why: list[str] = []
    for set_id in sets:
        table = (tables or {}).get(set_id)
        if table is None:
            table = employment_rates(store, indicator, set_id=set_id, disclosure=disclosure)
        rows = table[(table["group_kind"] == "partnership") & (table["group"] == partnership)]
        if rows.empty:
            why += [n.removeprefix(f"{partnership}: ") for n in table.attrs.get("notes", [])
                    if n.startswith(f"{partnership}:")]
            continue
        bname = benchmark_name(table)
        files = survey_files(store, set_id, indicator)
        source = survey_source_line(store, set_id, indicator)
        edition = _edition_words(table, files)
        name = str(rows["name"].iloc[0])
        sentences.append(_sentence(rows, bname, age))
        parts.append(Heading(edition, 2))
        single = rows["period_id"].nunique() == 1
        parts.append(FigureBlock(
            f"Figure 4.1: {name}'s employment rate against {bname}, {_period_span(_periods(table)[1])}",
            _series_alt(rows, bname),
            lambda fig, t=table, s=source: employment_series_chart(t, partnership, source=s, fig=fig),
            height=3.9 if single else 4.6, min_height=3.2, size=(6.4, 5.0 if single else 5.4)))
        frame, note = _table(rows)
        parts.append(TableBlock(f"{name}: employment rate and the gap with {bname} (points)", frame))
        if note:   # a paragraph of its own: it wraps in every format
            parts.append(Paragraph(note, "note"))
        when = latest_period(table)
        when_label = _periods(table)[1][-1]
        n_parts = int((table["group_kind"].eq("partnership") & table["period_id"].astype(str).eq(when)).sum())
        height = 2.9 + 0.27 * n_parts
        parts.append(FigureBlock(
            f"Figure 4.2: the partnerships' employment rates in {when_label}, against {bname}",
            _partnerships_alt(table, when, name, bname),
            lambda fig, t=table, s=source, w=when: employment_partnerships_chart(
                t, w, highlight=[partnership], source=s, fig=fig),
            height=min(height, 7.0), min_height=min(height, 4.5), size=(6.4, height)))
        where = f"{', '.join(files)}: " if files and len(sets) > 1 else ""
        notes += [f"{where}{n}" for n in _notes_in_words(table, partnership) if f"{where}{n}" not in notes]
    if not sentences:
        reason = "; ".join(dict.fromkeys(why)) or "none of the survey files held covers its districts"
        blocks.append(Paragraph(f"No survey employment rate for this partnership: {reason}."))
        return blocks
    blocks.append(Bullets(sentences))
    blocks += parts
    blocks.append(Heading("Notes on the survey figures", 2))
    blocks.append(Bullets(notes or ["None."]))
    blocks.append(Paragraph(METHOD, "note"))
    return blocks
