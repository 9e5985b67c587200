"""What every command group of the CLI shares: the consoles, the global options' state,
progress, report printing, the read-write store of an ingest and option types used by several groups."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from geo_cs.progress import Progress, RichProgress, SilentProgress

# Tables are wide; when output goes to a pipe or file, don't squeeze them to 80 columns.
_WIDTH = None if sys.stdout.isatty() else int(os.environ.get("COLUMNS", "200"))
out = Console(soft_wrap=True, width=_WIDTH)
err = Console(stderr=True, soft_wrap=True)

class State:
    quiet: bool = False
    # set from the settings by the app's callback; not read here, where a bad GEO_CS_ setting
    # would fail at import with a traceback instead of main's one-line error
    db: Path = Path("geo-cs.duckdb")
    disclosure: Any = None  # geo_cs.disclosure.DisclosureControl when on


state = State()


def make_progress() -> Progress:
    return SilentProgress() if state.quiet else RichProgress()


def print_report(report: Any, as_json: bool) -> None:
    if as_json:
        out.print_json(json.dumps(report.to_dict(), default=str))
    elif not state.quiet:
        for line in report.lines():
            out.print(line, highlight=False, markup=False, soft_wrap=True)


@contextlib.contextmanager
def open_store(*, create: bool = False) -> Iterator[Any]:
    """The read-write store for an ingest: written on a copy swapped in atomically
    (:func:`geo_cs.store.updating`), so it can be ingested into while ``geo-cs serve`` serves it,
    and a failed ingest leaves the database as it was, or none at all for a new one (a typo in
    --db leaves no database, only the hidden lock file beside it). Nothing is deleted here: a
    database that appears at --db while this ingest waits for the lock is another's, complete.

    Only an ingest (``create``) may start a database: a command that derives from what is there
    (tiles, crosswalks, harmonised series) refuses a missing one, rather than leave an empty
    database behind a typo in --db."""
    from geo_cs.errors import StoreError
    from geo_cs.store import updating

    if not create and not Path(state.db).exists():
        raise StoreError(f"database {state.db} does not exist; build it first (geo-cs ingest … or "
                         "geo-cs demo), or give the one to use with --db or GEO_CS_DB")
    with updating(state.db) as store:
        yield store


JsonOption = Annotated[bool, typer.Option("--json", help="Print the report as JSON.")]

#: The count indicator of an analysis or a harmonisation.
IndicatorOpt = Annotated[str, typer.Option("--indicator", "-i", help="Count indicator id, e.g. dwp_oowb_wpc10.claimants (see geo-cs info).")]


AreaFileOpt = Annotated[list[Path] | None, typer.Option(
    "--area-file", help="Your own area: a CSV or list of small-area codes (the map's 'codes (CSV)', any GIS's "
                        "export) or a partnership file (.yaml); repeat for several.")]


def with_area_files(store: Any, ids: list[str] | None, files: list[Path] | None,
                    geographies: list[str] | tuple[str, ...] = ()) -> list[str] | None:
    """``ids`` and the custom areas of ``files`` (:func:`geo_cs.partnerships.area_from_file`) as
    partnership ids; None when neither is given (a command's "all partnerships")."""
    from geo_cs.partnerships import area_from_file

    found = list(ids or []) + [area_from_file(store, f, geographies) for f in files or []]
    return found or None


def split_list(text: str | None) -> list[str] | None:
    return [p.strip() for p in text.split(",") if p.strip()] if text else None
