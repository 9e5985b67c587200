"""The DuckDB store: the one place that opens connections and loads the spatial extension.

DuckDB's ``INSTALL spatial`` downloads from the internet, which council networks (and our CI)
do not allow. The PyPI package ``duckdb-extension-spatial`` carries the extension binary for the
pinned DuckDB version, so we ``LOAD`` it by path instead.

Example
-------
>>> from geo_cs.store import Store
>>> with Store.open(":memory:") as store:
...     store.sql("SELECT ST_AsText(ST_Point(1, 2))").fetchone()[0]
'POINT (1 2)'
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import math
import os
import shutil
import stat
from collections.abc import Iterator
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

import duckdb

from geo_cs.errors import DiskFullError, StoreError

SCHEMA_VERSION = "1"
#: Tables later versions added to the schema: a database opened read-only may lack them.
LATER_TABLES = frozenset({"tile_pieces", "tile_features", "postcode_districts", "derived_denominators",
                          "analysis_panels", "survey_estimates"})


def spatial_extension_path() -> Path:
    """Path of the spatial extension binary shipped by ``duckdb-extension-spatial``.

    Raises :class:`StoreError` naming what to install when the package or file is missing.
    """
    try:
        import duckdb_extension_spatial
    except ImportError as exc:
        raise StoreError(
            "the DuckDB spatial extension package is not installed: "
            f"pip install 'duckdb-extension-spatial=={duckdb.__version__}'"
        ) from exc
    root = Path(duckdb_extension_spatial.__file__).parent / "extensions"
    wanted = root / f"v{duckdb.__version__}" / "spatial.duckdb_extension"
    if wanted.exists():
        return wanted
    found = sorted(root.glob("v*/spatial.duckdb_extension"))
    raise StoreError(
        f"no spatial extension for DuckDB {duckdb.__version__} in {root} "
        f"(found: {', '.join(str(p.parent.name) for p in found) or 'none'}); "
        "install duckdb and duckdb-extension-spatial of the same version"
    )


def load_spatial(con: duckdb.DuckDBPyConnection, path: Path | None = None) -> None:
    """Load the spatial extension into ``con`` from the package file (never from the network)."""
    path = path or spatial_extension_path()
    try:
        con.execute(f"LOAD '{path.as_posix()}'")  # a file path from the package, not user input
    except duckdb.Error as exc:
        raise StoreError(f"cannot load the DuckDB spatial extension from {path}: {exc}") from exc


#: The extension files (path, size, mtime, inode) whose DuckDB signature this process checked.
_signature_checked: set[tuple[str, int, int, int]] = set()
#: Every store's connection is made with this configuration: DuckDB refuses a second connection
#: to an open file with another one, so it must not depend on which connection came first.
_CONFIG = {"allow_unsigned_extensions": "true"}


def _file_identity(path: Path) -> tuple[str, int, int, int]:
    info = path.stat()
    return str(path), info.st_size, info.st_mtime_ns, info.st_ino


def check_signature(extension: Path) -> None:
    """Have DuckDB check the extension file's signature, once per process and file.

    DuckDB checks it on every new database by hashing the whole 80 MB file, about 0.3 s: more
    than the rest of opening a store, which a server swapping in a new version, an ingest's
    working copy and a test suite do many times. The check is made here, on a throwaway
    in-memory database with DuckDB's default (signed-only) setting; stores then load the same,
    unchanged file without hashing it again. A changed file (size, time or inode) is checked
    again, and an unsigned or altered one is refused as before.
    """
    identity = _file_identity(extension)
    if identity in _signature_checked:
        return
    probe = duckdb.connect(":memory:")
    try:
        load_spatial(probe, extension)
    finally:
        probe.close()
    _signature_checked.add(identity)


def _connect(path: str, read_only: bool) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection to ``path`` with spatial loaded from its checked package file."""
    extension = spatial_extension_path()
    check_signature(extension)
    try:
        con = duckdb.connect(path, read_only=read_only, config=_CONFIG)
    except duckdb.Error as exc:
        raise StoreError(f"cannot open database {path}: {exc}") from exc
    try:
        load_spatial(con, extension)
    except StoreError:
        con.close()
        raise
    return con


def _schema_sql() -> str:
    return resources.files("geo_cs").joinpath("sql/schema.sql").read_text(encoding="utf-8")


class Store:
    """A geo-cs database: a DuckDB file (or ``:memory:``) with spatial loaded and the schema in place.

    Open read-write for ingest (``Store.open(path)``) or read-only for serving
    (``Store.open(path, read_only=True)``); many read-only processes may share one file.
    """

    def __init__(self, con: duckdb.DuckDBPyConnection, path: str, read_only: bool) -> None:
        self.con = con
        self.path = path
        self.read_only = read_only
        #: Derived results on this connection (panels, partnership resolutions), keyed with the
        #: data version so an ingest makes them stale.
        self.cache: dict[tuple, Any] = {}
        self._data_version: int | None = None

    @classmethod
    def open(cls, path: str | Path = ":memory:", *, read_only: bool = False) -> Store:
        path_str = str(path)
        if read_only and path_str != ":memory:" and not Path(path_str).exists():
            raise StoreError(
                f"database {path_str} does not exist; build it first (geo-cs ingest … or geo-cs demo)"
            )
        if path_str != ":memory:":
            Path(path_str).parent.mkdir(parents=True, exist_ok=True)
        con = _connect(path_str, read_only)
        # DuckDB's own progress bar would write to stdout under our --json and --quiet output
        con.execute("SET enable_progress_bar = false")
        store = cls(con, path_str, read_only)
        if not read_only:
            store._ensure_schema()
        elif not con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'meta'"
        ).fetchone()[0]:
            con.close()
            raise StoreError(f"{path_str} is a DuckDB file but not a geo-cs database (no meta table)")
        return store

    def _ensure_schema(self) -> None:
        self.con.execute(_schema_sql())
        self.con.execute(
            "INSERT INTO meta VALUES ('schema_version', ?) ON CONFLICT DO NOTHING", [SCHEMA_VERSION]
        )
        self.con.execute("INSERT INTO meta VALUES ('data_version', '0') ON CONFLICT DO NOTHING")

    # -- plumbing ---------------------------------------------------------------------------
    def holds_rows(self, table: str, set_id: str | None = None) -> bool:
        """Whether ``table`` (one of :data:`LATER_TABLES`) has a row (of ``set_id``): False too for
        a database written before the table existed, opened read-only (so without it)."""
        if table not in LATER_TABLES:
            raise ValueError(f"{table!r} is not one of {sorted(LATER_TABLES)}")
        where = " WHERE set_id = ?" if set_id is not None else ""
        try:   # the name is one of LATER_TABLES: never user input
            row = self.sql(f"SELECT count(*) > 0 FROM (SELECT 1 FROM {table}{where} LIMIT 1)",
                           [set_id] if set_id is not None else None).fetchone()
        except duckdb.CatalogException:
            return False
        return bool(row[0])

    def sql(self, query: str, params: list[Any] | dict[str, Any] | None = None):
        """Run a parameterised query and return DuckDB's relation/cursor."""
        return self.con.execute(query, params) if params is not None else self.con.execute(query)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """One ingest = one transaction: on any error everything it wrote is rolled back."""
        self.con.execute("BEGIN TRANSACTION")
        try:
            yield self.con
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        else:
            self.con.execute("COMMIT")

    def next_ingest_id(self) -> int:
        return int(self.con.execute("SELECT coalesce(max(ingest_id), 0) + 1 FROM ingests").fetchone()[0])

    def start_ingest(self, kind: str, sources: list[str]) -> int:
        """Record the start of an ingest (inside its transaction) and return its id."""
        ingest_id = self.next_ingest_id()
        self.con.execute(
            "INSERT INTO ingests VALUES (?, ?, ?, ?, NULL, NULL)",
            [ingest_id, kind, sources, datetime.now()],
        )
        return ingest_id

    def finish_ingest(self, ingest_id: int, report: dict[str, Any]) -> None:
        """Store the ingest's report and bump the data version (still inside the transaction)."""
        self.con.execute(
            "UPDATE ingests SET finished_at = ?, report = ? WHERE ingest_id = ?",
            [datetime.now(), json.dumps(report, default=str), ingest_id],
        )
        self.bump_data_version()

    def register_set(self, geo_set: Any) -> None:
        """Record a registry set (a :class:`geo_cs.geography.GeographySet`) in this database."""
        self.con.execute(
            "INSERT INTO geography_sets VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            [geo_set.set_id, geo_set.geography, geo_set.vintage, list(geo_set.nations),
             geo_set.label, geo_set.expected_count],
        )

    def register_codes(
        self, geo_set: Any, codes: list[str], names: list[str | None] | None, source: str,
        ingest_id: int,
    ) -> int:
        """Add codes not yet in the store as areas without geometry; return how many were new.

        Codes known only from a lookup, an official code list or a statistics file (LSOA 2001,
        a DWP region) are registered this way so indicators on them can be checked.
        """
        import pandas as pd

        from geo_cs.geography import nation_of

        self.register_set(geo_set)
        if not codes:
            return 0
        named = pd.DataFrame({
            "code": pd.Series(codes, dtype=object),
            "name": pd.Series(names if names is not None else [None] * len(codes), dtype=object),
        })
        named["nation"] = [nation_of(c) for c in named["code"]]
        self.con.register("geo_cs_new_codes", named.drop_duplicates("code"))
        try:
            count = "SELECT count(*) FROM areas WHERE set_id = ?"
            before = self.con.execute(count, [geo_set.set_id]).fetchone()[0]
            self.con.execute(
                """
                INSERT INTO areas (set_id, code, name, geography, vintage, nation, source, ingest_id)
                SELECT ?, code, nullif(name, ''), ?, ?, nation, ?, ?
                FROM geo_cs_new_codes
                WHERE code NOT IN (SELECT code FROM areas WHERE set_id = ?)
                """,
                [geo_set.set_id, geo_set.geography, geo_set.vintage, source, ingest_id, geo_set.set_id],
            )
            return int(self.con.execute(count, [geo_set.set_id]).fetchone()[0] - before)
        finally:
            self.con.unregister("geo_cs_new_codes")

    def data_version(self) -> int:
        """A counter bumped by every successful ingest; caches (tiles, API) key on it. A
        read-only store's cannot change (an update is a new file), so it is read once."""
        if self.read_only and self._data_version is not None:
            return self._data_version
        row = self.con.execute("SELECT value FROM meta WHERE key = 'data_version'").fetchone()
        version = int(row[0]) if row else 0
        if self.read_only:
            self._data_version = version
        return version

    def bump_data_version(self) -> None:
        self.con.execute(
            "UPDATE meta SET value = CAST(CAST(value AS INTEGER) + 1 AS VARCHAR) "
            "WHERE key = 'data_version'"
        )

    def summary(self) -> tuple[list[tuple], list[tuple]]:
        """What the store holds: per boundary set (set, label, codes, with boundaries, nations)
        and per indicator and geography (indicator, set, observations, with value, first
        period, last period, number of periods, kinds of period: month, quarter…)."""
        sets = self.sql(
            """
            SELECT a.set_id, any_value(g.label), count(*), count(a.geom_27700),
                   string_agg(DISTINCT a.nation, '') FILTER (WHERE a.nation IS NOT NULL)
            FROM areas a JOIN geography_sets g USING (set_id)
            GROUP BY a.set_id ORDER BY a.set_id
            """
        ).fetchall()
        indicators = self.sql(
            """
            SELECT o.indicator_id, o.set_id, count(*), count(o.value),
                   arg_min(p.label, p.start_date), arg_max(p.label, p.start_date),
                   count(DISTINCT p.period_id), string_agg(DISTINCT p.kind, ', ' ORDER BY p.kind)
            FROM observations o JOIN periods p USING (period_id)
            GROUP BY ALL ORDER BY 1, 2
            """
        ).fetchall()
        return sets, indicators

    def totals(self) -> tuple[int, int]:
        """(areas with boundaries, observations) in the store."""
        n_areas = self.sql("SELECT count(geom_27700) FROM areas").fetchone()[0]
        n_obs = self.sql("SELECT count(*) FROM observations").fetchone()[0]
        return n_areas, n_obs

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextlib.contextmanager
def updating(path: str | Path, *, fresh: bool = False) -> Iterator[Store]:
    """Write to a database that may be being served: on a copy, put in its place atomically.

    A served store is open read-only, which DuckDB's file lock keeps writers out of, and readers
    must never see half an ingest. So the file is copied beside itself, the copy is written,
    checkpointed and closed, and ``os.replace`` swaps it in: one atomic rename. A server notices
    the new file and reopens it (``api.deps.ServedStore``); requests already running finish on
    the old one. Every write goes this way, a first ingest into a new file too: nothing but a
    complete database ever appears at ``path``.

    ``fresh`` starts from an empty database instead of a copy (the demo's rebuild): the file at
    ``path`` is still replaced only once the new one is complete.

    Contract:

    - If the writer fails or is killed, ``path`` is byte-identical to what it was. On failure the
      working copy is removed; after a kill it stays aside (``.NAME.PID.updating``) until the
      next update of ``path``, which removes it before it starts.
    - The new file keeps the replaced file's mode and owner (user and group). A user who cannot
      give it that owner is refused (:class:`StoreError`) before anything is written.
    - A disk that fills (or a file-size limit, or a quota) raises :class:`DiskFullError`
      saying how much room the update needs; the partial copy is removed first.
    """
    path = Path(path)
    # one update at a time (cron and a person, say): the second waits for the first, then works
    # on its result rather than on a copy of what the first replaced
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(f".{path.name}.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        with _updating_locked(path, fresh) as store:
            yield store


def _working_files(copy: Path) -> list[Path]:
    """The working copy and what DuckDB keeps beside it (write-ahead log, spill folder)."""
    return [copy, Path(f"{copy}.wal"), Path(f"{copy}.tmp")]


def _remove(paths: list[Path]) -> None:
    for leftover in paths:
        if leftover.is_dir():
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            leftover.unlink(missing_ok=True)


def _keep_owner_and_mode(copy: Path, original: os.stat_result, path: Path, *, writable: bool) -> None:
    """Give ``copy`` the owner, group and mode of ``original`` (the file it will replace).

    While the update writes (``writable``) the owner's write bit is kept on, so that a file
    made read-only (0444) can still be updated by a user other than root; the exact mode is set
    just before the rename.
    """
    current = copy.stat()
    if (current.st_uid, current.st_gid) != (original.st_uid, original.st_gid):
        try:
            os.chown(copy, original.st_uid, original.st_gid)
        except PermissionError as exc:
            raise StoreError(
                f"{path} belongs to user {original.st_uid}, group {original.st_gid}; this process "
                f"(user {os.geteuid()}) cannot give the updated file that owner, so updating it "
                "would change who owns it: run the update as that user (or root)"
            ) from exc
    mode = stat.S_IMODE(original.st_mode)
    os.chmod(copy, mode | stat.S_IWUSR if writable else mode)


#: errno values of a write that found no room: disk full, file-size limit (``ulimit -f``,
#: RLIMIT_FSIZE, or the filesystem's largest file), quota exceeded.
_NO_SPACE_ERRNOS = frozenset({errno.ENOSPC, errno.EFBIG, errno.EDQUOT})
#: The same, as DuckDB words them in its IOException (it reports no errno).
_NO_SPACE_TEXTS = tuple(os.strerror(code) for code in sorted(_NO_SPACE_ERRNOS))


def _no_space(exc: BaseException) -> str | None:
    """Why ``exc`` (or an exception it was raised from or while handling) found no room to
    write, in the system's words, or None. An ingest may wrap the write's error (DuckDB's
    IOException, a rollback failing after it), so the whole chain is looked at."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in _NO_SPACE_ERRNOS:
            return os.strerror(current.errno)
        if isinstance(current, duckdb.Error):
            text = str(current)
            found = next((t for t in _NO_SPACE_TEXTS if t in text), None)
            if found:
                return found
        pending += [current.__cause__, current.__context__]
    return None


def _disk_full(path: Path, reason: str, needed: int, fresh: bool) -> DiskFullError:
    """The error of an update that ran out of room: what it needs (an estimate), where, and why.

    ``needed`` is the larger of the database's size and what the working copy had reached:
    the copy needs that much, and an update adds to it, hence half as much again.
    """
    folder = path.parent.resolve()
    free_mb = shutil.disk_usage(folder).free / 2**20
    needed_mb = math.ceil(needed * 1.5 / 2**20) + 1
    if reason == os.strerror(errno.EFBIG):   # room on the disk, but not for a file this large
        reason += ": the file-size limit of this process (ulimit -f) or of the filesystem"
    kept = f"{path} is unchanged" if path.exists() else f"no database was created at {path}"
    what = "building" if fresh or not path.exists() else "updating"
    return DiskFullError(
        f"disk full: {what} {path} needs about {needed_mb:,} MB free in {folder} for its working "
        f"copy ({reason}; {free_mb:,.0f} MB free now); the partial copy was removed and {kept}"
    )


@contextlib.contextmanager
def _updating_locked(path: Path, fresh: bool) -> Iterator[Store]:
    for stale in path.parent.glob(f".{path.name}.*.updating*"):
        _remove([stale])   # an update that was killed: none other runs (the lock)
    copy = path.with_name(f".{path.name}.{os.getpid()}.updating")
    working = _working_files(copy)
    wal = Path(f"{path}.wal")
    original = path.stat() if path.exists() else None
    needed = (original.st_size if original else 0) + (wal.stat().st_size if wal.exists() else 0)
    try:
        if original is not None and not fresh:
            shutil.copy2(path, copy)
            if wal.exists():
                shutil.copy2(wal, Path(f"{copy}.wal"))
            _keep_owner_and_mode(copy, original, path, writable=True)
        store = Store.open(copy)
        try:
            if original is not None and fresh:   # DuckDB makes the file: owned as the original
                _keep_owner_and_mode(copy, original, path, writable=True)
            yield store
            store.con.execute("CHECKPOINT")
        finally:
            with contextlib.suppress(duckdb.Error):   # a database invalidated by a failed write
                store.close()
        if original is not None:
            _keep_owner_and_mode(copy, original, path, writable=False)
        os.replace(copy, path)
    except BaseException as exc:
        reason = _no_space(exc)
        if reason is not None:
            needed = max(needed, copy.stat().st_size if copy.is_file() else 0)
        _remove(working)
        if reason is not None:
            raise _disk_full(path, reason, needed, fresh) from exc
        raise
    _remove(working[1:])   # DuckDB's own leftovers of the copy, under its old name
    wal.unlink(missing_ok=True)
