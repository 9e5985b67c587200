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
