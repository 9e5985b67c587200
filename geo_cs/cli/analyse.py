"""``geo-cs analyse``: rates, gaps and worst-performing neighbourhoods (DWP RR 783)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from geo_cs.cli.common import (
    AreaFileOpt,
    IndicatorOpt,
    JsonOption,
    err,
    open_store,
    out,
    print_report,
    state,
    with_area_files,
)
from geo_cs.errors import InputError

analyse_app = typer.Typer(
    help="Claimant rates, gaps and worst-performing neighbourhoods (DWP RR 783, with intervals).",
    no_args_is_help=True,
)

GeographyOpt = Annotated[str, typer.Option("--geography", "-g", help="Geography set of the areas, e.g. lsoa2011, datazone2001, wpc2010.")]
DenominatorOpt = Annotated[str | None, typer.Option(help="Indicator id of the denominators (default: the count rows' own).")]
IsRateOpt = Annotated[bool, typer.Option("--count-is-rate", help="The indicator holds rates (%); counts = rate × denominator.")]
PartnershipOpt = Annotated[list[str] | None, typer.Option("--partnership", "-p", help="Partnership id (repeat; default: all that lie in the geography's nations).")]
ThresholdOpt = Annotated[float, typer.Option(help="Worst-performing when the baseline rate exceeds this (%).")]
BaselineOpt = Annotated[str | None, typer.Option(help="Baseline periods in the series' own frequency: comma-separated, or a range such as 2015-01..2015-12 (default: May 2006-Feb 2007, else the first four quarters, the first 12 months, or the first edition).")]
ToleranceOpt = Annotated[float, typer.Option(help="Changes smaller than this (points) count as unchanged.")]
ConfidenceOpt = Annotated[float, typer.Option(help="Confidence level of the intervals.")]
WhenOpt = Annotated[str | None, typer.Option("--definition-date", help="Partnership definitions in force at this date (YYYY-MM-DD; default: the final ones).")]
OutOpt = Annotated[Path | None, typer.Option("--out", "-o", help="Write the table: .csv, .parquet, .arrow or .json.")]


def _params(panel: Any, threshold: float, baseline: str | None, tolerance: float,
            confidence: float) -> Any:
    from geo_cs.analysis import method_params

    return method_params(panel, threshold=threshold, baseline=baseline, tolerance=tolerance,
                         confidence=confidence)


def _panel(store: Any, indicator: str, geography: str, denominator: str | None, is_rate: bool,
           combine: bool = True) -> Any:
    """The panel of the indicator; ``combine=False`` where the analysis only lists areas by their
    own rate (no denominator needed, see :func:`geo_cs.analysis.rate_source`)."""
    from geo_cs.analysis import Panel, rate_source

    source, notes = rate_source(store, indicator, geography, denominator, is_rate, combine=combine)
    if not state.quiet:
        for note in notes:
            err.print(f"[yellow]note:[/yellow] {note}", highlight=False)
    return Panel(store, source)


def _when(text: str | None) -> Any:
    if text is None:
        return None
    from datetime import date

    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InputError(f"--definition-date {text!r}: expected YYYY-MM-DD") from None


def _emit(frame: Any, out_path: Path | None, columns: list[str], title: str) -> None:
    from geo_cs.output import write_table

    if not state.quiet:
        for note in frame.attrs.get("notes", []):
            err.print(f"[yellow]note:[/yellow] {note}", highlight=False)
    if "partnership" in frame.columns and frame["partnership"].astype(str).str.startswith("area-").any():
        # a custom area's id holds its areas (thousands of characters): it is named by its name
        from geo_cs.custom_areas import file_stem

        frame = frame.assign(partnership=frame["partnership"].map(
            lambda p: file_stem(p) if isinstance(p, str) else p))
    if out_path is not None:
        write_table(frame, out_path)
        if not state.quiet:
            err.print(f"{len(frame):,} rows written to {out_path}")
        return
    table = Table(title=title)
    shown = [c for c in columns if c in frame.columns]
    for col in shown:
        table.add_column(col, justify="left" if frame[col].dtype == object else "right")
    for row in frame[shown].itertuples(index=False):
        table.add_row(*[_cell(v) for v in row])
    out.print(table)


def _cell(value: Any) -> str:
    """A table cell: numbers to two decimals, nothing for a number that is not there."""
    if isinstance(value, float):
        return "" if value != value else f"{value:,.2f}"
    return "" if value is None else str(value)


def _partnerships(ids: list[str] | None, store: Any = None, area_files: list[Path] | None = None,
                  geographies: list[str] | tuple[str, ...] = ()) -> Any:
    """The partnerships asked for by id and as custom areas (``--area-file``); None: all."""
    from geo_cs.partnerships import get_partnerships

    ids = with_area_files(store, ids, area_files, geographies)
    return get_partnerships(ids) if ids else None


@analyse_app.command("prepare")
def analyse_prepare(
    indicator: IndicatorOpt, geography: GeographyOpt, denominator: DenominatorOpt = None,
    count_is_rate: IsRateOpt = False, as_json: JsonOption = False,
) -> None:
    """Store the indicator's area × period panel, analysis-ready, so that every analysis of it
    (and the map's threshold and baseline controls) starts from it instead of the observations.
    Run after the ingest that brings the data: any later ingest of the geography drops it."""
    from geo_cs.analysis import Panel, rate_source
    from geo_cs.panels import prepare_panel

    with open_store() as store:
        source, _ = rate_source(store, indicator, geography, denominator, count_is_rate)
        with store.transaction():
            panel = Panel(store, source, prepared=False)
            report = prepare_panel(store, panel)
            panel.drop()
    print_report(report, as_json)


@analyse_app.command("rates")
def analyse_rates(
    indicator: IndicatorOpt, geography: GeographyOpt, denominator: DenominatorOpt = None,
    count_is_rate: IsRateOpt = False, partnership: PartnershipOpt = None, area_file: AreaFileOpt = None,
    reference: Annotated[str, typer.Option(help="gb or nation:E|W|S.")] = "gb",
    base_period: Annotated[str | None, typer.Option(help="Base period of the index (default: the first).")] = None,
    confidence: ConfidenceOpt = 0.95, definition_date: WhenOpt = None, out_path: OutOpt = None,
) -> None:
    """Rate, index of the count and gap with GB per partnership and period (figures 4.3-4.6)."""
    from geo_cs.analysis import MethodParams, partnership_rates
    from geo_cs.store import Store

    with Store.open(state.db, read_only=True) as store:
        panel = _panel(store, indicator, geography, denominator, count_is_rate)
        result = partnership_rates(store, panel, _partnerships(partnership, store, area_file, [geography]),
                                   reference=reference,
                                   base_period=base_period, when=_when(definition_date),
                                   params=MethodParams(confidence=confidence))
    _emit(result, out_path, ["partnership", "period_label", "rate", "rate_low", "rate_high", "index",
                             "gap", "gap_low", "gap_high", "n_areas", "small"],
          f"{indicator}: rate, index and gap with {reference}")


@analyse_app.command("worst")
def analyse_worst(
    indicator: IndicatorOpt, geography: GeographyOpt, denominator: DenominatorOpt = None,
    count_is_rate: IsRateOpt = False, threshold: ThresholdOpt = 25.0, baseline: BaselineOpt = None,
    all_areas: Annotated[bool, typer.Option("--all", help="List every area, not only the cohort.")] = False,
    out_path: OutOpt = None,
) -> None:
    """The worst-performing neighbourhoods: baseline rate above the threshold (NI 153 cohort).

    Areas are listed by their own rate (the plain mean over the baseline periods), so a rate
    published without denominators (--count-is-rate, e.g. imd2010.employment_rate on lsoa2001)
    needs no --denominator here."""
    from geo_cs.analysis import worst_table
    from geo_cs.store import Store

    with Store.open(state.db, read_only=True) as store:
        # listing areas by their own (baseline) rate adds nothing up: no denominator needed
        panel = _panel(store, indicator, geography, denominator, count_is_rate, combine=False)
        params = _params(panel, threshold, baseline, 0.1, 0.95)
        cohort = worst_table(store, panel, params, all_areas=all_areas)
    if not state.quiet:
        err.print(f"{int(cohort['worst'].fillna(False).sum()):,} areas of {geography} exceed "
                  f"{params.threshold:g}% over the baseline {', '.join(params.baseline)}")
    _emit(cohort, out_path, ["code", "name", "baseline_rate", "n_baseline", "worst"],
          f"Worst-performing neighbourhoods: {indicator}")


@analyse_app.command("ni153")
def analyse_ni153(
    indicator: IndicatorOpt,
    geography: Annotated[list[str], typer.Option("--geography", "-g", help="Geography set; repeat for one per nation (e.g. -g lsoa2011 -g datazone2011).")],
    denominator: DenominatorOpt = None,
    count_is_rate: IsRateOpt = False, partnership: PartnershipOpt = None, area_file: AreaFileOpt = None,
    threshold: ThresholdOpt = 25.0, baseline: BaselineOpt = None, tolerance: ToleranceOpt = 0.1,
    confidence: ConfidenceOpt = 0.95, definition_date: WhenOpt = None,
    from_period: Annotated[str | None, typer.Option("--from", help="First period of the change (default: the first).")] = None,
    to_period: Annotated[str | None, typer.Option("--to", help="Last period of the change (default: the last).")] = None,
    cohort_indicator: Annotated[str | None, typer.Option(help="Fix the cohort on another indicator and geography (e.g. imd2010.employment_rate), carried here by a crosswalk.")] = None,
    cohort_geography: Annotated[str | None, typer.Option(help="Geography of --cohort-indicator (e.g. lsoa2001).")] = None,
    cohort_is_rate: Annotated[bool, typer.Option("--cohort-is-rate", help="--cohort-indicator holds rates (%).")] = False,
    changes_out: Annotated[Path | None, typer.Option("--changes-out", help="Write the per-partnership changes table too.")] = None,
    out_path: OutOpt = None,
) -> None:
    """Worst-performing neighbourhoods vs the rest of each partnership over time (figure 4.7)."""
    from geo_cs.analysis import CohortSource, ni153_series, summarise_changes
    from geo_cs.output import write_table
    from geo_cs.store import Store

    if cohort_indicator is not None and cohort_geography is None:
        raise InputError("--cohort-indicator needs --cohort-geography")
    cohort_from = (CohortSource(cohort_indicator, cohort_geography, cohort_is_rate)
                   if cohort_indicator is not None else None)
    with Store.open(state.db, read_only=True) as store:
        series = ni153_series(
            store, indicator, geography, denominator=denominator, count_is_rate=count_is_rate,
            partnerships=_partnerships(partnership, store, area_file, geography), threshold=threshold,
            baseline=baseline,
            tolerance=tolerance, confidence=confidence, when=_when(definition_date),
            from_period=from_period, to_period=to_period, cohort_from=cohort_from)
    params = series.params
    _emit(series.table, out_path, ["partnership", "period_label", "cohort_rate", "rest_rate", "gap",
                                   "gap_low", "gap_high", "n_cohort", "cohort_share"],
          f"NI 153: {indicator}, baseline {', '.join(params.baseline)}, threshold {params.threshold:g}%")
    if series.changes is None:
        return  # no coverage (the notes say why), or a single period
    if changes_out is not None:
        write_table(series.changes, changes_out)
    if not state.quiet:
        _emit(series.changes, None, ["partnership", "gap_from", "gap_to", "gap_change", "gap_change_low",
                                     "gap_change_high", "gap_direction", "cohort_rate_direction"],
              f"Change {series.label(series.first)} → {series.label(series.last)}")
        out.print(summarise_changes(series.changes))


@analyse_app.command("nations")
def analyse_nations(
    indicator: IndicatorOpt, geography: GeographyOpt, denominator: DenominatorOpt = None,
    count_is_rate: IsRateOpt = False, threshold: ThresholdOpt = 25.0, baseline: BaselineOpt = None,
    confidence: ConfidenceOpt = 0.95, out_path: OutOpt = None,
) -> None:
    """Per nation: worst-performing vs other neighbourhoods inside and outside partnerships."""
    from geo_cs.analysis import nation_comparison
    from geo_cs.store import Store

    with Store.open(state.db, read_only=True) as store:
        panel = _panel(store, indicator, geography, denominator, count_is_rate)
        params = _params(panel, threshold, baseline, 0.1, confidence)
        table = nation_comparison(store, panel, params=params)
    _emit(table, out_path, ["nation", "area", "period_label", "cohort_rate", "rest_rate", "gap",
                            "cohort_n_areas", "rest_n_areas"], f"Nations: {indicator}")


@analyse_app.command("comparator")
def analyse_comparator(
    indicator: IndicatorOpt, geography: GeographyOpt, denominator: DenominatorOpt = None,
    count_is_rate: IsRateOpt = False, baseline: BaselineOpt = None,
    district: Annotated[list[str] | None, typer.Option(help="A comparator district code (repeat).")] = None,
    worst_n: Annotated[int | None, typer.Option(help="The N districts in no partnership with the worst baseline rate.")] = None,
    above: Annotated[float | None, typer.Option(help="Districts in no partnership whose baseline rate exceeds this (%).")] = None,
    out_path: OutOpt = None,
) -> None:
    """A comparator area of districts in no partnership, by list or by rule, and its rates."""
    from geo_cs.analysis import comparator_area
    from geo_cs.store import Store

    with Store.open(state.db, read_only=True) as store:
        panel = _panel(store, indicator, geography, denominator, count_is_rate)
        params = _params(panel, 25.0, baseline, 0.1, 0.95)
        comp = comparator_area(store, panel, districts=district, worst_n=worst_n, above=above,
                               params=params)
    if not state.quiet:
        err.print(f"comparator: {comp.rule}")
        _emit(comp.members, None, ["code", "name", "baseline_rate", "rank"], "Comparator members")
    _emit(comp.rates, out_path, ["period_label", "rate", "rate_low", "rate_high", "n_areas"],
          "Comparator rates")


NO_INTERVAL = "no interval published"   # geo_cs.survey.NO_INTERVAL, without importing it here
SURVEY_COLUMNS = {"numerator": "count", "districts_in_figure": "n_areas", "benchmark": "reference",
                  "benchmark_rate": "reference_rate"}
#: The columns of ``analyse employment``, named as ``analyse rates`` names its own.
EMPLOYMENT_COLUMNS = ["partnership", "group_kind", "group", "name", "period_id", "period_label",
                      "rate", "rate_low", "rate_high", "half_width", "interval", "count",
                      "denominator", "n_areas", "districts", "unreliable", "missing", "reference",
                      "reference_rate", "gap", "gap_low", "gap_high", "gap_real", "note",
                      "indicator", "geography"]


def employment_table(table: Any, all_groups: bool = False) -> Any:
    """:func:`geo_cs.survey.employment_rates` as ``analyse employment`` shows and writes it:
    columns named as ``analyse rates`` names them (``count`` the numerator, ``n_areas`` the
    districts in the figure, ``reference`` the benchmark), ``partnership`` set on partnerships'
    rows; the partnerships and the benchmark only, unless ``all_groups``."""
    notes = list(table.attrs.get("notes", []))
    frame = table.rename(columns=SURVEY_COLUMNS)
    if not all_groups:
        frame = frame[frame["group_kind"].isin(["partnership", "benchmark"])]
    frame = frame.assign(partnership=frame["group"].where(frame["group_kind"] == "partnership", ""))
    frame = frame[EMPLOYMENT_COLUMNS].reset_index(drop=True)
    for column in ("unreliable", "missing", "note"):
        frame[column] = frame[column].fillna("")
    frame.attrs["notes"] = notes + _row_notes(frame)
    frame.attrs["benchmark"] = table.attrs.get("benchmark")
    return frame


def _row_notes(frame: Any) -> list[str]:
    """The rows' notes said once each: a note of every group (denominators derived, no interval
    published) once for all, the others with the groups they are about."""
    groups: dict[str, list[str]] = {}
    for name, note, interval in zip(frame["name"], frame["note"], frame["interval"], strict=True):
        parts = [part for part in str(note).split("; ") if part]
        if interval == NO_INTERVAL:
            parts.append("no interval published: the file gives none, and none is made up")
        for part in parts:
            names = groups.setdefault(part, [])
            if name not in names:
                names.append(name)
    every = frame["name"].nunique()
    return [f"{'every figure' if len(names) == every > 1 else ', '.join(names)}: {part}"
            for part, names in groups.items()]


def _periods(store: Any, indicator: str, set_id: str | None, texts: list[str] | None) -> list[str] | None:
    """The rolling years ``--period`` names (ids 2019y12, labels Jan 2019-Dec 2019, Nomis dates
    2019-12, ranges A..B, comma lists), among those the indicator holds on the set; a range
    keeps the held ones, a single period not held is left for the analysis to name."""
    if not texts:
        return None
    from geo_cs.periods import Period, select_periods
    from geo_cs.survey import survey_sets

    set_id = set_id or next(iter(survey_sets(store, indicator)), None)
    rows = store.sql(
        "SELECT DISTINCT p.period_id, p.kind, p.label, p.start_date, p.end_date, p.data_year "
        "FROM observations o JOIN periods p USING (period_id) WHERE o.indicator_id = ? "
        "AND o.set_id = ? ORDER BY p.start_date", [indicator, set_id]).fetchall()
    held = [Period(*row) for row in rows]
    held_ids = {p.period_id for p in held}
    chosen: list[str] = []
    for text in texts:
        for part in (t.strip() for t in text.split(",") if t.strip()):
            try:
                found = select_periods(part, held)
            except ValueError as exc:
                raise InputError(f"--period {part!r}: {exc}") from None
            chosen += [p for p in found if p in held_ids] if ".." in part else list(found)
    if not chosen:
        span = f"{held[0].label} to {held[-1].label}" if held else "none"
        raise InputError(f"--period {', '.join(texts)}: no period of {indicator} on {set_id} in it; "
                         f"it has {len(held)} ({span})")
    return list(dict.fromkeys(chosen))


@analyse_app.command("employment")
def analyse_employment(
    indicator: Annotated[str, typer.Option("--indicator", "-i", help="Survey indicator id (see geo-cs info).")] = "aps.employment_rate",
    geography: Annotated[str | None, typer.Option("--geography", "-g", help="District edition of the survey file (lad2020 for the 2019 GB download, lad2021 for the API extract; default: the one with the most periods).")] = None,
    partnership: PartnershipOpt = None,
    period: Annotated[list[str] | None, typer.Option("--period", help="Rolling years: repeat or comma-separated, ids (2019y12), labels (Jan 2019-Dec 2019) or ranges (2015-12..2019-12); default: all.")] = None,
    comparator_size: Annotated[int, typer.Option(min=0, help="Districts in no partnership, lowest employment rate first, that make the comparator area (0: none).")] = 20,
    all_groups: Annotated[bool, typer.Option("--all-groups", help="Also show nations, regions and the comparator area (default: partnerships and the benchmark).")] = False,
    definition_date: WhenOpt = None, out_path: OutOpt = None,
) -> None:
    """Employment rate from the Annual Population Survey per partnership and period, with its 95%
    interval and the gap with Great Britain (or the benchmark the file holds), figures 4.1-4.2.

    A partnership's rate is Σ numerators / Σ denominators of its districts; its interval combines
    the districts' published intervals (independent samples). Districts marked unreliable or
    missing are named, with what they do to the figure."""
    from geo_cs.store import Store
    from geo_cs.survey import check_survey_indicator, employment_rates

    with Store.open(state.db, read_only=True) as store:
        check_survey_indicator(store, indicator)
        periods = _periods(store, indicator, geography, period)
        table = employment_rates(store, indicator, set_id=geography, partnerships=partnership or None,
                                 periods=periods, comparator_size=comparator_size,
                                 when=_when(definition_date))
    frame = employment_table(table, all_groups)
    reference = frame.attrs.get("benchmark") or "the benchmark"
    _emit(frame, out_path, ["name", "period_label", "rate", "rate_low", "rate_high", "gap", "gap_low",
                            "gap_high", "n_areas", "unreliable", "missing"],
          f"{indicator}: survey rate (95% interval) and gap with {reference}")
