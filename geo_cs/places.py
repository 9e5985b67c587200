"""Finding places offline, from the areas the store holds: search by name or code, and the
district and ward labels the web map draws as its light reference layer (no basemap is fetched).

Glasgow's wards of 2013 from the demo bundle:

>>> from geo_cs import Store
>>> from geo_cs.config import boundaries_dir
>>> from geo_cs.ingest import ingest_boundaries
>>> from geo_cs.places import search_areas, reference_labels
>>> store = Store.open(":memory:")
>>> _ = ingest_boundaries(store, [boundaries_dir() / "demo" / "boundaries" / "ward2013" / "S12000046.json"])
>>> found = search_areas(store, "Govan")
>>> found[["set_id", "code", "name"]].values.tolist()
[['ward2013', 'S13002645', 'Govan']]
>>> labels = reference_labels(store, found.loc[0, ["west", "south", "east", "north"]].tolist())
>>> "Govan" in set(labels["name"]) and len(labels) > 1        # the ward and its neighbours
True
>>> store.close()
"""

from __future__ import annotations

import re

import pandas as pd

from geo_cs.errors import InputError
from geo_cs.store import Store

#: Which sets a search looks in, most useful first; a set the store does not hold is skipped.
SEARCH_SETS = ("lad2013", "ward2013", "datazone2011", "lsoa2011", "lsoa2021", "datazone2001", "wpc2010")
#: The sets a postcode district is shown in, finest first: its extent is its small areas'.
POSTCODE_SETS = ("datazone2011", "lsoa2011", "lsoa2021", "datazone2001", "lsoa2001", "ward2013", "lad2013")
#: The sets of the reference layer's labels, and the least zoom their labels are drawn at.
REFERENCE_SETS = {"lad2013": 9, "ward2013": 12}

#: A postcode district (outward code): G51, NG7, EC1A, BT9.
POSTCODE_DISTRICT = re.compile(r"^[A-Z]{1,2}[0-9][0-9A-Z]?$")
#: A full postcode, one space or none: the district (outward code), then the inward code.
POSTCODE = re.compile(r"^([A-Z]{1,2}[0-9][0-9A-Z]?) ?([0-9][A-Z]{2})$")


def outward_code(postcode: str) -> str | None:
    """The postcode district of a full postcode (any case and spacing), or None if it is not one.

    >>> outward_code("G51 4TP"), outward_code("ng72rd"), outward_code("EC1A 1BB"), outward_code("G51")
    ('G51', 'NG7', 'EC1A', None)
    """
    compact = "".join(str(postcode).upper().split())
    match = POSTCODE.match(f"{compact[:-3]} {compact[-3:]}")
    return match.group(1) if match else None

_SEARCH_SQL = """
SELECT a.set_id, s.label AS set_label, a.code, a.name, a.xmin AS west, a.ymin AS south,
       a.xmax AS east, a.ymax AS north,
       CASE WHEN upper(a.code) = upper($q) THEN 0
            WHEN lower(a.name) = lower($q) THEN 1
            WHEN starts_with(lower(a.name), lower($q)) THEN 2 ELSE 3 END AS match_rank
FROM areas a JOIN geography_sets s USING (set_id)
WHERE list_contains($sets, a.set_id) AND a.xmin IS NOT NULL
  AND (upper(a.code) = upper($q) OR contains(lower(a.name), lower($q)))
ORDER BY match_rank, list_position($sets, a.set_id), a.name, a.code
LIMIT $limit
"""


# A postcode district as one hit: the areas of the most useful set holding its live postcodes,
# with their joint bounds (set_id ``postcode_district``, code = the district).
_POSTCODE_SQL = """
SELECT 'postcode_district' AS set_id,
       'postcode district: ' || sum(p.postcodes) || ' postcodes in ' || count(*) || ' of ' || s.label
           AS set_label,
       p.district AS code, p.district || ' postcode district' AS name,
       min(a.xmin) AS west, min(a.ymin) AS south, max(a.xmax) AS east, max(a.ymax) AS north,
       -1 AS match_rank, list(p.code ORDER BY p.code) AS codes
FROM postcode_districts p JOIN areas a USING (set_id, code) JOIN geography_sets s USING (set_id)
WHERE p.district = $district AND list_contains($sets, p.set_id) AND a.xmin IS NOT NULL
GROUP BY p.district, p.set_id, s.label
ORDER BY list_position($sets, p.set_id)
LIMIT 1
"""


def holds_postcodes(store: Store) -> bool:
    """Whether the store holds postcode districts (``geo-cs ingest postcodes``)."""
    return store.holds_rows("postcode_districts")


def search_areas(store: Store, text: str, limit: int = 12,
                 sets: tuple[str, ...] = SEARCH_SETS) -> pd.DataFrame:
    """Areas whose code is ``text`` or whose name contains it (case-insensitive): set_id,
    set_label, code, name, lon/lat bounds (west, south, east, north), match_rank — exact codes
    first, then exact names, names starting with it, and names containing it.

    A postcode district (``G51``), or a full postcode (``G51 4TP``, searched as its district),
    comes first when the store holds postcode districts: one hit covering the areas its
    postcodes are in (their codes in column ``codes``).

    Raises InputError for a query shorter than 2 characters.
    """
    query = " ".join(text.split())
    if len(query) < 2:
        raise InputError("search: type at least 2 characters of a name or a code")
    found = store.sql(_SEARCH_SQL, {"q": query, "sets": list(sets), "limit": limit}).df()
    district = postcode_district(query)
    if district and holds_postcodes(store):
        finest_first = [s for s in POSTCODE_SETS if s in sets] + [s for s in sets if s not in POSTCODE_SETS]
        hit = store.sql(_POSTCODE_SQL, {"district": district, "sets": finest_first}).df()
        if not hit.empty:
            hit["codes"] = hit["codes"].map(list)
            found = pd.concat([hit, found.assign(codes=None)], ignore_index=True).head(limit)
    return found


def postcode_district(text: str) -> str | None:
    """``text`` as a postcode district: itself if it is one (``ng7`` -> ``NG7``), the outward
    code of a full postcode (``G51 4TP`` -> ``G51``), else None."""
    compact = "".join(text.upper().split())
    if POSTCODE_DISTRICT.match(compact):
        return compact
    return outward_code(compact)


def search_note(text: str, found: pd.DataFrame, postcodes_held: bool = False) -> str | None:
    """What to tell a person whose search found nothing, when there is more to say than that:
    a postcode district cannot be found in a store that holds no postcode lookup (rather than
    answering "nothing found" as if the place did not exist)."""
    query = " ".join(text.split())
    district = postcode_district(query)
    if district and district != query.upper().replace(" ", "") and not found.empty \
            and found["set_id"].iloc[0] == "postcode_district":
        return f"{query} is a full postcode: its district, {district}, is shown"
    if found.empty and district:
        if postcodes_held:
            return f"No live postcodes of {district} are in this store's postcode directory"
        # words for the person searching; how to load a directory is the README's, for
        # whoever runs the server (issue 28: "load one with geo-cs ingest postcodes" reached staff)
        return (f"{query} looks like a postcode, but postcode search is not set up on this map "
                "(whoever runs it can load the ONS postcode directory). Search by an area, ward "
                "or district name or code instead")
    if found.empty:
        return f"Nothing found for {query}: try part of a name, or a full code"
    return None


_LABELS_SQL = """
SELECT a.set_id, a.code, a.name,
       ST_X(ST_PointOnSurface(a.geom_4326)) AS lon, ST_Y(ST_PointOnSurface(a.geom_4326)) AS lat
FROM areas a
WHERE a.set_id = $set_id AND a.geom_4326 IS NOT NULL AND a.name IS NOT NULL
  AND a.xmax >= $west AND a.xmin <= $east AND a.ymax >= $south AND a.ymin <= $north
ORDER BY a.name
"""


def reference_labels(store: Store, bounds: list[float] | tuple[float, ...],
                     sets: dict[str, int] | None = None) -> pd.DataFrame:
    """The names of the districts and wards around ``bounds`` (west, south, east, north,
    lon/lat) at a point inside each: set_id, code, name, lon, lat, min_zoom."""
    sets = REFERENCE_SETS if sets is None else sets
    west, south, east, north = bounds
    frames = []
    for set_id, min_zoom in sets.items():
        part = store.sql(_LABELS_SQL, {"set_id": set_id, "west": west, "south": south, "east": east,
                                       "north": north}).df()
        frames.append(part.assign(min_zoom=min_zoom))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=["set_id", "code", "name", "lon", "lat", "min_zoom"])


def area_names(store: Store, set_id: str) -> dict[str, str | None]:
    """Code -> name of every area of ``set_id`` the store holds (None where it has no name)."""
    return dict(store.sql("SELECT code, name FROM areas WHERE set_id = ?", [set_id]).fetchall())
