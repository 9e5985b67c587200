"""Statistical disclosure control for what geo-cs publishes (API, tiles, maps, exports).

geo-cs holds aggregate data only, but a claimant count of 3 in a neighbourhood of 900 people
can still point at households. With disclosure control on, everything published follows the
DWP convention:

- counts and denominators are **rounded to the nearest 5** (``round_to``), halves away from zero;
- rates, their intervals and gaps are **recomputed from the rounded figures**, so that a
  published rate times its published denominator gives back the published count (a rate from
  the unrounded count would let a reader undo the rounding);
- a rate whose (unrounded) count is **below ``min_count``** is suppressed: value, interval and
  baseline are withheld (null) and ``suppressed`` is true. A suppressed area is drawn as
  "no data" on maps and tiles, and its count is still included, rounded, in the totals of the
  groups it belongs to — the group's own count is what is tested.

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

from geo_cs.stats import rate_with_interval


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

    def _rates(self, count: pd.Series, denominator: pd.Series, confidence: float
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Rounded count and denominator, the rate and interval from them, and the small mask."""
        small = np.asarray(count, dtype=float) < self.min_count
        rounded_count, rounded_den = self.round(count), self.round(denominator)
        rate, low, high = rate_with_interval(rounded_count, rounded_den, confidence)
        rate, low, high = (np.where(small, np.nan, a) for a in (rate, low, high))
        return rounded_count, rounded_den, rate, low, high, small

    def area_values(self, frame: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
        """A :data:`geo_cs.layers.COLUMNS` frame as published: see the module doc.

        Rows without a count (scores, ranks, rates published without their counts) are left
        as they are: there is no count to round or test.
        """
        frame = frame.copy()
        has_count = frame["count"].notna().to_numpy()
        frame["suppressed"] = False
        if not has_count.any():
            return frame
        rows = frame.loc[has_count]
        count, den, rate, low, high, small = self._rates(rows["count"], rows["denominator"],
                                                         confidence)
        frame.loc[has_count, "count"] = count
        frame.loc[has_count, "denominator"] = den
        frame.loc[has_count, "value"] = rate
        frame.loc[has_count, "value_low"] = low
        frame.loc[has_count, "value_high"] = high
        frame.loc[has_count, "suppressed"] = small
        frame.loc[frame["suppressed"], "baseline_value"] = np.nan
        return frame

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
        from geo_cs.analysis import add_gap  # here: analysis imports settings, which import this

        for role in ("cohort", "rest"):
            table = self.rate_table(table, f"{role}_", confidence)
        add_gap(table)
        return table
