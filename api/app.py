"""The geo-cs web service: an application factory over a read-only store.

Routers stay thin: they parse requests and format responses; the work is in ``geo_cs`` (and the
map pages in ``maps``). What it serves:

* ``/`` … ``/collections/{id}/items`` — OGC API - Features (GeoJSON, CSV; CRS84, EPSG:4326, 27700);
* ``/tiles/{layer}/{z}/{x}/{y}.mvt`` and ``/tiles/{layer}/tilejson.json`` — vector tiles;
* ``/styles``, ``/collections/{id}/styles/web-map?f=qml|sld|mapbox`` — the web map's classes
  (OGC API - Styles), ``/styles/projects/{partnership}.qgs`` — a QGIS project of a map;
* ``/maps/`` — the web map for partnership staff, its assets under ``/static``;
* ``/health``; ``POST /admin/refresh`` behind the API key.

Every text response (HTML, JS, CSS, JSON, GeoJSON, CSV, SVG) is gzipped for a client that
accepts it, streamed ones chunk by chunk (:data:`GZIP_LEVEL`); tiles come gzipped from their
cache and are left alone. Static assets are named by their content and cached for a year
(:mod:`geo_cs.api.static`).

Limits (``geo_cs.config.Settings``): URL and body sizes (:mod:`geo_cs.api.limits`), response size,
query time (:class:`geo_cs.api.deps.QueryWatchdog`), ``limit``/``bbox``/zoom bounds on the routes.

    uvicorn geo_cs.api.app:create_app --factory
"""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager

import anyio
from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import HTMLResponse
from pydantic import BaseModel
from starlette.middleware.gzip import DEFAULT_EXCLUDED_CONTENT_TYPES, GZipMiddleware

import geo_cs
from geo_cs.api import problems
from geo_cs.api.deps import WATCHDOG, LRUCache, MapWarmer, ServedStore, StoreDep, approx_bytes, snapshot
from geo_cs.api.docs_page import render_docs
from geo_cs.api.headers import HeadLikeGet, SecurityHeaders, embed_policy
from geo_cs.api.limits import AdmissionControl, MemoryBudget, SizeLimits
from geo_cs.api.routers import admin, downloads, maps, ogc, styles, tiles
from geo_cs.api.static import AssetFiles
from geo_cs.attribution import OGL_ATTRIBUTION
from geo_cs.config import Settings
from geo_cs.maps import STATIC_DIR

#: zlib level 1: a GeoJSON page of 100 LSOAs (214 KB) takes 2.2 ms to 63 KB where level 6 took
#: 8.9 ms to 55 KB, and compression was 45% of an items page's server CPU (py-spy, four clients
#: paging); 15% more bytes cost less than that on any council network. A 90 MB GeoJSON
#: page is compressed as it streams. Tiles are compressed once, at level 6, into their cache.
GZIP_LEVEL = 1
#: Bodies under this are sent as they are: gzip's header and a round trip cost more than it saves.
GZIP_MIN_BYTES = 500
#: Already compressed, or not worth compressing: images, archives and vector tiles (which the
#: tile route gzips itself, from its cache, when the client accepts it).
GZIP_EXCLUDED_TYPES = (*DEFAULT_EXCLUDED_CONTENT_TYPES, "application/vnd.mapbox-vector-tile",
                       "application/vnd.pmtiles")

#: At shutdown, how long the served database may take to close once its running queries have
#: been interrupted (an interrupted query stops at its next chunk of rows, in milliseconds).
#: Past it the file is left to the process's exit: closing waits for every running query, and
#: a query that never reaches an interruption point would hold the shutdown for good.
SHUTDOWN_CLOSE_S = 2.0

log = logging.getLogger("geo_cs.api")


def interrupt_queries(served: ServedStore) -> int:
    """Interrupt the running query of every request cursor on ``served``'s file and refuse
    their next ones (:class:`~geo_cs.api.problems.QueryTimeout`, 503): the requests end now rather
    than at their query limit. Returns how many cursors were open. For shutdown."""
    return WATCHDOG.expire(str(served.path))


async def close_served(served: ServedStore, wait_s: float = SHUTDOWN_CLOSE_S) -> bool:
    """Close the served database at shutdown, within ``wait_s`` seconds whatever runs on it:
    running queries are interrupted first (:func:`interrupt_queries`), since DuckDB's close
    waits for them. Returns whether it closed; if not, the file stays open until the process
    exits (it is only read: nothing is lost)."""
    interrupted = interrupt_queries(served)
    with anyio.move_on_after(wait_s):
        await anyio.to_thread.run_sync(served.close, abandon_on_cancel=True)
        return True
    log.warning("shutdown: %d request(s) still querying %s after %.0f s; left to the process's exit",
                interrupted, served.path, wait_s)
    return False


class Health(BaseModel):
    status: str
    version: str
    database: str
    data_version: int
    areas: int
    attribution: str
    #: every partnership's default map page of this data version is drawn (first visits are
    #: served from the cache); always true when the warm-up is off (GEO_CS_WARM_MAPS=0)
    ready: bool
    #: default map pages drawn ahead of their first visitor for this data version, so far
    warmed: int


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the FastAPI application for the store named in ``settings`` (default: env)."""
    # a server builds its app from the environment: it warms its map pages unless told not to
    warm_maps = settings is None
    settings = settings or Settings()
    if settings.warm_maps is not None:
        warm_maps = settings.warm_maps

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.served = ServedStore(settings.db)
        # every partnership's default map page drawn in the background, after the start and
        # after each update (api.deps.MapWarmer): /health says when it is done
        app.state.map_warmer = MapWarmer(app) if warm_maps else None
        if app.state.map_warmer is not None:
            app.state.map_warmer.start()
        try:
            yield
        finally:
            if app.state.map_warmer is not None:
                app.state.map_warmer.stop(timeout=0)   # a daemon thread; its query is interrupted
            await close_served(app.state.served)

    app = FastAPI(
        title="geo-cs",
        version=geo_cs.__version__,
        description="Worklessness analysis and mapping for local employment partnerships: "
                    "OGC API - Features, vector tiles and a web map. " + OGL_ATTRIBUTION,
        lifespan=lifespan,
        responses=problems.EVERY_ROUTE,   # 414 and 503 (busy) may answer any path
        # /docs is the service's own page (api.docs_page): Swagger UI and ReDoc come from a CDN
        docs_url=None, redoc_url=None,
    )
    app.state.settings = settings
    app.state.map_warmer = None
    # a measure's values, map pages, selections, outlines: bounded in count and in bytes
    app.state.values_cache = LRUCache(settings.values_cache_items, settings.values_cache_mb * 1_000_000,
                                      size_of=approx_bytes)
    # a tile is kept plain and gzipped: its size is both
    app.state.tile_cache = LRUCache(settings.tile_cache_items, settings.tile_cache_mb * 1_000_000,
                                    size_of=lambda pair: len(pair[0]) + len(pair[1]))
    problems.install(app)
    # The last added is the outermost. SizeLimits sits inside GZip, so its response cap counts
    # the bytes the app produced (not what compression left of them) and a response it cuts
    # still ends with a well-formed gzip stream.
    # a map's embed view may be framed by the origins of GEO_CS_FRAME_ANCESTORS too
    app.add_middleware(SecurityHeaders, embed_policy=embed_policy(settings.frame_ancestors))
    app.add_middleware(SizeLimits, max_url_bytes=settings.max_url_kb * 1024,
                       max_request_bytes=settings.max_request_kb * 1024,
                       max_response_bytes=settings.max_response_mb * 1_000_000)
    app.add_middleware(GZipMiddleware, minimum_size=GZIP_MIN_BYTES, compresslevel=GZIP_LEVEL,
                       exclude_content_types=GZIP_EXCLUDED_TYPES)
    # outside GZip and the size limits: a request waits or is refused before anything of it runs,
    # and keeps its memory reservation until its compressed response is sent
    app.state.memory_budget = MemoryBudget(settings.memory_budget_mb * 1_000_000, settings.memory_queue_s)
    app.add_middleware(AdmissionControl, budget=app.state.memory_budget)
    # outside GZip: a HEAD is answered with the headers (and length) of the GET it stands for,
    # compressed as that GET would be
    app.add_middleware(HeadLikeGet)
    if settings.cors_origins:
        # read-only service: GET (and the preflight) only; ETag readable for client caches
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["GET"],
                           allow_headers=["If-None-Match"], expose_headers=["ETag", "Content-Crs"])

    @app.get("/health", response_model=Health, tags=["service"])
    def health(store: StoreDep, request: Request) -> Health:
        """Whether the service is up, which database it serves and its data version, and
        whether this worker has drawn every partnership's default map page of that version
        (``ready``: a first visit is then as fast as a repeat one)."""
        version = snapshot(request).data_version
        warmer: MapWarmer | None = request.app.state.map_warmer
        ready = warmer is None or warmer.ready(version)
        return Health(
            status="ok",
            version=geo_cs.__version__,
            database=settings.db.name,   # the file's name: its path is the server's business
            data_version=store.data_version(),
            areas=store.sql("SELECT count(*) FROM areas").fetchone()[0],
            attribution=OGL_ATTRIBUTION,
            ready=ready,
            warmed=warmer.warmed if warmer is not None and warmer.warming == version else 0,
        )

    @app.get("/docs", response_class=HTMLResponse, include_in_schema=False)
    def docs() -> HTMLResponse:
        return HTMLResponse(render_docs(app.openapi()))

    app.include_router(ogc.router)
    app.include_router(downloads.router)
    app.include_router(tiles.router)
    app.include_router(styles.router)
    app.include_router(maps.router)
    app.include_router(admin.router)
    # StaticFiles resolves paths inside its folder only: ../ cannot escape it
    app.mount("/static", AssetFiles(directory=STATIC_DIR), name="static")
    return app
