"""The survey employment rate of DWP RR 783 (figures 4.1 and 4.2): partnerships, nations,
regions, Great Britain and a comparator area, from districts' Annual Population Survey estimates.

An aggregate's rate is Σ numerators / Σ denominators of its districts; its 95% interval combines
the districts' *published* intervals (the districts are independent samples): half-width
√Σ (wᵢ·cᵢ)², wᵢ = denominatorᵢ / Σ denominators (:func:`geo_cs.stats.combine_survey_rates`,
:func:`geo_cs.stats.known_half_widths`).
Where the file publishes no intervals (the Nomis API extract) a figure says "no interval
published" and no interval is invented. The gap with the benchmark is the linear combination
Σ (wᵢᴾ − wᵢᴮ)·rᵢ, so its interval counts each district once even when the partnership is part
of the benchmark.

Districts marked in the file change a figure, and each figure says how (``note``):

* *unreliable* (``*``: a sample of 3 to 9): its estimate is in the rate, but it has no interval,
  so the interval leaves it out and is too narrow by its share;
* *missing* (``-``) or *withheld* (``!``): it is in neither; the figure covers the other districts.

The benchmark is Great Britain when the data hold districts of England, Wales and Scotland, made
from the districts the file holds (the row says how many); otherwise the nearest the data hold
(all the file's districts, named by their regions), never a figure the file cannot support.

Example
-------
The 2019 Nomis download in the demo bundle (the list of district changes dates its codes):

>>> from geo_cs import Store
>>> from geo_cs.config import boundaries_dir
>>> from geo_cs.ingest import ingest_lookup
>>> from geo_cs.ingest.survey import ingest_survey
>>> from geo_cs.survey import employment_rates
>>> demo = boundaries_dir() / "demo"
>>> store = Store.open(":memory:")
>>> _ = ingest_lookup(store, demo / "lookups" / "lad_changes_2014_2025.csv")
>>> _ = ingest_survey(store, demo / "indicators" / "aps_employment_rate_la_2019.csv")
>>> table = employment_rates(store, partnerships=["greater_manchester"])
>>> print(table[["name", "period_label", "rate", "rate_low", "rate_high", "gap"]].head(2).round(1)
...       .to_string(index=False))
              name      period_label  rate  rate_low  rate_high  gap
Greater Manchester Jan 2019-Dec 2019  72.7      71.7       73.7 -3.1
     Great Britain Jan 2019-Dec 2019  75.8      75.5       76.0  NaN
>>> store.close()
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from geo_cs.disclosure import DisclosureControl
from geo_cs.district_codes import codes_in_edition
from geo_cs.errors import InputError, NotFoundError
from geo_cs.geography import registry
from geo_cs.partnerships import Partnership, get_partnerships
from geo_cs.stats import known_half_widths
from geo_cs.store import Store

DEFAULT_INDICATOR = "aps.employment_rate"
NATIONS = {"E": "England", "W": "Wales", "S": "Scotland"}
NO_INTERVAL = "no interval published"
#: How many districts outside every partnership, lowest employment rate first, make the
#: comparator area by default (RR 783: "non-CSP districts with low employment rates").
COMPARATOR_SIZE = 20

_ESTIMATES_SQL = """
SELECT o.code, a.name, o.period_id, p.label AS period_label, p.start_date, o.value AS rate,
       s.numerator, o.denominator, s.half_width, s.reliability, s.denominator_derived
FROM observations o
JOIN survey_estimates s USING (indicator_id, set_id, code, period_id)
JOIN periods p ON p.period_id = o.period_id
LEFT JOIN areas a ON a.set_id = o.set_id AND a.code = o.code
WHERE o.indicator_id = $indicator AND o.set_id = $set_id
ORDER BY p.start_date, o.code
"""

_SETS_SQL = """
SELECT i.set_id, count(DISTINCT o.period_id) AS periods, count(DISTINCT o.code) AS areas
FROM indicators i JOIN observations o USING (indicator_id, set_id)
JOIN geography_sets g ON g.set_id = i.set_id
WHERE i.indicator_id = ? AND i.kind = 'survey' AND g.geography = 'lad'
GROUP BY i.set_id ORDER BY periods DESC, areas DESC, i.set_id
"""

_REGIONS_SQL = """
SELECT DISTINCT l.from_code AS code, l.to_code AS region, coalesce(a.name, l.to_code) AS region_name
FROM lookup_links l LEFT JOIN areas a ON a.set_id = l.to_set AND a.code = l.to_code
WHERE l.from_set = 'lad2019' AND l.to_set = 'rgn2019' AND l.to_code IS NOT NULL
"""


@dataclass(frozen=True)
class SurveyGroup:
    """An aggregate of districts: a partnership, a nation, a region, GB or the comparator."""

    kind: str              # partnership, benchmark, nation, region, comparator
    id: str
    name: str
    codes: tuple[str, ...]


def survey_sets(store: Store, indicator: str = DEFAULT_INDICATOR) -> list[str]:
    """The district sets holding ``indicator`` as survey estimates, most periods first."""
    return [r[0] for r in store.sql(_SETS_SQL, [indicator]).fetchall()]


def district_estimates(store: Store, indicator: str = DEFAULT_INDICATOR,
                       set_id: str | None = None) -> pd.DataFrame:
    """Every district's estimate per period: code, name, period_id, period_label, rate,
    numerator, denominator, half_width, reliability (None, unreliable, missing, withheld)."""
    sets = survey_sets(store, indicator)
    if not sets:
        raise NotFoundError(
            f"no survey estimates of {indicator!r} on districts in the store: ingest a Nomis download "
            "of the Annual Population Survey (geo-cs ingest indicator FILE)")
    set_id = set_id or sets[0]
    if set_id not in sets:
        raise NotFoundError(f"{indicator} has no survey estimates on {set_id}; on: {', '.join(sets)}")
    frame = store.sql(_ESTIMATES_SQL, {"indicator": indicator, "set_id": set_id}).df()
    frame.attrs["set_id"] = set_id
    return frame


def _vintage(set_id: str) -> int:
    return registry().get(set_id).vintage


def partnership_members(store: Store, partnership: Partnership, set_id: str,
                        when: date | None = None) -> tuple[list[str], str]:
    """The partnership's districts as codes of ``set_id``'s edition (through the district code
    history: Glasgow City S12000046 is S12000049 from 2019), and a note when a member's
    district was merged with non-members by then (its figure then covers more than the
    partnership)."""
    phase = partnership.phase_at(when)
    member_year = _vintage(partnership.member_set)
    target_year = _vintage(set_id)
    renamed = codes_in_edition(store, list(phase.members), member_year, target_year)
    codes = sorted({c for cs in renamed.values() for c in cs})
    note = ""
    if target_year > member_year:
        back = codes_in_edition(store, codes, target_year, member_year)
        outsiders = sorted({c for cs in back.values() for c in cs} - set(phase.members))
        if outsiders:
            note = (f"by {target_year} a member's district was merged with {', '.join(outsiders)}, "
                    "which is not a member: the figure covers them too")
    return codes, note


def _regions(store: Store, codes: list[str], set_id: str) -> dict[str, tuple[str, str]]:
    """District code -> (region code, name), through the 2019 lookup and the code history."""
    links = store.sql(_REGIONS_SQL).df()
    if links.empty:
        return {}
    by_2019 = {r.code: (r.region, r.region_name) for r in links.itertuples(index=False)}
    year = _vintage(set_id)
    as_2019 = codes_in_edition(store, codes, year, 2019) if year != 2019 else {c: [c] for c in codes}
    out = {}
    for code in codes:
        regions = {by_2019[c] for c in as_2019.get(code, [code]) if c in by_2019}
        if len(regions) == 1:
            out[code] = regions.pop()
    return out


def survey_groups(store: Store, estimates: pd.DataFrame,
                  partnerships: list[Partnership] | None = None, *,
                  comparator_size: int = COMPARATOR_SIZE, when: date | None = None,
                  ) -> tuple[list[SurveyGroup], list[str]]:
    """The aggregates to figure: the partnerships the data cover, the benchmark (GB or the
    nearest the file holds), each nation and region held, and the comparator area; and notes."""
    set_id = estimates.attrs["set_id"]
    held = sorted(estimates["code"].unique())
    notes: list[str] = []
    groups: list[SurveyGroup] = []
    chosen = partnerships if partnerships is not None else get_partnerships()
    reg = registry()
    in_any: set[str] = set()
    for p in get_partnerships():
        if reg.get(p.member_set).geography == "lad":
            in_any |= set(partnership_members(store, p, set_id, when)[0])
    for p in chosen:
        if reg.get(p.member_set).geography != "lad":
            notes.append(f"{p.id}: its members are {reg.get(p.member_set).label.lower()}; the survey "
                         "is published for districts and larger areas only, so it has no figure")
            continue
        codes, note = partnership_members(store, p, set_id, when)
        inside = [c for c in codes if c in set(held)]
        if not inside:
            notes.append(f"{p.id}: none of its districts is in the survey file on {set_id}; no rows")
            continue
        if len(inside) < len(codes):
            notes.append(f"{p.id}: {len(codes) - len(inside)} of its {len(codes)} districts are not in "
                         f"the file ({', '.join(c for c in codes if c not in inside)}): not in its figures")
        if note:
            notes.append(f"{p.id}: {note}")
        groups.append(SurveyGroup("partnership", p.id, p.name, tuple(inside)))
    nations = sorted({c[0] for c in held})
    regions = _regions(store, held, set_id)
    if set(NATIONS) <= set(nations):
        benchmark = SurveyGroup("benchmark", "gb", "Great Britain", tuple(held))
    else:
        region_names = sorted({regions[c][1] for c in held if c in regions})
        where = (", ".join(region_names[:-1]) + " and " + region_names[-1]) if len(region_names) > 1 \
            else (region_names[0] if region_names else ", ".join(NATIONS.get(n, n) for n in nations))
        benchmark = SurveyGroup("benchmark", "file", f"All {len(held)} districts of {where}",
                                tuple(held))
        notes.append(f"the file holds districts of {where} only, not all of Great Britain: the "
                     f"benchmark is those {len(held)} districts")
    groups.append(benchmark)
    for n in nations:
        if n in NATIONS and len(nations) > 1:
            groups.append(SurveyGroup("nation", n, NATIONS[n], tuple(c for c in held if c[0] == n)))
    for region, region_name in sorted(set(regions.values())):
        groups.append(SurveyGroup("region", region, region_name,
                                  tuple(c for c in held if regions.get(c, ("",))[0] == region)))
    first = estimates[estimates["period_id"] == estimates.sort_values("start_date")["period_id"].iloc[0]]
    outside = first[~first["code"].isin(in_any) & first["rate"].notna()].sort_values(["rate", "code"])
    if comparator_size and len(outside):
        picked = outside.head(comparator_size)
        groups.append(SurveyGroup(
            "comparator", "comparator",
            f"Comparator: the {len(picked)} districts in no partnership with the lowest rates "
            f"({first['period_label'].iloc[0]})", tuple(picked["code"])))
    return groups, notes


@dataclass
class _Matrices:
    """A set's estimates as period × district arrays (rows in time order), so every group's
    figure in every period is a few array sums rather than a filter per group and period."""

    codes: list[str]
    names: list[str]
    period_ids: list[str]
    period_labels: list[str]
    numerator: np.ndarray
    denominator: np.ndarray
    half_width: np.ndarray
    reliability: np.ndarray      # object: None, unreliable, missing, withheld
    derived: np.ndarray          # bool
    present: np.ndarray          # bool: the district has a row in the period

    @property
    def usable(self) -> np.ndarray:
        return self.present & ~np.isnan(self.numerator) & ~np.isnan(self.denominator)

    @classmethod
    def of(cls, estimates: pd.DataFrame) -> _Matrices:
        periods = estimates.drop_duplicates("period_id").sort_values("start_date")
        codes = sorted(estimates["code"].unique())
        names = estimates.drop_duplicates("code").set_index("code")["name"].reindex(codes)

        def grid(column: str, fill: object = np.nan) -> np.ndarray:
            table = estimates.pivot(index="period_id", columns="code", values=column)
            return table.reindex(index=periods["period_id"], columns=codes).to_numpy(
                dtype=object if fill is None else float, na_value=fill)

        present = estimates.assign(one=1.0).pivot(index="period_id", columns="code", values="one")
        return cls(codes, [n if isinstance(n, str) else c for c, n in zip(codes, names, strict=True)],
                   periods["period_id"].tolist(), periods["period_label"].tolist(),
                   grid("numerator"), grid("denominator"), grid("half_width"),
                   grid("reliability", None),
                   grid("denominator_derived", 0.0).astype(bool),
                   present.reindex(index=periods["period_id"], columns=codes).notna().to_numpy())


@dataclass
class _Figures:
    """One group's figures in every period (arrays over periods) and its notes."""

    rate: np.ndarray
    half_width: np.ndarray
    numerator: np.ndarray
    denominator: np.ndarray
    weights: np.ndarray          # period × district: the group's denominator shares
    districts: int
    in_figure: np.ndarray
    interval: list[str]
    unreliable: list[str]
    missing: list[str]
    notes: list[str]


def _figures(m: _Matrices, members: np.ndarray) -> _Figures:
    """A group's rate Σn/Σd and the half-width combined from its districts' published ones in
    every period (:func:`geo_cs.stats.known_half_widths`), with what its marked districts do
    to it in words (see the module doc). ``members``: a bool mask over ``m.codes``."""
    usable = m.usable & members
    num = np.where(usable, m.numerator, 0.0).sum(axis=1)
    den = np.where(usable, m.denominator, 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where(den > 0, num / den * 100, np.nan)
        weights = np.where(usable, m.denominator, 0.0) / np.where(den > 0, den, np.nan)[:, None]
    half_width = known_half_widths(weights, m.half_width)
    known = usable & ~np.isnan(m.half_width)
    all_known = (known == usable).all(axis=1)
    intervals, unreliable_names, missing_names, notes = [], [], [], []
    in_figure = usable.sum(axis=1)
    for i in range(len(m.period_ids)):
        absent = members & m.present[i] & ~usable[i]
        unreliable = usable[i] & ~known[i]
        said = []
        if absent.any():
            words = sorted({m.reliability[i, j] or "missing" for j in np.flatnonzero(absent)})
            said.append(f"{_names(m, absent)} {'is' if absent.sum() == 1 else 'are'} "
                        f"{'/'.join(words)}: the figure covers the other {in_figure[i]} districts")
        if np.isnan(half_width[i]):
            intervals.append(NO_INTERVAL)
        elif all_known[i]:
            intervals.append("published intervals combined")
        else:
            intervals.append("published intervals combined, partial")
            share = 100 * weights[i][unreliable].sum()
            one = unreliable.sum() == 1
            said.append(f"{_names(m, unreliable)} {'is' if one else 'are'} unreliable (survey sample "
                        f"of 3 to 9): in the rate, but without an interval, so the interval leaves "
                        f"{'it' if one else 'them'} out ({_share_words(share)} of the population) "
                        "and is a little too narrow")
        if (m.derived[i] & usable[i]).any():
            said.append("denominators derived as numerator ÷ rate × 100 (the file has none)")
        marked = m.present[i] & members & (m.reliability[i] == "unreliable")
        unreliable_names.append(_names(m, marked))
        missing_names.append(_names(m, absent))
        notes.append("; ".join(said))
    return _Figures(rate, half_width, num, den, weights, int(members.sum()), in_figure, intervals,
                    unreliable_names, missing_names, notes)


def _share_words(percent: float) -> str:
    """A small share as a person would say it: 'less than 0.1%' rather than '0.0%'.

    >>> _share_words(0.02), _share_words(2.345)
    ('less than 0.1%', '2.3%')
    """
    return "less than 0.1%" if percent < 0.05 else f"{percent:.1f}%"


def _names(m: _Matrices, mask: np.ndarray) -> str:
    return ", ".join(f"{m.names[j]} ({m.codes[j]})" for j in np.flatnonzero(mask))


COLUMNS = ["group_kind", "group", "name", "period_id", "period_label", "rate", "rate_low",
           "rate_high", "half_width", "interval", "numerator", "denominator", "districts",
           "districts_in_figure", "unreliable", "missing", "benchmark", "benchmark_rate", "gap",
           "gap_low", "gap_high", "gap_real", "note", "indicator", "geography"]


def employment_rates(
    store: Store, indicator: str = DEFAULT_INDICATOR, *, set_id: str | None = None,
    partnerships: list[str] | None = None, periods: list[str] | None = None,
    comparator_size: int = COMPARATOR_SIZE, when: date | None = None,
    disclosure: DisclosureControl | None = None,
) -> pd.DataFrame:
    """Figures 4.1 and 4.2: per group (partnerships, the benchmark, nations, regions, the
    comparator) and period, the survey rate with its 95% interval and the gap with the
    benchmark with its interval (``gap_real``: the interval excludes 0; None without one).

    The gap is Σ (wᵢᴾ − wᵢᴮ)·rᵢ over the districts, so a district in both the partnership and
    the benchmark counts once; its half-width leaves out districts without an interval, as the
    rates' do. ``set_id`` is the district edition (default: the one with the most periods).
    Notes on coverage are in ``attrs["notes"]``. With ``disclosure`` (figures that leave the
    building: the map, exports), numerators and denominators are rounded and a group whose
    numerator or denominator is under the minimum is withheld in every column
    (:func:`published_rates`).
    """
    estimates = district_estimates(store, indicator, set_id)
    set_id = estimates.attrs["set_id"]
    chosen = get_partnerships(partnerships) if partnerships else None
    groups, notes = survey_groups(store, estimates, chosen, comparator_size=comparator_size,
                                  when=when)
    if periods:
        unknown = [p for p in periods if p not in set(estimates["period_id"])]
        if unknown:
            valid = ", ".join(dict.fromkeys(estimates["period_id"]))
            raise NotFoundError(f"period {', '.join(unknown)} not in {indicator} on {set_id}; valid: {valid}")
        estimates = estimates[estimates["period_id"].isin(periods)]
    m = _Matrices.of(estimates)
    benchmark_group = next(g for g in groups if g.kind == "benchmark")
    bench = _figures(m, np.isin(m.codes, benchmark_group.codes))
    frames = []
    for g in groups:
        fig = bench if g is benchmark_group else _figures(m, np.isin(m.codes, g.codes))
        if g is benchmark_group:
            gap = gap_hw = np.full(len(m.period_ids), np.nan)
        else:
            gap = fig.rate - bench.rate
            gap_hw = known_half_widths(fig.weights - bench.weights, m.half_width)
        real = [None if np.isnan(h) else bool(abs(d) > h) for d, h in zip(gap, gap_hw, strict=True)]
        frames.append(pd.DataFrame({
            "group_kind": g.kind, "group": g.id, "name": g.name, "period_id": m.period_ids,
            "period_label": m.period_labels, "rate": fig.rate, "rate_low": fig.rate - fig.half_width,
            "rate_high": fig.rate + fig.half_width, "half_width": fig.half_width,
            "interval": fig.interval, "numerator": fig.numerator, "denominator": fig.denominator,
            "districts": fig.districts, "districts_in_figure": fig.in_figure,
            "unreliable": fig.unreliable, "missing": fig.missing, "benchmark": benchmark_group.name,
            "benchmark_rate": bench.rate, "gap": gap, "gap_low": gap - gap_hw, "gap_high": gap + gap_hw,
            "gap_real": pd.array(real, dtype="object"), "note": fig.notes, "indicator": indicator,
            "geography": set_id}, columns=COLUMNS))
    table = pd.concat(frames, ignore_index=True)
    order = {k: i for i, k in enumerate(["partnership", "benchmark", "nation", "region", "comparator"])}
    table = table.assign(_k=table["group_kind"].map(order)).sort_values(
        ["_k", "group"], kind="stable").drop(columns="_k").reset_index(drop=True)
    table.attrs["notes"] = notes
    table.attrs["benchmark"] = benchmark_group.name
    return published_rates(table, disclosure) if disclosure is not None else table


def published_rates(table: pd.DataFrame, disclosure: DisclosureControl) -> pd.DataFrame:
    """:func:`employment_rates`' table as published under ``disclosure``: the numerator and
    denominator rounded; a row whose (unrounded) numerator or denominator is under the minimum
    withheld whole — rate, interval, gap, counts — and said in its note. The rates and
    intervals are the survey's own (ONS has controlled the district figures they come from),
    not recomputed from the rounded counts."""
    out = table.copy()
    small = disclosure.withheld(out["numerator"]) | disclosure.withheld(out["denominator"])
    out["numerator"] = np.where(small, np.nan, disclosure.round(out["numerator"]))
    out["denominator"] = np.where(small, np.nan, disclosure.round(out["denominator"]))
    for column in ("rate", "rate_low", "rate_high", "half_width", "gap", "gap_low", "gap_high"):
        out.loc[small, column] = np.nan
    out.loc[small, "gap_real"] = None
    out.loc[small, "note"] = (f"withheld: fewer than {disclosure.min_count} people "
                              "(disclosure control)")
    out.attrs = dict(table.attrs)
    return out


def check_survey_indicator(store: Store, indicator: str) -> None:
    """InputError when ``indicator`` is not a survey estimate (the employment analysis combines
    published intervals; a count or rate of claimants goes through ``analyse rates``)."""
    kinds = {r[0] for r in store.sql("SELECT DISTINCT kind FROM indicators WHERE indicator_id = ?",
                                     [indicator]).fetchall()}
    if kinds and kinds != {"survey"}:
        raise InputError(f"{indicator} is a {', '.join(sorted(kinds))}, not a survey estimate: use "
                         "geo-cs analyse rates for it")
