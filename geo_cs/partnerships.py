"""Partnerships as data: who belongs, when, and which small areas that means.

Definitions live in ``boundaries/partnerships/*.yaml`` (user-editable; no code change needed).
A partnership has phases — Nottingham became Nottingham and Nottinghamshire in April 2009 — each
with members given as codes of a stated geography (districts by default, or wards). Resolving a
partnership at a date turns its members into the small areas of any geography and vintage: through
official lookups where they link the two, otherwise by geometry (a small area belongs where its
point-on-surface falls), listing small areas that straddle a member boundary.

Example
-------
>>> from geo_cs.partnerships import load_partnerships
>>> cs = load_partnerships()
>>> cs["nottingham"].phase_at(date(2010, 1, 1)).name
'Nottingham and Nottinghamshire'
"""

from __future__ import annotations

import calendar
import itertools
import re
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import yaml

from geo_cs.config import boundaries_dir, load_yaml
from geo_cs.custom_areas import CustomArea, area_id, is_area_id, parse_area_id, read_area_file
from geo_cs.district_codes import codes_in_edition, current_overrides
from geo_cs.errors import InputError, NotFoundError
from geo_cs.geography import area_words, registry
from geo_cs.store import Store

GSS = re.compile(r"^[EWSNK]\d{8}$")
#: The City Strategy ran April 2007 - March 2011; a partnership without dates spans it.
DEFAULT_START, DEFAULT_END = date(2007, 4, 1), date(2011, 3, 31)
#: A small area straddles a member boundary when more than this share of it lies across.
DEFAULT_STRADDLE_TOLERANCE = 0.05


@dataclass(frozen=True)
class Phase:
    """One definition of a partnership, valid from ``start`` to ``end`` (inclusive)."""

    name: str
    start: date
    end: date
    members: tuple[str, ...]

    @property
    def version(self) -> str:
        """Identifies the definition used, for provenance: ``2009-04..2011-03``."""
        return f"{self.start:%Y-%m}..{self.end:%Y-%m}"


@dataclass(frozen=True)
class Partnership:
    id: str
    name: str
    nations: tuple[str, ...]
    kind: str
    confidence: str
    member_set: str
    phases: tuple[Phase, ...]
    note: str = ""
    source: str = ""

    def phase_at(self, when: date | None = None) -> Phase:
        """The definition in force at ``when``; None means the final one (end of initiative)."""
        if when is None:
            return self.phases[-1]
        for phase in self.phases:
            if phase.start <= when <= phase.end:
                return phase
        spans = ", ".join(p.version for p in self.phases)
        raise NotFoundError(f"partnership {self.id!r} has no definition at {when}; it spans {spans}")


def _month(text: Any, end: bool, where: str) -> date:
    match = re.fullmatch(r"(\d{4})-(\d{1,2})", str(text).strip())
    if not match:
        raise InputError(f"{where}: {text!r} is not a month (expected YYYY-MM)")
    y, m = int(match.group(1)), int(match.group(2))
    return date(y, m, calendar.monthrange(y, m)[1] if end else 1)


def _codes(members: Any, where: str) -> tuple[str, ...]:
    if not members:
        raise InputError(f"{where}: empty membership; list at least one member code")
    codes = tuple(str(c).strip() for c in members)
    bad = [c for c in codes if not GSS.match(c)]
    if bad:
        raise InputError(f"{where}: {', '.join(bad)} is not a GSS code (a letter and 8 digits)")
    if len(set(codes)) != len(codes):
        dup = sorted({c for c in codes if codes.count(c) > 1})
        raise InputError(f"{where}: member {', '.join(dup)} listed twice")
    return codes


def parse_partnership(raw: dict[str, Any], default_set: str, source: str) -> Partnership:
    """Check one YAML entry and build a :class:`Partnership` (errors name file and partnership)."""
    pid = raw.get("id")
    if not pid:
        raise InputError(f"{source}: a partnership has no id")
    where = f"{source}, partnership {pid!r}"
    member_set = raw.get("member_geography", default_set)
    if member_set not in registry().sets:
        raise InputError(f"{where}: member_geography {member_set!r} is not a known geography set")
    start = _month(raw["from"], False, where) if "from" in raw else DEFAULT_START
    end = _month(raw["to"], True, where) if "to" in raw else DEFAULT_END
    phases = []
    if "phases" in raw:
        for i, p in enumerate(raw["phases"]):
            pw = f"{where}, phase {i + 1}"
            phases.append(Phase(
                name=p.get("name", raw.get("name", pid)),
                start=_month(p["from"], False, pw) if "from" in p else start,
                end=_month(p["to"], True, pw) if "to" in p else end,
                members=_codes(p.get("members"), pw),
            ))
    else:
        phases.append(Phase(raw.get("name", pid), start, end, _codes(raw.get("members"), where)))
    phases.sort(key=lambda p: p.start)
    for p in phases:
        if p.end < p.start:
            raise InputError(f"{where}: phase {p.name!r} ends ({p.end}) before it starts ({p.start})")
    for a, b in itertools.pairwise(phases):
        if b.start <= a.end:
            raise InputError(
                f"{where}: phases overlap: {a.name!r} ({a.version}) and {b.name!r} ({b.version})"
            )
    nation = raw.get("nations", raw.get("nation", []))
    nations = tuple(nation if isinstance(nation, list) else [nation])
    return Partnership(
        id=pid, name=raw.get("name", pid), nations=nations, kind=raw.get("kind", "cs"),
        confidence=raw.get("confidence", "stated"), member_set=member_set,
        phases=tuple(phases), note=str(raw.get("note", "")).strip(), source=source,
    )


def load_partnerships(paths: list[Path] | None = None) -> dict[str, Partnership]:
    """Every partnership in ``boundaries/partnerships/*.yaml`` (or the given files), by id.

    Parsed again only when a file changes (its path, modification time and size): an analysis
    asks for them at every call, and parsing the YAML cost more than the analysis."""
    if paths is None:
        paths = sorted((boundaries_dir() / "partnerships").glob("*.yaml"))
    stamps = []
    for path in paths:
        try:
            stat = Path(path).stat()
            stamps.append((str(path), stat.st_mtime_ns, stat.st_size))
        except OSError:
            stamps.append((str(path), None, None))
    return dict(_load_partnerships(tuple(stamps)))


@lru_cache(maxsize=16)
def _load_partnerships(stamps: tuple[tuple[str, int | None, int | None], ...]) -> dict[str, Partnership]:
    result: dict[str, Partnership] = {}
    for path, _, _ in stamps:
        raw = load_yaml(path) or {}
        default_set = raw.get("member_geography", "lad2013")
        for entry in raw.get("partnerships", []):
            p = parse_partnership(entry, default_set, Path(path).name)
            if p.id in result:
                raise InputError(f"{path}: partnership id {p.id!r} is also defined in {result[p.id].source}")
            result[p.id] = p
    return result


def get_partnerships(ids: list[str] | None = None) -> list[Partnership]:
    """The named partnerships (all when ``ids`` is None), with a clear error for unknown ids.

    A custom area's id (``area-…``, :mod:`geo_cs.custom_areas`) is a partnership too: its
    members are its small areas."""
    known = load_partnerships()
    if not ids:
        return list(known.values())
    unknown = [i for i in ids if i not in known and not is_area_id(i)]
    if unknown:
        raise NotFoundError(f"unknown partnership {', '.join(unknown)}; known: {', '.join(known)}")
    return [custom_partnership(parse_area_id(i)) if is_area_id(i) else known[i] for i in ids]


def custom_partnership(area: CustomArea) -> Partnership:
    """The partnership of a custom area: one phase spanning the initiative, whose members are
    its small areas (so :func:`resolve` on its own set gives them back, checked against the
    store). Its name is the one given, else "Custom area (12 neighbourhoods)".

    >>> from geo_cs.custom_areas import CustomArea
    >>> p = custom_partnership(CustomArea("datazone2011", ("S01010206", "S01010207"), within="glasgow"))
    >>> p.name, p.member_set, p.kind, p.phase_at(None).members
    ('Custom area (2 neighbourhoods)', 'datazone2011', 'custom', ('S01010206', 'S01010207'))
    """
    if area.set_id not in registry().sets:
        raise InputError(f"custom area: {area.set_id!r} is not a known boundary set")
    one, many = area_words(area.set_id)
    name = area.name or f"Custom area ({len(area.codes)} {one if len(area.codes) == 1 else many})"
    nations = tuple(dict.fromkeys(_NATION_OF[c[0]] for c in area.codes if c[0] in _NATION_OF))
    return Partnership(
        id=area.id, name=name, nations=nations, kind="custom", confidence="stated",
        member_set=area.set_id, phases=(Phase(name, DEFAULT_START, DEFAULT_END, area.codes),),
        note=f"A custom area of {len(area.codes)} {many}"
             + (f" made on the map of {area.within}" if area.within else ""),
        source="custom area")


_NATION_OF = {"E": "England", "W": "Wales", "S": "Scotland", "N": "Northern Ireland"}


def compared_with(partnership_id: str) -> str | None:
    """The name of the whole a custom area's worst-performing areas are compared with, when it
    is not the area itself: the partnership it was made in. None for anything else."""
    if not is_area_id(partnership_id):
        return None
    area = parse_area_id(partnership_id)
    return get_partnerships([area.within])[0].phase_at(None).name if area.against_within else None


def rest_label(partnership_id: str) -> str:
    """What a gap chart's key calls the areas the worst are compared with: "Rest of the
    partnership", or a custom area's "Rest of Castlemilk estate" / "Rest of Glasgow"."""
    if not is_area_id(partnership_id):
        return "Rest of the partnership"
    return f"Rest of {compared_with(partnership_id) or get_partnerships([partnership_id])[0].name}"


def area_from_file(store: Store, path: Path, geographies: list[str] | tuple[str, ...] = ()) -> str:
    """The custom area's id that a file defines, for the CLI's ``--area-file``: a partnership
    file (``.yaml``: its first partnership's final members, of its ``member_geography``) or a
    CSV or text of small-area codes (the map's "codes (CSV)", any GIS's export). The codes'
    boundary set is the one of ``geographies`` that holds them all, else the one set the store
    holds them all in; codes it does not hold are named.

    >>> from geo_cs.config import boundaries_dir  # a partnership file (no store needed for it)
    >>> pid = area_from_file(None, boundaries_dir() / "partnerships" / "city_strategy_partnerships.yaml")
    >>> found = get_partnerships([pid])[0]
    >>> found.member_set, found.name, len(found.phase_at(None).members)
    ('lad2013', 'Birmingham, Coventry and the Black Country', 7)
    """
    path = Path(path)
    if path.suffix.lower() in (".yaml", ".yml"):
        raw = load_yaml(path) or {}
        entries = raw.get("partnerships") or []
        if not entries:
            raise InputError(f"{path}: no partnership in it (a partnership file lists them under "
                             "'partnerships:')")
        found = parse_partnership(entries[0], raw.get("member_geography", "lad2013"), path.name)
        return area_id(found.member_set, found.phase_at(None).members, name=found.name)
    codes, name = read_area_file(path)
    held = store.sql(
        "SELECT set_id, count(DISTINCT code) AS n FROM areas WHERE list_contains(?, code) GROUP BY set_id "
        "ORDER BY set_id", [codes]).fetchall()
    complete = [set_id for set_id, n in held if n == len(codes)]
    chosen = [s for s in complete if s in geographies] if geographies else complete
    if complete and not chosen:
        raise InputError(f"{path}: its codes are not {' or '.join(geographies)} areas: they are areas of "
                         f"{' and '.join(complete)}")
    if not chosen:
        best = max(held, key=lambda r: r[1], default=None)
        if best is None:
            raise InputError(f"{path}: none of its {len(codes)} codes ({', '.join(codes[:3])}…) is an "
                             "area the store holds; ingest their boundaries first")
        known = {r[0] for r in store.sql("SELECT code FROM areas WHERE set_id = ? AND list_contains(?, code)",
                                         [best[0], codes]).fetchall()}
        missing = [c for c in codes if c not in known]
        raise InputError(f"{path}: {len(missing)} of its codes ({', '.join(missing[:5])}) are not {best[0]} "
                         f"areas the store holds (the other {best[1]} are)")
    if len(chosen) > 1:
        raise InputError(f"{path}: its codes are areas of {' and '.join(chosen)}; say which with --geography")
    return area_id(chosen[0], codes, name=name)


def areas_csv(store: Store, partnership: Partnership, set_id: str) -> str:
    """The partnership's areas of ``set_id`` as a CSV any GIS reads and ``--area-file`` takes
    back: ``code``, ``name``, ``geography``."""
    codes = resolve(store, partnership, set_id).codes
    rows = store.sql("SELECT code, name FROM areas WHERE set_id = ? AND list_contains(?, code) ORDER BY code",
                     [set_id, codes]).df()
    rows["geography"] = set_id
    return rows.to_csv(index=False, lineterminator="\r\n")


def partnership_yaml(partnership: Partnership, *, link: str = "") -> str:
    """``partnership`` as a file for ``boundaries/partnerships/`` (or the CLI's ``--area-file``):
    the same fields :func:`load_partnerships` reads, a custom area's id made from its name
    (``area-…`` ids are for addresses), and a comment saying where it came from.

    >>> from geo_cs.custom_areas import CustomArea
    >>> text = partnership_yaml(custom_partnership(CustomArea("datazone2011", ("S01010206",), "Govan")))
    >>> print(text[text.index("partnerships:"):])
    partnerships:
    - id: govan
      name: Govan
      member_geography: datazone2011
      nations: [Scotland]
      members: [S01010206]
    <BLANKLINE>
    >>> parse_partnership(yaml.safe_load(text)["partnerships"][0], "lad2013", "x").phase_at(None).members
    ('S01010206',)
    """
    pid = partnership.id
    if partnership.kind == "custom":
        pid = re.sub(r"[^a-z0-9]+", "-", partnership.name.lower()).strip("-")[:64] or "custom-area"
    phase = partnership.phase_at(None)
    entry: dict[str, Any] = {"id": pid, "name": partnership.name, "member_geography": partnership.member_set,
                             "nations": list(partnership.nations), "members": list(phase.members)}
    if partnership.kind != "custom":
        entry.update({"kind": partnership.kind, "confidence": partnership.confidence})
    header = (f"# {partnership.name}: {len(phase.members)} areas of {partnership.member_set}, made on the "
              "geo-cs map.\n# Copy it into boundaries/partnerships/, or give it to geo-cs analyse/export "
              f"with --area-file.\n# {('Its map: ' + link) if link else ''}\n")
    return header + yaml.safe_dump({"partnerships": [entry]}, sort_keys=False, default_flow_style=None,
                                   allow_unicode=True, width=100)


# -- resolution to small areas ------------------------------------------------------------------

@dataclass
class Resolution:
    """The small areas of one partnership definition in one geography set."""

    partnership: Partnership
    phase: Phase
    set_id: str
    method: Literal["lookup", "geometry"]
    areas: pd.DataFrame                      # code, member
    straddling: pd.DataFrame = field(default_factory=pd.DataFrame)  # code, member, share_inside
    lookup_set: str | None = None
    #: members whose code differs in the lookup's edition: member -> the codes used there
    #: (Gateshead E08000037 -> E08000020 for a 2011 lookup), from the district code history
    renamed: dict[str, list[str]] = field(default_factory=dict)
    #: lookups passed over, and why (a member merged into a district with non-members)
    passed_over: dict[str, str] = field(default_factory=dict)

    @property
    def codes(self) -> list[str]:
        return self.areas["code"].tolist()


# Small area -> member through one or two lookup hops (LSOA -> district; LSOA -> ward -> district).
# With $native, a hop through another edition of the small areas (LSOA 2011 -> LSOA 2021 ->
# district 2022) is left out: that edition's links are best fit across its own boundary changes.
_LOOKUP_MEMBERS = """
WITH members AS (SELECT unnest($members::VARCHAR[]) AS member)
SELECT DISTINCT l.from_code AS code, l.to_code AS member
FROM lookup_links l JOIN members m ON l.to_code = m.member
WHERE l.from_set = $small AND l.to_set = $target
UNION
SELECT DISTINCT l1.from_code, l2.to_code
FROM lookup_links l1
JOIN lookup_links l2 ON l2.from_set = l1.to_set AND l2.from_code = l1.to_code
JOIN members m ON l2.to_code = m.member
JOIN geography_sets g ON g.set_id = l1.to_set
WHERE l1.from_set = $small AND l2.to_set = $target
  AND NOT ($native AND g.geography = $small_geography)
"""

# Candidate target sets of the members' geography that lookups reach from the small-area set.
_LOOKUP_TARGETS = """
SELECT DISTINCT l.to_set FROM lookup_links l
JOIN geography_sets g ON g.set_id = l.to_set
WHERE g.geography = ? AND (l.from_set = ? OR l.from_set IN (
    SELECT DISTINCT to_set FROM lookup_links WHERE from_set = ?))
"""

_GEOMETRY_MEMBERS = """
WITH members AS (
    SELECT code AS member, geom_27700 FROM areas
    WHERE set_id = ? AND code IN (SELECT unnest(?::VARCHAR[])) AND geom_27700 IS NOT NULL
)
SELECT s.code, m.member,
       ST_Contains(m.geom_27700, ST_PointOnSurface(s.geom_27700)) AS assigned,
       ST_Area(ST_Intersection(s.geom_27700, m.geom_27700)) / nullif(s.area_m2, 0) AS share_inside
FROM areas s JOIN members m ON ST_Intersects(s.geom_27700, m.geom_27700)
WHERE s.set_id = ? AND s.geom_27700 IS NOT NULL
"""


def check_members(store: Store, partnership: Partnership, phase: Phase) -> None:
    """Every member code must exist in the store's areas of the member geography."""
    known = {r[0] for r in store.sql(
        "SELECT code FROM areas WHERE set_id = ? AND code IN (SELECT unnest(?::VARCHAR[]))",
        [partnership.member_set, list(phase.members)]).fetchall()}
    unknown = [c for c in phase.members if c not in known]
    if unknown:
        raise InputError(
            f"{partnership.source}, partnership {partnership.id!r} ({phase.name}): member "
            f"{', '.join(unknown)} is not a {partnership.member_set} code in the store"
        )


def resolve(
    store: Store,
    partnership: Partnership,
    set_id: str,
    when: date | None = None,
    *,
    tolerance: float = DEFAULT_STRADDLE_TOLERANCE,
) -> Resolution:
    """The small areas of ``set_id`` that make up ``partnership`` at ``when`` (default: final).

    Lookups are used when one links ``set_id`` to a set of the members' geography holding
    every member code (directly or through one intermediate set, e.g. LSOA -> ward -> district);
    otherwise member and small-area geometries are overlaid in EPSG:27700.
    """
    phase = partnership.phase_at(when)
    # the district code history's user additions and vetoes change what members translate to
    key = ("resolve", partnership, phase, set_id, tolerance, store.data_version(),
           current_overrides().fingerprint)
    if key not in store.cache:
        store.cache[key] = _resolve(store, partnership, phase, set_id, tolerance)
    return store.cache[key]


def _district_codes_in(
    store: Store, members: list[str], member_year: int, target_year: int
) -> tuple[dict[str, list[str]], str]:
    """The members' codes in the ``target_year`` edition, and why that edition cannot stand for
    them (empty when it can): a member merged, by then, with a district that is not a member
    would bring in the non-member's small areas."""
    renamed = codes_in_edition(store, members, member_year, target_year)
    if target_year > member_year:
        targets = sorted({c for codes in renamed.values() for c in codes})
        for target, before in codes_in_edition(store, targets, target_year, member_year).items():
            outsiders = sorted(set(before) - set(members))
            if outsiders:
                return renamed, (f"{target} (in {target_year}) also covers {', '.join(outsiders)}, "
                                 "which is not a member")
    return renamed, ""


def _resolve(
    store: Store, partnership: Partnership, phase: Phase, set_id: str, tolerance: float
) -> Resolution:
    members = list(phase.members)
    member_geography = registry().get(partnership.member_set).geography
    if set_id == partnership.member_set:
        check_members(store, partnership, phase)
        areas = pd.DataFrame({"code": members, "member": members})
        return Resolution(partnership, phase, set_id, "lookup", areas, lookup_set=set_id)
    reg = registry()
    if (member_geography == "lad" and set_id in reg.sets and reg.get(set_id).geography == "lad"):
        # another edition of the districts (a survey's lad2020): the members' codes there come
        # from the district code history, not from a lookup or an overlay
        renamed, why = _district_codes_in(store, members, reg.get(partnership.member_set).vintage,
                                          reg.get(set_id).vintage)
        pairs = [(code, member) for member in members for code in renamed[member]]
        held = {r[0] for r in store.sql(
            "SELECT code FROM areas WHERE set_id = ? AND code IN (SELECT unnest(?::VARCHAR[]))",
            [set_id, [c for c, _ in pairs]]).fetchall()}
        if not why and held and {m for c, m in pairs if c in held} == set(members):
            areas = pd.DataFrame([(c, m) for c, m in pairs if c in held], columns=["code", "member"])
            areas = areas.sort_values(["code", "member"]).drop_duplicates("code")
            return Resolution(partnership, phase, set_id, "lookup", areas.reset_index(drop=True),
                              lookup_set=set_id,
                              renamed={m: cs for m, cs in renamed.items() if cs != [m]})
    targets = [r[0] for r in store.sql(_LOOKUP_TARGETS, [member_geography, set_id, set_id]).fetchall()]
    best: tuple[int, str, pd.DataFrame, dict[str, list[str]]] | None = None
    passed_over: dict[str, str] = {}
    small_geography = reg.get(set_id).geography if set_id in reg.sets else None
    # lookups of the small areas' own edition first; through another edition only if none
    # of those knows every member
    for native, target in [(n, t) for n in (True, False) for t in sorted(targets)]:
        if not native and best is not None:
            break
        # members given in one edition may carry other codes in the lookup's edition (Gateshead
        # E08000037 was E08000020 in 2011; Glasgow S12000046 is S12000049 from 2019): translate
        # them through the district code history
        renamed = {m: [m] for m in members}
        if member_geography == "lad" and target in reg.sets:
            renamed, why = _district_codes_in(store, members, reg.get(partnership.member_set).vintage,
                                              reg.get(target).vintage)
            if why:
                passed_over[target] = why
                continue
        back: dict[str, str] = {}
        for member in sorted(members):
            for code in renamed[member]:
                back.setdefault(code, member)
        found = store.sql(_LOOKUP_MEMBERS, {"members": list(back), "small": set_id, "target": target,
                                            "native": native, "small_geography": small_geography}).df()
        found["member"] = found["member"].map(back)
        if set(found["member"]) == set(members):
            # a best-fit lookup assigns each small area to one member; keep the first if not
            found = found.sort_values(["code", "member"]).drop_duplicates("code")
            # lookups can miss codes (the ONS LSOA 2001->2011 file lacks 4 LSOAs of 2011), so
            # of the lookups that know every member, take the one reaching the most areas
            if best is None or len(found) > best[0]:
                best = (len(found), target, found, renamed)
    if best is not None:
        renamed = {m: codes for m, codes in best[3].items() if codes != [m]}
        return Resolution(partnership, phase, set_id, "lookup", best[2].reset_index(drop=True),
                          lookup_set=best[1], renamed=renamed, passed_over=passed_over)
    check_members(store, partnership, phase)
    overlay = store.sql(_GEOMETRY_MEMBERS, [partnership.member_set, members, set_id]).df()
    if overlay.empty:
        raise InputError(
            f"partnership {partnership.id!r}: no {set_id} areas with boundaries overlap its "
            f"members, and no lookup links {set_id} to {partnership.member_set}; ingest the "
            "boundaries of both or a lookup between them"
        )
    assigned = overlay[overlay["assigned"]].drop_duplicates("code")[["code", "member"]]
    inside = overlay.groupby("code")["share_inside"].sum()
    straddle_codes = inside[(inside > tolerance) & (inside < 1 - tolerance)].index
    straddling = overlay[overlay["code"].isin(straddle_codes)][["code", "member", "share_inside"]]
    return Resolution(partnership, phase, set_id, "geometry",
                      assigned.sort_values("code").reset_index(drop=True),
                      straddling.sort_values(["code", "member"]).reset_index(drop=True))
