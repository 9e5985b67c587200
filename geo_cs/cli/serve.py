"""``geo-cs info``, ``geo-cs demo`` and ``geo-cs serve``: what the store holds, the demo store, the service."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from geo_cs.cli.common import err, make_progress, out, state


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



def demo(
    serve: Annotated[bool, typer.Option("--serve/--no-serve", help="Serve the demo database afterwards and print the map's URL (--no-serve: build only).")] = True,
    port: Annotated[int, typer.Option(help="Port for --serve.")] = 8000,
    force: Annotated[bool, typer.Option("--force", help="Replace a database the demo did not build.")] = False,
) -> None:
    """Build the database from the embedded demo bundle (real data for the City Strategy areas)
    and serve it: the map's URL is printed."""
    from geo_cs.demo import OGL_ATTRIBUTION, build_demo, demo_database, load_manifest

    manifest = load_manifest()
    # rebuilt from scratch every time, beside the file: it replaces it only once complete
    with demo_database(state.db, force) as store:
        results = build_demo(store, progress=make_progress())
        if not state.quiet:
            out.print(f"[bold]{manifest.title}[/bold]")
            for step, report in results:
                first = report.lines()[0].replace(str(manifest.root) + "/", "")
                out.print(f"  {step['kind']:<10} {first}", highlight=False, markup=False)
            n_areas, n_obs = store.totals()
            out.print(f"\nDatabase {state.db}: {n_areas:,} areas with boundaries, "
                      f"{n_obs:,} observations.")
            out.print(f"[dim]{OGL_ATTRIBUTION}[/dim]")
            if not serve:
                out.print("Next: geo-cs serve, then open http://127.0.0.1:8000/maps/   |   geo-cs info")
    if serve:
        _serve(host="127.0.0.1", port=port, workers=1)


#: On SIGTERM or Ctrl+C, how long requests under way may take to finish before they are
#: cancelled and the service closes its database (interrupting any query still running:
#: ``api.app.close_served``, at most two seconds more). Without it uvicorn waits for every
#: connection to close, and a client that stops reading, or a query that never returns, held
#: the shutdown for good. A tile or a page takes milliseconds; a stop takes at most ~5 s.
GRACEFUL_SHUTDOWN_S = 3


def _serve(host: str, port: int, workers: int, base_url: str | None = None) -> None:
    import os

    import uvicorn

    os.environ["GEO_CS_DB"] = str(state.db.resolve())
    if base_url:
        os.environ["GEO_CS_BASE_URL"] = base_url
    _compile_tile_encoder()
    # printed even with --quiet: without it nobody knows where to point the browser
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    processes = f"{workers} worker processes" if workers > 1 else "1 worker process"
    err.print(f"serving {state.db} read-only ({processes}): the map at http://{shown}:{port}/maps/ , "
              f"OGC API Features at http://{shown}:{port}/collections , "
              f"vector tiles at http://{shown}:{port}/tiles  (Ctrl+C stops)", soft_wrap=True)
    uvicorn.run("geo_cs.api.app:create_app", factory=True, host=host, port=port, workers=workers,
                log_level="warning" if state.quiet else "info",
                timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S)




def _compile_tile_encoder() -> None:
    """Write one tile, so that the tile encoder's compiled code (numba, cached on disk beside
    ``geo_cs/mvt.py``) exists before the first request: compiled the first time after an
    install or upgrade (about 5 s of CPU), loaded from the cache after that (0.3 s). Without
    it the first tile a map asks for, the demo's first of all, waits for the compiler."""
    import numpy as np
    import shapely

    from geo_cs.mvt import WKB_PADDING, LayerWriter, encode_wkb

    wkb = np.frombuffer(shapely.to_wkb(shapely.box(0, 0, 1, 1), byte_order=1) + bytes(WKB_PADDING),
                        dtype=np.uint8)
    geometry, start, end, _ = encode_wkb(wkb, np.array([0]), np.array([len(wkb) - WKB_PADDING]), 0, 1, 4096,
                                         clip=(-64.0, 4160.0))
    LayerWriter("warm", np.array(["A"], dtype=object), {}).write(
        np.array([0]), np.array([1.0]), 0, start, end, geometry, None, 1_000_000)


#: More workers than this cost memory (each holds its own caches, tile indexes and DuckDB buffers,
#: about 1 GB over a GB store) for little more throughput: a query already uses every core.
MAX_DEFAULT_WORKERS = 4


def default_workers() -> int:
    """``serve``'s worker processes unless told: one per CPU this process may run on, at most
    :data:`MAX_DEFAULT_WORKERS` (2 on a council's 2-core server)."""
    import os

    try:
        cpus = len(os.sched_getaffinity(0))   # a container's or taskset's CPUs, not the host's
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, MAX_DEFAULT_WORKERS))


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
    workers: Annotated[int | None, typer.Option(
        min=1, show_default=False,
        help=f"Worker processes [default: one per CPU, at most {MAX_DEFAULT_WORKERS}: "
             f"{default_workers()} here].")] = None,
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
                  "makes them about 3 times faster, for a larger database", soft_wrap=True, markup=False,
                  highlight=False)
    _serve(host, port, workers or default_workers(), base_url)
