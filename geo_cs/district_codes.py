"""The district code-history registry in the store: built from the lookups and boundaries held,
kept in ``district_code_changes``, read with the user's additions and vetoes applied.

Every SQL statement of the registry is in this module; the inference itself is the pure
:mod:`geo_cs.codehistory`. The registry is built from

* each district edition's membership: small area -> district from the lookups (LSOA 2011 ->
  district 2011 in ``lsoa01_lsoa11_ew.csv``, LSOA 2001 -> ward 2011 -> district 2011,
  LSOA 2011 -> ward 2019 -> district 2019, LSOA 2021 -> district 2022, Data Zone 2011 ->
  intermediate zone -> council 2020), or, for an edition with boundaries and no lookup (the 2013
  districts of ``lad13_gb.topojson``), by the point-on-surface of small areas with boundaries;
* consecutive editions of each nation compared on the same small areas, or on two vintages
  joined by the small-area lookup's unchanged (``U``) rows;
* the official district changes list (``lad_changes_2014_2025.csv``).

It is rebuilt whenever a lookup or boundaries are ingested (inside that ingest's transaction)
and, for a database built before, computed when first asked for. Additions and vetoes come from
``boundaries/code_changes.yaml`` (or ``GEO_CS_CODE_CHANGES``, or ``geo-cs --code-changes FILE``).

Example
-------
From the official list of district changes alone (the demo bundle's copy):

>>> from geo_cs import Store
>>> from geo_cs.config import boundaries_dir
>>> from geo_cs.district_codes import code_history
>>> from geo_cs.ingest import ingest_lookup
>>> store = Store.open(":memory:")
>>> _ = ingest_lookup(store, boundaries_dir() / "demo" / "lookups" / "lad_changes_2014_2025.csv")
>>> history = code_history(store)
>>> history.query("old_code == 'S12000046'")[["new_code", "kind", "years", "basis"]].values.tolist()
[['S12000049', 'recode', '2019', 'official']]
>>> sorted(history.query("new_code == 'E06000058'")["old_code"])   # Bournemouth, Christchurch and Poole
['E06000028', 'E06000029', 'E07000048']
>>> store.close()
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import pandas as pd

from geo_cs.codehistory import (
    COLUMNS,
    Membership,
    Overrides,
    apply_overrides,
    combine,
    equivalent_codes,
    infer_changes,
    load_overrides,
    narrow_years,
    official_changes,
    related_changes,
    years_label,
)
from geo_cs.config import boundaries_dir
from geo_cs.errors import InputError, NotFoundError
from geo_cs.geography import registry as geography_registry
from geo_cs.store import Store

#: Geographies whose areas are the small areas districts are made of.
SMALL_AREA_GEOGRAPHIES = ("lsoa", "datazone")
#: The ingest kinds whose data the registry is built from.
SOURCE_INGEST_KINDS = ("lookup", "boundaries")
_META_KEY = "code_history_built_from"

_DISTRICT_SETS = """
SELECT g.set_id, g.vintage, g.nations FROM geography_sets g
WHERE g.geography = 'lad' AND EXISTS (SELECT 1 FROM areas a WHERE a.set_id = g.set_id)
ORDER BY g.vintage, g.set_id
"""

_SMALL_SETS = """
SELECT g.set_id, count(a.area_m2) > 0 AS has_geometry FROM geography_sets g
JOIN areas a USING (set_id)
WHERE list_contains($geographies, g.geography)
GROUP BY g.set_id ORDER BY g.set_id
"""

# area_m2 is set exactly where a geometry is (and is far cheaper to scan)
_HAS_GEOMETRY = "SELECT count(*) > 0 FROM areas WHERE set_id = ? AND area_m2 IS NOT NULL"

# Small area -> district directly, or through one set that is not itself a small-area vintage
# (a ward, an intermediate zone): LSOA 2001 -> LSOA 2011 -> district 2011 would mix vintages.
_LOOKUP_MEMBERSHIP = """
SELECT code, arg_min(district, district) AS district FROM (
    SELECT from_code AS code, to_code AS district FROM lookup_links
    WHERE from_set = $small AND to_set = $district AND to_code IS NOT NULL
    UNION
    SELECT l1.from_code, l2.to_code
    FROM lookup_links l1
    JOIN lookup_links l2 ON l2.from_set = l1.to_set AND l2.from_code = l1.to_code
    JOIN geography_sets g ON g.set_id = l1.to_set
    WHERE l1.from_set = $small AND l2.to_set = $district AND l2.to_code IS NOT NULL
      AND NOT list_contains($geographies, g.geography)
)
GROUP BY code
"""

_LOOKUP_SMALL_SETS = """
SELECT DISTINCT l.from_set FROM lookup_links l
WHERE l.to_set = $district AND l.from_set IN (SELECT unnest($small_sets))
UNION
SELECT DISTINCT l1.from_set FROM lookup_links l1
JOIN lookup_links l2 ON l2.from_set = l1.to_set AND l2.from_code = l1.to_code
JOIN geography_sets g ON g.set_id = l1.to_set
WHERE l2.to_set = $district AND l1.from_set IN (SELECT unnest($small_sets))
  AND NOT list_contains($geographies, g.geography)
"""

# Only districts that the held small areas mostly cover: where a store holds some small areas
# only, a district they barely touch (two Dudley LSOAs whose point on surface falls inside South
# Staffordshire's generalised boundary) would otherwise be "made of" those two, and look merged
# into Dudley in the next edition. Half the district's area is a deliberately low bar: the two
# sets' boundaries are generalised differently.
_GEOMETRY_MEMBERSHIP = """
WITH assigned AS (
    SELECT s.code, arg_min(d.code, d.code) AS district, any_value(s.area_m2) AS m2
    FROM areas s JOIN areas d ON ST_Contains(d.geom_27700, ST_PointOnSurface(s.geom_27700))
    WHERE s.set_id = $small AND d.set_id = $district
      AND s.geom_27700 IS NOT NULL AND d.geom_27700 IS NOT NULL
    GROUP BY s.code
), covered AS (
    SELECT a.district FROM assigned a JOIN areas d ON d.set_id = $district AND d.code = a.district
    GROUP BY a.district HAVING sum(a.m2) >= 0.5 * any_value(d.area_m2)
)
SELECT a.code, a.district FROM assigned a JOIN covered c USING (district) ORDER BY a.code
"""

# What the areas of two sets are, for caching (a rolled-back ingest may reuse an ingest id)
_AREAS_STAMP = """
SELECT count(*), sum(area_m2), max(ingest_id), string_agg(DISTINCT set_id ORDER BY set_id)
FROM areas WHERE set_id IN ($small, $district)
"""

_NAMES = "SELECT code, name FROM areas WHERE set_id = ? AND name IS NOT NULL"
_CODES = "SELECT code FROM areas WHERE set_id = ?"
_SMALL_AREA_M2 = "SELECT code, area_m2 FROM areas WHERE set_id = ? AND area_m2 IS NOT NULL"

# The small-area lookup's unchanged rows, read in either direction.
_UNCHANGED = """
SELECT from_code, to_code FROM lookup_links WHERE from_set = $a AND to_set = $b AND change_ind = 'U'
UNION
SELECT to_code, from_code FROM lookup_links WHERE from_set = $b AND to_set = $a AND change_ind = 'U'
"""

_UNCHANGED_LOOKUP_ID = """
SELECT any_value(lookup_id) FROM lookup_links
WHERE change_ind = 'U' AND ((from_set = $a AND to_set = $b) OR (from_set = $b AND to_set = $a))
"""

_OFFICIAL = """
SELECT l.from_code AS old_code, l.to_code AS new_code, l.change_ind AS type, l.change_year AS year,
       any_value(i.sources[1]) AS source
FROM lookup_links l LEFT JOIN ingests i USING (ingest_id)
WHERE l.from_set = 'lad' AND l.to_set = 'lad'
GROUP BY ALL
"""

_DISTRICT_NAMES = """
SELECT code, arg_max(name, vintage) AS name FROM areas
WHERE geography = 'lad' AND name IS NOT NULL GROUP BY code
"""

_BUILT_FROM = """
SELECT coalesce(max(ingest_id), 0) FROM ingests WHERE list_contains($kinds, kind)
"""

_TABLE_EXISTS = """
SELECT count(*) FROM information_schema.tables WHERE table_name = 'district_code_changes'
"""

_READ = f"SELECT {', '.join(COLUMNS)} FROM district_code_changes"

_WRITE = f"INSERT INTO district_code_changes SELECT {', '.join(COLUMNS)}, ? FROM geo_cs_code_changes"


@dataclass
class CodeHistoryReport:
    """What the registry was built from and what it holds."""

    comparisons: list[str] = field(default_factory=list)
    official_rows: int = 0
    changes: int = 0
    by_basis: dict[str, int] = field(default_factory=dict)

    def lines(self) -> list[str]:
        out = [f"district code history: {self.changes:,} changes ("
               + ", ".join(f"{k} {v:,}" for k, v in sorted(self.by_basis.items())) + ")"]
        out += [f"  compared {c}" for c in self.comparisons]
        if self.official_rows:
            out.append(f"  official changes list: {self.official_rows:,} district rows")
        return out


def current_overrides() -> Overrides:
    """The user's additions and vetoes from :func:`overrides_path`, re-read when the file changes."""
    path = overrides_path()
    try:
        stat = path.stat()
        stamp: tuple = (stat.st_mtime_ns, stat.st_size)
    except OSError:
        if os.environ.get("GEO_CS_CODE_CHANGES"):
            raise NotFoundError(
                f"GEO_CS_CODE_CHANGES (or --code-changes) names {path}, which does not exist"
            ) from None
        stamp = ()
    return _overrides(str(path), stamp)


@lru_cache(maxsize=8)
def _overrides(path: str, stamp: tuple) -> Overrides:
    return load_overrides(Path(path))


def overrides_path() -> Path:
    """The YAML of user additions and vetoes: ``GEO_CS_CODE_CHANGES`` if set, else
    ``boundaries/code_changes.yaml``."""
    configured = os.environ.get("GEO_CS_CODE_CHANGES")
    return Path(configured) if configured else boundaries_dir() / "code_changes.yaml"


# -- building -----------------------------------------------------------------------------------

class _Memberships:
    """Each district edition's membership on each small-area set, found when first needed."""

    def __init__(self, store: Store) -> None:
        self.store = store
        smalls = store.sql(_SMALL_SETS, {"geographies": list(SMALL_AREA_GEOGRAPHIES)}).fetchall()
        self.small_sets = [s for s, _ in smalls]
        self.small_geometry = {s: bool(g) for s, g in smalls}
        self._cache: dict[tuple[str, str], Membership | None] = {}
        self._vintage: dict[str, int] = {}

    def available(self, district_set: str, vintage: int) -> dict[str, str]:
        """Small sets ``district_set`` has a membership on, and how (lookup preferred)."""
        self._vintage[district_set] = vintage
        found = {r[0]: "lookup" for r in self.store.sql(_LOOKUP_SMALL_SETS, {
            "district": district_set, "small_sets": self.small_sets,
            "geographies": list(SMALL_AREA_GEOGRAPHIES)}).fetchall()}
        if not found and self.store.sql(_HAS_GEOMETRY, [district_set]).fetchone()[0]:
            found = {s: "point-on-surface" for s in self.small_sets if self.small_geometry[s]}
        return found

    def get(self, district_set: str, small_set: str, how: str) -> Membership | None:
        key = (district_set, small_set)
        if key not in self._cache:
            params = {"small": small_set, "district": district_set}
            if how == "lookup":
                params["geographies"] = list(SMALL_AREA_GEOGRAPHIES)
                members = self.store.sql(_LOOKUP_MEMBERSHIP, params).df()
            else:
                members = self._by_geometry(params)
            if members.empty:
                self._cache[key] = None
            else:
                names = dict(self.store.sql(_NAMES, [district_set]).fetchall())
                members["name"] = members["district"].map(names)
                self._cache[key] = Membership(district_set, self._vintage[district_set],
                                              small_set, how, members)
        return self._cache[key]

    def _by_geometry(self, params: dict[str, str]) -> pd.DataFrame:
        # the point-on-surface join is the slow part (1-2 s for every LSOA 2011 in the 2013
        # districts) and its areas rarely change between the ingests that rebuild the
        # registry: keep it on the store, keyed by what the two sets' areas are
        stamp = tuple(self.store.sql(_AREAS_STAMP, params).fetchone())
        key = ("district_codes.geometry", params["small"], params["district"], stamp)
        if key not in self.store.cache:
            self.store.cache[key] = self.store.sql(_GEOMETRY_MEMBERSHIP, params).df()
        return self.store.cache[key].copy()


def _comparison(store: Store, old: dict[str, str], new: dict[str, str]) -> tuple[str, str] | None:
    """Small sets to compare two editions on: a common one (lookups first), else two vintages
    joined by unchanged links."""
    common = sorted(set(old) & set(new), key=lambda s: (old[s] != "lookup") + (new[s] != "lookup"))
    if common:
        return common[0], common[0]
    for a in sorted(old):
        for b in sorted(new):
            if store.sql(_UNCHANGED_LOOKUP_ID, {"a": a, "b": b}).fetchone()[0] is not None:
                return a, b
    return None


def infer_from_store(store: Store) -> tuple[pd.DataFrame, CodeHistoryReport]:
    """The registry as the store's lookups and boundaries show it (without user overrides)."""
    report = CodeHistoryReport()
    memberships = _Memberships(store)
    reg = geography_registry()
    editions = [(s, v, tuple(n)) for s, v, n in store.sql(_DISTRICT_SETS).fetchall()
                if s not in reg.sets or reg.sets[s].one_edition]
    available = {s: memberships.available(s, v) for s, v, _ in editions}
    pairs: list[tuple[str, str, tuple[str, str]]] = []
    for i, (new_set, new_vintage, nations) in enumerate(editions):
        for nation in nations:
            # the latest earlier edition of this nation that can be compared with this one
            for old_set, old_vintage, old_nations in reversed(editions[:i]):
                if old_vintage >= new_vintage or nation not in old_nations:
                    continue
                on = _comparison(store, available[old_set], available[new_set])
                if on is not None:
                    if (old_set, new_set, on) not in pairs:
                        pairs.append((old_set, new_set, on))
                    break
    inferred = []
    for old_set, new_set, (old_small, new_small) in pairs:
        old = memberships.get(old_set, old_small, available[old_set][old_small])
        new = memberships.get(new_set, new_small, available[new_set][new_small])
        if old is None or new is None:
            continue
        unchanged, through = None, None
        if old_small != new_small:
            unchanged = store.sql(_UNCHANGED, {"a": old_small, "b": new_small}).df()
            through = store.sql(_UNCHANGED_LOOKUP_ID, {"a": old_small, "b": new_small}).fetchone()[0]
        m2 = dict(store.sql(_SMALL_AREA_M2, [new_small]).fetchall())
        new_codes = {r[0] for r in store.sql(_CODES, [new_set]).fetchall()}
        inferred.append(infer_changes(old, new, unchanged, small_area_m2=pd.Series(m2, dtype=float),
                                      new_codes=new_codes, through=through))
        report.comparisons.append(f"{old.label} with {new.label}"
                                  + (f" through the unchanged rows of {through}" if through else ""))
    rows = store.sql(_OFFICIAL).df()
    report.official_rows = len(rows)
    official = None
    if not rows.empty:
        sources = rows["source"].dropna()
        source = Path(str(sources.iloc[0])).name if len(sources) else "district changes lookup"
        official = official_changes(rows, source)
        report.official_rows = len(official)
    codes_by_edition = {s: (v, frozenset(r[0] for r in store.sql(_CODES, [s]).fetchall()))
                        for s, v, _ in editions}
    registry = combine([narrow_years(f, codes_by_edition) for f in inferred], official)
    names = dict(store.sql(_DISTRICT_NAMES).fetchall())
    registry["old_name"] = registry["old_name"].fillna(registry["old_code"].map(names))
    registry["new_name"] = registry["new_name"].fillna(registry["new_code"].map(names))
    report.changes = len(registry)
    report.by_basis = registry["basis"].value_counts().to_dict()
    return registry, report


def _built_from(store: Store) -> str:
    return str(store.sql(_BUILT_FROM, {"kinds": list(SOURCE_INGEST_KINDS)}).fetchone()[0])


def refresh_code_history(store: Store) -> CodeHistoryReport:
    """Rebuild the stored registry from the store's data (call inside the ingest's transaction,
    after its rows are written: a failed ingest then leaves the old registry in place)."""
    registry, report = infer_from_store(store)
    store.con.register("geo_cs_code_changes", registry[COLUMNS])
    try:
        store.sql("DELETE FROM district_code_changes")
        store.sql(_WRITE, [_built_from(store)])
    finally:
        store.con.unregister("geo_cs_code_changes")
    store.sql("INSERT OR REPLACE INTO meta VALUES (?, ?)", [_META_KEY, _built_from(store)])
    return report


def stored_registry(store: Store) -> pd.DataFrame | None:
    """The registry as stored, if it was built from the store's current lookups and boundaries."""
    if not store.sql(_TABLE_EXISTS).fetchone()[0]:
        return None
    row = store.sql("SELECT value FROM meta WHERE key = ?", [_META_KEY]).fetchone()
    if row is None or row[0] != _built_from(store):
        return None
    from geo_cs.codehistory import _typed

    return _typed(store.sql(_READ).df())


# -- reading ------------------------------------------------------------------------------------

def code_history(store: Store, overrides: Overrides | None = None) -> pd.DataFrame:
    """The registry with the user's additions and vetoes, and a ``years`` label column.

    Read from the store when it is current, otherwise inferred now (a database built before
    the registry existed, or opened read-only after a change); cached per data version."""
    overrides = overrides if overrides is not None else current_overrides()
    key = ("code_history", store.data_version(), overrides.source, overrides.fingerprint)
    if key not in store.cache:
        registry = stored_registry(store)
        if registry is None:
            registry, _ = infer_from_store(store)
        registry = apply_overrides(registry, overrides)
        registry["years"] = [years_label(a, b) for a, b in
                             zip(registry["year_from"], registry["year_to"], strict=True)]
        store.cache[key] = registry
    return store.cache[key]


def district_history(store: Store, districts: list[str] | None = None) -> pd.DataFrame:
    """The registry (:func:`code_history`), or the changes linked to ``districts`` (followed
    both ways through the chain), in time order."""
    registry = code_history(store)
    if districts:
        registry = related_changes(registry, districts)
    return registry.sort_values(["year_to", "old_code", "new_code"]).reset_index(drop=True)


def codes_in_edition(
    store: Store, codes: list[str], from_year: int, to_year: int
) -> dict[str, list[str]]:
    """Each district code of ``from_year`` as the code(s) of ``to_year`` (see
    :func:`geo_cs.codehistory.equivalent_codes`), through the registry of this store."""
    return equivalent_codes(code_history(store), codes, from_year, to_year)


@dataclass(frozen=True)
class DistrictEdition:
    """The district edition a file's codes belong to, and how that was decided."""

    year: int
    why: str
    earliest: int | None = None   # the first edition every code is in (from the code history)
    latest: int | None = None     # the last one


def district_edition(store: Store, codes: list[str], stated: int | None = None,
                     data_year: int | None = None) -> DistrictEdition:
    """Which edition of the districts ``codes`` are: ``stated`` when the file says (the Nomis
    API's "as of April 2021"), checked against the code history; otherwise the first edition
    in which every code is in use by the history (a file from Nomis uses the codes current when
    it was downloaded, not those of its data year: the APS 2019 file has Buckinghamshire
    E06000060, formed in 2020), else ``data_year``.

    A code is in use from the ``year_to`` of the change that made it until the year before the
    change that replaced it. Raises :class:`InputError` when the codes cannot all be of one
    edition (a file mixing editions), or when ``stated`` contradicts them.
    """
    history = code_history(store)
    usable = history[history["kind"].isin(("recode", "merger")) & ~history["vetoed"].astype(bool)]
    wanted = set(codes)
    made = usable[usable["new_code"].isin(wanted)]
    ended = usable[usable["old_code"].isin(wanted)]
    earliest = int(made["year_to"].max()) if len(made) else None
    latest = int(ended["year_to"].min()) - 1 if len(ended) else None
    newest = made.loc[made["year_to"].idxmax()] if len(made) else None
    oldest = ended.loc[ended["year_to"].idxmin()] if len(ended) else None
    if earliest is not None and latest is not None and earliest > latest:
        raise InputError(
            f"the district codes are of more than one edition: "
            f"{_named(newest['new_code'], newest['new_name'])} is in use from {earliest}, "
            f"{_named(oldest['old_code'], oldest['old_name'])} only until {latest}")
    if stated is not None:
        if (earliest is not None and stated < earliest) or (latest is not None and stated > latest):
            raise InputError(
                f"the file says its districts are of {stated}, but by the district code history "
                f"its codes are in use together only {_span(earliest, latest)}")
        return DistrictEdition(stated, "as the file says", earliest, latest)
    if earliest is not None:
        return DistrictEdition(
            earliest, f"{_named(newest['new_code'], newest['new_name'])} is in use from "
            f"{earliest} (district code history)", earliest, latest)
    if data_year is not None:
        if latest is not None and data_year > latest:
            data_year = latest
        why = ("the data's year" if len(history) else
               "the data's year; no district code history in the store to check it: ingest the "
               "district changes lookup, e.g. lad_changes_2014_2025.csv")
        return DistrictEdition(data_year, why, earliest, latest)
    raise InputError("cannot tell which edition of the districts the codes are; give --set")


def _span(earliest: int | None, latest: int | None) -> str:
    if earliest is not None and latest is not None:
        return f"from {earliest} to {latest}"
    return f"from {earliest}" if earliest is not None else f"until {latest}"


def _named(code: str, name: object) -> str:
    return f"{code} {name}" if isinstance(name, str) and name else str(code)
