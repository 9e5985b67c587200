"""Ward statistics coded to the ward edition of their year.

Ward boundaries change every year somewhere, and statistics come coded to the wards of their
own year: a Nomis claimant file for 2015-2017 uses the 2015 wards. GSS ward codes are reissued
whenever a ward's boundary changes, so a code that is in a held ward set *is* that ward. When
every code of the file is in a held ward set, the file is accepted on that set with a note in
the ingest report (the 2015 wards of Rhyl are its 2013 wards); when not, the codes that no held
set has are named (the first ten and how many), with how many of the file's codes each held set
does have.

:func:`choose_ward_edition` decides (pure); :func:`match_ward_editions` applies it to an
indicator file's cells, and is called once by :func:`geo_cs.ingest.indicators.ingest_indicator`.

Example
-------
>>> held = {"ward2013": HeldWardSet("ward2013", 2013, frozenset({"W05000170", "W05000171"}), True)}
>>> choice = choose_ward_edition("ward2015", 2015, {"W05000170"}, held)
>>> choice.target, choice.note is not None
('ward2013', True)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from geo_cs.errors import InputError
from geo_cs.geography import registry
from geo_cs.store import Store

#: How many missing codes an error lists.
SHOW_MISSING = 10

_HELD_WARD_SETS = """
SELECT a.set_id, any_value(g.vintage), list(a.code), count(a.area_m2) > 0
FROM areas a JOIN geography_sets g USING (set_id)
WHERE g.geography = 'ward'
GROUP BY a.set_id
"""


@dataclass(frozen=True)
class HeldWardSet:
    """A ward set the store holds codes of (with or without boundaries)."""

    set_id: str
    vintage: int
    codes: frozenset[str]
    has_boundaries: bool


@dataclass
class WardEdition:
    """Where a file's ward codes go: ``target`` (None when no held set has them all)."""

    target: str | None
    note: str | None = None
    missing: list[str] = field(default_factory=list)     # codes not in ``against``
    against: str | None = None                           # the declared set, or the closest held
    nowhere: int = 0                                      # codes in no held ward set at all
    held_counts: dict[str, int] = field(default_factory=dict)


def choose_ward_edition(
    declared: str, declared_vintage: int, codes: set[str], held: dict[str, HeldWardSet]
) -> WardEdition:
    """The held ward set a file's codes belong to.

    The declared set when it holds every code; otherwise the held set that does, preferring sets
    with boundaries, then the nearest edition to the declared one. None, with the missing codes
    (against the declared set if held, else the held set with most of them), when no set has
    them all.

    >>> held = {"ward2013": HeldWardSet("ward2013", 2013, frozenset({"A", "B"}), True),
    ...         "ward2019": HeldWardSet("ward2019", 2019, frozenset({"A", "C"}), False)}
    >>> choose_ward_edition("ward2013", 2013, {"A", "B"}, held).note is None
    True
    >>> choose_ward_edition("ward2013", 2013, {"A", "C"}, held).target
    'ward2019'
    >>> choice = choose_ward_edition("ward2015", 2015, {"A", "D", "E"}, held)
    >>> choice.target, choice.against, choice.missing, choice.nowhere
    (None, 'ward2013', ['D', 'E'], 2)
    """
    counts = {s: len(codes & h.codes) for s, h in sorted(held.items())}
    if declared in held and codes <= held[declared].codes:
        return WardEdition(declared, held_counts=counts)
    complete = [h for h in held.values() if codes <= h.codes]
    if complete:
        best = min(complete, key=lambda h: (not h.has_boundaries, abs(h.vintage - declared_vintage),
                                            h.set_id))
        kind = "held with boundaries" if best.has_boundaries else "codes known from a lookup"
        note = (
            f"ward edition: all {len(codes):,} ward codes of the file (declared {declared}) are "
            f"{best.set_id} codes ({kind}); GSS ward codes change with the ward, so these are "
            f"the same wards: stored on {best.set_id}"
        )
        return WardEdition(best.set_id, note, held_counts=counts)
    against = declared if declared in held else (
        max(held.values(), key=lambda h: (counts[h.set_id], h.has_boundaries)).set_id if held else None)
    reference = held[against].codes if against else frozenset()
    everywhere = frozenset().union(*(h.codes for h in held.values()))
    return WardEdition(None, missing=sorted(codes - reference), against=against,
                       nowhere=len(codes - everywhere), held_counts=counts)


def held_ward_sets(store: Store) -> dict[str, HeldWardSet]:
    """Every ward set with codes in the store."""
    return {s: HeldWardSet(s, int(v), frozenset(c), bool(g))
            for s, v, c, g in store.sql(_HELD_WARD_SETS).fetchall()}


def match_ward_editions(store: Store, cells: pd.DataFrame, code_column: str | None,
                        path: Path) -> list[str]:
    """Put each ward set's cells on the held ward set their codes belong to (``cells.set_id``
    is changed in place) and return the report's notes; raise naming the missing codes when no
    held set has them all. Sets of other geographies are left to the usual code check."""
    notes: list[str] = []
    reg = registry()
    held: dict[str, HeldWardSet] | None = None
    for set_id in sorted(cells["set_id"].unique()):
        geo_set = reg.get(set_id)
        if geo_set.geography != "ward":
            continue
        held = held if held is not None else held_ward_sets(store)
        rows = (cells["set_id"] == set_id).to_numpy()
        codes = set(cells.loc[rows, "code"])
        choice = choose_ward_edition(set_id, geo_set.vintage, codes, held)
        if choice.target is None:
            raise InputError(_missing_message(cells, rows, choice, set_id, len(codes), code_column, path))
        if choice.target != set_id:
            cells.loc[rows, "set_id"] = choice.target
        if choice.note:
            notes.append(choice.note)
    return notes


def _missing_message(cells: pd.DataFrame, rows: np.ndarray, choice: WardEdition, declared: str,
                     n_codes: int, code_column: str | None, path: Path) -> str:
    missing = choice.missing
    first = int(np.flatnonzero(rows & cells["code"].isin(missing[:1]).to_numpy())[0])
    shown = ", ".join(missing[:SHOW_MISSING]) + (", …" if len(missing) > SHOW_MISSING else "")
    held = "; ".join(f"{s} has {n:,}" for s, n in choice.held_counts.items())
    where = (f"are not {choice.against} codes" if choice.against else
             "cannot be checked: the store holds no ward set")
    return (
        f"{path}, row {cells['row'].iat[first]}, column {code_column or 'area code'!r}: "
        f"{len(missing):,} of the file's {n_codes:,} ward codes (declared {declared}) {where}: "
        f"{shown} ({len(missing):,} in all); {choice.nowhere:,} are in no held ward set"
        + (f" (of the file's codes, {held})" if held else "")
        + ". The file is coded to a ward edition the store does not hold: ingest that "
        "edition's boundaries, or a lookup listing its codes, first"
    )
