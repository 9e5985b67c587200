"""The worklessness analyses of DWP Research Report 783, with intervals and provenance.

Everything starts from a :class:`Panel`: one row per small area and period with a claimant count
and its denominator (the working-age population), built from the store's observations (as
area × period arrays when the counts carry their own denominators, else as a DuckDB table), or
read as prepared at ingest (:mod:`geo_cs.panels`). Rates of any
set of areas are Σ count / Σ denominator × 100 — never a mean of rates. On top of that:

* :func:`group_rates` — rates of groups of areas (partnerships, nations, GB) with Wilson intervals,
  small-number flags and the rounding error of summed counts;
* :func:`index_of_count` — the count against a base period (= 100), figures 4.3-4.4;
* :func:`gap_with` — the gap with a reference in percentage points, figures 4.5-4.6;
* :func:`worst_cohort` — the worst-performing neighbourhoods (NI 153): baseline rate (mean over
  the baseline quarters) *exceeding* the threshold, fixed thereafter;
* :func:`ni153` — per partnership and period, the cohort's rate, the rest's, the gap, the cohort's
  size and share of the working-age population (figure 4.7);
* :func:`classify_changes` and :func:`summarise_changes` — closed / unchanged / widened between
  two periods, never claimed on noise;
* :func:`nation_comparison` — cohort vs other neighbourhoods inside and outside partnerships.

Every output row carries its provenance: the indicators, the geography set, the partnership
definition used and the method parameters.

Example
-------
The worst-performing data zones of the three Scottish partnerships on SIMD 2016, from the demo
bundle's files (the councils' data zones come from NRS's lookup, Glasgow's 2019 recode from the
official list of district changes):

>>> from geo_cs import Store
>>> from geo_cs.analysis import Panel, RateSource, MethodParams, ni153
>>> from geo_cs.config import boundaries_dir
>>> from geo_cs.ingest import ingest_indicator, ingest_lookup, load_spec
>>> from geo_cs.partnerships import get_partnerships
>>> demo = boundaries_dir() / "demo"
>>> store = Store.open(":memory:")
>>> for lookup in ("lad_changes_2014_2025.csv", "dz11_iz11_lad20_scotland.csv"):
...     _ = ingest_lookup(store, demo / "lookups" / lookup)
>>> _ = ingest_indicator(store, demo / "indicators" / "simd2016_scotland_dz11_indicators.csv",
...                      load_spec("simd2016"))
>>> panel = Panel(store, RateSource("simd2016.employment_deprived", "datazone2011"))
>>> table = ni153(store, panel, get_partnerships(["dundee", "edinburgh", "glasgow"]),
...               params=MethodParams(baseline=("simd2016",)))
>>> columns = ["partnership", "n_cohort", "cohort_rate", "rest_rate", "gap"]
>>> print(table[columns].round(1).to_string(index=False))
partnership  n_cohort  cohort_rate  rest_rate  gap
     dundee        29         29.3       11.3 18.0
  edinburgh        26         31.2        7.3 23.9
    glasgow       188         31.1       11.8 19.2
>>> store.close()
"""

from __future__ import annotations

import itertools
import json
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Literal

import numpy as np
import pandas as pd

from geo_cs.errors import InputError, NotFoundError
from geo_cs.panels import DensePanel, load_dense, observed_keys, observed_panel, panel_key, prepared_token
from geo_cs.partnerships import Partnership, Phase, Resolution, get_partnerships, resolve
from geo_cs.periods import FREQUENCY, Period, select_periods
from geo_cs.stats import (
    THRESHOLD_EPSILON,
    add_gap,
    change_interval,
    difference_interval,
    index_interval,
    rate_with_interval,
    rounding_sd,
    widen_for_denominator,
)
from geo_cs.store import Store

#: The report's baseline: the four quarters May 2006 - February 2007.
REPORT_BASELINE = ("2006-05", "2006-08", "2006-11", "2007-02")
NATION_NAMES = {"E": "England", "W": "Wales", "S": "Scotland", "N": "Northern Ireland"}


def default_baseline(period_ids: list[str], kind: str | None = None) -> tuple[str, ...]:
    """The report's baseline quarters when a series has them, else its first year of periods:
    the first 12 of a monthly series, the first four of a quarterly one (or the first period,
    for editions of an index): the cohort is fixed on the earliest data.

    >>> default_baseline(["2010-05", "2010-08", "2010-11", "2011-02", "2011-05"])
    ('2010-05', '2010-08', '2010-11', '2011-02')
    >>> default_baseline(["simd2012", "simd2016"])
    ('simd2012',)
    >>> len(default_baseline([f"2015m{m:02d}" for m in range(1, 13)] + ["2016m01"], "month"))
    12
    """
    if kind == "month":
        return tuple(period_ids[:12])
    if set(REPORT_BASELINE) <= set(period_ids):
        return REPORT_BASELINE
    return tuple(period_ids[:4]) if len(period_ids) >= 4 else tuple(period_ids[:1])


def resolve_baseline(panel: Panel, baseline: str | tuple[str, ...] | list[str] | None) -> tuple[str, ...]:
    """The baseline period ids of ``panel``'s series: ``baseline`` as the user wrote it (ids,
    period texts and ``A..B`` ranges read in the series' own frequency, see
    :func:`geo_cs.periods.select_periods`), or the default for its frequency.

    Raises :class:`InputError` naming the parameter and value when a period cannot be read.
    """
    if not baseline:
        return default_baseline(panel.period_ids(), panel.kind)
    try:
        return select_periods(baseline, panel.period_objects())
    except ValueError as exc:
        shown = baseline if isinstance(baseline, str) else ",".join(baseline)
        raise InputError(f"baseline {shown!r}: {exc}") from None


@dataclass(frozen=True)
class MethodParams:
    """The choices behind a figure; recorded on every output row.

    ``threshold``: a neighbourhood is worst-performing when its baseline rate *exceeds* this
    (a rate of exactly 25.0 is not). ``tolerance_pp``: changes smaller than this (in points) are
    "unchanged". ``small_count``/``small_denominator``: aggregates below either are flagged as
    small (Rhyl-sized) and volatile. ``rounding_step``: the step DWP rounds counts to.
    """

    threshold: float = 25.0
    baseline: tuple[str, ...] = REPORT_BASELINE
    tolerance_pp: float = 0.1
    confidence: float = 0.95
    small_count: int = 100
    small_denominator: int = 25_000
    rounding_step: float = 5.0

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


@dataclass(frozen=True)
class RateSource:
    """Where a rate's numerator and denominator come from.

    ``count``: an indicator id holding counts (or rates in % when ``count_is_rate``), or several
    whose counts are added — the out-of-work benefits total is JSA + ESA/IB + lone parents +
    others, each published as its own series.
    ``denominator``: an indicator id holding denominators, matched to each period by the latest
    one at or before it (else the earliest after); None uses each count row's own denominator.
    """

    count: str | tuple[str, ...]
    set_id: str
    denominator: str | None = None
    count_is_rate: bool = False

    @property
    def counts(self) -> list[str]:
        return [self.count] if isinstance(self.count, str) else list(self.count)

    @property
    def label(self) -> str:
        numerator = " + ".join(self.counts)
        den = self.denominator or f"{numerator} (row denominators)"
        return f"{numerator} / {den}"


_PARTNERS_SQL = """
SELECT i.indicator_id, i.kind, i.measure
FROM indicators i
WHERE i.set_id = $set_id AND i.indicator_id <> $indicator AND i.kind = $kind
  AND EXISTS (SELECT 1 FROM observations o WHERE o.indicator_id = i.indicator_id
              AND o.set_id = i.set_id AND o.period_id IN (
                  SELECT DISTINCT period_id FROM observations
                  WHERE indicator_id = $indicator AND set_id = $set_id))
ORDER BY i.indicator_id
"""


def rate_source(
    store: Store, indicator: str, set_id: str, denominator: str | None = None,
    count_is_rate: bool = False, *, combine: bool = True,
) -> tuple[RateSource, list[str]]:
    """The :class:`RateSource` for an indicator as a user names it, completing what is missing,
    and notes saying what was chosen.

    A count with no denominators of its own (IoD 2025's ``employment_deprived``) takes its
    denominator from the rate of the same domain, areas and periods (``employment_rate``:
    count / rate × 100); a rate with no denominators (``--count-is-rate``) takes its counts from
    the count of the same domain. Without such a partner the error names what to give
    (``--denominator``), rather than an analysis of no rows.

    ``combine``: whether the analysis combines areas' rates into a group's (a partnership, a
    nation, the cohort against the rest, a comparator: Σ count / Σ denominator, which needs
    denominators). Listing areas by their own rate (:func:`worst_cohort`, :func:`worst_table`,
    the cohort of :class:`CohortSource`) does not: an area's baseline rate is its published rate,
    or the plain mean of its rates over the baseline periods, never weighted. So with
    ``combine=False`` a rate with no denominators (IMD 2010 on the 2001 LSOAs) is taken as
    published, with no counts looked for, and a note says so.

    A survey estimate (kind ``survey``: the Annual Population Survey) is refused, naming
    ``geo-cs analyse employment``: its groups' rates combine the districts' published intervals
    (:mod:`geo_cs.survey`), which a claimant panel's binomial intervals would misstate.

    IMD 2025 publishes the employment-deprived count and the rate in separate files, and no
    population; the lookup registers the 2021 LSOAs' codes:

    >>> from geo_cs import Store
    >>> from geo_cs.config import boundaries_dir
    >>> from geo_cs.ingest import ingest_indicator, ingest_lookup, load_spec
    >>> demo = boundaries_dir() / "demo"
    >>> store = Store.open(":memory:")
    >>> _ = ingest_lookup(store, demo / "lookups" / "lsoa11_lsoa21_ew.csv")
    >>> for spec, name in (("imd2025_indicators", "imd2025_england_lsoa21_indicators.csv"),
    ...                    ("imd2025_scores", "imd2025_england_lsoa21.csv")):
    ...     _ = ingest_indicator(store, demo / "indicators" / name, load_spec(spec))
    >>> source, notes = rate_source(store, "imd2025_indicators.employment_deprived", "lsoa2021")
    >>> source.denominator
    'imd2025.employment_rate'
    >>> print(notes[0])  # doctest: +ELLIPSIS
    imd2025_indicators.employment_deprived has no denominators: derived as count / imd2025.employment_rate ...
    >>> store.close()
    """
    _refuse_survey(store, [indicator] if isinstance(indicator, str) else list(indicator),
                   denominator, set_id)
    plain = RateSource(indicator, set_id, denominator, count_is_rate)
    if denominator is not None or not isinstance(indicator, str):
        return plain, []
    row = store.sql(
        "SELECT count(*), count(denominator), any_value(i.measure) FROM observations o "
        "LEFT JOIN indicators i USING (indicator_id, set_id) "
        "WHERE o.indicator_id = ? AND o.set_id = ? AND o.value IS NOT NULL",
        [indicator, set_id]).fetchone()
    if not row[0] or row[1]:
        return plain, []  # unknown (the panel says so) or with its own denominators
    if count_is_rate and not combine:
        # an area's own rate, as published: listing areas above a threshold adds nothing up
        return plain, [f"{indicator} on {set_id} holds rates with no denominators: each area is "
                       "taken at its published rate (a baseline of several periods is the plain "
                       "mean of its rates); no denominator is needed to list areas, only to "
                       "combine them into a group's rate"]
    stem = str(row[2] or indicator.rsplit(".", 1)[-1]).split("_")[0]
    want = "count" if count_is_rate else "rate"
    partners = store.sql(_PARTNERS_SQL, {"set_id": set_id, "indicator": indicator,
                                         "kind": want}).fetchall()
    same_domain = [p for p in partners if p[2].split("_")[0] == stem]
    if len(same_domain) == 1:
        partner = same_domain[0][0]
        if count_is_rate:
            return (RateSource(partner, set_id, indicator),
                    [f"{indicator} holds rates with no denominators: counts from {partner}, "
                     f"denominator derived as {partner} / {indicator} × 100"])
        return (RateSource(indicator, set_id, partner),
                [f"{indicator} has no denominators: derived as count / {partner} × 100 "
                 f"(give --denominator to use a population instead)"])
    populations = [r[0] for r in store.sql(
        "SELECT DISTINCT indicator_id FROM indicators WHERE set_id = ? AND kind = 'count' "
        "AND measure LIKE '%population%' ORDER BY 1", [set_id]).fetchall()]
    what = "rates (%)" if count_is_rate else "counts"
    options = [f"--denominator {p}" for p in populations]
    options += [f"--denominator {p[0]} (a rate: denominator derived as count / rate × 100)"
                for p in (partners if not count_is_rate else [])]
    if count_is_rate:
        options += [f"-i {p[0]} --denominator {indicator}" for p in partners]
    why = ("this analysis combines areas into groups (Σ count / Σ denominator), so it needs a "
           "denominator for each area" if count_is_rate else
           "an area's rate is its count over its denominator")
    raise InputError(
        f"{indicator} on {set_id} holds {what} with no denominators, so no rate of a group of "
        f"areas can be formed ({why}); give one of: "
        f"{'; '.join(options) or '--denominator POPULATION'}"
        + (f" (several {want} indicators share its periods: "
           f"{', '.join(p[0] for p in same_domain)})" if len(same_domain) > 1 else "")
        + (". Listing the areas whose own rate is above a threshold needs none: geo-cs analyse "
           "worst" if count_is_rate else "")
        + (f". {indicator} is a rate: add --count-is-rate"
           if not count_is_rate and _kind_of(store, indicator, set_id) == "rate" else ""))


def _refuse_survey(store: Store, counts: list[str], denominator: str | None, set_id: str) -> None:
    """InputError when a count or the denominator is a survey estimate (on any set): its
    rates go through ``geo-cs analyse employment``, which combines published intervals."""
    named = [*counts, *filter(None, [denominator])]
    rows = store.sql("SELECT DISTINCT indicator_id, set_id FROM indicators "
                     "WHERE list_contains(?, indicator_id) AND kind = 'survey' ORDER BY 2",
                     [named]).fetchall()
    if not rows:
        return
    survey = rows[0][0]
    sets = [s for i, s in rows if i == survey]
    on = set_id if set_id in sets else sets[0]
    role = "the denominator " if survey == denominator and survey not in counts else ""
    raise InputError(
        f"{role}{survey} is a survey estimate (Annual Population Survey, on {', '.join(sets)}), "
        "not a count or rate of claimants: a group's rate from it combines the districts' "
        f"published intervals; use geo-cs analyse employment -i {survey} -g {on}")


_panel_ids = itertools.count(1)

# Without a separate denominator indicator: the rows' own denominators, no period matching.
# den_var: the variance of a derived denominator (count / rate × 100) from the rate's rounding
# to ±$half points: the denominator lies in [100C/(r+h), 100C/(r−h)], a half-width of
# 100·C·h/(r² − h²), taken as uniform (variance half-width² / 3). NULL when not derived.
_PANEL_SQL_OWN_DENOMINATORS = """
CREATE OR REPLACE TEMP TABLE {name} AS
SELECT code, period_id,
       CASE WHEN $is_rate THEN value / 100 * row_den ELSE value END AS count,
       row_den AS denominator,
       CASE WHEN $is_rate THEN value ELSE 100 * value / nullif(row_den, 0) END AS rate,
       estimated_share,
       CASE WHEN $half IS NOT NULL AND NOT $is_rate AND row_den > 0
                 AND 100 * value / row_den > $half
            THEN power(100 * value * $half / (power(100 * value / row_den, 2) - $half * $half), 2) / 3
       END AS den_var
FROM (
    -- several count indicators (benefit groups) add up; a suppressed part makes the sum NULL
    SELECT code, period_id, CASE WHEN count(value) = count(*) THEN sum(value) END AS value,
           max(denominator) AS row_den, max(apportioned_share) AS estimated_share
    FROM observations
    WHERE list_contains($counts, indicator_id) AND set_id = $set_id
      AND ($periods IS NULL OR list_contains($periods, period_id))
    GROUP BY code, period_id
)
"""

_PANEL_SQL = """
CREATE OR REPLACE TEMP TABLE {name} AS
WITH c AS (
    -- several count indicators (benefit groups) add up; a suppressed part makes the sum NULL
    SELECT o.code, o.period_id, any_value(p.start_date) AS start_date,
           CASE WHEN count(o.value) = count(*) THEN sum(o.value) END AS value,
           max(o.denominator) AS row_den, max(o.apportioned_share) AS estimated_share
    FROM observations o JOIN periods p USING (period_id)
    WHERE list_contains($counts, o.indicator_id) AND o.set_id = $set_id
      AND ($periods IS NULL OR list_contains($periods, o.period_id))
    GROUP BY o.code, o.period_id
),
d AS (
    SELECT o.code, o.period_id AS den_period, o.value AS den
    FROM observations o
    WHERE o.indicator_id = $den AND o.set_id = $set_id AND o.value IS NOT NULL
),
nearest AS ({nearest}),
matched AS (
    SELECT c.*, d.den AS ind_den
    FROM c LEFT JOIN nearest n USING (period_id)
    LEFT JOIN d ON d.code = c.code AND d.den_period = n.den_period
)
SELECT code, period_id,
       CASE WHEN $is_rate THEN value / 100 * coalesce(ind_den, row_den) ELSE value END AS count,
       ind_den AS denominator,
       -- an area's own rate; a published rate stands even where no denominator is known
       CASE WHEN $is_rate THEN value ELSE 100 * value / nullif(ind_den, 0) END AS rate,
       estimated_share,
       CAST(NULL AS DOUBLE) AS den_var
FROM matched
"""

# Each count period's denominator period: the one whose midpoint is nearest the count period's
# (a mid-year estimate is a year whose midpoint is 1 July), the earlier on a tie. Computed over
# the distinct periods, then joined by code, so it costs nothing per area.
_NEAREST_SQL = """
    SELECT cp.period_id,
           arg_min(dp.period_id, 2 * abs(epoch(dp.start_date) + epoch(dp.end_date)
                                         - epoch(cp.start_date) - epoch(cp.end_date))
                                 + CASE WHEN dp.start_date > cp.start_date THEN 1 ELSE 0 END
           ) AS den_period
    FROM (SELECT * FROM periods WHERE period_id IN (
              SELECT DISTINCT period_id FROM observations
              WHERE list_contains($counts, indicator_id) AND set_id = $set_id)) cp,
         (SELECT * FROM periods WHERE period_id IN (
              SELECT DISTINCT period_id FROM observations
              WHERE indicator_id = $den AND set_id = $set_id AND value IS NOT NULL)) dp
    GROUP BY cp.period_id
"""

# The denominator derived from a rate indicator of the same areas and periods (IoD 2025 gives
# employment-deprived people in one file and the employment rate in another): count / rate ×
# 100, with den_var as above. Areas with a rate of 0 have no derivable denominator.
_PANEL_SQL_DERIVED = """
CREATE OR REPLACE TEMP TABLE {name} AS
WITH c AS (
    SELECT code, period_id, CASE WHEN count(value) = count(*) THEN sum(value) END AS value,
           max(apportioned_share) AS estimated_share
    FROM observations
    WHERE list_contains($counts, indicator_id) AND set_id = $set_id
      AND ($periods IS NULL OR list_contains($periods, period_id))
    GROUP BY code, period_id
),
r AS (
    SELECT code, period_id, value AS rate FROM observations
    WHERE indicator_id = $den AND set_id = $set_id AND value IS NOT NULL
)
SELECT c.code, c.period_id, c.value AS count,
       CASE WHEN r.rate > 0 THEN 100 * c.value / r.rate END AS denominator,
       r.rate, c.estimated_share,
       CASE WHEN r.rate > $half
            THEN power(100 * c.value * $half / (r.rate * r.rate - $half * $half), 2) / 3 END AS den_var
FROM c LEFT JOIN r USING (code, period_id)
"""


class Panel:
    """A claimant-rate panel for one geography set: area × period arrays (prepared at ingest,
    :mod:`geo_cs.panels`, or built from the observations when the counts carry their own
    denominators, :func:`geo_cs.panels.observed_panel`), else a temporary DuckDB table.

    >>> from geo_cs import Store
    >>> from geo_cs.config import boundaries_dir
    >>> from geo_cs.ingest import ingest_indicator, ingest_lookup, load_spec
    >>> demo = boundaries_dir() / "demo"
    >>> store = Store.open(":memory:")
    >>> _ = ingest_lookup(store, demo / "lookups" / "dz11_iz11_lad20_scotland.csv")
    >>> _ = ingest_indicator(store, demo / "indicators" / "simd2020_scotland_dz11_indicators.csv",
    ...                      load_spec("simd2020"))
    >>> panel = Panel(store, RateSource("simd2020.employment_deprived", "datazone2011"))
    >>> panel.periods()[["period_id", "period_label"]].to_dict("records")
    [{'period_id': 'simd2020', 'period_label': 'SIMD 2020 (2017 data)'}]
    >>> rates = panel.area_rates()                  # one row per data zone and period
    >>> rates.loc[rates["code"] == "S01009841", ["count", "denominator", "rate"]].round(1).values.tolist()
    [[117.0, 619.0, 18.9]]
    >>> store.close()
    """

    def __init__(self, store: Store, source: RateSource, periods: list[str] | None = None, *,
                 prepared: bool = True) -> None:
        self.store = store
        self.source = source
        #: the source's analysis-ready panel (geo_cs.panels), when it was prepared: then no
        #: table is built, and the methods below compute on its arrays
        self.dense: DensePanel | None = None
        #: the arrays the methods below compute on: the prepared panel's, or those built from
        #: the observations (a source with the rows' own denominators); None: the panel's table
        self.arrays: DensePanel | None = None
        if prepared and periods is None:
            key = panel_key(source.set_id, source.counts, source.denominator, source.count_is_rate)
            token = prepared_token(store, key)
            if token is not None:
                self.dense = self.arrays = load_dense(store, key, token)
                self.name = f"geo_cs_prepared_{token}"  # a cache key only: no such table
                self._periods, self._codes = self.dense.periods, list(self.dense.codes)
                self.denominator_note = self.dense.denominator_note
                return
        # temporary tables belong to one connection, so the cache lives on the Store object
        key = ("panel", source, tuple(periods) if periods else None, store.data_version())
        cached = store.cache.get(key)
        if cached is not None:
            # the same panel of the same data on this connection: reuse it (a "warm" panel)
            self.name, self._periods, self._codes, users = cached
            self.denominator_note = store.cache.get(("panel_note", self.name), "")
            self.arrays = store.cache.get(("panel_arrays", self.name))
            users.append(self)
            return
        self.name = f"geo_cs_panel_{next(_panel_ids)}"  # internal name, never from user input
        # the rows' own denominators, every period: the indicators, codes and periods read in
        # one pass, for the checks below and for the panel's arrays (geo_cs.panels)
        keys = (observed_keys(store, list(source.counts), source.set_id, None)
                if not source.denominator and periods is None else None)
        for indicator in [*source.counts, *filter(None, [source.denominator])]:
            found = (indicator in keys.indicators if keys is not None else store.sql(
                "SELECT count(*) FROM observations WHERE indicator_id = ? AND set_id = ?",
                [indicator, source.set_id]).fetchone()[0])
            if not found:
                known = [r[0] for r in store.sql(
                    "SELECT DISTINCT indicator_id FROM observations WHERE set_id = ? ORDER BY 1",
                    [source.set_id]).fetchall()]
                raise NotFoundError(
                    f"no observations of {indicator} on {source.set_id}; indicators on "
                    f"{source.set_id}: {', '.join(known) or 'none'}"
                )
        if keys is None or len({FREQUENCY.get(k, k) for k in keys.periods["period_kind"]}) > 1:
            _check_one_frequency(store, source)  # (with keys: one frequency among all their periods)
        self.denominator_note = _denominator_note(store, source)
        params = {"counts": source.counts, "set_id": source.set_id, "is_rate": source.count_is_rate,
                  "periods": periods}
        if source.denominator and _kind_of(store, source.denominator, source.set_id) == "rate":
            if source.count_is_rate:
                raise InputError(
                    f"{source.counts[0]} holds rates and {source.denominator} too: give a count "
                    "indicator with --indicator, or a population with --denominator")
            _check_same_periods(store, source, periods)
            sql = _PANEL_SQL_DERIVED
            del params["is_rate"]
            params["den"] = source.denominator
            params["half"] = rate_rounding_step(store, source.denominator, source.set_id) / 2
        elif source.denominator:
            sql = _PANEL_SQL
            params["den"] = source.denominator
        else:
            sql = _PANEL_SQL_OWN_DENOMINATORS
            step = _derived_rounding(store, source)
            params["half"] = step / 2 if step is not None else None
            # the same panel as arrays, summed by numpy from the observations read with integer
            # keys: no table, and no hash aggregation of every observation (geo_cs.panels)
            if keys is not None:
                self.arrays = observed_panel(store, keys, list(source.counts), source.set_id,
                                             source.count_is_rate, params["half"], self.denominator_note)
        if self.arrays is not None:  # no table of that name
            self._periods, self._codes = self.arrays.periods, list(self.arrays.codes)
            store.cache[("panel_arrays", self.name)] = self.arrays
        else:
            store.sql(sql.format(name=self.name, nearest=_NEAREST_SQL), params)
            self._periods = store.sql(
                f"SELECT period_id, p.label AS period_label, p.kind AS period_kind, p.start_date "
                f"FROM (SELECT DISTINCT period_id FROM {self.name}) JOIN periods p USING (period_id) "
                f"ORDER BY p.start_date"
            ).df()
            self._codes = [r[0] for r in store.sql(f"SELECT DISTINCT code FROM {self.name}").fetchall()]
        store.cache[key] = (self.name, self._periods, self._codes, [self])
        store.cache[("panel_note", self.name)] = self.denominator_note

    def periods(self) -> pd.DataFrame:
        """Periods in the panel, in time order, with their labels."""
        return self._periods.copy()

    def period_ids(self) -> list[str]:
        return self.periods()["period_id"].tolist()

    @property
    def kind(self) -> str | None:
        """The kind of the panel's periods (month, quarter, year, edition; one frequency)."""
        kinds = self._periods["period_kind"].unique().tolist()
        return kinds[0] if len(kinds) == 1 else None

    def period_objects(self) -> list[Period]:
        """The panel's periods as :class:`~geo_cs.periods.Period` objects, in time order."""
        rows = self.store.sql(
            "SELECT period_id, kind, label, start_date, end_date, data_year FROM periods "
            "WHERE list_contains(?, period_id) ORDER BY start_date", [self.period_ids()]).fetchall()
        return [Period(*row) for row in rows]

    def codes(self) -> list[str]:
        return list(self._codes)

    def aggregate(self, groups: pd.DataFrame) -> pd.DataFrame:
        """Σ count and Σ denominator per group and period over areas with both present.

        ``groups`` has columns ``group`` and ``code`` (an area may be in several groups).
        """
        if self.arrays is not None:
            return self.arrays.aggregate(groups)
        self.store.con.register("geo_cs_groups", groups[["group", "code"]])
        try:
            return self.store.sql(
                f"""
                SELECT g."group", p.period_id, sum(p.count) FILTER (WHERE ok) AS count,
                       sum(p.denominator) FILTER (WHERE ok) AS denominator,
                       count(*) FILTER (WHERE ok) AS n_areas,
                       sum(p.den_var) FILTER (WHERE ok) AS den_var,
                       count(*) FILTER (WHERE NOT ok) AS n_missing,
                       -- share of the count estimated through boundary changes (harmonised data)
                       coalesce(sum(p.count * coalesce(p.estimated_share, 0)) FILTER (WHERE ok)
                                / nullif(sum(p.count) FILTER (WHERE ok), 0), 0) AS estimated_share
                FROM (SELECT *, count IS NOT NULL AND denominator > 0 AS ok FROM {self.name}) p
                JOIN geo_cs_groups g USING (code)
                GROUP BY ALL
                """
            ).df()
        finally:
            self.store.con.unregister("geo_cs_groups")

    def area_rates(self, period_ids: list[str] | None = None, *,
                   with_estimated_share: bool = False) -> pd.DataFrame:
        """Each area's rate per period (for maps and for the cohort baseline), with ``den_var``:
        the variance of a denominator derived as count / rate × 100 (NaN where it was read)."""
        if self.arrays is not None:
            return self.arrays.area_rates(period_ids, with_estimated_share)
        extra = ", estimated_share" if with_estimated_share else ""
        return self.store.sql(
            f"SELECT code, period_id, count, denominator, rate, den_var{extra} FROM {self.name} "
            f"WHERE rate IS NOT NULL AND ($periods IS NULL OR list_contains($periods, period_id))",
            {"periods": period_ids},
        ).df()

    def drop(self) -> None:
        """Release this panel; its table goes when no other Panel of the same data uses it."""
        if self.dense is not None:
            # a prepared panel's arrays are kept by the process (geo_cs.panels); the cohorts
            # worked out on it go, as they do with a panel's table
            for key in [k for k in self.store.cache if k[0] == "cohort" and k[1] == self.name]:
                del self.store.cache[key]
            return
        for key, value in list(self.store.cache.items()):
            if key[0] == "panel" and value[0] == self.name:
                users = value[3]
                if self in users:
                    users.remove(self)
                if users:
                    return
                del self.store.cache[key]
        if self.store.cache.pop(("panel_arrays", self.name), None) is not None:
            # arrays, no table: what was worked out on them goes with them
            done = [k for k in self.store.cache if k[0] in ("cohort", "panel_note") and k[1] == self.name]
            for key in done:
                del self.store.cache[key]
            return
        self.store.sql(f"DROP TABLE IF EXISTS {self.name}")


def _kind_of(store: Store, indicator: str, set_id: str) -> str | None:
    row = store.sql("SELECT kind FROM indicators WHERE indicator_id = ? AND set_id = ?",
                    [indicator, set_id]).fetchone()
    return row[0] if row else None


def rate_rounding_step(store: Store, indicator: str, set_id: str) -> float:
    """The step a published rate indicator is rounded to, in points: the finest decimal place
    its values use (0.1 for IoD 2025's three-decimal fractions × 100 and for DWP's rates).

    Read from up to 20,000 distinct values; a rate with 6 or more decimals counts as unrounded
    (step 1e-6).
    """
    values = np.array([r[0] for r in store.sql(
        "SELECT DISTINCT value FROM observations WHERE indicator_id = ? AND set_id = ? "
        "AND value IS NOT NULL LIMIT 20000", [indicator, set_id]).fetchall()], dtype=float)
    for decimals in range(0, 6):
        scaled = values * 10 ** decimals
        if np.all(np.abs(scaled - np.round(scaled)) < 1e-6 * np.maximum(1, np.abs(scaled))):
            return 10.0 ** -decimals
    return 1e-6


def _derived_rounding(store: Store, source: RateSource) -> float | None:
    """The rounding step of the rate the count indicators' own denominators were derived from
    at ingest (table derived_denominators), or None when they were read, not derived."""
    has_table = store.sql("SELECT count(*) FROM information_schema.tables "
                          "WHERE table_name = 'derived_denominators'").fetchone()[0]
    if not has_table or source.count_is_rate:
        return None
    row = store.sql("SELECT max(rate_rounding) FROM derived_denominators "
                    "WHERE list_contains(?, indicator_id) AND set_id = ?",
                    [source.counts, source.set_id]).fetchone()
    return row[0] if row and row[0] is not None else None


def _denominator_note(store: Store, source: RateSource) -> str:
    """Where the panel's denominators come from, as every output row states it."""
    if source.denominator and _kind_of(store, source.denominator, source.set_id) == "rate":
        step = rate_rounding_step(store, source.denominator, source.set_id)
        return (f"derived: count / {source.denominator} × 100, same area and period (the rate "
                f"rounded to {step:g}; intervals widened for it)")
    if source.denominator:
        rows = store.sql(
            f"SELECT d.label, min(c.start_date), max(c.start_date), arg_min(c.label, c.start_date), "
            f"arg_max(c.label, c.start_date) FROM ({_NEAREST_SQL}) n "
            "JOIN periods c USING (period_id) JOIN periods d ON d.period_id = n.den_period "
            "GROUP BY d.label ORDER BY 2",
            {"counts": source.counts, "set_id": source.set_id, "den": source.denominator}).fetchall()
        used = "; ".join(f"{den} for {first}" + (f" – {last}" if last != first else "")
                         for den, _, _, first, last in rows)
        return (f"{source.denominator}, the estimate nearest each period (mid-year estimates "
                f"refer to 30 June): {used or 'none'}")
    step = _derived_rounding(store, source)
    if step is not None:
        return (f"the rows' own, derived at ingest as count / rate × 100 (the rate rounded to "
                f"{step:g}; intervals widened for it)")
    return "the rows' own (published with the counts)"


_PERIODS_OF_SQL = """
SELECT list(DISTINCT period_id ORDER BY period_id) FROM observations
WHERE list_contains($indicators, indicator_id) AND set_id = $set_id AND value IS NOT NULL
  AND ($periods IS NULL OR list_contains($periods, period_id))
"""


def _check_same_periods(store: Store, source: RateSource, periods: list[str] | None) -> None:
    """Refuse a denominator derived from a rate (count / rate × 100) that lacks a period of the
    count. Such a denominator is joined period by period; where it has none, the panel would
    hold counts with no denominator and a map would show the count itself, as if it were the
    rate: a figure the user did not ask for (and, under disclosure control, a count in a role
    the control does not expect)."""
    def periods_of(indicators: list[str]) -> list[str]:
        found = store.sql(_PERIODS_OF_SQL, {"indicators": indicators, "set_id": source.set_id,
                                            "periods": periods}).fetchone()[0]
        return list(found or [])

    counted = periods_of(source.counts)
    rated = periods_of([source.denominator])
    missing = [p for p in counted if p not in set(rated)]
    if missing:
        raise InputError(
            f"denominator={source.denominator} has no values for period "
            f"{', '.join(missing)} of {' + '.join(source.counts)} on {source.set_id} (its periods: "
            f"{', '.join(rated) or 'none'}); a denominator derived from a rate must be of the "
            "same period as the count: name one that is, or no denominator")


def _check_one_frequency(store: Store, source: RateSource) -> None:
    """Refuse a series whose count indicators come at different frequencies (a monthly claimant
    count added to a quarterly one): analysis never mixes them silently."""
    kinds = store.sql(
        "SELECT o.indicator_id, list(DISTINCT p.kind ORDER BY p.kind) FROM observations o "
        "JOIN periods p USING (period_id) WHERE list_contains(?, o.indicator_id) AND o.set_id = ? "
        "GROUP BY 1 ORDER BY 1", [source.counts, source.set_id]).fetchall()
    frequencies = {FREQUENCY.get(k, k) for _, ks in kinds for k in ks}
    if len(frequencies) > 1:
        listing = "; ".join(f"{ind}: {', '.join(FREQUENCY.get(k, k) for k in ks)}" for ind, ks in kinds)
        raise InputError(
            f"{source.label} on {source.set_id} mixes frequencies ({listing}); analyse one "
            "frequency at a time (name one indicator), or aggregate the monthly series to quarters "
            "first"
        )


# -- rates of groups ----------------------------------------------------------------------------

def add_rates(frame: pd.DataFrame, params: MethodParams) -> pd.DataFrame:
    """Rate, Wilson interval, rounding SD and small-number flag from count and denominator."""
    out = frame.copy()
    out["rate"], out["rate_low"], out["rate_high"] = rate_with_interval(
        out["count"], out["denominator"], params.confidence)
    if "den_var" in out and out["den_var"].notna().any():
        # a derived denominator is uncertain by its rate's rounding: widen (stats docstring)
        out["rate_low"], out["rate_high"] = widen_for_denominator(
            out["rate"], out["rate_low"], out["rate_high"], out["denominator"], out["den_var"],
            params.confidence)
        out["denominator_sd"] = np.sqrt(out.pop("den_var"))
    else:
        out = out.drop(columns="den_var", errors="ignore")
    if "n_areas" in out:
        out["rounding_sd"] = rounding_sd(out["n_areas"], params.rounding_step)
    out["small"] = (out["count"] < params.small_count) | (out["denominator"] < params.small_denominator)
    return out


def _with_periods(frame: pd.DataFrame, panel: Panel) -> pd.DataFrame:
    """Add period labels and order rows by group (partnership, nation…) then time."""
    periods = panel._periods
    if frame["period_id"].isin(periods["period_id"]).all() and periods["period_id"].is_unique:
        # the panel's own periods (always, but for hand-made frames): columns by position, not
        # a merge — the same columns and order at a fraction of the cost
        at = pd.Index(periods["period_id"]).get_indexer(frame["period_id"])
        out = frame.reset_index(drop=True)
        extra = {c: periods[c].to_numpy()[at] for c in periods.columns if c != "period_id"}
        out = pd.concat([out, pd.DataFrame(extra, index=out.index)], axis=1)
        keys = [c for c in ("partnership", "group", "nation", "area") if c in out]
        if not any(out[k].isna().any() for k in keys):
            # the same stable order as sort_values, from integer keys
            order = np.lexsort((out["start_date"].to_numpy(),
                                *[pd.factorize(out[k], sort=True)[0] for k in reversed(keys)]))
            return out.iloc[order].drop(columns="start_date")
    else:
        out = frame.merge(panel.periods(), on="period_id", how="left")
    keys = [c for c in ("partnership", "group", "nation", "area") if c in out]
    return out.sort_values([*keys, "start_date"], kind="stable").drop(columns="start_date")


def _provenance(frame: pd.DataFrame, panel: Panel, params: MethodParams, **extra: str) -> pd.DataFrame:
    out = frame.copy()
    out["indicator"] = panel.source.label
    out["geography"] = panel.source.set_id
    out["denominator_source"] = getattr(panel, "denominator_note", "")
    for key, value in extra.items():
        out[key] = value
    out["method"] = params.to_json()
    return out.reset_index(drop=True)


def group_rates(panel: Panel, groups: pd.DataFrame, params: MethodParams | None = None) -> pd.DataFrame:
    """Rates of groups of areas per period, with intervals and flags."""
    params = params or MethodParams()
    rates = add_rates(panel.aggregate(groups), params)
    return _provenance(_with_periods(rates, panel), panel, params)


def index_of_count(rates: pd.DataFrame, base_period: str, confidence: float = 0.95) -> pd.DataFrame:
    """Add ``index`` (count / count at ``base_period`` × 100) with its interval, per group."""
    if base_period not in set(rates["period_id"]):
        raise NotFoundError(
            f"base period {base_period!r} is not in the series; periods: "
            f"{', '.join(dict.fromkeys(rates['period_id']))}"
        )
    base = rates[rates["period_id"] == base_period].set_index("group")["count"]
    out = rates.copy()
    out["index"], out["index_low"], out["index_high"] = index_interval(
        out["count"], out["group"].map(base), confidence)
    out["index_base"] = base_period
    return out


def gap_with(rates: pd.DataFrame, reference: pd.DataFrame, reference_name: str) -> pd.DataFrame:
    """Add the gap (rate − reference rate, in points) per period, with Newcombe's interval."""
    ref = reference.drop_duplicates("period_id").set_index("period_id")
    out = rates.copy()
    out["reference"] = reference_name
    out["reference_rate"] = out["period_id"].map(ref["rate"])
    low, high = difference_interval(
        out["rate"], out["rate_low"], out["rate_high"], out["reference_rate"],
        out["period_id"].map(ref["rate_low"]), out["period_id"].map(ref["rate_high"]))
    out["gap"] = out["rate"] - out["reference_rate"]
    out["gap_low"], out["gap_high"] = low, high
    return out


# -- partnerships and reference areas -------------------------------------------------------

def partnership_groups(
    store: Store, partnerships: list[Partnership], set_id: str, when: date | None = None
) -> tuple[pd.DataFrame, dict[str, Resolution]]:
    """Membership table (group = partnership id) and each partnership's resolution.

    Kept on the connection with the resolutions it is made of (each is cached by
    :func:`~geo_cs.partnerships.resolve`): the table is rebuilt only when one of them is."""
    resolutions = {p.id: resolve(store, p, set_id, when) for p in partnerships}
    key = ("partnership_groups", tuple(id(r) for r in resolutions.values()), tuple(resolutions))
    found = store.cache.get(key)
    if found is None or any(a is not b for a, b in zip(found[1], resolutions.values(), strict=True)):
        frames = [pd.DataFrame({"group": pid, "code": r.codes}) for pid, r in resolutions.items()]
        table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["group", "code"])
        found = (table, list(resolutions.values()))
        store.cache[key] = found
    return found[0].copy(), resolutions


# Small areas reaching a region through up to three lookup hops (LSOA -> ward -> district -> region).
_AREAS_IN_REGION = """
WITH RECURSIVE walk(code, cur_set, cur_code, depth) AS (
    SELECT from_code, to_set, to_code, 1 FROM lookup_links WHERE from_set = $set_id
    UNION ALL
    SELECT w.code, l.to_set, l.to_code, w.depth + 1
    FROM walk w JOIN lookup_links l ON l.from_set = w.cur_set AND l.from_code = w.cur_code
    WHERE w.depth < 3 AND w.cur_set <> 'rgn2019'
)
SELECT DISTINCT code FROM walk WHERE cur_set = 'rgn2019' AND cur_code = $region
"""


def reference_groups(panel: Panel, reference: str) -> pd.DataFrame:
    """Areas of a reference aggregated from the panel: ``gb``, ``nation:E|W|S`` or
    ``region:CODE`` (an English region, reached through the lookups, e.g. LSOA → ward →
    district → region)."""
    codes = pd.Series(panel.codes(), dtype=object)
    if reference == "gb":
        chosen = codes[codes.str[0].isin(["E", "W", "S"])]
    elif reference.startswith("nation:"):
        chosen = codes[codes.str[0] == reference.split(":", 1)[1]]
    elif reference.startswith("region:"):
        region = reference.split(":", 1)[1]
        set_id = panel.source.set_id
        found = panel.store.sql(_AREAS_IN_REGION, {"set_id": set_id, "region": region}).df()
        if found.empty:
            raise NotFoundError(
                f"reference {reference!r}: no lookup links {set_id} areas to region {region} "
                "(ingest lsoa11_ward19_lad19_ew.csv and ward19_lad19_rgn19.csv)")
        chosen = codes[codes.isin(set(found["code"]))]
    else:
        raise InputError(f"reference {reference!r}: expected gb, nation:E|W|S or region:CODE")
    return pd.DataFrame({"group": reference, "code": chosen})


def reference_rates(store: Store, panel: Panel, reference: str, params: MethodParams) -> pd.DataFrame:
    """Rates of a reference area: the source's own published figures when it has them (a GB
    row in the DWP tables), else the sum of the panel's areas (which covers only what was
    ingested — check ``n_areas``)."""
    published_set = {"gb": "gb"}.get(reference)
    published_code = None
    if reference.startswith("region:"):
        # DWP's tables carry their regions' own figures (set region2010): prefer those
        published_set, published_code = "region2010", reference.split(":", 1)[1]
    if published_set is not None:
        published = store.sql(
            "SELECT count(*) FROM observations WHERE list_contains(?, indicator_id) AND set_id = ? "
            "AND (? IS NULL OR code = ?)",
            [panel.source.counts, published_set, published_code, published_code]).fetchone()[0]
        if published:
            ref_panel = Panel(store, RateSource(panel.source.count, published_set,
                                                panel.source.denominator, panel.source.count_is_rate))
            codes = [c for c in ref_panel.codes() if published_code in (None, c)]
            rates = group_rates(ref_panel, pd.DataFrame({"group": reference, "code": codes}), params)
            ref_panel.drop()
            return rates
    return group_rates(panel, reference_groups(panel, reference), params)


def partnership_rates(
    store: Store, panel: Panel, partnerships: list[Partnership] | None = None, *,
    reference: str = "gb", base_period: str | None = None, when: date | None = None,
    params: MethodParams | None = None,
) -> pd.DataFrame:
    """Figures 4.3-4.6 for each partnership: rate, index of the count, gap with the reference."""
    params = params or MethodParams()
    partnerships = _applicable(partnerships, panel)
    if not partnerships:
        return _no_rows(panel, params)
    groups, resolutions = partnership_groups(store, partnerships, panel.source.set_id, when)
    rates = group_rates(panel, groups, params)
    base_period = base_period or panel.period_ids()[0]
    rates = index_of_count(rates, base_period, params.confidence)
    rates = gap_with(rates, reference_rates(store, panel, reference, params), reference)
    rates["partnership_version"] = rates["group"].map(
        {pid: f"{r.phase.name} ({r.phase.version}); {r.method}" for pid, r in resolutions.items()})
    rates = rates.rename(columns={"group": "partnership"})
    rates.attrs["notes"] = _empty_notes(resolutions, panel) + _coverage_notes(panel)
    rates.attrs["no_coverage"] = sorted(panel.no_coverage)
    return rates


def _empty_notes(resolutions: dict[str, Resolution], panel: Panel) -> list[str]:
    """Say which partnerships have no areas of the panel's geography (rather than drop them)."""
    notes = []
    for pid, r in resolutions.items():
        if r.areas.empty:
            notes.append(f"{pid}: no {panel.source.set_id} area falls inside it (its members are "
                         "smaller than this geography's areas); it has no rows")
        if not r.straddling.empty:
            notes.append(f"{pid}: {r.straddling['code'].nunique()} {panel.source.set_id} areas straddle "
                         f"its boundary by more than 5% (assigned by point-on-surface)")
    return notes


def _nations(panel: Panel) -> set[str]:
    """The nations (first letters of the codes) the panel's areas are in, worked out once."""
    holder = panel.arrays if panel.arrays is not None else panel  # a prepared panel's, once per process
    found = getattr(holder, "_nations_of_codes", None)
    if found is None:
        found = {c[0] for c in panel._codes}
        holder._nations_of_codes = found
    return found


def _applicable(partnerships: list[Partnership] | None, panel: Panel) -> list[Partnership]:
    """Partnerships whose nation the panel's data cover; the others are set aside as having
    *no coverage* (``panel.no_coverage``, reported in the notes): IoD 2025 covers England only,
    so the Scottish and Welsh partnerships have no figures from it — no rows, and a note."""
    partnerships = partnerships if partnerships is not None else get_partnerships()
    nations = _nations(panel)
    chosen = [p for p in partnerships
              if not p.nations or {NATION_CODE.get(n, n) for n in p.nations} & nations]
    panel.no_coverage = {p.id: ", ".join(p.nations) for p in partnerships if p not in chosen}
    return chosen


def _coverage_notes(panel: Panel) -> list[str]:
    covered = ", ".join(NATION_NAMES.get(n, n) for n in sorted(_nations(panel)))
    return [f"{pid}: no coverage — {panel.source.label} on {panel.source.set_id} has areas in "
            f"{covered or 'no nation'} only, not in {nations}; it has no rows"
            for pid, nations in getattr(panel, "no_coverage", {}).items()]


def _no_rows(panel: Panel, params: MethodParams) -> pd.DataFrame:
    """The (empty) table of an analysis none of whose partnerships the data cover."""
    table = _provenance(pd.DataFrame(columns=["partnership", "period_id", "period_label"]),
                        panel, params)
    table.attrs["notes"] = _coverage_notes(panel)
    table.attrs["no_coverage"] = sorted(getattr(panel, "no_coverage", {}))
    return table


NATION_CODE = {v: k for k, v in NATION_NAMES.items()}


# -- worst-performing neighbourhoods (NI 153) -------------------------------------------------

def worst_cohort(panel: Panel, params: MethodParams | None = None) -> pd.DataFrame:
    """Each area's baseline rate and whether it is in the worst-performing cohort.

    The baseline rate is the mean of the area's rates over ``params.baseline`` (smoothing
    seasonality, as the report does); an area is in the cohort when it *exceeds*
    ``params.threshold``. Areas lacking any baseline period are not classified (``worst`` is
    NA) and are counted with the rest. The cohort is fixed: later periods never change it.
    """
    params = params or MethodParams(baseline=resolve_baseline(panel, None))  # its frequency's default
    known = set(panel._periods["period_id"])
    missing = [p for p in params.baseline if p not in known]
    if missing:
        raise NotFoundError(
            f"baseline period(s) {', '.join(missing)} not in the {panel.source.label} series; "
            f"it has {', '.join(panel.period_ids())}"
        )
    key = ("cohort", panel.name, params.baseline, params.threshold)
    if key in panel.store.cache:
        return panel.store.cache[key].copy()
    # A rate must exceed the threshold by more than 1e-9 points, so that floating-point error
    # in count / denominator × 100 cannot lift a rate of exactly the threshold over it.
    if panel.arrays is not None:
        base = panel.arrays.cohort(params.baseline, params.threshold + THRESHOLD_EPSILON)
        panel.store.cache[key] = base
        return base.copy()
    base = panel.store.sql(
        f"""
        SELECT code, avg(rate) FILTER (WHERE ok) AS baseline_rate,
               count(*) FILTER (WHERE ok) AS n_baseline,
               avg(denominator) FILTER (WHERE ok) AS baseline_denominator,
               CASE WHEN count(*) FILTER (WHERE ok) = $n
                    THEN avg(rate) FILTER (WHERE ok) > $threshold END AS worst
        FROM (SELECT code, rate, denominator,
                     list_contains($baseline, period_id) AND rate IS NOT NULL AS ok
              FROM {panel.name})
        GROUP BY code ORDER BY code
        """,
        {"n": len(params.baseline), "threshold": params.threshold + THRESHOLD_EPSILON,
         "baseline": list(params.baseline)},
    ).df()
    base["worst"] = base["worst"].astype("boolean")
    base["n_baseline"] = base["n_baseline"].astype(int)
    panel.store.cache[key] = base
    return base.copy()


def ni153(
    store: Store, panel: Panel, partnerships: list[Partnership] | None = None, *,
    params: MethodParams | None = None, when: date | None = None,
    cohort: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Per partnership and period: the cohort's rate, the rest's, the gap and the cohort's size.

    Columns: partnership, period_id, cohort_rate (+ interval), rest_rate (+ interval), gap
    (cohort − rest, points, + interval), n_cohort, n_rest, cohort_share (of the working-age
    population), flags, provenance.
    """
    params = params or MethodParams(baseline=resolve_baseline(panel, None))  # its frequency's default
    partnerships = _applicable(partnerships, panel)
    if not partnerships:
        return _no_rows(panel, params)
    cohort = cohort if cohort is not None else worst_cohort(panel, params)
    groups, resolutions = partnership_groups(store, partnerships, panel.source.set_id, when)
    worst = set(cohort["code"].to_numpy(dtype=object)[cohort["worst"].fillna(False).to_numpy(dtype=bool)])
    if panel.arrays is not None:
        wide = panel.arrays.ni153_wide(groups, worst, params)
    else:
        wide = _ni153_wide(panel, groups, worst, params)
    versions = {pid: f"{r.phase.name} ({r.phase.version}); {r.method}" for pid, r in resolutions.items()}
    result = _ni153_table(wide, panel, params, versions)
    result.attrs["notes"] = _empty_notes(resolutions, panel) + _coverage_notes(panel)
    result.attrs["no_coverage"] = sorted(panel.no_coverage)
    return result


def _ni153_table(wide: pd.DataFrame, panel: Panel, params: MethodParams,
                 versions: dict[str, str]) -> pd.DataFrame:
    """The NI 153 table from per partnership and period sums and rates of both roles
    (columns ``{role}_{value}``): the gap, the cohort's size and share, periods, provenance."""
    for role in ("cohort", "rest"):
        for col in ("count", "denominator", "rate", "rate_low", "rate_high", "n_areas", "small",
                    "estimated_share"):
            if f"{role}_{col}" not in wide:
                wide[f"{role}_{col}"] = np.nan
    add_gap(wide)
    wide["n_cohort"] = wide.pop("cohort_n_areas").fillna(0).astype(int)
    wide["n_rest"] = wide.pop("rest_n_areas").fillna(0).astype(int)
    wide["cohort_small"] = wide["cohort_small"].astype("boolean")
    wide["rest_small"] = wide["rest_small"].astype("boolean")
    wide["partnership_version"] = wide["partnership"].map(versions)
    return _provenance(_with_periods(wide, panel), panel, params)


def ni153_of_rows(rows: pd.DataFrame, partnership: str, version: str, cohort: set[str],
                  rest: set[str], panel: Panel, params: MethodParams) -> pd.DataFrame:
    """NI 153 of one group from the given area rows (code, period_id, count, denominator,
    estimated_share) rather than from the panel: the table :func:`ni153` gives, for a cohort
    and a rest named by their codes. A custom area under disclosure control is summed this way
    from its areas' *published* figures (a withheld area has no count and is not counted), so
    that no choice of custom areas tells more than the published areas do.

    >>> import pandas as pd
    >>> rows = pd.DataFrame({"code": ["a", "b", "c"], "period_id": "p", "count": [30.0, 5.0, None],
    ...                      "denominator": [100.0, 100.0, None], "estimated_share": 0.0})
    >>> params = MethodParams(baseline=("p",))
    >>> row = ni153_of_rows(rows, "x", "x", {"a"}, {"b", "c"}, _RowsPanel(["p"]), params).iloc[0]
    >>> [round(float(row[c]), 1) for c in ("cohort_rate", "rest_rate", "gap", "n_cohort", "n_rest")]
    [30.0, 5.0, 25.0, 1.0, 1.0]
    """
    ok = rows[rows["count"].notna() & rows["denominator"].notna()]
    codes = ok["code"].to_numpy(dtype=object)
    in_cohort = pd.Index(codes, dtype=object).isin(list(cohort))
    in_rest = pd.Index(codes, dtype=object).isin(list(rest)) & ~in_cohort
    ok = ok.assign(role=np.where(in_cohort, "cohort", "rest"))[in_cohort | in_rest]
    ok = ok.assign(weighted=ok["count"] * ok["estimated_share"].fillna(0))
    agg = (ok.groupby(["period_id", "role"])
           .agg(count=("count", "sum"), denominator=("denominator", "sum"), n_areas=("code", "nunique"),
                weighted=("weighted", "sum")).reset_index())
    agg["estimated_share"] = (agg.pop("weighted") / agg["count"].where(agg["count"] > 0)).fillna(0.0)
    agg = add_rates(agg, params)
    values = ["count", "denominator", "estimated_share", "n_areas", "rate", "rate_high", "rate_low", "small"]
    wide = agg.set_index(["period_id", "role"])[values].unstack("role").sort_index()
    wide.columns = [f"{role}_{value}" for value, role in wide.columns]
    wide = wide.reset_index()
    wide.insert(0, "partnership", partnership)
    return _ni153_table(wide, panel, params, {partnership: version})


class _RowsPanel:
    """The little of a :class:`Panel` that :func:`ni153_of_rows` reads (its periods and source), for
    its example."""

    def __init__(self, period_ids: list[str]) -> None:
        self._periods = pd.DataFrame({"period_id": period_ids, "period_label": period_ids,
                                      "start_date": pd.to_datetime(["2020-01-01"] * len(period_ids))})
        self.source = RateSource("x", "x")


def _ni153_wide(panel: Panel, groups: pd.DataFrame, worst: set, params: MethodParams) -> pd.DataFrame:
    """Per partnership and period the cohort's and the rest's sums, rates, intervals and flags
    (columns ``{role}_{value}``), from the panel's aggregation of each partnership's two roles."""
    # plain objects: set membership and concatenation of a few thousand codes, not Arrow kernels
    codes = groups["code"].to_numpy(dtype=object)
    role = np.where(pd.Index(codes, dtype=object).isin(worst), "cohort", "rest").astype(object)
    split = pd.DataFrame({"group": groups["group"].to_numpy(dtype=object) + "\x1f" + role, "code": codes})
    agg = panel.aggregate(split)
    parts = [g.split("\x1f") for g in agg["group"].tolist()]
    agg["partnership"] = [p[0] for p in parts]
    agg["role"] = [p[1] for p in parts]
    agg = add_rates(agg, params)
    # one row per (partnership, period, role): unstacking is pivot_table's "first", without its
    # grouping machinery
    values = ["count", "denominator", "estimated_share", "n_areas", "rate", "rate_high", "rate_low", "small"]
    wide = agg.set_index(["partnership", "period_id", "role"])[values].unstack("role").sort_index()
    wide.columns = [f"{role}_{value}" for value, role in wide.columns]
    return wide.reset_index()



def method_params(panel: Panel, *, threshold: float = 25.0, baseline: str | None = None,
                  tolerance: float = 0.1, confidence: float = 0.95) -> MethodParams:
    """The method's parameters for ``panel``, its baseline written as a user writes it.

    ``baseline`` is resolved in the series' own frequency (:func:`resolve_baseline`): a list
    (``simd2012``), a range (``2015-01..2015-12``) or None for the frequency's default.
    """
    return MethodParams(threshold=threshold, baseline=resolve_baseline(panel, baseline),
                        tolerance_pp=tolerance, confidence=confidence)


def worst_table(store: Store, panel: Panel, params: MethodParams, *,
                all_areas: bool = False) -> pd.DataFrame:
    """The worst-performing neighbourhoods as a table to read or hand on, worst first.

    :func:`worst_cohort` with each area's name, sorted by baseline rate (highest first), only
    the cohort unless ``all_areas``, and on every row what decided it: ``baseline`` (the
    periods, comma-separated), ``threshold``, ``indicator`` and ``geography``.

    Example
    -------
    Scotland's three worst data zones on SIMD 2016 (their names from NRS's lookup):

    >>> from geo_cs import Store
    >>> from geo_cs.config import boundaries_dir
    >>> from geo_cs.ingest import ingest_indicator, ingest_lookup, load_spec
    >>> demo = boundaries_dir() / "demo"
    >>> store = Store.open(":memory:")
    >>> _ = ingest_lookup(store, demo / "lookups" / "dz11_iz11_lad20_scotland.csv")
    >>> _ = ingest_indicator(store, demo / "indicators" / "simd2016_scotland_dz11_indicators.csv",
    ...                      load_spec("simd2016"))
    >>> panel = Panel(store, RateSource("simd2016.employment_deprived", "datazone2011"))
    >>> table = worst_table(store, panel, method_params(panel, baseline="simd2016"))
    >>> print(table.head(3)[["code", "name", "baseline_rate", "threshold"]].round(1).to_string(index=False))
         code                   name  baseline_rate  threshold
    S01008710           Niddrie - 05           52.3       25.0
    S01010138 Shettleston North - 02           51.7       25.0
    S01010323       Possil Park - 01           50.2       25.0
    >>> store.close()
    """
    from geo_cs.places import area_names

    cohort = worst_cohort(panel, params)
    cohort.insert(1, "name", cohort["code"].map(area_names(store, panel.source.set_id)))
    cohort = cohort.sort_values("baseline_rate", ascending=False)
    if not all_areas:
        cohort = cohort[cohort["worst"].fillna(False).astype(bool)]
    cohort["baseline"] = ",".join(params.baseline)
    cohort["threshold"] = params.threshold
    source = panel.source
    # an area's rate of a rate indicator is its value as published, whatever its denominators
    cohort["indicator"] = (f"{' + '.join(source.counts)} (rates as published)"
                           if source.count_is_rate and not source.denominator else source.label)
    cohort["geography"] = source.set_id
    return cohort


@dataclass(frozen=True)
class CohortSource:
    """A cohort fixed on another indicator and geography (``imd2010.employment_rate`` on
    ``lsoa2001``), carried onto each analysed geography through the crosswalk between them."""

    indicator: str
    set_id: str
    count_is_rate: bool = False


@dataclass
class NI153Series:
    """NI 153 over one or more geographies, and how the gap changed between two periods.

    ``table``: :func:`ni153` of every geography, concatenated (its ``attrs["notes"]`` hold what
    the sources and partnerships noted, in order). ``changes``: :func:`classify_changes` from
    ``first`` to ``last``, None when they are the same period or the table is empty.
    """

    table: pd.DataFrame
    params: MethodParams
    first: str | None
    last: str | None
    changes: pd.DataFrame | None

    @property
    def notes(self) -> list[str]:
        return list(self.table.attrs.get("notes", []))

    def label(self, period_id: str | None) -> str:
        """A period's label as the table shows it (``February 2011``), else its id."""
        labels = dict(zip(self.table["period_id"], self.table["period_label"], strict=True))
        return str(labels.get(period_id, period_id))


def ni153_series(
    store: Store, indicator: str, geographies: list[str], *, denominator: str | None = None,
    count_is_rate: bool = False, partnerships: list[Partnership] | None = None,
    threshold: float = 25.0, baseline: str | None = None, tolerance: float = 0.1,
    confidence: float = 0.95, when: date | None = None, from_period: str | None = None,
    to_period: str | None = None, cohort_from: CohortSource | None = None,
) -> NI153Series:
    """NI 153 for each partnership on one geography per nation (``["lsoa2011",
    "datazone2011"]``), the cohort fixed on each geography's own baseline or, with
    ``cohort_from``, on another indicator's and carried here; then the change in the gap from
    ``from_period`` to ``to_period`` (default: the first and last periods of the first
    geography, written as a user writes them: ``2017-10`` for the month ``2017m10``).

    Example
    -------
    SIMD 2016 and SIMD 2020 ingested as two periods of one indicator (``simd``), Glasgow's
    data zones from NRS's lookup and its 2019 recode from the list of district changes:

    >>> from geo_cs import Store
    >>> from geo_cs.config import boundaries_dir
    >>> from geo_cs.ingest import ingest_indicator, ingest_lookup
    >>> from geo_cs.ingest.indicators import spec_from_dict
    >>> demo = boundaries_dir() / "demo"
    >>> store = Store.open(":memory:")
    >>> for lookup in ("lad_changes_2014_2025.csv", "dz11_iz11_lad20_scotland.csv"):
    ...     _ = ingest_lookup(store, demo / "lookups" / lookup)
    >>> for year, data_year, population in ((2016, 2014, "Working_age_population_revised"),
    ...                                     (2020, 2017, "Working_age_population")):
    ...     spec = spec_from_dict({
    ...         "id": "simd", "layout": "wide", "geography": "datazone2011", "code_column": "dz11_code",
    ...         "period": {"edition": f"SIMD {year}", "data_year": data_year},
    ...         "measures": [{"id": "employment_deprived", "column": "Employment_count", "kind": "count",
    ...                       "denominator": population}]})
    ...     path = demo / "indicators" / f"simd{year}_scotland_dz11_indicators.csv"
    ...     _ = ingest_indicator(store, path, spec)
    >>> series = ni153_series(store, "simd.employment_deprived", ["datazone2011"],
    ...                       partnerships=get_partnerships(["glasgow"]))
    >>> print(series.table[["period_id", "n_cohort", "gap"]].round(1).to_string(index=False))
    period_id  n_cohort  gap
     simd2016       188 19.2
     simd2020       188 16.0
    >>> change = series.changes.iloc[0]
    >>> change["gap_direction"], [round(float(change[c]), 1) for c in ("gap_change_low", "gap_change_high")]
    ('closed', [-3.7, -2.9])
    >>> store.close()
    """
    tables: list[pd.DataFrame] = []
    source_notes: list[str] = []  # what the sources say comes before what the tables say
    first = last = None
    params = MethodParams(threshold=threshold, tolerance_pp=tolerance, confidence=confidence)

    def panel_of(name: str, set_id: str, den: str | None, is_rate: bool, combine: bool = True) -> Panel:
        source, said = rate_source(store, name, set_id, den, is_rate, combine=combine)
        source_notes.extend(said)
        return Panel(store, source)

    for set_id in geographies:
        panel = panel_of(indicator, set_id, denominator, count_is_rate)
        params = method_params(panel, threshold=threshold, baseline=baseline,
                               tolerance=tolerance, confidence=confidence)
        cohort = None
        if cohort_from is not None:
            # the cohort is a list of areas by their own rate: no denominator needed
            source = panel_of(cohort_from.indicator, cohort_from.set_id, None, cohort_from.count_is_rate,
                              combine=False)
            cohort = worst_cohort(source, method_params(source, threshold=threshold,
                                                        tolerance=tolerance, confidence=confidence))
            if cohort_from.set_id != set_id:
                cohort = carry_cohort(store, cohort, f"{cohort_from.set_id}->{set_id}")
        tables.append(ni153(store, panel, partnerships, params=params, when=when, cohort=cohort))
        if first is None:
            periods = panel.period_ids()
            first = resolve_baseline(panel, from_period)[0] if from_period else periods[0]
            last = resolve_baseline(panel, to_period)[-1] if to_period else periods[-1]
    table = pd.concat(tables, ignore_index=True)
    table.attrs["notes"] = source_notes + [n for t in tables for n in t.attrs.get("notes", [])]
    changes = None
    if not table.empty and first != last:
        changes = classify_changes(table, first, last, params)
    return NI153Series(table=table, params=params, first=first, last=last, changes=changes)


Direction = Literal["closed", "unchanged", "widened"]


def classify_changes(
    table: pd.DataFrame, from_period: str, to_period: str, params: MethodParams | None = None
) -> pd.DataFrame:
    """Per partnership: did the gap close and did the cohort's rate fall between two periods?

    A change counts only when it is larger than ``params.tolerance_pp`` *and* its interval
    excludes zero; otherwise it is "unchanged" and ``gap_change_within_noise`` says whether
    noise (not the tolerance) was the reason — so "closed the gap" is never claimed on noise.
    """
    params = params or MethodParams()
    for period in (from_period, to_period):
        if period not in set(table["period_id"]):
            raise NotFoundError(f"period {period!r} not in the table")
    a = table[table["period_id"] == from_period].set_index("partnership")
    b = table[table["period_id"] == to_period].set_index("partnership")
    b = b.reindex(a.index)
    out = pd.DataFrame(index=a.index)
    out["from_period"], out["to_period"] = from_period, to_period
    out["gap_from"], out["gap_to"] = a["gap"], b["gap"]
    # the gap "closes" when its size shrinks, so compare absolute gaps
    sign = np.sign(a["gap"]).replace(0, 1)
    change, low, high = change_interval(
        a["gap"] * sign, np.minimum(a["gap_low"] * sign, a["gap_high"] * sign),
        np.maximum(a["gap_low"] * sign, a["gap_high"] * sign),
        b["gap"] * sign, np.minimum(b["gap_low"] * sign, b["gap_high"] * sign),
        np.maximum(b["gap_low"] * sign, b["gap_high"] * sign))
    out["gap_change"], out["gap_change_low"], out["gap_change_high"] = change, low, high
    out["gap_direction"] = _direction(change, low, high, params.tolerance_pp, ("closed", "widened"))
    out["gap_change_within_noise"] = (np.abs(change) > params.tolerance_pp) & (low <= 0) & (high >= 0)
    rchange, rlow, rhigh = change_interval(
        a["cohort_rate"], a["cohort_rate_low"], a["cohort_rate_high"],
        b["cohort_rate"], b["cohort_rate_low"], b["cohort_rate_high"])
    out["cohort_rate_from"], out["cohort_rate_to"] = a["cohort_rate"], b["cohort_rate"]
    out["cohort_rate_change"], out["cohort_rate_change_low"], out["cohort_rate_change_high"] = (
        rchange, rlow, rhigh)
    out["cohort_rate_direction"] = _direction(rchange, rlow, rhigh, params.tolerance_pp,
                                              ("reduced", "increased"))
    out["n_cohort"] = a["n_cohort"]
    no_cohort = (a["n_cohort"] == 0).to_numpy()
    out.loc[no_cohort, ["gap_direction", "cohort_rate_direction"]] = "no cohort"
    out["method"] = params.to_json()
    return out.reset_index()


def _direction(change, low, high, tolerance: float, words: tuple[str, str]) -> np.ndarray:
    change, low, high = (np.asarray(x, dtype=float) for x in (change, low, high))
    # a change of exactly the tolerance between figures of one decimal (3.0 -> 2.9) is
    # 0.10000000000000009 in floating point: float noise is not "more than" the tolerance
    tolerance = tolerance + THRESHOLD_EPSILON
    down = (change < -tolerance) & (high < 0)
    up = (change > tolerance) & (low > 0)
    result = np.where(down, words[0], np.where(up, words[1], "unchanged")).astype(object)
    result[np.isnan(change)] = "no data"
    return result


def summarise_changes(changes: pd.DataFrame) -> str:
    """The report's sentence: ``13 of 15 closed the gap, 1 unchanged, 1 widened; …``."""
    n = len(changes)
    gap = changes["gap_direction"].value_counts()
    rate = changes["cohort_rate_direction"].value_counts()
    noise = int(changes["gap_change_within_noise"].sum())
    text = (f"{gap.get('closed', 0)} of {n} closed the gap, {gap.get('unchanged', 0)} unchanged, "
            f"{gap.get('widened', 0)} widened; {rate.get('reduced', 0)} of {n} reduced the rate in "
            f"their worst-performing neighbourhoods, {rate.get('unchanged', 0)} unchanged, "
            f"{rate.get('increased', 0)} increased")
    if gap.get("no cohort", 0):
        text += (f"; {gap['no cohort']} of {n} have no worst-performing neighbourhoods at this "
                 "threshold")
    if gap.get("no data", 0):
        text += f"; {gap['no data']} without data in one of the periods"
    if noise:
        text += f" ({noise} change{'s' if noise != 1 else ''} in the gap within noise, counted as unchanged)"
    return text


def nation_comparison(
    store: Store, panel: Panel, partnerships: list[Partnership] | None = None, *,
    params: MethodParams | None = None, when: date | None = None,
) -> pd.DataFrame:
    """Per nation and period: worst-performing vs other neighbourhoods, inside partnership
    areas and outside them, with the gap between the two in each."""
    params = params or MethodParams(baseline=resolve_baseline(panel, None))  # its frequency's default
    partnerships = _applicable(partnerships, panel)
    if not partnerships:
        raise InputError(f"no coverage: none of the partnerships lies in the nations of "
                         f"{panel.source.label} on {panel.source.set_id}")
    cohort = worst_cohort(panel, params)
    groups, _ = partnership_groups(store, partnerships, panel.source.set_id, when)
    inside = set(groups["code"])
    codes = cohort["code"]
    worst = cohort["worst"].fillna(False).astype(bool)
    frame = pd.DataFrame({
        "code": codes,
        "group": codes.str[0].map(NATION_NAMES).fillna("other") + "\x1f"
        + np.where(codes.isin(inside), "inside", "outside") + "\x1f"
        + np.where(worst, "cohort", "rest"),
    })
    agg = add_rates(panel.aggregate(frame), params)
    agg[["nation", "area", "role"]] = agg["group"].str.split("\x1f", expand=True)
    wide = agg.pivot_table(index=["nation", "area", "period_id"], columns="role",
                           values=["rate", "rate_low", "rate_high", "n_areas"], aggfunc="first")
    wide.columns = [f"{role}_{value}" for value, role in wide.columns]
    wide = wide.reset_index()
    for col in ("cohort_rate", "cohort_rate_low", "cohort_rate_high", "cohort_n_areas"):
        if col not in wide:
            wide[col] = np.nan
    wide["gap"] = wide["cohort_rate"] - wide["rest_rate"]
    wide["gap_low"], wide["gap_high"] = difference_interval(
        wide["cohort_rate"], wide["cohort_rate_low"], wide["cohort_rate_high"],
        wide["rest_rate"], wide["rest_rate_low"], wide["rest_rate_high"])
    return _provenance(_with_periods(wide, panel), panel, params)


@dataclass
class Comparator:
    """A comparator area: districts outside every partnership, chosen by list or by rule."""

    members: pd.DataFrame          # district code, name, baseline rate, rank
    rule: str
    rates: pd.DataFrame = field(default_factory=pd.DataFrame)


def comparator_area(
    store: Store, panel: Panel, *, districts: list[str] | None = None, worst_n: int | None = None,
    above: float | None = None, district_set: str = "lad2013", params: MethodParams | None = None,
) -> Comparator:
    """The comparator: an explicit list of districts, or the districts in no partnership whose
    baseline rate ranks among the worst ``worst_n`` or exceeds ``above``."""
    params = params or MethodParams()
    district_rows = store.sql("SELECT code, name FROM areas WHERE set_id = ? AND geom_27700 IS NOT NULL",
                              [district_set]).df()
    if district_rows.empty:
        raise InputError(f"no {district_set} boundaries in the store to build districts from")
    as_partnerships = [
        Partnership(id=code, name=name or code, nations=(), kind="district", confidence="",
                    member_set=district_set,
                    phases=(_single_phase(code),))
        for code, name in district_rows.itertuples(index=False)
    ]
    groups, _ = partnership_groups(store, as_partnerships, panel.source.set_id)
    baseline = [p for p in params.baseline if p in set(panel.period_ids())] or panel.period_ids()[:1]
    agg = panel.aggregate(groups)
    agg = agg[agg["period_id"].isin(baseline)]
    rates = agg.groupby("group").apply(
        lambda g: (g["count"] / g["denominator"]).mean() * 100, include_groups=False).rename("baseline_rate")
    in_partnership = set()
    for p in get_partnerships():
        for phase in p.phases:
            if p.member_set == district_set:
                in_partnership |= set(phase.members)
    candidates = rates.drop(index=[c for c in rates.index if c in in_partnership], errors="ignore")
    candidates = candidates.sort_values(ascending=False).to_frame()
    candidates["rank"] = np.arange(1, len(candidates) + 1)
    if districts:
        unknown = [d for d in districts if d not in rates.index]
        if unknown:
            raise InputError(f"comparator district(s) {', '.join(unknown)} have no data in the panel")
        chosen, rule = rates.loc[districts].to_frame(), f"listed: {', '.join(districts)}"
    elif worst_n:
        chosen, rule = candidates.head(worst_n), f"worst {worst_n} districts in no partnership"
    elif above is not None:
        chosen = candidates[candidates["baseline_rate"] > above]
        rule = f"districts in no partnership with baseline rate above {above}%"
    else:
        raise InputError("comparator: give districts, worst_n or above")
    names = dict(district_rows.itertuples(index=False))
    members = chosen.reset_index().rename(columns={"group": "code", "index": "code"})
    members["name"] = members["code"].map(names)
    member_groups = groups[groups["group"].isin(members["code"])].assign(group="comparator")
    comp = Comparator(members=members, rule=rule)
    comp.rates = group_rates(panel, member_groups, params)
    return comp


def _single_phase(code: str) -> Phase:
    """A district standing alone, at any date: lets districts resolve like partnerships."""
    return Phase(code, date.min, date.max, (code,))


def carry_cohort(
    store: Store, cohort: pd.DataFrame, crosswalk_id: str, min_share: float = 0.5
) -> pd.DataFrame:
    """The worst-performing cohort of one geography carried onto another through a crosswalk.

    A target area joins the cohort when at least ``min_share`` of what it receives (by crosswalk
    weight) comes from cohort areas, so a neighbourhood defined on 2001 LSOAs is tracked on the
    2011 and 2021 ones. Columns: code, worst, cohort_share (the share from cohort sources).
    """
    worst = cohort.loc[cohort["worst"].fillna(False).astype(bool), ["code"]]
    store.con.register("cohort_codes", worst)
    try:
        carried = store.sql(
            """
            SELECT x.to_code AS code,
                   coalesce(sum(x.weight) FILTER (WHERE c.code IS NOT NULL), 0) / sum(x.weight)
                       AS cohort_share
            FROM crosswalks x LEFT JOIN cohort_codes c ON c.code = x.from_code
            WHERE x.crosswalk_id = ?
            GROUP BY x.to_code
            """, [crosswalk_id]).df()
    finally:
        store.con.unregister("cohort_codes")
    if carried.empty:
        raise NotFoundError(f"no crosswalk {crosswalk_id!r}; build it first")
    carried["worst"] = pd.array(carried["cohort_share"] >= min_share, dtype="boolean")
    return carried[["code", "worst", "cohort_share"]]
