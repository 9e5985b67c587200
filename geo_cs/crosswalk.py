"""Crosswalks between geography vintages, and series harmonised onto one geography.

A crosswalk is a table of (source area, target area, weight): the share of the source's counts
that belongs to the target, the weights of each source summing to 1. It is built

* from an official lookup (LSOA 2001→2011→2021 with change indicators, Data Zone 2001↔2011 pairs),
  read in either direction: a source linked to one target gets weight 1 (U unchanged, M merged);
  a source linked to several (S split, X irregular, the many-to-many Data Zone pairs) is split by
  the targets' population when a population layer on the target geography is given, else by the
  area of overlap (EPSG:27700), else equally — the method is recorded on each link;
* from geometry alone, where no lookup exists: every overlap in EPSG:27700, slivers below a
  tolerance ignored and counted;
* by composition (2001 → 2011 → 2021).

:func:`harmonise` then carries an indicator onto the target geography: counts are reallocated by
the weights, rates recomputed from reallocated numerators and denominators; a rate without a
denominator is carried only with an explicit population weight (an approximation, documented on
the function). Each target value records its *apportioned share*, so maps and tables can mark
estimates: for counts, the fraction that reached the target from split sources (weight < 1;
whole sources merged into one target are exact); for carried rates, the fraction of the weight
that came through links other than one-to-one.

Example
-------
SIMD 2012 (on the 2001 data zones) carried to the 2011 zones through NRS's lookup, a split zone
shared out by the 2011 zones' working-age population (all from the demo bundle):

>>> from geo_cs import Store
>>> from geo_cs.config import boundaries_dir
>>> from geo_cs.crosswalk import build_crosswalk, harmonise
>>> from geo_cs.ingest import ingest_indicator, ingest_lookup, load_spec
>>> demo = boundaries_dir() / "demo"
>>> store = Store.open(":memory:")
>>> _ = ingest_lookup(store, demo / "lookups" / "dz01_dz11.csv")
>>> _ = ingest_indicator(store, demo / "indicators" / "population2020_dz11_scotland.csv",
...                      load_spec("population2020_dz11"))
>>> _ = ingest_indicator(store, demo / "indicators" / "simd2012_scotland_dz01_indicators.csv",
...                      load_spec("simd2012"))
>>> crosswalk = build_crosswalk(store, "datazone2001", "datazone2011",
...                             population="population2020_dz11.working_age_population")
>>> crosswalk.basis, crosswalk.sources, crosswalk.targets
('official lookup', 1417, 1535)
>>> print("\\n".join(crosswalk.lines()[1:]))
  links by type: M 217, S 62, U 733, X 1,087
  weights by: population 1,149, single 950
  weights of each source sum to 1 (largest error 1.1e-16)
>>> report = harmonise(store, "simd2012.employment_deprived", "datazone2011")
>>> report.totals_before == report.totals_after == {"simd2012": 124470.0}
True
>>> round(report.apportioned_share, 3)          # the share that came through split zones
0.396
>>> store.close()
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
import shapely

from geo_cs.errors import InputError, NotFoundError
from geo_cs.panels import drop_prepared
from geo_cs.store import Store

#: Overlaps smaller than this share of the source area are slivers from generalised boundaries.
DEFAULT_SLIVER_TOLERANCE = 0.001
#: Weights of one source must sum to 1 within this.
WEIGHT_SUM_TOLERANCE = 1e-9
REVERSE_CHANGE = {"S": "M", "M": "S", "U": "U", "X": "X"}


@dataclass
class CrosswalkReport:
    crosswalk_id: str
    from_set: str
    to_set: str
    basis: str
    links_by_type: dict[str, int] = field(default_factory=dict)
    links_by_method: dict[str, int] = field(default_factory=dict)
    sources: int = 0
    targets: int = 0
    sources_without_target: list[str] = field(default_factory=list)
    targets_without_source: list[str] = field(default_factory=list)
    slivers_ignored: int = 0
    max_weight_sum_error: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)

    def lines(self) -> list[str]:
        out = [
            f"{self.crosswalk_id}: {sum(self.links_by_type.values()):,} links from "
            f"{self.sources:,} {self.from_set} areas to {self.targets:,} {self.to_set} areas "
            f"({self.basis})"
        ]
        out.append(
            "  links by type: " + _listing(self.links_by_type)
        )
        out.append(
            "  weights by: " + _listing(self.links_by_method)
        )
        out.append(f"  weights of each source sum to 1 (largest error {self.max_weight_sum_error:.1e})")
        for label, codes in (
            ("source codes with no target", self.sources_without_target),
            ("target codes with no source", self.targets_without_source),
        ):
            if codes:
                shown = ", ".join(codes[:10]) + (f", … ({len(codes):,} in all)" if len(codes) > 10 else "")
                out.append(f"  {label}: {shown}")
        if self.slivers_ignored:
            out.append(f"  slivers ignored (overlap below tolerance): {self.slivers_ignored:,}")
        return out


# -- candidate links ----------------------------------------------------------------------------

_LOOKUP_PAIRS = """
SELECT DISTINCT from_code, to_code, coalesce(change_ind, 'pair') AS link_type
FROM lookup_links WHERE from_set = $a AND to_set = $b AND to_code IS NOT NULL
UNION
SELECT DISTINCT to_code, from_code,
       CASE change_ind WHEN 'S' THEN 'M' WHEN 'M' THEN 'S' ELSE coalesce(change_ind, 'pair') END
FROM lookup_links WHERE from_set = $b AND to_set = $a AND to_code IS NOT NULL
"""

# Overlap of linked pairs, computed only where a source has several targets (the rest are 1:1).
_LINK_WEIGHTS = """
WITH pairs AS (
    SELECT p.*, count(*) OVER (PARTITION BY from_code) AS n_targets FROM xw_pairs p
),
pop AS (
    SELECT code, arg_max(value, p.start_date) AS pop
    FROM observations o JOIN periods p USING (period_id)
    WHERE o.indicator_id = $population AND o.set_id = $b AND o.value IS NOT NULL
    GROUP BY code
),
measured AS (
    SELECT pairs.*, pop.pop,
           -- the geometric path has measured every overlap already: never intersect twice
           CASE WHEN known_overlap IS NOT NULL THEN known_overlap
                WHEN n_targets > 1 AND s.geom_27700 IS NOT NULL AND t.geom_27700 IS NOT NULL
                THEN ST_Area(ST_Intersection(s.geom_27700, t.geom_27700)) END AS overlap,
           t.area_m2 AS target_area
    FROM pairs
    LEFT JOIN areas s ON s.set_id = $a AND s.code = pairs.from_code
    LEFT JOIN areas t ON t.set_id = $b AND t.code = pairs.to_code
    LEFT JOIN pop ON pop.code = pairs.to_code
),
raw AS (
    SELECT *,
        CASE
            WHEN n_targets = 1 THEN 'single'
            WHEN bool_and(pop IS NOT NULL) OVER (PARTITION BY from_code) THEN 'population'
            WHEN bool_and(overlap IS NOT NULL) OVER (PARTITION BY from_code)
                 AND sum(overlap) OVER (PARTITION BY from_code) > 0 THEN 'area'
            ELSE 'equal'
        END AS method
    FROM measured
),
weighted AS (
    SELECT *,
        CASE method
            WHEN 'single' THEN 1.0
            -- a target's population, times the share of the target inside this source when
            -- geometry tells it (a split target lies wholly inside, so the share is 1)
            WHEN 'population' THEN pop * coalesce(least(overlap / nullif(target_area, 0), 1), 1)
            WHEN 'area' THEN overlap
            ELSE 1.0
        END AS raw_weight
    FROM raw
)
SELECT from_code, to_code, link_type, method,
       coalesce(raw_weight / nullif(sum(raw_weight) OVER (PARTITION BY from_code), 0),
                1.0 / n_targets) AS weight
FROM weighted
"""

_AREA_GEOMETRIES = """
SELECT code, ST_AsWKB(geom_27700) AS wkb, area_m2 FROM areas
WHERE set_id = ? AND geom_27700 IS NOT NULL ORDER BY code
"""


def overlay_areas(store: Store, from_set: str, to_set: str) -> pd.DataFrame:
    """Every overlapping (source, target) pair with its overlap area in m² (EPSG:27700).

    Candidate pairs are those whose envelopes meet (an STRtree); their exact overlap areas come
    from :func:`geo_cs.overlay.overlap_areas`, which measures them without constructing the
    intersections (GEOS only where boundaries coincide). Pairs that merely touch are left out.
    """
    # imported here: numba takes a quarter of a second to load, which the CLI and the API need
    # only when an overlay runs
    from geo_cs.overlay import Rings, overlap_areas

    src = store.sql(_AREA_GEOMETRIES, [from_set]).to_arrow_table()
    tgt = store.sql(_AREA_GEOMETRIES, [to_set]).to_arrow_table()
    if src.num_rows == 0 or tgt.num_rows == 0:
        return pd.DataFrame(columns=["from_code", "to_code", "overlap", "share"])
    src_rings, tgt_rings = Rings.from_wkb(src["wkb"]), Rings.from_wkb(tgt["wkb"])
    i, j = shapely.STRtree(tgt_rings.geoms).query(src_rings.geoms)
    areas = overlap_areas(src_rings, tgt_rings, i, j).areas
    met = areas > 0
    i, j, areas = i[met], j[met], areas[met]
    source_area = src["area_m2"].to_numpy()[i]
    return pd.DataFrame({
        "from_code": src["code"].to_numpy(zero_copy_only=False)[i],
        "to_code": tgt["code"].to_numpy(zero_copy_only=False)[j],
        "overlap": areas, "share": areas / np.where(source_area > 0, source_area, np.nan),
    })


def _classify_pairs(pairs: pd.DataFrame) -> pd.DataFrame:
    """Give pairs from a lookup without change indicators (Data Zone 2001↔2011) the ONS types:
    U one-to-one, M many sources to one target, S one source split, X irregular."""
    untyped = pairs["link_type"] == "pair"
    if not untyped.any():
        return pairs
    n_targets = pairs.groupby("from_code")["to_code"].transform("size")
    n_sources = pairs.groupby("to_code")["from_code"].transform("size")
    derived = pd.Series("X", index=pairs.index)
    derived[(n_targets == 1) & (n_sources == 1)] = "U"
    derived[(n_targets == 1) & (n_sources > 1)] = "M"
    split_only = pairs.assign(n_sources=n_sources).groupby("from_code")["n_sources"].transform("max") == 1
    derived[(n_targets > 1) & split_only] = "S"
    out = pairs.copy()
    out.loc[untyped, "link_type"] = derived[untyped]
    return out


def _codes(store: Store, set_id: str, with_geometry: bool = False) -> set[str]:
    extra = " AND geom_27700 IS NOT NULL" if with_geometry else ""
    return {r[0] for r in store.sql(f"SELECT code FROM areas WHERE set_id = ?{extra}", [set_id]).fetchall()}


def build_crosswalk(
    store: Store,
    from_set: str,
    to_set: str,
    *,
    population: str | None = None,
    basis: Literal["auto", "lookup", "geometry"] = "auto",
    sliver_tolerance: float = DEFAULT_SLIVER_TOLERANCE,
    crosswalk_id: str | None = None,
) -> CrosswalkReport:
    """Build (or rebuild) the crosswalk ``from_set`` → ``to_set`` and store it; one transaction.

    ``population``: an indicator on ``to_set`` whose latest values weight splits (e.g.
    ``population2019_lsoa11.working_age_population``). ``basis``: ``lookup`` needs an official
    lookup between the two; ``geometry`` overlays boundaries; ``auto`` prefers the lookup.
    """
    crosswalk_id = crosswalk_id or f"{from_set}->{to_set}"
    if (
        population is not None
        and not store.sql(
            "SELECT count(*) FROM observations WHERE indicator_id = ? AND set_id = ?", [population, to_set]
        ).fetchone()[0]
    ):
        raise NotFoundError(f"population weight {population!r} has no observations on {to_set}")
    pairs = store.sql(_LOOKUP_PAIRS, {"a": from_set, "b": to_set}).df()
    pairs["known_overlap"] = pd.array([pd.NA] * len(pairs), dtype="Float64")
    slivers = 0
    if basis == "lookup" and pairs.empty:
        raise NotFoundError(f"no lookup links {from_set} and {to_set}; ingest one or use --basis geometry")
    if basis == "geometry" or (basis == "auto" and pairs.empty):
        overlaps = overlay_areas(store, from_set, to_set)
        if overlaps.empty:
            raise InputError(
                f"no lookup between {from_set} and {to_set}, and no overlapping boundaries: "
                "ingest the boundaries of both, or a lookup"
            )
        keep = overlaps["share"] >= sliver_tolerance
        slivers = int((~keep).sum())
        pairs = (
            overlaps[keep][["from_code", "to_code", "overlap"]]
            .rename(columns={"overlap": "known_overlap"})
            .assign(link_type="geometry")
        )
        used_basis = f"geometry, slivers below {sliver_tolerance:.1%} of the source ignored"
    else:
        used_basis = "official lookup"
    pairs = _classify_pairs(pairs)
    store.con.register("xw_pairs", pairs)
    try:
        weights = store.sql(_LINK_WEIGHTS, {"a": from_set, "b": to_set, "population": population}).df()
    finally:
        store.con.unregister("xw_pairs")
    if basis == "geometry" or used_basis.startswith("geometry"):
        weights.loc[weights["method"] == "single", "link_type"] = "geometry:1:1"
    return _audit_and_store(store, crosswalk_id, from_set, to_set, used_basis, weights, slivers)


def _audit_and_store(
    store: Store, crosswalk_id: str, from_set: str, to_set: str, basis: str,
    weights: pd.DataFrame, slivers: int = 0,
) -> CrosswalkReport:
    """Check that each source's weights sum to 1, report links and coverage, store the links."""
    sums = weights.groupby("from_code")["weight"].sum()
    max_error = float((sums - 1).abs().max()) if len(sums) else 0.0
    if max_error > WEIGHT_SUM_TOLERANCE:
        worst = sums.index[int((sums - 1).abs().argmax())]
        raise InputError(f"{crosswalk_id}: the weights of {worst} sum to {sums[worst]}, not 1")
    report = CrosswalkReport(
        crosswalk_id=crosswalk_id,
        from_set=from_set,
        to_set=to_set,
        basis=basis,
        links_by_type=_counts(weights["link_type"]),
        links_by_method=_counts(weights["method"]),
        sources=weights["from_code"].nunique(),
        targets=weights["to_code"].nunique(),
        sources_without_target=sorted(_codes(store, from_set) - set(weights["from_code"].unique().tolist())),
        targets_without_source=sorted(_codes(store, to_set) - set(weights["to_code"].unique().tolist())),
        slivers_ignored=slivers,
        max_weight_sum_error=max_error,
    )
    _store_crosswalk(store, crosswalk_id, from_set, to_set, weights, report)
    return report


def _listing(counts: dict[str, int]) -> str:
    """``M 217, S 62, U 733`` for report lines."""
    return ", ".join(f"{k} {v:,}" for k, v in sorted(counts.items()))


def _counts(values: pd.Series) -> dict[str, int]:
    return {str(k): int(v) for k, v in values.value_counts().items()}


def _store_crosswalk(
    store: Store,
    crosswalk_id: str,
    from_set: str,
    to_set: str,
    weights: pd.DataFrame,
    report: CrosswalkReport,
) -> None:
    with store.transaction():
        ingest_id = store.start_ingest("crosswalk", [crosswalk_id])
        store.sql("DELETE FROM crosswalks WHERE crosswalk_id = ?", [crosswalk_id])
        store.con.register("xw_weights", weights[["from_code", "to_code", "weight", "link_type", "method"]])
        try:
            store.sql(
                "INSERT INTO crosswalks SELECT ?, ?, from_code, ?, to_code, weight, link_type, method, ? "
                "FROM xw_weights",
                [crosswalk_id, from_set, to_set, ingest_id],
            )
        finally:
            store.con.unregister("xw_weights")
        store.finish_ingest(ingest_id, report.to_dict())


def chain_crosswalks(
    store: Store, first: str, second: str, crosswalk_id: str | None = None
) -> CrosswalkReport:
    """Compose two stored crosswalks A→B and B→C into A→C: w(a,c) = Σ_b w(a,b)·w(b,c)."""
    meta = {
        r[0]: (r[1], r[2])
        for r in store.sql(
            "SELECT DISTINCT crosswalk_id, from_set, to_set FROM crosswalks WHERE crosswalk_id IN (?, ?)",
            [first, second],
        ).fetchall()
    }
    for xw in (first, second):
        if xw not in meta:
            raise NotFoundError(f"no crosswalk {xw!r}; build it first (geo-cs crosswalk build)")
    (a, b1), (b2, c) = meta[first], meta[second]
    if b1 != b2:
        raise InputError(f"cannot chain {first} ({a}→{b1}) with {second} ({b2}→{c}): {b1} ≠ {b2}")
    crosswalk_id = crosswalk_id or f"{a}->{b1}->{c}"
    weights = store.sql(
        """
        SELECT x1.from_code, x2.to_code, sum(x1.weight * x2.weight) AS weight,
               CASE WHEN bool_and(x1.link_type = 'U' AND x2.link_type = 'U') THEN 'U' ELSE 'chained' END
                   AS link_type,
               'chained' AS method
        FROM crosswalks x1 JOIN crosswalks x2
          ON x2.crosswalk_id = ? AND x2.from_code = x1.to_code
        WHERE x1.crosswalk_id = ?
        GROUP BY x1.from_code, x2.to_code
        """,
        [second, first],
    ).df()
    return _audit_and_store(store, crosswalk_id, a, c, f"chain of {first} and {second}", weights)


# -- harmonising indicators ---------------------------------------------------------------------


@dataclass
class HarmoniseReport:
    indicator_id: str
    from_set: str
    to_set: str
    crosswalk_id: str
    kind: str
    observations: int = 0
    periods: list[str] = field(default_factory=list)
    totals_before: dict[str, float] = field(default_factory=dict)
    totals_after: dict[str, float] = field(default_factory=dict)
    apportioned_share: float = 0.0
    links_by_type: dict[str, int] = field(default_factory=dict)
    weight: str | None = None
    targets_suppressed: int = 0

    def to_dict(self) -> dict:
        return asdict(self)

    def lines(self) -> list[str]:
        out = [
            f"{self.indicator_id}: {self.from_set} → {self.to_set} by {self.crosswalk_id} "
            f"({self.kind}); {self.observations:,} observations for {', '.join(self.periods)}"
        ]
        out.append(
            "  links used by type: " + _listing(self.links_by_type)
        )
        how = "through split links" if self.kind == "count" else "through links other than 1:1"
        out.append(f"  apportioned share (estimated, {how}): {self.apportioned_share:.1%}")
        for period in self.periods:
            before, after = self.totals_before.get(period), self.totals_after.get(period)
            if before is not None and after is not None:
                out.append(f"  {period}: total before {before:,.1f}, after {after:,.1f}")
        if self.targets_suppressed:
            out.append(
                f"  {self.targets_suppressed:,} target values are NULL because a source value was "
                "suppressed (their other sources are missing from the total after)"
            )
        if self.weight:
            out.append(f"  rates carried with the population weight {self.weight} (an approximation)")
        return out


_HARMONISE_COUNTS = """
SELECT o.indicator_id, x.to_set AS set_id, x.to_code AS code, o.period_id,
       CASE WHEN count(o.value) = count(*) THEN sum(o.value * x.weight) END AS value,
       CASE WHEN count(o.denominator) = count(*) THEN sum(o.denominator * x.weight) END AS denominator,
       -- estimated = reached the target through a split (weight < 1); whole sources are exact
       coalesce(sum(o.value * x.weight) FILTER (WHERE x.weight < 1 - 1e-12), 0)
           / nullif(sum(o.value * x.weight), 0) AS apportioned_share,
       string_agg(DISTINCT x.link_type, ',') AS links
FROM observations o JOIN crosswalks x ON x.crosswalk_id = $xw AND x.from_code = o.code
WHERE o.indicator_id = $indicator AND o.set_id = $from_set
GROUP BY ALL
"""

# A rate without denominators: the target's rate is the mean of its sources' rates weighted by
# the population each contributes. With the population on the *source* geography that is
# weight·pop_source; with it on the *target* geography, sources are taken to contribute in
# proportion to their crosswalk weights and the target's own population is the denominator.
_HARMONISE_RATES = """
WITH pop AS (
    SELECT code, arg_max(value, p.start_date) AS pop
    FROM observations o JOIN periods p USING (period_id)
    WHERE o.indicator_id = $weight AND o.set_id = $weight_set AND o.value IS NOT NULL
    GROUP BY code
),
contrib AS (
    SELECT o.indicator_id, x.to_code AS code, o.period_id, o.value AS rate, x.link_type,
           CASE WHEN $weight_on_source THEN x.weight * ps.pop ELSE x.weight END AS w,
           pt.pop AS target_pop
    FROM observations o
    JOIN crosswalks x ON x.crosswalk_id = $xw AND x.from_code = o.code
    LEFT JOIN pop ps ON $weight_on_source AND ps.code = o.code
    LEFT JOIN pop pt ON NOT $weight_on_source AND pt.code = x.to_code
    WHERE o.indicator_id = $indicator AND o.set_id = $from_set
)
SELECT indicator_id, $to_set AS set_id, code, period_id,
       CASE WHEN count(rate) = count(*) AND sum(w) > 0 THEN sum(rate * w) / sum(w) END AS value,
       CASE WHEN $weight_on_source THEN sum(w) ELSE any_value(target_pop) END AS denominator,
       coalesce(sum(w) FILTER (WHERE link_type NOT IN ('U', 'geometry:1:1')), 0)
           / nullif(sum(w), 0) AS apportioned_share,
       string_agg(DISTINCT link_type, ',') AS links
FROM contrib GROUP BY ALL
"""


def build_crosswalk_via(
    store: Store,
    from_set: str,
    via: str,
    to_set: str,
    *,
    population: str | None = None,
    basis: Literal["auto", "lookup", "geometry"] = "auto",
    sliver_tolerance: float = DEFAULT_SLIVER_TOLERANCE,
) -> list[CrosswalkReport]:
    """Build ``from_set`` → ``via`` and ``via`` → ``to_set``, then chain them into ``from_set`` →
    ``to_set``: the three reports in that order. ``population`` weights whichever step ends on
    the geography it is published for (``via`` when it has values there, else ``to_set``)."""
    on_via = population is not None and store.sql(
        "SELECT count(*) FROM observations WHERE indicator_id = ? AND set_id = ?",
        [population, via]).fetchone()[0] > 0
    first = build_crosswalk(store, from_set, via, population=population if on_via else None,
                            basis=basis, sliver_tolerance=sliver_tolerance)
    second = build_crosswalk(store, via, to_set, population=None if on_via else population,
                             basis=basis, sliver_tolerance=sliver_tolerance)
    return [first, second, chain_crosswalks(store, first.crosswalk_id, second.crosswalk_id)]


def harmonise(
    store: Store,
    indicator_id: str,
    to_set: str,
    *,
    from_set: str | None = None,
    crosswalk_id: str | None = None,
    weight: str | None = None,
) -> HarmoniseReport:
    """Carry ``indicator_id`` onto ``to_set`` through a stored crosswalk; one transaction.

    Counts (and their denominators) are reallocated by the crosswalk weights; rates are
    recomputed from them. A rate or score with no denominator needs ``weight``: a population
    indicator on the source or the target geography — an approximation (it assumes the rate is
    uniform within each source area), recorded in the report. The result is stored as the same
    indicator on ``to_set``, with each value's apportioned share.
    """
    rows = store.sql(
        "SELECT DISTINCT set_id, kind FROM indicators WHERE indicator_id = ?", [indicator_id]
    ).fetchall()
    if not rows:
        raise NotFoundError(f"no indicator {indicator_id!r} in the store (see geo-cs info)")
    sets = {r[0]: r[1] for r in rows}
    from_set = from_set or next(s for s in sets if s != to_set)
    if from_set not in sets:
        raise NotFoundError(f"{indicator_id} has no observations on {from_set}; it is on {', '.join(sets)}")
    kind = sets[from_set]
    crosswalk_id = crosswalk_id or f"{from_set}->{to_set}"
    if not store.sql("SELECT count(*) FROM crosswalks WHERE crosswalk_id = ?", [crosswalk_id]).fetchone()[0]:
        raise NotFoundError(
            f"no crosswalk {crosswalk_id!r}; build it: geo-cs crosswalk build --from {from_set} --to {to_set}"
        )
    has_den = (
        store.sql(
            "SELECT count(denominator) FROM observations WHERE indicator_id = ? AND set_id = ?",
            [indicator_id, from_set],
        ).fetchone()[0]
        > 0
    )
    if kind == "count" or (kind == "rate" and has_den and weight is None):
        query, params = (
            _HARMONISE_COUNTS,
            {"xw": crosswalk_id, "indicator": indicator_id, "from_set": from_set},
        )
        if kind == "rate":
            raise InputError(
                f"{indicator_id} is a rate: harmonise its count and denominator indicators, or give "
                "--weight (a population on either geography) to carry the rate itself"
            )
    elif kind in ("rate", "score"):
        if weight is None:
            raise InputError(
                f"{indicator_id} is a {kind} without counts: carrying it needs --weight, a population "
                f"indicator on {from_set} or {to_set} (an approximation: the {kind} is taken as "
                "uniform within each source area)"
            )
        weight_sets = {
            r[0]
            for r in store.sql(
                "SELECT DISTINCT set_id FROM observations WHERE indicator_id = ?", [weight]
            ).fetchall()
        }
        if from_set in weight_sets:
            weight_set, on_source = from_set, True
        elif to_set in weight_sets:
            weight_set, on_source = to_set, False
        else:
            raise NotFoundError(f"weight {weight!r} has no observations on {from_set} or {to_set}")
        query, params = (
            _HARMONISE_RATES,
            {
                "xw": crosswalk_id,
                "indicator": indicator_id,
                "from_set": from_set,
                "to_set": to_set,
                "weight": weight,
                "weight_set": weight_set,
                "weight_on_source": on_source,
            },
        )
    else:
        raise InputError(
            f"{indicator_id} is a {kind}: ranks and deciles cannot be carried across geographies"
        )

    result = store.sql(query, params).df()
    report = HarmoniseReport(
        indicator_id=indicator_id,
        from_set=from_set,
        to_set=to_set,
        crosswalk_id=crosswalk_id,
        kind=kind,
        weight=weight,
    )
    if kind == "count":
        report.totals_before = {
            str(k): float(v)
            for k, v in store.sql(
                "SELECT period_id, sum(value) FROM observations WHERE indicator_id = ? AND set_id = ? "
                "GROUP BY 1",
                [indicator_id, from_set],
            ).fetchall()
        }
        report.totals_after = {
            str(k): float(v) for k, v in result.groupby("period_id")["value"].sum().items()
        }
    report.targets_suppressed = int(result["value"].isna().sum())
    report.links_by_type = _counts(result["links"].str.split(",").explode())
    total = result["value"].abs().sum()
    share = (result["value"].abs() * result["apportioned_share"].fillna(0)).sum()
    report.apportioned_share = float(share / total) if total else 0.0
    report.observations = len(result)
    report.periods = sorted(result["period_id"].unique().tolist())

    with store.transaction():
        ingest_id = store.start_ingest("harmonise", [f"{indicator_id}@{from_set}", crosswalk_id])
        store.sql(
            "INSERT OR REPLACE INTO indicators SELECT indicator_id, source_id, measure, kind, "
            "unit, label || ' (harmonised to ' || ? || ')', ?, source_title, publisher, licence, "
            "source_file, scale FROM indicators WHERE indicator_id = ? AND set_id = ?",
            [to_set, to_set, indicator_id, from_set],
        )
        store.sql("DELETE FROM observations WHERE indicator_id = ? AND set_id = ?", [indicator_id, to_set])
        drop_prepared(store, to_set)  # its analysis-ready panels are out of date (geo_cs.panels)
        store.con.register("harmonised", result)
        try:
            store.sql(
                "INSERT INTO observations SELECT indicator_id, set_id, code, period_id, value, "
                "denominator, CASE WHEN value IS NULL THEN 'partial' END, ?, apportioned_share "
                "FROM harmonised",
                [ingest_id],
            )
        finally:
            store.con.unregister("harmonised")
        store.finish_ingest(ingest_id, report.to_dict())
    return report


# -- crosswalks through small areas; district changes ---------------------------------------------

_MEMBERSHIP_LOOKUP = """
SELECT DISTINCT from_code AS code, to_code AS member FROM lookup_links
WHERE from_set = $small AND to_set = $big AND to_code IS NOT NULL
UNION
SELECT DISTINCT l1.from_code, l2.to_code
FROM lookup_links l1 JOIN lookup_links l2 ON l2.from_set = l1.to_set AND l2.from_code = l1.to_code
WHERE l1.from_set = $small AND l2.to_set = $big AND l2.to_code IS NOT NULL
"""

_MEMBERSHIP_GEOMETRY = """
SELECT s.code, b.code AS member
FROM areas s JOIN areas b
  ON ST_Contains(b.geom_27700, ST_PointOnSurface(s.geom_27700))
WHERE s.set_id = $small AND b.set_id = $big
  AND s.geom_27700 IS NOT NULL AND b.geom_27700 IS NOT NULL
"""


def small_area_membership(store: Store, small_set: str, big_set: str) -> tuple[pd.DataFrame, str]:
    """Which area of ``big_set`` each area of ``small_set`` belongs to, and how it was found:
    through the lookups (one or two hops), else by point-on-surface in the big area."""
    found = store.sql(_MEMBERSHIP_LOOKUP, {"small": small_set, "big": big_set}).df()
    how = "lookup"
    if found.empty:
        found = store.sql(_MEMBERSHIP_GEOMETRY, {"small": small_set, "big": big_set}).df()
        how = "point-on-surface"
    if found.empty:
        raise InputError(
            f"cannot place {small_set} areas in {big_set}: no lookup links them and their "
            "boundaries are not both in the store"
        )
    return found.sort_values(["code", "member"]).drop_duplicates("code"), how


def build_crosswalk_through(
    store: Store,
    from_set: str,
    to_set: str,
    small_set: str,
    *,
    population: str | None = None,
    crosswalk_id: str | None = None,
) -> CrosswalkReport:
    """A crosswalk between two editions of larger areas (districts, wards) built from the small
    areas both are made of: w(a, b) = population of the small areas in both a and b / population
    of a (each small area counting equally when no ``population`` on ``small_set`` is given).

    This carries district code changes and mergers (Gateshead E08000020 → E08000037, the 2019
    Dorset mergers) and ward editions, wherever the small areas are placed in both.
    """
    crosswalk_id = crosswalk_id or f"{from_set}->{to_set}"
    in_from, how_from = small_area_membership(store, small_set, from_set)
    in_to, how_to = small_area_membership(store, small_set, to_set)
    both = in_from.merge(in_to, on="code", suffixes=("_from", "_to"))
    if population is not None:
        pop = store.sql(
            "SELECT code, arg_max(value, p.start_date) AS pop FROM observations o "
            "JOIN periods p USING (period_id) WHERE indicator_id = ? AND set_id = ? "
            "AND value IS NOT NULL GROUP BY code",
            [population, small_set],
        ).df()
        if pop.empty:
            raise NotFoundError(f"population {population!r} has no observations on {small_set}")
        both = both.merge(pop, on="code", how="left")
        both["pop"] = both["pop"].fillna(0)
        method = f"population of {small_set}"
    else:
        both["pop"] = 1.0
        method = f"count of {small_set} areas"
    pairs = both.groupby(["member_from", "member_to"], as_index=False)["pop"].sum()
    totals = pairs.groupby("member_from")["pop"].transform("sum")
    pairs["weight"] = (pairs["pop"] / totals.where(totals > 0)).fillna(
        1 / pairs.groupby("member_from")["pop"].transform("size")
    )
    weights = _classify_pairs(
        pairs.rename(columns={"member_from": "from_code", "member_to": "to_code"}).assign(link_type="pair")
    )
    weights["method"] = method
    basis = f"through {small_set} ({how_from} to {from_set}, {how_to} to {to_set})"
    return _audit_and_store(store, crosswalk_id, from_set, to_set, basis, weights)


#: District change types that replace a district (a combined authority, E47, does not).
_SUCCESSION_TYPES = ("merger", "new_code", "new_geo")
_DISTRICT_PREFIXES = ("E06", "E07", "E08", "E09", "W06", "S12", "N09")


def district_successors(store: Store, codes: list[str], until_year: int) -> dict[str, str]:
    """Each district code followed through mergers and code changes (the official district
    changes lookup) up to ``until_year``; codes that did not change map to themselves."""
    changes = store.sql(
        "SELECT from_code, to_code, change_year FROM lookup_links WHERE from_set = 'lad' "
        "AND to_set = 'lad' AND list_contains(?, change_ind) AND to_code IS NOT NULL "
        "AND change_year <= ? ORDER BY change_year",
        [list(_SUCCESSION_TYPES), until_year],
    ).fetchall()
    step = {
        old: new for old, new, _ in changes if old[:3] in _DISTRICT_PREFIXES and new[:3] in _DISTRICT_PREFIXES
    }
    result = {}
    for code in codes:
        current, seen = code, set()
        while current in step and current not in seen:
            seen.add(current)
            current = step[current]
        result[code] = current
    return result
