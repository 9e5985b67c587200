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
    """Cut every tile's areas once and store them with their geometry encoded, so serving writes
    tiles without clipping them: about 3 times faster than tiles clipped per request in memory
    (what a set gets after its boundary ingest, already faster than PostGIS's), for a larger
    database (GB LSOAs, data zones and districts: 0.33 -> 0.93 GB). Run again after ingesting
    boundaries of a set: until then its tiles are clipped per request, the same tiles."""
    from geo_cs.tiles import prepare_tiles, tile_sets

    with open_store() as store:
        chosen = layers or tile_sets(store)["set_id"].tolist()
        reports = [prepare_tiles(store, layer, progress=make_progress()) for layer in chosen]
    for report in reports:
        print_report(report, as_json)
