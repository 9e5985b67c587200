"""Features of the store as OGC API - Features serves them: collections, pages of items, CRSs.

A *collection* is one boundary set with geometry (``lsoa2011``, ``datazone2011``…), one
measure mapped on one set (``lsoa2011_employment_rate``: one per thing a user would map, each
described — source, definition, periods, coverage by nation, boundaries, licence — by
:func:`list_collections`), or the analysis layer ``partnerships`` (one outline per partnership).
Items are GeoJSON features whose properties are the area's code, name and geography and, when a
measure and period are chosen, its value, interval, worst-performing flag and estimated share
(:mod:`geo_cs.layers`).

A *survey* measure (the Annual Population Survey's employment rate on the district collections
``lad2020``/``lad2021``) is served as published: ``value`` the rate, ``value_low``/``value_high``
its published 95% interval, ``count`` the numerator, ``denominator``, and two more properties,
``half_width`` (points) and ``reliability`` (``unreliable``: a sample of 3 to 9, no interval;
``missing``; ``withheld``; null for an estimate published without a marker). A figure that is
not there is null, never 0 (:data:`SURVEY_PROPERTIES`, :func:`item_queryables`).

Coordinates are served in OGC CRS84 (lon/lat, the default), EPSG:4326 (lat/lon axis order, as
OGC API - Features Part 2 requires) or EPSG:27700 (British National Grid, the storage CRS). The
SQL below has one fixed shape per CRS; nothing from a request is ever spliced into it.

Example
-------
>>> q = ItemQuery("lsoa2011", limit=10)
>>> q.crs == CRS84
True
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import date, datetime

import pandas as pd
import pyproj

from geo_cs import filters
from geo_cs.attribution import OGL_ATTRIBUTION
from geo_cs.errors import InputError, NotFoundError
from geo_cs.spreadsheet import neutralise
from geo_cs.store import Store
from geo_cs.tiles import VALUE_DIGITS

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG4326 = "http://www.opengis.net/def/crs/EPSG/0/4326"
EPSG27700 = "http://www.opengis.net/def/crs/EPSG/0/27700"
SUPPORTED_CRS = (CRS84, EPSG4326, EPSG27700)
STORAGE_CRS = EPSG27700
#: Items per page when a client does not say: QGIS pages at the API's advertised default, so
#: 1,000 (not 10 or 100) lets a GIS officer pull every LSOA in tens of requests, not hundreds.
DEFAULT_LIMIT = 1_000
MAX_LIMIT = 10_000
PARTNERSHIPS = "partnerships"

#: Geometry expression per output CRS. Coordinates go out as stored (shortest round-trip
#: decimals): rounding them in SQL (ST_ReducePrecision) costs ten times the GeoJSON writing.
# Every area is sent as a MultiPolygon (ST_Multi): a client that types a layer from its first
# features (GDAL, QGIS) must not call it Polygon and then meet MultiPolygons further on.
_GEOMETRY = {
    CRS84: "ST_Multi(geom_4326)",
    EPSG4326: "ST_Multi(ST_FlipCoordinates(geom_4326))",
    EPSG27700: "ST_Multi(geom_27700)",
}
#: The geometry type of every collection's features (the collections say so).
GEOMETRY_TYPE = "MultiPolygon"

BASE_PROPERTIES = ("code", "name", "nation", "geography", "vintage", "area_km2")
VALUE_PROPERTIES = ("indicator", "period", "value", "value_low", "value_high", "count",
                    "denominator", "worst", "estimated_share", "suppressed")
#: The properties a survey measure's items carry besides :data:`VALUE_PROPERTIES`.
SURVEY_PROPERTIES = ("half_width", "reliability")
#: … and as queryables (filter, sortby): the SQL reads the period's values (``v.``), rounded as
#: the features show them.
SURVEY_QUERYABLES = (
    filters.Queryable("half_width", "number",
                      "(CASE WHEN isfinite(v.half_width) THEN round(v.half_width, 4) END)",
                      "Half-width of the published 95% interval (points)",
                      "null where the survey publishes none (an unreliable or missing estimate)"),
    filters.Queryable("reliability", "string", "v.reliability::VARCHAR",
                      "Reliability of the survey estimate",
                      "unreliable (a sample of 3 to 9: no interval), missing or withheld, as the "
                      "publisher marks it; null for an estimate published without a marker"),
)


def item_queryables(with_values: bool, survey: bool = False) -> dict[str, filters.Queryable]:
    """The queryables of a collection's items (:func:`geo_cs.filters.queryables`), with a survey
    measure's own (:data:`SURVEY_QUERYABLES`) before the geometry.

    >>> list(item_queryables(True, survey=True))[-3:]
    ['half_width', 'reliability', 'geometry']
    """
    qs = filters.queryables(with_values)
    if not (with_values and survey):
        return qs
    geometry = qs.pop(filters.GEOMETRY.name)
    return {**qs, **{q.name: q for q in SURVEY_QUERYABLES}, geometry.name: geometry}


#: Other ways clients write the supported CRSs (upper-cased): short codes, OGC URNs, https.
CRS_ALIASES = {
    "CRS84": CRS84, "OGC:CRS84": CRS84, "URN:OGC:DEF:CRS:OGC:1.3:CRS84": CRS84,
    "URN:OGC:DEF:CRS:OGC::CRS84": CRS84,
    "EPSG:4326": EPSG4326, "URN:OGC:DEF:CRS:EPSG::4326": EPSG4326,
    "EPSG:27700": EPSG27700, "URN:OGC:DEF:CRS:EPSG::27700": EPSG27700,
    **{uri.upper(): uri for uri in SUPPORTED_CRS},
    **{uri.replace("http://", "https://").upper(): uri for uri in SUPPORTED_CRS},
}


def crs_from_param(value: str | None, parameter: str) -> str:
    """A supported CRS URI (CRS84 when None): the URIs themselves, the short forms EPSG:27700
    and CRS84, and the OGC URNs (``urn:ogc:def:crs:EPSG::27700``) are accepted.

    >>> crs_from_param("urn:ogc:def:crs:EPSG::27700", "crs") == EPSG27700
    True
    """
    if value is None or value == "":
        return CRS84
    uri = CRS_ALIASES.get(value.strip().upper())
    if uri is None:
        raise InputError(f"{parameter}={value!r}: expected one of {', '.join(SUPPORTED_CRS)} "
                         "(or EPSG:27700, EPSG:4326, CRS84, urn:ogc:def:crs:EPSG::27700)")
    return uri


def bbox_to_lonlat(bbox: tuple[float, ...], bbox_crs: str) -> tuple[float, float, float, float]:
    """A bbox in ``bbox_crs`` as (west, south, east, north) in lon/lat."""
    if len(bbox) != 4:
        raise InputError(f"bbox: expected 4 numbers (minx,miny,maxx,maxy), got {len(bbox)}")
    if not all(math.isfinite(v) for v in bbox):
        raise InputError("bbox: every value must be a finite number")
    a, b, c, d = bbox
    if bbox_crs == EPSG4326:          # lat/lon axis order
        a, b, c, d = b, a, d, c
    # one rule for every CRS, on the numbers as given (a transformed box is always "ordered")
    if a > c or b > d:
        raise InputError(f"bbox={','.join(map(str, bbox))}: min must not exceed max")
    if bbox_crs == EPSG27700:
        to_lonlat = pyproj.Transformer.from_crs("EPSG:27700", "OGC:CRS84", always_xy=True)
        a, b, c, d = to_lonlat.transform_bounds(a, b, c, d, densify_pts=21)
    elif not (-180 <= a <= 180 and -180 <= c <= 180 and -90 <= b <= 90 and -90 <= d <= 90):
        raise InputError(f"bbox={','.join(map(str, bbox))}: lon/lat out of range for {bbox_crs}")
    if a > c or b > d:
        raise InputError(f"bbox={','.join(map(str, bbox))}: min must not exceed max")
    return a, b, c, d


# -- datetime (OGC API - Features Part 1) ---------------------------------------------------------

def _datetime_bound(text: str, parameter: str) -> date | None:
    text = text.strip()
    if text in ("", ".."):
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).date()
    except ValueError:
        raise InputError(f"{parameter}={text!r}: expected an RFC 3339 date or date-time (2016-06-01, "
                         "2016-06-01T00:00:00Z) or an interval of them (2014-01-01/..)") from None


_PERIOD_DATES_SQL = """
SELECT period_id, label, start_date, end_date FROM periods
WHERE list_contains($ids, period_id) ORDER BY start_date
"""


def period_for_datetime(store: Store, period_ids: list[str], text: str,
                        parameter: str = "datetime") -> str:
    """The one period of ``period_ids`` whose dates meet ``text`` (an instant or an interval,
    ``..`` for an open end): the items of a measure are per period, so a ``datetime`` that meets
    none or several of them is refused, naming them with their dates."""
    if "/" in text:
        first, _, last = text.partition("/")
        start, end = _datetime_bound(first, parameter), _datetime_bound(last, parameter)
    else:
        start = end = _datetime_bound(text, parameter)
        if start is None:
            raise InputError(f"{parameter}=..: an open end needs an interval, e.g. 2014-01-01/..")
    rows = store.sql(_PERIOD_DATES_SQL, {"ids": list(period_ids)}).fetchall()
    hits = [r for r in rows if (end is None or r[2] <= end) and (start is None or r[3] >= start)]
    listing = "; ".join(f"{pid} ({label}: {s} to {e})" for pid, label, s, e in rows)
    if not hits:
        raise NotFoundError(f"{parameter}={text!r} meets no period of this measure; it has {listing}")
    if len(hits) > 1:
        raise InputError(f"{parameter}={text!r} meets {len(hits)} periods ({', '.join(h[0] for h in hits)}); "
                         "items come one period at a time: give an instant or a narrower interval, "
                         "or period=")
    return hits[0][0]


# -- collections -------------------------------------------------------------------------------

#: The licence of every shipped source and boundary set, and where its terms are.
OGL_NAME = "Open Government Licence v3.0"
OGL_URL = "https://www.nationalarchives.gov.uk/doc/open-government-licence/version/3/"
#: Time in extent.temporal is the Gregorian calendar (OGC API - Features, Part 1, 7.14.3).
GREGORIAN = "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian"
#: Longest collection title: QGIS's and GDAL's lists of layers show titles whole.
TITLE_CHARS = 80


@dataclass(frozen=True)
class CollectionPeriod:
    """One period of a measure collection (its ``extent.temporal``): id, words, first and last day."""

    id: str
    label: str
    start: date
    end: date


@dataclass(frozen=True)
class Collection:
    """One collection of the features API, with what its document says of it: a boundary set
    (``geography``), one measure mapped on one set (``measure``) or the partnerships' outlines
    (``analysis``)."""

    id: str
    title: str
    description: str
    bbox: tuple[float, float, float, float]
    count: int
    kind: str                       # "geography", "measure" (one indicator on one set) or "analysis"
    set_id: str | None = None       # a measure collection's boundary set
    indicator: str | None = None    # … its measure
    denominator: str | None = None  # … and the denominator that makes it a rate, if any
    #: A measure's periods, in time order (extent.temporal; one per items request).
    periods: tuple[CollectionPeriod, ...] = ()
    #: Ids this collection was listed under before (issue 30: one id pattern per measure, a
    #: published rate folded into the rate computed from its counts): answered by a redirect.
    former_ids: tuple[str, ...] = ()
    #: Whether every source and the boundaries are under the Open Government Licence v3.0.
    ogl: bool = True
    #: Whether items carry a worst-performing flag (``worst``: a rate with a baseline).
    cohort: bool = False

    @property
    def geography(self) -> str:
        """The boundary set whose areas are this collection's items."""
        return self.set_id or self.id


def former_collection_id(set_id: str, measure: str, denominator: str | None) -> str:
    """The id a measure collection had up to issue 30: ``lsoa2011_employment_deprived`` (the
    count, or its rate over its own denominators) or ``…_rate`` (over a separate denominator)."""
    return f"{set_id}_{measure}" + ("_rate" if denominator else "")


#: The name of the rate a count measure makes over its population: the publishers' own name
#: (SIMD's and IMD's ``employment_rate``, DWP's ``claimant_rate``), so that one measure has one
#: id on every vintage (``lsoa2011_employment_rate``, ``lsoa2021_employment_rate``). A count
#: not listed here makes ``{measure}_rate``.
RATE_NAMES = {
    "employment_deprived": "employment_rate",
    "income_deprived": "income_rate",
    "claimants": "claimant_rate",
    "claimants_monthly": "claimant_rate_monthly",
}


def rate_name(measure: str) -> str:
    """The id part of the rate a count ``measure`` makes.

    >>> rate_name("employment_deprived"), rate_name("jsa_claimants")
    ('employment_rate', 'jsa_claimants_rate')
    """
    return RATE_NAMES.get(measure, f"{measure}_rate")


def former_ids(collections: Mapping[str, Collection] | list[Collection]) -> dict[str, str]:
    """Old collection id → its collection's id now, for ids no current collection has."""
    listed = list(collections.values()) if isinstance(collections, Mapping) else list(collections)
    current = {c.id for c in listed}
    return {old: c.id for c in listed for old in c.former_ids if old not in current}


#: Short names of the kinds of area, for titles ("LSOA 2011: …").
GEOGRAPHY_SHORT = {
    "lsoa": "LSOA", "datazone": "Data Zones", "intermediate_zone": "Intermediate Zones",
    "lad": "Districts", "county": "Counties", "ward": "Wards", "wpc": "Constituencies",
    "region": "Regions", "country": "Countries",
}


def short_title(geography_short: str, label: str, limit: int = TITLE_CHARS) -> str:
    """``geography_short: label`` within ``limit`` characters: bracketed asides dropped first,
    then words.

    >>> short_title("Constituencies 2010", "Claimants, SYNTHETIC monthly (interpolated between "
    ...             "DWP quarters), % of working-age people")
    'Constituencies 2010: Claimants, SYNTHETIC monthly, % of working-age people'
    """
    title = f"{geography_short}: {label}"
    if len(title) > limit:
        title = re.sub(r"\s*\([^()]*\)", "", title)
    if len(title) > limit:
        title = title[:limit - 1].rsplit(" ", 1)[0].rstrip(",;:-— ") + "…"
    return title


@dataclass
class _SetFacts:
    """What the listing says of one boundary set (read once per set, not per measure)."""

    set_id: str
    label: str
    short: str
    bbox: tuple[float, float, float, float]
    count: int
    expected: int | None
    by_nation: dict[str, int]                # areas with boundaries per nation
    boundaries: str                          # the boundaries sentence (generalisation)
    #: per indicator, per (period, nation): the areas with a value, and with a denominator too
    coverage: dict[str, dict[tuple[str, str], tuple[int, int]]] = field(default_factory=dict)
    #: indicator → (source, title, publisher, licence, label)
    sources: dict[str, tuple] = field(default_factory=dict)


_SETS_SQL = """
SELECT a.set_id, any_value(s.label), any_value(s.geography), any_value(s.vintage),
       any_value(s.expected_count), count(*), min(a.xmin), min(a.ymin), max(a.xmax), max(a.ymax)
FROM areas a JOIN geography_sets s USING (set_id)
WHERE a.xmin IS NOT NULL
GROUP BY a.set_id ORDER BY a.set_id
"""

_NATIONS_SQL = """
SELECT set_id, coalesce(nation, ''), count(*) FROM areas WHERE xmin IS NOT NULL GROUP BY ALL
"""

_COVERAGE_SQL = """
SELECT o.indicator_id, o.period_id, coalesce(a.nation, '') AS nation,
       count(*) FILTER (WHERE o.value IS NOT NULL) AS with_value,
       count(*) FILTER (WHERE o.value IS NOT NULL AND o.denominator IS NOT NULL) AS with_den
FROM observations o JOIN areas a ON a.set_id = o.set_id AND a.code = o.code AND a.xmin IS NOT NULL
WHERE o.set_id = $set_id
GROUP BY ALL
"""

# the areas with a count and, in some period, a value of a separate denominator
_COVERAGE_OVER_SQL = """
SELECT o.period_id, coalesce(a.nation, '') AS nation, count(*) AS with_value
FROM observations o JOIN areas a ON a.set_id = o.set_id AND a.code = o.code AND a.xmin IS NOT NULL
WHERE o.set_id = $set_id AND list_contains($indicators, o.indicator_id) AND o.value IS NOT NULL
  AND o.code IN (SELECT code FROM observations
                 WHERE set_id = $set_id AND indicator_id = $denominator AND value IS NOT NULL)
GROUP BY ALL
"""

_INDICATOR_SOURCES_SQL = """
SELECT indicator_id, source_id, coalesce(source_title, source_id), coalesce(publisher, ''),
       coalesce(licence, ''), label
FROM indicators WHERE set_id = $set_id
"""


def list_collections(store: Store) -> list[Collection]:
    """Every boundary set with geometry, one map collection per measure a user would map on
    it, then the partnerships layer when districts have outlines. Each says what it is, where
    it comes from and how its value is made (:func:`measure_description`), its periods and its
    licence; ids follow one pattern (``{set}_{measure}``, a count's rate ``{set}_{rate name}``,
    :func:`rate_name`) and the ids of before are kept as :attr:`Collection.former_ids`."""
    from geo_cs.analysis import default_baseline
    from geo_cs.layers import available_measures, measures_of, view_choices

    periods = {r[0]: (CollectionPeriod(r[0], r[1], r[2], r[3]), r[4]) for r in store.sql(
        "SELECT period_id, label, start_date, end_date, kind FROM periods").fetchall()}
    nations: dict[str, dict[str, int]] = {}
    for set_id, nation, n in store.sql(_NATIONS_SQL).fetchall():
        nations.setdefault(set_id, {})[nation] = n
    facts = {r[0]: _set_facts(store, r, nations.get(r[0], {})) for r in store.sql(_SETS_SQL).fetchall()}
    out = [Collection(f.set_id, f.label, geography_description(f), f.bbox, f.count, "geography",
                      ogl=True) for f in facts.values()]
    choices = view_choices(store, list(facts), one_per_figure=False)
    folded = [c for c in choices if c.same_as is not None]
    kept = [c for c in choices if c.same_as is None]
    # ids: plain measures first, so that a count's rate never takes a measure's own id
    plain_ids = {(c.geography, c.indicator): f"{c.geography}_{c.indicator}" for c in kept if not c.gap}
    taken = set(plain_ids.values()) | set(facts)
    ids: dict[tuple, str] = {}
    for c in kept:
        if not c.gap:
            ids[(c.geography, c.indicator, c.denominator)] = plain_ids[(c.geography, c.indicator)]
            continue
        # a count's rate: the name of the published rate it stands for, else the publishers'
        twins = [f.indicator for f in folded if f.geography == c.geography
                 and f.same_as == (c.indicator, c.denominator)]
        wanted = f"{c.geography}_{twins[0] if twins else rate_name(c.indicator)}"
        ids[(c.geography, c.indicator, c.denominator)] = (
            wanted if wanted not in taken else former_collection_id(c.geography, c.indicator, c.denominator))
        taken.add(ids[(c.geography, c.indicator, c.denominator)])
    known: dict[str, pd.DataFrame] = {}
    measures: dict[str, dict] = {}
    by_indicator: dict[tuple, list] = {}   # the choices of each measure, for neighbours
    for c in kept:
        by_indicator.setdefault((c.geography, c.indicator), []).append(c)
        by_indicator.setdefault((c.geography, "rate of", rate_name(c.indicator)), []).append(c)
    for c in kept:
        f = facts[c.geography]
        if c.geography not in known:
            known[c.geography] = available_measures(store, c.geography)
            for indicator, period, nation, with_value, with_den in store.sql(
                    _COVERAGE_SQL, {"set_id": c.geography}).fetchall():
                f.coverage.setdefault(indicator, {})[(period, nation)] = (with_value, with_den)
            measures[c.geography] = measures_of(known[c.geography], c.geography)
            f.sources = {r[0]: r[1:] for r in store.sql(_INDICATOR_SOURCES_SQL,
                                                        {"set_id": c.geography}).fetchall()}
        measure = measures[c.geography][c.indicator]
        cid = ids[(c.geography, c.indicator, c.denominator)]
        twins = [x for x in folded
                 if x.geography == c.geography and x.same_as == (c.indicator, c.denominator)]
        old = {former_collection_id(c.geography, c.indicator, c.denominator),
               *(former_collection_id(x.geography, x.indicator, None) for x in twins)} - {cid}
        coverage = _measure_coverage(store, f, measure.indicators, c)
        own = sorted({p for p, _ in coverage}, key=lambda p: periods[p][0].start)
        kinds = {periods[p][1] for p in own}
        cohort = measure.kind == "rate" or (measure.kind == "count" and c.gap)
        baseline = default_baseline(own, next(iter(kinds)) if len(kinds) == 1 else None) if cohort else ()
        neighbours = _neighbours(c, ids, by_indicator)
        description = measure_description(
            f, c, measure, [periods[p][0] for p in own], coverage,
            [periods[p][0] for p in baseline], twins, neighbours, _derived(store, c), cid)
        sources = [f.sources[i] for i in measure.indicators if i in f.sources]
        if c.denominator and c.denominator in f.sources:
            sources.append(f.sources[c.denominator])
        out.append(Collection(
            cid, short_title(f.short, c.label), description, f.bbox, f.count, "measure", c.geography,
            c.indicator, c.denominator, tuple(periods[p][0] for p in own), tuple(sorted(old)),
            ogl=all(_is_ogl(s[3]) for s in sources), cohort=cohort))
    outline_set = partnership_outline_set(store)
    if outline_set is not None:
        from geo_cs.partnerships import load_partnerships

        geo = facts[outline_set]
        n = len(load_partnerships())
        out.append(Collection(
            PARTNERSHIPS, "Employment partnerships", partnerships_description(geo, n),
            geo.bbox, n, "analysis"))
    return out


def _is_ogl(licence: str) -> bool:
    return "open government licence" in licence.lower() and ("3" in licence or "v3" in licence.lower())


def _set_facts(store: Store, row: tuple, by_nation: dict[str, int]) -> _SetFacts:
    set_id, label, geography, vintage, expected, n, w, s, e, n_ = row
    short = f"{GEOGRAPHY_SHORT[geography]} {vintage}" if geography in GEOGRAPHY_SHORT else label
    return _SetFacts(set_id, label, short, (w, s, e, n_), n, expected, by_nation,
                     boundaries_sentence(store, set_id))


# -- where boundaries come from: the generalisation the files' names say ------------------------

#: ONS's names of the generalisations of a boundary file (the code in its file name).
GENERALISATIONS = {
    "bfc": "full resolution, clipped to the coastline (BFC)",
    "bfe": "full resolution, to the extent of the realm (BFE)",
    "bgc": "generalised to 20 m, clipped to the coastline (BGC)",
    "bge": "generalised to 20 m, to the extent of the realm (BGE)",
    "bsc": "super generalised to 200 m, clipped to the coastline (BSC)",
    "buc": "ultra generalised to 500 m, clipped to the coastline (BUC)",
}
_GENERALISATION_CODE = re.compile(r"(?<![a-z])(" + "|".join(GENERALISATIONS) + r")(?![a-z])", re.I)


def boundaries_sentence(store: Store, set_id: str) -> str:
    """How generalised ``set_id``'s boundaries are, as far as their files say: ONS marks its
    files BFC/BGC/BSC/BUC in their names; a bundle's ``PROVENANCE.tsv`` names the file each
    was cut from. Only file names are said, never the server's paths."""
    from pathlib import Path

    sources = [r[0] for r in store.sql(
        "SELECT DISTINCT source FROM areas WHERE set_id = ? AND xmin IS NOT NULL ORDER BY 1",
        [set_id]).fetchall()]
    names: list[str] = []
    tables: dict = {}
    for source in sources:
        path = Path(source)
        names.append(path.parent.name + "/" + path.name if path.parent.name else path.name)
        names += _provenance_names(path, tables)
    codes = sorted({m.group(1).lower() for name in names for m in _GENERALISATION_CODE.finditer(name)})
    shown = ", ".join(sorted({Path(s).name for s in sources})[:3]) + (", …" if len(sources) > 3 else "")
    if len(codes) == 1:
        said_by = next(part for name in names for part in name.split("/")
                       if _GENERALISATION_CODE.search(part))
        return f"Boundaries: {GENERALISATIONS[codes[0]]}, as the source files are named ({said_by})."
    if codes:
        return ("Boundaries: files of different generalisations ("
                + ", ".join(GENERALISATIONS[c] for c in codes) + ").")
    return (f"Boundaries: from {shown}; their generalisation (full resolution BFC, generalised "
            "BGC, super generalised BSC…) is not stated by the files.")


def _provenance_names(path, tables: dict) -> list[str]:
    """The names of the file ``path`` was cut from, if a ``PROVENANCE.tsv`` up to three folders
    above it says (columns ``file``, ``from_shared_file``, ``source_path``); ``tables``: the
    tables read so far, by folder (each read once)."""
    for folder in list(path.parents)[:3]:
        if folder not in tables:
            table = folder / "PROVENANCE.tsv"
            try:
                with table.open(encoding="utf-8") as fh:
                    rows = list(csv.DictReader(fh, delimiter="\t"))
            except (OSError, csv.Error, UnicodeDecodeError):
                rows = None
            tables[folder] = None if rows is None else {
                row.get("file"): [row[k] for k in ("from_shared_file", "source_path") if row.get(k)]
                for row in rows}
        if tables[folder] is not None:
            return tables[folder].get(path.relative_to(folder).as_posix(), [])
    return []


# -- descriptions -------------------------------------------------------------------------------

NATION_NAMES = {"E": "England", "W": "Wales", "S": "Scotland", "N": "Northern Ireland", "": "no nation"}


def _nations_words(by_nation: dict[str, int]) -> str:
    return ", ".join(f"{NATION_NAMES.get(k, k)} {v:,}" for k, v in sorted(by_nation.items()))


def geography_description(f: _SetFacts) -> str:
    """What a boundary set's collection holds, in words."""
    held = (f"{f.count:,} areas ({_nations_words(f.by_nation)})" if len(f.by_nation) > 1
            else f"{f.count:,} areas")
    of = f" of the {f.expected:,} of the full set" if f.expected and f.expected > f.count else ""
    return (f"{f.label}: the boundaries of {held}{of}. Items carry code, name, nation and area_km2 "
            "and no measure: add indicator= (a measure; a wrong one is answered with the valid "
            f"ones) or take a map collection ({f.set_id}_…), one per measure.\n\n{f.boundaries}\n\n"
            f"Licence: {OGL_NAME}. {OGL_ATTRIBUTION_LINE}")


def partnerships_description(geo: _SetFacts, n: int) -> str:
    return (f"Outlines of the {n} employment partnerships (City Strategy Pathfinders and Deprived "
            f"Areas Fund partnerships), each the union of its members' areas in {geo.label} "
            "(its final definition). code is the partnership's id, as partnership= takes it on "
            "every other collection; id is the same, kept for older projects. "
            f"{geo.boundaries}\n\nLicence: {OGL_NAME}. {OGL_ATTRIBUTION_LINE}")


def _measure_coverage(store: Store, f: _SetFacts, indicators: tuple[str, ...],
                      choice) -> dict[tuple[str, str], int]:
    """(period, nation) → the areas with a figure (a rate from counts: with a count and a
    denominator). Summed over the measure's editions (each its own periods), in Python: a
    store of 3,000 measures lists them in one query per set."""
    if choice.denominator is not None:
        return {(period, nation): n for period, nation, n in store.sql(
            _COVERAGE_OVER_SQL, {"set_id": f.set_id, "indicators": list(indicators),
                                 "denominator": choice.denominator}).fetchall()}
    which = 1 if choice.gap else 0
    out: dict[tuple[str, str], int] = {}
    for indicator in indicators:
        for key, counts in f.coverage.get(indicator, {}).items():
            out[key] = out.get(key, 0) + counts[which]
    return out


def coverage_sentence(f: _SetFacts, periods: list[CollectionPeriod],
                      coverage: dict[tuple[str, str], int]) -> str:
    """Per nation of the set, how many of its areas have a value in each period; a nation with
    none in any period said as such (IMD 2025 on LSOAs: Wales's 933 areas are null)."""
    held = {key: min(n, f.by_nation.get(key[1], 0)) for key, n in coverage.items()}
    parts, empty = [], []
    for nation, n in sorted(f.by_nation.items()):
        name = NATION_NAMES.get(nation, nation)
        counts = [(p, held.get((p.id, nation), 0)) for p in periods]
        if not any(k for _, k in counts):
            empty.append(f"{name} ({n:,} area{'s' if n != 1 else ''})")
            continue
        if all(k == n for _, k in counts):
            parts.append(f"{name}: all {n:,} areas in every period")
            continue
        each = "; ".join(f"{p.label} {k:,}" + (f" ({n - k:,} null)" if k < n else "") for p, k in counts)
        parts.append(f"{name}: of {n:,} areas, with a value in {each}")
    text = "Coverage: " + ". ".join(parts) + "." if parts else "Coverage: no area has a value."
    if empty:
        text += (f" {', '.join(empty)}: null in every period — the source held covers no area "
                 f"there{'' if len(empty) == 1 else ' in these nations'}.")
    return text + " An area without a value is null (no figure), never 0."


def _neighbours(c, ids: dict[tuple, str], by_indicator: dict[tuple, list]) -> list[tuple[str, str]]:
    """(id, what it is) of the other collections of ``c``'s set that a user could take for it:
    a count's number beside its rate, and the rate beside the number (``by_indicator``: the
    listed choices by (set, measure), and by (set, "rate of", the name of their rate))."""
    out = []
    related = [*by_indicator.get((c.geography, c.indicator), []),
               *by_indicator.get((c.geography, rate_name(c.indicator)), []),
               *by_indicator.get((c.geography, "rate of", c.indicator), [])]
    for other in related:
        if other is c:
            continue
        key = (other.geography, other.indicator, other.denominator)
        if c.gap and other.indicator == c.indicator and not other.gap:
            out.append((ids[key], "the same count as a number of people, not a rate"))
        elif not c.gap and other.gap and other.indicator == c.indicator:
            out.append((ids[key], "the rate, with its interval, count and denominator"))
        elif not c.gap and not other.gap and (rate_name(c.indicator) == other.indicator
                                              or rate_name(other.indicator) == c.indicator):
            words = "the rate, as published" if rate_name(c.indicator) == other.indicator \
                else "the count, as a number of people"
            out.append((ids[key], words))
    return out


def _derived(store: Store, c) -> str | None:
    """How a count's denominator was derived from a published rate, if it was."""
    if not c.gap or c.denominator is not None:
        return None
    row = store.sql("SELECT any_value(method), max(rate_rounding) FROM derived_denominators "
                    "WHERE set_id = ? AND indicator_id IN (SELECT indicator_id FROM indicators "
                    "WHERE set_id = ? AND measure = ?)", [c.geography, c.geography, c.indicator]).fetchone()
    if row is None or row[0] is None:
        return None
    return (f"The denominator is not published: it is derived as {row[0]} from the published rate, "
            f"rounded to {row[1]:g} points, and the interval is widened for that rounding.")


def _sources_words(f: _SetFacts, indicators) -> str:
    seen: dict[str, list[str]] = {}
    for i in indicators:
        if i not in f.sources:
            continue
        _, title, publisher, _, label = f.sources[i]
        key = f"{title} ({publisher})" if publisher and publisher not in title else title
        note = " harmonised from another boundary set (estimated_share says how much)" \
            if "harmonised" in str(label).lower() else ""
        seen.setdefault(key, []).append(note)
    return "; ".join(k + ("," + v[0] if any(v) else "") for k, v in seen.items())


OGL_ATTRIBUTION_LINE = "Attribution: " + OGL_ATTRIBUTION


def measure_description(f: _SetFacts, c, measure, periods: list[CollectionPeriod],
                        coverage: dict[tuple[str, str], int], baseline: list[CollectionPeriod], twins: list,
                        neighbours: list[tuple[str, str]], derived: str | None, cid: str) -> str:
    """How a map collection's value is made, in paragraphs: what it is and which layer to use
    for what, its source, periods, coverage by nation, ``worst``, the boundaries and the
    licence."""
    label = c.label
    what: list[str] = []
    if measure.kind == "survey":
        what.append(f"{label}: the survey estimate as published, with its published 95% interval "
                    "(value_low, value_high; half_width in points), numerator (count) and "
                    "denominator; reliability says where the publisher marks an estimate "
                    "unreliable (no interval) or missing (null).")
    elif c.gap:
        if c.denominator:
            _, title, _, _, den_label = f.sources.get(c.denominator, (None, "", None, None, c.denominator))
            over = (f"{str(den_label)[:1].lower()}{str(den_label)[1:]}"
                    + (f" from the {title}" if title else "")
                    + ", the latest at or before each period (else the earliest after)")
        elif derived:
            over = "derived from the published rate, as said below"
        else:
            over = "the population the publisher gives with each count"
        what.append(f"{label}: the rate computed here from the counts, value = count / "
                    f"denominator × 100 (denominator: {over}), with its 95% Wilson interval "
                    "(value_low, value_high) and the count and denominator on every item. Use "
                    "this layer to map the rate.")
        if derived:
            what.append(derived)
        for twin in twins:
            old = f"{twin.geography}_{twin.indicator}"
            moved = ("this id served that published rate until now and serves this one now"
                     if old == cid else f"its former layer {old} leads here")
            what.append(f"The publisher's own rate ({twin.indicator}: {twin.label}) is the same "
                        "figure as published, rounded (any count or interval it has is worked back "
                        f"from the rounded rate): not a layer of its own ({moved}); "
                        f"/collections/{c.geography}/items?indicator={twin.indicator} serves it.")
    elif measure.kind == "rate" and any(
            counts[1] for i in measure.indicators for counts in f.coverage.get(i, {}).values()):
        what.append(f"{label}: the rate as published; its count and interval are worked back "
                    "from the published (rounded) rate and denominator.")
    elif measure.kind == "rate":
        what.append(f"{label}: the rate as published; the items have no count, denominator or "
                    "interval (the publisher gives the rate only).")
    elif measure.kind == "count":
        what.append(f"{label}: a number of people as published, not a rate (a larger area has "
                    "more).")
    else:
        what.append(f"{label}: the {measure.kind} as published, not a rate.")
    for other, words in neighbours:
        what.append(f"{other} is {words}.")
    sources = _sources_words(f, measure.indicators)
    parts = [" ".join(what)]
    if sources:
        parts.append(f"Source: {sources}.")
    if len(periods) > 8:
        parts.append(f"Periods: {len(periods)}, from {periods[0].id} ({periods[0].label}) to "
                     f"{periods[-1].id} ({periods[-1].label}), each in extent.temporal.periods. "
                     "Items come one period per request: period= or datetime= (default the latest).")
    elif periods:
        parts.append("Periods: " + ", ".join(f"{p.id} ({p.label})" for p in periods)
                     + ". Items come one period per request: period= or datetime= (default the "
                     f"latest, {periods[-1].id}).")
    parts.append(coverage_sentence(f, periods, coverage))
    if baseline:
        words = ", ".join(p.label for p in baseline)
        parts.append(f"worst: true where the area's mean rate over the baseline ({words}) exceeds "
                     "25% — the worst-performing neighbourhoods of the NI 153 target — and the "
                     "same in every period; false where it does not; null where the area has no "
                     "rate in the baseline. baseline= and threshold= choose others.")
    parts.append(f.boundaries)
    parts.append(f"Licence: {OGL_NAME}. {OGL_ATTRIBUTION_LINE}")
    return "\n\n".join(parts)


# -- the extent of what a request selects ------------------------------------------------------

_EXTENT_SQL = ("SELECT min(a.xmin), min(a.ymin), max(a.xmax), max(a.ymax), count(*) "
               "FROM areas a{join} WHERE {where}")


def selection_extent(store: Store, q: ItemQuery) -> tuple[tuple[float, float, float, float] | None, int]:
    """The lon/lat bounds of the areas ``q`` selects (its partnership's codes, bbox and filter;
    not its page) and how many they are: the extent of the layer a client asked for. None when
    it selects none."""
    where, params = _search_where(q)
    sql = _EXTENT_SQL.format(join=_VALUE_JOIN if q.joins_values else "", where=where)
    with _values_registered(store, q, q.values if q.joins_values else None):
        west, south, east, north, n = store.sql(sql, params).fetchone()
    return ((west, south, east, north) if n else None), int(n)


# -- items -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ItemQuery:
    """One request for items of a boundary set (parsed and checked by the caller)."""

    set_id: str
    limit: int = DEFAULT_LIMIT
    offset: int = 0
    bbox: tuple[float, float, float, float] | None = None   # lon/lat
    crs: str = CRS84
    codes: tuple[str, ...] | None = None                     # e.g. a partnership's areas
    properties: tuple[str, ...] | None = None
    values: pd.DataFrame | None = field(default=None, compare=False, hash=False)
    #: Where each code's row is in ``values`` (:func:`value_positions`, kept by servers with
    #: the period's values): a page's values are then picked, not searched for.
    value_positions: Mapping[str, int] | None = field(default=None, compare=False, hash=False)
    indicator: str | None = None
    period: str | None = None
    #: The page's codes and numberMatched, when the caller has the selection's codes in order
    #: (:func:`selection_codes`, cached by servers): the page is then not searched for again.
    page_codes: tuple[str, ...] | None = field(default=None, compare=False, hash=False)
    matched: int | None = None
    #: A Part 3 filter (:func:`geo_cs.filters.parse_filter`) and sort keys (``sortby``); with
    #: either, the page is searched in the database (no cached selection).
    where: filters.Where | None = None
    sort: tuple[filters.SortKey, ...] | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= MAX_LIMIT:
            raise InputError(f"limit={self.limit}: expected 1-{MAX_LIMIT}")
        if self.offset < 0:
            raise InputError(f"offset={self.offset}: expected 0 or more")
        if self.properties is not None:
            allowed = self.available_properties
            unknown = [p for p in self.properties if p not in allowed]
            if unknown:
                raise InputError(
                    f"properties: unknown {', '.join(unknown)}; valid: {', '.join(allowed)}"
                )

    @property
    def survey(self) -> bool:
        """Whether the values are a survey measure's (:data:`SURVEY_PROPERTIES` too)."""
        return self.values is not None and "reliability" in self.values.columns

    @property
    def value_keys(self) -> tuple[str, ...]:
        """The value columns an item takes from the period's values."""
        if self.values is None:
            return ()
        return _VALUE_KEYS + (SURVEY_PROPERTIES if self.survey else ())

    @property
    def available_properties(self) -> tuple[str, ...]:
        if self.values is None:
            return BASE_PROPERTIES
        return BASE_PROPERTIES + VALUE_PROPERTIES + (SURVEY_PROPERTIES if self.survey else ())

    @property
    def searched(self) -> bool:
        """Whether the page is chosen by a filter or a sort in the database."""
        return self.where is not None or self.sort is not None

    @property
    def joins_values(self) -> bool:
        return self.values is not None and (
            (self.where is not None and self.where.uses_values)
            or (self.sort is not None and filters.sorts_by_values(self.sort)))


def spatial_for(crs: str) -> filters.Spatial:
    """How a filter's spatial literals in ``crs`` (filter-crs) meet the stored geometry."""
    if crs == EPSG27700:
        return filters.Spatial("a.geom_27700", swap_axes=False, lonlat_bounds=False)
    return filters.Spatial("a.geom_4326", swap_axes=crs == EPSG4326, lonlat_bounds=True)


# An area (``a``) meets the lon/lat box {west}..{north} (SQL parameters): its bounds meet the
# box, and then either the bounds alone say so or, where they cannot, the geometry does. The
# bounds are the geometry's own (xmin… are the least and greatest coordinates of geom_4326, from
# the same numbers at ingest), so the geometry has a point on each side of its bounds: when one
# side lies whole within the box (the bounds' full height within the box's and their west or
# east edge within its width, or the same across), that point is in the box and the area meets
# it. Only an area whose bounds overhang the box both ways (over a corner of the box, or larger
# than it) is tested on its full geometry: about 15% of the areas a box of the soak's sizes
# overlaps on the GB LSOAs, so the selection takes half the CPU time of ST_Intersects on every
# area, and selects the same areas (tests/test_bbox_pages.py).
_MEETS_BOX = """a.xmax >= {west} AND a.xmin <= {east} AND a.ymax >= {south} AND a.ymin <= {north}
       AND CASE WHEN (a.ymin >= {south} AND a.ymax <= {north} AND (a.xmin >= {west} OR a.xmax <= {east}))
                  OR (a.xmin >= {west} AND a.xmax <= {east} AND (a.ymin >= {south} OR a.ymax <= {north}))
                THEN true
                ELSE ST_Intersects(a.geom_4326, ST_MakeEnvelope({west}, {south}, {east}, {north})) END"""
_BOX_SIDES = ("west", "south", "east", "north")
_MEETS_BOX_POSITIONAL = _MEETS_BOX.format(**dict.fromkeys(_BOX_SIDES, "?"))
_MEETS_BOX_ORDER = tuple(_BOX_SIDES.index(k) for k in re.findall(r"\{(\w+)\}", _MEETS_BOX))


def _meets_box(bbox: tuple[float, float, float, float]) -> tuple[str, list[float]]:
    """:data:`_MEETS_BOX` with ``?`` parameters, and their values for the lon/lat ``bbox``."""
    return _MEETS_BOX_POSITIONAL, [bbox[i] for i in _MEETS_BOX_ORDER]


# The areas a selection without a filter matches: those of a set with a geometry (xmin is set
# exactly when an area has one, and is far cheaper to read), among $codes and meeting the lon/lat
# box $west..$north when given (:data:`_MEETS_BOX`). One clause for the page, its count and its
# list of codes.
_SELECTED = """
WHERE a.set_id = $set_id AND a.xmin IS NOT NULL
  AND ($codes IS NULL OR list_contains($codes, a.code))
  AND ($west IS NULL OR (""" + _MEETS_BOX.format(**{k: f"${k}" for k in _BOX_SIDES}) + """))
"""

# The page of codes is chosen first, so geometries are converted to GeoJSON for that page only.
_ITEMS_SQL = """
WITH page AS (
    SELECT a.code FROM areas a""" + _SELECTED + """    ORDER BY a.code
    LIMIT $limit OFFSET $offset
)
SELECT a.code, a.name, a.nation, a.geography, a.vintage, round(a.area_m2 / 1e6, 4) AS area_km2,
       {geometry_json} AS geometry{value_columns}
FROM page JOIN areas a ON a.set_id = $set_id AND a.code = page.code{value_join}
ORDER BY a.code
"""

_COUNT_SQL = "SELECT count(*) FROM areas a" + _SELECTED

#: The columns of a measure's values on an item (all its value properties but the measure's
#: indicator and period).
_VALUE_KEYS = VALUE_PROPERTIES[2:]


def _value_columns(keys: tuple[str, ...]) -> str:
    # names from VALUE_PROPERTIES and SURVEY_PROPERTIES only, never from a request
    return "".join(f", v.{key}" for key in keys)


# The page given as its codes: an index join on (set_id, code), no search and no sort of the set.
_PAGE_GIVEN = "WITH page AS (SELECT unnest($page_codes) AS code)"

# Every code a selection matches, in page order: without bbox, cached by servers per data version
# (sorting 35,000 codes for each page is half the cost of a page); with one, searched once per
# request, so its count and its page come from one spatial search, not two.
_SELECTION_SQL = "SELECT a.code FROM areas a" + _SELECTED + "ORDER BY a.code"


def _items_sql(crs: str, value_keys: tuple[str, ...], with_geometry: bool = True,
               page_given: bool = False) -> str:
    """The page's SQL; ``value_keys``: the value columns joined from the period's values (none:
    no join)."""
    with_values = bool(value_keys)
    geometry_json = f"ST_AsGeoJSON({_GEOMETRY[crs]})" if with_geometry else "NULL"
    sql = _ITEMS_SQL.format(
        geometry_json=geometry_json,
        value_columns=_value_columns(value_keys),
        value_join=" LEFT JOIN geo_cs_item_values v ON v.code = a.code" if with_values else "",
    )
    if page_given:
        sql = _PAGE_GIVEN + sql[sql.index("\nSELECT a.code"):]
    return sql


# -- a page chosen by a filter or a sort (OGC API - Features Part 3): ``?`` parameters only; the
# column names in the filter and ORDER BY come from geo_cs.filters' queryables, never a request.

_SEARCHED_PAGE_SQL = """
WITH page AS (
    SELECT a.code FROM areas a{search_join}
    WHERE {where}
    ORDER BY {order}
    LIMIT ? OFFSET ?
)
SELECT a.code, a.name, a.nation, a.geography, a.vintage, round(a.area_m2 / 1e6, 4) AS area_km2,
       {geometry_json} AS geometry{value_columns}
FROM page JOIN areas a ON a.set_id = ? AND a.code = page.code{value_join}
ORDER BY {order}
"""

_SEARCHED_COUNT_SQL = "SELECT count(*) FROM areas a{search_join} WHERE {where}"

_VALUE_JOIN = " LEFT JOIN geo_cs_item_values v ON v.code = a.code"


def _search_where(q: ItemQuery) -> tuple[str, list]:
    clauses, params = ["a.set_id = ?", "a.xmin IS NOT NULL"], [q.set_id]
    if q.codes is not None:
        clauses.append("list_contains(?, a.code)")
        params.append(list(q.codes))
    if q.bbox is not None:
        sql, box_params = _meets_box(q.bbox)
        clauses.append(f"({sql})")
        params += box_params
    if q.where is not None:
        clauses.append(q.where.sql)
        params += list(q.where.params)
    return " AND ".join(clauses), params


def _searched_sql(q: ItemQuery, with_geometry: bool) -> tuple[str, list]:
    where, params = _search_where(q)
    with_values = q.values is not None
    sql = _SEARCHED_PAGE_SQL.format(
        search_join=_VALUE_JOIN if q.joins_values else "", where=where,
        order=filters.order_by(q.sort or ()),
        geometry_json=f"ST_AsGeoJSON({_GEOMETRY[q.crs]})" if with_geometry else "NULL",
        value_columns=_value_columns(q.value_keys),
        value_join=_VALUE_JOIN if with_values else "")
    return sql, [*params, q.limit, q.offset, q.set_id]


def selection_codes(store: Store, set_id: str, codes: tuple[str, ...] | None = None,
                    bbox: tuple[float, float, float, float] | None = None) -> tuple[str, ...]:
    """The codes of ``set_id`` (among ``codes``, and meeting the lon/lat ``bbox``, if given)
    that have a geometry, in page order."""
    west, south, east, north = bbox if bbox is not None else (None, None, None, None)
    rows = store.sql(_SELECTION_SQL, {"set_id": set_id,
                                      "codes": list(codes) if codes is not None else None,
                                      "west": west, "south": south, "east": east,
                                      "north": north}).fetchall()
    return tuple(r[0] for r in rows)


def with_page_of(q: ItemQuery, selection: tuple[str, ...]) -> ItemQuery:
    """``q`` with its page taken from ``selection``: all the codes its bbox and ``codes`` select,
    in order (:func:`selection_codes`; a filter or a sort is searched in the database instead)."""
    if q.searched:
        raise ValueError("a filter or sort selection is searched in the database, not given")
    return replace(q, page_codes=selection[q.offset:q.offset + q.limit], matched=len(selection))


def _params(q: ItemQuery) -> dict:
    if q.page_codes is not None:
        return {"set_id": q.set_id, "page_codes": list(q.page_codes)}
    west, south, east, north = q.bbox if q.bbox else (None, None, None, None)
    return {"set_id": q.set_id, "codes": list(q.codes) if q.codes is not None else None,
            "west": west, "south": south, "east": east, "north": north,
            "limit": q.limit, "offset": q.offset}


def count_items(store: Store, q: ItemQuery) -> int:
    """How many items the query matches, ignoring limit and offset (numberMatched)."""
    if q.matched is not None:
        return q.matched
    if q.searched:
        where, params = _search_where(q)
        sql = _SEARCHED_COUNT_SQL.format(search_join=_VALUE_JOIN if q.joins_values else "",
                                         where=where)
        with _values_registered(store, q, q.values if q.joins_values else None):
            return int(store.sql(sql, params).fetchone()[0])
    params = {k: v for k, v in _params(q).items() if k not in ("limit", "offset")}
    return int(store.sql(_COUNT_SQL, params).fetchone()[0])


@contextmanager
def _values_registered(store: Store, q: ItemQuery, values: pd.DataFrame | None) -> Iterator[None]:
    """``values`` readable as ``geo_cs_item_values`` on the store's cursor meanwhile."""
    if values is None:
        yield
        return
    store.con.register("geo_cs_item_values", values)
    try:
        yield
    finally:
        store.con.unregister("geo_cs_item_values")


def value_positions(values: pd.DataFrame) -> dict[str, int]:
    """The row of each code in a period's ``values`` (for :attr:`ItemQuery.value_positions`)."""
    return {code: i for i, code in enumerate(values["code"].tolist())}


def _page_values(q: ItemQuery, codes: tuple[str, ...]) -> dict[str, dict]:
    """The value columns of a page's codes, by code (an area without a value has none)."""
    values = q.values
    assert values is not None
    if q.value_positions is not None:
        rows = [q.value_positions[c] for c in codes if c in q.value_positions]
        page = values.iloc[rows]
    else:   # a search of 35,000 codes: 5 ms
        page = values.loc[values["code"].isin(codes)]
    return {row.pop("code"): row for row in page[["code", *q.value_keys]].to_dict("records")}


def _rows(store: Store, q: ItemQuery, with_geometry: bool = True, batch: int = 1000) -> Iterator[dict]:
    values = q.values
    if values is not None and q.page_codes is not None:
        # A given page's values are looked up here, not joined in DuckDB: registering the
        # period's frame to join 100 rows took 7 ms of a 20 ms CSV page of the GB LSOAs.
        by_code = _page_values(q, q.page_codes)
        no_values = dict.fromkeys(q.value_keys)
        cursor = store.sql(_items_sql(q.crs, (), with_geometry, True), _params(q))
        names = [d[0] for d in cursor.description]
        while rows := cursor.fetchmany(batch):
            for row in rows:
                item = dict(zip(names, row, strict=True))
                item.update(by_code.get(item["code"], no_values))
                yield item
        return
    with _values_registered(store, q, values):
        if q.searched:
            cursor = store.sql(*_searched_sql(q, with_geometry))
        else:
            cursor = store.sql(_items_sql(q.crs, q.value_keys, with_geometry,
                                          q.page_codes is not None), _params(q))
        names = [d[0] for d in cursor.description]
        while rows := cursor.fetchmany(batch):
            for row in rows:
                yield dict(zip(names, row, strict=True))


def _properties(row: dict, q: ItemQuery) -> dict:
    props = {k: row[k] for k in BASE_PROPERTIES}
    if q.values is not None:
        props["indicator"] = q.indicator
        props["period"] = q.period
        for key in q.value_keys:
            value = row.get(key)
            if isinstance(value, float) and not math.isfinite(value):
                value = None
            # the tiles' rounding, so a tooltip, a tile and an item give the same figure
            props[key] = round(value, VALUE_DIGITS) if isinstance(value, float) else value
    if q.properties is not None:
        props = {k: props[k] for k in q.properties}
    return props


def _feature_json(row: dict, q: ItemQuery) -> str:
    # the geometry is GeoJSON text from DuckDB: spliced in, not parsed and dumped again
    return (f'{{"type":"Feature","id":{json.dumps(row["code"])},"geometry":{row["geometry"]},'
            f'"properties":{json.dumps(_properties(row, q), default=_json_default)}}}')


def _json_default(value: object) -> object:
    if value is pd.NA:
        return None
    if hasattr(value, "item"):
        return value.item()  # numpy scalars
    raise TypeError(f"cannot serialise {type(value).__name__}")


def iter_features(store: Store, q: ItemQuery) -> Iterator[str]:
    """The query's features as GeoJSON text, one string each, fetched from DuckDB in batches."""
    for row in _rows(store, q):
        yield _feature_json(row, q)


def feature_collection(
    store: Store, q: ItemQuery, links: list[dict], extra: dict | None = None, matched: int | None = None
) -> Iterator[str]:
    """A GeoJSON FeatureCollection (OGC items response) streamed as text chunks.

    ``matched``: numberMatched when the caller has counted already (for its links)."""
    matched = count_items(store, q) if matched is None else matched
    returned = max(0, min(q.limit, matched - q.offset))
    head = {"type": "FeatureCollection", "numberMatched": matched, "numberReturned": returned,
            "links": links, **(extra or {})}
    yield json.dumps(head)[:-1] + ',"features":['
    chunk: list[str] = []
    first = True
    for feature in iter_features(store, q):
        chunk.append(feature)
        if len(chunk) == 200:
            yield ("" if first else ",") + ",".join(chunk)
            first, chunk = False, []
    if chunk:
        yield ("" if first else ",") + ",".join(chunk)
    yield "]}"


def get_feature(store: Store, q: ItemQuery, code: str) -> str:
    """One feature by code, or NotFoundError."""
    one = replace(q, codes=(code,), limit=1, offset=0, bbox=None, page_codes=None, matched=None,
                  where=None, sort=None)
    for feature in iter_features(store, one):
        return feature
    raise NotFoundError(f"no item {code!r} in collection {q.set_id}")


def iter_csv(store: Store, q: ItemQuery) -> Iterator[str]:
    """The same selection as CSV (properties only), streamed in chunks."""
    buffer = io.StringIO()
    columns = list(q.properties or q.available_properties)
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    for i, row in enumerate(_rows(store, q, with_geometry=False), start=1):
        writer.writerow({k: ("" if v is None or v is pd.NA else neutralise(v))
                         for k, v in _properties(row, q).items()})
        if i % 1000 == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def download_name(collection_id: str, q: ItemQuery, extension: str, partnership: str | None = None,
                  measure_in_id: bool = False) -> str:
    """A download's file name, for what it holds. A partnership's areas are named as the map
    page names its downloads (partnership, period, measure: the same file from either); others
    by the collection, the measure (unless the collection's id names it) and the period. Then
    whether it is filtered, and its first item when it is not the first page.

    >>> q = ItemQuery("datazone2011", indicator="employment_deprived", period="simd2020")
    >>> download_name("datazone2011", q, "csv", "glasgow")
    'glasgow_simd2020_employment_deprived.csv'
    >>> download_name("lsoa2011_employment_deprived_rate", replace(q, offset=1000), "geojson",
    ...               measure_in_id=True)
    'lsoa2011_employment_deprived_rate_simd2020_from1001.geojson'
    """
    if partnership:
        parts = [partnership, q.period, q.indicator or collection_id]
    else:
        parts = [collection_id, None if measure_in_id else q.indicator, q.period]
    if q.where is not None:
        parts.append("filtered")
    if q.offset:
        parts.append(f"from{q.offset + 1}")
    stem = "_".join(re.sub(r"[^A-Za-z0-9_]+", "-", p).strip("-") for p in parts if p)
    return f"{stem[:150]}.{extension}"


def page_links(url: str, params: dict[str, str], q: ItemQuery | PartnershipQuery, matched: int,
               media: str) -> list[dict]:
    """self / next / prev / alternate links of an items page (``url`` without its query)."""
    from urllib.parse import urlencode

    def link(rel: str, offset: int, kind: str = media, f: str | None = None) -> dict:
        query = {**params, "offset": str(offset), "limit": str(q.limit)}
        if f is not None:
            query["f"] = f
        return {"href": f"{url}?{urlencode(query)}", "rel": rel, "type": kind}

    links = [link("self", q.offset)]
    if q.offset + q.limit < matched:
        links.append(link("next", q.offset + q.limit))
    if q.offset > 0:
        links.append(link("prev", max(0, q.offset - q.limit)))
    links.append({**link("alternate", q.offset, "text/csv", "csv"), "title": "CSV of this page"})
    return links


# -- the partnerships layer -------------------------------------------------------------------

#: ``code`` as every other collection's items have it (the id partnership= takes); ``id``, the
#: same, as the layer had it before issue 30 (older projects and filters name it).
PARTNERSHIP_PROPERTIES = ("code", "id", "name", "kind", "nations", "confidence", "definition", "members",
                          "areas", "geography", "resolved_by", "note")


@dataclass(frozen=True)
class PartnershipQuery:
    """One request for items of the ``partnerships`` collection (outlines, one per partnership)."""

    limit: int = DEFAULT_LIMIT
    offset: int = 0
    bbox: tuple[float, float, float, float] | None = None   # lon/lat
    properties: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        ItemQuery("partnerships", self.limit, self.offset)  # the same limit and offset rules
        unknown = [p for p in self.properties or () if p not in PARTNERSHIP_PROPERTIES]
        if unknown:
            raise InputError(f"properties: unknown {', '.join(unknown)}; valid: "
                             f"{', '.join(PARTNERSHIP_PROPERTIES)}")

    def matching(self, lonlat_bounds: dict[str, list[float] | None]) -> list[str]:
        """The ids, in order, whose outline's lon/lat bounds meet ``bbox`` (all without one;
        a partnership with no areas in the store meets none)."""
        if self.bbox is None:
            return list(lonlat_bounds)
        west, south, east, north = self.bbox
        return [pid for pid, b in lonlat_bounds.items()
                if b is not None and b[2] >= west and b[0] <= east and b[3] >= south and b[1] <= north]

    def page(self, ids: list[str]) -> list[str]:
        return ids[self.offset:self.offset + self.limit]

    def select(self, feature: dict) -> dict:
        """``feature`` with only the requested properties."""
        if self.properties is None:
            return feature
        return {**feature, "properties": {k: feature["properties"][k] for k in self.properties}}


def properties_csv(features: list[dict], columns: tuple[str, ...]) -> str:
    """The features' properties as CSV, one row each (no geometry, as the items' CSV)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), extrasaction="ignore")
    writer.writeheader()
    for feature in features:
        writer.writerow({k: "" if v is None else neutralise(v) for k, v in feature["properties"].items()})
    return buffer.getvalue()


#: Sets tried, in order, for partnership outlines (districts first: members are districts).
OUTLINE_SETS = ("lad2013", "lad2022", "lad2021", "lad2020", "lad2019", "lsoa2011", "datazone2011")


def partnership_outline_set(store: Store, member_set: str | None = None) -> str | None:
    """The set to draw a partnership's outline from: its members' own set when it has
    boundaries (Rhyl is five wards), else the first of :data:`OUTLINE_SETS` that has them."""
    with_geometry = {r[0] for r in store.sql(
        "SELECT DISTINCT set_id FROM areas WHERE xmin IS NOT NULL").fetchall()}
    if member_set in with_geometry:
        return member_set
    return next((s for s in OUTLINE_SETS if s in with_geometry), None)


_OUTLINE_SQL = """
SELECT ST_AsGeoJSON(ST_Multi(ST_Union_Agg({column}))),
       min(xmin), min(ymin), max(xmax), max(ymax), count(*)
FROM areas WHERE set_id = $set_id AND list_contains($codes, code) AND geom_4326 IS NOT NULL
"""


def partnership_outline(store: Store, partnership_id: str, set_id: str | None = None,
                        crs: str = CRS84) -> dict:
    """A partnership as one feature: the union of its areas in ``set_id`` (default: see
    :func:`partnership_outline_set`), final definition."""
    from geo_cs.partnerships import get_partnerships, resolve

    partnership = get_partnerships([partnership_id])[0]
    set_id = set_id or partnership_outline_set(store, partnership.member_set)
    if set_id is None:
        raise NotFoundError("no boundaries in the store to draw partnership outlines from")
    resolution = resolve(store, partnership, set_id)
    sql = _OUTLINE_SQL.format(column=_GEOMETRY[crs])
    geometry, west, south, east, north, n = store.sql(
        sql, {"set_id": set_id, "codes": resolution.codes}).fetchone()
    phase = resolution.phase
    return {
        "type": "Feature", "id": partnership.id,
        "geometry": json.loads(geometry) if geometry else None,
        # GeoJSON's bbox is in the geometry's CRS: given for lon/lat, left out otherwise
        "bbox": [west, south, east, north] if west is not None and crs == CRS84 else None,
        "properties": {
            "code": partnership.id, "id": partnership.id, "name": phase.name, "kind": partnership.kind,
            "nations": "".join(partnership.nations), "confidence": partnership.confidence,
            "definition": phase.version, "members": len(phase.members), "areas": n,
            "geography": set_id, "resolved_by": resolution.method, "note": partnership.note,
        },
    }
