"""GIS downloads: a selection of items as a GeoPackage or a zipped ESRI Shapefile, in British
National Grid (EPSG:27700, the storage CRS) or longitude/latitude (EPSG:4326), for a GIS officer
to open directly (QGIS, ArcGIS Pro, GDAL) with no OGC API client.

What a file holds is an items request's answer, feature for feature: the features are
:func:`geo_cs.features.iter_features` of the same :class:`~geo_cs.features.ItemQuery` (same
selection, properties, rounding and disclosure control); only their container differs. A BNG
file's coordinates are the stored ``geom_27700`` (no round trip through longitude/latitude).

The files:

* **GeoPackage** (``gpkg``): one layer named after the file, every property under its own name
  and type (``worst``/``suppressed`` are GeoPackage booleans: 0/1), MultiPolygon geometry, the
  OGL attribution in the layer's description and metadata. Written as GeoPackage 1.2: QGIS 3.22
  (GDAL 3.6) opens it without a warning, and it is among the versions ArcGIS Pro documents
  (1.1 to 1.3 in Pro 3.1).
* **Shapefile** (``shp``): ``NAME.shp.zip`` (GDAL and QGIS open it as it is), a zip of
  ``.shp``, ``.shx``, ``.dbf``, ``.prj`` (the CRS), ``.cpg`` (``UTF-8``: Welsh and Gaelic names
  survive) and ``README.txt`` (the field names, the attribution). dBASE field names have at
  most 10 characters, so the long ones are renamed deliberately (:data:`SHAPEFILE_FIELDS`:
  ``value_low`` → ``val_low``…) rather than cut by GDAL (``estimated_share`` would become
  ``estimated_``); booleans are integers 1/0 (empty where the item has none); text is cut at
  dBASE's 254 characters.

A download holds at most :data:`MAX_FEATURES` features, the largest items page
(:func:`check_size`); an empty selection gives a valid file with no features.

Example
-------
>>> SHAPEFILE_FIELDS["value_low"], SHAPEFILE_FIELDS["estimated_share"]
('val_low', 'est_share')
>>> download_crs("EPSG:27700") == EPSG27700 and download_crs(None) == EPSG27700
True
"""

from __future__ import annotations

import json
import re
import zipfile
from collections.abc import Iterable
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
import shapely.geometry

from geo_cs.attribution import OGL_ATTRIBUTION
from geo_cs.errors import InputError
from geo_cs.features import (
    CRS84,
    EPSG4326,
    EPSG27700,
    GEOMETRY_TYPE,
    MAX_LIMIT,
    PARTNERSHIP_PROPERTIES,
    ItemQuery,
    crs_from_param,
    iter_features,
)
from geo_cs.store import Store

GPKG, SHAPEFILE = "gpkg", "shp"
#: The formats of a download (``f=``), as people call them.
FORMATS = {GPKG: "GeoPackage", SHAPEFILE: "zipped ESRI Shapefile"}
MEDIA_TYPES = {GPKG: "application/geopackage+sqlite3", SHAPEFILE: "application/zip"}
#: ``.shp.zip``: GDAL (3.1 and later, so QGIS) opens it as a shapefile as it is, unzipped or not.
EXTENSIONS = {GPKG: "gpkg", SHAPEFILE: "shp.zip"}
#: The CRSs of a download (``crs=``) and their EPSG codes, BNG first (the default).
DOWNLOAD_CRS = {EPSG27700: "EPSG:27700", EPSG4326: "EPSG:4326"}
#: Said in file names, so that the two downloads of one selection do not overwrite each other.
CRS_SUFFIX = {EPSG27700: "bng", EPSG4326: "wgs84"}
#: Most features in a download: the largest items page (``limit``). A whole boundary set of
#: Great Britain (35,000 LSOAs) is narrowed with ``partnership=`` or ``filter=``.
MAX_FEATURES = MAX_LIMIT
#: GeoPackage 1.2: GDAL 3.12 writes 1.4 by default, which QGIS 3.22's GDAL 3.6 opens with the
#: warning "may only be partially supported"; nothing in these files needs more than 1.2.
GPKG_VERSION = "1.2"
#: dBASE's longest text field.
DBF_TEXT_MAX = 254

#: Each property's type in a file: its own in the GeoPackage, dBASE's in the shapefile
#: (``bool`` → 1/0 integers there). Properties of items (:data:`geo_cs.features.BASE_PROPERTIES`,
#: ``VALUE_PROPERTIES``, ``SURVEY_PROPERTIES``) and of the partnerships layer.
FIELD_TYPES: dict[str, type] = {
    "code": str, "name": str, "nation": str, "geography": str, "vintage": int, "area_km2": float,
    "indicator": str, "period": str, "value": float, "value_low": float, "value_high": float,
    "count": float, "denominator": float, "worst": bool, "estimated_share": float,
    "suppressed": bool, "half_width": float, "reliability": str,
    "id": str, "kind": str, "nations": str, "confidence": str, "definition": str, "members": int,
    "areas": int, "resolved_by": str, "note": str,
}

#: The shapefile's field name of each property: dBASE allows 10 characters. Chosen to be read
#: without the table (``val_low`` is the low end of ``value``'s interval); the others keep
#: their names. Every name is unique and at most 10 characters (tested).
SHAPEFILE_FIELDS: dict[str, str] = {
    **{name: name for name in FIELD_TYPES},
    "value_low": "val_low",
    "value_high": "val_high",
    "denominator": "denom",
    "estimated_share": "est_share",
    "reliability": "reliab",
    "resolved_by": "resolved",
}

#: What each field holds, for the shapefile's README.txt (the queryables' titles, in words).
FIELD_TITLES: dict[str, str] = {
    "code": "area code (GSS or data zone code)",
    "name": "area name",
    "nation": "E, W or S",
    "geography": "boundary set (lsoa, datazone, wpc…)",
    "vintage": "boundary vintage (year)",
    "area_km2": "area in km²",
    "indicator": "the indicator",
    "period": "the period of the values",
    "value": "the indicator's value in the period (a rate in %, or a count)",
    "value_low": "lower end of the value's 95% interval",
    "value_high": "upper end of the value's 95% interval",
    "count": "count (numerator)",
    "denominator": "denominator",
    "worst": "worst-performing neighbourhood (1 yes, 0 no)",
    "estimated_share": "share of the value estimated through a boundary change (0-1)",
    "suppressed": "withheld by disclosure control (1 yes, 0 no)",
    "half_width": "half-width of the published 95% interval (points)",
    "reliability": "survey reliability marker (unreliable, missing, withheld; empty: none)",
    "id": "partnership id", "kind": "kind of partnership", "nations": "nations",
    "confidence": "how sure the definition is", "definition": "the definition's dates",
    "members": "member districts", "areas": "areas in the outline",
    "resolved_by": "how the members were resolved onto the areas", "note": "note",
}


def download_crs(value: str | None, parameter: str = "crs") -> str:
    """The CRS URI of a download: :data:`EPSG27700` (the default) or :data:`EPSG4326`, in any
    spelling :func:`geo_cs.features.crs_from_param` accepts (``EPSG:27700``, the OGC URI or
    URN). CRS84 is taken as EPSG:4326: a file's EPSG:4326 coordinates are longitude first,
    CRS84's order. Anything else is an :class:`InputError` naming ``parameter`` and the values.

    >>> download_crs("http://www.opengis.net/def/crs/EPSG/0/4326") == EPSG4326
    True
    >>> download_crs("EPSG:3857")   # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    geo_cs.errors.InputError: crs='EPSG:3857': a download is in EPSG:27700 (British National Grid, ...
    """
    if value is None or not value.strip():
        return EPSG27700
    try:
        uri = crs_from_param(value, parameter)
    except InputError:
        uri = None
    uri = EPSG4326 if uri == CRS84 else uri
    if uri not in DOWNLOAD_CRS:
        raise InputError(f"{parameter}={value!r}: a download is in EPSG:27700 (British National Grid, "
                         "metres; the default) or EPSG:4326 (longitude/latitude), also written "
                         f"{' or '.join(DOWNLOAD_CRS)}")
    return uri


def check_format(value: str, parameter: str = "f") -> str:
    """``value`` if it is a download format (:data:`FORMATS`), else an :class:`InputError`."""
    if value not in FORMATS:
        raise InputError(f"{parameter}={value!r}: expected "
                         + " or ".join(f"{k} ({v})" for k, v in FORMATS.items()))
    return value


def items_crs(crs: str) -> str:
    """The items' CRS whose coordinates a file in ``crs`` stores: BNG as it is, and
    longitude/latitude (CRS84) for EPSG:4326, whose files store longitude first whatever the
    CRS's axis order (GeoPackage, shapefile and GDAL all do)."""
    return EPSG27700 if crs == EPSG27700 else CRS84


def check_size(matched: int) -> None:
    """Refuse a download of more than :data:`MAX_FEATURES` features, naming what narrows it."""
    if matched > MAX_FEATURES:
        raise InputError(
            f"this download would hold {matched:,} features; a download holds at most "
            f"{MAX_FEATURES:,} (as an items page): narrow it with partnership= (the areas of one "
            "partnership) or filter= (for example filter=nation='W'), or page through the items")


def file_stem(name: str, crs: str) -> str:
    """A download's file name without its extension: ``name`` (what it holds, as
    :func:`geo_cs.features.download_name` says, with or without an extension) and the CRS.

    >>> file_stem("glasgow_simd2020_employment_deprived.gpkg", EPSG27700)
    'glasgow_simd2020_employment_deprived_bng'
    """
    stem = name.rsplit(".", 1)[0] if "." in name else name
    stem = re.sub(r"[^A-Za-z0-9_-]+", "-", stem).strip("-")[:150]   # safe in a header and a zip
    return f"{stem}_{CRS_SUFFIX[crs]}"


#: What a collection's download links say, per format and CRS.
LINK_TITLES = {
    (GPKG, EPSG27700): "GeoPackage, British National Grid (EPSG:27700)",
    (GPKG, EPSG4326): "GeoPackage, longitude/latitude (EPSG:4326)",
    (SHAPEFILE, EPSG27700): "Zipped shapefile, British National Grid (EPSG:27700)",
    (SHAPEFILE, EPSG4326): "Zipped shapefile, longitude/latitude (EPSG:4326)",
}


def download_links(collection_href: str, query: dict[str, str] | None = None) -> list[dict]:
    """A collection's links to its downloads (``rel`` enclosure: a resource that may be large),
    one per format and CRS, carrying ``query`` (the collection request's ``partnership``,
    ``filter``…, so that the files hold what the collection document describes).

    >>> links = download_links("http://h/collections/lsoa2011", {"partnership": "glasgow"})
    >>> [(link["href"].split("/")[-1], link["type"]) for link in links]   # doctest: +NORMALIZE_WHITESPACE
    [('download?partnership=glasgow', 'application/geopackage+sqlite3'),
     ('download?partnership=glasgow&crs=EPSG%3A4326', 'application/geopackage+sqlite3'),
     ('download?partnership=glasgow&f=shp', 'application/zip'),
     ('download?partnership=glasgow&f=shp&crs=EPSG%3A4326', 'application/zip')]
    """
    from urllib.parse import urlencode

    links = []
    for (fmt, crs), title in LINK_TITLES.items():
        params = {**(query or {}), **({"f": fmt} if fmt != GPKG else {}),
                  **({"crs": DOWNLOAD_CRS[crs]} if crs != EPSG27700 else {})}
        links.append({"href": f"{collection_href}/download" + (f"?{urlencode(params)}" if params else ""),
                      "rel": "enclosure", "type": MEDIA_TYPES[fmt], "title": title})
    return links


# -- the features, typed -----------------------------------------------------------------------

def items_frame(store: Store, q: ItemQuery) -> gpd.GeoDataFrame:
    """The items of ``q`` (offset 0, at most ``q.limit``) as a GeoDataFrame in the file's CRS:
    the properties of :func:`geo_cs.features.iter_features` typed by :data:`FIELD_TYPES`.

    ``q.crs`` must be :data:`EPSG27700` or :data:`CRS84` (:func:`items_crs`). Each feature's
    JSON is parsed for its properties one at a time and its geometry read by GEOS from the same
    text, so no feature's coordinates are ever held as Python numbers."""
    if q.crs not in (EPSG27700, CRS84):
        raise ValueError(f"a download's items are in EPSG:27700 or CRS84, not {q.crs}")
    columns = tuple(q.properties or q.available_properties)
    rows: list[dict] = []
    geometries: list[np.ndarray] = []
    chunk: list[str] = []
    for text in iter_features(store, q):
        rows.append(json.loads(text)["properties"])
        chunk.append(text)
        if len(chunk) == 1000:
            geometries.append(shapely.from_geojson(np.array(chunk, dtype=object)))
            chunk = []
    if chunk:
        geometries.append(shapely.from_geojson(np.array(chunk, dtype=object)))
    geometry = np.concatenate(geometries) if geometries else np.array([], dtype=object)
    return _frame(rows, columns, geometry, DOWNLOAD_CRS[EPSG27700 if q.crs == EPSG27700 else EPSG4326])


def outlines_frame(outlines: Iterable[dict], crs: str) -> gpd.GeoDataFrame:
    """Partnership outline features (:func:`geo_cs.features.partnership_outline`, in
    :func:`items_crs` of ``crs``) as a GeoDataFrame in ``crs``."""
    outlines = list(outlines)
    geometry = np.array([shapely.geometry.shape(o["geometry"]) if o["geometry"] else None
                         for o in outlines], dtype=object)
    return _frame([o["properties"] for o in outlines], PARTNERSHIP_PROPERTIES, geometry,
                  DOWNLOAD_CRS[crs])


_DTYPES = {str: object, int: "Int32", float: "Float64", bool: "boolean"}


def field_type(column: str, values: list) -> type:
    """A property's type in the files: :data:`FIELD_TYPES`'s, or for a property it does not
    know (one added to the items since) what its values are, text when in doubt."""
    known = FIELD_TYPES.get(column)
    if known is not None:
        return known
    present = [v for v in values if v is not None]
    for kind, fits in ((bool, lambda v: isinstance(v, bool)),
                       (int, lambda v: isinstance(v, int) and not isinstance(v, bool)),
                       (float, lambda v: isinstance(v, int | float) and not isinstance(v, bool))):
        if present and all(fits(v) for v in present):
            return kind
    return str


def _frame(rows: list[dict], columns: tuple[str, ...], geometry: np.ndarray, epsg: str) -> gpd.GeoDataFrame:
    # one type per property whatever the values: a column that is empty in this selection (no
    # intervals, nothing withheld) is still a number or a boolean in the file, not text
    data = {}
    for column in columns:
        values = [row.get(column) for row in rows]
        kind = field_type(column, values)
        data[column] = (pd.Series(values, dtype=object) if kind is str
                        else pd.array(values, dtype=_DTYPES[kind]))
    frame = pd.DataFrame(data, index=pd.RangeIndex(len(rows)))
    return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(geometry, index=frame.index), crs=epsg)


# -- writing -----------------------------------------------------------------------------------

def write_download(frame: gpd.GeoDataFrame, fmt: str, folder: Path, stem: str, about: str) -> Path:
    """Write ``frame`` into ``folder`` as ``stem.gpkg`` or ``stem.shp.zip`` (a zipped shapefile)
    and return its path. ``about`` says what the file holds (one line, for the GeoPackage
    layer's description and the shapefile's README.txt); the OGL attribution is added."""
    check_format(fmt)
    folder = Path(folder)
    if fmt == GPKG:
        return _write_gpkg(frame, folder / f"{stem}.{EXTENSIONS[GPKG]}", stem, about)
    return _write_shapefile_zip(frame, folder, stem, about)


def _write_gpkg(frame: gpd.GeoDataFrame, path: Path, layer: str, about: str) -> Path:
    import pyogrio

    pyogrio.write_dataframe(
        frame, path, layer=layer, driver="GPKG", geometry_type=GEOMETRY_TYPE,
        dataset_options={"VERSION": GPKG_VERSION},
        layer_options={"IDENTIFIER": layer, "DESCRIPTION": f"{about}. {OGL_ATTRIBUTION}"},
        layer_metadata={"attribution": OGL_ATTRIBUTION, "about": about})
    return path


def shapefile_fields(columns: Iterable[str]) -> dict[str, str]:
    """Each property's shapefile field name: :data:`SHAPEFILE_FIELDS`'s, or for one it does not
    know its first 10 characters, numbered if that name is taken.

    >>> list(shapefile_fields(["value_low", "estimated_share", "a_new_property", "a_new_propertx"]).values())
    ['val_low', 'est_share', 'a_new_prop', 'a_new_pro1']
    """
    out: dict[str, str] = {}
    for column in columns:
        name = SHAPEFILE_FIELDS.get(column) or column[:10]
        n = 0
        while name in out.values():
            n += 1
            name = f"{column[:10 - len(str(n))]}{n}"
        out[column] = name
    return out


def shapefile_frame(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """``frame`` as the shapefile stores it: fields renamed (:func:`shapefile_fields`), booleans
    as 1/0 integers (null stays null), text cut at :data:`DBF_TEXT_MAX` characters."""
    out = frame.copy()
    columns = [c for c in frame.columns if c != frame.geometry.name]
    for column in columns:
        dtype = frame[column].dtype
        if isinstance(dtype, pd.BooleanDtype | pd.Int32Dtype | pd.Int64Dtype):
            out[column] = frame[column].astype("Int32")
        elif pd.api.types.is_object_dtype(dtype):
            out[column] = frame[column].map(lambda v: v[:DBF_TEXT_MAX] if isinstance(v, str) else v)
    return out.rename(columns=shapefile_fields(columns))


def shapefile_readme(columns: Iterable[str], crs_code: str, about: str) -> str:
    """The README.txt of a zipped shapefile: what it holds, its CRS, each field's name and
    meaning, and the attribution."""
    units = "British National Grid, metres" if crs_code == "EPSG:27700" else "longitude/latitude, degrees"
    lines = [about, "", f"Coordinates: {crs_code} ({units}; the .prj file says so).",
             "Text is UTF-8 (the .cpg file says so). Booleans are 1 (yes) or 0 (no).",
             "An empty number is a value that is not there (withheld, not published, or no data): never 0.",
             "", "Fields (a shapefile's field names have at most 10 characters):", ""]
    for column, field in shapefile_fields(columns).items():
        renamed = f"  (the GeoPackage and the API call it {column})" if field != column else ""
        lines.append(f"  {field:<10}  {FIELD_TITLES.get(column, column)}{renamed}")
    lines += ["", OGL_ATTRIBUTION, ""]
    return "\n".join(lines)


#: The time stamped on every member of a zip: the same selection of the same data gives the
#: same bytes (an HTTP client reading the archive by byte ranges gets parts of one file).
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def _write_shapefile_zip(frame: gpd.GeoDataFrame, folder: Path, stem: str, about: str) -> Path:
    import pyogrio

    parts = folder / "shapefile"
    parts.mkdir()
    shapefile = shapefile_frame(frame)
    # ENCODING=UTF-8 writes the .cpg; the .prj is the CRS in ESRI's WKT (GDAL writes it)
    pyogrio.write_dataframe(shapefile, parts / f"{stem}.shp", layer=stem, driver="ESRI Shapefile",
                            encoding="UTF-8", geometry_type=GEOMETRY_TYPE)
    crs_code = f"EPSG:{frame.crs.to_epsg()}"
    readme = shapefile_readme([c for c in frame.columns if c != frame.geometry.name], crs_code, about)
    path = folder / f"{stem}.{EXTENSIONS[SHAPEFILE]}"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for member in sorted(parts.iterdir()):
            info = zipfile.ZipInfo(member.name, date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, member.read_bytes())
        info = zipfile.ZipInfo("README.txt", date_time=_ZIP_TIME)
        info.compress_type = zipfile.ZIP_DEFLATED
        archive.writestr(info, readme.encode("utf-8"))
    for member in parts.iterdir():
        member.unlink()
    parts.rmdir()
    return path
