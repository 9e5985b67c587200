"""Indicator values per area and period, as maps, tiles and the features API show them.

A *measure* is what a map shows on one geography: one indicator (``simd2016.employment_deprived``)
or every indicator of the same measure on that geography (``employment_deprived`` on
``datazone2011`` = SIMD 2012 carried over from 2001 zones, SIMD 2016 and SIMD 2020), so a time
slider runs across editions. :func:`area_values` turns it into one row per area and period:

* counts with denominators and published rates → the rate in %, with its Wilson interval;
* scores, ranks and deciles (and counts with no denominator) → the value as published;
* ``worst``: whether the area is one of the worst-performing neighbourhoods — its mean rate over
  the baseline periods exceeds the threshold (NI 153), fixed for every period shown;
* ``estimated_share``: the share of the value that came through a boundary change (apportioned).

:func:`class_breaks` pools the values of every period so a legend stays put as the period moves.

Example
-------
SIMD 2016 and 2020 from the demo bundle (the lookup registers the 2011 data zones): one measure,
two editions, the cohort fixed on the first.

>>> from geo_cs import Store
>>> from geo_cs.config import boundaries_dir
>>> from geo_cs.ingest import ingest_indicator, ingest_lookup, load_spec
>>> from geo_cs.layers import resolve_measure, area_values
>>> demo = boundaries_dir() / "demo"
>>> store = Store.open(":memory:")
>>> _ = ingest_lookup(store, demo / "lookups" / "dz11_iz11_lad20_scotland.csv")
>>> for edition in ("simd2016", "simd2020"):
...     path = demo / "indicators" / f"{edition}_scotland_dz11_indicators.csv"
...     _ = ingest_indicator(store, path, load_spec(edition))
>>> measure = resolve_measure(store, "datazone2011", "employment_deprived")
>>> measure.indicators
('simd2016.employment_deprived', 'simd2020.employment_deprived')
>>> values = area_values(store, measure)
>>> values.baseline, values.threshold
(('simd2016',), 25.0)
>>> govan = values.at("simd2020").set_index("code").loc["S01009841"]    # Govan and Linthouse - 01
>>> [round(float(govan[c]), 1) for c in ("value", "value_low", "value_high", "baseline_value")]
[18.9, 16.0, 22.2, 24.4]
>>> bool(govan["worst"])                                # 24.4% on SIMD 2016: not above 25%
False
>>> store.close()
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from geo_cs.analysis import MethodParams, Panel, RateSource, resolve_baseline, worst_cohort
from geo_cs.disclosure import DisclosureControl
from geo_cs.errors import GeoCsError, InputError, NotFoundError
from geo_cs.periods import parse_period
from geo_cs.stats import widen_for_denominator, wilson_interval
from geo_cs.store import Store

RATE_KINDS = ("count", "rate")

#: What a partnership's map (web or print) shows when the user has not chosen: the first of these whose
#: geography holds the partnership's areas and the measure. Small areas first (the
#: neighbourhoods of NI 153, where outreach happens), then constituencies, which carry the
#: quarterly benefit series. A user's own choice (``geography=``, ``indicator=``) overrides this.
#:
#: Every partnership of a nation opens on the same geography (issue 28: Rhyl opened on
#: neighbourhoods and the other Welsh partnerships on constituencies). Wales has no count of
#: employment-deprived people per neighbourhood in the store, so its neighbourhoods show the
#: WIMD employment rank (most deprived darkest); the constituencies' claimant rate, with its
#: gap, stays one choice away and the page's sentence says so.
DEFAULT_VIEWS: tuple[tuple[str, str, str | None], ...] = (
    ("datazone2011", "employment_deprived", None),
    ("lsoa2011", "employment_deprived", "population2019_lsoa11.working_age_population"),
    ("lsoa2011", "employment_rank", None),
    ("wpc2010", "claimants", None),
    ("lsoa2011", "employment_score", None),
    # a store holding only the survey employment rate still opens on a map (issue 29)
    ("lad2021", "employment_rate", None),
    ("lad2020", "employment_rate", None),
)

COLUMNS = ["code", "period_id", "value", "value_low", "value_high", "count", "denominator",
           "worst", "baseline_value", "estimated_share"]


@dataclass(frozen=True)
class Measure:
    """What a layer shows: indicators of one kind on one geography set."""

    set_id: str
    name: str
    indicators: tuple[str, ...]
    kind: str
    label: str
    unit: str | None
    denominator: str | None = None

    @property
    def is_rate(self) -> bool:
        return self.kind in RATE_KINDS


_MEASURES_SQL = """
SELECT i.indicator_id, i.measure, i.kind, i.unit, i.label
FROM indicators i
WHERE i.set_id = ? AND EXISTS (
    SELECT 1 FROM observations o WHERE o.indicator_id = i.indicator_id AND o.set_id = i.set_id)
ORDER BY i.measure, i.indicator_id
"""


def available_measures(store: Store, set_id: str) -> pd.DataFrame:
    """Indicators with observations on ``set_id``: indicator_id, measure, kind, unit, label."""
    return store.sql(_MEASURES_SQL, [set_id]).df()


def resolve_measure(store: Store, set_id: str, name: str, denominator: str | None = None) -> Measure:
    """The measure ``name`` on ``set_id``: an indicator id, or a measure name covering editions.

    Raises :class:`NotFoundError` naming the valid values when ``name`` is neither.
    """
    return measure_from(available_measures(store, set_id), set_id, name, denominator)


def measure_from(known: pd.DataFrame, set_id: str, name: str, denominator: str | None = None) -> Measure:
    """:func:`resolve_measure` over ``known`` (:func:`available_measures` of ``set_id``, read
    once by the caller).

    >>> known = pd.DataFrame({"indicator_id": ["a.rate"], "measure": ["rate"], "kind": ["rate"],
    ...                       "unit": ["%"], "label": ["A rate"]})
    >>> measure_from(known, "lsoa2011", "rate").indicators
    ('a.rate',)
    """
    rows = [r for r in _records(known) if r.indicator_id == name]
    if not rows:
        rows = [r for r in _records(known) if r.measure == name]
    if not rows:
        choices = sorted(set(known["measure"])) + sorted(known["indicator_id"])
        raise NotFoundError(
            f"indicator {name!r} has no observations on {set_id}; valid: {_listing(choices)}")
    if denominator is not None and rows[0].kind == "survey":
        raise InputError(f"{name} is a survey estimate with its own published denominator; "
                         "give no denominator")
    if denominator is not None and (known.loc[known["indicator_id"] == denominator, "kind"]
                                    == "survey").any():
        raise InputError(f"denominator {denominator!r} is a survey rate, not a count of people")
    if denominator is not None and not (known["indicator_id"] == denominator).any():
        raise NotFoundError(
            f"denominator {denominator!r} has no observations on {set_id}; valid: "
            f"{_listing(sorted(known['indicator_id']))}"
        )
    return _measure(set_id, name, rows, denominator)


def measures_of(known: pd.DataFrame, set_id: str) -> dict[str, Measure]:
    """Every measure of ``known`` (:func:`available_measures` of ``set_id``) by name, made in one
    pass: a page listing the measures of a set costs one query and one pass however many a
    file brought (issue 27: 2,000 measures, each resolved by its own query and scan, made
    ``/collections`` take 25 s and then time out for good). A measure whose editions mix
    kinds is left out: it can only be named by one of its indicators."""
    groups: dict[str, list] = {}
    for row in _records(known):
        groups.setdefault(row.measure, []).append(row)
    out = {}
    for name, rows in groups.items():
        if len({r.kind for r in rows}) == 1:
            out[name] = _measure(set_id, name, rows)
    return out


def _records(known: pd.DataFrame) -> list:
    return list(known[["indicator_id", "measure", "kind", "unit", "label"]].itertuples(index=False))


def _listing(names: list[str], most: int = 40) -> str:
    """Valid values for an error message: all of them, or the first ``most`` and how many more."""
    if not names:
        return "none"
    more = f" … and {len(names) - most} more" if len(names) > most else ""
    return ", ".join(names[:most]) + more


def _measure(set_id: str, name: str, rows: list, denominator: str | None = None) -> Measure:
    kinds = sorted({r.kind for r in rows})
    if len(kinds) > 1:
        raise InputError(
            f"measure {name!r} on {set_id} mixes kinds ({', '.join(kinds)}); name one indicator: "
            f"{', '.join(r.indicator_id for r in rows)}"
        )
    # the latest published (not harmonised) edition's label names the measure best
    published = [r for r in rows if "harmonised" not in str(r.label).lower()]
    last = (published or rows)[-1]
    return Measure(set_id, name, tuple(r.indicator_id for r in rows), kinds[0], last.label,
                   last.unit if isinstance(last.unit, str) else None, denominator)


def measure_panel(store: Store, measure: Measure) -> Panel:
    """The claimant-rate panel of a rate measure (its editions' counts form one series)."""
    count = measure.indicators if len(measure.indicators) > 1 else measure.indicators[0]
    return Panel(store, RateSource(count, measure.set_id, measure.denominator,
                                   count_is_rate=measure.kind == "rate"))


@dataclass
class AreaValues:
    """Every area's value in every period of a measure, with the cohort of the baseline."""

    measure: Measure
    frame: pd.DataFrame          # COLUMNS, one row per code and period
    periods: pd.DataFrame        # period_id, period_label, start_date (time order)
    baseline: tuple[str, ...]
    threshold: float
    disclosure: DisclosureControl | None = None  # the control the figures are under, if any

    @property
    def period_ids(self) -> list[str]:
        return self.periods["period_id"].tolist()

    @property
    def unit(self) -> str:
        return "%" if self.measure.is_rate and self.frame["denominator"].notna().any() else (
            self.measure.unit or "")

    def check_period(self, period: str | None) -> str:
        """``period`` if the measure has it (default: the latest), else NotFoundError naming them."""
        if period is None:
            return self.period_ids[-1]
        if period not in self.period_ids:
            # the user's own way of writing one of the series' periods (2017-10 for 2017m10)
            kinds = set(self.periods["period_kind"]) if "period_kind" in self.periods else set()
            if len(kinds) == 1 and kinds <= {"month", "quarter", "year"}:
                try:
                    canonical = parse_period(period, next(iter(kinds))).period_id
                except ValueError:
                    canonical = None
                if canonical in self.period_ids:
                    return canonical
            raise NotFoundError(
                f"period {period!r} not in {self.measure.name} on {self.measure.set_id}; valid: "
                f"{', '.join(self.period_ids)}"
            )
        return period

    def at(self, period: str | None) -> pd.DataFrame:
        """One row per area for ``period`` (default: the latest)."""
        period = self.check_period(period)
        return self.frame[self.frame["period_id"] == period].reset_index(drop=True)


def area_values(
    store: Store, measure: Measure, *, baseline: tuple[str, ...] | None = None,
    threshold: float = 25.0, confidence: float = 0.95,
    disclosure: DisclosureControl | None = None,
) -> AreaValues:
    """Values, intervals, cohort flags and estimated shares of ``measure`` for every area and period.

    ``baseline`` (ids, texts or ``A..B`` ranges in the series' own frequency) defaults to the
    report's four quarters when the series has them, else its first four quarters, 12 months or
    first edition: see :func:`geo_cs.analysis.resolve_baseline`. With ``disclosure``, counts are
    rounded and small rates suppressed (column ``suppressed``), and the worst-performing cohort
    is chosen on the published rates (see :mod:`geo_cs.disclosure`).
    """
    if measure.kind == "survey":
        frame, periods = survey_values(store, measure)
        return AreaValues(measure, _published_survey(frame, disclosure), periods, (), threshold,
                          disclosure)
    if measure.is_rate:
        panel = measure_panel(store, measure)
        try:
            rates = panel.area_rates(with_estimated_share=True)
            periods = panel.periods()
            if measure.denominator is not None and not rates["denominator"].notna().any():
                # never fall back to the count's own values: the user asked for a rate
                raise InputError(
                    f"denominator={measure.denominator} gives no denominator for any area and "
                    f"period of {measure.name} on {measure.set_id}: name a denominator of the "
                    "same areas and periods, or none")
            if rates["denominator"].notna().any() or measure.kind == "rate":
                chosen = resolve_baseline(panel, baseline)
                params = MethodParams(threshold=threshold, baseline=chosen, confidence=confidence)
                cohort = worst_cohort(panel, params)
                frame = _rate_frame(rates, cohort, confidence)
                published = _published(frame[COLUMNS], disclosure, confidence, chosen, threshold)
                return AreaValues(measure, published, periods, chosen, threshold, disclosure)
        finally:
            panel.drop()
    frame, periods = _plain_values(store, measure)
    published = _published(frame[COLUMNS], disclosure, confidence, counts=measure.kind == "count")
    return AreaValues(measure, published, periods, (), threshold, disclosure)


def _published(frame: pd.DataFrame, disclosure: DisclosureControl | None, confidence: float,
               baseline: tuple[str, ...] | None = None, threshold: float | None = None,
               counts: bool = False) -> pd.DataFrame:
    if disclosure is None:
        return frame.assign(suppressed=False)
    return disclosure.area_values(frame, confidence, baseline, threshold, counts=counts)


def _rate_frame(rates: pd.DataFrame, cohort: pd.DataFrame, confidence: float) -> pd.DataFrame:
    frame = rates.rename(columns={"rate": "value"})
    frame["value_low"], frame["value_high"] = wilson_interval(frame["count"], frame["denominator"],
                                                              confidence)
    # a denominator derived from a rounded rate is uncertain by that rounding: each area's
    # interval is widened as the partnership's are (analysis.add_rates)
    frame["value_low"], frame["value_high"] = widen_for_denominator(
        frame["value"], frame["value_low"], frame["value_high"], frame["denominator"],
        frame.pop("den_var").astype(float), confidence)
    frame = frame.merge(cohort[["code", "baseline_rate", "worst"]].rename(
        columns={"baseline_rate": "baseline_value"}), on="code", how="left")
    frame["estimated_share"] = frame["estimated_share"].fillna(0.0)
    return frame


_PLAIN_SQL = """
SELECT o.code, o.period_id, o.value, coalesce(o.apportioned_share, 0) AS estimated_share
FROM observations o
WHERE list_contains($indicators, o.indicator_id) AND o.set_id = $set_id AND o.value IS NOT NULL
"""

_PERIODS_SQL = """
SELECT period_id, label AS period_label, kind AS period_kind, start_date FROM periods
WHERE period_id IN (SELECT DISTINCT period_id FROM observations
                    WHERE list_contains($indicators, indicator_id) AND set_id = $set_id)
ORDER BY start_date
"""


def _plain_values(store: Store, measure: Measure) -> tuple[pd.DataFrame, pd.DataFrame]:
    params = {"indicators": list(measure.indicators), "set_id": measure.set_id}
    frame = store.sql(_PLAIN_SQL, params).df()
    for column in ("value_low", "value_high", "count", "denominator", "baseline_value"):
        frame[column] = np.nan
    frame["worst"] = pd.array([pd.NA] * len(frame), dtype="boolean")
    return frame, store.sql(_PERIODS_SQL, params).df()


_SURVEY_SQL = """
SELECT o.code, o.period_id, o.value, o.value - s.half_width AS value_low,
       o.value + s.half_width AS value_high, s.numerator AS count, o.denominator,
       s.half_width, s.reliability
FROM observations o JOIN survey_estimates s USING (indicator_id, set_id, code, period_id)
WHERE list_contains($indicators, o.indicator_id) AND o.set_id = $set_id
"""


def survey_values(store: Store, measure: Measure) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A survey measure's areas as published (:mod:`geo_cs.ingest.survey`): the rate, its
    published 95% interval (none where none is published), the numerator as ``count``, the
    denominator, ``half_width`` and ``reliability`` (unreliable, missing, withheld or None).
    No interval is recomputed: a survey's comes from its design, not from a binomial count."""
    params = {"indicators": list(measure.indicators), "set_id": measure.set_id}
    frame = store.sql(_SURVEY_SQL, params).df()
    frame["worst"] = pd.array([pd.NA] * len(frame), dtype="boolean")
    frame["baseline_value"] = np.nan
    frame["estimated_share"] = 0.0
    return frame, store.sql(_PERIODS_SQL, params).df()


def _published_survey(frame: pd.DataFrame, disclosure: DisclosureControl | None) -> pd.DataFrame:
    """Survey figures as published. ONS has already controlled them (people rounded to the
    nearest 100, samples under 3 withheld); with disclosure control on, geo-cs also rounds the
    numerator and denominator (a *derived* denominator is not rounded by ONS) and withholds an
    area whose numerator or denominator is under the minimum, in every role, as for any rate.
    The published rate and its interval are kept, not recomputed from the rounded figures."""
    frame = frame.copy()
    frame["suppressed"] = False
    if disclosure is None:
        return frame
    small = disclosure.withheld(frame["count"]) | disclosure.withheld(frame["denominator"])
    frame["count"] = np.where(small, np.nan, disclosure.round(frame["count"]))
    frame["denominator"] = np.where(small, np.nan, disclosure.round(frame["denominator"]))
    for column in ("value", "value_low", "value_high", "half_width"):
        frame.loc[small, column] = np.nan
    frame["suppressed"] = small
    return frame


# -- classes for the legend -------------------------------------------------------------------

SCHEMES = ("quantiles", "fisher_jenks", "equal_interval", "own")


#: At most this many own breaks (the palette has 9 colours; the data's maximum may add one class).
MAX_OWN_BREAKS = 8


def check_breaks(breaks: list[float] | tuple[float, ...]) -> list[float]:
    """Own class breaks as given, or InputError saying what is wrong with them: they must be
    finite numbers, strictly increasing, at most :data:`MAX_OWN_BREAKS`.

    >>> check_breaks([10, 20, 30])
    [10.0, 20.0, 30.0]
    >>> check_breaks([10, 10, 10])
    Traceback (most recent call last):
    ...
    geo_cs.errors.InputError: breaks=10,10,10: each break must be above the one before (10 is not above 10)
    """
    bounds = [float(b) for b in breaks]
    shown = ",".join(f"{b:g}" for b in bounds)
    bad = [b for b in bounds if not math.isfinite(b)]
    if bad:
        raise InputError(f"breaks={shown}: expected finite numbers, not {bad[0]:g}")
    if not bounds:
        raise InputError("breaks: expected at least one number, e.g. breaks=10,20,30")
    if len(bounds) > MAX_OWN_BREAKS:
        raise InputError(f"breaks={shown}: at most {MAX_OWN_BREAKS} breaks (9 classes with the maximum)")
    for low, high in itertools.pairwise(bounds):
        if not high > low:
            raise InputError(f"breaks={shown}: each break must be above the one before "
                             f"({high:g} is not above {low:g})")
    return bounds


def parse_breaks(text: str | None) -> tuple[float, ...] | None:
    """Own breaks from a query parameter or option (``"10,20,30"``), checked by
    :func:`check_breaks`; None for none.

    >>> parse_breaks("10, 20,30")
    (10.0, 20.0, 30.0)
    """
    if text is None or not text.strip():
        return None
    try:
        numbers = [float(b) for b in text.split(",") if b.strip()]
    except ValueError as exc:
        raise InputError(f"breaks={text!r}: expected comma-separated numbers, e.g. 10,20,30") from exc
    return tuple(check_breaks(numbers))


def breaks_note(breaks: list[float], values: np.ndarray | pd.Series) -> str | None:
    """A sentence for the page when own breaks do not fit the data (all above or below every
    value, so one class holds every area), else None."""
    data = pd.Series(values, dtype=float).dropna()
    if data.empty:
        return None
    low, high = float(data.min()), float(data.max())
    shown = ",".join(f"{b:g}" for b in breaks)
    if breaks[0] >= high:
        return (f"Your own class limits ({shown}) are all at or above the highest value ({high:.1f}): "
                "every area falls in the first class, so the map has one colour.")
    if breaks[-1] < low:
        return (f"Your own class limits ({shown}) are all below the lowest value ({low:.1f}): "
                "every area falls in the last class, so the map has one colour.")
    return None


def quantile_breaks(data: np.ndarray, k: int) -> np.ndarray:
    """Upper bounds of ``k`` quantile classes: mapclassify's ``Quantiles`` bins (linear
    interpolation between order statistics; tied bounds collapse, leaving fewer classes).

    mapclassify takes some 5 s to import (it compiles its numba kernels and loads scikit-learn
    and scipy.stats), which every export command and every server worker's first map would
    pay; quantiles and equal intervals need neither (tests/test_tiles_layers.py checks these two
    against mapclassify on random data). Fisher-Jenks still comes from mapclassify.
    """
    width = 100.0 / k
    percents = np.arange(width, 100 + width, width)
    if percents[-1] > 100.0:
        percents[-1] = 100.0
    ordered = np.sort(np.asarray(data, dtype=float))
    bounds = []
    # scipy.stats.scoreatpercentile's "fraction" interpolation, operation for operation, so the
    # bounds are mapclassify's to the last bit (numpy's percentile differs in rounding)
    for index in percents / 100.0 * (len(ordered) - 1):
        lower = int(index)
        if lower == index:
            bounds.append(ordered[lower])
            continue
        below, above = (lower - index) + 1, index - lower
        bounds.append((ordered[lower] * below + ordered[lower + 1] * above) / (below + above))
    return np.unique(np.asarray(bounds))


def equal_interval_breaks(data: np.ndarray, k: int) -> np.ndarray:
    """Upper bounds of ``k`` classes of equal width: mapclassify's ``EqualInterval`` bins."""
    low, high = float(np.min(data)), float(np.max(data))
    width = (high - low) / k
    if not width > 0:
        # one value, or a range too small to split in floating point (0 and 5e-324: the width
        # underflows to 0, where mapclassify divides by zero): one class holds them all
        return np.array([high])
    cuts = np.arange(low + width, high + width, width)
    if len(cuts) > k:  # floating point can overshoot by one
        cuts = cuts[:k]
    cuts[-1] = high
    return cuts


def is_whole(values: np.ndarray | pd.Series) -> bool:
    """Whether every value is a whole number (ranks, deciles, counts): their classes then get
    whole-number bounds.

    >>> is_whole([1, 2.0, 30]), is_whole([1, 2.5])
    (True, False)
    """
    data = np.asarray(pd.Series(values, dtype=float).dropna())
    return bool(data.size) and bool(np.all(data == np.round(data)))


def whole_breaks(bounds: list[float], maximum: float) -> list[float]:
    """Class bounds of whole numbers drawn from ``bounds``: each rounded down (for whole-number
    values ``v <= 339.8`` is ``v <= 339``, so no value changes class), the last one the data's
    maximum, bounds that meet merged.

    >>> whole_breaks([339.8, 953.6, 1909.0], 1909.0)
    [339.0, 953.0, 1909.0]
    """
    out: list[float] = []
    for bound in [*bounds[:-1], maximum]:
        whole = float(math.floor(bound + 1e-9))
        if not out or whole > out[-1]:
            out.append(whole)
    return out


def class_labels(breaks: list[float], unit: str = "", lowest: float | None = None,
                 whole: bool = False) -> list[str]:
    """The legend's words for each class (upper bounds ``breaks``): whole-number classes as
    ``1 – 339``, ``340 – 953`` (thousands separated); others as ``up to 6.6%``, ``6.6 – 12.5%``.

    >>> class_labels([339.0, 953.0], lowest=1, whole=True)
    ['1 – 339', '340 – 953']
    >>> class_labels([6.61, 12.5], "%")
    ['up to 6.6%', '6.6 – 12.5%']
    """
    labels, low = [], None
    for high in breaks:
        if whole:
            start = (lowest if low is None else low + 1)
            if start is None:
                text = f"up to {high:,.0f}"
            elif start >= high:
                text = f"{high:,.0f}"
            else:
                text = f"{start:,.0f} – {high:,.0f}"
        else:
            text = f"up to {high:,.1f}" if low is None else f"{low:,.1f} – {high:,.1f}"
        labels.append(text + unit)
        low = high
    return labels


def class_breaks(values: np.ndarray | pd.Series, scheme: str = "quantiles", k: int = 5,
                 own: list[float] | None = None, whole: bool = False) -> list[float]:
    """Upper bounds of ``k`` classes of ``values`` (pooled across periods), as mapclassify
    draws them.

    ``scheme``: quantiles, fisher_jenks, equal_interval, or own (``own`` gives the upper bounds;
    the maximum is appended when the last one is below it). ``whole``: the values are whole
    numbers (ranks, deciles), so the bounds are too (:func:`whole_breaks`; own breaks are kept
    as given).

    >>> class_breaks([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], "equal_interval", k=3)
    [4.0, 7.0, 10.0]
    >>> class_breaks(range(1, 1001), "quantiles", k=3, whole=True)
    [334.0, 667.0, 1000.0]
    """
    data = np.asarray(pd.Series(values, dtype=float).dropna())
    if scheme not in SCHEMES:
        raise InputError(f"scheme {scheme!r}: expected one of {', '.join(SCHEMES)}")
    if not 2 <= k <= 9:
        raise InputError(f"k={k}: expected 2-9 classes")
    if data.size == 0:
        return []
    if scheme == "own":
        if not own:
            raise InputError("scheme 'own' needs breaks, e.g. breaks=10,20,30")
        bounds = check_breaks(own)
        return bounds if bounds[-1] >= data.max() else [*bounds, float(data.max())]
    k = min(k, len(np.unique(data)))
    if k < 2:
        return [float(data.max())]
    if scheme == "quantiles":
        bins = quantile_breaks(data, k)
    elif scheme == "equal_interval":
        bins = equal_interval_breaks(data, k)
    else:
        import warnings

        import mapclassify

        if data.size > 5000:
            # exact Fisher-Jenks is quadratic in the number of values; a sample keeps it interactive
            bins = mapclassify.FisherJenksSampled(data, k=k, pct=5000 / data.size).bins
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "Numba not installed": the pure version is fine
                bins = mapclassify.FisherJenks(data, k=k).bins
    if whole:
        return whole_breaks([float(b) for b in bins], float(data.max()))
    return [round(float(b), 6) for b in bins]


# -- a partnership's worst-performing neighbourhoods over time --------------------------------

def partnership_gap(
    store: Store, measure: Measure, partnership_id: str, *, baseline: tuple[str, ...] | None = None,
    threshold: float = 25.0, disclosure: DisclosureControl | None = None,
) -> pd.DataFrame:
    """NI 153 for one partnership on ``measure``: per period the cohort's rate, the rest's and
    the gap, with intervals (figure 4.7 of the report for that partnership), under
    ``disclosure`` control when given."""
    from geo_cs.analysis import ni153
    from geo_cs.partnerships import get_partnerships

    if not measure.is_rate:
        raise InputError(f"{measure.name} is a {measure.kind}, not a rate: the gap needs a rate")
    partnership = get_partnerships([partnership_id])[0]
    panel = measure_panel(store, measure)
    try:
        chosen = resolve_baseline(panel, baseline)
        params = MethodParams(threshold=threshold, baseline=chosen)
        if partnership.kind == "custom":
            return _custom_area_gap(store, measure, panel, partnership, params, disclosure)
        if disclosure is None:
            return ni153(store, panel, [partnership], params=params)
        # the cohort of what is published: chosen on the published rates, not the exact ones
        published = area_values(store, measure, baseline=chosen, threshold=threshold,
                                confidence=params.confidence, disclosure=disclosure).frame
        cohort = published.drop_duplicates("code")[["code", "worst"]]
        table = ni153(store, panel, [partnership], params=params, cohort=cohort)
        if table.empty:  # no coverage: the data hold none of the partnership's nations
            return table
        return disclosure.gap_table(table, params.confidence)
    finally:
        panel.drop()


def _custom_area_gap(store: Store, measure: Measure, panel: Panel, partnership, params: MethodParams,
                     disclosure: DisclosureControl | None) -> pd.DataFrame:
    """NI 153 of a custom area: its worst-performing areas against the rest of it, or against
    the rest of the partnership it was made in (every other area of it).

    Without disclosure control the exact counts are summed (:func:`geo_cs.analysis.ni153`).
    With it, the custom area's figures are sums of its areas' *published* figures
    (:func:`geo_cs.analysis.ni153_of_rows`): a custom area drawn around a withheld area, or two
    that differ by one, then tell nothing the published areas do not — a sum of exact counts,
    rounded once, would give a withheld count back by difference."""
    from geo_cs.analysis import ni153, ni153_of_rows
    from geo_cs.custom_areas import parse_area_id
    from geo_cs.partnerships import get_partnerships, resolve

    area = parse_area_id(partnership.id)
    codes = set(resolve(store, partnership, measure.set_id).codes)
    compared = codes
    if area.against_within:
        within = get_partnerships([area.within])[0]
        compared = set(resolve(store, within, measure.set_id).codes)
        outside = sorted(codes - compared)
        if outside:
            raise InputError(
                f"custom area: {len(outside)} of its areas ({', '.join(outside[:3])}"
                f"{'…' if len(outside) > 3 else ''}) are outside {within.phase_at(None).name}, so it "
                "cannot be compared with the rest of it; compare it with the rest of itself")
    version = f"{partnership.name} (custom area of {len(codes)} areas)" + (
        f" against the rest of {area.within}" if area.against_within else "")
    if disclosure is not None:
        published = area_values(store, measure, baseline=params.baseline, threshold=params.threshold,
                                confidence=params.confidence, disclosure=disclosure).frame
        worst = set(published.loc[published["worst"].fillna(False).astype(bool), "code"]) & codes
        rows = published[published["code"].isin(compared)]
        table = ni153_of_rows(rows, partnership.id, version, worst, compared - worst, panel, params)
        withheld = rows.loc[rows["count"].isna() & rows["code"].isin(codes), "code"].nunique()
        table = disclosure.gap_table(table, params.confidence)
        table.attrs["notes"] = [*table.attrs.get("notes", []), (
            "A custom area's figures are sums of its areas' published figures"
            + (f"; {withheld} of its areas {'is' if withheld == 1 else 'are'} withheld in some period "
               "and not counted there." if withheld else "."))]
        return table
    cohort = worst_cohort(panel, params)
    cohort = cohort.assign(worst=cohort["worst"].fillna(False).astype(bool) & cohort["code"].isin(codes))
    if not area.against_within:
        return ni153(store, panel, [partnership], params=params, cohort=cohort)
    table = ni153(store, panel, get_partnerships([area.within]), params=params, cohort=cohort)
    return table.assign(partnership=partnership.id, partnership_version=version)


def default_view(
    partnership: str, geography: str | None, indicator: str | None, denominator: str | None,
    has_areas, has_measure,
) -> tuple[str, str, str | None]:
    """(geography, indicator, denominator) for a partnership's map: what was asked, completed
    from :data:`DEFAULT_VIEWS`. ``has_areas(set_id)`` tells whether the partnership has areas in
    a set; ``has_measure(set_id, indicator)`` whether the measure has values for them."""
    if geography and indicator:
        return geography, indicator, denominator
    for set_id, default_indicator, default_denominator in DEFAULT_VIEWS:
        if geography and set_id != geography:
            continue
        if has_areas(set_id) and has_measure(set_id, indicator or default_indicator):
            return set_id, indicator or default_indicator, denominator or default_denominator
    raise NotFoundError(
        f"no default map for partnership {partnership!r}: choose a geography and an indicator "
        f"(defaults tried: {', '.join(f'{s}/{i}' for s, i, _ in DEFAULT_VIEWS)})"
    )


def store_view(store: Store, partnership: str, geography: str | None = None, indicator: str | None = None,
               denominator: str | None = None) -> tuple[str, str, str | None]:
    """:func:`default_view` answered from the store directly (exports, scripts)."""
    from geo_cs.partnerships import get_partnerships, resolve

    found = get_partnerships([partnership])[0]
    codes: dict[str, set[str]] = {}

    def has_areas(set_id: str) -> bool:
        try:
            codes[set_id] = set(resolve(store, found, set_id).codes)
        except GeoCsError:
            return False
        return bool(codes[set_id])

    def has_measure(set_id: str, name: str) -> bool:
        try:
            measure = resolve_measure(store, set_id, name)
        except GeoCsError:
            return False
        return bool(store.sql(
            "SELECT count(*) FROM observations WHERE set_id = ? AND list_contains(?, indicator_id) "
            "AND list_contains(?, code) AND value IS NOT NULL",
            [set_id, list(measure.indicators), sorted(codes[set_id])]).fetchone()[0])

    return default_view(partnership, geography, indicator, denominator, has_areas, has_measure)


# -- what a map page offers and shows beside its figures ----------------------------------------

NATIONS = {"E": "England", "W": "Wales", "S": "Scotland"}


@dataclass(frozen=True)
class ViewChoice:
    """One map a partnership can be shown as, in plain words: which areas, which measure."""

    geography: str
    geography_label: str
    indicator: str                 # a measure name (its editions form one series)
    denominator: str | None
    label: str                     # e.g. "Employment-deprived people, % of working-age population"
    gap: bool = False              # a count over a population: gives the worst areas and the gap
    #: A published rate giving the same figures as a count of the same publication offered as
    #: a rate: that choice's (indicator, denominator). Only with ``one_per_figure=False``
    #: (otherwise the rate is left out), so that a list can fold one into the other.
    same_as: tuple[str, str | None] | None = None


def sentence_case(text: str) -> str:
    """``text`` with its first letter a capital (measure labels come from data files, some in
    lower case: "claimant rate").

    >>> sentence_case("claimant rate"), sentence_case("IMD score")
    ('Claimant rate', 'IMD score')
    """
    return text[:1].upper() + text[1:] if text else text


_SOURCES_SQL = ("SELECT indicator_id, source_id, coalesce(source_title, '') AS title FROM indicators "
                "WHERE set_id = ?")


def _same_source(a: tuple[str, str], b: tuple[str, str]) -> bool:
    """Whether two indicators come from one publication: the same source, or one title the
    start of the other's ("English Indices of Deprivation 2025" and its "..., underlying
    indicators")."""
    (id_a, title_a), (id_b, title_b) = a, b
    if id_a == id_b:
        return True
    return bool(title_a and title_b) and (title_a.startswith(title_b) or title_b.startswith(title_a))


_HELD_SQL = """
SELECT DISTINCT o.indicator_id
FROM observations o JOIN (SELECT unnest($codes) AS code) c USING (code)
WHERE o.set_id = $set_id AND o.value IS NOT NULL
"""


def view_choices(store: Store, set_ids: list[str],
                 codes: dict[str, list[str]] | None = None, *, one_per_figure: bool = True,
                 ) -> list[ViewChoice]:
    """The maps worth offering on ``set_ids`` (those a partnership has areas in): every measure
    with observations, its rate over the working-age population first where the defaults give
    one (:data:`DEFAULT_VIEWS`), labelled in words rather than ids. With ``codes`` (a
    partnership's areas per set), only measures with a value for one of them: a Welsh
    partnership is not offered England's measures, which would draw an empty map.

    A published rate is left out when the same publication's count is offered as a rate of
    the same areas (SIMD's "employment deprivation rate" beside "employment-deprived people,
    % of working-age people"; DWP's "claimant rate" beside "claimants, %"): two near-identical
    entries confuse, and only the count gives the worst-performing neighbourhoods and the gap.
    The rate stays reachable by its address. ``one_per_figure=False`` keeps them all, such a
    rate marked with the choice it duplicates (:attr:`ViewChoice.same_as`): the list of
    collections (:func:`geo_cs.features.list_collections`) folds it into that one and keeps its
    old id as a redirect."""
    labels = dict(store.sql("SELECT set_id, label FROM geography_sets").fetchall())
    out: list[ViewChoice] = []
    for set_id in set_ids:
        known = available_measures(store, set_id)
        if known.empty:
            continue
        geography_label = labels.get(set_id, set_id)
        measures = measures_of(known, set_id)
        if codes is not None:
            held = {r[0] for r in store.sql(
                _HELD_SQL, {"set_id": set_id, "codes": sorted(codes.get(set_id, []))}).fetchall()}
            measures = {name: m for name, m in measures.items() if held.intersection(m.indicators)}
        sources = {r[0]: (r[1], r[2]) for r in store.sql(_SOURCES_SQL, [set_id]).fetchall()}
        # count measures offered as a rate: their indicators, each with (measure, denominator)
        as_rates: dict[str, tuple[str, str | None]] = {}
        for view_set, measure, denominator in DEFAULT_VIEWS:
            if view_set == set_id and denominator and measure in measures and (
                    known["indicator_id"] == denominator).any():
                label = measures[measure].label
                den_label = known.loc[known["indicator_id"] == denominator, "label"].iloc[0]
                out.append(ViewChoice(set_id, geography_label, measure, denominator,
                                      f"{sentence_case(label)}, % of {den_label[0].lower()}{den_label[1:]}",
                                      gap=True))
                as_rates.update(dict.fromkeys(measures[measure].indicators, (measure, denominator)))
        with_denominators = {r[0] for r in store.sql(
            "SELECT DISTINCT indicator_id FROM observations WHERE set_id = ? AND denominator IS NOT NULL",
            [set_id]).fetchall()}
        plain: list[tuple[Measure, str, bool]] = []
        for m in measures.values():
            gap = m.kind == "count" and bool(with_denominators.intersection(m.indicators))
            if gap:
                suffix = ", % of working-age people"   # counts published with their population
                as_rates.update({i: (m.name, None) for i in m.indicators if i in with_denominators})
            else:
                suffix = " (number)" if m.kind == "count" else ""
            plain.append((m, suffix, gap))
        for m, suffix, gap in sorted(plain, key=lambda entry: entry[0].name):
            same_as = _same_figures(m, as_rates, sources)
            if one_per_figure and same_as is not None:
                continue   # the same figures as a count offered as a rate: one entry, the one with a gap
            out.append(ViewChoice(set_id, geography_label, m.name, None, f"{sentence_case(m.label)}{suffix}",
                                  gap=gap, same_as=same_as))
    return out


def _same_figures(m: Measure, as_rates: dict[str, tuple[str, str | None]],
                  sources: dict[str, tuple[str, str]]) -> tuple[str, str | None] | None:
    """The (measure, denominator) of the count offered as a rate that a published rate ``m``
    duplicates — every edition of ``m`` from the publication of one of that count's — or None."""
    if m.kind != "rate":
        return None
    first = None
    for i in m.indicators:
        match = next((as_rates[c] for c in as_rates
                      if _same_source(sources.get(i, (i, "")), sources.get(c, (c, "")))), None)
        if match is None:
            return None
        first = first or match
    return first


def area_index(store: Store, set_id: str, codes: list[str]) -> pd.DataFrame:
    """code, name, lon/lat bounds (west, south, east, north) and a point inside each area
    (lon, lat: the map page picks the areas whose point a drawn shape holds) of ``codes`` in
    ``set_id``."""
    return store.sql(
        "SELECT code, name, xmin AS west, ymin AS south, xmax AS east, ymax AS north, "
        "ST_X(ST_PointOnSurface(geom_4326)) AS lon, ST_Y(ST_PointOnSurface(geom_4326)) AS lat FROM areas "
        "WHERE set_id = ? AND list_contains(?, code) ORDER BY code", [set_id, sorted(codes)]).df()


def benchmarks(values: AreaValues) -> pd.DataFrame:
    """Per period, the rate of every area held in each nation and, for a set covering more than
    one nation, in Great Britain (Σ counts / Σ denominators): period_id, group, rate, n_areas.
    Empty for measures that are not rates. ``n_areas`` says how many areas the figure covers:
    a store may hold only part of a nation (the demo holds the partnerships' districts)."""
    frame = values.frame
    if values.unit != "%" or frame.empty:
        return pd.DataFrame(columns=["period_id", "group", "rate", "n_areas"])
    ok = frame[frame["count"].notna() & (frame["denominator"] > 0)]
    ok = ok.assign(group=ok["code"].str[0].map(NATIONS))
    sums = {"count": ("count", "sum"), "denominator": ("denominator", "sum"), "n_areas": ("code", "nunique")}
    by_nation = ok.groupby(["period_id", "group"]).agg(**sums).reset_index()
    frames = [by_nation]
    if ok["group"].nunique() > 1:   # a set of one nation (data zones): its GB figure is the same
        frames.append(ok.groupby("period_id").agg(**sums).reset_index().assign(group="Great Britain"))
    out = pd.concat(frames, ignore_index=True)
    out["rate"] = 100 * out["count"] / out["denominator"]
    return out[["period_id", "group", "rate", "n_areas"]]


_SOURCES_OF_SQL = """
SELECT DISTINCT coalesce(i.source_title, i.source_id) AS title, coalesce(i.publisher, '') AS publisher,
       coalesce(i.licence, '') AS licence
FROM indicators i
WHERE i.set_id = $set_id AND list_contains($indicators, i.indicator_id)
  AND ($codes IS NULL OR EXISTS (
      SELECT 1 FROM observations o
      WHERE o.indicator_id = i.indicator_id AND o.set_id = i.set_id AND list_contains($codes, o.code)
        AND ($periods IS NULL OR list_contains($periods, o.period_id))))
ORDER BY title
"""


def measure_sources(store: Store, set_id: str, indicator_ids: list[str] | tuple[str, ...],
                    codes: list[str] | None = None, periods: list[str] | None = None) -> pd.DataFrame:
    """Where the figures of ``indicator_ids`` on ``set_id`` come from: title, publisher and
    licence of each source (for a download's source line). With ``codes`` (and ``periods``),
    only the sources of those areas' figures: a Welsh map names the Welsh index, not England's
    edition of the same measure."""
    return store.sql(_SOURCES_OF_SQL, {"set_id": set_id, "indicators": list(indicator_ids),
                                       "codes": list(codes) if codes is not None else None,
                                       "periods": list(periods) if periods is not None else None}).df()


_CATALOGUE_SQL = """
WITH held AS (
    SELECT o.indicator_id, o.set_id, arg_min(p.label, p.start_date) AS first_period,
           arg_max(p.label, p.start_date) AS last_period, count(DISTINCT o.period_id) AS n_periods,
           min(p.start_date) AS first_start, max(p.start_date) AS last_start
    FROM observations o JOIN periods p USING (period_id)
    GROUP BY o.indicator_id, o.set_id
)
SELECT i.measure, i.indicator_id, i.kind, coalesce(i.unit, '') AS unit, i.label, i.set_id,
       coalesce(g.label, i.set_id) AS geography, coalesce(i.source_title, i.source_id) AS source,
       coalesce(i.publisher, '') AS publisher, coalesce(i.licence, '') AS licence,
       h.first_period, h.last_period, h.n_periods, h.first_start, h.last_start
FROM indicators i JOIN held h USING (indicator_id, set_id) LEFT JOIN geography_sets g USING (set_id)
ORDER BY lower(i.label), i.set_id, i.indicator_id
"""


def indicator_catalogue(store: Store) -> pd.DataFrame:
    """Every indicator with observations: its measure, kind, unit, label, geography (id and
    words), source, publisher, licence, and its first and last period in words with their
    start dates and number (the help page's list of data)."""
    return store.sql(_CATALOGUE_SQL).df()
