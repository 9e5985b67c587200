"""``geo-cs export``: print maps, charts, reports, area profiles, PMTiles and static sites."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from geo_cs.cli.common import AreaFileOpt, err, make_progress, out, split_list, state, with_area_files
from geo_cs.custom_areas import file_stem
from geo_cs.errors import InputError

export_app = typer.Typer(help="Exports for reports: maps, charts, partnership reports and area profiles (PDF, Word, OpenDocument, HTML).",
                         no_args_is_help=True)


@export_app.command("map")
def export_map(
    out_path: Annotated[Path, typer.Option("--out", "-o", help="Output file: .png (300 dpi), .svg or .pdf.")],
    partnership: Annotated[str | None, typer.Option("--partnership", "-p", help="Partnership id (geo-cs analyse … -p; see /maps/).")] = None,
    area_file: Annotated[Path | None, typer.Option("--area-file", help="Your own area instead: a CSV or list of small-area codes, or a partnership file (.yaml).")] = None,
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
        own = [float(b) for b in split_list(breaks) or []] or None
    except ValueError as exc:
        raise InputError(f"--breaks {breaks!r}: expected comma-separated numbers") from exc
    if (partnership is None) == (area_file is None):
        raise typer.BadParameter("give --partnership (-p) or --area-file, one of them")
    with Store.open(state.db, read_only=True) as store:
        [partnership] = with_area_files(store, [partnership] if partnership else None,
                                        [area_file] if area_file else None, [geography] if geography else [])
        make_progress().note("drawing the map")
        figure = partnership_map(
            store, partnership, geography=geography, indicator=indicator, denominator=denominator,
            periods=period, scheme="own" if own else scheme, k=k, breaks=own,
            baseline=tuple(split_list(baseline) or ()) or None, threshold=threshold,
            disclosure=state.disclosure)
        written = save_figure(figure, out_path, dpi=dpi)
    out.print(f"wrote {written}", highlight=False)


@export_app.command("charts")
def export_charts(
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")],
    partnership: Annotated[list[str] | None, typer.Option("--partnership", "-p", help="Partnership id (repeat for several on one chart).")] = None,
    area_file: AreaFileOpt = None,
    formats: Annotated[str, typer.Option("--format", help="Comma-separated: png, svg, pdf.")] = "png,svg,pdf",
    geography: Annotated[str | None, typer.Option("--geography", "-g", help="Geography of figures 4.3-4.6 (default wpc2010).")] = None,
    indicator: Annotated[str | None, typer.Option("--indicator", "-i", help="Indicator of figures 4.3-4.6 (default claimants).")] = None,
    reference: Annotated[str, typer.Option(help="gb, nation:E|W|S or region:CODE.")] = "gb",
    survey_geography: Annotated[str | None, typer.Option("--survey-geography", help="District edition(s) of figures 4.1-4.2, comma-separated, e.g. lad2020 (default: every one held).")] = None,
    survey_period: Annotated[str | None, typer.Option("--survey-period", help="Period of figure 4.2, e.g. 2019y12 (default: the latest).")] = None,
    no_survey: Annotated[bool, typer.Option("--no-survey", help="Leave out figures 4.1-4.2 (the survey employment rate).")] = False,
) -> None:
    """The report's figures for partnerships, with intervals, and the CSV behind each:
    4.1-4.2 the employment rate from the Annual Population Survey (when the store holds it:
    the rate over time against GB or the nearest benchmark, and the partnerships side by side),
    4.3 index of the count, 4.5 rate and gap with GB, 4.7 worst-performing vs the rest."""
    from geo_cs.errors import NotFoundError
    from geo_cs.export.charts import partnership_charts
    from geo_cs.export.survey_charts import survey_charts
    from geo_cs.store import Store
    from geo_cs.survey import survey_sets

    if no_survey and (survey_geography or survey_period):
        raise typer.BadParameter("--no-survey leaves out figures 4.1-4.2: give it without --survey-geography "
                                 "or --survey-period")
    if not partnership and not area_file:
        raise typer.BadParameter("give --partnership (-p) or --area-file (or both; each repeats)")
    chosen = tuple(split_list(formats) or ())
    written, notes = [], []
    with Store.open(state.db, read_only=True) as store:
        partnership = with_area_files(store, partnership, area_file, [geography] if geography else [])
        make_progress().note(f"drawing charts for {len(partnership)} partnership{'s' if len(partnership) > 1 else ''}")
        if not no_survey and (survey_geography or survey_period or survey_sets(store)):
            written, notes = survey_charts(store, partnership, out_dir, formats=chosen,
                                           set_ids=split_list(survey_geography) or None, period=survey_period,
                                           disclosure=state.disclosure)
        try:
            written += partnership_charts(store, partnership, out_dir, formats=chosen,
                                          geography=geography or "wpc2010", indicator=indicator or "claimants",
                                          reference=reference, disclosure=state.disclosure)
        except NotFoundError as exc:
            # a store of survey estimates only: figures 4.1-4.2 are what it can give
            if not written or geography is not None or indicator is not None:
                raise
            notes.append(f"figures 4.3-4.7 not drawn: {exc}")
    for path in written:
        out.print(f"wrote {path}", highlight=False)
    for note in notes:
        for pid in partnership:   # a custom area by its name, not its id of all its areas
            note = note.replace(pid, file_stem(pid))
        err.print(Text("note: ", style="yellow") + Text(note), highlight=False)


@export_app.command("report")
def export_report(
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Output folder: PARTNERSHIP.pdf, .html, .docx, .odt.")],
    partnership: Annotated[list[str] | None, typer.Option("--partnership", "-p", help="Partnership id (repeat for several).")] = None,
    area_file: AreaFileOpt = None,
    all_: Annotated[bool, typer.Option("--all", help="Every partnership the store holds areas for.")] = False,
    formats: Annotated[str, typer.Option("--format", help="Comma-separated: pdf, html, docx, odt.")] = "pdf,html",
    geography: Annotated[str | None, typer.Option("--geography", "-g", help="Small-area geography (default: as the web map).")] = None,
    indicator: Annotated[str | None, typer.Option("--indicator", "-i", help="Small-area indicator (default: as the web map).")] = None,
) -> None:
    """A partnership profile as PDF, HTML, Word (docx) or OpenDocument (odt): the gap in words,
    map, charts, tables, the baseline cohort, method notes, data vintages and provenance, caveats.
    With --all or several -p, a failed partnership is named and the others are still written."""
    from geo_cs.export import check_formats

    chosen = check_formats(tuple(split_list(formats) or ()))
    if all_ == bool(partnership or area_file):
        raise typer.BadParameter("give --partnership (-p) or --all (or your own area with --area-file), not both or neither")
    # imported once the options are known to be good: a usage error is told at once
    from geo_cs.export.report import reportable_partnerships, write_reports
    from geo_cs.store import Store

    with Store.open(state.db, read_only=True) as store:
        ids, skipped = reportable_partnerships(store) if all_ else (
            with_area_files(store, partnership, area_file, [geography] if geography else []), [])
        results = write_reports(store, ids, out_dir, formats=chosen, geography=geography, indicator=indicator,
                                disclosure=state.disclosure, progress=make_progress())
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
        table.add_row(file_stem(r.partnership), r.name, ", ".join(p.name for p in r.files), f"{r.seconds:.1f}",
                      Text("written", style="green") if r.ok else Text(f"failed: {r.error}", style="red"))
    for pid in skipped:
        table.add_row(pid, "", "", "", Text("skipped: the store holds none of its areas", style="yellow"))
    out.print(table)
    for r in failed:
        err.print(Text("error: ", style="bold red") + Text(f"{file_stem(r.partnership)}: {r.error}"), highlight=False)
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
    from geo_cs.export import check_formats

    chosen = check_formats(tuple(split_list(formats) or ()))
    from geo_cs.export.area import area_document, area_profile
    from geo_cs.export.document import write_document
    from geo_cs.store import Store

    with Store.open(state.db, read_only=True) as store:
        make_progress().note(f"gathering the profile of {area}")
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
    from geo_cs.export.pmtiles import write_layer_pmtiles
    from geo_cs.store import Store

    with Store.open(state.db, read_only=True) as store:
        report = write_layer_pmtiles(store, layer, out_path, indicator=indicator, period=period,
                                     denominator=denominator, partnership=partnership, minzoom=minzoom,
                                     maxzoom=maxzoom, disclosure=state.disclosure, progress=make_progress())
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
    from geo_cs.maps.page import MapRequest
    from geo_cs.maps.site import export_site
    from geo_cs.store import Store

    progress = make_progress()
    with Store.open(state.db, read_only=True) as store:
        written = export_site(store, MapRequest(partnership, geography, indicator, scheme=scheme, k=k),
                              out_dir, disclosure=state.disclosure, progress=progress)
    out.print(f"wrote {len(written)} files to {out_dir}: put the folder on any web server or object store "
              "that serves byte ranges (nginx, Apache, S3) and open index.html there", highlight=False)
