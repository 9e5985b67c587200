"""``geo-cs tiles``: vector tiles prepared for fast serving."""

from __future__ import annotations

from typing import Annotated

import typer

from geo_cs.cli.common import JsonOption, make_progress, open_store, print_report

tiles_app = typer.Typer(help="Vector tiles: prepare them for fast serving.", no_args_is_help=True)


@tiles_app.command("prepare")
def tiles_prepare(
    layers: Annotated[list[str] | None, typer.Argument(help="Boundary sets to prepare (default: every tiled set).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Cut every tile's areas once and store them, so serving reads tiles instead of clipping them
    (several times faster; the database grows by about the size of the boundaries). Run again
    after ingesting boundaries of a set: until then its tiles are clipped on the fly."""
    from geo_cs.tiles import prepare_tiles, tile_sets

    with open_store() as store:
        chosen = layers or tile_sets(store)["set_id"].tolist()
        reports = [prepare_tiles(store, layer, progress=make_progress()) for layer in chosen]
    for report in reports:
        print_report(report, as_json)
