"""``geo-cs crosswalk`` (build, codes) and ``geo-cs harmonise``: between geography vintages."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table

from geo_cs.cli.common import IndicatorOpt, JsonOption, open_store, out, print_report, state
from geo_cs.errors import InputError

crosswalk_app = typer.Typer(help="Crosswalks between geography vintages (lookups, geometry, chains).",
                            no_args_is_help=True)


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
    from geo_cs.crosswalk import build_crosswalk, build_crosswalk_through, build_crosswalk_via

    if basis not in ("auto", "lookup", "geometry"):
        raise InputError(f"--basis {basis!r}: expected auto, lookup or geometry")
    with open_store() as store:
        if through is not None:
            reports = [build_crosswalk_through(store, from_set, to_set, through, population=population)]
        elif via is None:
            reports = [build_crosswalk(store, from_set, to_set, population=population, basis=basis,  # type: ignore[arg-type]
                                       sliver_tolerance=sliver)]
        else:
            reports = build_crosswalk_via(store, from_set, via, to_set, population=population,
                                          basis=basis, sliver_tolerance=sliver)  # type: ignore[arg-type]
    for report in reports:
        print_report(report, as_json)


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

    with open_store() as store:
        report = run_harmonise(store, indicator, to_set, from_set=from_set, crosswalk_id=crosswalk,
                               weight=weight)
    print_report(report, as_json)
