"""Properties of the analyses that must hold for any data (hypothesis)."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from test_analysis import PERIODS, load_panel_data

from geo_cs.analysis import MethodParams, Panel, RateSource, group_rates, worst_cohort
from geo_cs.stats import change_interval, difference_interval, index_interval, wilson_interval
from geo_cs.store import Store

CODES = [f"E0100{i:04d}" for i in range(1, 13)]
rate = st.floats(min_value=0, max_value=60, allow_nan=False)
series = st.lists(rate, min_size=len(PERIODS), max_size=len(PERIODS))
SETTINGS = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _store(rates: dict[str, list[float]], population: float = 1000) -> Store:
    store = Store.open(":memory:")
    load_panel_data(store, rates, population)
    return store


@SETTINGS
@given(st.lists(series, min_size=2, max_size=len(CODES)), st.data())
def test_aggregating_parts_equals_the_whole(all_rates, data):
    rates = dict(zip(CODES, all_rates, strict=False))
    parts = data.draw(st.lists(st.integers(0, 2), min_size=len(rates), max_size=len(rates)))
    with _store(rates) as store:
        panel = Panel(store, RateSource("toy.claimants", "lsoa2011"))
        groups = pd.DataFrame({"group": [f"part{p}" for p in parts], "code": list(rates)})
        whole = pd.DataFrame({"group": "whole", "code": list(rates)})
        by_part = group_rates(panel, groups).groupby("period_id")[["count", "denominator"]].sum()
        total = group_rates(panel, whole).set_index("period_id")
    assert np.allclose(by_part["count"], total.loc[by_part.index, "count"])
    assert np.allclose(by_part["denominator"], total.loc[by_part.index, "denominator"])
    expected = by_part["count"] / by_part["denominator"] * 100
    assert np.allclose(expected, total.loc[by_part.index, "rate"])


@pytest.mark.slow
@SETTINGS
@given(st.lists(series, min_size=2, max_size=6), st.lists(rate, min_size=6, max_size=6))
def test_the_cohort_never_changes_after_the_baseline(all_rates, later):
    rates = dict(zip(CODES, all_rates, strict=False))
    changed = {code: [*values[:4], later[i]] for i, (code, values) in enumerate(rates.items())}
    with _store(rates) as a, _store(changed) as b:
        first = worst_cohort(Panel(a, RateSource("toy.claimants", "lsoa2011")), MethodParams())
        second = worst_cohort(Panel(b, RateSource("toy.claimants", "lsoa2011")), MethodParams())
    assert first.set_index("code")["worst"].equals(second.set_index("code")["worst"])


@SETTINGS
@given(st.floats(min_value=1, max_value=50))
@example(25.0)    # the method's threshold
@example(1.1)     # 1.1 % of 1,000,000 is 11000.000000000002, its rate 1.1000000000000003: over, but for the tolerance
def test_a_baseline_of_exactly_the_threshold_is_not_worst_performing(threshold):
    # every quarter at exactly the threshold; 1,000,000 people keep the counts exact
    rates = {CODES[0]: [threshold] * len(PERIODS), CODES[1]: [threshold + 1] * len(PERIODS)}
    with _store(rates, population=1_000_000) as store:
        cohort = worst_cohort(Panel(store, RateSource("toy.claimants", "lsoa2011")),
                              MethodParams(threshold=threshold)).set_index("code")
    assert not cohort.loc[CODES[0], "worst"]
    assert cohort.loc[CODES[1], "worst"]


counts = st.integers(min_value=0, max_value=5000)
populations = st.integers(min_value=1, max_value=20000)


@given(counts, populations, counts, populations)
@example(0, 1, 1, 1)              # 0 % against 100 %: Wilson's intervals at both edges
@example(5000, 5000, 0, 20000)
def test_gap_sign_flips_when_the_roles_swap(c1, n1, c2, n2):
    c1, c2 = min(c1, n1), min(c2, n2)
    l1, h1 = wilson_interval(c1, n1)
    l2, h2 = wilson_interval(c2, n2)
    r1, r2 = c1 / n1 * 100, c2 / n2 * 100
    low_ab, high_ab = difference_interval(r1, l1, h1, r2, l2, h2)
    low_ba, high_ba = difference_interval(r2, l2, h2, r1, l1, h1)
    assert low_ab == pytest.approx(-high_ba) and high_ab == pytest.approx(-low_ba)


@given(counts, populations, counts, populations)
@example(0, 1, 1, 1)
@example(5000, 5000, 0, 20000)
@example(1, 20000, 1, 1)          # the index of one count over one: Poisson's interval at its smallest
def test_intervals_contain_their_estimates(c1, n1, c2, n2):
    c1, c2 = min(c1, n1), min(c2, n2)
    r1, r2 = c1 / n1 * 100, c2 / n2 * 100
    l1, h1 = wilson_interval(c1, n1)
    l2, h2 = wilson_interval(c2, n2)
    eps = 1e-9
    assert l1 - eps <= r1 <= h1 + eps and l2 - eps <= r2 <= h2 + eps
    low, high = difference_interval(r1, l1, h1, r2, l2, h2)
    assert low - eps <= r1 - r2 <= high + eps
    change, clow, chigh = change_interval(r1, l1, h1, r2, l2, h2)
    assert clow - eps <= change <= chigh + eps
    if c1 > 0 and c2 > 0:
        index, ilow, ihigh = index_interval(c2, c1)
        assert ilow - eps <= index <= ihigh + eps


@pytest.mark.skipif(os.environ.get("GEO_CS_HYPOTHESIS") == "explore", reason="explore draws new examples on purpose")
def test_every_run_draws_the_same_examples_and_saves_none():
    """The Hypothesis profile tests/conftest.py loads: a property run twice sees the same
    examples (a red run is red again on the same code), and no example database replays an
    earlier run's finds into this one."""
    assert _draws() == _draws() and len(set(_draws())) > 10
    assert settings.default.database is None and settings.default.print_blob


def _draws() -> list[int]:
    """The integers one run of a 30-example property is given."""
    seen: list[int] = []

    @settings(max_examples=30)
    @given(st.integers())
    def record(n: int) -> None:
        seen.append(n)

    record()
    return seen
