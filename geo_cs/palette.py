"""The classes' colours, shared by the web map (``maps/``) and the print maps
(:mod:`geo_cs.export.maps`): a colour means the same on the page and on paper."""

from __future__ import annotations

#: ColorBrewer YlOrRd, as on the web map.
PALETTE = ["#ffffcc", "#ffeda0", "#fed976", "#feb24c", "#fd8d3c", "#fc4e2a", "#e31a1c", "#bd0026",
           "#800026"]
#: Areas with no value (or a suppressed one).
NO_DATA = "#d9d9d9"


def palette(k: int) -> list[str]:
    """``k`` colours spread evenly over :data:`PALETTE`.

    >>> palette(3)
    ['#ffffcc', '#fd8d3c', '#800026']
    """
    if k <= 1:
        return [PALETTE[-3]]
    return [PALETTE[round(i * (len(PALETTE) - 1) / (k - 1))] for i in range(k)]


def class_colours(k: int, low_is_worse: bool = False) -> list[str]:
    """The colours of ``k`` classes in the order of their values, the worst class darkest:
    :func:`palette` as it is for measures whose high values are worse (rates of deprivation),
    reversed for those whose low values are (ranks and deciles, 1 = most deprived), so a dark
    area means the same thing on every map.

    >>> class_colours(3), class_colours(3, low_is_worse=True)
    (['#ffffcc', '#fd8d3c', '#800026'], ['#800026', '#fd8d3c', '#ffffcc'])
    """
    colours = palette(k)
    return colours[::-1] if low_is_worse else colours
