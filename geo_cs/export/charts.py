"""The report's charts, drawn with matplotlib (no display, no network).

Example
-------
>>> import pandas as pd
>>> table = pd.DataFrame({"period_label": ["SIMD 2012", "SIMD 2016"], "period_id": ["a", "b"],
...     "cohort_rate": [40.0, 35.0], "cohort_rate_low": [39.0, 34.0], "cohort_rate_high": [41.0, 36.0],
...     "rest_rate": [12.0, 11.0], "rest_rate_low": [11.8, 10.8], "rest_rate_high": [12.2, 11.2],
...     "gap": [28.0, 24.0], "gap_low": [27.0, 23.0], "gap_high": [29.0, 25.0]})
>>> svg = figure_svg(gap_chart(table, "Glasgow"))
>>> svg.startswith("<?xml")
True
"""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")  # no display on servers; must precede pyplot

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure

from geo_cs.demo import OGL_ATTRIBUTION

COHORT_COLOUR = "#b2182b"
REST_COLOUR = "#2166ac"
GAP_COLOUR = "#4d4d4d"


def gap_chart(table: pd.DataFrame, title: str, highlight: str | None = None,
              size: tuple[float, float] = (5.2, 4.2)) -> Figure:
    """Figure 4.7 for one partnership: the worst-performing neighbourhoods' rate and the rest's,
    with 95% intervals, and the gap between them (points) below; ``highlight`` marks a period."""
    fig, (top, bottom) = plt.subplots(2, 1, figsize=size, sharex=True,
                                      gridspec_kw={"height_ratios": [3, 2]}, layout="constrained")
    x = range(len(table))
    for column, colour, label in (("cohort", COHORT_COLOUR, "Worst-performing neighbourhoods"),
                                  ("rest", REST_COLOUR, "Rest of the partnership")):
        top.plot(x, table[f"{column}_rate"], marker="o", color=colour, label=label)
        top.fill_between(x, table[f"{column}_rate_low"], table[f"{column}_rate_high"],
                         color=colour, alpha=0.2, linewidth=0)
    top.set_ylabel("Rate (%)")
    top.set_title(title, fontsize=10, loc="left")
    top.legend(fontsize=7, frameon=False, loc="best")
    bottom.errorbar(x, table["gap"], yerr=[table["gap"] - table["gap_low"], table["gap_high"] - table["gap"]],
                    color=GAP_COLOUR, marker="s", capsize=3)
    bottom.set_ylabel("Gap (points)")
    labels = table["period_label"].astype(str).tolist()
    bottom.set_xticks(list(x), labels, rotation=30 if len(labels) > 4 else 0, ha="right" if len(labels) > 4
                      else "center", fontsize=7)
    if highlight is not None and highlight in set(table["period_id"]):
        at = table["period_id"].tolist().index(highlight)
        for axis in (top, bottom):
            axis.axvline(at, color="#999999", linestyle=":", linewidth=1)
    for axis in (top, bottom):
        axis.grid(axis="y", color="#e0e0e0", linewidth=0.6)
        axis.spines[["top", "right"]].set_visible(False)
    fig.text(0.01, 0.0, OGL_ATTRIBUTION, fontsize=4.5, color="#555555", wrap=True, va="bottom")
    return fig


def figure_svg(fig: Figure) -> str:
    """The figure as SVG text (and closed: servers draw many)."""
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg")
    plt.close(fig)
    return buffer.getvalue()
