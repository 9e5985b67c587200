"""Every interval in ``geo_cs.stats`` against values that do not come from geo-cs.

The oracles are an independent implementation (statsmodels' ``proportion_confint`` and
``confint_proportions_2indep``, scipy's exact distributions), published worked examples
(Newcombe 1998) or a formula written here from first principles, never the function under
test nor another function of the product. A Wald interval in place of Wilson's, or ``n²`` in
place of ``4n²`` in Wilson's half-width, fails the tests marked below.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats
from statsmodels.stats.proportion import confint_proportions_2indep, proportion_confint

from geo_cs.stats import (
    add_gap,
    change_interval,
    combine_survey_rates,
    difference_interval,
    index_interval,
    known_half_widths,
    linear_half_width,
    rate_with_interval,
    rounding_sd,
    survey_difference,
    widen_for_denominator,
    wilson_interval,
    z_value,
)

CONFIDENCES = (0.8, 0.9, 0.95, 0.99, 0.999)

# (count, denominator): the edges (0, n, n = 1, 2, 3), small samples, the claimant-count sizes
# geo-cs meets (a few hundred to a million people) and rates near 0 and 1 where Wald fails.
GRID = [(0, 1), (1, 1), (0, 2), (1, 2), (2, 2), (0, 3), (1, 3), (3, 3), (0, 10), (1, 10),
        (5, 10), (9, 10), (10, 10), (0, 50), (1, 50), (49, 50), (25, 100), (3, 100), (97, 100),
        (31, 1000), (310, 1000), (1, 1000), (999, 1000), (40, 812), (12_345, 67_890),
        (4_828_350, 39_255_000), (0, 1_000_000), (1, 1_000_000)]


def statsmodels_wilson(count: float, n: float, confidence: float) -> tuple[float, float]:
    """statsmodels' Wilson score interval, in percent."""
    low, high = proportion_confint(count, n, alpha=1 - confidence, method="wilson")
    return 100 * float(low), 100 * float(high)


# -- Wilson's score interval for one rate ---------------------------------------------------------

def test_z_value_is_the_normal_quantile():
    for confidence in CONFIDENCES:
        assert z_value(confidence) == pytest.approx(stats.norm.ppf(0.5 + confidence / 2), rel=1e-12)
    assert z_value() == pytest.approx(1.959964, abs=1e-6)
    for bad in (0, 1, -0.5, 1.5):
        with pytest.raises(ValueError, match="confidence"):
            z_value(bad)


@pytest.mark.parametrize("confidence", CONFIDENCES)
def test_wilson_matches_statsmodels_over_the_grid(confidence: float):
    """Protects the Wilson score interval itself (a Wald interval, or n² for 4n², fails here)."""
    counts, dens = (np.array(v, dtype=float) for v in zip(*GRID, strict=True))
    low, high = wilson_interval(counts, dens, confidence)
    expected = np.array([statsmodels_wilson(c, n, confidence) for c, n in GRID])
    assert np.allclose(low, expected[:, 0], rtol=0, atol=1e-9), list(zip(GRID, low, expected[:, 0], strict=True))
    assert np.allclose(high, expected[:, 1], rtol=0, atol=1e-9), list(zip(GRID, high, expected[:, 1], strict=True))


def test_wilson_matches_statsmodels_on_random_counts():
    """A thousand counts and denominators of every size, seeded: the same interval everywhere."""
    rng = np.random.default_rng(31)
    dens = np.exp(rng.uniform(0, np.log(2_000_000), 1000)).round() + 1
    counts = np.floor(rng.uniform(0, 1, 1000) ** 3 * (dens + 1)).clip(0, dens)
    low, high = wilson_interval(counts, dens)
    sm_low, sm_high = proportion_confint(counts, dens, alpha=0.05, method="wilson")
    assert np.allclose(low, 100 * sm_low, rtol=0, atol=1e-9)
    assert np.allclose(high, 100 * sm_high, rtol=0, atol=1e-9)


def test_wilson_published_values():
    """Newcombe (1998a, Stat Med 17:857, table I, method 3): 81/263 → 0.2553 to 0.3662;
    15/148 → 0.0624 to 0.1605; 0/20 → 0 to 0.1611; 1/29 → 0.0061 to 0.1718."""
    published = {(81, 263): (25.53, 36.62), (15, 148): (6.24, 16.05), (0, 20): (0.0, 16.11),
                 (1, 29): (0.61, 17.18)}
    for (count, n), (lo, hi) in published.items():
        low, high = wilson_interval(count, n)
        assert (float(low), float(high)) == pytest.approx((lo, hi), abs=0.005), (count, n)


def test_wilson_at_the_edges():
    # a count of 0 has 0 as its lower bound, a count equal to the denominator 100% as its upper
    low, high = wilson_interval([0, 7, 7], [7, 7, 7])
    assert low[0] == 0 and high[1] == 100 and high[2] == 100
    # z²/(z² + n): the closed form of the upper bound at count 0 (Wilson 1927)
    z = stats.norm.ppf(0.975)
    for n in (1, 2, 10, 1000):
        assert float(wilson_interval(0, n)[1]) == pytest.approx(100 * z**2 / (z**2 + n), rel=1e-12)
    # no positive denominator: no interval; a rounded count above its denominator is clipped
    low, high = wilson_interval([3, 3, 12], [0, -5, 10])
    assert np.isnan(low[:2]).all() and np.isnan(high[:2]).all()
    assert (low[2], high[2]) == pytest.approx(statsmodels_wilson(10, 10, 0.95), abs=1e-9)


def test_rate_with_interval_is_the_rate_and_its_wilson_interval():
    counts, dens = zip(*GRID, strict=True)
    rate, low, high = rate_with_interval(counts, dens, 0.9)
    assert np.allclose(rate, [100 * c / n for c, n in GRID], rtol=1e-12)
    expected = np.array([statsmodels_wilson(c, n, 0.9) for c, n in GRID])
    assert np.allclose(low, expected[:, 0], atol=1e-9) and np.allclose(high, expected[:, 1], atol=1e-9)
    rate, low, high = rate_with_interval([5, 1], [0, np.nan])
    assert np.isnan(rate).all() and np.isnan(low).all() and np.isnan(high).all()


# -- Newcombe's hybrid score interval for a difference of rates -----------------------------------

#: Newcombe (1998b, Stat Med 17:873, table II, method 10): the hybrid score interval for
#: p1 - p2 from Wilson's intervals, as proportions.
NEWCOMBE_1998 = {
    (56, 70, 48, 80): (0.0524, 0.3339),
    (9, 10, 3, 10): (0.1705, 0.8090),
    (5, 56, 0, 29): (-0.0381, 0.1926),
    (0, 10, 0, 20): (-0.1611, 0.2775),
    (0, 10, 0, 10): (-0.2775, 0.2775),
    (10, 10, 0, 20): (0.6791, 1.0000),
    (10, 10, 0, 10): (0.6075, 1.0000),
}


def newcombe_from_counts(c1, n1, c2, n2, confidence: float = 0.95):
    """The product's difference interval fed with the two rates and their Wilson intervals
    from statsmodels (so that only ``difference_interval`` is under test)."""
    r1, r2 = 100 * np.asarray(c1, float) / n1, 100 * np.asarray(c2, float) / n2
    l1, h1 = (100 * np.asarray(v) for v in proportion_confint(c1, n1, alpha=1 - confidence, method="wilson"))
    l2, h2 = (100 * np.asarray(v) for v in proportion_confint(c2, n2, alpha=1 - confidence, method="wilson"))
    return difference_interval(r1, l1, h1, r2, l2, h2)


def test_difference_interval_reproduces_newcombes_published_examples():
    for (c1, n1, c2, n2), expected in NEWCOMBE_1998.items():
        low, high = newcombe_from_counts(c1, n1, c2, n2)
        assert (float(low) / 100, float(high) / 100) == pytest.approx(expected, abs=5e-5), (c1, n1, c2, n2)


@pytest.mark.parametrize("confidence", (0.9, 0.95, 0.99))
def test_difference_interval_matches_statsmodels_newcomb(confidence: float):
    rng = np.random.default_rng(153)
    n1 = rng.integers(1, 5000, 300).astype(float)
    n2 = rng.integers(1, 50_000, 300).astype(float)
    c1 = rng.binomial(n1.astype(int), rng.uniform(0, 0.6, 300)).astype(float)
    c2 = rng.binomial(n2.astype(int), rng.uniform(0, 0.3, 300)).astype(float)
    low, high = newcombe_from_counts(c1, n1, c2, n2, confidence)
    sm_low, sm_high = confint_proportions_2indep(c1, n1, c2, n2, method="newcomb", compare="diff",
                                                 alpha=1 - confidence)
    assert np.allclose(low, 100 * sm_low, rtol=0, atol=1e-9)
    assert np.allclose(high, 100 * sm_high, rtol=0, atol=1e-9)


def test_the_gap_from_wilson_end_to_end_matches_statsmodels():
    """``add_gap`` on rates and intervals from ``rate_with_interval``: the whole chain a gap's
    interval comes from (so a wrong Wilson interval shows in the gap too)."""
    cohort = (np.array([41_591.0, 37_030, 3, 0]), np.array([126_891.0, 136_578, 20, 15]))
    rest = (np.array([35_590.0, 30_740, 40, 2]), np.array([276_392.0, 280_341, 900, 40]))
    wide = pd.DataFrame()
    for role, (count, den) in (("cohort", cohort), ("rest", rest)):
        wide[f"{role}_rate"], wide[f"{role}_rate_low"], wide[f"{role}_rate_high"] = rate_with_interval(count, den)
        wide[f"{role}_denominator"] = den
    add_gap(wide)
    sm_low, sm_high = confint_proportions_2indep(*cohort, *rest, method="newcomb", compare="diff")
    assert np.allclose(wide["gap"], 100 * (cohort[0] / cohort[1] - rest[0] / rest[1]), rtol=1e-12)
    assert np.allclose(wide["gap_low"], 100 * sm_low, atol=1e-9)
    assert np.allclose(wide["gap_high"], 100 * sm_high, atol=1e-9)
    assert np.allclose(wide["cohort_share"], cohort[1] / (cohort[1] + rest[1]), rtol=1e-12)


# -- a change in a gap: half-widths in quadrature ---------------------------------------------------

def test_change_interval_is_the_normal_theory_interval_for_symmetric_intervals():
    """First principles: for independent estimates with standard errors s1 and s2, the change
    v2 - v1 has standard error √(s1² + s2²), so its interval is (v2 - v1) ± z·√(s1² + s2²)."""
    z = stats.norm.ppf(0.975)
    v1, s1, v2, s2 = 19.900, 0.146, 14.002, 0.122
    change, low, high = change_interval(v1, v1 - z * s1, v1 + z * s1, v2, v2 - z * s2, v2 + z * s2)
    assert float(change) == pytest.approx(v2 - v1, abs=1e-12)
    se = math.sqrt(s1**2 + s2**2)
    assert (float(low), float(high)) == pytest.approx((v2 - v1 - z * se, v2 - v1 + z * se), abs=1e-12)


def test_change_interval_keeps_each_side_of_asymmetric_intervals():
    """The change is lowest when the second value is at its lower bound and the first at its
    upper one: the lower bound combines v2's downward and v1's upward half-widths, and the
    upper bound the other two (written here term by term)."""
    v1, l1, h1 = 10.0, 7.0, 11.0      # first period: 3 below, 1 above
    v2, l2, h2 = 12.0, 11.5, 16.0     # second period: 0.5 below, 4 above
    change, low, high = change_interval(v1, l1, h1, v2, l2, h2)
    v2_down, v1_up = v2 - l2, h1 - v1
    v2_up, v1_down = h2 - v2, v1 - l1
    assert float(change) == 2.0
    assert float(low) == pytest.approx(2.0 - math.sqrt(v2_down**2 + v1_up**2), abs=1e-12)   # 2 - √1.25
    assert float(high) == pytest.approx(2.0 + math.sqrt(v2_up**2 + v1_down**2), abs=1e-12)  # 2 + 5
    assert float(high) == pytest.approx(7.0, abs=1e-12)
    # vectorised: rows are independent, and a missing bound gives a missing bound
    change, low, high = change_interval([v1, np.nan], [l1, 1], [h1, 2], [v2, 3], [l2, 2], [h2, 4])
    assert change[0] == 2.0 and np.isnan(change[1]) and np.isnan(low[1]) and np.isnan(high[1])


# -- the index: Poisson log-ratio interval ---------------------------------------------------------

def test_index_interval_is_the_log_ratio_normal_approximation():
    """The docstring's method, written here: log(c/b) has variance ≈ 1/c + 1/b for independent
    Poisson counts (delta method: Var(log X) ≈ Var(X)/λ² = 1/λ)."""
    rng = np.random.default_rng(7)
    counts = rng.integers(1, 100_000, 200).astype(float)
    bases = rng.integers(1, 100_000, 200).astype(float)
    for confidence in (0.9, 0.95, 0.99):
        index, low, high = index_interval(counts, bases, confidence)
        z = stats.norm.ppf(0.5 + confidence / 2)
        log_ratio = np.log(counts) - np.log(bases)
        se = np.sqrt(1 / counts + 1 / bases)
        assert np.allclose(index, 100 * counts / bases, rtol=1e-12)
        assert np.allclose(low, 100 * np.exp(log_ratio - z * se), rtol=1e-12)
        assert np.allclose(high, 100 * np.exp(log_ratio + z * se), rtol=1e-12)


@pytest.mark.parametrize(("count", "base"), [(1000, 900), (400, 500), (2500, 2000), (5000, 5200),
                                             (48_283, 47_012)])
def test_index_interval_is_close_to_the_exact_poisson_ratio_interval(count: int, base: int):
    """Against the exact interval for a ratio of Poisson means (conditional on c + b, c is
    binomial with p = R/(1 + R); Clopper-Pearson on p from scipy's beta quantiles): within
    0.5% of each bound once both counts are 400 or more, the sizes an index is shown for."""
    index, low, high = index_interval(count, base)
    p_low = stats.beta.ppf(0.025, count, base + 1)
    p_high = stats.beta.ppf(0.975, count + 1, base)
    exact = (100 * p_low / (1 - p_low), 100 * p_high / (1 - p_high))
    assert float(low) == pytest.approx(exact[0], rel=0.005)
    assert float(high) == pytest.approx(exact[1], rel=0.005)
    assert float(low) < float(index) < float(high)


def test_index_interval_without_counts():
    index, low, high = index_interval([0, 5, 5], [10, 0, np.nan])
    assert index[0] == 0 and np.isnan(low[0]) and np.isnan(high[0])   # log(0): no interval
    assert np.isnan(index[1:]).all() and np.isnan(low[1:]).all() and np.isnan(high[1:]).all()


# -- rounding and derived denominators -------------------------------------------------------------

@pytest.mark.parametrize("step", (1.0, 5.0, 10.0))
def test_rounding_sd_is_the_sd_of_a_sum_of_uniform_errors(step: float):
    """One count rounded to ``step`` is off by U(-step/2, step/2) (variance from scipy's
    uniform, and by integrating x² over the interval); n independent errors add variances."""
    variance = stats.uniform(loc=-step / 2, scale=step).var()
    by_integral = integrate.quad(lambda x: x * x / step, -step / 2, step / 2)[0]
    assert variance == pytest.approx(by_integral, rel=1e-12)
    n = np.array([0, 1, 5, 1700, 33_000])
    assert np.allclose(rounding_sd(n, step), np.sqrt(n * variance), rtol=1e-12)
    # the module's own figures: 1.44 for one count rounded to 5, ~60 claimants over 1,700 areas
    assert float(rounding_sd(1)) == pytest.approx(1.443, abs=5e-4)
    assert float(rounding_sd(1700)) == pytest.approx(59.5, abs=0.05)


def test_widen_for_denominator_adds_the_delta_method_term_in_quadrature():
    """R = 100·C/D: an error in D moves R by dR/dD·SD(D), here by a numerical derivative of
    the rate (not the closed form), times z, combined with the sampling half-widths in
    quadrature on each side."""
    count, den, var = np.array([40.0, 812.0, 5.0]), np.array([812.0, 9_000.0, 60.0]), np.array([2500.0, 400.0, 9.0])
    rate = 100 * count / den
    low, high = rate - np.array([1.2, 0.5, 3.0]), rate + np.array([1.5, 0.6, 6.0])
    z = stats.norm.ppf(0.975)
    h = 1e-3
    derivative = (100 * count / (den + h) - 100 * count / (den - h)) / (2 * h)
    extra = z * np.abs(derivative) * np.sqrt(var)
    wide_low, wide_high = widen_for_denominator(rate, low, high, den, var)
    assert np.allclose(wide_low, rate - np.sqrt((rate - low) ** 2 + extra**2), rtol=1e-8)
    assert np.allclose(wide_high, rate + np.sqrt((high - rate) ** 2 + extra**2), rtol=1e-8)
    # the docstring's case by hand: z·10·√100/1000 = 0.196; √(1 + 0.196²) = 1.019
    wide_low, wide_high = widen_for_denominator([10.0], [9.0], [11.0], [1000.0], [100.0])
    assert (wide_low[0], wide_high[0]) == pytest.approx((10 - math.hypot(1, z * 0.1), 10 + math.hypot(1, z * 0.1)))
    # no variance (or no usable denominator): the interval as it was
    same = widen_for_denominator([10.0, 10.0], [9.0, 9.0], [11.0, 11.0], [1000.0, 0.0], [np.nan, 100.0])
    assert same[0].tolist() == [9.0, 9.0] and same[1].tolist() == [11.0, 11.0]
    # a 99% interval takes the 99% z
    z99 = stats.norm.ppf(0.995)
    wide_low, _ = widen_for_denominator([10.0], [9.0], [11.0], [1000.0], [100.0], confidence=0.99)
    assert wide_low[0] == pytest.approx(10 - math.hypot(1, z99 * 0.1))


# -- survey estimates: published half-widths combined ----------------------------------------------

def covariance_half_width(a: np.ndarray, c: np.ndarray, z: float = 1.96) -> float:
    """Half-width of aᵀr for independent rates with half-widths c: z·√(aᵀ Σ a), Σ = diag((c/z)²)."""
    sigma = np.diag((np.asarray(c, float) / z) ** 2)
    a = np.asarray(a, float)
    return float(z * np.sqrt(a @ sigma @ a))


def test_linear_half_width_is_the_sd_of_a_linear_combination():
    rng = np.random.default_rng(2019)
    for size in (1, 2, 7, 40):
        a, c = rng.uniform(-1, 1, size), rng.uniform(0.5, 6, size)
        assert linear_half_width(a, c) == pytest.approx(covariance_half_width(a, c), rel=1e-12)
    assert linear_half_width([0.5, 0.5], [3.0, 4.0]) == pytest.approx(2.5)      # √(1.5² + 2²)
    assert math.isnan(linear_half_width([0.5, 0.5], [3.0, np.nan]))
    assert linear_half_width([0.0, 1.0], [np.nan, 2.0]) == 2.0                   # a zero weight is not used


def test_combine_survey_rates_weights_by_population():
    nums = np.array([70_000.0, 222_000.0, 41_000.0])
    dens = np.array([100_000.0, 300_000.0, 60_000.0])
    hws = np.array([3.0, 2.0, 4.5])
    rate, hw = combine_survey_rates(nums, dens, hws)
    weights = dens / dens.sum()
    # the aggregate's rate is the population-weighted mean of the district rates
    assert rate == pytest.approx(float(np.average(100 * nums / dens, weights=dens)), rel=1e-12)
    assert hw == pytest.approx(covariance_half_width(weights, hws), rel=1e-12)
    # the docstring's case by hand: 292,000 / 400,000 and √(0.25²·3² + 0.75²·2²)
    assert combine_survey_rates([70_000, 222_000], [100_000, 300_000], [3.0, 2.0]) == pytest.approx(
        (73.0, math.sqrt(0.5625 + 2.25)))
    assert all(math.isnan(v) for v in combine_survey_rates([1.0], [0.0], [2.0]))
    assert math.isnan(combine_survey_rates([1.0, 2.0], [10.0, 10.0], [2.0, np.nan])[1])


def test_survey_difference_and_its_verdict():
    for a, ca, b, cb in ((67.3, 2.9, 75.1, 3.0), (74.2, 2.8, 71.2, 2.8), (70.0, 1.0, 70.0, 1.0),
                         (60.0, 4.0, 55.0, 0.5)):
        diff, hw, real = survey_difference(a, ca, b, cb)
        expected_hw = covariance_half_width([1, -1], [ca, cb])
        assert diff == pytest.approx(a - b, abs=1e-9)
        assert hw == pytest.approx(expected_hw, abs=5e-4)          # to 3 decimals
        assert real is (not (a - b - expected_hw) <= 0 <= (a - b + expected_hw))
    assert survey_difference(67.3, 2.9, 75.1, 3.0) == (-7.8, 4.173, True)
    # exactly on the boundary (|difference| = half-width: 0 is in the closed interval): not real
    assert survey_difference(5.0, 3.0, 0.0, 4.0) == (5.0, 5.0, False)
    assert survey_difference(70.0, float("nan"), 60.0, 2.0)[2] is None
    assert survey_difference(70.0, None, 60.0, 2.0)[2] is None


def test_known_half_widths_row_by_row():
    a = np.array([[0.5, 0.5], [0.5, 0.5], [0.2, 0.8], [1.0, 0.0]])
    c = np.array([[3.0, 4.0], [3.0, np.nan], [np.nan, np.nan], [2.0, np.nan]])
    expected = []
    for row_a, row_c in zip(a, c, strict=True):
        known = ~np.isnan(row_c) & (row_a != 0)
        expected.append(covariance_half_width(row_a[known], row_c[known]) if known.any() else np.nan)
    assert np.allclose(known_half_widths(a, c), expected, equal_nan=True)
    assert known_half_widths(a, c)[1] == pytest.approx(1.5)
