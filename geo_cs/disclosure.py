"""Statistical disclosure control for what geo-cs publishes (API, tiles, maps, exports).

geo-cs holds aggregate data only, but a claimant count of 3 in a neighbourhood of 900 people
can still point at households. With disclosure control on, everything published follows the
DWP convention:

- counts and denominators are **rounded to the nearest 5** (``round_to``), halves away from zero;
- rates, their intervals and gaps are **recomputed from the rounded figures**, so that a
  published rate times its published denominator gives back the published count (a rate from
  the unrounded count would let a reader undo the rounding);
- a rate whose (unrounded) count **or denominator** is **below ``min_count``** is suppressed:
  value, interval, baseline, **count and denominator** are withheld (null) and ``suppressed`` is
  true — a rounded count and denominator published beside a withheld rate would give it back.
  The rule follows the figure, not its role: a reader who asks for a population *over* a small
  count (``denominator=`` a count that is withheld as a count) would otherwise read it back as a
  rounded denominator, or as the rate's ratio. A
  suppressed area is drawn as "no data" on maps and tiles, and its count is still included in
  the totals of the groups it belongs to (summed exactly, then rounded) — the group's own count
  is what is tested;
- everything **derived** from the rates is derived from the published ones: an area's baseline
  rate is the mean of its published rates, the worst-performing flag compares that with the
  threshold (an area with a withheld baseline period is not classified and counts with the
  rest), and classes, ranks, gaps and the cohort of NI 153 tables follow from those. Asking for
  many thresholds then brackets the published baseline rate, never the exact one;
- counts published on their own (a population, a number of claimants with no denominator) are
  rounded too, and withheld below ``min_count`` like any other count.

Analyses run by an analyst (``geo-cs analyse``) work on the exact figures; the option applies
where figures leave the building. Rounding each area's count before summing would add up to
±2.5 per area of error to group totals, so groups are summed first and rounded once.

Example
-------
>>> import pandas as pd
>>> control = DisclosureControl(round_to=5, min_count=10)
>>> frame = pd.DataFrame({"count": [3.0, 42.0], "denominator": [900.0, 1001.0]})
>>> control.round(frame["count"]).tolist()
[5.0, 40.0]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from geo_cs.stats import THRESHOLD_EPSILON, add_gap, rate_with_interval


@dataclass(frozen=True)
class DisclosureControl:
    """Round published counts to ``round_to`` and suppress rates of counts below ``min_count``."""

    round_to: int = 5
    min_count: int = 10

    def __post_init__(self) -> None:
        if self.round_to < 1 or self.min_count < 0:
            raise ValueError("disclosure control needs round_to >= 1 and min_count >= 0")

    @property
    def note(self) -> str:
        """One line for the footers of maps, charts and reports."""
        return (f"Counts rounded to the nearest {self.round_to}; rates of fewer than "
                f"{self.min_count} people suppressed.")

    def round(self, values: pd.Series | np.ndarray) -> np.ndarray:
        """``values`` to the nearest multiple of ``round_to`` (halves away from zero; NaN kept)."""
        v = np.asarray(values, dtype=float)
        return np.sign(v) * np.floor(np.abs(v) / self.round_to + 0.5) * self.round_to

    def withheld(self, counts: pd.Series | np.ndarray) -> np.ndarray:
        """Which of ``counts`` (unrounded) are below ``min_count`` and so never published, in
        whatever role they appear (count, denominator or value); NaN is not withheld (there is
        nothing to publish).

        >>> DisclosureControl(min_count=10).withheld([3.0, 10.0, float("nan")]).tolist()
        [True, False, False]
        """
        return np.asarray(counts, dtype=float) < self.min_count

    def _rates(self, count: pd.Series, denominator: pd.Series, confidence: float
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Rounded count and denominator, the rate and interval from them, and the small mask
        (a count or a denominator under the minimum)."""
        small = self.withheld(count) | self.withheld(denominator)
        rounded_count, rounded_den = self.round(count), self.round(denominator)
        rate, low, high = rate_with_interval(rounded_count, rounded_den, confidence)
        rate, low, high = (np.where(small, np.nan, a) for a in (rate, low, high))
        return rounded_count, rounded_den, rate, low, high, small

    def area_values(self, frame: pd.DataFrame, confidence: float = 0.95,
                    baseline: tuple[str, ...] | None = None, threshold: float | None = None,
                    counts: bool = False) -> pd.DataFrame:
        """A :data:`geo_cs.layers.COLUMNS` frame as published: see the module doc.

        With ``baseline`` and ``threshold``, the baseline rates and worst-performing flags are
        recomputed from the published rates (:meth:`published_cohort`). ``counts``: the values
        are themselves counts of people (a population), rounded like any count and withheld
        (``suppressed``) below the minimum. Rows without a
        count (scores, ranks, rates published without their counts) are otherwise left as they
        are: there is no count to round or test.
        """
        frame = frame.copy()
        frame["suppressed"] = False
        if counts:
            small = self.withheld(frame["value"])
            frame["value"] = np.where(small, np.nan, self.round(frame["value"]))
            frame["suppressed"] = small
            for column in ("value_low", "value_high"):
                frame[column] = np.nan     # an interval around an exact count would give it back
        has_count = frame["count"].notna().to_numpy()
        if not has_count.any():
            return frame
        rows = frame.loc[has_count]
        count, den, rate, low, high, small = self._rates(rows["count"], rows["denominator"],
                                                         confidence)
        frame.loc[has_count, "count"] = np.where(small, np.nan, count)
        frame.loc[has_count, "denominator"] = np.where(small, np.nan, den)
        frame.loc[has_count, "value"] = rate
        frame.loc[has_count, "value_low"] = low
        frame.loc[has_count, "value_high"] = high
        frame.loc[has_count, "suppressed"] = frame.loc[has_count, "suppressed"].to_numpy() | small
        frame.loc[frame["suppressed"], "baseline_value"] = np.nan
        if baseline is not None and threshold is not None:
            cohort = self.published_cohort(frame, baseline, threshold)
            frame = frame.drop(columns=["baseline_value", "worst"]).merge(cohort, on="code", how="left")
        return frame

    @staticmethod
    def published_cohort(frame: pd.DataFrame, baseline: tuple[str, ...], threshold: float) -> pd.DataFrame:
        """code, baseline_value and worst from a published area frame: the baseline rate is the
        mean of the area's published rates over ``baseline`` (as
        :func:`geo_cs.analysis.worst_cohort` does with exact ones), and an area is worst when it
        exceeds ``threshold``; an area with a baseline period missing or withheld is not
        classified (NA)."""
        base = frame[frame["period_id"].isin(baseline)]
        per_code = base.groupby("code").agg(baseline_value=("value", "mean"),
                                            n=("value", "count"))
        complete = per_code["n"] == len(baseline)
        worst = pd.array([pd.NA] * len(per_code), dtype="boolean")
        worst[complete.to_numpy()] = (per_code.loc[complete, "baseline_value"]
                                      > threshold + THRESHOLD_EPSILON).to_numpy()
        out = pd.DataFrame({"code": per_code.index, "worst": worst,
                            "baseline_value": per_code["baseline_value"].where(complete).to_numpy()})
        codes = pd.DataFrame({"code": frame["code"].unique()})
        return codes.merge(out, on="code", how="left")

    def rate_table(self, table: pd.DataFrame, prefix: str = "", confidence: float = 0.95
                   ) -> pd.DataFrame:
        """A table of group rates (columns ``{prefix}count``, ``denominator``, ``rate``,
        ``rate_low``, ``rate_high``) as published: counts rounded, rates recomputed from them,
        rates of small counts suppressed (``{prefix}suppressed``). Other columns (an index of
        the count, a gap with Great Britain) stay as computed from the exact totals of large
        groups, which rounding by 5 does not move by a visible amount."""
        table = table.copy()
        count, den, rate, low, high, small = self._rates(
            table[f"{prefix}count"], table[f"{prefix}denominator"], confidence)
        table[f"{prefix}count"], table[f"{prefix}denominator"] = count, den
        table[f"{prefix}rate"], table[f"{prefix}rate_low"], table[f"{prefix}rate_high"] = rate, low, high
        table[f"{prefix}suppressed"] = small
        # charts print a table's notes under it: the control is stated wherever figures go
        notes = list(table.attrs.get("notes", []))
        table.attrs["notes"] = notes if self.note in notes else [*notes, self.note]
        return table

    def gap_table(self, table: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
        """An NI 153 table (:func:`geo_cs.analysis.ni153`) as published: each role's figures as
        :meth:`rate_table`, and the gap recomputed from them (so suppressed with either)."""
        for role in ("cohort", "rest"):
            table = self.rate_table(table, f"{role}_", confidence)
        add_gap(table)
        return table
