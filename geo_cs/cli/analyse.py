"""``geo-cs analyse``: rates, gaps and worst-performing neighbourhoods (DWP RR 783)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from geo_cs.cli.common import IndicatorOpt, JsonOption, err, open_store, out, print_report, state
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


def _panel(store: Any, indicator: str, geography: str, denominator: str | None, is_rate: bool) -> Any:
    from geo_cs.analysis import Panel, rate_source

    source, notes = rate_source(store, indicator, geography, denominator, is_rate)
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
        table.add_row(*[f"{v:,.2f}" if isinstance(v, float) else str(v) for v in row])
    out.print(table)


def _partnerships(ids: list[str] | None) -> Any:
    from geo_cs.partnerships import get_partnerships

    return get_partnerships(ids)


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
    count_is_rate: IsRateOpt = False, partnership: PartnershipOpt = None,
    reference: Annotated[str, typer.Option(help="gb or nation:E|W|S.")] = "gb",
    base_period: Annotated[str | None, typer.Option(help="Base period of the index (default: the first).")] = None,
    confidence: ConfidenceOpt = 0.95, definition_date: WhenOpt = None, out_path: OutOpt = None,
) -> None:
    """Rate, index of the count and gap with GB per partnership and period (figures 4.3-4.6)."""
    from geo_cs.analysis import MethodParams, partnership_rates
    from geo_cs.store import Store

    with Store.open(state.db, read_only=True) as store:
        panel = _panel(store, indicator, geography, denominator, count_is_rate)
        result = partnership_rates(store, panel, _partnerships(partnership), reference=reference,
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
    """The worst-performing neighbourhoods: baseline rate above the threshold (NI 153 cohort)."""
    from geo_cs.analysis import worst_table
    from geo_cs.store import Store

    with Store.open(state.db, read_only=True) as store:
        panel = _panel(store, indicator, geography, denominator, count_is_rate)
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
    count_is_rate: IsRateOpt = False, partnership: PartnershipOpt = None,
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
            partnerships=_partnerships(partnership), threshold=threshold, baseline=baseline,
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
