"""A partnership's map for an analyst's notebook: folium, as ``GeoDataFrame.explore()`` draws.

The figures are the print map's (:func:`geo_cs.export.maps.partnership_map_inputs`: the same
classes, colours, worst-performing outlines, disclosure control and words) drawn as a Leaflet map
that pans and zooms, with each area's name, code and value on hover. Leaflet's script and
stylesheet are the ones the service vendors (``static/vendor``), written into the page, so the map
shows in Jupyter, or saved as one HTML file, on a network that reaches no CDN; it has no
background tiles (they would need the internet), only the areas and the partnership's outline.

>>> from geo_cs.maps.notebook import partnership_map
>>> m = partnership_map(store, "glasgow")                  # doctest: +SKIP
>>> m                                # a notebook shows it  # doctest: +SKIP
>>> m.save("glasgow.html")           # one file, offline    # doctest: +SKIP
"""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path
from typing import TYPE_CHECKING

import folium
import numpy as np

from geo_cs.attribution import OGL_ATTRIBUTION
from geo_cs.config import Settings
from geo_cs.export.maps import classify, partnership_map_inputs
from geo_cs.maps import STATIC_DIR, vendored
from geo_cs.palette import NO_DATA

if TYPE_CHECKING:
    from geo_cs.disclosure import DisclosureControl
    from geo_cs.store import Store

#: simplification before drawing, in metres: invisible at a city's zoom, a tenth of the bytes
SIMPLIFY_M = 10.0


def _data_url(content: bytes, media_type: str) -> str:
    """A data: URL: the page then needs no server and no network for it."""
    return f"data:{media_type};base64,{base64.b64encode(content).decode('ascii')}"


def _stylesheet(path: Path) -> bytes:
    """Leaflet's stylesheet with the images it names (the layer control's icon…) written in."""
    def image(found: re.Match) -> str:
        return f"url({_data_url((path.parent / found.group(1)).read_bytes(), 'image/png')})"
    return re.sub(r"url\((images/[\w.-]+\.png)\)", image, path.read_text(encoding="utf-8")).encode()


def offline(m: folium.Map) -> folium.Map:
    """``m`` with Leaflet's script and stylesheet written into the page (the vendored copies)
    instead of folium's CDN links, and none of the plugins a choropleth does not use."""
    version = vendored()["leaflet"]["version"]
    dist = STATIC_DIR / "vendor" / f"leaflet@{version}" / "dist"
    m.default_js = [("leaflet", _data_url((dist / "leaflet.js").read_bytes(), "text/javascript"))]
    m.default_css = [("leaflet_css", _data_url(_stylesheet(dist / "leaflet.css"), "text/css"))]
    return m


def _value_words(value: float, unit: str) -> str:
    return "no data" if not np.isfinite(value) else f"{value:,.1f}{unit}"


def partnership_map(
    store: Store, partnership: str, *, geography: str | None = None, indicator: str | None = None,
    denominator: str | None = None, period: str | None = None, baseline: tuple[str, ...] | None = None,
    threshold: float = 25.0, scheme: str = "quantiles", k: int = 5,
    disclosure: DisclosureControl | None = None,
) -> folium.Map:
    """A folium map of ``partnership``'s areas coloured by the measure in ``period`` (default:
    the latest it holds), its worst-performing neighbourhoods outlined, with a legend, the answer
    in words and the attribution. Every parameter is the web map's and ``geo-cs export map``'s;
    ``disclosure`` defaults to the environment's setting (``GEO_CS_DISCLOSURE_CONTROL=1``: small
    counts withheld, as everywhere else the figures are published)."""
    if disclosure is None:
        disclosure = Settings().disclosure()
    inputs = partnership_map_inputs(
        store, partnership, geography=geography, indicator=indicator, denominator=denominator,
        periods=[period] if period else None, scheme=scheme, k=k, baseline=baseline,
        threshold=threshold, disclosure=disclosure)
    panel = inputs["panels"][-1]
    unit = inputs["unit"]
    areas = panel.areas.copy()
    areas["geometry"] = areas.geometry.simplify(SIMPLIFY_M)
    classes = classify(areas["value"], inputs["breaks"])
    areas["colour"] = [inputs["colours"][c] if c >= 0 else NO_DATA for c in classes]
    areas["shown"] = [_value_words(v, unit) for v in areas["value"].astype(float)]
    areas["worst"] = areas["worst"].fillna(False).astype(bool)
    areas = areas[["code", "name", "shown", "colour", "worst", "geometry"]].to_crs(4326)

    west, south, east, north = areas.total_bounds
    m = offline(folium.Map(tiles=None, control_scale=True, prefer_canvas=False))
    m.fit_bounds([[south, west], [north, east]])
    folium.GeoJson(
        areas, name=f"{inputs['title']} ({panel.label})",
        style_function=lambda f: {"fillColor": f["properties"]["colour"], "fillOpacity": 0.85,
                                  "color": "#ffffff", "weight": 0.4},
        highlight_function=lambda f: {"weight": 2, "color": "#000000"},
        tooltip=folium.GeoJsonTooltip(["name", "code", "shown"], aliases=["", "code", panel.label]),
    ).add_to(m)
    worst = areas[areas["worst"]]
    if len(worst):
        folium.GeoJson(worst[["code", "geometry"]], name="Worst-performing neighbourhoods",
                       style_function=lambda f: {"fill": False, "color": "#111111", "weight": 2.2},
                       interactive=False).add_to(m)
    folium.GeoJson(inputs["outline"].to_crs(4326).__geo_interface__, name="Partnership",
                   style_function=lambda f: {"fill": False, "color": "#1f3a93", "weight": 2.5},
                   interactive=False).add_to(m)
    folium.LayerControl(collapsed=True).add_to(m)
    m.get_root().html.add_child(folium.Element(_legend(inputs, panel.label, bool(len(worst)))))
    return m


def _legend(inputs: dict, period_label: str, outlined: bool) -> str:
    """The title, the answer in words, the classes and the attribution, in a box on the map."""
    rows = "".join(
        f'<div><span style="display:inline-block;width:14px;height:11px;margin-right:5px;'
        f'background:{colour};border:1px solid #999"></span>{html.escape(label)}</div>'
        for colour, label in zip(inputs["colours"], inputs["labels"], strict=True))
    rows += (f'<div><span style="display:inline-block;width:14px;height:11px;margin-right:5px;'
             f'background:{NO_DATA};border:1px solid #999"></span>No data</div>')
    if outlined:
        rows += ('<div><span style="display:inline-block;width:14px;height:11px;margin-right:5px;'
                 'border:2px solid #111"></span>Worst-performing neighbourhood</div>')
    heading = html.escape(inputs["legend_title"].splitlines()[0])
    return (
        '<div class="geo-cs-legend" style="position:fixed;z-index:1000;left:10px;bottom:24px;'
        'max-width:340px;background:rgba(255,255,255,.93);padding:8px 10px;border:1px solid #bbb;'
        'font:12px/1.35 sans-serif;color:#222">'
        f'<div style="font-weight:bold">{html.escape(inputs["title"])}, {html.escape(period_label)}</div>'
        f'<div style="margin:4px 0 6px">{html.escape(inputs["sentence"])}</div>'
        f'<div style="font-weight:bold;margin-bottom:2px">{heading}</div>'
        f'{rows}<div style="margin-top:6px;font-size:10px;color:#555">{html.escape(inputs["source"])} '
        f'{html.escape(OGL_ATTRIBUTION)}</div></div>')
