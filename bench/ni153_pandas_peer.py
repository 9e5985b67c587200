"""NI 153 "worst-performing neighbourhoods" in plain pandas: the peer of ``geo_cs.analysis.ni153``.

This is what an analyst would write without geo-cs, given the data already in memory as
DataFrames: the benefit-group observations of one small-area geography, the periods in time
order and the partnership membership table. It follows the method of ``geo_cs.analysis``
(DWP Research Report 783, figure 4.7) step by step, with pandas groupby/merge and no DuckDB:

1. the out-of-work total per area and quarter is the sum of the benefit groups (a suppressed
   group makes the total missing); the area's denominator is its working-age population;
2. an area's rate is count / denominator x 100 where both are present and the denominator > 0;
3. its baseline rate is the mean of its rates over the baseline quarters; an area is in the
   cohort when it has all of them and the mean *exceeds* the threshold by more than 1e-9 points;
4. per partnership, quarter and role (cohort / rest): sum of counts, sum of denominators and the
   number of areas with data; rates are sums over sums, never means of rates;
5. cohort_rate, rest_rate, gap = cohort_rate - rest_rate (points), n_cohort and cohort_share
   (the cohort's share of the partnership's working-age population).

Only the numbers are computed (no intervals, flags or provenance): the benchmark compares these
five columns with geo-cs.

Three entry points, one per input the benchmark gives both sides:

* :func:`ni153_pandas` — from the observations as the store holds them (one long row per area,
  quarter and benefit group): steps 1-5;
* :func:`ni153_pandas_matrices` — from the area × quarter matrices geo-cs prepares
  (``geo_cs.panels``: count, denominator and rate, rows the areas, columns the quarters in time
  order), as DataFrames: steps 2-5 on the wide frames;
* :func:`ni153_pandas_prepared` — from the same prepared panel as long rows with integer keys
  (one row per area and quarter).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

REPORT_BASELINE = ("2006-05", "2006-08", "2006-11", "2007-02")
THRESHOLD = 25.0
THRESHOLD_EPSILON = 1e-9
COLUMNS = ["partnership", "period_id", "cohort_rate", "rest_rate", "gap", "n_cohort", "cohort_share"]


def area_panel(observations: pd.DataFrame) -> pd.DataFrame:
    """One row per area and period: the summed count, the denominator and the rate.

    ``observations`` has columns code, period_id, indicator, value, denominator (one row per
    benefit group). Rows without a usable rate keep NaN in count, denominator and rate.
    """
    grouped = observations.groupby(["code", "period_id"], observed=True, sort=False)
    panel = grouped.agg(
        count=("value", "sum"),
        n_values=("value", "count"),
        n_rows=("value", "size"),
        denominator=("denominator", "max"),
    ).reset_index()
    usable = (panel["n_values"] == panel["n_rows"]) & (panel["denominator"] > 0)
    panel["count"] = panel["count"].where(usable)
    panel["denominator"] = panel["denominator"].where(usable)
    panel["rate"] = panel["count"] / panel["denominator"] * 100
    return panel[["code", "period_id", "count", "denominator", "rate"]]


def worst_codes(
    panel: pd.DataFrame, baseline: Sequence[str] = REPORT_BASELINE, threshold: float = THRESHOLD
) -> pd.Index:
    """Codes of the areas whose mean baseline rate exceeds the threshold (all baseline quarters present)."""
    in_baseline = panel[panel["period_id"].isin(list(baseline)) & panel["rate"].notna()]
    base = in_baseline.groupby("code", observed=True)["rate"].agg(["mean", "size"])
    worst = (base["size"] == len(baseline)) & (base["mean"] > threshold + THRESHOLD_EPSILON)
    return base.index[worst]


def role_table(joined: pd.DataFrame, period: str) -> pd.DataFrame:
    """Steps 4-5 on ``joined`` (one row per partnership, ``period``, role and area, with count
    and denominator): one row per partnership and period with the cohort and rest sums, rates,
    gap, cohort_share and n_cohort (unsorted)."""
    grouped = joined.groupby(["partnership", period, "role"], observed=True)
    sums = grouped[["count", "denominator"]].sum(min_count=1)
    sums["n_areas"] = grouped["count"].count()
    wide = sums.unstack("role")
    wide.columns = [f"{role}_{value}" for value, role in wide.columns]
    for role in ("cohort", "rest"):
        for value in ("count", "denominator", "n_areas"):
            if f"{role}_{value}" not in wide:
                wide[f"{role}_{value}"] = np.nan
    wide = wide.reset_index()
    for role in ("cohort", "rest"):
        den = wide[f"{role}_denominator"]
        wide[f"{role}_rate"] = (wide[f"{role}_count"] / den * 100).where(den > 0)
    wide["gap"] = wide["cohort_rate"] - wide["rest_rate"]
    cohort_den = wide["cohort_denominator"].fillna(0)
    total_den = cohort_den + wide["rest_denominator"].fillna(0)
    wide["cohort_share"] = cohort_den / total_den.where(total_den > 0)
    wide["n_cohort"] = wide["cohort_n_areas"].fillna(0).astype(int)
    return wide


def ni153_pandas(
    observations: pd.DataFrame,
    periods: Sequence[str],
    membership: pd.DataFrame,
    *,
    baseline: Sequence[str] = REPORT_BASELINE,
    threshold: float = THRESHOLD,
) -> pd.DataFrame:
    """Per partnership and period: cohort_rate, rest_rate, gap, n_cohort, cohort_share.

    ``periods``: the period ids in time order. ``membership``: columns partnership, code (an
    area may belong to several partnerships). Sorted by partnership, then period order.
    """
    panel = area_panel(observations)
    worst = worst_codes(panel, baseline, threshold)

    roles = membership[["partnership", "code"]].copy()
    roles["role"] = np.where(roles["code"].isin(worst), "cohort", "rest")
    joined = roles.merge(panel, on="code", how="inner")
    wide = role_table(joined, "period_id")

    order = {period: i for i, period in enumerate(periods)}
    wide["_order"] = wide["period_id"].map(order)
    wide = wide.sort_values(["partnership", "_order"]).reset_index(drop=True)
    return wide[COLUMNS]


def ni153_pandas_prepared(
    panel: pd.DataFrame,
    codes: Sequence[str],
    periods: Sequence[str],
    membership: pd.DataFrame,
    *,
    baseline: Sequence[str] = REPORT_BASELINE,
    threshold: float = THRESHOLD,
) -> pd.DataFrame:
    """The same table from the analysis-ready panel geo-cs prepares at ingest (the same input
    geo-cs reads): ``panel`` has one row per area and period with integer keys ``area`` (the
    position of its code in ``codes``) and ``period`` (the position of its id in ``periods``,
    time order), and count, denominator, rate (NaN where not usable). Steps 2-5 above; the sum
    of benefit groups (step 1) was done when the panel was prepared."""
    usable = panel["count"].notna() & (panel["denominator"] > 0)
    panel = panel.assign(count=panel["count"].where(usable), denominator=panel["denominator"].where(usable))
    position = {period: i for i, period in enumerate(periods)}
    wanted = [position[p] for p in baseline]
    in_baseline = panel[panel["period"].isin(wanted) & panel["rate"].notna()]
    base = in_baseline.groupby("area")["rate"].agg(["mean", "size"])
    worst = base.index[(base["size"] == len(baseline)) & (base["mean"] > threshold + THRESHOLD_EPSILON)]

    area_of = pd.Series(np.arange(len(codes)), index=pd.Index(codes))
    roles = membership[["partnership"]].copy()
    roles["area"] = area_of.reindex(membership["code"]).to_numpy()
    roles = roles.dropna(subset=["area"]).astype({"area": np.int64})
    roles["role"] = np.where(roles["area"].isin(worst), "cohort", "rest")
    joined = roles.merge(panel[["area", "period", "count", "denominator"]], on="area", how="inner")
    wide = role_table(joined, "period")
    wide = wide.sort_values(["partnership", "period"]).reset_index(drop=True)
    wide["period_id"] = np.asarray(periods, dtype=object)[wide["period"].to_numpy()]
    return wide[COLUMNS]


def ni153_pandas_matrices(
    count: pd.DataFrame,
    denominator: pd.DataFrame,
    rate: pd.DataFrame,
    membership: pd.DataFrame,
    *,
    baseline: Sequence[str] = REPORT_BASELINE,
    threshold: float = THRESHOLD,
) -> pd.DataFrame:
    """The same table from the area × period matrices geo-cs prepares (``geo_cs.panels``):
    ``count``, ``denominator`` and ``rate`` are DataFrames with one row per area (index: its
    code) and one column per period id in time order, NaN where the panel has no usable value
    (the benefit groups were summed when the matrices were prepared: step 1). Steps 2-5 on the
    wide frames: the baseline is a row mean over the baseline's columns; a partnership's sums
    per role are a group-by of its member rows. A partnership has a row for every period (the
    matrices have every area in every period)."""
    usable = count.notna() & (denominator > 0)
    base = rate[list(baseline)]
    complete = base.notna().sum(axis=1) == len(baseline)
    worst = (complete & (base.mean(axis=1) > threshold + THRESHOLD_EPSILON)).to_numpy()

    rows = count.index.get_indexer(membership["code"])
    known = rows >= 0
    rows = rows[known]
    partnership = membership["partnership"].to_numpy()[known]
    role = np.where(worst[rows], "cohort", "rest")
    partnerships = sorted(set(partnership))
    full = pd.MultiIndex.from_product([partnerships, ["cohort", "rest"]])
    periods = count.columns

    def sums(frame: pd.DataFrame, min_count: int) -> np.ndarray:
        """Σ over each (partnership, role)'s member rows: (partnerships, 2 roles, periods)."""
        members = pd.DataFrame(frame.to_numpy()[rows], columns=periods)
        total = members.groupby([partnership, role]).sum(min_count=min_count).reindex(full)
        return total.to_numpy(dtype=float).reshape(len(partnerships), 2, len(periods))

    summed = {"count": sums(count.where(usable), 1), "denominator": sums(denominator.where(usable), 1),
              "n_areas": np.nan_to_num(sums(usable.astype(np.int64), 0))}
    wide = pd.DataFrame({"partnership": np.repeat(partnerships, len(periods)),
                         "period_id": np.tile(np.asarray(periods, dtype=object), len(partnerships))})
    for i, r in enumerate(("cohort", "rest")):
        for value, array in summed.items():
            wide[f"{r}_{value}"] = array[:, i, :].ravel()
        den = wide[f"{r}_denominator"]
        wide[f"{r}_rate"] = (wide[f"{r}_count"] / den * 100).where(den > 0)
    wide["gap"] = wide["cohort_rate"] - wide["rest_rate"]
    cohort_den = wide["cohort_denominator"].fillna(0)
    total_den = cohort_den + wide["rest_denominator"].fillna(0)
    wide["cohort_share"] = cohort_den / total_den.where(total_den > 0)
    wide["n_cohort"] = wide["cohort_n_areas"].astype(int)
    return wide[COLUMNS]
