"""The partnership map page: one Jinja template and one script over the project's vector tiles.

One page per partnership and measure: a choropleth of every small area (Leaflet.VectorGrid drawing
``/tiles/{set}/{z}/{x}/{y}.mvt``), classes pooled across periods so the legend stays put as the
period slider moves, the worst-performing neighbourhoods outlined, areas estimated through a
boundary change hatched, the partnership's outline, and beside the map the gap chart (figure 4.7
for this partnership), the period's figures and links to the GeoJSON and CSV of what is shown.

A survey rate (the Annual Population Survey's employment rate on districts, :mod:`geo_cs.survey`)
has no worst-performing areas and no gap chart: its page gives each district's published rate
with its 95% interval, the districts the file marks (unreliable, missing) in words and never as
a figure, the partnership against the benchmark in a sentence per period, and each district's
difference from the partnership and the benchmark with whether it is real
(:func:`_survey_view`); ``map.js`` compares two districts, or two periods of one, with its copy
of :func:`geo_cs.stats.survey_difference`.

The page holds no script of its own: its data travel as JSON in a ``<script
type="application/json">`` data block (never executed, every ``<`` escaped) that
``static/geo-cs/map.js`` reads, so a Content-Security-Policy without ``'unsafe-inline'``
(:data:`geo_cs.maps.CONTENT_SECURITY_POLICY`) holds and a name from a data file can only ever be text.

:func:`render_map_page` only formats: the caller passes the values, codes, outline and gap table
(the API takes them from its caches; a script can take them from :mod:`geo_cs.layers`).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlencode

import jinja2
import numpy as np
import pandas as pd

from geo_cs import features, layers, places, tiles
from geo_cs.analysis import MethodParams
from geo_cs.attribution import OGL_ATTRIBUTION
from geo_cs.custom_areas import file_stem, is_area_id, parse_area_id
from geo_cs.disclosure import DisclosureControl
from geo_cs.errors import GeoCsError, NotFoundError
from geo_cs.layers import AreaValues, breaks_note, class_breaks, class_labels, is_whole, sentence_case
from geo_cs.maps import CONTENT_SECURITY_POLICY, STATIC_URL, asset_url, vendor_url
from geo_cs.narrative import (
    Alternative,
    area_words,
    gap_sentence,
    gives_gap,
    legend_title,
    low_is_worse,
    no_gap_sentence,
    survey_label,
    survey_notes,
    survey_sentence,
    threshold_hint,
)
from geo_cs.palette import NO_DATA, class_colours  # a colour means the same on the page and on paper
from geo_cs.partnerships import compared_with, get_partnerships, resolve
from geo_cs.stats import linear_half_width
from geo_cs.store import Store

TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).resolve().parent / "templates"),
    autoescape=True,
)

#: The most detailed zoom the tiles carry; Leaflet overzooms them beyond it.
MAX_NATIVE_ZOOM = 14

#: Mapped areas named on their own map (their words, :func:`geo_cs.narrative.area_words`), and
#: from which zoom: constituencies are few enough to name, and no reference layer names them.
NAMED_AREAS = ("constituency",)
NAMED_AREA_ZOOM = 8


def json_for_html(value: object) -> str:
    """``value`` as JSON that is safe inside an HTML element: ``<``, ``>`` and ``&`` are written
    as ``\\u00XX`` escapes, so no string in it (an area's name, say) can close the element or open
    a comment, and ``JSON.parse`` reads back exactly the same value.

    >>> print(json_for_html({"name": "</script><b>"}))
    {"name": "\\u003c/script\\u003e\\u003cb\\u003e"}
    """
    text = json.dumps(value, allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


_CONFIG_BLOCK = re.compile(r'<script type="application/json" id="geo-cs-config">(.*?)</script>', re.S)


def read_page_config(html: str) -> dict:
    """The data block of a rendered map page, parsed (what ``map.js`` reads): for tests and
    scripts that check a page's figures without a browser."""
    found = _CONFIG_BLOCK.search(html)
    if found is None:
        raise ValueError("not a geo-cs map page: no geo-cs-config data block")
    return json.loads(found.group(1))


@dataclass(frozen=True)
class MapRequest:
    """What a staff member asked to see (the page's query parameters)."""

    partnership: str
    geography: str | None = None
    indicator: str | None = None
    denominator: str | None = None
    period: str | None = None
    scheme: str = "quantiles"
    k: int = 5
    breaks: tuple[float, ...] | None = None
    baseline: tuple[str, ...] | None = None
    threshold: float = 25.0

    def measure_query(self, period: str | None = None) -> dict[str, str]:
        out = {"indicator": self.indicator, "denominator": self.denominator,
               "baseline": ",".join(self.baseline) if self.baseline else None,
               "threshold": f"{self.threshold:g}" if self.threshold != 25.0 else None,
               "period": period}
        return {k: v for k, v in out.items() if v}


@dataclass(frozen=True)
class PageUrls:
    """Where a page finds its tiles, downloads, chart and assets: the service's routes."""

    static: str = STATIC_URL
    standalone: bool = False      # a static site: no server to choose another measure from
    help: str = "/maps/help"      # what the words on the page mean, where the data come from

    def tiles(self, set_id: str, period: str, query: dict[str, str]) -> str:
        return f"/tiles/{set_id}/{{z}}/{{x}}/{{y}}.mvt?{urlencode(query)}"

    def items(self, set_id: str, period: str, selection: dict, fmt: str) -> str:
        query = {**selection, "f": "csv"} if fmt == "csv" else selection
        return f"/collections/{set_id}/items?{urlencode(query)}"

    def chart(self, partnership: str, query: dict[str, str], fmt: str = "svg") -> str:
        return f"/maps/{partnership}/gap.{fmt}?{urlencode(query)}"


@dataclass(frozen=True)
class StaticSiteUrls(PageUrls):
    """The files of a static site (``geo-cs export site``): a PMTiles archive per period read in
    the browser, GeoJSON and CSV per period, the chart as SVG, PNG and CSV, the help page,
    assets beside the page."""

    static: str = "static"
    standalone: bool = True
    help: str = "help.html"

    def tiles(self, set_id: str, period: str, query: dict[str, str]) -> str:
        return f"pmtiles://tiles/{period}.pmtiles/{{z}}/{{x}}/{{y}}"

    def items(self, set_id: str, period: str, selection: dict, fmt: str) -> str:
        return f"data/{period}.{'csv' if fmt == 'csv' else 'geojson'}"

    def chart(self, partnership: str, query: dict[str, str], fmt: str = "svg") -> str:
        return f"gap.{fmt}"


def _number(value: object, digits: int = 3) -> float | None:
    if value is None or value is pd.NA:
        return None
    value = float(value)
    return round(value, digits) if math.isfinite(value) else None


def _period_summaries(values: AreaValues, codes: list[str], gap: pd.DataFrame | None,
                      period_ids: list[str]) -> dict:
    """Per period: the partnership's rate and its cohort's figures (for the panel and tooltips)."""
    mine = values.frame[values.frame["code"].isin(codes)]
    out: dict[str, dict] = {}
    for period in period_ids:
        rows = mine[mine["period_id"] == period]
        ok = rows["count"].notna() & (rows["denominator"] > 0)
        den = rows.loc[ok, "denominator"].sum()
        summary = {"partnership_value": _number(100 * rows.loc[ok, "count"].sum() / den) if den else None}
        if gap is not None and not gap.empty:
            hit = gap[gap["period_id"] == period]
            if not hit.empty:
                g = hit.iloc[0]
                # the partnership's own totals (every area's count, withheld ones included, summed
                # and then rounded under disclosure control) rather than a sum of published areas
                total = np.nansum([g["cohort_count"], g["rest_count"]])
                total_den = np.nansum([g["cohort_denominator"], g["rest_denominator"]])
                if total_den > 0:
                    summary["partnership_value"] = _number(100 * total / total_den)
                summary.update({k: _number(g[k]) for k in (
                    "cohort_rate", "rest_rate", "gap", "gap_low", "gap_high", "cohort_share")})
                summary["n_cohort"] = int(g["n_cohort"])
                summary["n_rest"] = int(g["n_rest"])
        # more claimants than people: not a figure to show, whatever the arithmetic gives
        summary["invalid"] = any((summary.get(k) or 0) > 100
                                 for k in ("partnership_value", "cohort_rate", "rest_rate"))
        out[period] = summary
    return out


def _invalid_rates(mine: pd.DataFrame) -> pd.Series:
    """Which of the partnership's area-periods have a rate that cannot be right: over 100%
    (more claimants than people: the denominator does not fit the count) or outside its own
    interval. The page flags and explains them instead of showing them as figures (``map.js``'s
    ``invalidRate`` applies the same rule to the tiles' values)."""
    value = mine["value"].astype(float)
    low, high = mine["value_low"].astype(float), mine["value_high"].astype(float)
    return (value > 100) | (value < low - 1e-9) | (value > high + 1e-9)


def shown_periods(data: MapData) -> list[str]:
    """The measure's periods in which the partnership has a value (and the one asked for): an
    edition of another nation (IMD 2019 on a Welsh partnership's rank map) would only draw an
    empty map."""
    values = data.values
    mine = values.frame[values.frame["code"].isin(data.codes) & values.frame["value"].notna()]
    held = set(mine["period_id"])
    if data.req.period is not None:
        held.add(values.check_period(data.req.period))
    periods = [p for p in values.period_ids if p in held]
    return periods or values.period_ids


def _areas_table(data: MapData, period_ids: list[str], with_worst: bool) -> dict:
    """The partnership's areas for the ranked list, the search and the area profiles, as
    columns: code, name, lon/lat bounds, the value in each period, the worst flag and the
    baseline rate (null when the measure gives no worst-performing areas), the largest
    estimated share, and whether a figure is not a valid rate."""
    values, index = data.values, data.areas
    mine = values.frame[values.frame["code"].isin(data.codes)]
    wide = mine.pivot_table(index="code", columns="period_id", values="value", aggfunc="first")
    wide = wide.reindex(index=index["code"], columns=period_ids)
    per_code = mine.groupby("code").agg(worst=("worst", "max"), estimated=("estimated_share", "max"),
                                        baseline=("baseline_value", "first"))
    per_code = per_code.reindex(index["code"])
    invalid = set(mine.loc[_invalid_rates(mine), "code"]) if values.unit == "%" else set()
    worst = (per_code["worst"].astype("boolean").fillna(False).astype(bool).tolist() if with_worst
             else [None] * len(index))
    return {
        "code": index["code"].tolist(),
        "name": [n if isinstance(n, str) else None for n in index["name"]],
        "bounds": [[_number(r.west), _number(r.south), _number(r.east), _number(r.north)]
                   for r in index.itertuples()],
        # a point inside each area (5 decimals: a metre): a shape drawn on the map picks the
        # areas whose point it holds
        "point": [[_number(r.lon, 5), _number(r.lat, 5)] for r in index.itertuples()],
        # 6 decimals: the list shows one, and rounding twice misreads a rate (36.650083% kept as
        # 36.650 is shown as 36.6, not 36.7)
        "values": [[_number(v, 6) for v in row] for row in wide.to_numpy()],
        "worst": worst,
        # each area's baseline rate (the mean of its published rates over the baseline), which
        # the worst flag compares with the threshold: the list shows why an area is in it
        # (issue 28: a 2020 list showed areas at 1.9% without it). Null where there is none.
        "baseline": ([_number(b, 6) for b in per_code["baseline"]] if with_worst
                     else [None] * len(index)),
        "estimated": [_number(e) or 0 for e in per_code["estimated"]],
        "invalid": [c in invalid for c in index["code"]],
    }


def _nation(codes: list[str]) -> str | None:
    """The one nation ``codes`` are in (ranks and deciles are within a nation), else None."""
    nations = {layers.NATIONS.get(c[:1]) for c in codes}
    return nations.pop() if len(nations) == 1 else None


def _alternative(data: MapData) -> Alternative | None:
    """Another map of the partnership that gives the gap: on the same areas if there is one."""
    gaps = [c for c in data.choices if c.gap]
    gaps.sort(key=lambda c: c.geography != data.req.geography)
    return Alternative(gaps[0].label, gaps[0].geography_label) if gaps else None


def _no_gap_words(data: MapData, period: str, offer: bool = True) -> str:
    """The sentence of a map that gives no gap (:func:`geo_cs.narrative.no_gap_sentence`);
    ``offer``: whether the page can choose another map (a static site cannot)."""
    values = data.values
    latest = values.at(period)
    latest = latest[latest["code"].isin(data.codes)]
    if values.unit == "%":   # a rate that cannot be right is no one's highest
        latest = latest.assign(value=latest["value"].mask(_invalid_rates(latest)))
    named = data.areas[["code", "name"]].merge(latest[["code", "value"]], on="code", how="left")
    return no_gap_sentence(data.name, values.measure.kind, values.measure.label, values.unit,
                           area_words(values.measure.set_id), named, nation=_nation(data.codes),
                           alternative=_alternative(data), offer=offer)


def settings_suffix(req: MapRequest) -> list[str]:
    """The settings of a view that change its figures and are not the defaults, as parts of a
    file name: ``threshold-20``, ``baseline-simd2016`` (issue 28: a download kept the same name
    whatever the threshold, so two files of different figures overwrote each other)."""
    parts = []
    if req.threshold != 25.0:
        parts.append(f"threshold-{req.threshold:g}")
    if req.baseline:
        parts.append("baseline-" + "-".join(req.baseline))
    return parts


#: How the classes can be drawn, in words (the form's choice of ``scheme``).
SCHEME_LABELS = {
    "quantiles": "Same number of areas in each colour",
    "fisher_jenks": "Natural groups in the values",
    "equal_interval": "Equal steps of value",
    "own": "My own class limits",
}


def view_figures(data: MapData, urls: PageUrls | None = None) -> dict:
    """What depends on the period, baseline and threshold of a view: the periods with their
    tiles, downloads and figures, the answer in words, the areas. The page's controls fetch
    this again (``/maps/{partnership}/figures.json``) when staff change the baseline or
    threshold, and nothing else of the page is redrawn."""
    urls = urls or PageUrls()
    req, values, codes, gap = data.req, data.values, data.codes, data.gap
    mine = values.frame[values.frame["code"].isin(codes)]
    period_ids = shown_periods(data)
    # the latest period with the partnership's values, unless one was asked for
    period = values.check_period(req.period) if req.period else period_ids[-1]
    # a survey rate's figures are the published ones (_survey_view), not sums of the areas'
    summaries = (_period_summaries(values, codes, gap, period_ids) if data.survey is None
                 else {p: {} for p in period_ids})
    set_id = values.measure.set_id
    one, many = area_words(set_id)
    labels = dict(zip(values.periods["period_id"], values.periods["period_label"], strict=True))
    # a survey's benchmarks are the published ones (_survey_view)
    bench = layers.benchmarks(values if data.survey is None else replace(values, frame=values.frame.iloc[:0]))
    settings = settings_suffix(req)
    periods = []
    for row in values.periods[values.periods["period_id"].isin(period_ids)].itertuples():
        q = req.measure_query(row.period_id)
        selection = {**q, "partnership": req.partnership, "limit": 10000}
        here = bench[bench["period_id"] == row.period_id]
        name = download_name(req, "csv", row.period_id)
        periods.append({
            "id": row.period_id, "label": row.period_label,
            "tiles": urls.tiles(set_id, row.period_id, q),
            "geojson": urls.items(set_id, row.period_id, selection, "geojson"),
            "csv": urls.items(set_id, row.period_id, selection, "csv"),
            # the downloads' file names, with the settings that change their figures
            "csvName": name, "geojsonName": name.removesuffix(".csv") + ".geojson",
            "summary": summaries[row.period_id],
            "benchmarks": [{"group": b.group, "rate": _number(b.rate), "areas": int(b.n_areas),
                            "label": f"{b.group} (the {int(b.n_areas):,} "
                                     f"{_plural_of(int(b.n_areas), one, many)} with data here)"}
                           for b in here.itertuples()],
            "estimated": bool((mine.loc[mine["period_id"] == row.period_id, "estimated_share"] > 0).any()),
        })
    notes = []
    if req.scheme == "own" and req.breaks:
        note = breaks_note(list(req.breaks), mine["value"])
        if note:
            notes.append(note)
    invalid = int(_invalid_rates(mine).sum()) if values.unit == "%" else 0
    if invalid:
        notes.append(
            f"{invalid} of the partnership's area figures are not valid rates (over 100%, or outside "
            "their own 95% interval): the population they are divided by does not fit the count of "
            "people. They are shown as 'not a valid rate' and left uncoloured; choose the map again "
            "under “Map of” to use the measure's own population.")
    has_gap = gap is not None
    sentence, hint = None, None
    survey = _survey_view(data, period_ids) if data.survey is not None else None
    if survey is not None:
        for entry in periods:
            entry.update(survey["periods"][entry["id"]])
        sentence = survey["periods"][period]["sentence"]
        notes += survey["notes"]
    elif has_gap:
        params = MethodParams(threshold=values.threshold, baseline=values.baseline)
        found = None
        if int(gap["n_cohort"].max() if len(gap) else 0) == 0:
            baseline_rates = mine.drop_duplicates("code")["baseline_value"]
            found = threshold_hint(baseline_rates, below=values.threshold)
            hint = None if found is None else {"threshold": found.suggested, "areas": found.n_at_suggested,
                                               "highest": found.highest}
        sentence = gap_sentence(gap, data.name, params, found, areas=(one, many),
                                rest_of=compared_with(req.partnership))
        if any(s.get("invalid") for s in summaries.values()):
            # rates over 100% are no figures (the panel says so): nor is a gap or cohort made of
            # them, in words above the map (it read "a gap of 750.2 points")
            offer = "." if urls.standalone else "; choose the measure again under “Map of”."
            sentence, hint = (f"No valid figures for {data.name}: its rates come out over 100%, so the "
                              f"population they are divided by does not fit this measure{offer}"), None
    elif not mine.empty:
        sentence = _no_gap_words(data, period, offer=not urls.standalone)
    areas = _areas_table(data, period_ids, with_worst=has_gap)
    if survey is not None:
        areas["survey"] = survey["areas"]
    chart_query = {"geography": set_id, **req.measure_query()}
    chart_name = download_name(req, "svg", what="gap").removesuffix(".svg")
    return {
        "periods": periods, "start": period_ids.index(period),
        # the period in the address only when one was asked for: a link without it follows the latest
        "periodInAddress": req.period is not None,
        "baseline": list(values.baseline) if has_gap else [],
        "baselineLabels": [labels.get(b, b) for b in values.baseline] if has_gap else [],
        "threshold": values.threshold,
        "hasGap": has_gap,
        # what the map draws, so the legend lists only that (issue 28: Rhyl's legend showed
        # outlines and hatching that were not on its map)
        "hasWorst": has_gap and any(areas["worst"]),
        "hasEstimates": bool((mine["estimated_share"] > 0).any()),
        # the panel's chart without its source line: the page carries it once (in print too)
        "chart": urls.chart(req.partnership, {**chart_query, "source": "false"}) if has_gap else None,
        "chartDownloads": {fmt: {"url": urls.chart(req.partnership, chart_query, fmt),
                                 "name": f"{chart_name}.{fmt}"} for fmt in ("png", "svg", "csv")}
        if has_gap else None,
        "notes": notes, "sentence": sentence, "thresholdHint": hint,
        "areas": areas,
        "settings": settings,
    }


def _rounded_difference(diff: float, half_width: float) -> list | None:
    """[difference, half-width, real] as :func:`geo_cs.stats.survey_difference` rounds and
    decides them (6 and 3 decimals; real when the difference is larger than the half-width),
    or None without an interval."""
    if not math.isfinite(diff) or not math.isfinite(half_width):
        return None
    diff, half_width = round(diff, 6), round(half_width, 3)
    return [diff, half_width, bool(abs(diff) > half_width)]


def _against_whole(rows: pd.DataFrame | dict, whole: set[str], codes: list[str]) -> dict[str, list | None]:
    """Each of ``codes`` against a whole it may be part of (its partnership, the benchmark), in
    one period (``rows``: the districts' estimates, :func:`geo_cs.survey.district_estimates`):
    the district's published rate minus the whole's (Σ numerators / Σ denominators of the
    whole's districts), with the 95% half-width of that difference counting each district once,
    as :mod:`geo_cs.survey` does for the partnership's gap: the difference is the linear
    combination Σ aᵢ·rᵢ with a = 1 − w for the district and −wᵢ for the whole's other districts
    (wᵢ: their shares of the whole's people), so its half-width is √Σ (aᵢ·cᵢ)², as
    :func:`geo_cs.stats.linear_half_width` gives it. Treating the district and the whole as
    independent samples would count the district twice. Districts without a published interval
    are left out of it, as they are of the whole's; None when the district has no interval or
    the whole has none at all."""
    code = np.asarray(rows["code"], dtype=object)
    rate, numerator, denominator, half_width = (
        np.asarray(rows[c], dtype=float) for c in ("rate", "numerator", "denominator", "half_width"))
    usable = ~(np.isnan(rate) | np.isnan(numerator) | np.isnan(denominator))
    inside = usable & np.isin(code, list(whole))
    total = denominator[inside].sum()
    out: dict[str, list | None] = {c: None for c in codes}
    known = inside & ~np.isnan(half_width)
    if not total > 0 or not known.any():
        return out
    whole_rate = 100 * numerator[inside].sum() / total
    weights = denominator[known] / total
    half_widths = half_width[known]
    members = {c: j for j, c in enumerate(code[known])}
    row_of = {c: j for j, c in enumerate(code) if usable[j] and not np.isnan(half_width[j])}
    asked = [c for c in codes if c in row_of]
    if not asked:
        return out
    for c in asked:
        # the coefficients: -w over the whole, +1 on the district itself (a term of its own when
        # it is not part of the whole)
        coefficients, spreads = np.append(-weights, 0.0), np.append(half_widths, half_width[row_of[c]])
        coefficients[members.get(c, len(weights))] += 1.0
        spread = linear_half_width(coefficients, spreads)
        out[c] = _rounded_difference(float(rate[row_of[c]]) - whole_rate, spread)
    return out


def _year_before(periods: pd.DataFrame, period_ids: list[str]) -> dict[str, int | None]:
    """For each rolling year shown, the slider's index of the latest earlier one that shares no
    month with it (a year before, when the series has it): two periods of one district are
    compared on samples that do not overlap."""
    shown = periods[periods["period_id"].isin(period_ids)].copy()
    out: dict[str, int | None] = {p: None for p in period_ids}
    if "period_kind" not in shown or set(shown["period_kind"]) != {"rolling_year"}:
        return out
    starts = pd.to_datetime(shown["start_date"])
    for pid, start in zip(shown["period_id"], starts, strict=True):
        earlier = shown[starts <= start - pd.DateOffset(years=1)]
        if len(earlier):
            out[pid] = period_ids.index(earlier["period_id"].iloc[-1])
    return out


def _survey_view(data: MapData, period_ids: list[str]) -> dict:
    """What a survey rate's map shows beside the generic figures, per period and per area:
    the partnership's rate against the benchmark with their 95% intervals and whether the gap
    is real, the answer in words (:func:`geo_cs.narrative.survey_sentence`), the districts
    marked in the file (their words, never a number), each district's published half-width and
    its difference from the partnership and the benchmark (:func:`_against_whole`)."""
    survey, values = data.survey, data.values
    rates, estimates = survey.rates, survey.estimates
    label = values.measure.label
    codes = data.areas["code"].tolist()
    names = dict(zip(data.areas["code"], data.areas["name"], strict=True))
    mine = set(data.codes)
    frame = values.frame[values.frame["code"].isin(codes)]
    suppressed = frame[frame["suppressed"].astype(bool)] if "suppressed" in frame else frame.iloc[0:0]
    hidden = set(zip(suppressed["code"], suppressed["period_id"], strict=True))
    wide = frame.pivot_table(index="code", columns="period_id", values="half_width", aggfunc="first",
                             dropna=False).reindex(index=codes, columns=period_ids)
    before = _year_before(values.periods, period_ids)
    benchmark_name = str(survey.rates.attrs.get("benchmark") or "the benchmark")
    out_periods: dict[str, dict] = {}
    markers = [[None] * len(period_ids) for _ in codes]
    versus = {"partnership": [[None] * len(period_ids) for _ in codes],
              "benchmark": [[None] * len(period_ids) for _ in codes]}
    columns = {c: estimates[c].to_numpy(dtype=object if c in ("code", "reliability") else float)
               for c in ("code", "rate", "numerator", "denominator", "half_width", "reliability")}
    at = estimates.groupby("period_id", sort=False).indices
    # the partnership, the benchmark and the nations per period, as plain records
    figures: dict[tuple[str, str], list[dict]] = {}
    for record in rates.to_dict("records"):
        figures.setdefault((record["period_id"], record["group_kind"]), []).append(record)
    for k, period in enumerate(period_ids):
        rows = {c: v[at[period]] if period in at else v[:0] for c, v in columns.items()}
        flags = {c: str(m) for c, m in zip(rows["code"], rows["reliability"], strict=True)
                 if m is not None and m == m}
        for i, code in enumerate(codes):
            if code in flags:
                markers[i][k] = flags[code]
            elif (code, period) in hidden:
                markers[i][k] = "suppressed"      # withheld by this service's disclosure control
        shown = [c for i, c in enumerate(codes) if markers[i][k] is None]
        for whole, group in (("partnership", mine), ("benchmark", set(rows["code"]))):
            found = _against_whole(rows, group, shown)
            for i, code in enumerate(codes):
                versus[whole][i][k] = found.get(code)
        own = figures.get((period, "partnership"), [])
        bench = figures.get((period, "benchmark"), [])
        nations = figures.get((period, "nation"), [])
        entry: dict = {"survey": {"marked": flags, "yearBefore": before[period], "benchmark": None,
                                  "partnership": None, "gap": None}}
        listed = list(bench[:1]) + (nations if len(nations) > 1 else [])
        if bench:
            entry["survey"]["benchmark"] = {"name": benchmark_name, "rate": _number(bench[0]["rate"]),
                                            "halfWidth": _number(bench[0]["half_width"])}
        entry["benchmarks"] = [{
            "group": r["name"], "rate": _number(r["rate"]), "halfWidth": _number(r["half_width"]),
            "areas": int(r["districts_in_figure"]),
            "label": (f"{r['name']} ({int(r['districts_in_figure']):,} of its {int(r['districts']):,} "
                      "districts have a figure)" if r["districts_in_figure"] < r["districts"] else
                      str(r["name"]) if str(r["name"]).startswith("All ") else
                      f"{r['name']} ({int(r['districts']):,} districts)")} for r in listed]
        entry["summary"] = {"partnership_value": None, "invalid": False}
        notes: list[str] = []
        if own:
            o = own[0]
            gap_hw = o["gap_high"] - o["gap"]
            real = None if o["gap_real"] is None or pd.isna(o["gap_real"]) else bool(o["gap_real"])
            entry["summary"]["partnership_value"] = _number(o["rate"])
            entry["survey"]["partnership"] = {"rate": _number(o["rate"]), "districts": int(o["districts"]),
                                              "halfWidth": _number(o["half_width"])}
            entry["survey"]["gap"] = {"diff": _number(o["gap"]), "halfWidth": _number(gap_hw), "real": real}
            entry["sentence"] = survey_sentence(
                data.name, label, str(o["period_label"]), float(o["rate"]), float(o["half_width"]),
                benchmark_name, float(o["benchmark_rate"]), float(o["gap"]), float(gap_hw), real)
            flagged = [(names.get(c) or c, m) for c, m in flags.items() if c in mine]
            notes = survey_notes(data.name, flagged, int(o["districts"]))
        else:
            entry["sentence"] = (f"The survey gives no figure for {data.name} as a whole in this period: "
                                 f"none of its {area_words(values.measure.set_id)[1]} has an estimate.")
        entry["notes"] = notes
        out_periods[period] = entry
    page_notes = []
    for note in survey.notes:
        prefix = f"{data.req.partnership}: "
        note = f"{data.name}: {note.removeprefix(prefix)}" if note.startswith(prefix) else note
        page_notes.append(sentence_case(note).rstrip(".") + ".")
    return {
        "periods": out_periods, "notes": page_notes,
        "areas": {
            "halfWidth": [[None if (codes[i], p) in hidden else _number(wide.iat[i, k])
                           for k, p in enumerate(period_ids)] for i in range(len(codes))],
            "marker": markers,
            "vsPartnership": versus["partnership"], "vsBenchmark": versus["benchmark"],
        },
    }


def _plural_of(n: int, one: str, many: str) -> str:
    return one if n == 1 else many


def _survey_words(data: MapData) -> dict:
    """The words a survey rate's page builds its sentences from (``map.js``)."""
    from geo_cs.narrative import CANNOT_SAY, MARKER_WORDS, survey_population

    return {
        "benchmark": str(data.survey.rates.attrs.get("benchmark") or "the benchmark"),
        "population": survey_population(data.values.measure.label),
        "markers": {**MARKER_WORDS, "suppressed": "withheld (fewer than "
                    f"{data.values.disclosure.min_count if data.values.disclosure else 10} people)"},
        "cannotSay": CANNOT_SAY,
    }


def page_config(data: MapData, urls: PageUrls | None = None) -> dict:
    """Everything the page's script needs, as JSON-able data: :func:`view_figures` and what
    does not depend on the period, baseline or threshold (classes, outline, choices)."""
    urls = urls or PageUrls()
    req, values = data.req, data.values
    mine = values.frame[values.frame["code"].isin(data.codes)]
    kind = values.measure.kind
    # ranks, deciles and counts are whole numbers: so are their classes' bounds
    whole = values.unit != "%" and is_whole(mine["value"])
    breaks = class_breaks(mine["value"], req.scheme, req.k, list(req.breaks) if req.breaks else None,
                          whole=whole and req.scheme != "own")
    unit = "%" if values.unit == "%" else ""
    lowest = mine["value"].min() if whole and mine["value"].notna().any() else None
    one, many = area_words(values.measure.set_id)
    figures = view_figures(data, urls)
    label = values.measure.label
    return {
        "layer": values.measure.set_id, "partnership": req.partnership, "partnershipName": data.name,
        "indicator": req.indicator,
        # a survey rate says what it is a share of: "Employment rate, % of people aged 16-64"
        "measure": survey_label(label) if kind == "survey" else sentence_case(label),
        "unit": values.unit, "isRate": values.measure.is_rate,
        "kind": kind,
        # which end is worse: the lowest of a rate whose high end is good (an employment rate),
        # the most deprived rank, else the highest; ranks in the list count from it
        "lowIsWorse": low_is_worse(kind, label),
        "survey": _survey_words(data) if data.survey is not None else None,
        "breaks": breaks,
        # the worst class darkest: ranks and deciles (1 = most deprived) take the palette reversed
        "colours": class_colours(len(breaks), low_is_worse(kind, values.measure.label)),
        "noData": NO_DATA,
        "legendTitle": legend_title(kind, values.measure.label, values.unit),
        "classLabels": class_labels(breaks, unit, None if lowest is None else float(lowest), whole),
        "legendNote": ("The colours mean the same values in every period, so periods can be compared."
                       if len(figures["periods"]) > 1 else None),
        "schemeLabels": SCHEME_LABELS,
        "areaWords": {"one": one, "many": many},
        "helpUrl": urls.help,
        "codes": sorted(data.codes), "bounds": data.outline.get("bbox"), "outline": data.outline,
        "minZoom": data.min_zoom, "maxNativeZoom": MAX_NATIVE_ZOOM,
        "standalone": urls.standalone,
        # the embed view (geo_cs.maps.embed) sets it: map.js then draws no panel and no controls
        "embed": False,
        # a custom area's own words and links, and what making one from this page starts from
        **({} if urls.standalone else custom_area_config(data)),
        # the light reference layer: district and ward lines from the store's own tiles (a
        # static site has none), and their names
        "reference": {
            "lines": [] if urls.standalone else [
                {"layer": s, "tiles": urls.tiles(s, "", {}), "minZoom": places.REFERENCE_SETS[s] - 1}
                for s in data.reference_sets],
            "labels": [{"name": r.name, "lon": _number(r.lon), "lat": _number(r.lat),
                        "minZoom": int(r.min_zoom),
                        "kind": ("district" if r.set_id.startswith("lad") else
                                 "ward" if r.set_id.startswith("ward") else "area")}
                       for r in data.labels.itertuples()],
        },
        "attribution": OGL_ATTRIBUTION,
        "disclosure": values.disclosure.note if values.disclosure else None,
        "minCount": values.disclosure.min_count if values.disclosure else None,
        **figures,
    }


def figure_words(data: MapData) -> dict | None:
    """The key figures' row names for a custom area (the page's script says "Partnership",
    "Rest of the partnership" otherwise)."""
    if not is_area_id(data.req.partnership):
        return None
    whole = compared_with(data.req.partnership) or data.name
    return {"whole": whole, "rest": f"Rest of {whole}",
            "share": f"Their share of {whole}'s working-age people"}


def custom_area_config(data: MapData) -> dict:
    """``custom``: what the page of a custom area says of it and links to (its surrounding
    partnership, the other comparison, its definition as a partnership file and as codes);
    ``makeArea``: what the page's "Make your own area" tools start from (the set, the
    partnership it is made in, the codes of the custom area shown)."""
    req = data.req
    set_id = data.values.measure.set_id
    if not is_area_id(req.partnership):
        return {"custom": None, "makeArea": {"set": set_id, "within": req.partnership,
                                             "withinName": data.name, "codes": [], "name": ""}}
    area = parse_area_id(req.partnership)
    within_name = get_partnerships([area.within])[0].phase_at(None).name if area.within else ""
    query = urlencode({k: v for k, v in (("geography", req.geography), ("indicator", req.indicator),
                                         ("denominator", req.denominator)) if v})
    rest_id = replace(area, against_within=False).id
    within_id = replace(area, against_within=True).id if area.within else None
    return {
        "figureWords": figure_words(data),
        "custom": {
            "name": data.name, "count": len(area.codes), "within": area.within, "withinName": within_name,
            "againstWithin": area.against_within,
            "restUrl": f"/maps/{rest_id}?{query}",
            "withinUrl": f"/maps/{within_id}?{query}" if within_id else None,
            "withinMapUrl": f"/maps/{area.within}?{query}" if area.within else None,
            "yaml": f"/maps/{req.partnership}/area.yaml", "csv": f"/maps/{req.partnership}/area.csv",
        },
        "makeArea": {"set": area.set_id, "within": area.within, "withinName": within_name,
                     "codes": list(area.codes), "name": area.name},
    }


class MapSources:
    """Where a page's data comes from: straight from the store (static sites, scripts); the web
    service subclasses it to answer from its caches (``api.deps.CachedMapSources``)."""

    def __init__(self, store: Store, disclosure: DisclosureControl | None = None) -> None:
        self.store = store
        self.disclosure = disclosure

    def codes(self, partnership: str, set_id: str) -> list[str]:
        return resolve(self.store, get_partnerships([partnership])[0], set_id).codes

    def values(self, set_id: str, indicator: str, denominator: str | None,
               baseline: tuple[str, ...] | None, threshold: float) -> AreaValues:
        measure = layers.resolve_measure(self.store, set_id, indicator, denominator)
        return layers.area_values(self.store, measure, baseline=baseline, threshold=threshold,
                                  disclosure=self.disclosure)

    def outline(self, partnership: str) -> dict:
        return features.partnership_outline(self.store, partnership)

    def gap(self, values: AreaValues, partnership: str) -> pd.DataFrame:
        return layers.partnership_gap(self.store, values.measure, partnership, baseline=values.baseline,
                                      threshold=values.threshold, disclosure=self.disclosure)

    def choices(self, partnership: str) -> list[layers.ViewChoice]:
        """The maps the partnership can be shown as: every measure on every tiled set it has
        areas in."""
        held: dict[str, list[str]] = {}
        for set_id in tiles.tile_sets(self.store)["set_id"]:
            try:
                codes = self.codes(partnership, set_id)
            except GeoCsError:
                continue   # the partnership cannot be resolved on that set: not a choice
            if codes:
                held[set_id] = codes
        # only measures with values for the partnership's own areas
        return layers.view_choices(self.store, list(held), held)

    def areas(self, set_id: str, codes: list[str]) -> pd.DataFrame:
        return layers.area_index(self.store, set_id, codes)

    def labels(self, bounds: list[float] | None, named: str | None = None) -> pd.DataFrame:
        """District and ward names around ``bounds`` for the reference layer (a margin of
        about 10 km each side, so the neighbours are named too), and the names of the mapped
        areas of set ``named`` when they are large enough to carry one (constituencies)."""
        if not bounds:
            return places.reference_labels(self.store, (0, 0, 0, 0), {})
        west, south, east, north = bounds
        sets = dict(places.REFERENCE_SETS)
        if named is not None:
            sets[named] = NAMED_AREA_ZOOM
        return places.reference_labels(self.store, (west - 0.15, south - 0.1, east + 0.15, north + 0.1),
                                       sets)

    def survey(self, measure: layers.Measure, partnership: str) -> SurveyFigures:
        """A survey rate's figures beside its map: every district's published estimate and the
        partnership's, the benchmark's and the nations' rates with their 95% intervals
        (:func:`geo_cs.survey.employment_rates`)."""
        from geo_cs import survey

        indicator = measure.indicators[-1]
        estimates = survey.district_estimates(self.store, indicator, measure.set_id)
        rates = survey.employment_rates(self.store, indicator, set_id=measure.set_id,
                                        partnerships=[partnership], comparator_size=0,
                                        disclosure=self.disclosure)
        return SurveyFigures(rates, estimates, list(rates.attrs.get("notes", [])))

    def survey_measures(self) -> set[tuple[str, str]]:
        """(set, indicator id) and (set, measure name) of every survey estimate the store holds:
        the page words their choices as survey rates."""
        rows = self.store.sql(
            "SELECT set_id, indicator_id, measure FROM indicators WHERE kind = 'survey'").fetchall()
        return {(r[0], r[1]) for r in rows} | {(r[0], r[2]) for r in rows}

    def view_of(self, partnership: str, geography: str | None, indicator: str | None,
                denominator: str | None) -> tuple[str, str, str | None]:
        """(geography, indicator, denominator) of a map: what was asked, completed from the
        defaults. It depends on these four only, so it is what a cache may keep for them."""
        return layers.store_view(self.store, partnership, geography, indicator, denominator)

    def view(self, req: MapRequest) -> MapRequest:
        """``req`` with its view completed; every other parameter is the request's own."""
        geography, indicator, denominator = self.view_of(
            req.partnership, req.geography, req.indicator, req.denominator)
        return replace(req, geography=geography, indicator=indicator, denominator=denominator)


@dataclass
class SurveyFigures:
    """A survey rate's published figures beside its map (:mod:`geo_cs.survey`)."""

    rates: pd.DataFrame            # employment_rates: the partnership, the benchmark, nations, regions
    estimates: pd.DataFrame        # district_estimates: every district of the set in every period
    notes: list[str]               # about the benchmark (a file of part of Great Britain)


@dataclass
class MapData:
    """Everything one partnership map shows."""

    req: MapRequest
    values: AreaValues
    codes: list[str]
    outline: dict
    gap: pd.DataFrame | None
    name: str
    choices: list[layers.ViewChoice]
    min_zoom: int
    areas: pd.DataFrame            # the partnership's areas: code, name, lon/lat bounds
    labels: pd.DataFrame           # district and ward names around it (geo_cs.places.reference_labels)
    reference_sets: list[str]      # of places.REFERENCE_SETS, those with tiles: drawn as lines
    geography_label: str = ""      # the areas in words ("Scottish Data Zones, 2011")
    survey: SurveyFigures | None = None   # a survey rate's published figures (geo_cs.survey)
    aliases: tuple[str, ...] = ()  # other names of the measure shown (its measure name for an id)


def gather_map(sources: MapSources, req: MapRequest) -> MapData:
    """The data of ``req``'s map: the view completed from the defaults, the measure's values,
    the partnership's areas and outline, its gap table when the measure is a rate, and the
    other maps it can be shown as."""
    name = get_partnerships([req.partnership])[0].phase_at(None).name
    req = sources.view(req)
    values = sources.values(req.geography, req.indicator, req.denominator, req.baseline, req.threshold)
    codes = sources.codes(req.partnership, req.geography)
    survey = None
    if values.measure.kind == "survey":
        survey = sources.survey(values.measure, req.partnership)
        values = _unmarked(values)
    # a gap needs counts over a population for the partnership's areas (IMD covers England
    # only; a published rate has no counts)
    gap = sources.gap(values, req.partnership) if gives_gap(values, codes) else None
    sets = tiles.tile_sets(sources.store)
    row = sets[sets["set_id"] == req.geography]
    if row.empty:
        raise NotFoundError(f"no {req.geography} boundaries to map; sets with boundaries: "
                            f"{', '.join(sets['set_id'])}")
    min_zoom = int(row["minzoom"].iloc[0])
    outline = sources.outline(req.partnership)
    reference_sets = [s for s in places.REFERENCE_SETS if s in set(sets["set_id"]) and s != req.geography]
    # constituencies are named on their own map (issue 28: a constituency map showed no names);
    # neighbourhoods are too many to name, wards and districts are named by the reference layer
    named = req.geography if area_words(req.geography)[0] in NAMED_AREAS else None
    choices = sources.choices(req.partnership)
    surveys = sources.survey_measures()
    # a survey rate says what it is a share of ("Employment rate, % of people aged 16-64")
    choices = [replace(c, label=survey_label(c.label)) if (c.geography, c.indicator) in surveys else c
               for c in choices]
    return MapData(req, values, codes, outline, gap, name, choices, min_zoom,
                   sources.areas(req.geography, codes), sources.labels(outline.get("bbox"), named),
                   reference_sets,
                   str(row["label"].iloc[0] or req.geography), survey, _aliases(sources.store, values))


def _aliases(store: Store, values: AreaValues) -> tuple[str, ...]:
    """The measure names that stand for exactly the indicators shown: a map asked for by an
    indicator id (``aps.employment_rate``) is the choice offered by its measure name
    (``employment_rate``), and the picker shows that choice as chosen."""
    known = layers.available_measures(store, values.measure.set_id)
    shown = set(values.measure.indicators)
    return tuple(name for name, rows in known.groupby("measure")
                 if set(rows["indicator_id"]) == shown and name != values.measure.name)


def _unmarked(values: AreaValues) -> AreaValues:
    """A survey measure's values with no number for a district marked in the file: an
    unreliable estimate (a sample of 3 to 9 people) is published but is neither coloured, ranked
    nor shown as a figure; the page says it in words. The cached values are left as they are."""
    frame = values.frame
    marked = frame["reliability"].notna() if "reliability" in frame else pd.Series(False, frame.index)
    if not marked.any():
        return values
    blank = {c: frame[c].mask(marked) for c in ("value", "value_low", "value_high", "half_width")
             if c in frame}
    return replace(values, frame=frame.assign(**blank))


def render_map_page(data: MapData, urls: PageUrls | None = None) -> str:
    """The whole HTML page (map, side panel, data block) for one partnership map.

    A static site's page (``StaticSiteUrls``) carries its Content-Security-Policy in a
    ``<meta>``; the service sends it as a header.
    """
    urls = urls or PageUrls()
    config = page_config(data, urls)
    assets = {
        "leaflet": vendor_url("leaflet", "dist/leaflet.js", urls.static),
        "leaflet_css": vendor_url("leaflet", "dist/leaflet.css", urls.static),
        "vectorgrid": vendor_url("leaflet.vectorgrid", "dist/Leaflet.VectorGrid.bundled.min.js", urls.static),
        "pmtiles": vendor_url("pmtiles", "dist/pmtiles.js", urls.static) if urls.standalone else None,
        "map_js": asset_url("geo-cs/map.js", urls.static, in_path=not urls.standalone),
        # making an area and sharing a view need the service: a static site's page has neither
        "custom_js": None if urls.standalone else asset_url("geo-cs/custom.js", urls.static, in_path=True),
        "map_css": asset_url("geo-cs/map.css", urls.static, in_path=not urls.standalone),
    }
    req = data.req
    choices = data.choices
    names = {req.indicator, *data.aliases}
    chosen = next((i for i, c in enumerate(choices) if c.geography == req.geography
                   and c.indicator in names and c.denominator == req.denominator), None)
    if chosen is None:
        # a map reached by its address but not offered (a published rate beside its count): the
        # picker shows it as chosen rather than another map's name
        choices = [*choices, layers.ViewChoice(req.geography, data.geography_label or req.geography,
                                               req.indicator, req.denominator, config["measure"],
                                               gap=config["hasGap"])]
        chosen = len(choices) - 1
    return TEMPLATES.get_template("map.html").render(
        config=config, config_json=json_for_html(config), req=req, choices=choices, chosen=chosen,
        assets=assets, schemes=("quantiles", "fisher_jenks", "equal_interval", "own"),
        csp_meta=CONTENT_SECURITY_POLICY if urls.standalone else None)


#: What each kind of measure is, for the help page.
KIND_WORDS = {
    "count": "A number of people in each area. Where the area's working-age population is published "
             "too, the map shows it as a percentage of that population, which gives the worst-performing "
             "neighbourhoods and the gap.",
    "rate": "A percentage, as published. Without the numbers of people behind it, it cannot be added up "
            "over several areas, so it gives no worst-performing neighbourhoods or gap.",
    "score": "A score from an index of deprivation: it puts areas in order (higher is more deprived) but "
             "is not a share of people.",
    "rank": "Each area's place among all the areas of its nation, 1 being the most deprived.",
    "decile": "Which tenth of all the areas of its nation the area is in, 1 being the most deprived tenth.",
    "survey": "An estimate from a sample survey (the Annual Population Survey), as the Office for National "
              "Statistics publishes it, with its 95% interval where one is published. A district marked "
              "unreliable (a survey sample of 3 to 9 people) or missing is shown in words, never as a "
              "figure. A difference between two districts, or two periods, is called real only when its "
              "95% interval does not include 0; without published intervals the map cannot say.",
}

_HARMONISED = re.compile(r"\s*\(harmonised to [^)]*\)", re.I)


def help_measures(store: Store) -> list[dict[str, str]]:
    """The help page's list of data: one row per measure and geography, with what it is, the
    periods it covers and its sources, from the store's indicators."""
    from geo_cs.narrative import source_line

    catalogue = layers.indicator_catalogue(store)
    rows = []
    for (_, _), group in catalogue.groupby(["measure", "set_id"], sort=False):
        group = group.sort_values("first_start")
        published = group[~group["label"].str.contains(_HARMONISED)]
        named = published if len(published) else group
        label = sentence_case(_HARMONISED.sub("", str(named["label"].iloc[-1])))
        kind = str(group["kind"].iloc[0])
        if kind == "survey":
            label = survey_label(label)   # what the rate is a share of
        definition = KIND_WORDS.get(kind, "A figure for each area, as published.")
        if kind == "rate" and "%" not in label and group["unit"].iloc[0] == "%":
            label += " (%)"
        if len(published) < len(group):
            definition += " Some editions are estimated from earlier boundaries (hatched on the map)."
        n = int(group["n_periods"].sum())
        first, last = group["first_period"].iloc[0], group.sort_values("last_start")["last_period"].iloc[-1]
        periods = str(first) if first == last else f"{first} to {last} ({n} periods)"
        licences = sorted({str(x) for x in group["licence"] if x})
        source = source_line(group.rename(columns={"source": "title"})[["title", "publisher"]])
        source = source.removeprefix("Source: ") + (f" {', '.join(licences)}." if licences else "")
        geography = str(group["geography"].iloc[0])
        rows.append({"label": label, "definition": definition, "geography": geography,
                     "periods": periods, "source": source})
    return sorted(rows, key=lambda r: (r["label"].lower(), r["geography"]))


def render_help(store: Store, urls: PageUrls | None = None) -> str:
    """The help page (``/maps/help``, ``help.html`` of a static site): what worst-performing
    means, the baseline, the gap, the interval, boundary-change estimates, the colours, and
    each measure the store holds with its definition and source. Every map page links to it
    (``helpUrl`` in its config)."""
    urls = urls or PageUrls()
    return TEMPLATES.get_template("help.html").render(
        measures=help_measures(store), attribution=OGL_ATTRIBUTION,
        back="index.html" if urls.standalone else "/maps/",
        back_words="Back to the map" if urls.standalone else "All partnerships",
        css=asset_url("geo-cs/map.css", urls.static, in_path=not urls.standalone),
        csp_meta=CONTENT_SECURITY_POLICY if urls.standalone else None)


#: The partnerships' kinds and the confidence in their areas, in words (the list of partnerships).
KIND_NAMES = {"cs": "City Strategy Pathfinder", "daf": "Deprived Areas Fund partnership"}
CONFIDENCE_WORDS = {"stated": "areas as stated in the evaluation",
                    "assumed": "areas assumed (the usual definition)",
                    "partial": "areas known only in part"}


def render_index(partnerships: list[dict]) -> str:
    """The list of partnerships, each linking to its map; their kind and the confidence in
    their areas in words ("cs · assumed" meant nothing to staff)."""
    worded = [{**p, "kind": KIND_NAMES.get(p.get("kind", ""), p.get("kind", "")),
               "confidence": CONFIDENCE_WORDS.get(p.get("confidence", ""), p.get("confidence", ""))}
              for p in partnerships]
    return TEMPLATES.get_template("index.html").render(partnerships=worded, attribution=OGL_ATTRIBUTION)


#: What each parameter of a map's address is, in words, for an error page.
_PARAMETER_WORDS: dict[str, tuple[str, str]] = {
    "partnership": ("We could not find that partnership",
                    "There is no partnership called “{value}”. Choose yours from the list of partnerships."),
    "view": ("This map is not available",
             "{name} has no map of that measure on those areas. Open its map as it first opens and "
             "choose another under “Map of”."),
    "period": ("This period is not on the map",
               "The period in the address (“{value}”) is not one this map covers. Open the map and "
               "choose a period with the slider."),
    "baseline": ("This baseline is not available",
                 "The baseline in the address (“{value}”) is not one of this map's periods. Open the map "
                 "and choose the baseline under “Worst-performing neighbourhoods”."),
    "threshold": ("The threshold must be a number",
                  "The threshold for worst-performing neighbourhoods must be a number from 0 to 100, "
                  "such as 25."),
    "k": ("Choose between 2 and 9 colours",
          "The number of colour classes must be a whole number from 2 to 9."),
    "breaks": ("Your class limits could not be used",
               "Your own class limits must be numbers separated by commas, each larger than the one "
               "before, at most 8 of them: for example 10,20,30."),
    "scheme": ("Choose how the colours are grouped",
               "Choose how the colours are grouped from the list on the map."),
    "chart": ("No chart for this map",
              "This map's measure does not count people, so it has no worst-performing neighbourhoods "
              "and no gap to chart."),
    "q": ("Type something to find",
          "Type at least one letter or number of a place name, area code or postcode to find it."),
}

#: The start of a core error's message (geo_cs.errors), and the parameter it is about.
_DETAIL_PARAMETERS: tuple[tuple[str, str], ...] = (
    (r"^unknown partnership", "partnership"),
    (r"^no default map for partnership|^partnership '.*': no \w+ areas|^no \S+ boundaries to map"
     r"|^indicator\b|^measure\b|^denominator\b|^geography\b", "view"),
    (r"^period\b", "period"),
    (r"^baseline\b", "baseline"),
    (r"^threshold\b", "threshold"),
    (r"^k\b|^k=", "k"),
    (r"^breaks\b|^scheme 'own'", "breaks"),
    (r"^scheme\b", "scheme"),
    (r"is not a count over a population", "chart"),
)

#: Words for an error that is not about one parameter, by status.
_STATUS_WORDS: dict[int, tuple[str, str]] = {
    404: ("Page not found", "There is no page at this address. Choose a partnership from the list."),
    410: ("This page is out of date", "The data behind this page have been updated. Open the map again."),
    413: ("The request is too large", "The request is larger than this service accepts."),
    414: ("The address is too long", "The address is longer than this service accepts. Open the map "
                                     "as it first opens and choose again."),
    500: ("Something went wrong", "Something went wrong while drawing this page. It has been logged; "
                                  "please try again later."),
    503: ("The service is busy", "The service is busy or being updated. Please try again in a minute."),
}


def explain_error(status: int, detail: str, path: str, query: dict[str, str] | None = None,
                  parameters: list[str] | None = None) -> tuple[str, str]:
    """(title, sentence) for a person who met an error on a map page: what to do, in words
    about their task, never the service's own terms (issue 28: "threshold: Input should be a
    valid number", "unknown partnership nowhere; known: …" reached council staff). The
    technical ``detail`` stays in the API's problem+json (and folded away on the page).

    ``parameters``: the parameters a request's validation refused; otherwise the parameter is
    read from the start of the core's message.

    >>> explain_error(400, "threshold: Input should be a valid number", "/maps/glasgow",
    ...               {"threshold": "abc"}, ["threshold"])[1]
    'The threshold for worst-performing neighbourhoods must be a number from 0 to 100, such as 25.'
    >>> explain_error(404, "unknown partnership nowhere; known: glasgow", "/maps/nowhere")[1]
    'There is no partnership called “nowhere”. Choose yours from the list of partnerships.'
    """
    query = query or {}
    parts = [p for p in path.split("/") if p]
    partnership = parts[1] if len(parts) >= 2 and parts[0] == "maps" else ""
    found = next((p for p in parameters or [] if p in _PARAMETER_WORDS), None)
    if found is None and (parameters or [None])[0] == "partnership":
        found = "partnership"
    if found is None:
        found = next((name for pattern, name in _DETAIL_PARAMETERS if re.search(pattern, detail)), None)
    if found is None or status >= 500:
        return _STATUS_WORDS.get(status, ("This page could not be shown",
                                          "The address asks for something the map cannot show. Open the "
                                          "map as it first opens, or choose a partnership from the list."))
    title, words = _PARAMETER_WORDS[found]
    value = partnership if found == "partnership" else query.get(found, "")
    return title, words.format(value=value[:60], name=_partnership_name(partnership) or "This partnership")


def _partnership_name(partnership: str) -> str | None:
    """The partnership's name, or None for an id no partnership has."""
    try:
        return get_partnerships([partnership])[0].phase_at(None).name
    except GeoCsError:
        return None


def render_error_page(status: int, title: str, detail: str, path: str, query: dict[str, str] | None = None,
                      parameters: list[str] | None = None, help_url: str = PageUrls.help) -> str:
    """The page a person sees when a map cannot be drawn: what to do, in words about their task
    (:func:`explain_error`), links back to the partnership's map as it opens by default (when
    there is such a partnership), to the list of partnerships and to the help page; the
    technical detail folded away for whoever supports them."""
    parts = [p for p in path.split("/") if p]
    known = len(parts) >= 2 and parts[0] == "maps" and _partnership_name(parts[1]) is not None
    back = f"/maps/{parts[1]}" if known else None
    heading, sentence = explain_error(status, detail, path, query, parameters)
    return TEMPLATES.get_template("error.html").render(
        status=status, title=heading, sentence=sentence, technical_title=title, detail=detail, back=back,
        help_url=help_url, attribution=OGL_ATTRIBUTION)


def download_name(req: MapRequest, extension: str, period: str | None = None, what: str = "") -> str:
    """The file name of a download from the page, saying what it holds:
    ``glasgow_simd2020_employment_deprived.csv`` (partnership, period, measure), then the
    settings that change its figures when they are not the defaults (:func:`settings_suffix`),
    so files of different figures never share a name.

    >>> download_name(MapRequest("glasgow", indicator="employment_deprived", threshold=20), "csv", "simd2020")
    'glasgow_simd2020_employment_deprived_threshold-20.csv'
    """
    parts = [file_stem(req.partnership), period or req.period, req.indicator, what, *settings_suffix(req)]
    stem = "_".join(re.sub(r"[^A-Za-z0-9_]+", "-", p).strip("-") for p in parts if p)
    return f"{stem}.{extension}"


def partnership_map_png(store: Store, req: MapRequest, disclosure: DisclosureControl | None = None,
                        dpi: int = 150) -> bytes:
    """The print map (:func:`geo_cs.export.maps.partnership_map`) of the view as the page shows
    it — its period, classes, baseline and threshold — as PNG bytes."""
    from geo_cs.export.maps import figure_bytes, partnership_map

    figure = partnership_map(
        store, req.partnership, geography=req.geography, indicator=req.indicator,
        denominator=req.denominator, periods=[req.period] if req.period else None, scheme=req.scheme,
        k=req.k, breaks=list(req.breaks) if req.breaks else None, baseline=req.baseline,
        threshold=req.threshold, disclosure=disclosure)
    return figure_bytes(figure, "png", dpi)
