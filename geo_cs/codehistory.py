"""District code history: which district codes replaced which, and the evidence for it.

A district keeps its code until its boundary or status changes, and then gets a new one:
Gateshead was E08000020 until 2013 and is E08000037 since; Glasgow City was S12000046 until
2019 and is S12000049. Lookups publish districts in the codes of their own year (LSOA 2001 ->
district 2011, LSOA 2011 -> district 2019, Data Zone 2011 -> council 2020), so a partnership
defined by the codes of one year must be translated into another year's codes before its small
areas can be found.

The official list of changes covers 2014-2025 only (``lad_changes_2014_2025.csv``). The rest is
*inferred* here from membership: when the small areas of an old district (LSOA 2011 in district
2011) sit, unchanged, in a district of a later edition with another code (LSOA 2011 in district
2013), and the old code is gone, the code changed. Where the two editions are published on
different small areas, an unchanged small-area lookup joins them (LSOA 2001 -> 2011 rows with
``CHGIND = U``). Every change carries its evidence: shared members, the share of the old and of
the new district's members they are, and the change in the area those members cover.

This module is pure (pandas in, pandas out): :mod:`geo_cs.district_codes` feeds it from the
store and keeps the result. User additions and vetoes come from YAML (:func:`load_overrides`).

Example
-------
>>> import pandas as pd
>>> old = Membership("lad2011", 2011, "lsoa2011", "lookup", pd.DataFrame(
...     {"code": ["E01", "E02", "E03"], "district": ["E08000020"] * 2 + ["E08000021"],
...      "name": ["Gateshead"] * 2 + ["Newcastle upon Tyne"]}))
>>> new = Membership("lad2013", 2013, "lsoa2011", "point-on-surface", pd.DataFrame(
...     {"code": ["E01", "E02", "E03"], "district": ["E08000037"] * 2 + ["E08000021"],
...      "name": ["Gateshead"] * 2 + ["Newcastle upon Tyne"]}))
>>> changes = infer_changes(old, new)
>>> changes[["old_code", "new_code", "kind", "year_from", "year_to"]].to_dict("records")
[{'old_code': 'E08000020', 'new_code': 'E08000037', 'kind': 'recode', 'year_from': 2011, 'year_to': 2013}]
>>> equivalent_codes(changes, ["E08000037"], 2013, 2011)
{'E08000037': ['E08000020']}
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from geo_cs.config import load_yaml
from geo_cs.errors import InputError

#: A change is inferred when at least this share of the old district's comparable small areas
#: sit in one district of the later edition (boundaries are generalised and lookups best-fit,
#: so a few small areas may land next door).
DEFAULT_MIN_SHARE = 0.9
#: Official change types that replace a district (new_geo to a combined authority, E47, or a
#: county termination do not replace one).
OFFICIAL_KINDS = {"new_code": "recode", "new_geo": "recode", "merger": "merger"}
#: Prefixes of district codes: unitary (E06), non-metropolitan (E07), metropolitan (E08),
#: London boroughs (E09), Welsh unitary (W06), Scottish councils (S12), NI districts (N09).
DISTRICT_PREFIXES = ("E06", "E07", "E08", "E09", "W06", "S12", "N09")
KINDS = ("recode", "merger", "split")
GSS = re.compile(r"^[EWSNK]\d{8}$")

#: The registry's columns, in order (the store's table has the same ones).
COLUMNS = [
    "old_code", "old_name", "new_code", "new_name", "kind", "year_from", "year_to", "basis",
    "vetoed", "shared_members", "share_of_old", "share_of_new", "area_change", "evidence", "note",
]


@dataclass(frozen=True)
class Membership:
    """Which district of one edition each small area belongs to.

    ``members`` has columns ``code`` (small area), ``district`` and optionally ``name`` (the
    district's name); ``how`` says how it was found (``lookup``, ``point-on-surface``).
    """

    district_set: str
    vintage: int
    small_set: str
    how: str
    members: pd.DataFrame

    @property
    def label(self) -> str:
        return f"{self.district_set} on {self.small_set} ({self.how})"


def empty_registry() -> pd.DataFrame:
    """A registry with no rows and the right columns."""
    frame = pd.DataFrame({c: pd.Series(dtype=object) for c in COLUMNS})
    return frame.astype({"year_from": "Int64", "year_to": "Int64", "shared_members": "Int64",
                         "share_of_old": float, "share_of_new": float, "area_change": float,
                         "vetoed": bool})


def _names(membership: Membership) -> dict[str, str]:
    if "name" not in membership.members:
        return {}
    named = membership.members.dropna(subset=["name"]).drop_duplicates("district")
    return dict(zip(named["district"], named["name"], strict=True))


def infer_changes(
    old: Membership,
    new: Membership,
    unchanged: pd.DataFrame | None = None,
    *,
    small_area_m2: pd.Series | None = None,
    new_codes: set[str] | None = None,
    min_share: float = DEFAULT_MIN_SHARE,
    through: str | None = None,
) -> pd.DataFrame:
    """District code changes between two editions, inferred from unchanged membership.

    ``old`` and ``new`` give the district of each small area in each edition. When they are on
    different small-area sets, ``unchanged`` (columns ``from_code`` on ``old.small_set`` and
    ``to_code`` on ``new.small_set``: the lookup's ``U`` rows) joins them and only those small
    areas are compared (``through`` names that lookup in the evidence). ``small_area_m2`` (area
    by small-area code of ``new.small_set``) gives the area change; ``new_codes`` (every code of
    the new edition, default: those in ``new``) decides that an old code is gone.

    An old district whose comparable small areas lie, for at least ``min_share`` of them, in one
    new district with another code, while the old code is no longer used, is recorded as a
    ``recode`` (the new district is made of it alone, to ``min_share``) or a ``merger`` (the new
    one also takes in other districts). An old district spread over several new ones, none
    holding ``min_share`` of it, is recorded as a ``split`` to each new one holding at least
    5% of it. ``year_from``/``year_to`` are the two editions: the change came between them.

    >>> old = Membership("lad2011", 2011, "lsoa2001", "lookup", pd.DataFrame(
    ...     {"code": ["a", "b", "c"], "district": ["E07000097", "E07000097", "E07000098"]}))
    >>> new = Membership("lad2019", 2019, "lsoa2011", "lookup", pd.DataFrame(
    ...     {"code": ["A", "B", "C"], "district": ["E07000242", "E07000242", "E07000098"]}))
    >>> u = pd.DataFrame({"from_code": ["a", "b", "c"], "to_code": ["A", "B", "C"]})
    >>> infer_changes(old, new, u)[["old_code", "new_code", "kind", "share_of_old"]].to_dict("records")
    [{'old_code': 'E07000097', 'new_code': 'E07000242', 'kind': 'recode', 'share_of_old': 1.0}]
    """
    old_members = old.members[["code", "district"]].drop_duplicates("code")
    new_members = new.members[["code", "district"]].drop_duplicates("code")
    if old.small_set != new.small_set:
        if unchanged is None:
            raise ValueError(
                f"{old.label} and {new.label} are on different small areas: give the unchanged "
                "links between them"
            )
        old_members = old_members.merge(
            unchanged[["from_code", "to_code"]].drop_duplicates("from_code"),
            left_on="code", right_on="from_code",
        )[["to_code", "district"]].rename(columns={"to_code": "code"})
    both = old_members.merge(new_members, on="code", suffixes=("_old", "_new"))
    if both.empty:
        return empty_registry()
    pairs = both.groupby(["district_old", "district_new"], as_index=False).agg(shared=("code", "size"))
    pairs["old_total"] = pairs.groupby("district_old")["shared"].transform("sum")
    pairs["new_total"] = pairs.groupby("district_new")["shared"].transform("sum")
    pairs["share_of_old"] = pairs["shared"] / pairs["old_total"]
    pairs["share_of_new"] = pairs["shared"] / pairs["new_total"]
    if small_area_m2 is not None:
        area = both.assign(m2=both["code"].map(small_area_m2))
        old_m2 = area.groupby("district_old")["m2"].sum(min_count=1)
        new_m2 = area.groupby("district_new")["m2"].sum(min_count=1)
        area["missing"] = area["m2"].isna()
        complete_old = ~area.groupby("district_old")["missing"].any()
        complete_new = ~area.groupby("district_new")["missing"].any()
        ratio = (pairs["district_new"].map(new_m2) / pairs["district_old"].map(old_m2)) - 1
        known = pairs["district_old"].map(complete_old) & pairs["district_new"].map(complete_new)
        pairs["area_change"] = ratio.where(known.astype(bool))
    else:
        pairs["area_change"] = float("nan")
    still_used = set(new_codes) if new_codes is not None else set(new_members["district"])
    gone = ~pairs["district_old"].isin(still_used)
    moved = gone & (pairs["district_old"] != pairs["district_new"])
    main = moved & (pairs["share_of_old"] >= min_share)
    has_main = pairs.loc[main, "district_old"].unique()
    split = moved & (pairs["share_of_old"] >= 0.05) & ~pairs["district_old"].isin(has_main)
    chosen = pairs[main | split].copy()
    is_main = main[main | split].to_numpy()
    chosen["kind"] = np.where(~is_main, "split",
                              np.where(chosen["share_of_new"] >= min_share, "recode", "merger"))
    evidence = f"inferred: {old.label} vs {new.label}"
    if old.small_set != new.small_set:
        evidence += f", joined by the unchanged links of {through or 'the small-area lookup'}"
    old_names, new_names = _names(old), _names(new)
    result = pd.DataFrame({
        "old_code": chosen["district_old"], "old_name": chosen["district_old"].map(old_names),
        "new_code": chosen["district_new"], "new_name": chosen["district_new"].map(new_names),
        "kind": chosen["kind"], "year_from": old.vintage, "year_to": new.vintage,
        "basis": "inferred", "vetoed": False, "shared_members": chosen["shared"],
        "share_of_old": chosen["share_of_old"], "share_of_new": chosen["share_of_new"],
        "area_change": chosen["area_change"], "evidence": evidence, "note": None,
    })
    return _typed(result)


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    out = empty_registry()
    if frame.empty:
        return out
    frame = frame.reindex(columns=COLUMNS)
    return pd.concat([out, frame], ignore_index=True).astype(out.dtypes.to_dict()).sort_values(
        ["year_to", "old_code", "new_code"]).reset_index(drop=True)


def official_changes(rows: pd.DataFrame, source: str = "lad_changes lookup") -> pd.DataFrame:
    """Changes from the official district changes list (columns ``old_code``, ``new_code``,
    ``type``, ``year`` and optionally ``old_name``, ``new_name``): mergers and new codes of
    districts; combined authorities (E47) and county terminations are not district changes.

    >>> rows = pd.DataFrame({"old_code": ["S12000046", "E08000021"], "new_code": ["S12000049", "E47000011"],
    ...                      "type": ["new_geo", "new_geo"], "year": [2019, 2018]})
    >>> official_changes(rows)[["old_code", "new_code", "kind", "year_to"]].to_dict("records")
    [{'old_code': 'S12000046', 'new_code': 'S12000049', 'kind': 'recode', 'year_to': 2019}]
    """
    rows = rows.dropna(subset=["new_code"])
    keep = (rows["type"].isin(list(OFFICIAL_KINDS))
            & rows["old_code"].str[:3].isin(DISTRICT_PREFIXES)
            & rows["new_code"].str[:3].isin(DISTRICT_PREFIXES))
    rows = rows[keep]
    result = pd.DataFrame({
        "old_code": rows["old_code"], "old_name": rows.get("old_name"),
        "new_code": rows["new_code"], "new_name": rows.get("new_name"),
        "kind": rows["type"].map(OFFICIAL_KINDS), "year_from": pd.NA,
        "year_to": rows["year"].astype(int), "basis": "official", "vetoed": False,
        "evidence": f"official: {source}, " + rows["type"].astype(str) + " from "
                    + rows["year"].astype(str),
        "note": None,
    })
    return _typed(result)


def combine(inferred: list[pd.DataFrame], official: pd.DataFrame | None = None) -> pd.DataFrame:
    """One registry from inferred and official changes.

    The same change inferred from several pairs of editions is kept once, with the narrowest
    window of years; an inferred change the official list also records keeps the official year
    and the inferred evidence (basis ``official+inferred``)."""
    frames = [f for f in inferred if not f.empty]
    registry = empty_registry()
    if frames:
        allinf = pd.concat(frames, ignore_index=True)
        allinf["width"] = allinf["year_to"] - allinf["year_from"]
        registry = _typed(allinf.sort_values(["width", "shared_members"], ascending=[True, False])
                          .drop_duplicates(["old_code", "new_code"]).drop(columns="width"))
    if official is None or official.empty:
        return registry
    key = ["old_code", "new_code"]
    official, inferred = official.set_index(key), registry.set_index(key)
    both = official.index.intersection(inferred.index)
    confirmed = official.loc[both].copy()
    # the membership evidence of the inference; the year of the official list, which dates the
    # change exactly where the editions only bracket it
    for column in ("kind", "shared_members", "share_of_old", "share_of_new", "area_change"):
        confirmed[column] = inferred.loc[both, column]
    for column in ("old_name", "new_name"):
        confirmed[column] = confirmed[column].fillna(inferred.loc[both, column])
    confirmed["evidence"] = confirmed["evidence"] + "; " + inferred.loc[both, "evidence"]
    confirmed["basis"] = "official+inferred"
    parts = [official.drop(both), confirmed, inferred.drop(both)]
    return _typed(pd.concat([p for p in parts if not p.empty]).reset_index())


def narrow_years(registry: pd.DataFrame, editions: dict[str, tuple[int, frozenset[str]]]) -> pd.DataFrame:
    """Bracket each inferred change between the closest editions whose codes show it: the last
    edition holding the old code and not the new, the first holding the new and not the old.

    ``editions`` maps each district set to (vintage, its codes). Membership may only be
    comparable between 2011 and 2019 while the 2013 districts' codes (from their boundaries)
    already show Gateshead as E08000037: the change is then dated 2011-2013.

    >>> reg = pd.DataFrame({"old_code": ["E08000020"], "new_code": ["E08000037"], "year_from": [2011],
    ...                     "year_to": [2019], "basis": ["inferred"], "evidence": ["inferred: …"]})
    >>> eds = {"lad2013": (2013, frozenset({"E08000037"})), "lad2011": (2011, frozenset({"E08000020"}))}
    >>> narrow_years(reg, eds)[["year_from", "year_to"]].values.tolist()
    [[2011, 2013]]
    """
    out = registry.copy()
    for i, row in out[out["basis"] == "inferred"].iterrows():
        low, high = int(row["year_from"]), int(row["year_to"])
        shown = []
        for set_id, (vintage, codes) in sorted(editions.items(), key=lambda e: e[1][0]):
            if not low < vintage < high:
                continue
            if row["new_code"] in codes and row["old_code"] not in codes:
                high = vintage
                shown.append(set_id)
                break
            if row["old_code"] in codes and row["new_code"] not in codes:
                low = vintage
                shown.append(set_id)
        if shown:
            out.loc[i, ["year_from", "year_to"]] = [low, high]
            out.loc[i, "evidence"] = f"{row['evidence']}; dated by the codes of {', '.join(shown)}"
    return out


# -- user additions and vetoes ------------------------------------------------------------------

@dataclass(frozen=True)
class Overrides:
    """Changes a user adds or vetoes (``boundaries/code_changes.yaml``)."""

    source: str
    add: pd.DataFrame       # registry rows, basis "user"
    veto: pd.DataFrame      # old_code, new_code, note, entry

    @cached_property
    def fingerprint(self) -> str:
        """What the additions and vetoes are, hashed (once: resolutions key their caches on it)."""
        text = self.add.to_csv(index=False) + self.veto.to_csv(index=False)
        return hashlib.sha1(text.encode()).hexdigest()[:12]


def _field(entry: dict[str, Any], key: str, where: str, *, required: bool = True) -> Any:
    if key not in entry or entry[key] in (None, ""):
        if required:
            raise InputError(f"{where}: field {key!r} is missing (expected a district code)"
                             if key in ("old", "new") else f"{where}: field {key!r} is missing")
        return None
    return entry[key]


def _code(entry: dict[str, Any], key: str, where: str) -> str:
    value = str(_field(entry, key, where)).strip()
    if not GSS.match(value):
        raise InputError(f"{where}, field {key!r}: {value!r} is not a GSS code (a letter and 8 digits)")
    return value


def parse_overrides(raw: Any, source: str) -> Overrides:
    """Check the YAML of additions and vetoes; errors name the file, entry, field and value.

    >>> o = parse_overrides({"add": [{"old": "E08000020", "new": "E08000037", "year": 2013}],
    ...                      "veto": [{"old": "E07000097", "new": "E07000242"}]}, "code_changes.yaml")
    >>> o.add[["old_code", "new_code", "kind", "year_to", "basis"]].to_dict("records")
    [{'old_code': 'E08000020', 'new_code': 'E08000037', 'kind': 'recode', 'year_to': 2013, 'basis': 'user'}]
    """
    raw = raw or {}
    if not isinstance(raw, dict):
        raise InputError(f"{source}: expected a mapping with 'add' and/or 'veto' lists, "
                         f"found {type(raw).__name__}")
    unknown = sorted(set(raw) - {"add", "veto"})
    if unknown:
        raise InputError(f"{source}: unknown section {', '.join(map(repr, unknown))}; "
                         "expected 'add' and/or 'veto'")
    added, vetoed = [], []
    for section, out in (("add", added), ("veto", vetoed)):
        entries = raw.get(section) or []
        if not isinstance(entries, list):
            raise InputError(f"{source}, section {section!r}: expected a list of entries")
        for i, entry in enumerate(entries, start=1):
            where = f"{source}, {section} entry {i}"
            if not isinstance(entry, dict):
                raise InputError(f"{where}: expected a mapping with old, new, … found {entry!r}")
            old, new = _code(entry, "old", where), _code(entry, "new", where)
            if old == new:
                raise InputError(f"{where}: old and new are the same code {old!r}")
            note = str(entry.get("note") or "").strip() or None
            if section == "veto":
                out.append({"old_code": old, "new_code": new, "note": note, "entry": i})
                continue
            year = _field(entry, "year", where)
            try:
                year = int(year)
            except (TypeError, ValueError):
                raise InputError(f"{where}, field 'year': {year!r} is not a year") from None
            if not 1970 <= year <= 2100:
                raise InputError(f"{where}, field 'year': {year} is not a plausible year (1970-2100)")
            kind = str(entry.get("kind", "recode"))
            if kind not in ("recode", "merger"):
                raise InputError(f"{where}, field 'kind': {kind!r}, expected recode or merger")
            out.append({
                "old_code": old, "old_name": entry.get("old_name"), "new_code": new,
                "new_name": entry.get("new_name"), "kind": kind, "year_from": pd.NA,
                "year_to": year, "basis": "user", "vetoed": False,
                "evidence": f"user: {source}, add entry {i}", "note": note,
            })
    veto = pd.DataFrame(vetoed, columns=["old_code", "new_code", "note", "entry"])
    return Overrides(source, _typed(pd.DataFrame(added)), veto)


def load_overrides(path: Path | None) -> Overrides:
    """Read the YAML of additions and vetoes (none when ``path`` is None or does not exist)."""
    if path is None or not Path(path).exists():
        return Overrides(str(path or ""), empty_registry(),
                         pd.DataFrame(columns=["old_code", "new_code", "note", "entry"]))
    return parse_overrides(load_yaml(path), str(path))


def apply_overrides(registry: pd.DataFrame, overrides: Overrides) -> pd.DataFrame:
    """The registry with the user's additions (basis ``user``) and vetoes (``vetoed`` true,
    the row kept so that what was set aside stays visible). A veto of a change the registry
    does not hold is an error naming the entry: it would otherwise silently do nothing."""
    out = registry.copy()
    if not overrides.add.empty:
        added = overrides.add
        # a user's addition replaces what the data said about the same pair
        out = out[~out.set_index(["old_code", "new_code"]).index.isin(
            added.set_index(["old_code", "new_code"]).index)]
        out = pd.concat([out, added], ignore_index=True)
    for row in overrides.veto.itertuples(index=False):
        hit = (out["old_code"] == row.old_code) & (out["new_code"] == row.new_code)
        if not hit.any():
            known = out.loc[out["old_code"] == row.old_code, "new_code"].tolist()
            hint = f"; {row.old_code} is recorded as changing to {', '.join(known)}" if known else ""
            raise InputError(
                f"{overrides.source}, veto entry {row.entry}: no change {row.old_code} -> "
                f"{row.new_code} in the registry to veto{hint}"
            )
        out.loc[hit, "vetoed"] = True
        out.loc[hit, "note"] = row.note or f"vetoed in {overrides.source}, entry {row.entry}"
    return _typed(out)


# -- using the registry ---------------------------------------------------------------------------

def equivalent_codes(
    registry: pd.DataFrame, codes: list[str], from_year: int, to_year: int,
    kinds: tuple[str, ...] = ("recode", "merger"),
) -> dict[str, list[str]]:
    """For each district code in use in ``from_year``, the code(s) its area had in ``to_year``.

    Forward in time a code follows its recodes and mergers (one code); backward it follows them
    in reverse (a merged district goes back to every district it was made of). A change counts
    when its ``year_to`` (the first year, or edition, with the new code) lies between the two
    years; vetoed rows and splits are not followed.

    >>> reg = pd.DataFrame({"old_code": ["A", "B", "C"], "new_code": ["B", "D", "D"],
    ...     "kind": ["recode", "merger", "merger"], "year_to": [2013, 2019, 2019], "vetoed": False})
    >>> equivalent_codes(reg, ["A", "D"], 2011, 2020)
    {'A': ['D'], 'D': ['D']}
    >>> equivalent_codes(reg, ["D"], 2020, 2011)
    {'D': ['A', 'C']}
    """
    usable = registry[registry["kind"].isin(kinds) & ~registry["vetoed"].astype(bool)]
    steps = list(zip(usable["old_code"], usable["new_code"], usable["year_to"].astype(int), strict=True))
    result: dict[str, list[str]] = {}
    for code in codes:
        frontier, found = [(code, from_year)], set()
        seen: set[str] = set()
        while frontier:
            current, since = frontier.pop()
            if current in seen:
                found.add(current)
                continue
            seen.add(current)
            if to_year >= from_year:
                nexts = sorted((y, new) for old, new, y in steps if old == current and since < y <= to_year)
                moves = [(new, y) for y, new in nexts[:1]]
            else:
                moves = [(old, y - 1) for old, new, y in steps if new == current and to_year < y <= since]
            if moves:
                frontier.extend(moves)
            else:
                found.add(current)
        result[code] = sorted(found)
    return result


def related_changes(registry: pd.DataFrame, codes: list[str]) -> pd.DataFrame:
    """The changes linked to ``codes``, followed both ways through the chain (asking for
    E08000037 also shows E08000020 -> E08000037 and what E08000037 became).

    >>> reg = pd.DataFrame({"old_code": ["A", "B", "X"], "new_code": ["B", "C", "Y"]})
    >>> related_changes(reg, ["B"])["old_code"].tolist()
    ['A', 'B']
    """
    wanted, grew = set(codes), True
    while grew:
        hit = registry["old_code"].isin(wanted) | registry["new_code"].isin(wanted)
        linked = set(registry.loc[hit, "old_code"]) | set(registry.loc[hit, "new_code"])
        grew = not linked <= wanted
        wanted |= linked
    return registry[registry["old_code"].isin(wanted) | registry["new_code"].isin(wanted)]


def years_label(year_from: Any, year_to: Any) -> str:
    """``2011–2013`` when the change is bracketed by two editions, ``2019`` when dated."""
    if pd.isna(year_from):
        return str(int(year_to))
    return f"{int(year_from)}–{int(year_to)}"
