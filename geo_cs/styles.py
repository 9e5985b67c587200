"""Styles of the map collections: the web map's classes as a QGIS style (QML), an SLD 1.0 style
and a MapLibre style for the vector tiles, and a QGIS project that opens a partnership's layers
styled.

A layer a GIS officer adds from the features API must look like the web map, not like a random
single fill or a quantile of the latest period (issue 30): the same class breaks (pooled over
every period, so that a colour means the same value in every period), the same palette
(:mod:`geo_cs.palette`, the worst class darkest: reversed where low values are worse, as for an
employment rate or a rank), the same grey for an area with no figure (none, withheld by
disclosure control, a survey estimate marked unreliable, or a rate that cannot be right), and the
worst-performing areas outlined where the measure gives them.

Two steps, so that every format says the same thing:

* :func:`classes_of` (and :func:`collection_classes`, from the store) gets the classes of a
  measure as the web map draws them: it calls :func:`geo_cs.layers.class_breaks` with the web
  map's scheme, :func:`geo_cs.layers.class_labels` and :func:`geo_cs.palette.class_colours`
  exactly as ``maps/page.py``'s ``page_config`` does, on the same values (a partnership's own
  areas when one is given: its map's legend is drawn from them);
* :func:`qml`, :func:`sld` and :func:`maplibre_style` are pure functions that write a
  :class:`StyleClasses` in each format, and :func:`qgis_project` writes a ``.qgs`` project
  around them.

A class holds the values ``lower < v <= upper`` (the first from the lowest value, the last up
to the highest), as on the web map (``classOf`` in ``map.js``): a value equal to a break is in
the class that break ends.

Example
-------
>>> c = StyleClasses(title="Rate (%)", measure="Rate", unit="%", breaks=(5.0, 10.0),
...                  colours=("#ffffcc", "#800026"), labels=("up to 5.0%", "5.0 – 10.0%"))
>>> qml(c).startswith("<!DOCTYPE qgis")
True
"""

from __future__ import annotations

import json
import math
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pandas as pd

from geo_cs.attribution import OGL_ATTRIBUTION
from geo_cs.errors import InputError, NotFoundError
from geo_cs.layers import class_breaks, class_labels, is_whole, sentence_case
from geo_cs.narrative import area_words, gives_gap, legend_title, low_is_worse
from geo_cs.palette import NO_DATA, class_colours

if TYPE_CHECKING:
    from geo_cs.disclosure import DisclosureControl
    from geo_cs.features import Collection
    from geo_cs.layers import AreaValues
    from geo_cs.store import Store

#: The one style of each map collection: the web map's classes.
STYLE_ID = "web-map"
#: The web map's classes when staff have chosen none (``maps.page.MapRequest``'s defaults);
#: ``tests/test_styles.py`` checks the breaks against the page's own.
WEB_MAP_SCHEME = "quantiles"
WEB_MAP_K = 5

QML_TYPE = "application/vnd.qgis.qml"
SLD_TYPE = "application/vnd.ogc.sld+xml;version=1.0"
MAPLIBRE_TYPE = "application/vnd.mapbox.style+json"
QGS_TYPE = "application/vnd.qgis.qgs+xml"
#: ``f=`` of a style and its media type, in the order the style's links list them.
FORMATS = {"qml": QML_TYPE, "sld": SLD_TYPE, "mapbox": MAPLIBRE_TYPE}
#: Other names clients use for the same formats (OGC API - Styles drafts: ``sld10``, ``mbgl``).
FORMAT_ALIASES = {"sld10": "sld", "mbgl": "mapbox", "maplibre": "mapbox", "qgis": "qml"}
FORMAT_TITLES = {"qml": "QGIS layer style (QML)", "sld": "OGC SLD 1.0 style",
                 "mapbox": "MapLibre / Mapbox GL style for the vector tiles"}
#: The OGC relation of a collection's styles (OGC API - Styles).
STYLES_REL = "http://www.opengis.net/def/rel/ogc/1.0/styles"

#: The lines of ``map.js``: a thin white edge between areas, and the worst-performing areas'
#: outline, a dark line over a light halo that shows on every fill; areas outside the
#: partnership one neutral grey; the partnership's own dashed outline.
AREA_LINE, AREA_LINE_PX = "#ffffff", 0.4
WORST_HALO, WORST_HALO_PX, WORST_HALO_OPACITY = "#ffffff", 5.0, 0.95
WORST_LINE, WORST_LINE_PX = "#111111", 2.0
OUTSIDE = "#f2f2f2"
PARTNERSHIP_LINE, PARTNERSHIP_LINE_PX, PARTNERSHIP_DASH = "#1f3a93", 3.0, (6.0, 4.0)

#: The value QGIS's graduated renderer classifies an area with no figure under (it draws no
#: symbol at all for NULL): far below any value served, and a class of its own.
QGIS_NO_DATA_VALUE = -1e12


@dataclass(frozen=True)
class StyleClasses:
    """A measure's classes as the web map draws them, in every format's terms.

    ``breaks`` are the classes' upper bounds (the last is the highest value), ``colours`` and
    ``labels`` (the web legend's words) one per class. ``minimum``: the lowest value (the first
    class starts there). ``worst``: whether worst-performing areas are outlined (``worst``
    true). ``rate_check``: a percentage, whose value over 100 or outside its own interval is
    not a valid rate and drawn as no data (``invalidRate`` in ``map.js``). ``survey``: a survey
    estimate marked by its publisher (``reliability`` set) is drawn as no data; ``marked``
    lists the codes so marked in the period of a MapLibre style's tiles (which carry no
    ``reliability``). ``codes``: a partnership's areas (tiles hold every area: the others are
    drawn in :data:`OUTSIDE` grey), None for every area.
    """

    title: str
    measure: str
    unit: str
    breaks: tuple[float, ...]
    colours: tuple[str, ...]
    labels: tuple[str, ...]
    minimum: float | None = None
    no_data: str = NO_DATA
    no_data_label: str = "No data or not a valid rate"
    low_is_worse: bool = False
    worst: bool = False
    worst_label: str = "Worst-performing areas (outlined)"
    rate_check: bool = False
    survey: bool = False
    marked: tuple[str, ...] = ()
    codes: tuple[str, ...] | None = None
    partnership: str | None = None
    partnership_name: str | None = None
    attribution: str = OGL_ATTRIBUTION
    #: the collection styled (the SLD's layer name) and its boundary set (the tiles' layer)
    collection: str = ""
    set_id: str = ""
    #: the legend as data (colour, label, upper bound per class), made from the above
    legend: list[dict] = field(default_factory=list, compare=False)

    def __post_init__(self) -> None:
        if not (len(self.breaks) == len(self.colours) == len(self.labels)):
            raise ValueError("StyleClasses: one colour and one label per break")
        object.__setattr__(self, "legend", [
            {"colour": c, "label": lab, "upper": b}
            for c, lab, b in zip(self.colours, self.labels, self.breaks, strict=True)])

    def bounds(self) -> list[tuple[float | None, float | None]]:
        """(lower, upper) of each class: None for the open ends (the lowest class has no lower
        bound, the highest no upper one: rounded values beyond the extremes stay in them).

        >>> StyleClasses("t", "m", "", (1.0, 2.0, 3.0), ("a", "b", "c"), ("x", "y", "z")).bounds()
        [(None, 1.0), (1.0, 2.0), (2.0, None)]
        """
        out: list[tuple[float | None, float | None]] = []
        for i, upper in enumerate(self.breaks):
            lower = self.breaks[i - 1] if i else None
            out.append((lower, upper if i < len(self.breaks) - 1 else None))
        return out


# -- the classes, as the web map draws them --------------------------------------------------------

def shown_values(values: AreaValues) -> pd.DataFrame:
    """The values the web map colours: a survey estimate its publisher marked (unreliable,
    missing, withheld) has no number on the map (``maps.page._unmarked``), the rest as they are."""
    frame = values.frame
    if values.measure.kind == "survey" and "reliability" in frame:
        frame = frame.assign(value=frame["value"].mask(frame["reliability"].notna()))
    return frame


def classes_of(values: AreaValues, codes: Sequence[str] | None = None, *, partnership: str | None = None,
               partnership_name: str | None = None, period: str | None = None,
               collection: str = "") -> StyleClasses:
    """The web map's classes of ``values``: breaks pooled over every period of the areas
    ``codes`` (a partnership's: its map's legend; None: every area of the set), the palette
    in the measure's direction, the legend's labels and title, and whether the worst-performing
    areas are outlined. ``period`` only chooses which survey markers a MapLibre style carries
    (default: the latest period).

    Contract: the same figures as ``maps.page.page_config`` for the same measure, areas and
    default classes (``tests/test_styles.py`` compares them)."""
    frame = shown_values(values)
    mine = frame if codes is None else frame[frame["code"].isin(list(codes))]
    measure = values.measure
    kind, label = measure.kind, measure.label
    # ranks, deciles and counts are whole numbers: so are their classes' bounds (as on the page)
    whole = values.unit != "%" and is_whole(mine["value"])
    breaks = class_breaks(mine["value"], WEB_MAP_SCHEME, WEB_MAP_K, None, whole=whole)
    unit = "%" if values.unit == "%" else ""
    has_values = bool(mine["value"].notna().any())
    lowest = float(mine["value"].min()) if has_values else None
    labels = class_labels(breaks, unit, lowest if whole else None, whole)
    worse_low = low_is_worse(kind, label)
    area_codes = list(codes) if codes is not None else frame["code"].unique().tolist()
    worst = gives_gap(values, area_codes) and bool(
        mine["worst"].astype("boolean").fillna(False).astype(bool).any())
    survey = kind == "survey"
    marked: tuple[str, ...] = ()
    if survey and "reliability" in values.frame and not values.frame.empty:
        at = values.at(period)
        if codes is not None:
            at = at[at["code"].isin(list(codes))]
        marked = tuple(sorted(at.loc[at["reliability"].notna(), "code"]))
    if survey:
        no_data_label = "No figure: unreliable, missing or withheld"
    elif values.disclosure is not None:
        no_data_label = "No data, withheld or not a valid rate"
    else:
        no_data_label = "No data or not a valid rate"
    one, _ = area_words(measure.set_id)
    return StyleClasses(
        title=legend_title(kind, label, values.unit),
        measure=sentence_case(label), unit=values.unit,
        breaks=tuple(float(b) for b in breaks),
        colours=tuple(class_colours(len(breaks), worse_low)) if breaks else (),
        labels=tuple(labels), minimum=lowest, no_data_label=no_data_label,
        low_is_worse=worse_low, worst=worst, worst_label=f"Worst-performing {one} (outlined)",
        rate_check=values.unit == "%", survey=survey, marked=marked,
        codes=tuple(sorted(codes)) if codes is not None else None,
        partnership=partnership, partnership_name=partnership_name,
        collection=collection, set_id=measure.set_id,
    )


@dataclass(frozen=True)
class StyledMeasure:
    """What a collection's style draws: (boundary set, indicator, denominator)."""

    set_id: str
    indicator: str
    denominator: str | None


def collection_measure(collection: Collection, indicator: str | None = None,
                       denominator: str | None = None) -> StyledMeasure:
    """The measure a collection's style draws: a map collection's own (it takes no
    ``indicator`` or ``denominator``, as its items do not), or a boundary set's with
    ``indicator=`` (and ``denominator=``). Raises :class:`InputError` naming the parameter, or
    :class:`NotFoundError` for a collection that has no styles (the partnerships' outlines)."""
    if collection.kind == "measure":
        if indicator is not None or denominator is not None:
            given = "indicator" if indicator is not None else "denominator"
            raise InputError(
                f"{given}: collection {collection.id} is {collection.indicator}"
                f"{' over ' + collection.denominator if collection.denominator else ''}; its style "
                f"takes no indicator= or denominator= (use collection {collection.geography} for others)")
        return StyledMeasure(collection.geography, str(collection.indicator), collection.denominator)
    if collection.kind == "geography":
        if indicator is None:
            if denominator is not None:
                raise InputError("denominator needs an indicator")
            raise InputError(
                f"indicator: collection {collection.id} is a boundary set with no measure of its "
                f"own; its styles need indicator= (and denominator= for a count), or use one of "
                f"its map collections ({collection.id}_…)")
        return StyledMeasure(collection.id, indicator, denominator)
    raise NotFoundError(f"collection {collection.id} has no styles: it is not a map of a measure "
                        "(style the outlines as you like)")


def collection_classes(store: Store, collection: Collection, *, indicator: str | None = None,
                       denominator: str | None = None, partnership: str | None = None,
                       period: str | None = None,
                       disclosure: DisclosureControl | None = None) -> StyleClasses:
    """:func:`classes_of` for ``collection`` read from ``store`` (scripts, exports; the web
    service passes its cached values to :func:`classes_of` instead). ``partnership``: the
    classes of that partnership's map. Unknown values raise :class:`NotFoundError` naming the
    valid ones; ``period`` is checked against the measure's."""
    from geo_cs.layers import area_values, resolve_measure
    from geo_cs.partnerships import get_partnerships, resolve

    chosen = collection_measure(collection, indicator, denominator)
    measure = resolve_measure(store, chosen.set_id, chosen.indicator, chosen.denominator)
    values = area_values(store, measure, disclosure=disclosure)
    values.check_period(period)
    codes, name = None, None
    if partnership is not None:
        found = get_partnerships([partnership])[0]
        codes, name = resolve(store, found, chosen.set_id).codes, found.phase_at(None).name
    return classes_of(values, codes, partnership=partnership, partnership_name=name, period=period,
                      collection=collection.id)


def style_format(f: str | None, accept: str | None = None) -> str:
    """The format a style request asks for: ``f`` (qml, sld, mapbox, or their other names), else
    the first of the style media types the ``Accept`` header names, else SLD (the OGC one).

    >>> style_format(None, "application/vnd.qgis.qml"), style_format("mbgl")
    ('qml', 'mapbox')
    """
    if f is not None:
        name = FORMAT_ALIASES.get(f.strip().lower(), f.strip().lower())
        if name not in FORMATS:
            raise InputError(f"f={f!r}: expected one of {', '.join(FORMATS)}")
        return name
    for part in (accept or "").split(","):
        media = part.split(";q=")[0].strip().lower().replace(" ", "")
        for name, media_type in FORMATS.items():
            if media and (media == media_type.lower() or media == media_type.split(";")[0].lower()):
                return name
    return "sld"


# -- QGIS expressions and XML ------------------------------------------------------------------

def _num(value: float) -> str:
    """A number as the formats write it: shortest round-trip decimals (``repr``)."""
    return repr(float(value))


def _quoted(codes: Sequence[str]) -> str:
    return ", ".join("'" + code.replace("'", "''") + "'" for code in codes)


def qgis_no_data(c: StyleClasses, tiles: bool = False) -> str:
    """A QGIS expression true for an area the web map draws as no data. Fields by name
    (``"value"``): a vector tile layer decodes the fields its styles name, NULL where a tile's
    feature has none (``attribute('value')`` names none, so it would always be NULL there).
    ``tiles``: for the vector tiles, which carry no ``reliability``: the survey's marked
    districts of the tiles' period by code instead."""
    parts = ['"value" IS NULL', 'coalesce("suppressed", false)']
    if c.rate_check:
        parts += ['"value" > 100', '"value" < coalesce("value_low", "value")',
                  '"value" > coalesce("value_high", "value")']
    if c.survey and not tiles:
        parts.append('"reliability" IS NOT NULL')
    elif c.survey and c.marked:
        parts.append(f'"code" IN ({_quoted(c.marked)})')
    return " OR ".join(parts)


def qgis_class_filter(c: StyleClasses, i: int, tiles: bool = False) -> str:
    """A QGIS expression for class ``i`` (no data excluded)."""
    lower, upper = c.bounds()[i]
    parts = [f"NOT ({qgis_no_data(c, tiles)})"]
    if lower is not None:
        parts.append(f'"value" > {_num(lower)}')
    if upper is not None:
        parts.append(f'"value" <= {_num(upper)}')
    return " AND ".join(parts)


def qgis_worst() -> str:
    """A QGIS expression true for a worst-performing area (false, not NULL, otherwise: a
    symbol layer's data-defined 'enabled' keeps its default on NULL)."""
    return 'coalesce("worst", false)'


def _rgba(colour: str, alpha: float = 1.0) -> str:
    """``#rrggbb`` as QGIS writes a colour: ``r,g,b,a``."""
    h = colour.lstrip("#")
    return f"{int(h[0:2], 16)},{int(h[2:4], 16)},{int(h[4:6], 16)},{round(alpha * 255)}"


def _props(parent: ET.Element, props: dict[str, str]) -> None:
    for k, v in props.items():
        ET.SubElement(parent, "prop", k=k, v=v)


def _data_defined(parent: ET.Element, enabled_expression: str | None = None) -> None:
    """A symbol layer's (or symbol's) data-defined properties: its 'enabled' switch by
    ``enabled_expression`` when given."""
    dd = ET.SubElement(parent, "data_defined_properties")
    top = ET.SubElement(dd, "Option", type="Map")
    ET.SubElement(top, "Option", name="name", value="", type="QString")
    props = ET.SubElement(top, "Option", name="properties", **({"type": "Map"} if enabled_expression else {}))
    if enabled_expression:
        enabled = ET.SubElement(props, "Option", name="enabled", type="Map")
        ET.SubElement(enabled, "Option", name="active", value="true", type="bool")
        ET.SubElement(enabled, "Option", name="expression", value=enabled_expression, type="QString")
        ET.SubElement(enabled, "Option", name="type", value="3", type="int")   # an expression
    ET.SubElement(top, "Option", name="type", value="collection", type="QString")


def _fill_layer(colour: str, pass_: int = 0) -> ET.Element:
    layer = ET.Element("layer", {"class": "SimpleFill", "enabled": "1", "locked": "0", "pass": str(pass_)})
    _props(layer, {"color": _rgba(colour), "style": "solid", "outline_color": _rgba(AREA_LINE),
                   "outline_style": "solid", "outline_width": _num(AREA_LINE_PX),
                   "outline_width_unit": "Pixel", "joinstyle": "bevel"})
    _data_defined(layer)
    return layer


def _line_layer(colour: str, width_px: float, alpha: float = 1.0, pass_: int = 0,
                enabled: str | None = None, dash: tuple[float, float] | None = None) -> ET.Element:
    layer = ET.Element("layer", {"class": "SimpleLine", "enabled": "1", "locked": "0", "pass": str(pass_)})
    props = {"line_color": _rgba(colour, alpha), "line_style": "solid", "line_width": _num(width_px),
             "line_width_unit": "Pixel", "joinstyle": "round", "capstyle": "round"}
    if dash:
        props |= {"use_custom_dash": "1", "customdash": f"{dash[0]:g};{dash[1]:g}",
                  "customdash_unit": "Pixel"}
    _props(layer, props)
    _data_defined(layer, enabled)
    return layer


def _fill_symbol(name: str, layers: list[ET.Element]) -> ET.Element:
    symbol = ET.Element("symbol", name=name, type="fill", alpha="1", clip_to_extent="1", force_rhr="0")
    _data_defined(symbol)
    symbol.extend(layers)
    return symbol


def _class_symbol(c: StyleClasses, name: str, colour: str) -> ET.Element:
    """A class's fill, and with worst-performing areas the halo and line over it, each on a
    pass of its own (symbol levels: every fill first, then every halo, then every line, so no
    neighbour's fill hides an outline)."""
    layers = [_fill_layer(colour, 0)]
    if c.worst:
        layers += [_line_layer(WORST_HALO, WORST_HALO_PX, WORST_HALO_OPACITY, 1, qgis_worst()),
                   _line_layer(WORST_LINE, WORST_LINE_PX, 1.0, 2, qgis_worst())]
    return _fill_symbol(name, layers)


def qgis_renderer(c: StyleClasses) -> ET.Element:
    """The ``renderer-v2`` element of a QGIS vector layer: a graduated renderer on ``value``
    with the web map's classes, colours and legend labels, and a last class for no data (the
    areas the web map greys, classified under :data:`QGIS_NO_DATA_VALUE`: QGIS's graduated
    renderer draws nothing for NULL). The inner bounds are the breaks; the outer ones reach
    beyond the data, so values rounded past the extremes stay in the end classes."""
    attr = f'if({qgis_no_data(c)}, {_num(QGIS_NO_DATA_VALUE)}, "value")'
    renderer = ET.Element("renderer-v2", {
        "type": "graduatedSymbol", "attr": attr, "graduatedMethod": "GraduatedColor",
        "symbollevels": "1" if c.worst else "0", "forceraster": "0", "enableorderby": "0",
        "referencescale": "-1"})
    ranges = ET.SubElement(renderer, "ranges")
    symbols = ET.SubElement(renderer, "symbols")
    # a lower bound just above the no-data value, and the largest finite upper one: the end
    # classes are open as on the web map
    outer_low, outer_high = QGIS_NO_DATA_VALUE / 2, -QGIS_NO_DATA_VALUE / 2
    for i, ((lower, upper), colour, label) in enumerate(zip(c.bounds(), c.colours, c.labels, strict=True)):
        ET.SubElement(ranges, "range", symbol=str(i), label=label, render="true",
                      lower=_num(outer_low if lower is None else lower),
                      upper=_num(outer_high if upper is None else upper))
        symbols.append(_class_symbol(c, str(i), colour))
    n = len(c.breaks)
    ET.SubElement(ranges, "range", symbol=str(n), label=c.no_data_label, render="true",
                  lower=_num(QGIS_NO_DATA_VALUE), upper=_num(QGIS_NO_DATA_VALUE))
    symbols.append(_class_symbol(c, str(n), c.no_data))
    method = ET.SubElement(renderer, "classificationMethod", id="Custom")
    ET.SubElement(method, "symmetricMode", enabled="0", astride="0", symmetrypoint="0")
    ET.SubElement(method, "labelFormat", format="%1 - %2", labelprecision="1", trimtrailingzeroes="1")
    ET.SubElement(renderer, "rotation")
    ET.SubElement(renderer, "sizescale")
    return renderer


def _layer_metadata(parent: ET.Element, title: str, abstract: str, identifier: str = "") -> None:
    """A layer's metadata as QGIS keeps it (Layer Properties ▸ Metadata): the OGL line as its
    rights and licence."""
    meta = ET.SubElement(parent, "resourceMetadata")
    for tag, text in (("identifier", identifier), ("parentidentifier", ""), ("language", "en"),
                      ("type", "dataset"), ("title", title), ("abstract", abstract)):
        ET.SubElement(meta, tag).text = text
    ET.SubElement(meta, "links")
    ET.SubElement(meta, "fees")
    ET.SubElement(meta, "rights").text = OGL_ATTRIBUTION
    ET.SubElement(meta, "license").text = "Open Government Licence v3.0"
    ET.SubElement(meta, "encoding")


def _xml(root: ET.Element, doctype: str | None = None) -> str:
    ET.indent(root)
    text = ET.tostring(root, encoding="unicode")
    return (doctype + "\n" if doctype else "") + text + "\n"


_QGIS_DOCTYPE = "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>"
#: The QGIS version the QML and project files are written for (and tested with).
QGIS_VERSION = "3.22.16-Białowieża"


def qml(c: StyleClasses) -> str:
    """A QGIS layer style (Layer Properties ▸ Symbology ▸ Style ▸ Load Style) for a
    collection's items: :func:`qgis_renderer`, the layer's metadata (title, OGL rights and
    licence) and the legend's title as the layer's abstract."""
    root = ET.Element("qgis", version=QGIS_VERSION, styleCategories="Symbology|Metadata",
                      hasScaleBasedVisibilityFlag="0", labelsEnabled="0")
    root.append(qgis_renderer(c))
    _layer_metadata(root, c.title, _abstract(c))
    ET.SubElement(root, "blendMode").text = "0"
    ET.SubElement(root, "featureBlendMode").text = "0"
    ET.SubElement(root, "layerOpacity").text = "1"
    return _xml(root, _QGIS_DOCTYPE)


def _abstract(c: StyleClasses) -> str:
    where = f" for {c.partnership_name}'s areas" if c.partnership_name else ""
    return (f"{c.title}. The web map's classes{where}: quantiles of the values of every period "
            f"(a colour means the same value in every period); grey: {c.no_data_label.lower()}. "
            f"{c.attribution}")


# -- SLD 1.0 -----------------------------------------------------------------------------------

SLD_NS = "http://www.opengis.net/sld"
OGC_NS = "http://www.opengis.net/ogc"
XLINK_NS = "http://www.w3.org/1999/xlink"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
SLD_SCHEMA = "http://schemas.opengis.net/sld/1.0.0/StyledLayerDescriptor.xsd"


def _s(tag: str) -> str:
    return f"{{{SLD_NS}}}{tag}"


def _o(tag: str) -> str:
    return f"{{{OGC_NS}}}{tag}"


def _compare(op: str, prop: str, literal: str | None = None, other: str | None = None) -> ET.Element:
    element = ET.Element(_o(op))
    ET.SubElement(element, _o("PropertyName")).text = prop
    if other is not None:
        ET.SubElement(element, _o("PropertyName")).text = other
    elif literal is not None:
        ET.SubElement(element, _o("Literal")).text = literal
    return element


def _all(*conditions: ET.Element) -> ET.Element:
    if len(conditions) == 1:
        return conditions[0]
    element = ET.Element(_o("And"))
    element.extend(conditions)
    return element


def _any(*conditions: ET.Element) -> ET.Element:
    element = ET.Element(_o("Or"))
    element.extend(conditions)
    return element


def _not(condition: ET.Element) -> ET.Element:
    element = ET.Element(_o("Not"))
    element.append(condition)
    return element


def sld_valid(c: StyleClasses) -> list[ET.Element]:
    """The conditions of a figure the web map colours (each null case said explicitly, so that
    a client comparing with NULL as SQL does still colours the area)."""
    out = [_not(_compare("PropertyIsNull", "value")),
           _not(_compare("PropertyIsEqualTo", "suppressed", "true"))]
    if c.rate_check:
        out += [_compare("PropertyIsLessThanOrEqualTo", "value", "100"),
                _any(_compare("PropertyIsNull", "value_low"),
                     _compare("PropertyIsGreaterThanOrEqualTo", "value", other="value_low")),
                _any(_compare("PropertyIsNull", "value_high"),
                     _compare("PropertyIsLessThanOrEqualTo", "value", other="value_high"))]
    if c.survey:
        out.append(_compare("PropertyIsNull", "reliability"))
    return out


def _sld_css(parent: ET.Element, tag: str, params: dict[str, str]) -> None:
    element = ET.SubElement(parent, _s(tag))
    for name, value in params.items():
        ET.SubElement(element, _s("CssParameter"), name=name).text = value


def sld_no_data(c: StyleClasses) -> ET.Element:
    """The condition of an area the web map draws as no data: what :func:`sld_valid` leaves
    out, said explicitly rather than as an ``ElseFilter`` (QGIS 3.22 imports an ElseFilter as
    a rule with no filter, which would grey every area)."""
    out = [_compare("PropertyIsNull", "value"), _compare("PropertyIsEqualTo", "suppressed", "true")]
    if c.rate_check:
        out += [_compare("PropertyIsGreaterThan", "value", "100"),
                _compare("PropertyIsLessThan", "value", other="value_low"),
                _compare("PropertyIsGreaterThan", "value", other="value_high")]
    if c.survey:
        out.append(_not(_compare("PropertyIsNull", "reliability")))
    return _any(*out)


def _sld_rule(parent: ET.Element, name: str, title: str, condition: ET.Element) -> ET.Element:
    rule = ET.SubElement(parent, _s("Rule"))
    ET.SubElement(rule, _s("Name")).text = name
    ET.SubElement(rule, _s("Title")).text = title
    ET.SubElement(rule, _o("Filter")).append(condition)
    return rule


def _sld_fill(rule: ET.Element, colour: str) -> None:
    symbolizer = ET.SubElement(rule, _s("PolygonSymbolizer"))
    _sld_css(symbolizer, "Fill", {"fill": colour, "fill-opacity": "1"})
    _sld_css(symbolizer, "Stroke", {"stroke": AREA_LINE, "stroke-width": _num(AREA_LINE_PX)})


def _sld_line(rule: ET.Element, colour: str, width: float, opacity: float = 1.0) -> None:
    symbolizer = ET.SubElement(rule, _s("LineSymbolizer"))
    _sld_css(symbolizer, "Stroke", {"stroke": colour, "stroke-width": _num(width),
                                    "stroke-opacity": _num(opacity), "stroke-linejoin": "round"})


def sld(c: StyleClasses, layer_name: str | None = None) -> str:
    """An OGC SLD 1.0 style for a collection's items: one FeatureTypeStyle of rules, a class
    each (``PropertyIsLessThanOrEqualTo`` the break, above the one before; the end classes
    open) with the figures the web map colours (:func:`sld_valid`), a rule in the no-data grey
    for the rest (:func:`sld_no_data`); then a second FeatureTypeStyle outlining the
    worst-performing areas over every fill."""
    ET.register_namespace("", SLD_NS)
    ET.register_namespace("ogc", OGC_NS)
    ET.register_namespace("xlink", XLINK_NS)
    ET.register_namespace("xsi", XSI_NS)
    root = ET.Element(_s("StyledLayerDescriptor"), {
        "version": "1.0.0", f"{{{XSI_NS}}}schemaLocation": f"{SLD_NS} {SLD_SCHEMA}"})
    named = ET.SubElement(root, _s("NamedLayer"))
    ET.SubElement(named, _s("Name")).text = layer_name or c.collection or c.set_id
    style = ET.SubElement(named, _s("UserStyle"))
    ET.SubElement(style, _s("Name")).text = STYLE_ID
    ET.SubElement(style, _s("Title")).text = c.title
    ET.SubElement(style, _s("Abstract")).text = _abstract(c)
    ET.SubElement(style, _s("IsDefault")).text = "1"
    fills = ET.SubElement(style, _s("FeatureTypeStyle"))
    valid = sld_valid(c)
    for i, ((lower, upper), colour, label) in enumerate(zip(c.bounds(), c.colours, c.labels, strict=True)):
        conditions = list(valid)
        if lower is not None:
            conditions.append(_compare("PropertyIsGreaterThan", "value", _num(lower)))
        if upper is not None:
            conditions.append(_compare("PropertyIsLessThanOrEqualTo", "value", _num(upper)))
        _sld_fill(_sld_rule(fills, f"class-{i + 1}", label, _all(*conditions)), colour)
    _sld_fill(_sld_rule(fills, "no-data", c.no_data_label, sld_no_data(c)), c.no_data)
    if c.worst:
        outlines = ET.SubElement(style, _s("FeatureTypeStyle"))
        rule = _sld_rule(outlines, "worst", c.worst_label, _compare("PropertyIsEqualTo", "worst", "true"))
        _sld_line(rule, WORST_HALO, WORST_HALO_PX, WORST_HALO_OPACITY)
        _sld_line(rule, WORST_LINE, WORST_LINE_PX)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + _xml(root)


# -- MapLibre ----------------------------------------------------------------------------------

def step_stops(breaks: Sequence[float]) -> list[float]:
    """The stops of a MapLibre ``step`` expression for classes with upper bounds ``breaks``: a
    step starts a class at its stop (``v >= stop``) where the web map's break ends one
    (``v <= break``), so each stop is the break's next double up; a value equal to a break stays
    in the class it ends.

    >>> step_stops([1.0, 2.0, 3.0]) == [math.nextafter(1.0, math.inf), math.nextafter(2.0, math.inf)]
    True
    """
    return [math.nextafter(float(b), math.inf) for b in list(breaks)[:-1]]


def maplibre_fill_colour(c: StyleClasses) -> list | str:
    """The ``fill-color`` expression: outside the partnership grey, no data grey, else a step
    on ``value`` through the classes' colours."""
    value = ["get", "value"]
    if not c.breaks:
        return c.no_data
    step: list = ["step", value, c.colours[0]]
    for stop, colour in zip(step_stops(c.breaks), c.colours[1:], strict=True):
        step += [stop, colour]
    cases: list = ["case"]
    if c.codes is not None:
        cases += [["!", ["in", ["get", "code"], ["literal", list(c.codes)]]], OUTSIDE]
    no_data: list = ["any", ["!=", ["typeof", value], "number"], ["to-boolean", ["get", "suppressed"]]]
    if c.rate_check:
        no_data += [[">", value, 100],
                    ["<", value, ["coalesce", ["get", "value_low"], value]],
                    [">", value, ["coalesce", ["get", "value_high"], value]]]
    if c.marked:
        no_data.append(["in", ["get", "code"], ["literal", list(c.marked)]])
    return [*cases, no_data, c.no_data, step]


def maplibre_style(c: StyleClasses, tilejson_url: str, *, name: str | None = None,
                   outline_url: str | None = None) -> dict:
    """A MapLibre (Mapbox GL) style of the collection's vector tiles (``tilejson_url``, the
    TileJSON of the tiles with the same measure and period): the classes as a ``step`` on
    ``value``, no data grey, the areas' thin white edge, the worst-performing areas outlined
    over every fill; with a partnership, its areas coloured and the rest grey, and its dashed
    outline from ``outline_url`` (a GeoJSON feature). The sources carry the OGL attribution."""
    source = "geo-cs"
    layers: list[dict] = [{
        "id": "areas", "type": "fill", "source": source, "source-layer": c.set_id,
        "paint": {"fill-color": maplibre_fill_colour(c), "fill-opacity": 1,
                  "fill-outline-color": AREA_LINE},
    }]
    if c.worst:
        worst: list = ["to-boolean", ["get", "worst"]]
        if c.codes is not None:
            worst = ["all", worst, ["in", ["get", "code"], ["literal", list(c.codes)]]]
        layers += [
            {"id": "worst-halo", "type": "line", "source": source, "source-layer": c.set_id, "filter": worst,
             "paint": {"line-color": WORST_HALO, "line-width": WORST_HALO_PX,
                       "line-opacity": WORST_HALO_OPACITY},
             "layout": {"line-join": "round"}},
            {"id": "worst", "type": "line", "source": source, "source-layer": c.set_id, "filter": worst,
             "paint": {"line-color": WORST_LINE, "line-width": WORST_LINE_PX},
             "layout": {"line-join": "round"}},
        ]
    sources: dict[str, dict] = {source: {"type": "vector", "url": tilejson_url, "attribution": c.attribution}}
    if outline_url is not None:
        sources["partnership"] = {"type": "geojson", "data": outline_url, "attribution": c.attribution}
        layers.append({"id": "partnership", "type": "line", "source": "partnership",
                       "paint": {"line-color": PARTNERSHIP_LINE, "line-width": PARTNERSHIP_LINE_PX,
                                 "line-dasharray": [d / PARTNERSHIP_LINE_PX for d in PARTNERSHIP_DASH]}})
    return {
        "version": 8,
        "name": name or c.title,
        "metadata": {
            "geo-cs:title": c.title, "geo-cs:breaks": list(c.breaks),
            "geo-cs:legend": [*c.legend, {"colour": c.no_data, "label": c.no_data_label}]
            + ([{"outline": WORST_LINE, "label": c.worst_label}] if c.worst else []),
            "geo-cs:attribution": c.attribution,
        },
        "sources": sources,
        "layers": layers,
    }


# -- a QGIS project ----------------------------------------------------------------------------

@dataclass(frozen=True)
class ProjectLayers:
    """What a partnership's QGIS project opens: the map collection's items (OAPIF), the same
    areas as vector tiles, and the partnership's outline, with the service's addresses."""

    title: str
    base: str                    # the service's public address (no trailing slash)
    collection: str              # the OAPIF collection (typename)
    query: dict[str, str]        # what the connection URL carries: partnership, indicator…
    tiles_url: str               # {z}/{x}/{y} template of the vector tiles, with the measure
    min_zoom: int
    max_zoom: int
    outline_url: str             # the partnership's outline as a GeoJSON feature
    bbox: tuple[float, float, float, float] | None   # lon/lat, to open the project on
    page_size: int = 1000


def oapif_source(base: str, collection: str, query: dict[str, str], page_size: int = 1000) -> str:
    """The data source of a QGIS OGC API - Features layer: the connection URL with the
    partnership and measure (QGIS repeats its query on every request), the collection, a page
    size, every feature of the selection at once (no bbox per view) and *no* maximum number of
    features (``maxNumFeatures`` makes QGIS stop there while counting them all)."""
    from urllib.parse import urlencode

    url = f"{base}/" + (f"?{urlencode(query)}" if query else "")
    return (f"url='{url}' typename='{collection}' pagingEnabled='true' pageSize='{page_size}' "
            "restrictToRequestBBOX='0'")


#: QGIS's own ids of the CRSs a project names (its srs.db): a CRS is read from its authid only
#: when a positive srsid comes with it.
_SRSID = {"EPSG:4326": "3452", "EPSG:3857": "3857", "EPSG:27700": "2437"}


def _spatialrefsys(parent: ET.Element, authid: str) -> None:
    srs = ET.SubElement(parent, "spatialrefsys")
    ET.SubElement(srs, "srsid").text = _SRSID[authid]
    ET.SubElement(srs, "srid").text = authid.split(":")[1]
    ET.SubElement(srs, "authid").text = authid


def _srs(parent: ET.Element, authid: str) -> None:
    _spatialrefsys(ET.SubElement(parent, "srs"), authid)


def _maplayer(parent: ET.Element, layer_id: str, name: str, kind: str, provider: str, source: str,
              authid: str, title: str, abstract: str, geometry: str | None = None) -> ET.Element:
    attrs = {"type": kind, "hasScaleBasedVisibilityFlag": "0", "minScale": "100000000", "maxScale": "0",
             "styleCategories": "AllStyleCategories"}
    if geometry:
        attrs |= {"geometry": geometry, "wkbType": "MultiPolygon"}
    layer = ET.SubElement(parent, "maplayer", attrs)
    ET.SubElement(layer, "id").text = layer_id
    ET.SubElement(layer, "datasource").text = source
    ET.SubElement(layer, "layername").text = name
    _srs(layer, authid)
    _layer_metadata(layer, title, abstract)
    ET.SubElement(layer, "provider", encoding="UTF-8" if kind == "vector" else "").text = provider
    return layer


def qgis_tile_renderer(c: StyleClasses) -> ET.Element:
    """The vector tile layer's renderer (QGIS's basic vector tile renderer: styles drawn in
    order, each a filter and a symbol): areas outside the partnership grey, each class, no data,
    then the worst-performing outline over them."""
    renderer = ET.Element("renderer", type="basic")
    styles = ET.SubElement(renderer, "styles")
    inside = ""
    if c.codes is not None:
        inside = f'"code" IN ({_quoted(c.codes)})'

    def add(name: str, expression: str, symbol_layers: list[ET.Element]) -> None:
        style = ET.SubElement(styles, "style", {"name": name, "layer": c.set_id, "geometry": "2",
                                                "enabled": "1", "expression": expression,
                                                "min-zoom": "-1", "max-zoom": "-1"})
        ET.SubElement(style, "symbols").append(_fill_symbol("0", symbol_layers))

    def within(expression: str) -> str:
        return f"({inside}) AND ({expression})" if inside else expression

    if inside:
        add(f"Outside {c.partnership_name or c.partnership}", f"NOT ({inside})", [_fill_layer(OUTSIDE)])
    for i, (colour, label) in enumerate(zip(c.colours, c.labels, strict=True)):
        add(label, within(qgis_class_filter(c, i, tiles=True)), [_fill_layer(colour)])
    add(c.no_data_label, within(qgis_no_data(c, tiles=True)), [_fill_layer(c.no_data)])
    if c.worst:
        add(c.worst_label, within(qgis_worst()),
            [_line_layer(WORST_HALO, WORST_HALO_PX, WORST_HALO_OPACITY),
             _line_layer(WORST_LINE, WORST_LINE_PX)])
    return renderer


def _outline_renderer() -> ET.Element:
    renderer = ET.Element("renderer-v2", type="singleSymbol", symbollevels="0", forceraster="0",
                          enableorderby="0", referencescale="-1")
    symbols = ET.SubElement(renderer, "symbols")
    symbols.append(_fill_symbol("0", [_line_layer(PARTNERSHIP_LINE, PARTNERSHIP_LINE_PX,
                                                  dash=PARTNERSHIP_DASH)]))
    ET.SubElement(renderer, "rotation")
    ET.SubElement(renderer, "sizescale")
    return renderer


def qgis_project(c: StyleClasses, p: ProjectLayers) -> str:
    """A QGIS project (``.qgs``) that opens a partnership's map as the web map draws it, in
    British National Grid, zoomed to the partnership: its areas from the features API styled
    by :func:`qgis_renderer` (the QML), the same areas as vector tiles (every area, those
    outside the partnership grey; for small scales), and its dashed outline. The OGL line is
    the project's abstract and each layer's rights."""
    root = ET.Element("qgis", version=QGIS_VERSION, projectname=p.title)
    ET.SubElement(root, "homePath", path="")
    ET.SubElement(root, "title").text = p.title
    _spatialrefsys(ET.SubElement(root, "projectCrs"), "EPSG:27700")
    ids = {"areas": f"areas_{uuid.uuid4().hex[:12]}", "tiles": f"tiles_{uuid.uuid4().hex[:12]}",
           "outline": f"outline_{uuid.uuid4().hex[:12]}"}
    names = {"areas": c.title if len(c.title) < 80 else c.measure,
             "tiles": f"{c.measure} (vector tiles, every area)",
             "outline": f"{c.partnership_name or c.partnership} (outline)"}
    areas_source = oapif_source(p.base, p.collection, p.query, p.page_size)
    tiles_source = f"type=xyz&url={p.tiles_url}&zmin={p.min_zoom}&zmax={p.max_zoom}"
    sources = {"areas": ("OAPIF", areas_source), "tiles": ("vectortile", tiles_source),
               "outline": ("ogr", p.outline_url)}
    tree = ET.SubElement(root, "layer-tree-group")
    for key in ("outline", "areas", "tiles"):      # top first, as QGIS lists them
        provider, source = sources[key]
        ET.SubElement(tree, "layer-tree-layer", id=ids[key], name=names[key], source=source,
                      providerKey=provider, checked="Qt::Checked", expanded="1")
    if p.bbox is not None:
        _canvas_extent(root, p.bbox)
    layers = ET.SubElement(root, "projectlayers")
    abstract = _abstract(c)
    areas = _maplayer(layers, ids["areas"], names["areas"], "vector", "OAPIF", areas_source, "EPSG:4326",
                      c.title, abstract, geometry="Polygon")
    areas.append(qgis_renderer(c))
    tiles = _maplayer(layers, ids["tiles"], names["tiles"], "vector-tile", "vectortile", tiles_source,
                      "EPSG:3857", f"{c.title} (vector tiles)", abstract)
    tiles.append(qgis_tile_renderer(c))
    outline = _maplayer(layers, ids["outline"], names["outline"], "vector", "ogr", p.outline_url,
                        "EPSG:4326", names["outline"], c.attribution, geometry="Polygon")
    outline.append(_outline_renderer())
    order = ET.SubElement(root, "layerorder")
    for key in ("outline", "areas", "tiles"):
        ET.SubElement(order, "layer", id=ids[key])
    # QGIS 3.22 reads projectCrs only in a project that says its layers are reprojected
    crs_properties = ET.SubElement(ET.SubElement(root, "properties"), "SpatialRefSys")
    ET.SubElement(crs_properties, "ProjectionsEnabled", type="int").text = "1"
    meta = ET.SubElement(root, "projectMetadata")
    for tag, text in (("identifier", ""), ("parentidentifier", ""), ("language", "en"), ("type", ""),
                      ("title", p.title), ("abstract", abstract)):
        ET.SubElement(meta, tag).text = text
    ET.SubElement(meta, "links")
    ET.SubElement(meta, "author").text = "geo-cs"
    return _xml(root, _QGIS_DOCTYPE)


def _canvas_extent(root: ET.Element, bbox: tuple[float, float, float, float]) -> None:
    """Open the project on ``bbox`` (lon/lat), in British National Grid."""
    import pyproj

    to_bng = pyproj.Transformer.from_crs("OGC:CRS84", "EPSG:27700", always_xy=True)
    xmin, ymin, xmax, ymax = to_bng.transform_bounds(*bbox, densify_pts=21)
    canvas = ET.SubElement(root, "mapcanvas", name="theMapCanvas")
    ET.SubElement(canvas, "units").text = "meters"
    extent = ET.SubElement(canvas, "extent")
    for tag, value in (("xmin", xmin), ("ymin", ymin), ("xmax", xmax), ("ymax", ymax)):
        ET.SubElement(extent, tag).text = f"{value:.1f}"
    ET.SubElement(canvas, "rotation").text = "0"
    _spatialrefsys(ET.SubElement(canvas, "destinationsrs"), "EPSG:27700")


def project_title(c: StyleClasses) -> str:
    """A project's title: the partnership and the measure."""
    return f"{c.partnership_name or c.partnership} — {c.measure}"


def style_links(base: str, collection: str, query: dict[str, str] | None = None) -> list[dict]:
    """The links of a collection's style: one ``stylesheet`` per format, with the request's
    measure and partnership (``query``)."""
    from urllib.parse import urlencode

    out = []
    for f, media_type in FORMATS.items():
        q = urlencode({**(query or {}), "f": f})
        out.append({"href": f"{base}/collections/{collection}/styles/{STYLE_ID}?{q}", "rel": "stylesheet",
                    "type": media_type, "title": FORMAT_TITLES[f]})
    return out


def json_text(style: dict) -> str:
    """A MapLibre style as the service sends it (no NaN: a style JSON parser refuses it)."""
    return json.dumps(style, ensure_ascii=False, allow_nan=False)
