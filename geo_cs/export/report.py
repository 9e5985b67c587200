"""A partnership profile as PDF and HTML: map, charts, tables, the cohort, method and caveats.

:func:`partnership_profile` gathers the figures once (:class:`Profile`); :func:`write_pdf` lays
them out as A4 pages with matplotlib, :func:`write_html` as one self-contained page (charts and
map inline as SVG, no external assets).

Example
-------
>>> profile = partnership_profile(store, "glasgow")          # doctest: +SKIP
>>> write_pdf(profile, "glasgow.pdf"); write_html(profile, "glasgow.html")   # doctest: +SKIP
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import jinja2
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure

from geo_cs.demo import OGL_ATTRIBUTION
from geo_cs.disclosure import DisclosureControl
from geo_cs.errors import GeoCsError, InputError
from geo_cs.export.charts import figure_svg, gap_chart, index_chart, rate_gap_chart
from geo_cs.export.maps import partnership_map
from geo_cs.store import Store

A4 = (8.27, 11.69)

METHOD_NOTES = [
    "Rates are the sum of counts over the sum of denominators of the areas (never a mean of "
    "rates), with 95% Wilson intervals; gaps and changes carry Newcombe intervals.",
    "Worst-performing neighbourhoods (NI 153): areas whose mean rate over the baseline periods "
    "exceeds the threshold; the cohort is fixed at the baseline and followed thereafter.",
    "A change is reported as closed or widened only when it exceeds the tolerance and its interval "
    "excludes zero; otherwise it is unchanged, and flagged when noise is the reason.",
    "DWP rounds published counts (to 5 or 10): summing n rounded counts adds an error of about "
    "step × sqrt(n/12), reported as rounding_sd in the tables behind the charts.",
    "Values carried across boundary changes (crosswalks from official lookups, split by "
    "population or area) are estimates: the map hatches them and tables give the estimated share.",
]


@dataclass
class Profile:
    """Everything a partnership profile shows, gathered once for both formats."""

    partnership: str
    name: str
    definition: list[str]
    map_figure: Figure
    charts: list[tuple[str, Figure]]
    tables: list[tuple[str, pd.DataFrame]]
    cohort: pd.DataFrame
    sources: pd.DataFrame
    caveats: list[str] = field(default_factory=list)
    generated: str = field(default_factory=lambda: date.today().isoformat())


def _fmt(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    for column in out.columns:
        if pd.api.types.is_float_dtype(out[column]):
            out[column] = out[column].map(lambda v: "" if pd.isna(v) else f"{v:,.1f}")
    return out


def partnership_profile(store: Store, partnership: str, *, geography: str | None = None,
                        indicator: str | None = None, denominator: str | None = None,
                        disclosure: DisclosureControl | None = None) -> Profile:
    """Gather the profile of one partnership from the store (every figure under ``disclosure``
    control when given)."""
    from geo_cs.analysis import partnership_rates
    from geo_cs.layers import measure_panel, partnership_gap, resolve_measure, store_view
    from geo_cs.partnerships import get_partnerships, resolve

    found = get_partnerships([partnership])[0]
    final = found.phase_at(None)
    definition = [f"{p.name}, {p.start:%B %Y} to {p.end:%B %Y}: {len(p.members)} members of "
                  f"{found.member_set} ({', '.join(p.members)})" for p in found.phases]
    definition.append(f"Nations: {', '.join(found.nations)}; kind: {found.kind}; definition "
                      f"confidence: {found.confidence}. {found.note}".strip())
    caveats: list[str] = [disclosure.note] if disclosure else []
    view = store_view(store, partnership, geography, indicator, denominator)
    small = resolve_measure(store, *view)
    map_figure = partnership_map(store, partnership, geography=view[0], indicator=view[1],
                                 denominator=view[2], disclosure=disclosure)
    charts: list[tuple[str, Figure]] = []
    tables: list[tuple[str, pd.DataFrame]] = []
    cohort = pd.DataFrame()
    if small.is_rate:
        gap = partnership_gap(store, small, partnership, disclosure=disclosure)
        charts.append(("Figure 4.7: worst-performing neighbourhoods and the rest of the partnership",
                       gap_chart(gap, f"{final.name}: {small.label} ({view[0]})", size=(6.4, 4.6))))
        columns = ["period_label", "cohort_rate", "rest_rate", "gap", "gap_low", "gap_high", "n_cohort",
                   "n_rest", "cohort_share"]
        tables.append((f"Worst-performing neighbourhoods and the rest ({small.label}, {view[0]}, %)",
                       _fmt(gap[columns].assign(cohort_share=gap["cohort_share"] * 100))))
        if gap["cohort_small"].fillna(False).any() or gap["rest_small"].fillna(False).any():
            caveats.append("Some figures rest on small numbers (flagged 'small' in the CSV): read "
                           "their changes with their intervals.")
        estimated = gap[["cohort_estimated_share", "rest_estimated_share"]].max(axis=1)
        for label, share in zip(gap["period_label"], estimated, strict=True):
            if share and share > 0:
                caveats.append(f"{label}: up to {share:.0%} of the counts were estimated through a "
                               "boundary change (hatched on the map).")
        from geo_cs.layers import area_values

        values = area_values(store, small, disclosure=disclosure)
        codes = resolve(store, found, view[0]).codes
        base = values.frame[(values.frame["period_id"] == values.period_ids[0])
                            & values.frame["code"].isin(codes) & values.frame["worst"].fillna(False)]
        names = store.sql("SELECT code, name FROM areas WHERE set_id = ? AND list_contains(?, code)",
                          [view[0], base["code"].tolist()]).df()
        cohort = (base.merge(names, on="code")[["code", "name", "baseline_value"]]
                  .sort_values("baseline_value", ascending=False)
                  .rename(columns={"baseline_value": "baseline rate (%)"}))
    try:
        series = resolve_measure(store, "wpc2010", "claimants")
        panel = measure_panel(store, series)
        try:
            rates = partnership_rates(store, panel, [found])
        finally:
            panel.drop()
        if disclosure is not None:
            rates = disclosure.rate_table(rates)
        if not rates.empty:
            named = rates.assign(partnership=final.name)
            named.attrs["notes"] = rates.attrs.get("notes", [])
            charts.insert(0, ("Figures 4.5-4.6: out-of-work benefit rate and the gap with Great Britain",
                              rate_gap_chart(named, f"{final.name}: {series.label} (constituencies)")))
            charts.insert(0, ("Figures 4.3-4.4: index of the number of claimants",
                              index_chart(named, f"{final.name}: {series.label}, index")))
            tables.insert(0, ("Out-of-work benefit rate and gap with Great Britain (%)", _fmt(rates[[
                "period_label", "rate", "rate_low", "rate_high", "reference_rate", "gap", "index"]])))
        caveats += [n for n in rates.attrs.get("notes", []) if n not in caveats]
    except GeoCsError as exc:
        caveats.append(f"No out-of-work benefit series on constituencies: {exc}")
    sources = store.sql(
        """
        SELECT i.indicator_id AS indicator, i.label, i.source_title AS source, i.publisher, i.licence,
               string_agg(DISTINCT o.period_id, ', ' ORDER BY o.period_id) AS periods
        FROM indicators i JOIN observations o USING (indicator_id, set_id)
        WHERE list_contains(?, i.indicator_id) AND i.set_id = ?
        GROUP BY ALL ORDER BY 1
        """, [list(small.indicators), view[0]]).df()
    return Profile(partnership, final.name, definition, map_figure, charts, tables, cohort, sources,
                   caveats)


# -- PDF --------------------------------------------------------------------------------------

def _text_page(title: str, blocks: list[tuple[str, list[str]]], footer: str) -> Figure:
    fig = plt.figure(figsize=A4)
    y = 0.95
    fig.text(0.07, y, title, fontsize=16, fontweight="bold", va="top")
    y -= 0.05
    for heading, lines in blocks:
        if y < 0.12:
            break
        fig.text(0.07, y, heading, fontsize=11, fontweight="bold", va="top")
        y -= 0.028
        for line in lines:
            for wrapped in textwrap.wrap(line, 100) or [""]:
                fig.text(0.08, y, wrapped, fontsize=8, va="top")
                y -= 0.018
            y -= 0.004
        y -= 0.012
    fig.text(0.07, 0.03, footer, fontsize=6, color="#444444", wrap=True)
    return fig


def _table_page(title: str, frame: pd.DataFrame, footer: str) -> Figure:
    fig = plt.figure(figsize=A4)
    fig.text(0.07, 0.95, title, fontsize=11, fontweight="bold", va="top")
    ax = fig.add_axes((0.05, 0.1, 0.9, 0.8))
    ax.set_axis_off()
    shown = frame.head(40).astype(str)
    table = ax.table(cellText=shown.to_numpy(), colLabels=[c.replace("_", " ") for c in shown.columns],
                     loc="upper center", cellLoc="right")
    table.auto_set_font_size(False)
    table.set_fontsize(6.5)
    table.scale(1, 1.25)
    if len(frame) > 40:
        fig.text(0.07, 0.07, f"… and {len(frame) - 40} more rows (see the CSV exports)", fontsize=7)
    fig.text(0.07, 0.03, footer, fontsize=6, color="#444444", wrap=True)
    return fig


def write_pdf(profile: Profile, path: str | Path) -> Path:
    """The profile as an A4 PDF: cover and method, map, charts, tables, cohort."""
    path = Path(path)
    footer = f"geo-cs partnership profile, {profile.generated}. {OGL_ATTRIBUTION}"
    cover = _text_page(f"{profile.name}: partnership profile", [
        ("Definition", profile.definition),
        ("Data", [f"{r.indicator}: {r.label} — {r.source or ''} ({r.publisher or ''}, {r.licence or ''}); "
                  f"periods {r.periods}" for r in profile.sources.itertuples()]),
        ("Method", METHOD_NOTES),
        ("Caveats", profile.caveats or ["None found."]),
    ], footer)
    pages = [cover, profile.map_figure, *(fig for _, fig in profile.charts)]
    pages += [_table_page(title, frame, footer) for title, frame in profile.tables]
    if not profile.cohort.empty:
        title = f"The worst-performing neighbourhoods at the baseline ({len(profile.cohort)})"
        pages.append(_table_page(title, _fmt(profile.cohort), footer))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        metadata = {"Title": f"{profile.name}: partnership profile", "Creator": "geo-cs"}
        with PdfPages(path, metadata=metadata) as pdf:
            for page in pages:
                pdf.savefig(page)
    except OSError as exc:
        raise InputError(f"{path}: cannot write the report ({exc.strerror})") from exc
    return path


# -- HTML -------------------------------------------------------------------------------------

_HTML = jinja2.Environment(autoescape=True).from_string("""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy"
      content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<title>{{ p.name }}: partnership profile</title>
<style>
body { font-family: system-ui, Arial, sans-serif; max-width: 980px; margin: 2em auto; color: #222; }
table { border-collapse: collapse; font-size: 13px; margin: 1em 0; }
td, th { border-bottom: 1px solid #ddd; padding: 3px 8px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
figure { margin: 1.5em 0; } figure svg { max-width: 100%; height: auto; }
.attribution { font-size: 12px; color: #555; }
</style></head><body>
<h1>{{ p.name }}: partnership profile</h1>
<p>Generated {{ p.generated }} by geo-cs.</p>
<h2>Definition</h2><ul>{% for line in p.definition %}<li>{{ line }}</li>{% endfor %}</ul>
<h2>Map</h2><figure>{{ map_svg|safe }}</figure>
{% for title, svg in charts %}<h2>{{ title }}</h2><figure>{{ svg|safe }}</figure>{% endfor %}
{% for title, table in tables %}<h2>{{ title }}</h2>{{ table|safe }}{% endfor %}
{% if cohort %}<h2>The worst-performing neighbourhoods at the baseline</h2>{{ cohort|safe }}{% endif %}
<h2>Data</h2><ul>{% for r in p.sources.itertuples() %}<li>{{ r.indicator }}: {{ r.label }} — {{ r.source }}
({{ r.publisher }}, {{ r.licence }}); periods {{ r.periods }}</li>{% endfor %}</ul>
<h2>Method</h2><ul>{% for line in notes %}<li>{{ line }}</li>{% endfor %}</ul>
<h2>Caveats</h2><ul>{% for line in p.caveats or ["None found."] %}<li>{{ line }}</li>{% endfor %}</ul>
<p class="attribution">{{ attribution }}</p>
</body></html>
""")


def write_html(profile: Profile, path: str | Path) -> Path:
    """The profile as one self-contained HTML page (figures inline as SVG)."""
    path = Path(path)
    html = _HTML.render(
        p=profile, map_svg=_svg_body(figure_svg(profile.map_figure)),
        charts=[(title, _svg_body(figure_svg(fig))) for title, fig in profile.charts],
        tables=[(title, frame.to_html(index=False, border=0)) for title, frame in profile.tables],
        cohort=_fmt(profile.cohort).to_html(index=False, border=0) if not profile.cohort.empty else "",
        notes=METHOD_NOTES, attribution=OGL_ATTRIBUTION)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(html, encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{path}: cannot write the report ({exc.strerror})") from exc
    return path


def _svg_body(svg: str) -> str:
    """An SVG document without its XML prolog and DOCTYPE, to sit inside HTML."""
    return svg[svg.index("<svg"):]
