"""Intervals for rates, gaps, changes and indices: small, pure, vectorised functions.

Claimant counts are administrative totals, not samples, but a rate for a few hundred people moves
a lot from quarter to quarter by chance alone. We treat each count as binomial on its
denominator (the working-age population) so that an interval says how far a rate could move on
noise alone: Wilson's score interval for a rate (well behaved near 0 and for small
denominators), Newcombe's hybrid score interval for the difference of two rates (a gap), and the
two gaps' half-widths combined in quadrature for a change in a gap between periods (treating the
periods as independent, which is conservative when the same people are counted twice). An index
of counts uses the Poisson log-ratio interval.

DWP rounds published counts (to the nearest 5, or 10 for larger areas). Rounding one count to a
step *s* adds an error uniform on ±s/2, standard deviation s/√12 (1.44 for s = 5); summed over *n*
areas the errors mostly cancel, SD ≈ 1.44·√n, while the worst case is ±2.5·n. For 1,700 LSOAs
(Greater Manchester, ~200,000 claimants) that is an SD of ~60 claimants, 0.03% of the total; for
a cohort of five LSOAs with 300 claimants it is ~3 claimants (1%). :func:`rounding_sd` gives it
per row so small aggregates can be judged.

>>> lo, hi = wilson_interval(25, 100)
>>> round(float(lo), 2), round(float(hi), 2)
(17.55, 34.3)
"""

from __future__ import annotations

from statistics import NormalDist

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

#: A rate is above a threshold when it exceeds it by more than this (float noise is not "above").
THRESHOLD_EPSILON = 1e-9


def z_value(confidence: float = 0.95) -> float:
    """The two-sided standard normal quantile: 1.96 for 95%."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, not {confidence}")
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def wilson_interval(
    count: ArrayLike, denominator: ArrayLike, confidence: float = 0.95
) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for the rate count/denominator, in percent.

    NaN where the denominator is missing or not positive. Counts above the denominator are
    clipped (it happens with rounded counts on tiny populations).
    """
    c = np.asarray(count, dtype=float)
    n = np.asarray(denominator, dtype=float)
    z = z_value(confidence)
    with np.errstate(invalid="ignore", divide="ignore"):
        valid = n > 0
        p = np.where(valid, np.clip(c / np.where(valid, n, 1), 0, 1), np.nan)
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
        low = np.where(valid, centre - half, np.nan)
        high = np.where(valid, centre + half, np.nan)
    return np.clip(low, 0, 1) * 100, np.clip(high, 0, 1) * 100


def rate_with_interval(
    count: ArrayLike, denominator: ArrayLike, confidence: float = 0.95
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The rate count/denominator in percent (NaN without a positive denominator) and its
    Wilson interval: Σ counts over Σ denominators, whatever was summed."""
    c = np.asarray(count, dtype=float)
    n = np.asarray(denominator, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where(n > 0, c / n * 100, np.nan)
    return (rate, *wilson_interval(c, n, confidence))


def difference_interval(
    rate1: ArrayLike, low1: ArrayLike, high1: ArrayLike,
    rate2: ArrayLike, low2: ArrayLike, high2: ArrayLike,
) -> tuple[np.ndarray, np.ndarray]:
    """Newcombe's hybrid score interval for rate1 - rate2 from each rate's own interval.

    All in percent (or all in any one unit). Valid for independent groups, such as a cohort of
    neighbourhoods and the rest of its partnership.
    """
    r1, l1, h1 = (np.asarray(a, dtype=float) for a in (rate1, low1, high1))
    r2, l2, h2 = (np.asarray(a, dtype=float) for a in (rate2, low2, high2))
    diff = r1 - r2
    return (diff - np.sqrt((r1 - l1) ** 2 + (h2 - r2) ** 2),
            diff + np.sqrt((h1 - r1) ** 2 + (r2 - l2) ** 2))


def overlapping_difference(
    counts: ArrayLike, denominators: ArrayLike, in_a: ArrayLike, in_b: ArrayLike,
    confidence: float = 0.95,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """rate_A − rate_B in points with its interval, for two places that may share areas.

    The places are given by their disjoint parts (A only, both, B only: any number of parts on
    the last axis, which leading axes such as periods broadcast over): each part's count S_P and
    denominator N_P, and whether it lies in A and in B. Then rate_A − rate_B = Σ c_P·S_P with
    c_P = [P⊂A]/N_A − [P⊂B]/N_B, and, each part binomial on its own denominator and the parts
    independent, Var = Σ c_P²·N_P·p_P(1−p_P), p_P = S_P/N_P. A part in both places has
    c_P = 0 when the places are the same size and never counts twice: treating two overlapping
    places as independent samples would count the shared people in both and overstate the
    noise. For disjoint places it is the usual variance of two independent rates,
    p_A(1−p_A)/N_A + p_B(1−p_B)/N_B. NaN where either place has no positive denominator.

    Disjoint, 30 of 200 against 20 of 200; then overlapping, A = 10/100 + 20/100 shared and
    B = the shared 20/100 + 30/100:

    >>> [round(float(v), 2) for v in overlapping_difference([30, 20], [200, 200], [1, 0], [0, 1])]
    [5.0, -1.46, 11.46]
    >>> [round(float(v), 2) for v in overlapping_difference([10, 20, 30], [100, 100, 100],
    ...                                                     [1, 1, 0], [0, 1, 1])]
    [-10.0, -15.37, -4.63]
    """
    s = np.asarray(counts, dtype=float)
    n = np.asarray(denominators, dtype=float)
    a = np.asarray(in_a, dtype=bool)
    b = np.asarray(in_b, dtype=bool)
    z = z_value(confidence)
    with np.errstate(invalid="ignore", divide="ignore"):
        used = n > 0          # a part without people adds nothing to either place
        s, n = np.where(used, s, 0.0), np.where(used, n, 0.0)
        n_a = np.sum(np.where(a, n, 0.0), axis=-1, keepdims=True)
        n_b = np.sum(np.where(b, n, 0.0), axis=-1, keepdims=True)
        valid = (n_a > 0) & (n_b > 0)
        coefficient = (np.where(a, 1 / np.where(valid, n_a, 1), 0.0)
                       - np.where(b, 1 / np.where(valid, n_b, 1), 0.0))
        p = np.clip(s / np.where(used, n, 1), 0, 1)
        diff = np.sum(coefficient * s, axis=-1)
        half = z * np.sqrt(np.sum(coefficient**2 * n * p * (1 - p), axis=-1))
    valid = valid[..., 0]
    diff = np.where(valid, diff * 100, np.nan)
    half = np.where(valid, half * 100, np.nan)
    return diff, diff - half, diff + half


def change_interval(
    value1: ArrayLike, low1: ArrayLike, high1: ArrayLike,
    value2: ArrayLike, low2: ArrayLike, high2: ArrayLike,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Change value2 - value1 and its interval, half-widths combined in quadrature.

    Each side's lower and upper half-widths are combined separately, so asymmetric intervals
    stay asymmetric. Treats the two periods as independent (conservative for repeated
    measurements of the same areas).
    """
    v1, l1, h1 = (np.asarray(a, dtype=float) for a in (value1, low1, high1))
    v2, l2, h2 = (np.asarray(a, dtype=float) for a in (value2, low2, high2))
    change = v2 - v1
    return (change,
            change - np.sqrt((v2 - l2) ** 2 + (h1 - v1) ** 2),
            change + np.sqrt((h2 - v2) ** 2 + (v1 - l1) ** 2))


def index_interval(
    count: ArrayLike, base_count: ArrayLike, confidence: float = 0.95
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Index count/base×100 with a Poisson log-ratio interval (exp(±z·√(1/c + 1/b)))."""
    c = np.asarray(count, dtype=float)
    b = np.asarray(base_count, dtype=float)
    z = z_value(confidence)
    with np.errstate(invalid="ignore", divide="ignore"):
        index = np.where(b > 0, c / b * 100, np.nan)
        spread = np.where((c > 0) & (b > 0), z * np.sqrt(1 / c + 1 / b), np.nan)
    return index, index * np.exp(-spread), index * np.exp(spread)


def rounding_sd(n_areas: ArrayLike, step: float = 5.0) -> np.ndarray:
    """SD of the error in a sum of ``n_areas`` counts each rounded to ``step``: step·√(n/12)."""
    return step * np.sqrt(np.asarray(n_areas, dtype=float) / 12)


def widen_for_denominator(
    rate: ArrayLike, low: ArrayLike, high: ArrayLike, denominator: ArrayLike,
    denominator_variance: ArrayLike, confidence: float = 0.95,
) -> tuple[np.ndarray, np.ndarray]:
    """A rate's interval widened for the uncertainty of a derived denominator.

    The rate is R = 100·C/D; an error in D moves it by −R·dD/D, so the denominator adds a term
    of z·R·SD(D)/D, combined with the sampling interval in quadrature (the two are
    independent). ``denominator_variance`` is Var(D); NaN leaves the interval as it was.

    >>> low, high = widen_for_denominator([10.0], [9.0], [11.0], [1000.0], [100.0])
    >>> round(float(low[0]), 3), round(float(high[0]), 3)
    (8.981, 11.019)
    """
    r, lo, hi, d, var = (np.asarray(a, dtype=float) for a in
                         (rate, low, high, denominator, denominator_variance))
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        extra = np.where(np.isfinite(var) & (d > 0), z * r * np.sqrt(np.maximum(var, 0)) / d, 0.0)
    return r - np.hypot(r - lo, extra), r + np.hypot(hi - r, extra)


def add_gap(wide: pd.DataFrame) -> None:
    """Add, in place, the cohort's rate minus the rest's (``gap``) with its Newcombe interval,
    and the cohort's share of the population, from the two roles' columns of an NI 153 table."""
    wide["gap"] = wide["cohort_rate"] - wide["rest_rate"]
    wide["gap_low"], wide["gap_high"] = difference_interval(
        wide["cohort_rate"], wide["cohort_rate_low"], wide["cohort_rate_high"],
        wide["rest_rate"], wide["rest_rate_low"], wide["rest_rate_high"])
    total_den = wide["cohort_denominator"].fillna(0) + wide["rest_denominator"].fillna(0)
    wide["cohort_share"] = wide["cohort_denominator"].fillna(0) / total_den.where(total_den > 0)


# -- survey estimates (the APS employment rate) ------------------------------------------------
# A survey's interval reflects its sampling design, not a binomial count, so geo-cs never
# recomputes one: it combines the intervals ONS publishes. Districts are sampled independently,
# so the variance of a weighted sum of district rates is the sum of the weighted variances; a
# published 95% half-width c is z·SE, and the same z carries through, so half-widths combine
# like standard errors: √Σ (aᵢ·cᵢ)² for any linear combination Σ aᵢ·rᵢ. The weights (each
# district's share of the denominator) are taken as fixed, though they are survey estimates
# too: the combined interval is the rate's sampling interval given the population shares.

def linear_half_width(coefficients: ArrayLike, half_widths: ArrayLike) -> float:
    """Half-width of Σ aᵢ·rᵢ from the rates' half-widths cᵢ (independent samples): √Σ (aᵢ·cᵢ)².

    NaN when any rate that counts (aᵢ ≠ 0) has no published half-width.

    >>> round(linear_half_width([0.5, 0.5], [3.0, 4.0]), 3)
    2.5
    >>> linear_half_width([0.0, 1.0], [float("nan"), 2.0])    # a rate that does not count
    2.0
    """
    a = np.asarray(coefficients, dtype=float)
    c = np.asarray(half_widths, dtype=float)
    used = a != 0
    if np.isnan(c[used]).any():
        return float("nan")
    return float(np.sqrt(np.sum((a[used] * c[used]) ** 2)))


def combine_survey_rates(
    numerators: ArrayLike, denominators: ArrayLike, half_widths: ArrayLike,
) -> tuple[float, float]:
    """An aggregate's rate Σ numerators / Σ denominators × 100 and its 95% half-width
    √Σ (wᵢ·cᵢ)², wᵢ = denominatorᵢ / Σ denominators (NaN without every half-width).

    Two districts of 100,000 people at 70% ± 3 and 300,000 at 74% ± 2:

    >>> rate, hw = combine_survey_rates([70_000, 222_000], [100_000, 300_000], [3.0, 2.0])
    >>> round(rate, 2), round(hw, 3)
    (73.0, 1.677)
    """
    n = np.asarray(numerators, dtype=float)
    d = np.asarray(denominators, dtype=float)
    total = d.sum()
    if not total > 0:
        return float("nan"), float("nan")
    return float(n.sum() / total * 100), linear_half_width(d / total, half_widths)


def survey_difference(rate_a: float, half_width_a: float, rate_b: float,
                      half_width_b: float) -> tuple[float, float, bool | None]:
    """``rate_a - rate_b``, its half-width √(cₐ² + c_b²) (independent samples) and whether the
    difference is real: its interval excludes 0 (None when either has no interval).

    Two periods of one area are not independent samples (the APS interviews a household in up
    to five waves and rolling years overlap); their covariance is positive, so treating them as
    independent makes the interval wider, and "real" a cautious verdict.

    >>> survey_difference(67.3, 2.9, 75.1, 3.0)
    (-7.8, 4.173, True)
    >>> survey_difference(74.2, 2.8, 71.2, 2.8)[2]
    False
    """
    diff = round(rate_a - rate_b, 6)
    if any(v is None or np.isnan(v) for v in (half_width_a, half_width_b)):
        return diff, float("nan"), None
    hw = round(float(np.hypot(half_width_a, half_width_b)), 3)
    return diff, hw, bool(abs(diff) > hw)


def known_half_widths(coefficients: ArrayLike, half_widths: ArrayLike) -> np.ndarray:
    """Row by row, √Σ (aᵢ·cᵢ)² over the rates that have a published half-width: a rate without
    one (the APS's *unreliable* estimates) is left out, which the caller must say, as the
    interval is then too narrow by its share. NaN for a row where no rate that counts has one.
    The row form of :func:`linear_half_width` (which refuses to leave any out).

    >>> known_half_widths([[0.5, 0.5], [0.5, 0.5]], [[3.0, 4.0], [3.0, float("nan")]]).round(3).tolist()
    [2.5, 1.5]
    """
    a = np.atleast_2d(np.asarray(coefficients, dtype=float))
    c = np.atleast_2d(np.asarray(half_widths, dtype=float))
    counted = (a != 0) & ~np.isnan(c)
    squares = np.where(counted, (a * np.where(counted, c, 0.0)) ** 2, 0.0)
    return np.where(counted.any(axis=1), np.sqrt(squares.sum(axis=1)), np.nan)
