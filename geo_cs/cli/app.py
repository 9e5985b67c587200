"""The root of the ``geo-cs`` command line: its help, the global options and every command group.

Exit codes: 0 success, 1 internal error, 2 usage, 3 invalid input data, 4 database/extension,
5 not found, 6 disk full (see :mod:`geo_cs.errors`).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.text import Text

from geo_cs.cli.analyse import analyse_app
from geo_cs.cli.common import err, state
from geo_cs.cli.crosswalk import crosswalk_app, harmonise
from geo_cs.cli.export import export_app
from geo_cs.cli.ingest import ingest_app
from geo_cs.cli.serve import demo, info, serve
from geo_cs.cli.tiles import tiles_app
from geo_cs.config import Settings
from geo_cs.errors import GeoCsError, InputError

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
4 database or spatial extension, 5 not found, 6 disk full.
"""

app = typer.Typer(help=HELP, no_args_is_help=True, add_completion=False,
                  pretty_exceptions_enable=False, rich_markup_mode=None)


def _show_version(asked: bool) -> None:
    if asked:
        from geo_cs import __version__

        typer.echo(f"geo-cs {__version__}")
        raise typer.Exit()


@app.callback()
def _global(
    version: Annotated[bool, typer.Option("--version", help="Show the version and exit.",
                                          callback=_show_version, is_eager=True)] = False,
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


# the order of --help: the commands, then the groups, each as registered
for command in (harmonise, info, demo, serve):
    app.command()(command)
for group, name in ((ingest_app, "ingest"), (analyse_app, "analyse"), (export_app, "export"),
                    (crosswalk_app, "crosswalk"), (tiles_app, "tiles")):
    app.add_typer(group, name=name)


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
    except ValidationError as exc:
        # a GEO_CS_ setting of the environment that is not what it should be: named, in one line
        for problem in exc.errors():
            name = "GEO_CS_" + "_".join(str(p) for p in problem["loc"]).upper()
            words = str(problem["msg"]).removeprefix("Value error, ")
            line = words if words.startswith(name) else f"{name}: {words}"
            err.print(Text("error: ", style="bold red") + Text(line), highlight=False)
        sys.exit(InputError.exit_code)
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
