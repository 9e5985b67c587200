"""The answer in words: is the gap between a partnership's worst-performing neighbourhoods and
the rest of it closing?

One sentence per partnership, from its NI 153 table (:func:`geo_cs.analysis.ni153`), decided by
:func:`geo_cs.analysis.classify_changes` — so the words say "a real change" only when the change
is beyond the method's tolerance *and* its 95% interval excludes zero, and "not distinguishable
from no change" otherwise. When a partnership has no worst-performing neighbourhoods at the
threshold, the sentence says why (the highest baseline rate) and offers a threshold that would
pick some. The web map and the exports show the same sentence.

>>> import pandas as pd
>>> table = pd.DataFrame({
...     "partnership": ["glasgow", "glasgow"], "period_id": ["2012", "2020"],
...     "period_label": ["2012", "2020"], "gap": [20.4, 18.1], "gap_low": [19.6, 17.4],
...     "gap_high": [21.2, 18.8], "cohort_rate": [30.0, 27.0], "cohort_rate_low": [29.0, 26.0],
...     "cohort_rate_high": [31.0, 28.0], "n_cohort": [34, 34]})
>>> print(gap_sentence(table, "Glasgow"))  # doctest: +NORMALIZE_WHITESPACE
The gap between the 34 worst-performing neighbourhoods and the rest of Glasgow narrowed from
20.4 to 18.1 points between 2012 and 2020 — a real change (95% interval of the change -3.4 to
-1.2 points).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from geo_cs.analysis import MethodParams, classify_changes


@dataclass(frozen=True)
class ThresholdHint:
    """Why a partnership has no worst-performing neighbourhoods, and a threshold that would give
    it some: ``suggested`` picks ``n_at_suggested`` of its areas."""

    highest: float
    suggested: float
    n_at_suggested: int


def threshold_hint(baseline_rates: pd.Series | np.ndarray, share: float = 0.1) -> ThresholdHint | None:
    """A whole-number threshold that about ``share`` of the areas' baseline rates exceed (None
    without rates).

    >>> threshold_hint(pd.Series([5.0, 10.0, 12.5, 18.0, 21.3]))
    ThresholdHint(highest=21.3, suggested=19.0, n_at_suggested=1)
    """
    rates = pd.Series(baseline_rates, dtype=float).dropna()
    if rates.empty:
        return None
    suggested = float(math.floor(rates.quantile(1 - share)))
    if not (rates > suggested).any():
        suggested = float(math.floor(rates.max()) - 1)
    return ThresholdHint(round(float(rates.max()), 1), suggested, int((rates > suggested).sum()))


def _points(value: float) -> str:
    return f"{value:.1f}"


def gap_sentence(table: pd.DataFrame, partnership_name: str, params: MethodParams | None = None,
                 hint: ThresholdHint | None = None) -> str:
    """The plain sentence for one partnership's NI 153 table (its rows in time order).

    ``hint``: for a partnership with no worst-performing neighbourhoods, what to say instead
    (from :func:`threshold_hint` on its areas' baseline rates).
    """
    params = params or MethodParams()
    rows = table[table["gap"].notna()] if "gap" in table else table.iloc[0:0]
    n_cohort = int(table["n_cohort"].max()) if "n_cohort" in table and len(table) else 0
    if n_cohort == 0:
        text = (f"No neighbourhood of {partnership_name} has a baseline rate above "
                f"{params.threshold:g}%, so there are no worst-performing neighbourhoods to track")
        if hint is not None:
            text += (f" (the highest is {hint.highest:.1f}%). A threshold of {hint.suggested:g}% would "
                     f"pick the {hint.n_at_suggested} neighbourhood{'s' if hint.n_at_suggested != 1 else ''} "
                     "above it.")
        else:
            text += "."
        return text
    areas = f"{n_cohort} worst-performing neighbourhood{'s' if n_cohort != 1 else ''}"
    if rows.empty:
        return f"There are {areas} in {partnership_name}, but no period has a gap to report."
    first, last = rows.iloc[0], rows.iloc[-1]
    label = (lambda r: r["period_label"]) if "period_label" in rows else (lambda r: r["period_id"])
    if len(rows) == 1:
        return (f"The gap between the {areas} and the rest of {partnership_name} is "
                f"{_points(first['gap'])} points in {label(first)}; a change needs a second period.")
    change = classify_changes(rows.assign(partnership="p"), first["period_id"], last["period_id"],
                              params).iloc[0]
    low, high = change["gap_change_low"], change["gap_change_high"]
    interval = f"95% interval of the change {low:.1f} to {high:.1f} points"
    verb = "narrowed" if abs(last["gap"]) < abs(first["gap"]) else "widened"
    if change["gap_direction"] in ("closed", "widened"):
        verdict = f"a real change ({interval})"
    elif change["gap_change_within_noise"]:
        verdict = f"not distinguishable from no change ({interval})"
    else:
        verb = "stayed about the same"
        verdict = f"within the method's {params.tolerance_pp:g}-point tolerance, so counted as no change"
    if verb == "stayed about the same":
        moved = f"stayed about the same ({_points(first['gap'])} and {_points(last['gap'])} points)"
    else:
        moved = f"{verb} from {_points(first['gap'])} to {_points(last['gap'])} points"
    return (f"The gap between the {areas} and the rest of {partnership_name} {moved} between "
            f"{label(first)} and {label(last)} — {verdict}.")
