"""A partnership profile as PDF, Word, OpenDocument and HTML: the answer in words, the map,
the charts and their tables, the employment rate from the Annual Population Survey (figures 4.1
and 4.2, when the store holds survey estimates: :mod:`geo_cs.export.survey_charts`), the
baseline cohort, method, data vintages and caveats.

:func:`partnership_profile` gathers the figures once (:class:`Profile`); :func:`profile_document`
arranges them as a :class:`~geo_cs.export.document.Document`, which
:mod:`geo_cs.export.document` writes in any of its formats (the PDF laid out on full A4 pages).
:func:`write_reports` writes several partnerships' reports, going on past a failure.

Example
-------
Dundee on the 2011 data zones, SIMD 2016 and 2020, from the demo bundle:

>>> import tempfile
>>> import textwrap
>>> from pathlib import Path
>>> from geo_cs.config import boundaries_dir
>>> from geo_cs.ingest import ingest_boundaries, ingest_indicator, ingest_lookup, load_spec
>>> demo = boundaries_dir() / "demo"
>>> store = Store.open(":memory:")
>>> _ = ingest_boundaries(store, [demo / "boundaries" / "datazone2011.parquet"])
>>> for lookup in ("lad_changes_2014_2025.csv", "dz11_iz11_lad20_scotland.csv"):
...     _ = ingest_lookup(store, demo / "lookups" / lookup)
>>> for edition in ("simd2016", "simd2020"):
...     path = demo / "indicators" / f"{edition}_scotland_dz11_indicators.csv"
...     _ = ingest_indicator(store, path, load_spec(edition))
>>> profile = partnership_profile(store, "dundee")
>>> print(textwrap.fill(profile.sentence, 96))
The gap between the 29 worst-performing neighbourhoods and the rest of Dundee narrowed from 18.0
to 14.6 points between SIMD 2016 (2014 data) and SIMD 2020 (2017 data) — a real change (95%
interval of the change -4.5 to -2.4 points). Threshold: a baseline rate above 25%; baseline:
SIMD 2016 (2014 data).
>>> folder = tempfile.TemporaryDirectory()
>>> path = write_docx(profile, Path(folder.name) / "dundee.docx")
>>> path.name, path.stat().st_size > 10_000
('dundee.docx', True)
>>> # the A4 PDF draws every page's maps and tables (several seconds): tests/test_export.py reads one
>>> write_pdf(profile, Path(folder.name) / "dundee.pdf")  # doctest: +SKIP
>>> store.close(); folder.cleanup()
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import pandas as pd
from matplotlib.figure import FigureBase

from geo_cs.attribution import OGL_ATTRIBUTION
from geo_cs.custom_areas import file_stem
from geo_cs.disclosure import DisclosureControl
from geo_cs.errors import GeoCsError
from geo_cs.export import check_formats
from geo_cs.export import document as docs
from geo_cs.export.charts import gap_chart, index_chart, rate_gap_chart
from geo_cs.export.document import Bullets, Document, FigureBlock, Heading, Paragraph, TableBlock
from geo_cs.export.maps import choropleth_figure, partnership_map_inputs
from geo_cs.export.survey_charts import survey_report_blocks
from geo_cs.progress import Progress, SilentProgress
from geo_cs.store import Store

A4 = docs.A4

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
    "Colours: the map's classes are ColorBrewer YlOrRd and the charts' lines Okabe-Ito colours "
    "with distinct markers, both told apart with any colour vision.",
]


@dataclass
class Chart:
    """A figure of the report: what it shows (caption), its description for readers who cannot
    see it (alt), and how to draw it, stand-alone (``None``) or into part of a page."""

    caption: str
    alt: str
    draw: Callable[[FigureBase | None], FigureBase]
    height: float = 4.4
    min_height: float = 3.2


@dataclass
class Profile:
    """Everything a partnership profile shows, gathered once for every format."""

    partnership: str
    name: str
    definition: list[str]
    map_chart: Chart
    charts: list[Chart]
    tables: list[tuple[str, pd.DataFrame]]
    cohort: pd.DataFrame
    sources: pd.DataFrame
    caveats: list[str] = field(default_factory=list)
    sentence: str = ""                    # the answer in words, as on the map
    key_figures: list[str] = field(default_factory=list)
    #: the section "Employment rate (Annual Population Survey)" (figures 4.1-4.2, its table,
    #: notes and method); empty when the store holds no survey estimates
    survey: list = field(default_factory=list)
    generated: str = field(default_factory=lambda: date.today().isoformat())
    #: the document laid out once for every format, so Word and OpenDocument share its pictures
    document: Document | None = field(default=None, repr=False, compare=False)


def _fmt(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    for column in out.columns:
        if pd.api.types.is_float_dtype(out[column]):
            out[column] = out[column].map(lambda v: "" if pd.isna(v) else f"{v:,.1f}")
    return out


def _pct(value: float) -> str:
    return "no figure" if pd.isna(value) else f"{value:.1f}%"


def _map_alt(name: str, inputs: dict, n_areas: int, geography_label: str) -> str:
    breaks, unit = inputs["breaks"], inputs["unit"]
    periods = " and ".join(p.label for p in inputs["panels"])
    low = min(float(p.areas["value"].min()) for p in inputs["panels"])
    return (f"Map of {name}'s {n_areas:,} areas ({geography_label}), one panel each for {periods}, coloured "
            f"in {len(breaks)} classes from light yellow (lowest, from {low:,.1f}{unit}) to dark red (up to "
            f"{breaks[-1]:,.1f}{unit}), the same classes in every panel. The worst-performing "
            "neighbourhoods are outlined in black, areas estimated through a boundary change are hatched, "
            "the partnership is outlined in blue and its districts dotted.")


def _gap_alt(gap: pd.DataFrame) -> str:
    first, last = gap.iloc[0], gap.iloc[-1]
    return (f"Line chart in two panels. Top: the rate of the worst-performing neighbourhoods went from "
            f"{_pct(first['cohort_rate'])} in {first['period_label']} to {_pct(last['cohort_rate'])} in "
            f"{last['period_label']}, and the rest of the partnership's from {_pct(first['rest_rate'])} to "
            f"{_pct(last['rest_rate'])}, with 95% intervals shaded. Bottom: the gap between them, "
            f"{first['gap']:.1f} then {last['gap']:.1f} points, with 95% intervals as error bars.")


def _rates_alt(rates: pd.DataFrame, name: str, what: str) -> str:
    first, last = rates.iloc[0], rates.iloc[-1]
    if what == "index":
        return (f"Line chart of the number of out-of-work benefit claimants in {name} as an index of "
                f"{first['period_label']} (= 100): {last['index']:.1f} in {last['period_label']} (95% "
                f"interval {last['index_low']:.1f} to {last['index_high']:.1f}).")
    return (f"Line chart in two panels. Top: {name}'s out-of-work benefit rate went from "
            f"{_pct(first['rate'])} in {first['period_label']} to {_pct(last['rate'])} in "
            f"{last['period_label']}, against Great Britain's {_pct(first['reference_rate'])} and "
            f"{_pct(last['reference_rate'])} (dashed). Bottom: the gap with Great Britain, "
            f"{first['gap']:.1f} then {last['gap']:.1f} points, with 95% intervals.")


_GAP_COLUMNS = {"period_label": "Period", "cohort_rate": "Worst\n(%)", "rest_rate": "Rest\n(%)",
                "gap": "Gap\n(points)", "gap_low": "Gap\nlow", "gap_high": "Gap\nhigh",
                "n_cohort": "Worst\nareas", "n_rest": "Other\nareas",
                "cohort_share": "Worst share\nof people (%)"}
_RATE_COLUMNS = {"period_label": "Period", "rate": "Rate (%)", "rate_low": "95% low", "rate_high": "95% high",
                 "reference_rate": "Great Britain (%)", "gap": "Gap (points)", "index": "Index"}


def partnership_profile(store: Store, partnership: str, *, geography: str | None = None,
                        indicator: str | None = None, denominator: str | None = None,
                        disclosure: DisclosureControl | None = None) -> Profile:
    """Gather the profile of one partnership from the store (every figure under ``disclosure``
    control when given)."""
    from geo_cs.analysis import MethodParams, partnership_rates
    from geo_cs.layers import (
        area_values,
        benchmarks,
        measure_panel,
        partnership_gap,
        resolve_measure,
        store_view,
    )
    from geo_cs.narrative import gap_sentence, threshold_hint
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
    inputs = partnership_map_inputs(store, partnership, geography=view[0], indicator=view[1],
                                    denominator=view[2], disclosure=disclosure)
    geography_label = store.sql("SELECT label FROM geography_sets WHERE set_id = ?", [view[0]]).fetchone()
    geography_label = geography_label[0] if geography_label else view[0]
    codes = resolve(store, found, view[0]).codes
    map_chart = Chart(
        f"{inputs['title']}: {', '.join(p.label for p in inputs['panels'])}",
        _map_alt(final.name, inputs, len(inputs["panels"][0].areas), geography_label),
        lambda fig: choropleth_figure(**inputs, fig=fig), height=7.2, min_height=5.2)
    charts: list[Chart] = []
    tables: list[tuple[str, pd.DataFrame]] = []
    cohort = pd.DataFrame()
    sentence, key_figures = "", []
    if small.is_rate:
        gap = partnership_gap(store, small, partnership, disclosure=disclosure)
        values = area_values(store, small, disclosure=disclosure)
        mine = values.frame[values.frame["code"].isin(codes)]
        params = MethodParams(threshold=values.threshold, baseline=values.baseline)
        hint = None
        if int(gap["n_cohort"].max() if len(gap) else 0) == 0:
            hint = threshold_hint(mine.drop_duplicates("code")["baseline_value"])
        sentence = gap_sentence(gap, final.name, params, hint)
        if not gap.empty:
            title = f"{final.name}: {small.label} ({view[0]})"
            charts.append(Chart("Figure 4.7: worst-performing neighbourhoods and the rest of the partnership",
                                _gap_alt(gap), lambda fig: gap_chart(gap, title, size=(6.4, 4.6), fig=fig)))
            tables.append((f"Worst-performing neighbourhoods and the rest ({small.label}, {view[0]})",
                           _fmt(gap[list(_GAP_COLUMNS)].assign(cohort_share=gap["cohort_share"] * 100))
                           .rename(columns=_GAP_COLUMNS)))
            last = gap.iloc[-1]
            bench = benchmarks(values)
            here = bench[bench["period_id"] == last["period_id"]]
            total = last["cohort_count"] + last["rest_count"]
            total_den = last["cohort_denominator"] + last["rest_denominator"]
            share = _pct(100 * total / total_den) if total_den else "no figure"
            # "13.3% for Glasgow (employment-deprived people)": the rate, not a share of a group
            measure = small.label.removesuffix(" (%)")
            line = (f"In {last['period_label']}, {share} for {final.name} "
                    f"({measure[0].lower()}{measure[1:]})")
            if not here.empty:
                line += "; " + ", ".join(f"{b.group} {_pct(b.rate)} (over the {int(b.n_areas):,} areas held)"
                                         for b in here.itertuples())
            key_figures.append(line + ".")
            key_figures.append(
                f"The {int(last['n_cohort']):,} worst-performing neighbourhoods (baseline "
                f"{', '.join(values.baseline)}, above {values.threshold:g}%): {_pct(last['cohort_rate'])} in "
                f"{last['period_label']}, against {_pct(last['rest_rate'])} in the rest of {final.name}; "
                "they "
                f"hold {last['cohort_share']:.0%} of its working-age people.")
        if gap["cohort_small"].fillna(False).any() or gap["rest_small"].fillna(False).any():
            caveats.append("Some figures rest on small numbers (flagged 'small' in the CSV): read "
                           "their changes with their intervals.")
        estimated = gap[["cohort_estimated_share", "rest_estimated_share"]].max(axis=1)
        for label, share in zip(gap["period_label"], estimated, strict=True):
            if share and share > 0:
                caveats.append(f"{label}: up to {share:.0%} of the counts were estimated through a "
                               "boundary change (hatched on the map).")
        base = mine[(mine["period_id"] == values.period_ids[0]) & mine["worst"].fillna(False)]
        names = store.sql("SELECT code, name FROM areas WHERE set_id = ? AND list_contains(?, code)",
                          [view[0], base["code"].tolist()]).df()
        latest = mine[mine["period_id"] == values.period_ids[-1]][["code", "value"]]
        latest_label = values.periods["period_label"].iloc[-1]
        cohort = (base.merge(names, on="code").merge(latest, on="code", how="left", suffixes=("", "_latest"))
                  [["code", "name", "baseline_value", "value_latest"]]
                  .assign(change=lambda t: t["value_latest"] - t["baseline_value"])
                  .sort_values("baseline_value", ascending=False)
                  .rename(columns={"code": "Code", "name": "Name", "baseline_value": "Baseline\nrate (%)",
                                   "value_latest": f"{latest_label}\nrate (%)",
                                   "change": "Change\n(points)"}))
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
            index_title = f"{final.name}: {series.label}, index"
            rate_title = f"{final.name}: {series.label} (constituencies)"
            charts.insert(0, Chart("Figures 4.5-4.6: out-of-work benefit rate and the gap with Great Britain",
                                   _rates_alt(rates, final.name, "rate"),
                                   lambda fig: rate_gap_chart(named, rate_title, fig=fig), height=4.3))
            charts.insert(0, Chart("Figures 4.3-4.4: index of the number of claimants",
                                   _rates_alt(rates, final.name, "index"),
                                   lambda fig: index_chart(named, index_title, fig=fig), height=3.4,
                                   min_height=2.8))
            tables.insert(0, ("Out-of-work benefit rate and gap with Great Britain", _fmt(rates[
                list(_RATE_COLUMNS)]).rename(columns=_RATE_COLUMNS)))
            first, last = rates.iloc[0], rates.iloc[-1]
            key_figures.append(
                f"The out-of-work benefit rate was {_pct(last['rate'])} in {last['period_label']} (Great "
                f"Britain {_pct(last['reference_rate'])}), a gap of {last['gap']:.1f} points, against "
                f"{first['gap']:.1f} in {first['period_label']}.")
        caveats += [n for n in rates.attrs.get("notes", []) if n not in caveats]
    except GeoCsError as exc:
        caveats.append(f"No out-of-work benefit series on constituencies: {exc}")
    survey: list = []
    try:
        survey = survey_report_blocks(store, partnership, disclosure=disclosure)
    except GeoCsError as exc:
        caveats.append(f"No survey employment rate: {exc}")
    sources = store.sql(
        """
        SELECT i.indicator_id AS indicator, i.label, i.source_title AS source, i.publisher, i.licence,
               string_agg(DISTINCT o.period_id, ', ' ORDER BY o.period_id) AS periods
        FROM indicators i JOIN observations o USING (indicator_id, set_id)
        WHERE list_contains(?, i.indicator_id) AND i.set_id = ?
        GROUP BY ALL ORDER BY 1
        """, [list(small.indicators), view[0]]).df()
    return Profile(partnership, final.name, definition, map_chart, charts, tables, cohort, sources,
                   caveats, sentence, key_figures, survey=survey)


def _figure(chart: Chart) -> FigureBlock:
    return FigureBlock(chart.caption, chart.alt, chart.draw, chart.height, chart.min_height)


def profile_document(profile: Profile) -> Document:
    """The profile's blocks in reading order: the answer in words and the key figures with the
    map on the first page, then each chart with its table, the cohort, and what the figures rest
    on (definition, data, method, caveats). Made once per profile and kept on it."""
    if profile.document is None:
        profile.document = _profile_document(profile)
    return profile.document


def _profile_document(profile: Profile) -> Document:
    blocks: list = []
    if profile.sentence:
        blocks.append(Paragraph(profile.sentence, "lead"))
    if profile.key_figures:
        blocks.append(Bullets(profile.key_figures))
    blocks.append(_figure(profile.map_chart))
    gap_charts = [c for c in profile.charts if c.caption.startswith("Figure 4.7")]
    rate_charts = [c for c in profile.charts if not c.caption.startswith("Figure 4.7")]
    gap_tables = [(t, f) for t, f in profile.tables if t.startswith("Worst-performing")]
    rate_tables = [(t, f) for t, f in profile.tables if not t.startswith("Worst-performing")]
    if gap_charts or gap_tables:
        blocks.append(Heading("Worst-performing neighbourhoods and the rest"))
        blocks += [_figure(c) for c in gap_charts]
        blocks += [TableBlock(t, f) for t, f in gap_tables]
    if rate_charts or rate_tables:
        blocks.append(Heading("Out-of-work benefits"))
        blocks += [TableBlock(t, f) for t, f in rate_tables]
        blocks += [_figure(c) for c in rate_charts]
    blocks += profile.survey     # figures 4.1-4.2: skipped when the store holds no survey estimates
    if not profile.cohort.empty:
        blocks.append(Heading(f"The worst-performing neighbourhoods at the baseline ({len(profile.cohort)})"))
        blocks.append(TableBlock("Worst-performing neighbourhoods, highest baseline rate first, with their "
                                 "latest rate",
                                 _fmt(profile.cohort)))
    blocks += [
        Heading("What the figures rest on"),
        Heading("Definition", 2), Bullets(profile.definition),
        Heading("Data", 2),
        Bullets([f"{r.indicator}: {r.label} — {r.source or ''} ({r.publisher or ''}, {r.licence or ''}); "
                 f"periods {r.periods}" for r in profile.sources.itertuples()] or ["No sources recorded."]),
        Heading("Method", 2), Bullets(METHOD_NOTES),
        Heading("Caveats", 2), Bullets(profile.caveats or ["None found."]),
    ]
    return Document(f"{profile.name}: partnership profile",
                    f"Worklessness in {profile.name}: the answer in words, the map, the charts and their "
                    f"tables. Made by geo-cs on {profile.generated}.", blocks,
                    footer=f"geo-cs partnership profile. {OGL_ATTRIBUTION}", generated=profile.generated)


def write_pdf(profile: Profile, path: str | Path) -> Path:
    """The profile as an A4 PDF, every page used (see :mod:`geo_cs.export.document`)."""
    return docs.write_pdf(profile_document(profile), path)


def write_html(profile: Profile, path: str | Path) -> Path:
    """The profile as one self-contained HTML page (figures inline as SVG)."""
    return docs.write_html(profile_document(profile), path)


def write_docx(profile: Profile, path: str | Path) -> Path:
    """The profile as a Word document (headings, captions, alt text, real tables)."""
    return docs.write_docx(profile_document(profile), path)


def write_odt(profile: Profile, path: str | Path) -> Path:
    """The profile as an OpenDocument text (LibreOffice Writer)."""
    return docs.write_odt(profile_document(profile), path)


def write_profile(profile: Profile, out_dir: str | Path,
                  formats: tuple[str, ...] = ("pdf", "html")) -> list[Path]:
    """The profile in each of ``formats`` as ``out_dir/PARTNERSHIP.<format>``."""
    check_formats(formats)
    # looked up when called, so a wrapper (bench/bench_exports.py times write_pdf) sees the calls
    writers = {"pdf": write_pdf, "html": write_html, "docx": write_docx, "odt": write_odt}
    return [writers[f](profile, Path(out_dir) / f"{file_stem(profile.partnership)}.{f}") for f in formats]


@dataclass
class ReportResult:
    """One partnership's report in a batch: the files written, or why it failed."""

    partnership: str
    name: str
    files: list[Path] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0
    exception: Exception | None = None

    @property
    def exit_code(self) -> int:
        return getattr(self.exception, "exit_code", 1)

    @property
    def ok(self) -> bool:
        return self.error is None


def reportable_partnerships(store: Store) -> tuple[list[str], list[str]]:
    """(the partnerships the store holds areas for, those it holds none of: skipped by ``--all``)."""
    from geo_cs.partnerships import get_partnerships, resolve

    out = []
    every = get_partnerships()
    for p in every:
        for set_id in ("datazone2011", "lsoa2011", "lsoa2021", "wpc2010"):
            try:
                if resolve(store, p, set_id).codes:
                    out.append(p.id)
                    break
            except GeoCsError:
                continue
    return out, [p.id for p in every if p.id not in out]


def write_reports(store: Store, partnerships: list[str], out_dir: str | Path, *,
                  formats: tuple[str, ...] = ("pdf", "html"), geography: str | None = None,
                  indicator: str | None = None, disclosure: DisclosureControl | None = None,
                  progress: Progress | None = None) -> list[ReportResult]:
    """Each partnership's report in ``out_dir``; a partnership that fails is recorded with its
    error (naming it) and the others are still written."""
    from geo_cs.partnerships import get_partnerships

    check_formats(formats)
    progress = progress or SilentProgress()
    results = []
    for pid in progress.track(partnerships, len(partnerships), "writing reports"):
        started = time.monotonic()
        try:
            name = get_partnerships([pid])[0].phase_at(None).name
        except GeoCsError as exc:
            results.append(ReportResult(pid, pid, error=str(exc), exception=exc))
            continue
        try:
            profile = partnership_profile(store, pid, geography=geography, indicator=indicator,
                                          disclosure=disclosure)
            files = write_profile(profile, out_dir, formats)
            results.append(ReportResult(pid, name, files, seconds=time.monotonic() - started))
        except GeoCsError as exc:
            results.append(ReportResult(pid, name, error=str(exc), seconds=time.monotonic() - started,
                                        exception=exc))
        except Exception as exc:  # one partnership's failure must not stop the others
            results.append(ReportResult(pid, name, error=f"{type(exc).__name__}: {exc}",
                                        seconds=time.monotonic() - started, exception=exc))
    return results
