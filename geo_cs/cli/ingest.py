"""``geo-cs ingest``: boundaries, lookups and indicators into the store, each one transaction."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from geo_cs.cli.common import JsonOption, make_progress, open_store, print_report
from geo_cs.errors import InputError

ingest_app = typer.Typer(
    help="Load boundaries, lookups or indicators into the database (each is one transaction).",
    no_args_is_help=True,
)


class OnDuplicateChoice(StrEnum):
    error = "error"
    first = "first"
    largest = "largest"



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
    alive_in: Annotated[int | None, typer.Option("--alive-in", metavar="YEAR", help="For a file holding several editions (features with start/end years): keep the features in use in YEAR, leave out those of nations the set does not cover, and store district codes recoded by YEAR under their YEAR code (district code history).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Read GeoJSON, TopoJSON, Shapefile, GeoPackage, FlatGeobuf or GeoParquet boundaries."""
    from geo_cs.geography import registry
    from geo_cs.ingest import ingest_boundaries

    if (geography is None) != (vintage is None):
        raise InputError("--geography and --vintage go together")
    if geography is not None:
        set_id = registry().by_type(geography, vintage).set_id
    with open_store(create=True) as store:
        report = ingest_boundaries(
            store, list(paths), set_id=set_id, code_col=code_col, name_col=name_col,
            layer=layer, on_duplicate=on_duplicate.value, allow_unlisted=allow_unlisted,
            progress=make_progress(), alive_in=alive_in,
        )
    print_report(report, as_json)


@ingest_app.command("lookup")
def ingest_lookup_cmd(
    path: Annotated[Path, typer.Argument(help="An ONS/NRS lookup CSV.")],
    kind: Annotated[str | None, typer.Option(help="Lookup layout id (default: recognised from the header).")] = None,
    allow_unlisted: Annotated[bool, typer.Option("--allow-unlisted-codes", help="Accept codes missing from their set's official list.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Load a geography lookup: LSOA 2001→2011→2021, Data Zone 2001↔2011, LSOA→ward→district, district changes."""
    from geo_cs.ingest import ingest_lookup

    with open_store(create=True) as store:
        report = ingest_lookup(store, path, lookup_id=kind, allow_unlisted=allow_unlisted,
                               progress=make_progress())
    print_report(report, as_json)


@ingest_app.command("postcodes")
def ingest_postcodes_cmd(
    path: Annotated[Path, typer.Argument(help="A postcode directory CSV (ONS NSPL or ONSPD, or any postcode → area code file).")],
    postcode_col: Annotated[str | None, typer.Option("--postcode-col", help="The postcode column (default: recognised: pcds, pcd, postcode…).")] = None,
    include_terminated: Annotated[bool, typer.Option("--include-terminated", help="Keep terminated postcodes (doterm set).")] = False,
    as_json: JsonOption = False,
) -> None:
    """Load postcode districts (G51, NG7) for the map's search, from the areas their postcodes are in."""
    from geo_cs.ingest.postcodes import ingest_postcodes

    with open_store(create=True) as store:
        report = ingest_postcodes(store, path, postcode_col=postcode_col,
                                  include_terminated=include_terminated, progress=make_progress())
    print_report(report, as_json)


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
    district_edition: Annotated[int | None, typer.Option("--district-edition", help="A survey file (APS from Nomis): the year of the district codes (default: as the file says, else from the district code history).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Load area statistics, validated against a declarative spec.

    Nomis downloads of the Annual Population Survey (the web download and the API's long
    form) need no spec: they are recognised by their content and stored as survey estimates.
    """
    from geo_cs.ingest import ingest_indicator, load_spec
    from geo_cs.ingest.indicators import spec_for_file, spec_from_options
    from geo_cs.ingest.survey import ingest_survey, survey_shape

    if spec is None and layout is None and survey_shape(path) is not None:
        with open_store(create=True) as store:
            report = ingest_survey(store, path, set_edition=district_edition, progress=make_progress())
        print_report(report, as_json)
        return
    if district_edition is not None:
        raise InputError(f"--district-edition is for survey files (APS from Nomis); {path} is not one")
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
    with open_store(create=True) as store:
        report = ingest_indicator(store, path, parsed, progress=make_progress())
    print_report(report, as_json)
