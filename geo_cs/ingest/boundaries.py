"""Ingest of small-area boundaries from the formats councils and ONS/NRS publish.

Reads GeoJSON, TopoJSON, Shapefile, GeoPackage, FlatGeobuf and GeoParquet, one file or a folder
of per-district files; recognises the set from its ONS/NRS code column (or is told); repairs
invalid geometries; drops identical duplicates; refuses conflicting ones unless told how to pick;
stores each area in EPSG:27700 and EPSG:4326; and reports what it did and which codes are missing.

A file holding several editions of districts at once (``uk_admin_2014_2025.topojson``: each
feature with optional ``start``/``end`` years) is ingested as one edition with ``alive_in``:
only the features in use that year are kept, features of nations the set does not cover are
left out, and a code the district code history says was recoded by then is stored as that
year's code (the file may predate a recode, as it does Glasgow City's of 2019).

Example
-------
>>> from geo_cs.ingest import ingest_boundaries
>>> from geo_cs.store import Store
>>> from geo_cs.config import boundaries_dir
>>> store = Store.open(":memory:")
>>> wards = boundaries_dir() / "demo" / "boundaries" / "ward2013" / "S12000046.json"   # Glasgow's
>>> report = ingest_boundaries(store, [wards])
>>> print("\\n".join(report.lines()))
ward2013: 21 features read from 1 file; 21 areas written
no CRS declared in 1 file(s); coordinates are in lon/lat range, so taken as CRS84 (OGC:CRS84)
invalid geometries repaired (make_valid): 0
identical duplicates dropped: 0
coverage: 21 areas of ward2013 in the store; a complete set has 8,886
>>> store.close()
"""

from __future__ import annotations

import re
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyogrio
import pyogrio.raw
import pyproj
import shapely

from geo_cs.codehistory import equivalent_codes
from geo_cs.district_codes import (
    SMALL_AREA_GEOGRAPHIES,
    code_history,
    codes_in_edition,
    refresh_code_history,
)
from geo_cs.errors import InputError, NotFoundError
from geo_cs.geography import GeographySet, is_listed, nation_of, registry
from geo_cs.ingest.csvfile import decode_text
from geo_cs.progress import Progress, SilentProgress
from geo_cs.store import Store
from geo_cs.tiles import set_tile_geometries, write_tile_geometries

BOUNDARY_SUFFIXES = (".geojson", ".json", ".topojson", ".shp", ".gpkg", ".fgb", ".parquet",
                     ".geoparquet")
OnDuplicate = Literal["error", "first", "largest"]
BNG = "EPSG:27700"
LONLAT = "EPSG:4326"
GSS_CODE = re.compile(r"^[EWSNK]\d{8}$")
_CRS84 = pyproj.CRS("OGC:CRS84")
_WGS84 = pyproj.CRS("EPSG:4326")
#: Files read at once; GDAL parses TopoJSON/GeoJSON outside the GIL.
READ_THREADS = 4
#: How many conflicting/missing codes an error or report line lists before summarising.
LIST_LIMIT = 50
#: The years ``alive_in`` may be: a typo (202, 20200) is refused, not a silently empty set.
ALIVE_IN_YEARS = (1900, 2100)
#: The feature properties of a multi-edition file: first and last year a code is in use (inclusive).
START_PROPERTY, END_PROPERTY = "start", "end"
_NATION_NAMES = {"E": "England", "W": "Wales", "S": "Scotland", "N": "Northern Ireland"}


@dataclass
class BoundaryReport:
    """What an ingest of boundaries read, repaired, dropped and found missing."""

    set_id: str
    files: int = 0
    features_read: int = 0
    areas_written: int = 0
    crs_assumed_files: list[str] = field(default_factory=list)
    repaired_codes: list[str] = field(default_factory=list)
    identical_duplicates: dict[str, list[str]] = field(default_factory=dict)
    conflicting_duplicates: dict[str, list[str]] = field(default_factory=dict)
    on_duplicate: str = "error"
    nations: list[str] = field(default_factory=list)
    expected_count: int | None = None
    present_count: int = 0
    missing_codes: list[str] = field(default_factory=list)
    unexpected_codes: list[str] = field(default_factory=list)
    has_code_list: bool = False
    ingest_id: int | None = None
    #: the year of ``alive_in`` and what it left out or renamed (all empty without it)
    alive_in: int | None = None
    not_alive: int = 0
    set_nations: list[str] = field(default_factory=list)
    other_nations: dict[str, list[str]] = field(default_factory=dict)
    #: (code in the file, its name, code stored) for each code recoded by ``alive_in``
    renamed: list[tuple[str, str | None, str]] = field(default_factory=list)
    #: (code, name, code the history gives, why it was kept as it is)
    not_renamed: list[tuple[str, str | None, str, str]] = field(default_factory=list)
    #: False when ``alive_in`` found no district code history to rename codes by
    code_history_held: bool | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    def lines(self) -> list[str]:
        """The human report printed at the end of ``geo-cs ingest boundaries``."""
        out = [
            f"{self.set_id}: {self.features_read:,} features read from {self.files:,} "
            f"file{'s' if self.files != 1 else ''}; {self.areas_written:,} areas written",
        ]
        out += self._alive_lines()
        if self.crs_assumed_files:
            out.append(
                f"no CRS declared in {len(self.crs_assumed_files):,} file(s); coordinates are "
                "in lon/lat range, so taken as CRS84 (OGC:CRS84)"
            )
        out.append(f"invalid geometries repaired (make_valid): {len(self.repaired_codes):,}"
                   + (f" ({_short(self.repaired_codes)})" if self.repaired_codes else ""))
        if self.identical_duplicates:
            detail = "; ".join(
                f"{code} ({', '.join(Path(f).name for f in files)})"
                for code, files in sorted(self.identical_duplicates.items())
            )
            out.append(
                f"identical duplicates dropped: {len(self.identical_duplicates):,} codes appeared "
                f"more than once with the same geometry: {detail}"
            )
        else:
            out.append("identical duplicates dropped: 0")
        if self.conflicting_duplicates:
            out.append(
                f"conflicting duplicates resolved by --on-duplicate {self.on_duplicate}: "
                f"{_short(sorted(self.conflicting_duplicates))}"
            )
        if self.expected_count is not None and not self.has_code_list:
            out.append(
                f"coverage: {self.present_count:,} areas of {self.set_id} in the store; "
                f"a complete set has {self.expected_count:,}"
            )
        elif self.expected_count is not None:
            scope = "+".join(self.nations) if self.nations else "all"
            line = (
                f"coverage: {self.present_count:,} of {self.expected_count:,} expected codes "
                f"({scope}) in the store"
            )
            if self.missing_codes:
                line += f"; {len(self.missing_codes):,} missing: {_short(self.missing_codes)}"
            else:
                line += "; none missing"
            out.append(line)
        if self.unexpected_codes:
            out.append(
                f"{len(self.unexpected_codes):,} codes are not in the official list of "
                f"{self.set_id}: {_short(self.unexpected_codes)}"
            )
        return out

    def _alive_lines(self) -> list[str]:
        """What ``alive_in`` left out and renamed, one line each."""
        if self.alive_in is None:
            return []
        year = self.alive_in
        out = [f"{self.not_alive:,} feature{'s' if self.not_alive != 1 else ''} not in use in "
               f"{year} left out (their start/end years)"]
        for nation, codes in sorted(self.other_nations.items()):
            covered = [_NATION_NAMES.get(n, n) for n in self.set_nations]
            out.append(
                f"{len(codes):,} feature{'s' if len(codes) != 1 else ''} of "
                f"{_NATION_NAMES.get(nation, nation)} left out: {self.set_id} covers "
                f"{_and(covered)} only ({_short(codes)})"
            )
        for code, name, new in self.renamed:
            out.append(f"{code}{f' {name}' if name else ''} stored as {new}, its code in {year} "
                       "(district code history)")
        for code, name, other, why in self.not_renamed:
            out.append(f"{code}{f' {name}' if name else ''} kept under its own code, although the "
                       f"district code history has it as {other} in {year}: {why}")
        if self.code_history_held is False:
            out.append(f"no district code history in the store: codes stored as the file has them, "
                       f"none renamed to its {year} code (ingest the district changes lookup, "
                       "lad_changes, first to rename them)")
        return out


def _and(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _short(codes: list[str], limit: int = LIST_LIMIT) -> str:
    codes = sorted(codes)
    if len(codes) <= limit:
        return ", ".join(codes)
    return ", ".join(codes[:limit]) + f", … and {len(codes) - limit:,} more"


# -- reading ------------------------------------------------------------------------------------

def expand_paths(paths: list[str | Path]) -> list[Path]:
    """Files to read: each path itself, or the boundary files in a folder (sorted)."""
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix.lower() in BOUNDARY_SUFFIXES)
            if not found:
                raise InputError(
                    f"{path}: folder holds no boundary files "
                    f"(expected {', '.join(BOUNDARY_SUFFIXES)})"
                )
            files.extend(found)
        elif path.exists():
            files.append(path)
        else:
            raise NotFoundError(f"{path}: no such file or folder")
    return files


@dataclass
class _RawFile:
    """One file as read: its attribute table (Arrow), geometries and declared CRS."""

    path: Path
    table: pa.Table
    geoms: np.ndarray
    crs: pyproj.CRS | None


def _read_one(path: Path, layer: str | None) -> _RawFile:
    """Read a file through GDAL's Arrow interface (or pyarrow for GeoParquet)."""
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".geoparquet"):
            frame = gpd.read_parquet(path)
            table = pa.Table.from_pandas(frame.drop(columns=frame.geometry.name), preserve_index=False)
            return _RawFile(path, table, frame.geometry.to_numpy(), frame.crs)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            meta, table = pyogrio.raw.read_arrow(path, layer=layer)
        if layer is None and any("More than one layer" in str(w.message) for w in caught):
            names = ", ".join(str(name) for name, _ in pyogrio.list_layers(path))
            raise InputError(f"{path}: holds several layers ({names}); choose one with --layer")
        geometry_name = meta.get("geometry_name") or "wkb_geometry"
        wkb = table.column(geometry_name).to_numpy(zero_copy_only=False)
        table = table.drop_columns([geometry_name])
        crs = pyproj.CRS.from_user_input(meta["crs"]) if meta.get("crs") else None
        return _RawFile(path, table, shapely.from_wkb(wkb), crs)
    except InputError:
        raise
    except Exception as exc:  # pyogrio/GDAL/pyarrow raise many types; the message is what matters
        raise InputError(f"{path}: cannot read as a boundary file: {exc}") from exc


def _lonlat_geometries(raw: _RawFile, report: BoundaryReport) -> np.ndarray:
    """The file's geometries in lon/lat, checking (or, if undeclared, inferring) its CRS.

    GDAL reports EPSG:4326 for every GeoJSON file (the format's default), so a GeoJSON written
    in British National Grid without a ``crs`` member also arrives as "geographic": its
    coordinates then fail the same range check.
    """
    path, geoms = raw.path, raw.geoms
    xmin, ymin, xmax, ymax = shapely.total_bounds(geoms)
    in_range = -180 <= xmin <= xmax <= 180 and -90 <= ymin <= ymax <= 90
    if raw.crs is None:
        if not in_range:
            raise InputError(
                f"{path}: no CRS declared and coordinates ({xmin:.1f}, {ymin:.1f}, {xmax:.1f}, "
                f"{ymax:.1f}) are not in lon/lat range; declare it in the file (a .prj for a "
                "shapefile)"
            )
        report.crs_assumed_files.append(str(path))
        return geoms
    if raw.crs.is_geographic:
        if not in_range:
            raise InputError(
                f"{path}: coordinates ({xmin:.1f}, {ymin:.1f}, {xmax:.1f}, {ymax:.1f}) are not "
                f"lon/lat although the file is read as {raw.crs.to_string()} (GeoJSON without "
                "a crs member is lon/lat by definition); no CRS declared for projected "
                "coordinates: reproject the file to EPSG:4326 or write it as GeoPackage"
            )
        if raw.crs.equals(_CRS84) or raw.crs.equals(_WGS84):
            return geoms
    return gpd.GeoSeries(geoms, crs=raw.crs).to_crs(_CRS84).to_numpy()


def _resolve_set(
    columns: list[str], path: Path, set_id: str | None, code_col: str | None
) -> GeographySet:
    reg = registry()
    if set_id is not None:
        return reg.get(set_id)
    if code_col is not None:
        for s in reg.sets.values():
            if s.find_column([code_col], s.code_columns):
                return s
    detected = reg.detect(columns)
    if detected is None:
        raise InputError(
            f"{path}: cannot tell which geography set this is from its columns "
            f"({', '.join(columns)}); pass --set (e.g. --set lsoa2011) and --code-col"
        )
    return detected


_POLYGONAL = (shapely.GeometryType.POLYGON, shapely.GeometryType.MULTIPOLYGON)
#: Great Britain and its islands in lon/lat, with a margin.
GB_LONLAT = (-9.5, 49.0, 2.5, 61.5)


def _check_codes_and_types(
    raw: _RawFile, codes: np.ndarray, code_column: str, geo_set: GeographySet,
    numbers: np.ndarray,
) -> None:
    """Every feature is a polygon and every code a GSS code of one of the set's nations.

    ``numbers`` are the features' numbers in the file (1-based), for the messages."""
    types = shapely.get_type_id(raw.geoms)
    bad = ~np.isin(types, _POLYGONAL)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise InputError(
            f"{raw.path}, feature {numbers[row]} (code {codes[row]}): {raw.geoms[row].geom_type} "
            f"geometry; boundaries must be polygons ({int(bad.sum()):,} features are not)"
        )
    if geo_set.nations:
        ok = np.array([bool(GSS_CODE.match(c)) and c[0] in geo_set.nations for c in codes])
        if not ok.all():
            row = int(np.flatnonzero(~ok)[0])
            raise InputError(
                f"{raw.path}, feature {numbers[row]}, column {code_column!r}: {codes[row]!r} is not a "
                f"{geo_set.set_id} code (a GSS code starting {'/'.join(geo_set.nations)} and 8 digits)"
            )


def _check_finite(raw: _RawFile, codes: np.ndarray, numbers: np.ndarray) -> None:
    """No NaN or infinite coordinates (GEOS envelopes skip NaN, so the extent check cannot)."""
    coords, owner = shapely.get_coordinates(raw.geoms, return_index=True)
    bad = ~np.isfinite(coords).all(axis=1)
    if bad.any():
        row = int(owner[np.flatnonzero(bad)[0]])
        raise InputError(
            f"{raw.path}, feature {numbers[row]} (code {codes[row]}): coordinates are not finite "
            f"(NaN or infinity in {len(np.unique(owner[bad])):,} features)"
        )


def _check_listed(frame: gpd.GeoDataFrame, geo_set: GeographySet) -> None:
    """Every code is on the set's official list, when there is one.

    A code that is not is most often a file of another vintage given the wrong ``--set``
    (LSOA 2021 boundaries as lsoa2011): the message names the set whose list does hold it.
    """
    expected = geo_set.expected_codes()
    if not expected:
        return
    codes = frame["code"].to_numpy()
    unlisted = ~is_listed(frame["code"], expected)
    if not unlisted.any():
        return
    first = int(np.flatnonzero(unlisted)[0])
    code = codes[first]
    others = registry().sets_listing(code, besides=geo_set.set_id)
    hint = f" — it is a {' / '.join(others)} code: use --set {others[0]}" if others else ""
    count = len(set(codes[unlisted]))
    raise InputError(
        f"{frame['source'].iat[first]}, feature {frame['feature'].iat[first]}: {code!r} is not on "
        f"the official list of {geo_set.set_id} codes{hint} ({count:,} code"
        f"{'s' if count != 1 else ''} not listed; --allow-unlisted-codes accepts them)"
    )


def _check_in_great_britain(path: Path, lonlat: np.ndarray, geo_set: GeographySet) -> None:
    if not geo_set.nations or not set(geo_set.nations) <= {"E", "W", "S"}:
        return
    xmin, ymin, xmax, ymax = shapely.total_bounds(lonlat)
    gx0, gy0, gx1, gy1 = GB_LONLAT
    if xmin < gx0 or ymin < gy0 or xmax > gx1 or ymax > gy1:
        swapped = gy0 <= xmin and xmax <= gy1 and gx0 <= ymin and ymax <= gx1
        hint = " — longitude and latitude look swapped" if swapped else ""
        raise InputError(
            f"{path}: lon/lat extent ({xmin:.2f}, {ymin:.2f}, {xmax:.2f}, {ymax:.2f}) reaches outside "
            f"Great Britain{hint}; check the file's CRS and axis order"
        )


def _text_column(table: pa.Table, column: str) -> np.ndarray:
    """A column as stripped Python strings (None for nulls), whatever type GDAL gave it."""
    try:
        values = table.column(column).cast(pa.string()).to_pylist()
    except UnicodeDecodeError:
        # GDAL hands over bytes it could not decode (a Windows-1252 name in a GeoJSON, a .dbf
        # without its .cpg): read them as the CSV reader does, UTF-8 else Windows-1252
        raw = table.column(column).cast(pa.binary()).to_pylist()
        values = [None if v is None else decode_text(v)[0] for v in raw]
    return np.array([v.strip() if v is not None else None for v in values], dtype=object)


def check_alive_in(alive_in: int | None) -> None:
    """``alive_in`` is None or a plausible year (a typo would leave every dated feature out)."""
    lo, hi = ALIVE_IN_YEARS
    if alive_in is not None and not (isinstance(alive_in, int) and lo <= alive_in <= hi):
        raise InputError(f"--alive-in (alive_in) must be a year from {lo} to {hi}, not {alive_in!r}")


def _year_column(table: pa.Table, path: Path, name: str) -> list[int | None] | None:
    """The ``start`` or ``end`` property as integer years (None where absent); None when the
    file has no such property. GDAL gives integers for JSON numbers, but a hand-written file
    may quote them ("2019") or write 2019.0: both are the year; anything else is refused."""
    column = {c.lower(): c for c in table.column_names}.get(name)
    if column is None:
        return None
    years: list[int | None] = []
    for row, value in enumerate(table.column(column).to_pylist(), start=1):
        if value is None or (isinstance(value, str) and not value.strip()):
            years.append(None)
            continue
        try:
            if isinstance(value, bool):
                raise ValueError
            number = float(value.strip() if isinstance(value, str) else value)
            if number != int(number):
                raise ValueError
        except (TypeError, ValueError, OverflowError):
            raise InputError(
                f"{path}, feature {row}, property {column!r}: {value!r} is not a year"
            ) from None
        years.append(int(number))
    return years


def _alive_mask(raw: _RawFile, alive_in: int) -> np.ndarray:
    """Which features are in use in ``alive_in``: ``start`` <= year <= ``end``, an absent
    bound being open (a feature with neither is in every edition of the file)."""
    start = _year_column(raw.table, raw.path, START_PROPERTY)
    end = _year_column(raw.table, raw.path, END_PROPERTY)
    if not any(y is not None for y in (start or []) + (end or [])):
        raise InputError(
            f"{raw.path}: --alive-in {alive_in} keeps the features in use that year, but the "
            f"features of this file carry no start/end years (no {START_PROPERTY!r} or "
            f"{END_PROPERTY!r} property): ingest it without --alive-in"
        )
    n = raw.table.num_rows
    start, end = start or [None] * n, end or [None] * n
    return np.array([(s is None or s <= alive_in) and (e is None or alive_in <= e)
                     for s, e in zip(start, end, strict=True)], dtype=bool)


def _starts(raw: _RawFile) -> np.ndarray:
    """Each feature's ``start`` year (None where absent), for renaming by the code history."""
    years = _year_column(raw.table, raw.path, START_PROPERTY)
    return np.array(years if years is not None else [None] * raw.table.num_rows, dtype=object)


def read_boundary_files(
    paths: list[str | Path],
    *,
    set_id: str | None = None,
    code_col: str | None = None,
    name_col: str | None = None,
    layer: str | None = None,
    progress: Progress | None = None,
    report: BoundaryReport | None = None,
    alive_in: int | None = None,
) -> tuple[GeographySet, gpd.GeoDataFrame, BoundaryReport]:
    """Read boundary files into one lon/lat GeoDataFrame with ``code``, ``name``, ``source``
    and ``feature`` (its number in its file).

    Files are read on a small thread pool (GDAL parses outside the GIL), results in order.
    Nothing is validated beyond what reading needs; :func:`ingest_boundaries` does the rest.

    With ``alive_in`` (a year) only the features in use that year by their ``start``/``end``
    properties are kept, each file must carry such years, features with a GSS code of a nation
    the set does not cover are left out instead of refused, and the frame has a ``start``
    column; the report counts what was left out (``features_read`` counts every feature).
    """
    check_alive_in(alive_in)
    progress = progress or SilentProgress()
    files = expand_paths(paths)
    geo_set: GeographySet | None = None
    codes, names, geoms, sources, features, starts = [], [], [], [], [], []
    read = 0
    report = report or BoundaryReport(set_id="?")
    report.alive_in = alive_in
    with ThreadPoolExecutor(max_workers=READ_THREADS) as pool:
        raws = pool.map(lambda p: _read_one(p, layer), files)
        for raw in progress.track(raws, len(files), "reading boundaries"):
            path = raw.path
            if raw.table.num_rows == 0:
                continue
            columns = raw.table.column_names
            this_set = _resolve_set(columns, path, set_id, code_col)
            if geo_set is None:
                geo_set = this_set
            elif this_set.set_id != geo_set.set_id:
                raise InputError(
                    f"{path}: looks like {this_set.set_id} but earlier files were "
                    f"{geo_set.set_id}; ingest one boundary set at a time"
                )
            code_column = code_col or geo_set.find_column(columns, geo_set.code_columns)
            if code_column not in columns:
                raise InputError(
                    f"{path}: no code column {code_column or '/'.join(geo_set.code_columns)!r}; "
                    f"columns are {', '.join(columns)} (use --code-col)"
                )
            if name_col is not None and name_col not in columns:
                raise InputError(f"{path}: no name column {name_col!r}; columns are {', '.join(columns)}")
            name_column = name_col or geo_set.find_column(columns, geo_set.name_columns)
            file_codes = _text_column(raw.table, code_column)
            read += len(file_codes)
            numbers = np.arange(1, len(file_codes) + 1)
            file_starts = None
            if alive_in is not None:
                # left out before any check: a feature of another edition or nation is not
                # ingested, so its faults are not this ingest's
                keep = _alive_mask(raw, alive_in)
                report.not_alive += int((~keep).sum())
                keep &= ~_other_nation(file_codes, geo_set, keep, report)
                file_starts = _starts(raw)[keep]
                raw = _RawFile(raw.path, raw.table.filter(pa.array(keep)), raw.geoms[keep], raw.crs)
                file_codes, numbers = file_codes[keep], numbers[keep]
                if not keep.any():
                    report.files += 1
                    continue
            blank = np.array([c is None or c == "" for c in file_codes])
            if blank.any():
                row = int(np.flatnonzero(blank)[0])
                raise InputError(f"{path}, feature {numbers[row]}, column {code_column!r}: empty area code")
            missing_geom = shapely.is_missing(raw.geoms) | shapely.is_empty(raw.geoms)
            if missing_geom.any():
                row = int(np.flatnonzero(missing_geom)[0])
                raise InputError(f"{path}, feature {numbers[row]} (code {file_codes[row]}): has no geometry")
            _check_codes_and_types(raw, file_codes, code_column, geo_set, numbers)
            _check_finite(raw, file_codes, numbers)
            lonlat = _lonlat_geometries(raw, report)
            _check_in_great_britain(path, lonlat, geo_set)
            geoms.append(lonlat)
            codes.append(file_codes)
            names.append(_text_column(raw.table, name_column) if name_column
                         else np.full(len(file_codes), None, dtype=object))
            sources.append(np.full(len(file_codes), str(path), dtype=object))
            features.append(numbers)
            if file_starts is not None:
                starts.append(file_starts)
            report.files += 1
    if geo_set is None:
        raise InputError(f"{', '.join(map(str, paths))}: no features to ingest")
    report.set_id = geo_set.set_id
    report.set_nations = list(geo_set.nations)
    if not codes:
        raise InputError(
            f"{', '.join(map(str, paths))}: no feature of {geo_set.set_id} is in use in {alive_in} "
            f"by its start/end years ({read:,} features read)"
        )
    columns = {"code": np.concatenate(codes), "name": np.concatenate(names),
               "source": np.concatenate(sources), "feature": np.concatenate(features)}
    if alive_in is not None:
        columns["start"] = np.concatenate(starts)
    combined = gpd.GeoDataFrame(columns, geometry=np.concatenate(geoms), crs=LONLAT)
    report.features_read = read
    return geo_set, combined, report


def _other_nation(
    codes: np.ndarray, geo_set: GeographySet, alive: np.ndarray, report: BoundaryReport
) -> np.ndarray:
    """Features in use whose code is a GSS code of a nation the set does not cover (the
    Northern Ireland districts of a UK file given to a GB set), recorded in the report.

    Without ``alive_in`` such a code is refused by :func:`_check_codes_and_types` (most often it
    is the wrong ``--set``). With it, the file is a UK-wide compilation being cut down to one
    edition of the set: what lies outside the set's nations is left out like the other
    editions, and reported. Codes that are not GSS codes at all are still refused by that check."""
    other = np.zeros(len(codes), dtype=bool)
    if not geo_set.nations:
        return other
    for row in np.flatnonzero(alive):
        code = codes[row]
        if code and GSS_CODE.match(code) and code[0] not in geo_set.nations:
            other[row] = True
            report.other_nations.setdefault(code[0], []).append(code)
    return other


# -- one edition of a multi-edition file -------------------------------------------------------

#: The ``from_year`` of a feature without a ``start`` year: before every change the history holds.
_BEFORE_ANY_CHANGE = ALIVE_IN_YEARS[0]


def rename_to_edition(
    store: Store, frame: gpd.GeoDataFrame, year: int, report: BoundaryReport
) -> gpd.GeoDataFrame:
    """District codes of ``frame`` renamed to their code in ``year`` where the store's district
    code history says the code was *recoded* (same area, new code) by then; the renames, and
    the changes not followed, are recorded in ``report``.

    Each code is followed from its feature's ``start`` year (or from before every change, when
    it has none) to ``year`` (:func:`geo_cs.district_codes.codes_in_edition`). It is renamed
    only when that gives exactly one other code, reached through recodes alone, that no other
    feature has: a district that the history says merged into another (or a merger's target
    the file also holds) must not lend its geometry to a bigger area, nor give one code two
    geometries; such codes are kept as the file has them and listed. Without any code history
    in the store nothing is renamed, and the report says so.
    """
    history = code_history(store)
    if history.empty:
        report.code_history_held = False
        return frame
    report.code_history_held = True
    codes = frame["code"].to_numpy()
    starts = frame["start"].to_numpy() if "start" in frame else np.full(len(codes), None)
    from_years = np.array([_BEFORE_ANY_CHANGE if s is None else int(s) for s in starts])
    wanted: dict[int, str] = {}       # row -> the single code of ``year`` it was recoded to
    held = set(codes)
    for from_year in sorted(set(from_years.tolist())):
        rows = np.flatnonzero(from_years == from_year)
        group = sorted({codes[r] for r in rows})
        # the same walk as codes_in_edition, over recodes and mergers and over recodes alone:
        # where the two differ, a merger is on the way
        through_all = codes_in_edition(store, group, from_year, year)
        through_recodes = equivalent_codes(history, group, from_year, year, kinds=("recode",))
        for row in rows:
            code, name = codes[row], frame["name"].iat[row]
            found = through_all[code]
            if found == [code]:
                continue
            other = " / ".join(found)
            if len(found) != 1:
                why = "it became several districts"
            elif through_recodes[code] != found:
                why = "it was merged into another district, not recoded"
            elif found[0] in held:
                why = f"the file also holds {found[0]} in use in {year}"
            else:
                wanted[row] = found[0]
                continue
            report.not_renamed.append((code, _text(name), other, why))
    targets = pd.Series(wanted, dtype=object)
    shared = set(targets[targets.duplicated(keep=False)])
    renamed = codes.copy()
    for row, new in wanted.items():
        code, name = codes[row], _text(frame["name"].iat[row])
        if new in shared:
            report.not_renamed.append((code, name, new, f"other features of the file are also {new}"))
            continue
        renamed[row] = new
        report.renamed.append((code, name, new))
    report.renamed.sort()
    report.not_renamed.sort()
    return frame.assign(code=renamed)


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


# -- validation ---------------------------------------------------------------------------------

def repair_geometries(geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Make invalid geometries valid, keeping only their polygonal parts.

    Returns the repaired array and a boolean mask of which ones were invalid.
    """
    invalid = ~shapely.is_valid(geoms)
    if invalid.any():
        geoms = geoms.copy()
        geoms[invalid] = [_polygonal(_make_valid(g)) for g in geoms[invalid]]
    return geoms, invalid


def _make_valid(geom: shapely.Geometry) -> shapely.Geometry:
    # "structure" rebuilds polygons from their rings, which suits boundary slivers and
    # quantised TopoJSON best; GEOS occasionally fails on it for near-coincident vertices, so
    # fall back to the "linework" method and, last, a zero-width buffer.
    try:
        return shapely.make_valid(geom, method="structure", keep_collapsed=False)
    except shapely.errors.GEOSException:
        pass
    try:
        return shapely.make_valid(geom)
    except shapely.errors.GEOSException:
        return shapely.buffer(geom, 0)


def _polygonal(geom: shapely.Geometry) -> shapely.Geometry:
    if geom.geom_type in ("Polygon", "MultiPolygon"):
        return geom
    parts = [g for g in getattr(geom, "geoms", []) if g.geom_type in ("Polygon", "MultiPolygon")]
    return shapely.union_all(parts) if parts else geom


def _what_is_left(geom: shapely.Geometry) -> str:
    """What a repair left of a polygon that is no longer an area, in words for a message."""
    if geom is None or shapely.is_empty(geom):
        return "nothing (an empty polygon)"
    if geom.geom_type in ("Polygon", "MultiPolygon"):
        return "a polygon of zero area"
    kinds = sorted({g.geom_type for g in getattr(geom, "geoms", [geom])})
    return f"only {' and '.join(kinds)} parts"


def check_areas_survive(frame: gpd.GeoDataFrame, repaired: list[tuple[np.ndarray, str]]) -> None:
    """Refuse a feature whose repaired geometry encloses no area, naming its file and feature.

    ``make_valid`` "repairs" a ring whose points are collinear or coincide (a hand-edited
    GeoJSON, a TopoJSON quantised with ``"scale": [0, 0]``) into ``POLYGON EMPTY``, and a
    bow-tie of lines into lines or points: stored, such an area replaces a real boundary with
    nothing (NaN bounds, null extents, an item whose geometry is ``[[]]``, missed by every bbox
    query). It is refused like a feature with no geometry. ``repaired`` pairs each array of
    geometries (row for row with ``frame``) with the CRS it is in, for the message; areas are
    compared in each (British National Grid catches a polygon that collapses when projected).
    """
    for geoms, crs in repaired:
        types = shapely.get_type_id(geoms)
        bad = ~np.isin(types, _POLYGONAL) | shapely.is_empty(geoms)
        with np.errstate(invalid="ignore"):
            bad |= ~(shapely.area(geoms) > 0)
        if not bad.any():
            continue
        row = int(np.flatnonzero(bad)[0])
        raise InputError(
            f"{frame['source'].iat[row]}, feature {frame['feature'].iat[row]} (code "
            f"{frame['code'].iat[row]}): the polygon encloses no area in {crs}: its points are "
            f"collinear or coincide, and repairing it (make_valid) leaves {_what_is_left(geoms[row])}; "
            f"fix or remove the feature ({int(bad.sum()):,} feature"
            f"{'s' if bad.sum() != 1 else ''} like it)"
        )


def resolve_duplicates(
    frame: gpd.GeoDataFrame, on_duplicate: OnDuplicate, area_m2: np.ndarray, report: BoundaryReport
) -> np.ndarray:
    """Row mask to keep: identical duplicates dropped; conflicting ones by ``on_duplicate``."""
    keep = np.ones(len(frame), dtype=bool)
    duplicated = frame["code"].duplicated(keep=False).to_numpy()
    if not duplicated.any():
        return keep
    normalised = shapely.to_wkb(shapely.normalize(frame.geometry.to_numpy()[duplicated]))
    sub = pd.DataFrame(
        {"code": frame["code"].to_numpy()[duplicated], "wkb": normalised,
         "source": frame["source"].to_numpy()[duplicated], "row": np.flatnonzero(duplicated)}
    )
    if "feature" in frame:
        sub["feature"] = frame["feature"].to_numpy()[duplicated]
    conflicts: dict[str, list[str]] = {}
    where: dict[str, str] = {}
    for code, group in sub.groupby("code", sort=True):
        if group["wkb"].nunique() == 1:
            report.identical_duplicates[code] = group["source"].tolist()
            keep[group["row"].to_numpy()[1:]] = False
            continue
        conflicts[code] = group["source"].tolist()
        where[code] = ", ".join(
            f"{Path(f).name}" + (f" (feature {n})" if "feature" in group else "")
            for f, n in zip(group["source"], group.get("feature", group["row"]), strict=True)
        )
        if on_duplicate == "first":
            keep[group["row"].to_numpy()[1:]] = False
        elif on_duplicate == "largest":
            rows = group["row"].to_numpy()
            best = rows[int(np.argmax(area_m2[rows]))]
            keep[rows[rows != best]] = False
    if conflicts and on_duplicate == "error":
        detail = "; ".join(
            f"{code} in {where[code]}" for code in list(conflicts)[:LIST_LIMIT]
        )
        raise InputError(
            f"{len(conflicts)} code(s) appear more than once with different geometries: {detail}. "
            "Fix the files, or choose one with --on-duplicate first|largest"
        )
    report.conflicting_duplicates = conflicts
    return keep


# -- writing ------------------------------------------------------------------------------------

_INSERT_AREAS = """
INSERT INTO areas
SELECT set_id, code, name, geography, vintage, nation,
       ST_GeomFromWKB(wkb_27700) AS geom_27700,
       ST_GeomFromWKB(wkb_4326) AS geom_4326,
       xmin, ymin, xmax, ymax, area_m2, source, ingest_id
FROM new_areas
"""


def ingest_boundaries(
    store: Store,
    paths: list[str | Path],
    *,
    set_id: str | None = None,
    code_col: str | None = None,
    name_col: str | None = None,
    layer: str | None = None,
    on_duplicate: OnDuplicate = "error",
    allow_unlisted: bool = False,
    progress: Progress | None = None,
    refresh_codes: bool = True,
    alive_in: int | None = None,
) -> BoundaryReport:
    """Read, validate and store boundary files as one transaction; return the report.

    Boundaries of districts or small areas rebuild the district code-history registry in the
    same transaction (unless ``refresh_codes`` is false: a caller loading many sets rebuilds
    it once at the end).

    Areas already in the store with the same set and code are replaced, so a set can be
    loaded district by district. On any error nothing is written. Codes missing from the set's
    official list are refused unless ``allow_unlisted`` (then they are listed in the report).

    ``alive_in`` (a year, 1900-2100) ingests one edition of a file holding several, by each
    feature's ``start``/``end`` years (inclusive; an absent one is open): only features in use
    that year are kept, those of nations the set does not cover are left out (not refused), and
    for a district set (geography ``lad``) a code the store's district code history says was
    recoded by that year to one other code is stored under that code (see
    :func:`rename_to_edition`). Every feature left out or renamed is counted in the report. A
    file whose features carry no start/end years is refused.
    """
    if on_duplicate not in ("error", "first", "largest"):
        raise InputError(f"--on-duplicate must be error, first or largest, not {on_duplicate!r}")
    check_alive_in(alive_in)
    progress = progress or SilentProgress()
    report = BoundaryReport(set_id="?", on_duplicate=on_duplicate)
    geo_set, frame, report = read_boundary_files(
        paths, set_id=set_id, code_col=code_col, name_col=name_col, layer=layer,
        progress=progress, report=report, alive_in=alive_in,
    )
    if alive_in is not None and geo_set.geography == "lad":
        frame = rename_to_edition(store, frame, alive_in, report)
    if not allow_unlisted:
        _check_listed(frame, geo_set)

    progress.note(f"validating {len(frame):,} features")
    geoms_lonlat, invalid_src = repair_geometries(frame.geometry.to_numpy())
    bng = gpd.GeoSeries(geoms_lonlat, crs=LONLAT).to_crs(BNG).to_numpy()
    # Reprojection can itself produce self-touching rings; repair those too and count them once.
    bng, invalid_bng = repair_geometries(bng)
    check_areas_survive(frame, [(geoms_lonlat, "lon/lat"), (bng, "British National Grid")])
    repaired = invalid_src | invalid_bng
    area_m2 = shapely.area(bng)
    frame = frame.set_geometry(geoms_lonlat)

    keep = resolve_duplicates(frame, on_duplicate, area_m2, report)
    report.repaired_codes = sorted(set(frame["code"].to_numpy()[repaired & keep]))
    codes = frame["code"].to_numpy()[keep]
    lonlat_kept = geoms_lonlat[keep]
    bounds = shapely.bounds(lonlat_kept)
    nations = np.array([nation_of(c) for c in codes], dtype=object)
    table = pa.table(
        {
            "set_id": pa.array([geo_set.set_id] * len(codes)),
            "code": pa.array(codes.tolist(), pa.string()),
            # names may be missing; pandas holds those as NaN, Arrow wants nulls
            "name": pa.array(frame["name"].to_numpy()[keep], pa.string(), from_pandas=True),
            "geography": pa.array([geo_set.geography] * len(codes)),
            "vintage": pa.array([geo_set.vintage] * len(codes), pa.int32()),
            "nation": pa.array(nations.tolist(), pa.string()),
            "wkb_27700": pa.array(shapely.to_wkb(bng[keep]).tolist(), pa.binary()),
            "wkb_4326": pa.array(shapely.to_wkb(lonlat_kept).tolist(), pa.binary()),
            "xmin": bounds[:, 0], "ymin": bounds[:, 1], "xmax": bounds[:, 2], "ymax": bounds[:, 3],
            "area_m2": area_m2[keep],
            "source": pa.array(frame["source"].to_numpy()[keep].tolist(), pa.string()),
        }
    )
    report.nations = sorted({n for n in nations if n})

    progress.note(f"simplifying {len(codes):,} areas for vector tiles")
    # with the set's areas already stored: neighbours are simplified together (shared edges)
    tile_rows = set_tile_geometries(store, geo_set.set_id, codes, frame["name"].to_numpy()[keep], lonlat_kept)
    progress.note(f"writing {len(codes):,} areas")
    with store.transaction():
        ingest_id = store.start_ingest("boundaries", [str(p) for p in paths])
        table = table.append_column("ingest_id", pa.array([ingest_id] * len(codes), pa.int32()))
        store.register_set(geo_set)
        store.con.register("new_areas", table)
        try:
            store.sql(
                "DELETE FROM areas WHERE set_id = ? AND code IN (SELECT code FROM new_areas)",
                [geo_set.set_id],
            )
            store.sql(_INSERT_AREAS)
        finally:
            store.con.unregister("new_areas")
        report.areas_written = len(codes)
        report.ingest_id = ingest_id
        write_tile_geometries(store, geo_set.set_id, tile_rows)
        _check_coverage(store, geo_set, report)
        if refresh_codes and geo_set.geography in ("lad", *SMALL_AREA_GEOGRAPHIES):
            progress.note("rebuilding the district code history")
            refresh_code_history(store)
        store.finish_ingest(ingest_id, report.to_dict())
    return report


def _check_coverage(store: Store, geo_set: GeographySet, report: BoundaryReport) -> None:
    """Compare the codes with geometry now in the store against the set's official list."""
    present = {
        row[0]
        for row in store.sql(
            "SELECT code FROM areas WHERE set_id = ? AND geom_27700 IS NOT NULL", [geo_set.set_id]
        ).fetchall()
    }
    expected = geo_set.expected_codes()
    if expected is not None:
        in_scope = {c for c in expected if nation_of(c) in report.nations} if report.nations else expected
        report.has_code_list = True
        report.expected_count = len(in_scope)
        report.present_count = len(present & in_scope)
        report.missing_codes = sorted(in_scope - present)
        report.unexpected_codes = sorted(
            c for c in present if c not in expected and nation_of(c) in report.nations
        )
    elif geo_set.expected_count is not None:
        report.expected_count = geo_set.expected_count
        report.present_count = len(present)
