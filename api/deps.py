"""Request dependencies: a read-only cursor per request, and caches keyed by the data version.

Every cache key starts with the store's data version, so an ingest (which bumps it) makes the
old entries unreachable; they age out of the LRU.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Annotated, Any, TypeVar

import duckdb
import pandas as pd
from fastapi import Depends, Query, Request

from geo_cs.api.problems import QueryTimeout, VersionGone
from geo_cs.errors import StoreError
from geo_cs.layers import AreaValues, area_values, resolve_measure
from geo_cs.maps.embed import render_embed_page
from geo_cs.maps.page import MapRequest, MapSources, gather_map, render_map_page, view_figures
from geo_cs.store import Store, _connect
from geo_cs.tiles import TileIndex, TileValues

T = TypeVar("T")
log = logging.getLogger("geo_cs.api")


def approx_bytes(value: Any) -> int:
    """A cached value's size, roughly, for the values cache's byte budget (measured once, when
    the value is stored: a measure's values for every LSOA are a few megabytes)."""
    if isinstance(value, bytes | str):
        return len(value)
    if isinstance(value, pd.DataFrame):
        return int(value.memory_usage(index=True, deep=True).sum())
    if isinstance(value, AreaValues):
        return approx_bytes(value.frame) + approx_bytes(value.periods)
    if isinstance(value, TileValues):
        return len(value) * 200   # a code, its dict entry and five values
    if isinstance(value, TileIndex):
        return value.nbytes
    if isinstance(value, tuple | list):
        return 64 + sum(approx_bytes(v) if isinstance(v, str | pd.DataFrame | dict) else 64
                        for v in value)
    if isinstance(value, dict):
        return len(json.dumps(value, default=str))
    return 1024


#: the warm-up thread's: the values cache's generation when its page was begun (:class:`MapWarmer`)
_warming = threading.local()


class LRUCache:
    """A small thread-safe LRU (FastAPI runs sync endpoints on a thread pool)."""

    def __init__(self, max_items: int, max_bytes: int | None = None,
                 size_of: Callable[[Any], int] | None = None) -> None:
        self.max_items = max_items
        #: with ``size_of``, the cache also stays under ``max_bytes`` (tiles are up to 500 KB each)
        self.max_bytes = max_bytes
        self.size_of = size_of
        self.bytes = 0
        self._items: OrderedDict[tuple, Any] = OrderedDict()
        self._lock = threading.Lock()
        self._making: dict[tuple, threading.Lock] = {}
        self.hits = self.misses = 0
        #: how many times :meth:`clear` has run: what a warm-up begun before a clear drew is
        #: not kept after it (the cache is empty once a refresh has said so)
        self.generation = 0

    def get(self, key: tuple) -> Any | None:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                self.hits += 1
                return self._items[key]
            self.misses += 1
            return None

    def put(self, key: tuple, value: Any) -> None:
        with self._lock:
            begun = getattr(_warming, "generation", None)
            if begun is not None and begun != self.generation:
                return   # a warm-up's page begun before the latest clear
            if key in self._items and self.size_of is not None:
                self.bytes -= self.size_of(self._items[key])
            self._items[key] = value
            self._items.move_to_end(key)
            if self.size_of is not None:
                self.bytes += self.size_of(value)
            while self._items and (len(self._items) > self.max_items or (
                    self.max_bytes is not None and self.bytes > self.max_bytes)):
                _, dropped = self._items.popitem(last=False)
                if self.size_of is not None:
                    self.bytes -= self.size_of(dropped)

    def clear(self) -> int:
        """Drop every entry; return how many there were."""
        with self._lock:
            dropped = len(self._items)
            self.generation += 1
            self._items.clear()
            self.bytes = 0
            return dropped

    def get_or_make(self, key: tuple, make: Callable[[], T]) -> T:
        """The cached value, or ``make()``'s — run once per key however many requests miss it
        at the same time (fifty cold tiles of one measure must not build its values fifty times)."""
        found = self.get(key)
        if found is not None:
            return found
        with self._lock:
            key_lock = self._making.setdefault(key, threading.Lock())
        with key_lock:
            found = self.get(key)
            if found is None:
                try:
                    found = make()
                    self.put(key, found)
                finally:
                    with self._lock:
                        self._making.pop(key, None)
        return found


def open_served(path: Path) -> Store:
    """The geo-cs database at ``path``, open read-only in an in-memory DuckDB instance of its own
    that attaches it as its default catalog: the store's connection and every cursor of it read
    the file's tables by their plain names.

    Contract: needs read access to the file and search access to its folder, nothing more —
    nothing is written, the folder need not be writable. The returned store holds the file
    open (its inode) until closed, whatever is renamed over ``path`` meanwhile. Raises
    :class:`StoreError` saying what is missing when the file cannot be opened.

    Why an instance of its own: DuckDB keeps one database instance per file in a process, found
    by the file's path with links resolved, so once an update has renamed a new file over the
    served path, opening that path (or a symlink or ``/proc/self/fd`` link to it) returns the
    old file's instance. Each in-memory instance attaches whatever file the path names now.
    """
    path = Path(path)
    if not path.exists():
        raise StoreError(f"database {path} does not exist; build it first (geo-cs ingest … or geo-cs demo)")
    if not os.access(path, os.R_OK):
        raise StoreError(f"cannot read database {path}: the server needs read access to the file "
                         "(and search access to its folder); it writes nothing there")
    con = _connect(":memory:", read_only=False)
    try:
        # DuckDB's progress bar would write to the server's stdout
        con.execute("SET enable_progress_bar = false")
        # The file takes the place of the instance's empty default catalog, under its name
        # ("memory"): a cursor is a new connection, which looks its default catalog up by that
        # name, so it reads the file with no USE of its own (a USE per request would cost as
        # much as a query, 0.2-0.4 ms). The empty one is detached from a scratch catalog.
        default = con.execute("SELECT current_database()").fetchone()[0]
        con.execute("ATTACH ':memory:' AS geo_cs_scratch")
        con.execute("USE geo_cs_scratch")
        con.execute(f"DETACH {default}")
        quoted = str(path).replace("'", "''")   # the operator's path (ATTACH binds no parameter)
        try:
            con.execute(f"ATTACH '{quoted}' AS {default} (READ_ONLY)")
        except duckdb.Error as exc:
            raise StoreError(f"cannot open database {path} read-only: {exc}") from exc
        con.execute(f"USE {default}")
        con.execute("DETACH geo_cs_scratch")
        probe = con.cursor()
        try:
            has_meta = probe.execute("SELECT count(*) FROM information_schema.tables "
                                     "WHERE table_catalog = current_database() AND table_name = 'meta'"
                                     ).fetchone()[0]
        except duckdb.Error as exc:   # a DuckDB that no longer finds its default catalog by name
            raise StoreError(f"cannot serve {path} with DuckDB {duckdb.__version__}: a new cursor "
                             f"does not read the attached file ({exc})") from exc
        finally:
            probe.close()
        if not has_meta:
            raise StoreError(f"{path} is a DuckDB file but not a geo-cs database (no meta table)")
    except BaseException:
        con.close()
        raise
    return Store(con, str(path), read_only=True)


class Snapshot:
    """One opened version of the served file: its connection, data version and users.

    A request takes one snapshot and keeps it (:func:`snapshot`): every cache key and cursor of
    that request belongs to the same data version, even if an update lands meanwhile.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self.data_version = store.data_version()
        self.users = 0
        self.retired_at: float | None = None
        #: when a request pinned to this version last took it (a client paging with ``version=``)
        self.last_pinned: float | None = None
        self._lock = threading.Lock()

    def cursor(self, timeout: float | None = None) -> Store:
        """A read-only cursor whose queries must finish within ``timeout`` seconds of its
        opening; closing it releases the snapshot."""
        with self._lock:
            self.users += 1
        return _SnapshotCursor(self, timeout)

    def release(self) -> None:
        with self._lock:
            self.users -= 1

    def idle(self) -> bool:
        with self._lock:
            return self.users == 0

    def close(self) -> None:
        """Close the version: its file's disk space is freed once no process holds it open."""
        self.store.close()


class _SnapshotCursor(Store):
    """A request's cursor. With a ``timeout``, a query still running at the deadline is
    interrupted (:class:`QueryWatchdog`) and any query started after it is refused: either way
    the request ends with :class:`~geo_cs.api.problems.QueryTimeout` (503)."""

    def __init__(self, snapshot: Snapshot, timeout: float | None = None) -> None:
        super().__init__(snapshot.store.con.cursor(), snapshot.store.path, read_only=True)
        self._snapshot: Snapshot | None = snapshot
        self.timeout = timeout
        self.deadline = time.monotonic() + timeout if timeout else None
        if self.deadline is not None:
            WATCHDOG.watch(self)

    def sql(self, query: str, params: list[Any] | dict[str, Any] | None = None):
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise QueryTimeout(self.timeout or 0)
        try:
            return super().sql(query, params)
        except duckdb.InterruptException:
            raise QueryTimeout(self.timeout or 0) from None

    def close(self) -> None:
        if self.deadline is not None:
            WATCHDOG.unwatch(self)
        super().close()
        if self._snapshot is not None:
            self._snapshot.release()
            self._snapshot = None


class QueryWatchdog:
    """Interrupts the running DuckDB query of every cursor past its deadline.

    One daemon thread per process, started with the first watched cursor, wakes every
    ``period`` seconds: a timer thread per request would cost more than a cached tile.
    """

    def __init__(self, period: float = 0.05) -> None:
        self.period = period
        self._cursors: dict[int, _SnapshotCursor] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def watch(self, cursor: _SnapshotCursor) -> None:
        with self._lock:
            self._cursors[id(cursor)] = cursor
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="geo-cs-query-watchdog",
                                                daemon=True)
                self._thread.start()

    def unwatch(self, cursor: _SnapshotCursor) -> None:
        with self._lock:
            self._cursors.pop(id(cursor), None)

    def expire(self, path: str) -> int:
        """End now the requests whose cursors read ``path``: their deadline is moved to now and
        their running query interrupted (the watchdog interrupts again within its period, for a
        query started meanwhile); their next query is refused. Returns how many. For shutdown:
        DuckDB's close waits for running queries."""
        now = time.monotonic()
        with self._lock:
            cursors = [c for c in self._cursors.values() if str(c.path) == path]
        for cursor in cursors:
            cursor.deadline = now
            with contextlib.suppress(Exception):   # closed meanwhile: nothing to interrupt
                cursor.con.interrupt()
        return len(cursors)

    def _run(self) -> None:
        while True:
            time.sleep(self.period)
            now = time.monotonic()
            with self._lock:
                late = [c for c in self._cursors.values() if c.deadline is not None and now > c.deadline]
                for cursor in late:
                    self._cursors.pop(id(cursor), None)
            for cursor in late:
                with contextlib.suppress(Exception):  # closed meanwhile: nothing to interrupt
                    cursor.con.interrupt()


WATCHDOG = QueryWatchdog()


class ServedStore:
    """The database a server serves, reopened when an update swaps a new file in.

    An open read-only DuckDB file cannot be written by another process, so its data never
    change under a request. Updates write a copy and rename it over the served path
    (:func:`geo_cs.store.updating`); this notices the new file (a ``stat`` at most every
    ``check_seconds``) and opens it (:func:`open_served`: read access is all it needs, the
    folder may be read-only). Requests already running keep their snapshot; an old one is
    closed once it is a minute old and no cursor uses it. Caches and ETags are keyed by the data
    version, so they move on too. Items' ``next`` links name their data version (``version=``):
    while a client follows them (a page at least once a minute), the superseded version it pages
    through stays open (:meth:`pinned`), so its pages are those of one version. If the new file
    cannot be opened, the old one goes on serving.

    A request holds a cursor only while it queries and builds its response on the thread pool
    (never while its client reads: items pages are built whole before they are sent), so a
    client that stalls keeps no version open.
    Disk: the served file, at most one superseded version still open (a deleted file whose
    space is freed when it is closed) — a second one only while a request that took it before
    the next update is still running its query — and the working copy of an update in progress:
    about three times the database at the peak.
    """

    def __init__(self, path: Path, check_seconds: float = 0.5) -> None:
        self.path = Path(path)
        self.check_seconds = check_seconds
        self._lock = threading.Lock()
        self._retired: list[Snapshot] = []
        #: the identity of an updated file that could not be opened (said once, retried)
        self._failed: tuple[int, int] | None = None
        self.identity = self._identity()
        self.snapshot = Snapshot(open_served(self.path))
        self.checked = time.monotonic()

    def _identity(self) -> tuple[int, int]:
        info = os.stat(self.path)
        return info.st_ino, info.st_mtime_ns

    def _open_new_file(self) -> Snapshot:
        # The identity was taken before the open: if yet another update lands in between, the
        # newer file is opened under the older identity, and the next check opens it again
        # (once more than needed, never a file older than the identity says).
        return Snapshot(open_served(self.path))

    def current(self, *, check_now: bool = False) -> Snapshot:
        """The snapshot to serve, after looking for an updated file (at most every
        ``check_seconds``, or now)."""
        now = time.monotonic()
        if now - self.checked < self.check_seconds and not check_now:
            return self.snapshot
        with self._lock:
            self.checked = now
            try:
                identity = self._identity()
            except OSError:
                identity = self.identity   # mid-rename or removed: keep serving what is open
            if identity != self.identity:
                try:
                    fresh = self._open_new_file()
                except Exception as exc:
                    # tried again at every check; said once per file, a traceback only for the
                    # unexpected (an unreadable file is the operator's to fix, not a bug)
                    if self._failed != identity:
                        self._failed = identity
                        log.error("cannot open the updated %s (%s); still serving data version %s",
                                  self.path, exc, self.snapshot.data_version,
                                  exc_info=not isinstance(exc, StoreError))
                else:
                    self._failed = None
                    old, self.snapshot, self.identity = self.snapshot, fresh, identity
                    old.retired_at = now
                    self._retired.append(old)
                    log.info("reopened %s: data version %s", self.path, fresh.data_version)
            # At most one superseded version stays on disk: the newest is kept a minute for
            # requests that took it just before the swap; any older one goes once idle.
            for old in list(self._retired):
                newest = old is self._retired[-1]
                last = max(old.retired_at or now, old.last_pinned or 0.0)
                if old.idle() and (not newest or now - last > 60):
                    old.close()
                    self._retired.remove(old)
            return self.snapshot

    def pinned(self, version: int) -> Snapshot | None:
        """The open snapshot of data version ``version`` (the served one or the superseded one
        still kept), or None when it is gone. Taking a superseded one keeps it another minute."""
        current = self.current()
        if version > current.data_version:      # newer than this process has seen: look now
            current = self.current(check_now=True)
        if current.data_version == version:
            return current
        with self._lock:
            for old in reversed(self._retired):
                if old.data_version == version:
                    old.last_pinned = time.monotonic()
                    return old
        return None

    def close(self) -> None:
        for old in self._retired:
            old.close()
        self.snapshot.close()


def public_base(request: Request) -> str:
    """The service's own address for absolute links: the configured ``base_url`` (behind a
    reverse proxy), else the address the request came to. With a base URL set, a forged Host
    header cannot point clients elsewhere."""
    configured = request.app.state.settings.base_url
    return configured.rstrip("/") if configured else str(request.base_url).rstrip("/")


def snapshot(request: Request) -> Snapshot:
    """The request's snapshot of the served data, taken at its first use and kept."""
    taken = getattr(request.state, "geo_cs_snapshot", None)
    if taken is None:
        taken = request.app.state.served.current()
        request.state.geo_cs_snapshot = taken
    return taken


async def pin_version(
    request: Request,
    version: Annotated[int | None, Query(
        ge=0, description="The data version to page through: items' next/prev links carry it, so "
                          "that a page follows from the one before even if an update lands "
                          "between them (410 once that version is no longer kept).")] = None,
) -> None:
    """Take the snapshot of data version ``version`` for this request (before any cursor).

    On the event loop, as the tile route takes its snapshot: a dictionary look-up and a
    ``stat`` at most every half second (and, once per update, opening the new file)."""
    if version is None:
        return
    taken = request.app.state.served.pinned(version)
    if taken is None:
        current = request.app.state.served.current().data_version
        raise VersionGone(version, current)
    request.state.geo_cs_snapshot = taken


def data_version(request: Request) -> int:
    """The data version of the request's snapshot (caches and ETags are keyed by it)."""
    return snapshot(request).data_version


def open_cursor(request: Request) -> Store:
    """A read-only cursor on the request's snapshot (DuckDB cursors may be used from any one
    thread), under the service's query timeout; close it when done."""
    return snapshot(request).cursor(request.app.state.settings.query_timeout_s)


def get_store(request: Request) -> Iterator[Store]:
    """A read-only cursor on the served data for one request."""
    cursor = open_cursor(request)
    try:
        yield cursor
    finally:
        cursor.close()


StoreDep = Annotated[Store, Depends(get_store)]


@functools.cache
def parsed_on_loop(cls: Callable[..., T]) -> Callable[..., Awaitable[T]]:
    """A dependency that builds ``cls`` from its query parameters on the event loop.

    FastAPI runs a plain class or ``def`` dependency on its thread pool: one hop each, nothing
    alone, but under load every hop waits behind the worker's other requests for the loop and
    the GIL, and an items page took seven before its query, about twelve in all (its p99 under
    the soak was seven times its p50). Parsing parameters is microseconds of pure Python, so it
    runs on the loop; the signature is ``cls``'s, so OpenAPI and validation are unchanged.

    >>> MeasureDep = Annotated[MeasureParams, Depends(parsed_on_loop(MeasureParams))]
    """
    async def parse(**params: Any) -> T:
        return cls(**params)

    parse.__signature__ = inspect.signature(cls, eval_str=True)  # type: ignore[attr-defined]
    parse.__name__ = parse.__qualname__ = f"parse_{cls.__name__}"
    return parse


IndicatorQuery = Annotated[str | None, Query(
    max_length=128, description="Indicator id (simd2016.employment_deprived) or measure across editions "
                                "(employment_deprived); 404 lists the valid ones.")]
PeriodQuery = Annotated[str | None, Query(max_length=64,
                                          description="Period id (2011-02, simd2020); default the latest.")]
DenominatorQuery = Annotated[str | None, Query(
    max_length=128, description="Indicator holding denominators, for counts published without them.")]
BaselineQuery = Annotated[str | None, Query(
    max_length=200, description="Comma-separated baseline periods for the worst-performing flag.")]
ThresholdQuery = Annotated[float, Query(ge=0, le=100, description="Worst-performing threshold, %.")]


class MeasureParams:
    """The query parameters that choose a measure and its cohort, shared by items, tiles and maps."""

    def __init__(
        self, indicator: IndicatorQuery = None, period: PeriodQuery = None,
        denominator: DenominatorQuery = None, baseline: BaselineQuery = None,
        threshold: ThresholdQuery = 25.0,
    ) -> None:
        self.indicator = indicator
        self.period = period
        self.denominator = denominator
        self.baseline = tuple(p.strip() for p in baseline.split(",") if p.strip()) if baseline else None
        # one decimal is all a threshold means; it also bounds the values built per measure
        self.threshold = round(threshold, 1)

    def key(self) -> tuple:
        return (self.indicator, self.denominator, self.baseline, self.threshold)

    def query(self) -> dict[str, str]:
        """The parameters as given, for links and tile URLs."""
        out = {"indicator": self.indicator, "period": self.period, "denominator": self.denominator,
               "baseline": ",".join(self.baseline) if self.baseline else None}
        if self.threshold != 25.0:
            out["threshold"] = f"{self.threshold:g}"
        return {k: v for k, v in out.items() if v}


MeasureDep = Annotated[MeasureParams, Depends(parsed_on_loop(MeasureParams))]


def cached_values(request: Request, store: Store, set_id: str, m: MeasureParams) -> AreaValues | None:
    """The measure's values on ``set_id`` (None without an indicator), cached per data version."""
    if m.indicator is None:
        return None
    cache: LRUCache = request.app.state.values_cache
    key = (data_version(request), set_id, *m.key())

    def make() -> AreaValues:
        measure = resolve_measure(store, set_id, m.indicator, m.denominator)
        return area_values(store, measure, baseline=m.baseline, threshold=m.threshold,
                           disclosure=request.app.state.settings.disclosure())

    values = cache.get_or_make(key, make)
    values.check_period(m.period)
    return values


def cached_codes(
    request: Request, store: Store, partnership: str | None, set_id: str
) -> tuple[str, ...] | None:
    """The codes of ``set_id`` that make up a partnership (final definition), cached."""
    if partnership is None:
        return None
    from geo_cs.partnerships import get_partnerships, resolve

    cache: LRUCache = request.app.state.values_cache
    key = (data_version(request), "partnership", partnership, set_id)
    return cache.get_or_make(
        key, lambda: tuple(resolve(store, get_partnerships([partnership])[0], set_id).codes))


def cached_selection(request: Request, store: Store, set_id: str,
                     codes: tuple[str, ...] | None) -> tuple[str, ...]:
    """Every code of an items selection without bbox, in page order, cached per data version
    (paging clients such as GDAL then cost one index join a page, not a sort of the set)."""
    from geo_cs import features

    cache: LRUCache = request.app.state.values_cache
    return cache.get_or_make((data_version(request), "selection", set_id, codes),
                             lambda: features.selection_codes(store, set_id, codes))


def cached_outline(request: Request, store: Store, partnership: str, crs: str | None = None) -> dict:
    """A partnership's outline feature (union of its districts), cached per data version."""
    from geo_cs import features

    crs = crs or features.CRS84
    cache: LRUCache = request.app.state.values_cache
    return cache.get_or_make((data_version(request), "outline", partnership, crs),
                             lambda: features.partnership_outline(store, partnership, crs=crs))


def cached_collections(request: Request, store: Store) -> dict:
    """The OGC collections by id, cached per data version (listing them scans every area)."""
    from geo_cs import features

    cache: LRUCache = request.app.state.values_cache
    return cache.get_or_make((data_version(request), "collections"),
                             lambda: {c.id: c for c in features.list_collections(store)})


def checked_collection(request: Request, store: Store, collection_id: str):
    """The collection, or NotFoundError naming the valid ones."""
    from geo_cs.errors import NotFoundError

    collections = cached_collections(request, store)
    if collection_id not in collections:
        raise NotFoundError(
            f"collection {collection_id!r} not found; valid: {', '.join(collections) or 'none'}")
    return collections[collection_id]


class CachedMapSources(MapSources):
    """A map page's data from the service's caches (shared with tiles and items)."""

    def __init__(self, request: Request, store: Store) -> None:
        super().__init__(store, request.app.state.settings.disclosure())
        self.request = request
        self.cache: LRUCache = request.app.state.values_cache

    def codes(self, partnership: str, set_id: str) -> list[str]:
        return list(cached_codes(self.request, self.store, partnership, set_id))

    def values(self, set_id: str, indicator: str, denominator: str | None,
               baseline: tuple[str, ...] | None, threshold: float) -> AreaValues:
        m = MeasureParams(indicator, None, denominator, ",".join(baseline) if baseline else None, threshold)
        return cached_values(self.request, self.store, set_id, m)

    def outline(self, partnership: str) -> dict:
        return cached_outline(self.request, self.store, partnership)

    def gap(self, values: AreaValues, partnership: str):
        key = (data_version(self.request), "gap", values.measure, partnership, values.baseline,
               values.threshold)
        return self.cache.get_or_make(key, lambda: super(CachedMapSources, self).gap(values, partnership))

    def choices(self, partnership: str) -> list:
        key = (data_version(self.request), "map-choices", partnership)
        return self.cache.get_or_make(key, lambda: super(CachedMapSources, self).choices(partnership))

    def areas(self, set_id: str, codes: list[str]) -> pd.DataFrame:
        key = (data_version(self.request), "map-areas", set_id, tuple(codes))
        return self.cache.get_or_make(key, lambda: super(CachedMapSources, self).areas(set_id, codes))

    def labels(self, bounds: list[float] | None, named: str | None = None) -> pd.DataFrame:
        key = (data_version(self.request), "map-labels", tuple(bounds or ()), named)
        return self.cache.get_or_make(key, lambda: super(CachedMapSources, self).labels(bounds, named))

    def view_of(self, partnership: str, geography: str | None, indicator: str | None,
                denominator: str | None) -> tuple[str, str, str | None]:
        # only the completed view is cached under its four inputs: the request's period, classes,
        # baseline and threshold are never part of what is kept (one visitor's choices must not
        # become the next visitor's page)
        key = (data_version(self.request), "view", partnership, geography, indicator, denominator)
        return self.cache.get_or_make(key, lambda: super(CachedMapSources, self).view_of(
            partnership, geography, indicator, denominator))


def cached_map_page(request: Request, store: Store, req: MapRequest) -> str:
    """The HTML of a partnership's map page, cached per data version under the whole request
    (every parameter changes the page): the same for everyone who asks for the same view
    (~60 ms to draw, a millisecond to serve). ``request.state.geo_cs_map_drawn`` says whether
    this request drew it (the route's ``X-Cache``); every default view is drawn ahead of its
    first visitor (:class:`MapWarmer`)."""
    def draw() -> str:
        request.state.geo_cs_map_drawn = True
        return render_map_page(gather_map(CachedMapSources(request, store), req))

    cache: LRUCache = request.app.state.values_cache
    return cache.get_or_make((data_version(request), "map-page", req), draw)


def cached_embed_page(request: Request, store: Store, req: MapRequest) -> str:
    """The HTML of a map's embed view (:func:`geo_cs.maps.embed.render_embed_page`), cached as
    the full page is, under the whole request; drawn from the same cached values, areas and
    outline (``request.state.geo_cs_map_drawn`` as for the page)."""
    def draw() -> str:
        request.state.geo_cs_map_drawn = True
        return render_embed_page(gather_map(CachedMapSources(request, store), req), req)

    cache: LRUCache = request.app.state.values_cache
    return cache.get_or_make((data_version(request), "embed-page", req), draw)


def cached_map_figures(request: Request, store: Store, req: MapRequest) -> dict:
    """What the page's baseline and threshold controls fetch (:func:`geo_cs.maps.page.view_figures`),
    cached like the page, under the whole request."""
    def figures() -> dict:
        return view_figures(gather_map(CachedMapSources(request, store), req))

    cache: LRUCache = request.app.state.values_cache
    return cache.get_or_make((data_version(request), "map-figures", req), figures)


def default_map_request(partnership: str) -> MapRequest:
    """What a bare ``/maps/{partnership}`` asks for: the request (and so the cache key) of a
    visitor who has chosen nothing yet (``api.routers.maps.map_request`` with no parameters)."""
    return MapRequest(partnership)


class _WarmRequest:
    """Just enough of a request for the caches (``app.state``, the snapshot taken): the warm-up's
    pages are stored under the keys a visitor's request looks up."""

    def __init__(self, app: Any, taken: Snapshot) -> None:
        self.app = app
        self.state = type("State", (), {})()
        self.state.geo_cs_snapshot = taken


class MapWarmer:
    """Draws every partnership's default map page in the background, after a start and after
    each update, so that the first visitor of the morning is served from the cache as a repeat
    visitor is (issue 28, point 15).

    One thread per worker, one page at a time, with a pause between pages so that requests
    waiting for the interpreter get it: it costs the machine some CPU after a start or an
    update, not a visitor's wait. (Its thread is not given a lower OS priority: a descheduled
    thread holding the GIL would hold up every request of the worker.) A visitor asking for a
    page being drawn waits for that one drawing (:meth:`LRUCache.get_or_make`), not a second.
    It looks for an update every ``poll_s`` (as a request would: :meth:`ServedStore.current`),
    so a new data version is drawn before anyone asks for it. Each worker warms its own cache:
    pages are not shared between worker processes (a page on disk could outlive the code that
    drew it, and the cache folder would be one more thing a server must be able to write).

    ``ready`` (reported by ``/health``): every page of the served data version has been tried.
    An emptying of the caches (``POST /admin/refresh``) ends the pass: what it was drawing is
    not kept, and the pages are drawn at their visits until the next data version.
    """

    def __init__(self, app: Any, partnerships: Callable[[], list[str]] | None = None,
                 poll_s: float = 1.0, pause_s: float = 0.02) -> None:
        self.app = app
        self.poll_s = poll_s
        self.pause_s = pause_s
        self._partnerships = partnerships
        #: the data version whose pages are all drawn (or were tried), None before the first
        self.version: int | None = None
        #: pages drawn (or found drawn) and pages that could not be drawn, for ``version`` or the
        #: version being warmed
        self.warmed = 0
        self.failed = 0
        self.seconds: float | None = None
        #: the data version being warmed (or last warmed)
        self.warming: int | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def partnership_ids(self) -> list[str]:
        if self._partnerships is not None:
            return list(self._partnerships())
        from geo_cs.partnerships import load_partnerships

        return list(load_partnerships())

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="geo-cs-warm-maps", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Stop after the page being drawn (its query is interrupted at shutdown anyway)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def ready(self, version: int) -> bool:
        """Whether every default page of data version ``version`` has been drawn (or tried)."""
        return self.version == version

    def _run(self) -> None:
        served: ServedStore = self.app.state.served
        while not self._stop.is_set():
            try:
                taken = served.current()
                if taken.data_version != self.version:
                    self._warm(served, taken)
            except Exception:   # never let the warm-up end the worker: it tries again
                log.exception("map warm-up failed; trying again in %.0f s", self.poll_s)
            self._stop.wait(self.poll_s)

    def _warm(self, served: ServedStore, taken: Snapshot) -> None:
        from geo_cs.errors import GeoCsError

        started = time.monotonic()
        self.warmed = self.failed = 0
        self.warming = taken.data_version
        settings = self.app.state.settings
        cache: LRUCache = self.app.state.values_cache
        generation = cache.generation
        for partnership in self.partnership_ids():
            if self._stop.is_set() or served.current().data_version != taken.data_version:
                return   # stopping, or a newer version came: the loop starts on that one
            if cache.generation != generation:
                break    # an operator emptied the caches (POST /admin/refresh): they stay empty
            cursor = taken.cursor(settings.query_timeout_s)
            _warming.generation = generation
            try:
                cached_map_page(_WarmRequest(self.app, taken), cursor, default_map_request(partnership))
                self.warmed += 1
            except (GeoCsError, QueryTimeout, duckdb.InterruptException,
                    duckdb.ConnectionException) as exc:
                # a partnership whose areas or data this store does not hold (its visitor gets
                # the same answer, drawn at the visit), or a drawing stopped at the query limit
                # or by shutdown, which closes the version's connection under it ("Connection
                # already closed!"; the visitor's own request draws it): expected, no traceback
                self.failed += 1
                log.debug("map warm-up: %s not drawn (%s)", partnership, exc)
                if self._stop.is_set():
                    return
            except Exception:
                self.failed += 1
                log.warning("map warm-up: %s not drawn", partnership, exc_info=True)
            finally:
                _warming.generation = None
                cursor.close()
            self._stop.wait(self.pause_s)
        self.version = taken.data_version
        self.seconds = round(time.monotonic() - started, 2)
        log.info("map warm-up: %d default map page(s) of data version %s drawn in %.1f s%s",
                 self.warmed, taken.data_version, self.seconds,
                 f" ({self.failed} not drawn)" if self.failed else "")
