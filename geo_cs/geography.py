"""The geography registry: boundary sets, their code/name columns, nations and expected codes.

The registry is data (``boundaries/registry.yaml``), so adding a boundary set needs no code.

Example
-------
>>> from geo_cs.geography import registry
>>> reg = registry()
>>> reg.detect(["id", "LSOA11CD", "LSOA11NM", "geometry"]).set_id
'lsoa2011'
>>> nation_of("S01000215")
'S'
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from geo_cs.config import boundaries_dir, load_yaml
from geo_cs.errors import InputError, NotFoundError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

#: GSS code prefixes: the first letter is the nation; K covers GB/UK-wide codes.
_NATION_BY_PREFIX = {"E": "E", "W": "W", "S": "S", "N": "N"}


def nation_of(code: str) -> str | None:
    """The nation letter of a GSS code (E, W, S, N), or None for GB/UK-wide (K…) codes."""
    return _NATION_BY_PREFIX.get(code[:1].upper()) if code else None


@dataclass(frozen=True)
class GeographySet:
    """One boundary set: a geography type at one vintage (e.g. LSOA 2011)."""

    set_id: str
    geography: str
    vintage: int
    nations: tuple[str, ...]
    label: str
    code_columns: tuple[str, ...]
    name_columns: tuple[str, ...]
    expected_count: int | None = None
    expected_codes_file: Path | None = None
    #: False for a set that mixes editions (the 2014-2025 UK districts with start/end years):
    #: it cannot stand for one year's codes, so the district code history leaves it out
    one_edition: bool = True

    def expected_codes(self) -> frozenset[str] | None:
        """Every code of the complete set, when the registry ships a list for it."""
        if self.expected_codes_file is None or not self.expected_codes_file.exists():
            return None
        return _code_list(str(self.expected_codes_file), self.expected_codes_file.stat().st_mtime_ns)

    def find_column(self, columns: list[str], candidates: tuple[str, ...]) -> str | None:
        lowered = {c.lower(): c for c in columns}
        for candidate in candidates:
            if candidate.lower() in lowered:
                return lowered[candidate.lower()]
        return None


@dataclass(frozen=True)
class LookupLink:
    """How one pair of columns in a lookup CSV links two geography sets."""

    from_set: str
    from_col: str
    to_set: str
    to_col: str
    from_name: str | None = None
    to_name: str | None = None
    change_col: str | None = None
    optional: bool = False  # rows may leave the target empty (e.g. no region in Wales)


@dataclass(frozen=True)
class LookupFormat:
    """An official lookup CSV layout, recognised by the columns it requires."""

    lookup_id: str
    description: str
    requires: tuple[str, ...]
    links: tuple[LookupLink, ...] = ()
    district_changes: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Registry:
    sets: dict[str, GeographySet]
    lookups: tuple[LookupFormat, ...]

    def get(self, set_id: str) -> GeographySet:
        try:
            return self.sets[set_id]
        except KeyError:
            raise NotFoundError(
                f"unknown geography set {set_id!r}; known sets: {', '.join(sorted(self.sets))}"
            ) from None

    def by_type(self, geography: str, vintage: int) -> GeographySet:
        for s in self.sets.values():
            if s.geography == geography and s.vintage == vintage:
                return s
        known = sorted(f"{s.geography} {s.vintage}" for s in self.sets.values())
        raise NotFoundError(
            f"no geography set for {geography} {vintage}; known: {', '.join(known)}"
        )

    def detect(self, columns: list[str]) -> GeographySet | None:
        """The set whose code column appears in ``columns`` (first match in registry order)."""
        for s in self.sets.values():
            if s.find_column(columns, s.code_columns):
                return s
        return None

    def sets_listing(self, code: str, *, besides: str | None = None) -> list[str]:
        """The sets whose official list holds ``code`` (other than ``besides``): where a code
        refused by one set belongs, for the hint in the error."""
        return [s.set_id for s in self.sets.values()
                if s.set_id != besides and code in (s.expected_codes() or ())]

    def lookup_format(self, columns: list[str]) -> LookupFormat | None:
        """The most specific lookup layout whose required columns are all in ``columns``."""
        present = set(columns)
        matches = [f for f in self.lookups if set(f.requires) <= present]
        return max(matches, key=lambda f: len(f.requires)) if matches else None


def _parse(raw: dict[str, Any], root: Path) -> Registry:
    sets: dict[str, GeographySet] = {}
    for set_id, spec in raw.get("sets", {}).items():
        try:
            codes_file = spec.get("expected_codes")
            sets[set_id] = GeographySet(
                set_id=set_id,
                geography=spec["geography"],
                vintage=int(spec["vintage"]),
                nations=tuple(spec.get("nations", [])),
                label=spec.get("label", set_id),
                code_columns=tuple(spec.get("code_columns", [])),
                name_columns=tuple(spec.get("name_columns", [])),
                expected_count=spec.get("expected_count"),
                expected_codes_file=(root / codes_file) if codes_file else None,
                one_edition=bool(spec.get("one_edition", True)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"registry.yaml, set {set_id!r}: missing or bad field {exc}") from exc
    lookups = tuple(
        LookupFormat(
            lookup_id=item["id"],
            description=item.get("description", ""),
            requires=tuple(item["requires"]),
            links=tuple(
                LookupLink(
                    from_set=link["from"],
                    from_col=link["from_col"],
                    to_set=link["to"],
                    to_col=link["to_col"],
                    from_name=link.get("from_name"),
                    to_name=link.get("to_name"),
                    change_col=link.get("change_col"),
                    optional=bool(link.get("optional", False)),
                )
                for link in item.get("links", [])
            ),
            district_changes=item.get("district_changes", {}),
        )
        for item in raw.get("lookups", [])
    )
    return Registry(sets=sets, lookups=lookups)


def load_registry(path: Path | None = None) -> Registry:
    """Read a registry YAML file (default: ``boundaries/registry.yaml``)."""
    path = path or boundaries_dir() / "registry.yaml"
    return _parse(load_yaml(path) or {}, path.parent)


def registry() -> Registry:
    """The registry of the active ``boundaries/`` folder (cached per folder)."""
    return _cached_registry(boundaries_dir() / "registry.yaml")


@lru_cache
def _cached_registry(path: Path) -> Registry:
    return load_registry(path)


@lru_cache(maxsize=32)
def _code_list(path: str, mtime_ns: int) -> frozenset[str]:
    """A gzipped list of codes, one a line, read once per file version (an ingest checks a
    set's list several times: 54 reads of 35,000 codes in the demo's build)."""
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return frozenset(line.strip() for line in fh if line.strip())


def is_listed(codes: pd.Series, listed: frozenset[str] | set[str]) -> np.ndarray:
    """Whether each of ``codes`` is in ``listed``, as a boolean array (missing ones are not).

    A set look-up per code: pandas' ``isin`` on Arrow strings first copies the set into a list,
    40 ms for the 35,000 LSOA codes on every call.

    >>> import pandas as pd
    >>> is_listed(pd.Series(["E01000001", "S01000001", None]), frozenset({"E01000001"})).tolist()
    [True, False, False]
    """
    import numpy as np

    return np.fromiter((code in listed for code in codes.tolist()), dtype=bool, count=len(codes))


#: What the areas of a boundary set are called in a sentence (singular, plural), by the start
#: of the set's id. Small areas are the method's "neighbourhoods"; larger ones keep their own
#: name, so a constituency is never called a neighbourhood.
AREA_WORDS: tuple[tuple[str, str, str], ...] = (
    ("datazone", "neighbourhood", "neighbourhoods"),
    ("lsoa", "neighbourhood", "neighbourhoods"),
    ("oa", "neighbourhood", "neighbourhoods"),
    ("msoa", "area", "areas"),
    ("iz", "intermediate zone", "intermediate zones"),
    ("ward", "ward", "wards"),
    ("wpc", "constituency", "constituencies"),
    ("lad", "district", "districts"),
    ("rgn", "region", "regions"),
    ("region", "region", "regions"),
)


def area_words(set_id: str) -> tuple[str, str]:
    """(singular, plural) for the areas of ``set_id``.

    >>> area_words("datazone2011"), area_words("wpc2010")
    (('neighbourhood', 'neighbourhoods'), ('constituency', 'constituencies'))
    """
    for prefix, one, many in sorted(AREA_WORDS, key=lambda w: -len(w[0])):
        if set_id.startswith(prefix):
            return one, many
    return "area", "areas"
