"""The ``geo-cs`` command line: parsing and formatting only; the work is in the library.

Exit codes: 0 success, 1 internal error, 2 usage, 3 invalid input data, 4 database/extension,
5 not found (see :mod:`geo_cs.errors`).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from geo_cs.config import Settings
from geo_cs.errors import GeoCsError, InputError
from geo_cs.progress import Progress, RichProgress, SilentProgress

HELP = """\
geo-cs: worklessness analysis and mapping for local employment partnerships.

Loads small-area boundaries (LSOAs, data zones, wards, districts), geography lookups and
out-of-work benefit / employment-deprivation indicators into one DuckDB database.

\b
Start here:  geo-cs demo         build ./geo-cs.duckdb from the bundled real data
Your data:   geo-cs ingest boundaries PATH…
             geo-cs ingest lookup CSV
             geo-cs ingest indicator CSV
Look:        geo-cs info
Serve:       geo-cs serve

Exit codes: 0 ok, 1 internal error, 2 usage, 3 invalid input data,
4 database or spatial extension, 5 not found.
"""

app = typer.Typer(help=HELP, no_args_is_help=True, add_completion=False,
                  pretty_exceptions_enable=False, rich_markup_mode=None)
ingest_app = typer.Typer(
    help="Load boundaries, lookups or indicators into the database (each is one transaction).",
    no_args_is_help=True,
)
app.add_typer(ingest_app, name="ingest")

# Tables are wide; when output goes to a pipe or file, don't squeeze them to 80 columns.
_WIDTH = None if sys.stdout.isatty() else int(os.environ.get("COLUMNS", "200"))
out = Console(soft_wrap=True, width=_WIDTH)
err = Console(stderr=True, soft_wrap=True)


class OnDuplicateChoice(StrEnum):
    error = "error"
    first = "first"
    largest = "largest"


class State:
    quiet: bool = False
    db: Path = Settings().db
    disclosure: Any = None  # geo_cs.disclosure.DisclosureControl when on


state = State()


@app.callback()
def _global(
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars or reports.")] = False,
    db: Annotated[
        Path | None,
        typer.Option("--db", help="Database file [env GEO_CS_DB; default ./geo-cs.duckdb].",
                     show_default=False),
    ] = None,
    disclosure_control: Annotated[
        bool,
        typer.Option("--disclosure-control",
                     help="Round published counts to 5 and suppress rates of fewer than 10 people, "
                          "in exports and the served API, tiles and maps [env GEO_CS_DISCLOSURE_CONTROL].",
                     show_default=False),
    ] = False,
    code_changes: Annotated[
        Path | None,
        typer.Option("--code-changes",
                     help="YAML of district code changes to add or veto [env GEO_CS_CODE_CHANGES; "
                          "default boundaries/code_changes.yaml].", show_default=False),
    ] = None,
) -> None:
    import os

    if code_changes is not None:
        # the environment carries it to the server's worker processes too
        os.environ["GEO_CS_CODE_CHANGES"] = str(code_changes)
    if disclosure_control:
        # the environment carries it to the server's worker processes too
        os.environ["GEO_CS_DISCLOSURE_CONTROL"] = "1"
    settings = Settings()
    state.quiet = quiet
    state.db = db or settings.db
    state.disclosure = settings.disclosure()


def _progress() -> Progress:
    return SilentProgress() if state.quiet else RichProgress()


def _print_report(report: Any, as_json: bool) -> None:
    if as_json:
        out.print_json(json.dumps(report.to_dict(), default=str))
    elif not state.quiet:
        for line in report.lines():
            out.print(line, highlight=False, markup=False, soft_wrap=True)


@contextlib.contextmanager
def _open_store() -> Iterator[Any]:
    """The read-write store for an ingest. An existing database is updated on a copy swapped in
    atomically (so it can be ingested into while ``geo-cs serve`` serves it); a database file this
    command created is removed again when the ingest fails, so a typo in --db leaves nothing."""
    from geo_cs.store import updating

    created = not state.db.exists()
    try:
        with updating(state.db) as store:
            yield store
    except BaseException:
        if created:
            state.db.unlink(missing_ok=True)
            Path(str(state.db) + ".wal").unlink(missing_ok=True)
        raise


JsonOption = Annotated[bool, typer.Option("--json", help="Print the report as JSON.")]


@ingest_app.command("boundaries")
def ingest_boundaries_cmd(
    paths: Annotated[list[Path], typer.Argument(help="Boundary files or folders of per-district files.")],
    set_id: Annotated[str | None, typer.Option("--set", help="Geography set, e.g. lsoa2011 (default: recognised from the code column).")] = None,
    geography: Annotated[str | None, typer.Option(help="Geography type (lsoa, datazone, ward, lad, wpc…); with --vintage, instead of --set.")] = None,
    vintage: Annotated[int | None, typer.Option(help="Boundary vintage year, with --geography.")] = None,
    code_col: Annotated[str | None, typer.Option("--code-col", help="Column holding the area code.")] = None,
    name_col: Annotated[str | None, typer.Option("--name-col", help="Column holding the area name.")] = None,
    layer: Annotated[str | None, typer.Option(help="Layer to read from a multi-layer file.")] = None,
    on_duplicate: Annotated[OnDuplicateChoice, typer.Option("--on-duplicate", help="Same code with different geometries: refuse (error), keep the first, or keep the largest.")] = OnDuplicateChoice.error,
    allow_unlisted: Annotated[bool, typer.Option("--allow-unlisted-codes", help="Accept codes missing from the set's official list (listed in the report).")] = False,
    as_json: JsonOption = False,
) -> None:
    """Read GeoJSON, TopoJSON, Shapefile, GeoPackage, FlatGeobuf or GeoParquet boundaries."""
    from geo_cs.geography import registry
    from geo_cs.ingest import ingest_boundaries

    if (geography is None) != (vintage is None):
        raise InputError("--geography and --vintage go together")
    if geography is not None:
        set_id = registry().by_type(geography, vintage).set_id
    with _open_store() as store:
        report = ingest_boundaries(
            store, list(paths), set_id=set_id, code_col=code_col, name_col=name_col,
            layer=layer, on_duplicate=on_duplicate.value, allow_unlisted=allow_unlisted,
            progress=_progress(),
        )
    _print_report(report, as_json)


@ingest_app.command("lookup")
def ingest_lookup_cmd(
    path: Annotated[Path, typer.Argument(help="An ONS/NRS lookup CSV.")],
    kind: Annotated[str | None, typer.Option(help="Lookup layout id (default: recognised from the header).")] = None,
    allow_unlisted: Annotated[bool, typer.Option("--allow-unlisted-codes", help="Accept codes missing from their set's official list.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Load a geography lookup: LSOA 2001→2011→2021, Data Zone 2001↔2011, LSOA→ward→district, district changes."""
    from geo_cs.ingest import ingest_lookup

    with _open_store() as store:
        report = ingest_lookup(store, path, lookup_id=kind, allow_unlisted=allow_unlisted,
                               progress=_progress())
    _print_report(report, as_json)


@ingest_app.command("postcodes")
def ingest_postcodes_cmd(
    path: Annotated[Path, typer.Argument(help="A postcode directory CSV (ONS NSPL or ONSPD, or any postcode → area code file).")],
    postcode_col: Annotated[str | None, typer.Option("--postcode-col", help="The postcode column (default: recognised: pcds, pcd, postcode…).")] = None,
    include_terminated: Annotated[bool, typer.Option("--include-terminated", help="Keep terminated postcodes (doterm set).")] = False,
    as_json: JsonOption = False,
) -> None:
    """Load postcode districts (G51, NG7) for the map's search, from the areas their postcodes are in."""
    from geo_cs.ingest.postcodes import ingest_postcodes

    with _open_store() as store:
        report = ingest_postcodes(store, path, postcode_col=postcode_col,
                                  include_terminated=include_terminated, progress=_progress())
    _print_report(report, as_json)


@ingest_app.command("indicator")
def ingest_indicator_cmd(
    path: Annotated[Path, typer.Argument(help="A statistics CSV (long, Nomis bulk, Stat-Xplore table or wide).")],
    spec: Annotated[str | None, typer.Option(help="Spec TOML file or shipped spec id (default: the shipped spec for this file name).")] = None,
    layout: Annotated[str | None, typer.Option(help="Without a spec: long, nomis or statxplore.")] = None,
    set_id: Annotated[str | None, typer.Option("--set", help="Without a spec: geography set of the area codes, e.g. lsoa2011.")] = None,
    source_id: Annotated[str | None, typer.Option("--source-id", help="Without a spec: a short id for this source (default: file name).")] = None,
    measure: Annotated[str | None, typer.Option(help="Without a spec: measure name (statxplore: required; nomis: keep rows of this MEASURES_NAME).")] = None,
    kind: Annotated[list[str] | None, typer.Option(help="Without a spec: count, rate, score, rank or decile, for every measure or as MEASURE=KIND (repeat).")] = None,
    frequency: Annotated[str | None, typer.Option(help="Without a spec: month or quarter (default: monthly when the file has months other than Feb/May/Aug/Nov).")] = None,
    code_col: Annotated[str | None, typer.Option("--code-col", help="Without a spec: the area code column (default: recognised, e.g. lsoa11cd, GEOGRAPHY_CODE).")] = None,
    period_col: Annotated[str | None, typer.Option("--period-col", help="Without a spec: the period column (default: recognised, e.g. date, DATE, period).")] = None,
    value_col: Annotated[str | None, typer.Option("--value-col", help="Without a spec: the value column (default: value, OBS_VALUE).")] = None,
    absent: Annotated[str | None, typer.Option(help="Without a spec: an area absent in a period it is otherwise listed for: unknown (default) or zero.")] = None,
    denominator_from_rate: Annotated[list[str] | None, typer.Option("--denominator-from-rate", help="Without a spec (long): COUNT=RATE measures; the count's denominator is derived as count / rate × 100 (repeat).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Load area statistics, validated against a declarative spec."""
    from geo_cs.ingest import ingest_indicator, load_spec
    from geo_cs.ingest.indicators import spec_for_file, spec_from_options

    if spec is not None:
        parsed = load_spec(spec)
    elif layout is not None:
        if set_id is None:
            raise InputError("--layout needs --set (the geography set of the area codes)")
        parsed = spec_from_options(
            path, layout, set_id, source_id=source_id, measure=measure, kinds=kind,
            frequency=frequency, absent=absent, derive=denominator_from_rate,
            columns={"code_column": code_col, "period_column": period_col, "value_column": value_col})
    else:
        parsed = spec_for_file(path)
    with _open_store() as store:
        report = ingest_indicator(store, path, parsed, progress=_progress())
    _print_report(report, as_json)


# -- analyse ------------------------------------------------------------------------------------

analyse_app = typer.Typer(
    help="Claimant rates, gaps and worst-performing neighbourhoods (DWP RR 783, with intervals).",
    no_args_is_help=True,
)
app.add_typer(analyse_app, name="analyse")

IndicatorOpt = Annotated[str, typer.Option("--indicator", "-i", help="Count indicator id, e.g. dwp_oowb_wpc10.claimants (see geo-cs info).")]
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
    from geo_cs.analysis import MethodParams, resolve_baseline

    chosen = resolve_baseline(panel, baseline)
    return MethodParams(threshold=threshold, baseline=chosen, tolerance_pp=tolerance,
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

    with _open_store() as store:
        source, _ = rate_source(store, indicator, geography, denominator, count_is_rate)
        with store.transaction():
            panel = Panel(store, source, prepared=False)
            report = prepare_panel(store, panel)
            panel.drop()
    _print_report(report, as_json)


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
    from geo_cs.analysis import worst_cohort
    from geo_cs.store import Store

    with Store.open(state.db, read_only=True) as store:
        panel = _panel(store, indicator, geography, denominator, count_is_rate)
        params = _params(panel, threshold, baseline, 0.1, 0.95)
        cohort = worst_cohort(panel, params)
        names = dict(store.sql("SELECT code, name FROM areas WHERE set_id = ?", [geography]).fetchall())
    cohort.insert(1, "name", cohort["code"].map(names))
    cohort = cohort.sort_values("baseline_rate", ascending=False)
    if not all_areas:
        cohort = cohort[cohort["worst"].fillna(False).astype(bool)]
    cohort["baseline"] = ",".join(params.baseline)
    cohort["threshold"] = params.threshold
    cohort["indicator"] = panel.source.label
    cohort["geography"] = geography
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
    import pandas as pd

    from geo_cs.analysis import (
        carry_cohort,
        classify_changes,
        ni153,
        resolve_baseline,
        summarise_changes,
        worst_cohort,
    )
    from geo_cs.output import write_table
    from geo_cs.store import Store

    tables, periods = [], []
    with Store.open(state.db, read_only=True) as store:
        for set_id in geography:
            panel = _panel(store, indicator, set_id, denominator, count_is_rate)
            params = _params(panel, threshold, baseline, tolerance, confidence)
            cohort = None
            if cohort_indicator is not None:
                if cohort_geography is None:
                    raise InputError("--cohort-indicator needs --cohort-geography")
                source = _panel(store, cohort_indicator, cohort_geography, None, cohort_is_rate)
                source_params = _params(source, threshold, None, tolerance, confidence)
                cohort = worst_cohort(source, source_params)
                if cohort_geography != set_id:
                    cohort = carry_cohort(store, cohort, f"{cohort_geography}->{set_id}")
            tables.append(ni153(store, panel, _partnerships(partnership), params=params,
                                when=_when(definition_date), cohort=cohort))
            if not periods:
                periods = panel.period_ids()
                # --from/--to as the user writes them (2017-10 for the month 2017m10)
                first = resolve_baseline(panel, from_period)[0] if from_period else periods[0]
                last = resolve_baseline(panel, to_period)[-1] if to_period else periods[-1]
    table = pd.concat(tables, ignore_index=True)
    table.attrs["notes"] = [n for t in tables for n in t.attrs.get("notes", [])]
    _emit(table, out_path, ["partnership", "period_label", "cohort_rate", "rest_rate", "gap",
                            "gap_low", "gap_high", "n_cohort", "cohort_share"],
          f"NI 153: {indicator}, baseline {', '.join(params.baseline)}, threshold {params.threshold:g}%")
    if table.empty:
        return  # no coverage: the notes say why
    labels = dict(zip(table["period_id"], table["period_label"], strict=True))
    if first != last:
        changes = classify_changes(table, first, last, params)
        if changes_out is not None:
            write_table(changes, changes_out)
        if not state.quiet:
            _emit(changes, None, ["partnership", "gap_from", "gap_to", "gap_change", "gap_change_low",
                                  "gap_change_high", "gap_direction", "cohort_rate_direction"],
                  f"Change {labels.get(first, first)} → {labels.get(last, last)}")
            out.print(summarise_changes(changes))


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


# -- crosswalks and harmonised series ------------------------------------------------------------

export_app = typer.Typer(help="Exports for reports: maps, charts, partnership reports and area profiles (PDF, Word, OpenDocument, HTML).",
                         no_args_is_help=True)
app.add_typer(export_app, name="export")


def _split(text: str | None) -> list[str] | None:
    return [p.strip() for p in text.split(",") if p.strip()] if text else None


@export_app.command("map")
def export_map(
    partnership: Annotated[str, typer.Option("--partnership", "-p", help="Partnership id (geo-cs analyse … -p; see /maps/).")],
    out_path: Annotated[Path, typer.Option("--out", "-o", help="Output file: .png (300 dpi), .svg or .pdf.")],
    geography: Annotated[str | None, typer.Option("--geography", "-g", help="Boundary set (default: as the web map).")] = None,
    indicator: Annotated[str | None, typer.Option("--indicator", "-i", help="Indicator id or measure (default: as the web map).")] = None,
    denominator: Annotated[str | None, typer.Option(help="Indicator of denominators, for counts without them.")] = None,
    period: Annotated[list[str] | None, typer.Option("--period", help="Period to map (repeat for small multiples; default first and latest).")] = None,
    scheme: Annotated[str, typer.Option(help="quantiles, fisher_jenks, equal_interval or own.")] = "quantiles",
    k: Annotated[int, typer.Option(help="Number of classes (2-9).")] = 5,
    breaks: Annotated[str | None, typer.Option(help="Own class breaks, e.g. 10,20,30 (implies --scheme own).")] = None,
    threshold: Annotated[float, typer.Option(help="Worst-performing threshold, %.")] = 25.0,
    baseline: Annotated[str | None, typer.Option(help="Comma-separated baseline periods.")] = None,
    dpi: Annotated[int, typer.Option(help="PNG resolution.")] = 300,
) -> None:
    """A print-ready choropleth of a partnership: legend, scale bar, north arrow, outlines,
    worst-performing neighbourhoods outlined, estimates hatched, OGL attribution."""
    from geo_cs.export.maps import partnership_map, save_figure
    from geo_cs.store import Store

    try:
        own = [float(b) for b in _split(breaks) or []] or None
    except ValueError as exc:
        raise InputError(f"--breaks {breaks!r}: expected comma-separated numbers") from exc
    with Store.open(state.db, read_only=True) as store:
        _progress().note(f"drawing {partnership}")
        figure = partnership_map(
            store, partnership, geography=geography, indicator=indicator, denominator=denominator,
            periods=period, scheme="own" if own else scheme, k=k, breaks=own,
            baseline=tuple(_split(baseline) or ()) or None, threshold=threshold,
            disclosure=state.disclosure)
        written = save_figure(figure, out_path, dpi=dpi)
    out.print(f"wrote {written}", highlight=False)


@export_app.command("charts")
def export_charts(
    partnership: Annotated[list[str], typer.Option("--partnership", "-p", help="Partnership id (repeat for several on one chart).")],
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")],
    formats: Annotated[str, typer.Option("--format", help="Comma-separated: png, svg, pdf.")] = "png,svg,pdf",
    geography: Annotated[str, typer.Option("--geography", "-g", help="Geography of figures 4.3-4.6.")] = "wpc2010",
    indicator: Annotated[str, typer.Option("--indicator", "-i", help="Indicator of figures 4.3-4.6.")] = "claimants",
    reference: Annotated[str, typer.Option(help="gb, nation:E|W|S or region:CODE.")] = "gb",
) -> None:
    """The report's figures for partnerships, with intervals, and the CSV behind each:
    4.3 index of the count, 4.5 rate and gap with GB, 4.7 worst-performing vs the rest."""
    from geo_cs.export.charts import partnership_charts
    from geo_cs.store import Store

    with Store.open(state.db, read_only=True) as store:
        _progress().note(f"drawing charts for {', '.join(partnership)}")
        written = partnership_charts(store, partnership, out_dir, formats=tuple(_split(formats) or ()),
                                     geography=geography, indicator=indicator, reference=reference,
                                     disclosure=state.disclosure)
    for path in written:
        out.print(f"wrote {path}", highlight=False)


@export_app.command("report")
def export_report(
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Output folder: PARTNERSHIP.pdf, .html, .docx, .odt.")],
    partnership: Annotated[list[str] | None, typer.Option("--partnership", "-p", help="Partnership id (repeat for several).")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Every partnership the store holds areas for.")] = False,
    formats: Annotated[str, typer.Option("--format", help="Comma-separated: pdf, html, docx, odt.")] = "pdf,html",
    geography: Annotated[str | None, typer.Option("--geography", "-g", help="Small-area geography (default: as the web map).")] = None,
    indicator: Annotated[str | None, typer.Option("--indicator", "-i", help="Small-area indicator (default: as the web map).")] = None,
) -> None:
    """A partnership profile as PDF, HTML, Word (docx) or OpenDocument (odt): the gap in words,
    map, charts, tables, the baseline cohort, method notes, data vintages and provenance, caveats.
    With --all or several -p, a failed partnership is named and the others are still written."""
    from geo_cs.export.report import check_formats, reportable_partnerships, write_reports
    from geo_cs.store import Store

    chosen = tuple(_split(formats) or ())
    check_formats(chosen)
    if all_ == bool(partnership):
        raise typer.BadParameter("give --partnership (-p) or --all, not both or neither")
    with Store.open(state.db, read_only=True) as store:
        ids, skipped = reportable_partnerships(store) if all_ else (list(partnership or []), [])
        results = write_reports(store, ids, out_dir, formats=chosen, geography=geography, indicator=indicator,
                                disclosure=state.disclosure, progress=_progress())
    failed = [r for r in results if not r.ok]
    if len(results) == 1 and failed:
        raise failed[0].exception
    if len(results) == 1:
        for path in results[0].files:
            out.print(f"wrote {path}", highlight=False)
        return
    table = Table(title=f"Reports in {out_dir}")
    for column in ("partnership", "name", "files", "seconds", "result"):
        table.add_column(column, justify="right" if column == "seconds" else "left")
    for r in results:
        table.add_row(r.partnership, r.name, ", ".join(p.name for p in r.files), f"{r.seconds:.1f}",
                      Text("written", style="green") if r.ok else Text(f"failed: {r.error}", style="red"))
    for pid in skipped:
        table.add_row(pid, "", "", "", Text("skipped: the store holds none of its areas", style="yellow"))
    out.print(table)
    for r in failed:
        err.print(Text("error: ", style="bold red") + Text(f"{r.partnership}: {r.error}"), highlight=False)
    if failed:
        raise typer.Exit(max(r.exit_code for r in failed))


@export_app.command("profile")
def export_profile(
    area: Annotated[str, typer.Option("--area", "-a", help="Area code: a data zone or LSOA, a ward or a district (e.g. S13002645).")],
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Output folder: CODE.pdf (and the other formats asked).")],
    partnership: Annotated[str | None, typer.Option("--partnership", "-p", help="Partnership to rank it in (default: the one it is in).")] = None,
    formats: Annotated[str, typer.Option("--format", help="Comma-separated: pdf, html, docx, odt.")] = "pdf",
) -> None:
    """One area's profile: its series with intervals, its rank in the partnership and in its
    nation, its gap with the partnership, and how its boundary changed."""
    from geo_cs.export.area import area_document, area_profile
    from geo_cs.export.document import write_document
    from geo_cs.export.report import check_formats
    from geo_cs.store import Store

    chosen = check_formats(tuple(_split(formats) or ()))
    with Store.open(state.db, read_only=True) as store:
        _progress().note(f"gathering the profile of {area}")
        doc = area_document(area_profile(store, area, partnership=partnership, disclosure=state.disclosure))
    for fmt in chosen:
        out.print(f"wrote {write_document(doc, out_dir / f'{area.strip()}.{fmt}', fmt)}", highlight=False)


@export_app.command("pmtiles")
def export_pmtiles(
    layer: Annotated[str, typer.Option("--layer", "-l", help="Boundary set to tile, e.g. lsoa2011 (see /tiles).")],
    out_path: Annotated[Path, typer.Option("--out", "-o", help="Output .pmtiles file.")],
    indicator: Annotated[str | None, typer.Option("--indicator", "-i", help="Indicator id or measure to carry as values.")] = None,
    period: Annotated[str | None, typer.Option(help="Period of the values (default the latest).")] = None,
    denominator: Annotated[str | None, typer.Option(help="Indicator of denominators, for counts without them.")] = None,
    minzoom: Annotated[int, typer.Option(help="First zoom.")] = 4,
    maxzoom: Annotated[int, typer.Option(help="Last zoom (at most 14).")] = 12,
    partnership: Annotated[str | None, typer.Option("--partnership", "-p", help="Only this partnership's areas.")] = None,
) -> None:
    """A PMTiles v3 archive of a tile layer (the service's tiles, with metadata), for any static
    host: vector_layers, bounds and the OGL attribution are in its metadata."""
    from geo_cs.export.pmtiles import write_pmtiles
    from geo_cs.layers import area_values, resolve_measure
    from geo_cs.store import Store

    progress = _progress()
    with Store.open(state.db, read_only=True) as store:
        values = None
        if indicator is not None:
            measure = resolve_measure(store, layer, indicator, denominator)
            values = area_values(store, measure, disclosure=state.disclosure).at(period)
        codes = None
        if partnership is not None:
            from geo_cs.partnerships import get_partnerships, resolve

            codes = resolve(store, get_partnerships([partnership])[0], layer).codes
        report = write_pmtiles(store, layer, out_path, minzoom=minzoom, maxzoom=maxzoom, values=values,
                               codes=codes, progress=progress)
    for line in report.lines():
        out.print(line, highlight=False)


@export_app.command("site")
def export_site_cmd(
    partnership: Annotated[str, typer.Option("--partnership", "-p", help="Partnership id.")],
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Output folder for the static site.")],
    geography: Annotated[str | None, typer.Option("--geography", "-g", help="Boundary set (default: as the web map).")] = None,
    indicator: Annotated[str | None, typer.Option("--indicator", "-i", help="Indicator id or measure (default: as the web map).")] = None,
    scheme: Annotated[str, typer.Option(help="quantiles, fisher_jenks, equal_interval or own.")] = "quantiles",
    k: Annotated[int, typer.Option(help="Number of classes (2-9).")] = 5,
) -> None:
    """The partnership's web map as static files (tiles in PMTiles archives): host the folder on
    any web server or object store, no Python needed."""
    from geo_cs.store import Store
    from maps.page import MapRequest
    from maps.site import export_site

    progress = _progress()
    with Store.open(state.db, read_only=True) as store:
        written = export_site(store, MapRequest(partnership, geography, indicator, scheme=scheme, k=k),
                              out_dir, disclosure=state.disclosure, progress=progress)
    out.print(f"wrote {len(written)} files to {out_dir}: put the folder on any web server or object store "
              "that serves byte ranges (nginx, Apache, S3) and open index.html there", highlight=False)


crosswalk_app = typer.Typer(help="Crosswalks between geography vintages (lookups, geometry, chains).",
                            no_args_is_help=True)
app.add_typer(crosswalk_app, name="crosswalk")


@crosswalk_app.command("build")
def crosswalk_build(
    from_set: Annotated[str, typer.Option("--from", help="Source geography set, e.g. lsoa2001.")],
    to_set: Annotated[str, typer.Option("--to", help="Target geography set, e.g. lsoa2011.")],
    via: Annotated[str | None, typer.Option(help="Build FROM→VIA and VIA→TO, then chain them.")] = None,
    through: Annotated[str | None, typer.Option(help="Districts/wards: weight by the small areas (e.g. lsoa2011) both editions are made of.")] = None,
    population: Annotated[str | None, typer.Option(help="Population indicator to weight splits (on the target set; with --through, on the small areas).")] = None,
    basis: Annotated[str, typer.Option(help="auto (lookup if any, else geometry), lookup or geometry.")] = "auto",
    sliver: Annotated[float, typer.Option(help="Geometry: ignore overlaps below this share of the source.")] = 0.001,
    as_json: JsonOption = False,
) -> None:
    """Build a crosswalk and print its summary: links by type, coverage, slivers."""
    from geo_cs.crosswalk import build_crosswalk, chain_crosswalks

    if basis not in ("auto", "lookup", "geometry"):
        raise InputError(f"--basis {basis!r}: expected auto, lookup or geometry")
    from geo_cs.crosswalk import build_crosswalk_through

    with _open_store() as store:
        if through is not None:
            reports = [build_crosswalk_through(store, from_set, to_set, through, population=population)]
        elif via is None:
            reports = [build_crosswalk(store, from_set, to_set, population=population, basis=basis,  # type: ignore[arg-type]
                                       sliver_tolerance=sliver)]
        else:
            # the population weights whichever step ends on the geography it is published for
            on_via = population is not None and store.sql(
                "SELECT count(*) FROM observations WHERE indicator_id = ? AND set_id = ?",
                [population, via]).fetchone()[0] > 0
            first = build_crosswalk(store, from_set, via, population=population if on_via else None,
                                    basis=basis, sliver_tolerance=sliver)  # type: ignore[arg-type]
            second = build_crosswalk(store, via, to_set, population=None if on_via else population,
                                     basis=basis, sliver_tolerance=sliver)  # type: ignore[arg-type]
            reports = [first, second, chain_crosswalks(store, first.crosswalk_id, second.crosswalk_id)]
    for report in reports:
        _print_report(report, as_json)


@crosswalk_app.command("codes")
def crosswalk_codes(
    district: Annotated[list[str] | None, typer.Option("--district", "-d", help="Only the changes linked to this district code (repeatable), followed both ways along the chain.")] = None,
    as_json: JsonOption = False,
) -> None:
    """The district code history: which district codes replaced which, when, and the evidence
    (shared unchanged small areas, their share of the old and new district, the area change),
    inferred from the lookups and boundaries held and read from the official changes list, with
    the additions and vetoes of boundaries/code_changes.yaml applied."""
    from geo_cs.codehistory import COLUMNS
    from geo_cs.district_codes import district_history
    from geo_cs.store import Store

    with Store.open(state.db, read_only=True) as store:
        history = district_history(store, district)
    if district and history.empty:
        raise InputError(f"--district {', '.join(district)}: no code change recorded for it "
                         "(its code did not change in the editions and lists held)")
    if as_json:
        records = history[[*COLUMNS, "years"]].astype(object).where(history.notna(), None)
        out.print_json(json.dumps(records.to_dict("records"), default=str))
        return
    table = Table(title=f"District code changes in {state.db} ({len(history):,})")
    for col in ("old code", "old name", "new code", "new name", "kind", "years", "basis",
                "shared", "of old", "of new", "area change", "evidence"):
        table.add_column(col, justify="right" if col in ("shared", "of old", "of new", "area change") else "left")

    import pandas as pd

    def shown(value: Any, form: str = "{}") -> str:
        return "" if pd.isna(value) else form.format(value)

    for row in history.itertuples(index=False):
        basis = f"{row.basis} (vetoed)" if row.vetoed else row.basis
        table.add_row(
            row.old_code, shown(row.old_name), row.new_code, shown(row.new_name), row.kind,
            row.years, basis, shown(row.shared_members, "{:,}"),
            shown(100 * row.share_of_old, "{:.1f}%"), shown(100 * row.share_of_new, "{:.1f}%"),
            shown(100 * row.area_change, "{:+.1f}%"),
            row.evidence + shown(row.note, " — {}"),
        )
    out.print(table)


tiles_app = typer.Typer(help="Vector tiles: prepare them for fast serving.", no_args_is_help=True)
app.add_typer(tiles_app, name="tiles")


@tiles_app.command("prepare")
def tiles_prepare(
    layers: Annotated[list[str] | None, typer.Argument(help="Boundary sets to prepare (default: every tiled set).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Cut every tile's areas once and store them, so serving reads tiles instead of clipping them
    (several times faster; the database grows by about the size of the boundaries). Run again
    after ingesting boundaries of a set: until then its tiles are clipped on the fly."""
    from geo_cs.tiles import prepare_tiles, tile_sets

    with _open_store() as store:
        chosen = layers or tile_sets(store)["set_id"].tolist()
        reports = [prepare_tiles(store, layer, progress=_progress()) for layer in chosen]
    for report in reports:
        _print_report(report, as_json)


@app.command()
def harmonise(
    indicator: IndicatorOpt,
    to_set: Annotated[str, typer.Option("--to", help="Target geography set, e.g. lsoa2011.")],
    from_set: Annotated[str | None, typer.Option("--from", help="Source geography set (default: the indicator's other one).")] = None,
    crosswalk: Annotated[str | None, typer.Option(help="Crosswalk id (default FROM->TO).")] = None,
    weight: Annotated[str | None, typer.Option(help="Population indicator to carry a rate or score that has no counts.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Carry an indicator onto another geography through a crosswalk; print totals before/after."""
    from geo_cs.crosswalk import harmonise as run_harmonise

    with _open_store() as store:
        report = run_harmonise(store, indicator, to_set, from_set=from_set, crosswalk_id=crosswalk,
                               weight=weight)
    _print_report(report, as_json)


@app.command()
def info() -> None:
    """What the database holds: boundary sets, indicators and periods."""
    from geo_cs.store import Store

    with Store.open(state.db, read_only=True) as store:
        sets, inds = store.summary()
        table = Table(title=f"Boundary sets in {state.db}")
        for col in ("set", "label", "codes", "with boundaries", "nations"):
            table.add_column(col)
        for row in sets:
            table.add_row(row[0], row[1], f"{row[2]:,}", f"{row[3]:,}", row[4] or "")
        out.print(table)
        table = Table(title="Indicators")
        for col in ("indicator", "geography", "observations", "with value", "periods", "period kind"):
            table.add_column(col, no_wrap=col == "indicator")
        for row in inds:
            periods = row[4] if row[6] == 1 else f"{row[4]} – {row[5]} ({row[6]})"
            table.add_row(row[0], row[1], f"{row[2]:,}", f"{row[3]:,}", periods, row[7] or "")
        out.print(table)


@app.command()
def demo(
    serve: Annotated[bool, typer.Option("--serve/--no-serve", help="Serve the demo database afterwards and print the map's URL (--no-serve: build only).")] = True,
    port: Annotated[int, typer.Option(help="Port for --serve.")] = 8000,
    force: Annotated[bool, typer.Option("--force", help="Replace a database the demo did not build.")] = False,
) -> None:
    """Build the database from the embedded demo bundle (real data for the City Strategy areas)
    and serve it: the map's URL is printed."""
    from geo_cs.demo import OGL_ATTRIBUTION, build_demo, load_manifest, reset_demo_database
    from geo_cs.store import Store

    manifest = load_manifest()
    reset_demo_database(state.db, force)  # the demo database is rebuilt from scratch every time
    with Store.open(state.db) as store:
        results = build_demo(store, progress=_progress())
        if not state.quiet:
            out.print(f"[bold]{manifest.title}[/bold]")
            for step, report in results:
                first = report.lines()[0].replace(str(manifest.root) + "/", "")
                out.print(f"  {step['kind']:<10} {first}", highlight=False, markup=False)
            n_areas = store.sql("SELECT count(geom_27700) FROM areas").fetchone()[0]
            n_obs = store.sql("SELECT count(*) FROM observations").fetchone()[0]
            out.print(f"\nDatabase {state.db}: {n_areas:,} areas with boundaries, "
                      f"{n_obs:,} observations.")
            out.print(f"[dim]{OGL_ATTRIBUTION}[/dim]")
            if not serve:
                out.print("Next: geo-cs serve, then open http://127.0.0.1:8000/maps/   |   geo-cs info")
    if serve:
        _serve(host="127.0.0.1", port=port, workers=1)


def _serve(host: str, port: int, workers: int, base_url: str | None = None) -> None:
    import os

    import uvicorn

    os.environ["GEO_CS_DB"] = str(state.db.resolve())
    if base_url:
        os.environ["GEO_CS_BASE_URL"] = base_url
    # printed even with --quiet: without it nobody knows where to point the browser
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    err.print(f"serving {state.db} read-only: the map at http://{shown}:{port}/maps/ , "
              f"OGC API Features at http://{shown}:{port}/collections , "
              f"vector tiles at http://{shown}:{port}/tiles  (Ctrl+C stops)", soft_wrap=True)
    uvicorn.run("api.app:create_app", factory=True, host=host, port=port, workers=workers,
                log_level="warning" if state.quiet else "info")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
    base_url: Annotated[str | None, typer.Option(
        help="The service's public address behind a reverse proxy (https://maps.example.gov.uk/geo-cs): "
             "absolute links are built from it, not from the Host header.")] = None,
) -> None:
    """Serve the database read-only: web map, OGC API Features (GeoJSON, CSV) and vector tiles."""
    from geo_cs.store import Store
    from geo_cs.tiles import is_prepared, tile_sets

    # fail here, with a clear message, not in a worker
    with Store.open(state.db, read_only=True) as store:
        unprepared = [s for s in tile_sets(store)["set_id"] if not is_prepared(store, s)]
    if unprepared and not state.quiet:
        err.print(f"tiles of {', '.join(unprepared)} are clipped per request; `geo-cs tiles prepare` "
                  "makes them several times faster", soft_wrap=True, markup=False, highlight=False)
    _serve(host, port, workers, base_url)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app, turning geo-cs errors into a message and an exit code.

    ``argv`` defaults to the process's arguments; tests pass their own to run in-process.
    """
    try:
        # click returns (rather than raises) a command's typer.Exit code outside standalone mode
        code = app(args=argv, standalone_mode=False)
        if isinstance(code, int) and code:
            sys.exit(code)
    except GeoCsError as exc:
        # the message quotes users' values verbatim: never interpret it as rich markup
        err.print(Text("error: ", style="bold red") + Text(str(exc)), highlight=False)
        sys.exit(exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        err.print("aborted")
        sys.exit(130)
    except Exception as exc:  # usage errors (typer's own click) and bugs
        if isinstance(exc, typer.exceptions.TyperException) and hasattr(exc, "show"):
            exc.show()
            sys.exit(getattr(exc, "exit_code", 2))
        err.print(Text("internal error (please report it): ", style="bold red") + Text(repr(exc)))
        sys.exit(1)


if __name__ == "__main__":
    main()
