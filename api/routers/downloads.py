"""GIS downloads of a collection's items: ``/collections/{collectionId}/download?f=gpkg|shp``.

A GeoPackage or a zipped ESRI Shapefile in EPSG:27700 (British National Grid, the default) or
EPSG:4326, holding exactly what ``/collections/{collectionId}/items`` answers for the same
``partnership=``, ``filter=``, ``indicator=``, ``period=``… (the items' own query, built by
:mod:`geo_cs.api.routers.ogc`, under the same disclosure control). The file is written by
:mod:`geo_cs.export.gis` into a temporary folder and sent, byte ranges too; it is kept for the
next requests of the same download for two minutes (:class:`BuiltDownloads`: GDAL and QGIS open
a link by reading ranges of it, one request each), then removed.

Limits: at most :data:`geo_cs.export.gis.MAX_FEATURES` features (a 400 naming ``partnership``
and ``filter`` otherwise); the memory a download holds while its file is written is reserved
in the worker's budget (:class:`geo_cs.api.limits.MemoryBudget`) as an items page of as many items
would be: one that does not find room in time is refused with 503 and Retry-After, as items
are. The database is read on one thread-pool hop and the file written on another; nothing of
the database is held while the file is sent.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import shutil
import tempfile
import time
import weakref
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, Response
from starlette.types import Receive, Scope, Send

from geo_cs import features
from geo_cs.api import problems
from geo_cs.api.deps import (
    MeasureDep,
    MeasureParams,
    cached_outline,
    checked_collection,
    data_version,
    open_cursor,
    parsed_on_loop,
)
from geo_cs.api.limits import BASE_BYTES, ITEM_BYTES_GEOJSON, MB
from geo_cs.api.routers.ogc import (
    CollectionId,
    FilterParams,
    FilterParamsDep,
    ItemParams,
    _item_query,
    _paged,
    moved_collection,
)
from geo_cs.errors import InputError
from geo_cs.export import gis

log = logging.getLogger("geo_cs.api")

DOWNLOAD_PATH = "/collections/{collectionId}/download"
#: A built download is kept this long after its last request, for the next byte range of a
#: client reading it by ranges (GDAL asks within milliseconds; a person's second click within
#: minutes), and at most this many per worker (each up to ~20 MB of disk: 10,000 LSOAs).
KEEP_S = 120.0
MAX_FILES = 8


async def known_parameters_only(request: Request) -> None:
    """A query parameter the download does not define is a 400 naming it and the ones it takes
    (never ignored: ``limit=`` would otherwise seem to cut the file)."""
    known = _known_parameters()
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        raise InputError(f"unknown query parameter{'s' if len(unknown) > 1 else ''} "
                         f"{', '.join(unknown)}; this route accepts: {', '.join(sorted(known))}")


@cache
def _known_parameters() -> frozenset[str]:
    def names(dependant) -> set[str]:
        found = {p.alias for p in dependant.query_params}
        for sub in dependant.dependencies:
            found |= names(sub)
        return found

    return frozenset(n for route in router.routes for n in names(route.dependant))


router = APIRouter(tags=["GIS downloads"], responses=problems.RESPONSES,
                   dependencies=[Depends(known_parameters_only)])


class DownloadParams:
    """``f`` and ``crs`` of a download, and the ``partnership`` whose areas it holds."""

    def __init__(
        self,
        f: Annotated[Literal["gpkg", "shp"], Query(
            description="gpkg (GeoPackage) or shp (a zipped ESRI Shapefile).")] = gis.GPKG,
        crs: Annotated[str | None, Query(
            max_length=100, description="EPSG:27700 (British National Grid, the default) or EPSG:4326 "
                                        "(longitude/latitude); the URIs http://www.opengis.net/def/crs/"
                                        "EPSG/0/27700 and …/4326 are taken too.")] = None,
        partnership: Annotated[str | None, Query(
            max_length=64, description="Only the areas of this partnership (as items).")] = None,
    ) -> None:
        self.f = gis.check_format(f)
        self.crs = gis.download_crs(crs)
        self.partnership = partnership


DownloadParamsDep = Annotated[DownloadParams, Depends(parsed_on_loop(DownloadParams))]


@dataclass
class _Selection:
    """What a download holds, chosen and counted (the first hop), before its file is written."""

    collection_id: str
    name: str             # the file's name without extension
    about: str            # one line saying what it holds
    matched: int
    query: features.ItemQuery | None = None   # a boundary set's or a map's items
    outlines: list[str] | None = None         # … or the partnerships' outlines, by id


@router.get(DOWNLOAD_PATH, summary="A GeoPackage or zipped shapefile of the items (EPSG:27700 or 4326)",
            responses={200: {"content": {gis.MEDIA_TYPES[gis.GPKG]: {}, gis.MEDIA_TYPES[gis.SHAPEFILE]: {}},
                             "description": "The file, as an attachment named after what it holds"}})
async def download(collection_id: CollectionId, request: Request, d: DownloadParamsDep, m: MeasureDep,
                   fp: FilterParamsDep) -> Response:
    """The items the same ``partnership``, ``filter``, ``indicator``, ``period``… select on
    ``/collections/{collectionId}/items`` (at most 10,000), as a file a GIS opens directly:
    a GeoPackage (``f=gpkg``) or a zipped ESRI Shapefile (``f=shp``: short field names, see its
    README.txt), in British National Grid (``crs=EPSG:27700``, the default) or EPSG:4326.
    Byte ranges are served: GDAL and QGIS can open the link itself (``/vsicurl/``)."""
    moved = await run_in_threadpool(_moved, request, collection_id)
    if moved is not None:
        return moved   # a former id (issue 30): the same download at the id in use
    files = built_downloads(request)
    key = (data_version(request), collection_id, tuple(sorted(request.query_params.multi_items())))
    async with files.lock(key):
        built = files.take(key)
        if built is None:
            built = await _build(request, files, key, collection_id, d, m, fp)
            if isinstance(built, Response):
                return built   # busy
    return BuiltFileResponse(files, built, media_type=gis.MEDIA_TYPES[d.f], filename=built.path.name,
                             headers={"Content-Crs": f"<{d.crs}>", "ETag": built.etag})


async def _build(request: Request, files: BuiltDownloads, key: tuple, collection_id: str,
                 d: DownloadParams, m: MeasureParams, fp: FilterParams) -> Built | Response:
    """Choose and count the download's features, reserve the memory writing them holds, write the
    file, and keep it in ``files`` (taken once). A :class:`Response` when the worker is busy."""
    selection = await run_in_threadpool(_select, request, collection_id, d, m, fp)
    budget = request.app.state.memory_budget
    # what writing the file holds: its features' text and geometry, as an items page of as many
    # (the admission control reserved a plain request's share before the route ran)
    cost = BASE_BYTES + selection.matched * ITEM_BYTES_GEOJSON
    asked = time.monotonic()
    if not await budget.reserve(cost):
        return _busy(request, budget, cost, time.monotonic() - asked)
    held = time.monotonic()
    folder = files.new_folder()
    try:
        path = await run_in_threadpool(_write, request, selection, d, folder)
        etag = await run_in_threadpool(_etag, path)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    finally:
        budget.release(cost, time.monotonic() - held)
    return files.keep(key, Built(path, folder, etag))


def _moved(request: Request, collection_id: str) -> Response | None:
    store = open_cursor(request)
    try:
        return moved_collection(request, store, collection_id)
    finally:
        store.close()


def _select(request: Request, collection_id: str, d: DownloadParams, m: MeasureParams,
            fp: FilterParams) -> _Selection:
    store = open_cursor(request)
    try:
        c = checked_collection(request, store, collection_id)
        suffix = f" (partnership {d.partnership})" if d.partnership else ""
        if collection_id == features.PARTNERSHIPS:
            return _select_outlines(c, d, m, fp)
        p = ItemParams(limit=gis.MAX_FEATURES, offset=0, crs=gis.items_crs(d.crs),
                       partnership=d.partnership)
        q = fp.apply(_item_query(request, store, collection_id, p, m))
        if not q.searched:
            q = _paged(request, store, q)
        matched = features.count_items(store, q)
        gis.check_size(matched)
        # the collection's own name (a map's id says count or rate), after the partnership's
        name = features.download_name(collection_id, q, "gpkg", measure_in_id=c.kind == "measure")
        name = f"{d.partnership}_{name}" if d.partnership else name
        measure = f"; {q.indicator}, period {q.period}" if q.indicator else ""
        about = (f"{c.title}{suffix}{measure}"
                 + (f"; filter: {fp.text}" if fp.text else "")
                 + f"; {matched:,} features")
        return _Selection(collection_id, gis.file_stem(name, d.crs), about, matched, query=q)
    finally:
        store.close()


def _select_outlines(c: features.Collection, d: DownloadParams, m: MeasureParams,
                     fp: FilterParams) -> _Selection:
    from geo_cs.partnerships import get_partnerships, load_partnerships

    if fp.text is not None or fp.sortby is not None:
        raise InputError(f"collection {features.PARTNERSHIPS} takes no filter or sortby (it has no "
                         "queryables); filter the areas of a boundary set with partnership=")
    if m.indicator is not None or m.period is not None or m.denominator is not None:
        raise InputError(f"collection {features.PARTNERSHIPS} takes no indicator=, period= or "
                         "denominator= (outlines have no values): download a boundary set or a map "
                         "collection with partnership= for a partnership's values")
    if d.partnership is not None:
        ids = [get_partnerships([d.partnership])[0].id]   # an unknown one: 404 naming the valid
    else:
        ids = sorted(load_partnerships())
    stem = "_".join(x for x in (features.PARTNERSHIPS, d.partnership) if x)
    return _Selection(c.id, gis.file_stem(stem, d.crs), f"{c.title}; {len(ids)} outlines", len(ids),
                      outlines=ids)


def _write(request: Request, selection: _Selection, d: DownloadParams, folder: Path) -> Path:
    store = open_cursor(request)
    try:
        if selection.query is not None:
            frame = gis.items_frame(store, selection.query)
        else:
            crs = gis.items_crs(d.crs)
            frame = gis.outlines_frame(
                (cached_outline(request, store, pid, crs) for pid in selection.outlines or ()), d.crs)
    finally:
        store.close()   # the file is written from the frame, with the database let go
    return gis.write_download(frame, d.f, folder, selection.name, selection.about)


def _etag(path: Path) -> str:
    # of the bytes: a client reading by ranges can tell two builds of a download apart
    digest = hashlib.blake2b(digest_size=16)
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return f'"{digest.hexdigest()}"'


def _busy(request: Request, budget, cost: int, waited: float) -> Response:
    retry = budget.retry_after(cost)
    log.warning("busy: refused a download of %.0f MB (%.0f of %.0f MB reserved)", cost / MB,
                budget.in_use / MB, budget.capacity / MB)
    response = problems.problem(
        503, f"The service is answering as many requests as its memory allows. Try again in {retry} "
             f"second{'s' if retry != 1 else ''}, or download fewer features at a time (partnership= "
             "or filter=).", request, title="Busy: please try again shortly",
        setting="GEO_CS_MEMORY_BUDGET_MB", budget_mb=round(budget.capacity / MB),
        reserved_mb=round(budget.in_use / MB), request_mb=round(budget.charge(cost) / MB),
        waited_s=round(waited, 1), retry_after_s=retry)
    response.headers["Retry-After"] = str(retry)
    return response


@dataclass(eq=False)
class Built:
    """A download's file, in a folder of its own, and the requests sending it now."""

    path: Path
    folder: Path
    etag: str
    users: int = 0
    last_used: float = field(default_factory=time.monotonic)


class BuiltDownloads:
    """The downloads a worker has built, each kept ``keep_s`` seconds after its last request
    (at most ``max_files``, the least recently used dropped first; none while being sent).

    Why: a client that opens the link itself reads the file by byte ranges — GDAL's ``/vsicurl/``
    and a QGIS HTTP(S) source ask a HEAD and then ten or more ranges of one file — and each
    request must get a range of the same bytes, built once, not a new build of the file per
    range. Keys hold the data version, so an update is never served an old file.

    Contract: on the event loop only (the route is async), so no lock between threads is needed;
    :meth:`lock` serialises the requests of one key, so a file is built once however many ask at
    once. Every :meth:`take` or :meth:`keep` is matched by one :meth:`release` when its response
    has been sent (or abandoned). The files are in one temporary folder, removed when this
    object is collected (the worker's end) and by the OS's temporary-file cleaning otherwise.
    """

    def __init__(self, keep_s: float = KEEP_S, max_files: int = MAX_FILES) -> None:
        self.keep_s = keep_s
        self.max_files = max_files
        self.root = Path(tempfile.mkdtemp(prefix="geo-cs-downloads-"))
        self._finalizer = weakref.finalize(self, shutil.rmtree, self.root, True)
        self._built: OrderedDict[tuple, Built] = OrderedDict()
        self._locks: dict[tuple, asyncio.Lock] = {}

    def lock(self, key: tuple) -> asyncio.Lock:
        return self._locks.setdefault(key, asyncio.Lock())

    def new_folder(self) -> Path:
        return Path(tempfile.mkdtemp(dir=self.root))

    def take(self, key: tuple) -> Built | None:
        """The file built for ``key``, if kept, marked in use."""
        self._expire()
        built = self._built.get(key)
        if built is not None:
            self._built.move_to_end(key)
            built.users += 1
        return built

    def keep(self, key: tuple, built: Built) -> Built:
        """Keep ``built`` under ``key``, marked in use (one built meanwhile under the same key
        by a request that waited on a lock since dropped is kept aside until it expires)."""
        built.users += 1
        before = self._built.pop(key, None)
        if before is not None:
            self._built[(*key, id(before))] = before
        self._built[key] = built
        self._expire()
        return built

    def release(self, built: Built) -> None:
        built.users -= 1
        built.last_used = time.monotonic()
        self._expire()

    def _expire(self) -> None:
        now = time.monotonic()
        idle = [k for k, b in self._built.items() if b.users == 0]   # least recently used first
        excess = len(self._built) - self.max_files
        for key in idle:
            built = self._built[key]
            if excess > 0 or now - built.last_used >= self.keep_s:
                del self._built[key]
                excess -= 1
                shutil.rmtree(built.folder, ignore_errors=True)
        # the locks of keys no longer kept nor being built
        for key in [k for k, lock in self._locks.items() if k not in self._built and not lock.locked()]:
            del self._locks[key]

    def __len__(self) -> int:
        return len(self._built)


def built_downloads(request: Request) -> BuiltDownloads:
    """The worker's :class:`BuiltDownloads` (made at its first download)."""
    files = getattr(request.app.state, "built_downloads", None)
    if files is None:
        files = request.app.state.built_downloads = BuiltDownloads()
    return files


class BuiltFileResponse(FileResponse):
    """A built download sent (byte ranges too), given back to its :class:`BuiltDownloads` once
    sent, cut by a client that went away, or not sent at all."""

    def __init__(self, files: BuiltDownloads, built: Built, **kwargs) -> None:
        super().__init__(built.path, **kwargs)
        self.files, self.built = files, built

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.files.release(self.built)
